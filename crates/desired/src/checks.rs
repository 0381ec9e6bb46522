//! What is watched, derived from the spec alone (no network of the desired state needed): every
//! service with its replicas and error budget, every route × host, who uses whom. `check` adds
//! its reach probes to it (`sprocket_check::plan`); the unseal agent gets it, with the
//! environment's `alerts`, as the document it watches the platform by
//! ([`agent_env::MONITOR`](crate::contract::agent_env::MONITOR)).

use crate::state::service_name;
use serde::{Deserialize, Serialize};
use sprocket_spec::model::{Alerts, Mode, Platform, Role};
use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServiceCheck {
    /// The swarm's name (`<namespace>_<service>`).
    pub name: String,
    /// The spec's.
    pub service: String,
    pub layer: String,
    pub desired: usize,
    /// Error lines a day it may write before `check` warns.
    pub errors_per_day: u64,
    /// Its uptime target in percent, for the SLA report.
    pub slo: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouteProbe {
    pub service: String,
    pub router: String,
    pub host: String,
    /// The route's path prefix, or `/`.
    pub path: String,
    /// Over HTTPS (the environment's ACME routers), else HTTP.
    pub tls: bool,
}

/// What is watched of a platform.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Watch {
    pub namespace: String,
    pub environment: String,
    pub services: Vec<ServiceCheck>,
    pub routes: Vec<RouteProbe>,
    /// Service → the swarm services it depends on: what it uses, the edge router for a
    /// routed service (its users reach it through it), the Docker API proxy for the edge.
    pub uses: BTreeMap<String, Vec<String>>,
}

/// What the unseal agent watches and where it sends alerts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Monitor {
    pub watch: Watch,
    pub alerts: sprocket_spec::model::Alerts,
    /// The edge router's name on the agent's networks (it reaches routes through it, ports 80
    /// and 443 inside the swarm).
    pub edge: Option<String>,
    /// The Vault service's name and port, whose seal is watched.
    pub vault: Option<(String, u16)>,
    /// Where the agent serves its status page, when a route of its own forwards there.
    #[serde(default)]
    pub status_port: Option<u16>,
    /// The scheduled backups' runner's status URL, where a runner takes them
    /// ([`watches_backups`]). Left out when none, so an agent with no runner to watch keeps its
    /// document (and its task) across this version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backups: Option<String>,
}

/// The scheduled backups' runner: its logical name (the service is `<namespace>_<this>`).
pub const BACKUP_RUNNER: &str = "backup-schedule";
/// The port the runner says how the backups go on (`GET /`: times and outcomes, no value).
pub const BACKUP_RUNNER_PORT: u16 = 8091;

/// Whether the agent watches the scheduled backups: it watches the platform, and a runner
/// takes daily backups (not in a drill's copy). It then shares a network with the runner —
/// the agent's backup network — and nothing else does.
pub fn watches_backups(p: &Platform) -> bool {
    p.environment.backup.as_ref().is_some_and(|b| b.scheduled)
        && p.environment.scratch_of.is_none()
        && monitor_wanted(p)
}

/// The network on which the agent reads the runner's status (its backup network), where it
/// watches the scheduled backups.
pub fn agent_backup_network(p: &Platform) -> Option<String> {
    watches_backups(p)
        .then(|| p.unseal_agent())
        .flatten()
        .map(|a| sprocket_spec::names::backup_network(&p.environment.namespace, &a.name))
}

/// The agent that watches: its alerts, or a status page of its own.
fn monitor_wanted(p: &Platform) -> bool {
    p.environment.alerts.is_some() || status_port(p).is_some()
}

fn status_port(p: &Platform) -> Option<u16> {
    p.services()
        .find(|s| s.role == Some(Role::UnsealAgent))
        .filter(|a| a.routes.iter().any(|r| r.internal.is_none()))
        .map(|_| Alerts::STATUS_PORT)
}

pub fn watch(p: &Platform) -> Watch {
    let env = &p.environment;
    let ns = env.namespace.as_str();
    let mut services = Vec::new();
    let mut routes = Vec::new();
    let mut uses = BTreeMap::new();
    let proxy = p.docker_api_proxy().map(|x| x.name.clone());
    let edge = p.edge().map(|x| x.name.clone());
    for s in p.services() {
        services.push(ServiceCheck {
            name: service_name(ns, &s.name),
            service: s.name.clone(),
            layer: s.layer.clone(),
            desired: match s.mode {
                Mode::Replicated(n) => n as usize,
                Mode::Global => 1,
            },
            errors_per_day: s.errors_per_day,
            slo: s.slo,
        });
        // A service with no replica on purpose (an app of a drill's scratch copy) serves none
        // of its routes: they are not probed.
        let serving = s.mode != Mode::Replicated(0);
        for r in s.routes.iter().filter(|r| r.internal.is_none() && serving) {
            for h in &r.hosts {
                routes.push(RouteProbe {
                    service: s.name.clone(),
                    router: r.router.clone(),
                    host: h.clone(),
                    path: r.path.clone().unwrap_or_else(|| "/".into()),
                    tls: env.tls.acme() && !sprocket_spec::values::is_local_host(h),
                });
            }
        }
        let derived = proxy.clone().filter(|_| s.role == Some(Role::Edge));
        let routed = edge
            .clone()
            .filter(|e| *e != s.name && s.routes.iter().any(|r| r.internal.is_none()));
        let mut used: Vec<String> = s
            .uses
            .iter()
            .cloned()
            .chain(derived)
            .filter(|u| p.service(u).is_some())
            .collect();
        used.extend(routed.filter(|e| !used.contains(e)));
        uses.insert(s.name.clone(), used);
    }
    Watch {
        namespace: ns.to_string(),
        environment: env.name.clone(),
        services,
        routes,
        uses,
    }
}

/// The agent's document, where the environment has `alerts` or the agent a route (its status
/// page; it watches without sending alerts then).
pub fn monitor(p: &Platform) -> Option<Monitor> {
    let status_port = status_port(p);
    let alerts = p
        .environment
        .alerts
        .clone()
        .or_else(|| status_port.map(|_| Alerts::watch_only()))?;
    Some(Monitor {
        status_port,
        watch: watch(p),
        alerts,
        edge: p.edge().map(|e| e.name.clone()),
        vault: p
            .services()
            .find(|s| s.role == Some(Role::Vault))
            .map(|v| (v.name.clone(), crate::state::vault_port(v))),
        backups: watches_backups(p).then(|| {
            format!(
                "http://{}:{BACKUP_RUNNER_PORT}/",
                service_name(&p.environment.namespace, BACKUP_RUNNER)
            )
        }),
    })
}
