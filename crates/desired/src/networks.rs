//! The overlay networks of the platform, derived from what each service `uses`, routes and
//! provisions — never written by users: one network per consumer → provider edge (joined by those
//! two only), one per routed service (joined by it and the edge router), the edge router → Docker
//! API proxy edge, each datastore's provisioning network, and (backed up) Vault's and Redis's backup
//! ones, and the agent's where it watches the scheduled backups' runner.

use crate::provision::Provision;
use crate::state::routed_backend;
use sprocket_spec::model::{self, Platform};
use sprocket_spec::names;
use std::collections::{BTreeMap, BTreeSet};

/// What [`derive`] finds.
pub(crate) struct Derived<'a> {
    /// Service (its name in the spec) → the networks it joins.
    pub(crate) joins: BTreeMap<&'a str, BTreeSet<String>>,
    /// Network → (the layer that owns it, its purpose).
    pub(crate) nets: BTreeMap<String, (String, String)>,
}

pub(crate) fn derive<'a>(p: &'a Platform, provisions: &[Provision]) -> Derived<'a> {
    let ns = p.environment.namespace.as_str();
    let edge = p.edge();
    let proxy = p.docker_api_proxy();
    // service → networks it joins
    let mut joins: BTreeMap<&'a str, BTreeSet<String>> = BTreeMap::new();
    // network → (owning layer, purpose)
    let mut nets: BTreeMap<String, (String, String)> = BTreeMap::new();
    let mut link = |consumer: &'a model::Service, provider: &'a model::Service, owner: &str| {
        let net = names::pair_network(ns, &consumer.name, &provider.name);
        let purpose = format!("{}-to-{}", consumer.name, provider.name);
        nets.insert(net.clone(), (owner.to_string(), purpose));
        joins
            .entry(provider.name.as_str())
            .or_default()
            .insert(net.clone());
        joins.entry(consumer.name.as_str()).or_default().insert(net);
    };
    if let Some(edge) = edge {
        // The edge router reads the Docker API through the proxy: one more used service.
        if let Some(proxy) = proxy {
            link(edge, proxy, &proxy.layer);
        }
    }
    for consumer in p.services() {
        for used in &consumer.uses {
            if let Some(provider) = p.service(used) {
                // A routed service that uses the edge router (the agent, which checks routes
                // through it) reaches it on its edge network: no second network for the pair.
                if edge.is_some_and(|e| e.name == provider.name && routed_backend(e, consumer)) {
                    continue;
                }
                link(consumer, provider, &provider.layer);
            }
        }
    }
    // A datastore's provisioning network: the one-off task that makes its consumers' logins
    // joins it, nothing else does. Always there, so the first consumer's access never changes
    // (and restarts) the datastore.
    for ds in p.services().filter(|s| {
        provisions
            .iter()
            .any(|pr| pr.in_swarm && pr.datastore == s.name)
    }) {
        let net = names::provision_network(ns, &ds.name);
        nets.insert(
            net.clone(),
            (ds.layer.clone(), format!("provision-{}", ds.name)),
        );
        joins.entry(ds.name.as_str()).or_default().insert(net);
    }
    // An external datastore's: the task alone joins it, for its way out of the swarm.
    for pr in provisions.iter().filter(|pr| !pr.in_swarm) {
        nets.insert(
            pr.network.clone(),
            (pr.layer.clone(), format!("provision-{}", pr.datastore)),
        );
    }
    // Where the environment is backed up, Vault and each Redis join a network of their own with
    // the backup task (the other datastores it reaches on their provisioning networks).
    if p.environment.backup.is_some() {
        for s in p.services().filter(|s| {
            s.role == Some(model::Role::Vault)
                || s.datastore
                    .as_ref()
                    .is_some_and(|d| d.kind == model::DatastoreKind::Redis)
        }) {
            let net = names::backup_network(ns, &s.name);
            nets.insert(net.clone(), (s.layer.clone(), format!("backup-{}", s.name)));
            joins.entry(s.name.as_str()).or_default().insert(net);
        }
    }
    // Where the agent watches the scheduled backups, it reads the runner's status on its own
    // backup network, which the runner joins.
    if let Some((net, agent)) = crate::checks::agent_backup_network(p).zip(p.unseal_agent()) {
        nets.insert(
            net.clone(),
            (agent.layer.clone(), format!("backup-{}", agent.name)),
        );
        joins.entry(agent.name.as_str()).or_default().insert(net);
    }
    if let Some(edge) = edge {
        // One edge network per routed service: Traefik reaches each, they never reach each
        // other. They belong to the edge's layer, which Traefik joins them from.
        for s in p.services().filter(|s| routed_backend(edge, s)) {
            let net = names::edge_network(ns, &s.name);
            nets.insert(
                net.clone(),
                (edge.layer.clone(), format!("edge-{}", s.name)),
            );
            joins
                .entry(edge.name.as_str())
                .or_default()
                .insert(net.clone());
            joins.entry(s.name.as_str()).or_default().insert(net);
        }
    }
    Derived { joins, nets }
}
