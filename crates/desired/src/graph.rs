//! The order `up` starts things in: for every service, what must be healthy before it starts.
//! Pure, so "what waits for what" is answered without a swarm (and tested that way).
//!
//! A service waits for what it `uses` (the providers must be healthy: a consumer that starts
//! against a booting broker only crash-loops), and, when it mounts a secret made from Vault (a
//! reader's token, the unseal agent's material), for the Vault step: Vault initialised,
//! unsealed and configured. The Vault step itself waits for the Vault service only: sprocketctl
//! reaches Vault over its private socket, never through the edge router. A routed service does **not** wait
//! for its edge router: Traefik picks routes up whenever either side starts, so the router
//! matters for the route, not for the service's own health; the link is kept (`routed_by`) so
//! that reports can say which routes a failed router leaves unserved.
//!
//! Layers stay the guarantee of order between dependencies — `validate` refuses a service that
//! uses a later layer or reads Vault before Vault's layer, so every service's edge points to the
//! same or an earlier layer — but they are no longer barriers: a data service that needs nothing
//! starts at once, beside the infrastructure.

use crate::state::{service_name, DesiredState};
use serde::Serialize;
use sprocket_spec::model::{Platform, Role};
use std::collections::BTreeMap;

/// A unit of work the executor schedules.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Step {
    /// A service, by its full name (`<ns>_<service>`).
    Service(String),
    /// Vault initialised, unsealed and configured.
    Vault,
    /// A datastore's consumers' logins provisioned (the datastore's full service name).
    Provision(String),
}

impl std::fmt::Display for Step {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Step::Service(s) => f.write_str(s),
            Step::Vault => f.write_str("vault (init/unseal/configure)"),
            Step::Provision(s) => write!(f, "{s} (provision logins)"),
        }
    }
}

/// Why a step waits for another.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum NeedKind {
    /// The spec says the service `uses` it.
    Uses,
    /// The service mounts a secret the Vault step makes.
    Vault,
    /// The Vault step runs against the Vault service.
    VaultService,
    /// The service logs in to a datastore with a login its provisioning makes.
    Provision,
    /// The step starts as soon as this service has been started (its create or update call
    /// returned), not once healthy: it waits for the service to answer on its own, within its
    /// own deadline. A datastore's provisioning so overlaps the
    /// datastore's boot instead of adding to the path after it.
    Started,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Need {
    pub on: Step,
    pub kind: NeedKind,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Graph {
    /// What each step waits for. Every step of the run is a key (with no needs, it starts at
    /// once).
    pub needs: BTreeMap<Step, Vec<Need>>,
    /// Service (full name) → index of its layer: start order among steps ready together, and
    /// the place of each service in reports.
    pub layer: BTreeMap<String, usize>,
    /// Routed service → the edge router that serves its routes (never waited for).
    pub routed_by: BTreeMap<String, String>,
}

impl Graph {
    /// The steps `step` waits for.
    pub fn needs_of(&self, step: &Step) -> &[Need] {
        self.needs.get(step).map(Vec::as_slice).unwrap_or(&[])
    }

    /// Every step that waits, directly or not, for `step`.
    pub fn dependents(&self, step: &Step) -> Vec<Step> {
        let mut out: Vec<Step> = Vec::new();
        let mut frontier = vec![step.clone()];
        while let Some(s) = frontier.pop() {
            for (k, needs) in &self.needs {
                if needs.iter().any(|n| n.on == s) && !out.contains(k) {
                    out.push(k.clone());
                    frontier.push(k.clone());
                }
            }
        }
        out
    }
}

/// The dependency graph of the services the desired state runs. `vault_step`: this run
/// initialises, unseals and configures Vault (sprocketctl reaches it over its private socket or
/// `--vault-addr`, never through the edge router, so the step waits for the Vault service only).
pub fn graph(p: &Platform, d: &DesiredState, vault_step: bool) -> Graph {
    let ns = d.namespace.as_str();
    let mut g = Graph::default();
    let wanted: BTreeMap<&str, usize> = d
        .layers
        .iter()
        .enumerate()
        .flat_map(|(i, l)| l.services.iter().map(move |s| (s.name.as_str(), i)))
        .collect();
    let full = |short: &str| service_name(ns, short);
    let edge = p
        .edge()
        .map(|e| full(&e.name))
        .filter(|e| wanted.contains_key(e.as_str()));
    let vault_service = p
        .services()
        .find(|s| s.role == Some(Role::Vault))
        .map(|s| full(&s.name))
        .filter(|v| wanted.contains_key(v.as_str()));
    let vault_step = vault_step && vault_service.is_some();
    if let (true, Some(v)) = (vault_step, &vault_service) {
        let needs = vec![Need {
            on: Step::Service(v.clone()),
            kind: NeedKind::VaultService,
        }];
        g.needs.insert(Step::Vault, needs);
    }
    for layer in &d.layers {
        for s in &layer.services {
            let mut needs = Vec::new();
            if let Some(model) = p.service(&s.short_name) {
                for used in &model.uses {
                    let provider = full(used);
                    if wanted.contains_key(provider.as_str()) && provider != s.name {
                        needs.push(Need {
                            on: Step::Service(provider),
                            kind: NeedKind::Uses,
                        });
                    }
                }
                if let (false, Some(e)) = (model.routes.is_empty(), &edge) {
                    if e != &s.name {
                        g.routed_by.insert(s.name.clone(), e.clone());
                    }
                }
            }
            if vault_step && s.secrets.iter().any(|f| d.is_vault_made(&f.name)) {
                needs.push(Need {
                    on: Step::Vault,
                    kind: NeedKind::Vault,
                });
            }
            if let Some(model) = p.service(&s.short_name) {
                for a in &model.access {
                    let ds = full(&a.on);
                    // (A datastore with no provisioning is waited for through `uses`.)
                    let Some(pr) = d.provisions.iter().find(|p| p.service == ds) else {
                        continue;
                    };
                    if !pr.in_swarm || wanted.contains_key(ds.as_str()) {
                        needs.push(Need {
                            on: Step::Provision(ds),
                            kind: NeedKind::Provision,
                        });
                    }
                }
            }
            g.layer.insert(s.name.clone(), wanted[s.name.as_str()]);
            g.needs.insert(Step::Service(s.name.clone()), needs);
        }
    }
    // A datastore's provisioning: once the datastore has started (the task waits for it to
    // answer) and, where its passwords are made at the Vault step, after that.
    for pr in &d.provisions {
        let mut needs = Vec::new();
        if pr.in_swarm {
            if !wanted.contains_key(pr.service.as_str()) {
                continue;
            }
            needs.push(Need {
                on: Step::Service(pr.service.clone()),
                kind: NeedKind::Started,
            });
        } else if !d
            .layers
            .iter()
            .any(|l| l.name == pr.layer && !l.services.is_empty())
        {
            // An external's provisioning runs with the layer of its first consumer.
            continue;
        }
        if vault_step && pr.secrets().iter().any(|s| d.is_vault_made(s)) {
            needs.push(Need {
                on: Step::Vault,
                kind: NeedKind::Vault,
            });
        }
        g.needs.insert(Step::Provision(pr.service.clone()), needs);
    }
    g
}
