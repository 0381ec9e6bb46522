//! What `check` looks at, derived from the spec and its desired state alone: every service's
//! replicas, every route × every host of the environment, and for each service what it must
//! reach from its own networks (what it `uses`) and what it must not (every service it shares
//! no network with). Nothing here is written by users.

use serde::{Deserialize, Serialize};
pub use sprocket_desired::checks::{RouteProbe, ServiceCheck};
use sprocket_desired::DesiredState;
use sprocket_spec::model::{self, DatastoreKind, Platform, Role};
use std::collections::{BTreeMap, BTreeSet};

/// A host no route names: the edge router must answer it with its own 404.
pub const UNKNOWN_HOST: &str = "sprocketctl-check.invalid";

#[derive(Debug, Clone, Serialize)]
pub struct CheckPlan {
    pub namespace: String,
    pub services: Vec<ServiceCheck>,
    pub routes: Vec<RouteProbe>,
    /// One probe per service: run on exactly its networks.
    pub reach: Vec<ReachProbe>,
    /// Service → the swarm services it uses: whose failure explains whose.
    pub uses: BTreeMap<String, Vec<String>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Expect {
    /// It uses the target: the name resolves and (with a port) a connection is accepted.
    Reachable,
    /// It shares no network with the target: the name must not even resolve.
    Isolated,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Target {
    /// The service or external, as the spec names it.
    pub name: String,
    /// What the probe resolves: the service's name on its networks, or the external's host.
    pub host: String,
    pub port: Option<u16>,
    pub expect: Expect,
}

#[derive(Debug, Clone, Serialize)]
pub struct ReachProbe {
    /// The consumer, as the spec names it.
    pub service: String,
    /// The networks it joins (their swarm names): the probe joins exactly these.
    pub networks: Vec<String>,
    /// Its extra host entries (`host-gateway` for externals on the Docker host).
    pub hosts: Vec<String>,
    pub targets: Vec<Target>,
}

/// The port a consumer talks to a service on: a datastore's client port, Vault's API, the
/// Docker API proxy's, else its route's or its first published port; `None`: only the name is
/// checked.
pub fn service_port(s: &model::Service) -> Option<u16> {
    if let Some(d) = &s.datastore {
        return match d.kind {
            DatastoreKind::Redis => Some(6379),
            DatastoreKind::Rabbitmq => Some(5672),
            DatastoreKind::Postgres => Some(5432),
            DatastoreKind::S3 => None,
        };
    }
    match s.role {
        Some(Role::Vault) => {
            return Some(
                s.routes
                    .iter()
                    .find_map(|r| r.port)
                    .unwrap_or(sprocket_desired::contract::DEFAULT_VAULT_PORT),
            )
        }
        Some(Role::DockerApiProxy) => return Some(sprocket_desired::contract::DOCKER_API_PORT),
        _ => {}
    }
    s.routes
        .iter()
        .find_map(|r| r.port)
        .or_else(|| s.ports.first().map(|p| p.target))
}

/// An external's host and port as its consumers reach it.
fn external_target(e: &model::External) -> Option<(String, Option<u16>)> {
    if let Some(h) = &e.host {
        return Some((h.clone(), e.port.and_then(|p| u16::try_from(p).ok())));
    }
    let url = e.endpoint.as_deref()?;
    let host = sprocket_spec::values::url_host(url)?;
    let rest = url.split_once("://")?.1;
    let authority = rest.split(['/', '?', '#']).next()?;
    let port = authority
        .rsplit_once(':')
        .and_then(|(_, p)| p.parse().ok())
        .or(match url.starts_with("https://") {
            true => Some(443),
            false => Some(80),
        });
    Some((host.to_string(), port))
}

pub fn plan(p: &Platform, d: &DesiredState) -> CheckPlan {
    let w = sprocket_desired::checks::watch(p);
    let specs: BTreeMap<&str, &sprocket_desired::state::ServiceSpec> =
        d.services().map(|s| (s.short_name.as_str(), s)).collect();
    let nets = |name: &str| -> BTreeSet<&str> {
        specs
            .get(name)
            .map(|s| s.networks.iter().map(|n| n.network.as_str()).collect())
            .unwrap_or_default()
    };
    let mut reach = Vec::new();
    for s in p.services().filter(|s| specs.contains_key(s.name.as_str())) {
        let spec = specs[s.name.as_str()];
        let mine = nets(&s.name);
        let mut targets = Vec::new();
        // What it talks to: its `uses`, and for the edge router the Docker API proxy (the
        // roots' graph also has the edge for routed services: reached by users, not by them).
        let proxy = p
            .docker_api_proxy()
            .filter(|_| s.role == Some(Role::Edge))
            .map(|x| &x.name);
        for u in s
            .uses
            .iter()
            .chain(proxy)
            .filter(|u| specs.contains_key(u.as_str()))
        {
            let t = p.service(u).expect("a used service is in the spec");
            targets.push(Target {
                name: u.clone(),
                host: u.clone(),
                port: service_port(t),
                expect: Expect::Reachable,
            });
        }
        for e in s
            .uses_external
            .iter()
            .filter_map(|x| p.externals.iter().find(|e| &e.name == x))
        {
            if let Some((host, port)) = external_target(e) {
                targets.push(Target {
                    name: e.name.clone(),
                    host,
                    port,
                    expect: Expect::Reachable,
                });
            }
        }
        for other in p.services() {
            if other.name == s.name || !specs.contains_key(other.name.as_str()) {
                continue;
            }
            if mine.is_disjoint(&nets(&other.name)) {
                targets.push(Target {
                    name: other.name.clone(),
                    host: other.name.clone(),
                    port: None,
                    expect: Expect::Isolated,
                });
            }
        }
        reach.push(ReachProbe {
            service: s.name.clone(),
            networks: mine.iter().map(|n| n.to_string()).collect(),
            hosts: spec.hosts.clone(),
            targets,
        });
    }
    CheckPlan {
        namespace: d.namespace.clone(),
        services: w.services,
        routes: w.routes,
        reach,
        uses: w.uses,
    }
}
