//! What `up` reports: one typed report for JSON and for humans. States are enums serialised as
//! kebab-case words (`deployed`, `not-started` …), never strings compared in code.

use serde::Serialize;
use sprocket_docker::{CallCounts, TaskInfo};

#[derive(Debug, Serialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    Deployed,
    Failed,
    TimedOut,
}

#[derive(Debug, Serialize)]
pub struct UpReport {
    pub outcome: Outcome,
    pub namespace: String,
    pub environment: String,
    pub deploy_id: String,
    pub seconds: f64,
    /// Mutating engine calls this run made.
    pub calls: CallCounts,
    pub layers: Vec<LayerReport>,
    /// The failure the exit code speaks of (a failed task before a timeout).
    pub failure: Option<Failure>,
    /// Every failure: services that do not depend on each other can fail independently.
    pub failures: Vec<Failure>,
    /// The chain of steps that decided the total time.
    pub critical_path: Vec<PathStep>,
    /// Objects removed: stale config versions, and with `--prune` what the spec dropped.
    pub removed: Vec<String>,
    /// Vault: initialised, unsealed, configured, what was done.
    pub vault: Option<crate::vault_lifecycle::VaultReport>,
    /// Datastores' logins, as their provisioning made them.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub provisioned: Vec<super::ProvisionReport>,
    /// The routes of what changed, as the edge router serves them after the deploy.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub routes: Option<super::RoutesServed>,
    /// The scheduled backups' runner, after a deploy that converged.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backup_schedule: Option<crate::backup::schedule::ScheduleReport>,
}

#[derive(Debug, Serialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum LayerStatus {
    /// Every service of the layer runs healthy.
    Deployed,
    /// A service of the layer failed.
    Failed,
    /// A service of the layer did not become healthy (or shed its old tasks) in time.
    TimedOut,
    /// Some services run healthy, others did not start because something they need failed.
    Partial,
    /// None of the layer's services was started.
    NotStarted,
}

#[derive(Debug, Serialize)]
pub struct LayerReport {
    pub name: String,
    pub status: LayerStatus,
    /// From the first start of one of its services to the last of them healthy.
    pub seconds: f64,
    pub services: Vec<ServiceReport>,
    pub disabled: Vec<sprocket_spec::model::Disabled>,
}

#[derive(Debug, Serialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum ServiceAction {
    Create,
    Update,
    Unchanged,
}

/// Why a service was updated although its spec did not change.
#[derive(Debug, Serialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum ChangeReason {
    /// A secret made from Vault that it mounts has a new version (a reissued token, new
    /// unseal material, or one an interrupted run left half-rolled).
    VaultMaterial,
}

#[derive(Debug, Serialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum ServiceState {
    Healthy,
    Failed,
    TimedOut,
    NotStarted,
    Skipped,
}

#[derive(Debug, Serialize, Clone)]
pub struct ServiceReport {
    pub name: String,
    pub action: ServiceAction,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<ChangeReason>,
    pub state: ServiceState,
    pub running: usize,
    pub desired: usize,
    /// Seconds from the deploy's start: when it was started, ran healthy, and (for a changed
    /// service) when its old tasks were gone.
    pub started_after: Option<f64>,
    pub healthy_after: Option<f64>,
    pub converged_after: Option<f64>,
    /// Why it was not started (what it needs failed), or why it was left out.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub not_started_because: Option<String>,
}

#[derive(Debug, Serialize, Clone)]
pub struct PathStep {
    pub step: String,
    pub started_after: f64,
    pub healthy_after: f64,
}

#[derive(Debug, Serialize, Clone)]
pub struct Failure {
    pub layer: String,
    pub service: String,
    pub reason: String,
    /// The deadline passed (exit 6), rather than a task failing (exit 5).
    pub timed_out: bool,
    pub task: Option<TaskInfo>,
    pub logs: Vec<String>,
    pub hint: String,
}

/// A layer's status from its services' states.
pub fn layer_status(services: &[ServiceReport]) -> LayerStatus {
    let any = |st: ServiceState| services.iter().any(|s| s.state == st);
    if any(ServiceState::Failed) {
        LayerStatus::Failed
    } else if any(ServiceState::TimedOut) {
        LayerStatus::TimedOut
    } else if !services.is_empty() && services.iter().all(|s| s.started_after.is_none()) {
        if any(ServiceState::Skipped) && !any(ServiceState::NotStarted) {
            LayerStatus::Deployed
        } else {
            LayerStatus::NotStarted
        }
    } else if any(ServiceState::NotStarted) {
        LayerStatus::Partial
    } else {
        LayerStatus::Deployed
    }
}

/// The deploy's outcome from its failures: a failed task beats a timeout.
pub fn outcome(services: &[&ServiceReport], vault_failed: bool) -> Outcome {
    if vault_failed || services.iter().any(|s| s.state == ServiceState::Failed) {
        Outcome::Failed
    } else if services.iter().any(|s| s.state == ServiceState::TimedOut) {
        Outcome::TimedOut
    } else {
        Outcome::Deployed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(state: ServiceState, started: bool) -> ServiceReport {
        ServiceReport {
            name: "x".into(),
            action: ServiceAction::Create,
            reason: None,
            state,
            running: 0,
            desired: 1,
            started_after: started.then_some(0.0),
            healthy_after: None,
            converged_after: None,
            not_started_because: None,
        }
    }

    #[test]
    fn a_layer_reads_from_its_services() {
        use ServiceState::*;
        assert_eq!(
            layer_status(&[s(Healthy, true), s(Healthy, true)]),
            LayerStatus::Deployed
        );
        assert_eq!(
            layer_status(&[s(Healthy, true), s(NotStarted, false)]),
            LayerStatus::Partial
        );
        assert_eq!(
            layer_status(&[s(NotStarted, false)]),
            LayerStatus::NotStarted
        );
        assert_eq!(
            layer_status(&[s(TimedOut, true), s(Failed, true)]),
            LayerStatus::Failed
        );
        assert_eq!(layer_status(&[s(TimedOut, true)]), LayerStatus::TimedOut);
        // The unseal agent left out while no keyring opens: the layer is deployed.
        assert_eq!(
            layer_status(&[s(Healthy, true), s(Skipped, false)]),
            LayerStatus::Deployed
        );
        assert_eq!(layer_status(&[]), LayerStatus::Deployed);
    }

    #[test]
    fn a_failure_beats_a_timeout() {
        use ServiceState::*;
        let (a, b) = (s(TimedOut, true), s(Failed, true));
        assert_eq!(outcome(&[&a, &b], false), Outcome::Failed);
        assert_eq!(outcome(&[&a], false), Outcome::TimedOut);
        assert_eq!(outcome(&[], true), Outcome::Failed);
        assert_eq!(outcome(&[], false), Outcome::Deployed);
    }
}
