//! What `check` looks at, derived from the spec and its desired state alone: every service's
//! replicas, every route × every host of the environment, and for each service what it must
//! reach from its own networks (what it `uses`), what it must not (every service it shares
//! no network with), and the datastore logins of its own it must be able to use. Nothing here
//! is written by users.

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

/// A login the consumer holds in a datastore (its `access`): the probe task logs in with the
/// files the consumer's own task mounts (the same Docker secrets, at the same paths), from its
/// networks, as it would.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Login {
    /// The datastore, as the spec names it.
    pub datastore: String,
    pub kind: DatastoreKind,
    pub host: String,
    pub port: u16,
    /// The login's name (S3: its key id is in `key_file`).
    pub user: String,
    pub password_file: String,
    /// S3: the file with the access key id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_file: Option<String>,
    /// RabbitMQ's vhost, PostgreSQL's database.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sslmode: Option<model::SslMode>,
    /// S3: the endpoint URL and signing region.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// PostgreSQL, RabbitMQ: the login's second user, when its consumer takes the user name
    /// from its env's `{access.…user}`: which one the consumer uses depends on the version of
    /// the password it mounts ([`Login::as_mounted`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alternate: Option<String>,
}

impl Login {
    /// The login as the consumer's task uses it, with version `version` of its password
    /// mounted: the user that version makes current.
    pub fn as_mounted(mut self, version: Option<u64>) -> Login {
        if let Some(alternate) = self.alternate.take() {
            self.user = sprocket_desired::provision::current_login(&self.user, &alternate, version)
                .to_string();
        }
        self
    }
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
    /// Its logins of its own (`access`), tried with its credentials.
    pub logins: Vec<Login>,
    /// The secrets (the spec's names) the probe mounts for them, where the consumer does.
    pub secrets: Vec<String>,
}

/// The logins of `s`'s `access` whose datastore runs here (a swarm service in `running`, or
/// an external), and the secrets they read.
fn logins(
    p: &Platform,
    s: &model::Service,
    running: &dyn Fn(&str) -> bool,
) -> (Vec<Login>, Vec<String>) {
    let mut logins = Vec::new();
    let mut secrets = Vec::new();
    for a in &s.access {
        let (host, port, ds) = if let Some(t) = p.service(&a.on).filter(|t| running(&t.name)) {
            match (service_port(t), &t.datastore) {
                (Some(port), Some(d)) => (a.on.clone(), port, d),
                _ => continue,
            }
        } else if let Some(e) = p.externals.iter().find(|e| e.name == a.on) {
            match (external_target(e), &e.datastore) {
                (Some((host, Some(port))), Some(d)) => (host, port, d),
                _ => continue,
            }
        } else {
            continue;
        };
        let s3 = a.kind == DatastoreKind::S3;
        logins.push(Login {
            datastore: a.on.clone(),
            kind: a.kind,
            host,
            port,
            user: a.user.clone(),
            password_file: a.password_file.clone(),
            key_file: s3.then(|| a.key_file.clone()),
            scope: match a.kind {
                DatastoreKind::Rabbitmq => Some(a.vhost.clone()),
                DatastoreKind::Postgres => Some(a.database.clone()),
                _ => None,
            },
            sslmode: (a.kind == DatastoreKind::Postgres).then_some(ds.sslmode),
            endpoint: s3.then(|| ds.endpoint.clone()),
            region: s3.then(|| ds.region.clone()),
            alternate: a.alternate.clone(),
        });
        secrets.push(a.secret.clone());
        if s3 {
            secrets.push(a.key_secret.clone());
        }
    }
    secrets.sort();
    secrets.dedup();
    (logins, secrets)
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
        let (logins, secrets) = logins(p, s, &|name| specs.contains_key(name));
        reach.push(ReachProbe {
            service: s.name.clone(),
            networks: mine.iter().map(|n| n.to_string()).collect(),
            hosts: spec.hosts.clone(),
            targets,
            logins,
            secrets,
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
