//! The executor: runs a plan through the Docker adapter, starting each service as soon as what
//! it needs is healthy, and returns only when every changed service has converged.
//!
//! Honest by construction: every task we start carries the deploy id; a service is healthy when
//! as many tasks *of this deploy* run (and pass their health checks — Swarm reports `running`
//! only after the first healthy check) as it wants, and converged when no task of an earlier
//! version is left alive. Replica counts are not trusted (an old task keeps N/N). Unchanged
//! services are gated on their current tasks, so a re-run after a failure never walks past a
//! broken service. A failed or rejected task, a Swarm rollback or the deadline fails a service;
//! what needs it is not started, and everything else carries on.
//!
//! - [`schedule`]: what may start now, what waits, what will not start and why (pure);
//! - [`gate`]: one service's verdict from its tasks (pure);
//! - [`run`]: the deploy's state and the loop that carries the decisions out;
//! - [`prepare`], [`vault`] with [`secrets`], [`provision`], [`cleanup`]: networks/configs/
//!   secrets before, the Vault step (and the Docker secrets made from Vault) and the datastores'
//!   logins (a one-off task each) during, removals after (and `down`'s teardown);
//! - [`routed`]: after converging, until the edge router serves the routes of what changed;
//! - [`report`]: what `up` prints.

mod cleanup;
mod gate;
mod prepare;
pub mod provision;
mod report;
mod routed;
mod run;
mod schedule;
mod secrets;
mod vault;

pub use cleanup::Teardown;
pub use provision::ProvisionReport;
pub use report::{LayerStatus, Outcome, ServiceAction, ServiceState, UpReport};
pub use routed::RoutesServed;

use crate::output::Progress;
use sprocket_desired::plan::{Observed, Plan};
use sprocket_desired::DesiredState;
use sprocket_docker::{Engine, EngineError};
use sprocket_spec::model::Platform;
use std::collections::HashMap;
use std::time::Duration;

pub struct Options {
    /// How long each service may take, from its start, to run healthy with its old tasks gone.
    pub timeout: Duration,
    pub prune: bool,
    pub progress: Progress,
    /// Vault to initialise, unseal and configure once its service is up.
    pub vault: Option<VaultStep>,
    /// The spec file deployed (its SHA-256 goes into the scheduled backups' manifests).
    pub spec_file: std::path::PathBuf,
}

pub struct VaultStep {
    pub client: sprocket_vault::VaultClient,
    pub config: sprocket_spec::model::Vault,
    pub identity: Option<std::path::PathBuf>,
    /// The secrets to keep in Vault (source values checked before anything changed).
    pub secrets: Vec<sprocket_secrets::sync::Want>,
    /// Secrets to give a new value (`secrets rotate`).
    pub rotate: Vec<String>,
}

/// Applies `plan` (computed once by the caller from `desired` and `observed`).
pub async fn up(
    engine: &Engine,
    platform: &Platform,
    desired: &DesiredState,
    observed: Observed,
    plan: Plan,
    secret_lengths: &HashMap<String, (sprocket_spec::model::Alphabet, usize)>,
    opts: &Options,
) -> Result<UpReport, EngineError> {
    let mut report = run::Deploy::new(engine, platform, desired, &observed, &plan, opts)
        .run(secret_lengths)
        .await?;
    // Converged: the edge router serves the routes of what changed (a local engine's edge).
    if report.outcome == Outcome::Deployed && engine.endpoint.starts_with("unix://") {
        routed::after_deploy(platform, &desired.namespace, &mut report, &opts.progress).await;
    }
    Ok(report)
}
