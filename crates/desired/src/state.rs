//! The validated platform → the Swarm objects it needs, per layer, in a normalised form that
//! the Docker adapter can both create from and read back into (so `plan` compares like with like).
//!
//! Derived here, never written by users: object names, ownership labels, the overlay networks
//! ([`crate::networks`]), Traefik arguments and labels, content-addressed config names,
//! restart/update policies and log rotation.

use crate::contract::{
    self, agent_env, vault_socket, DEFAULT_VAULT_PORT, DOCKER_API_PORT, SECRETS_DIR,
};
use crate::labels as L;
use crate::{socket_proxy, traefik};
use serde::Serialize;
use sha2::{Digest, Sha256};
use sprocket_spec::model::{self, EndpointMode, Platform, PublishMode, Role};
use sprocket_spec::names::{self, secret_vault_path, FINGERPRINT_KEY_SECRET};
use std::collections::{BTreeMap, BTreeSet};

#[derive(Debug, Clone, Serialize)]
pub struct DesiredState {
    pub namespace: String,
    pub environment: String,
    pub layers: Vec<DesiredLayer>,
    /// What Vault should hold (mounts, policies, auth, service tokens), when it runs here.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vault: Option<crate::vault::VaultConfig>,
    /// Each datastore's consumers' logins, provisioned by `up` from inside the swarm.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub provisions: Vec<crate::provision::Provision>,
}

#[derive(Debug, Clone, Serialize)]
pub struct DesiredLayer {
    pub name: String,
    pub networks: Vec<NetworkSpec>,
    pub configs: Vec<ConfigSpec>,
    /// Secrets the layer's services mount (values are never part of the desired state).
    pub secrets: Vec<SecretRef>,
    pub services: Vec<ServiceSpec>,
    pub disabled: Vec<model::Disabled>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct NetworkSpec {
    pub name: String,
    /// Why it exists: `edge`, `docker-api`, or `to-<service>`.
    pub purpose: String,
    pub labels: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ConfigSpec {
    /// `<ns>_<service>-<file stem>-<12 hex of the content hash>`: configs are immutable in
    /// Swarm, so a changed file is a new config and the service is repointed.
    pub name: String,
    pub labels: BTreeMap<String, String>,
    #[serde(skip)]
    pub content: Vec<u8>,
    /// The file on disk, as the spec's path reached it: relative to the current directory when
    /// that path was (the compose export makes it absolute). `None` for a config sprocketctl
    /// derives (Vault's private listener), which no file holds.
    #[serde(skip)]
    pub source: Option<String>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct SecretRef {
    /// Logical name from the spec.
    pub name: String,
    /// Docker secret names for it start with this (`<ns>_<name>`); the suffix is a content hash.
    pub prefix: String,
    pub source: model::SecretSource,
    /// Ownership labels for the Docker secrets made for it.
    pub labels: BTreeMap<String, String>,
    /// Where Vault keeps it, when the Vault step of `up` makes it from Vault: the spec's
    /// generated and source secrets on a platform with Vault, and the fingerprints' key.
    pub vault: Option<sprocket_spec::names::VaultPath>,
}

impl SecretRef {
    /// Made by the Vault step of `up` (from Vault or the keyring), not before it.
    pub fn made_at_vault_step(&self) -> bool {
        self.vault.is_some()
            || matches!(
                self.source,
                model::SecretSource::Vault | model::SecretSource::VaultToken
            )
    }
}

/// A service as we set it, and as we read it back from the engine. Only fields we own appear
/// here, so engine defaults and rewrites never show up as changes.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ServiceSpec {
    pub name: String,
    #[serde(skip)]
    pub short_name: String,
    #[serde(skip)]
    pub layer: String,
    pub labels: BTreeMap<String, String>,
    pub image: String,
    pub command: Option<Vec<String>>,
    pub args: Option<Vec<String>>,
    pub env: BTreeMap<String, String>,
    pub hostname: Option<String>,
    /// Extra lines of the task's `/etc/hosts`, as the Engine API takes them: `IP NAME`
    /// (`host-gateway host.docker.internal` where it uses an external on the Docker host).
    /// Left out of the document when empty: the spec hash of every other service stays as it
    /// was before this field existed (no update after an upgrade).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub hosts: Vec<String>,
    pub user: Option<String>,
    pub workdir: Option<String>,
    pub mounts: Vec<MountSpec>,
    pub configs: Vec<FileRef>,
    pub secrets: Vec<FileRef>,
    pub networks: Vec<NetworkAttachment>,
    pub endpoint_mode: String,
    pub ports: Vec<PublishedPort>,
    pub mode: model::Mode,
    pub health: Option<HealthSpec>,
    pub resources: model::Resources,
    pub placement: Vec<String>,
    pub logging: model::Logging,
    pub restart: RestartSpec,
    pub update: UpdateSpec,
    pub stop_grace_period_ns: Option<u64>,
    /// The `{access.<datastore>.user}` references its `env` holds: each names one of two
    /// logins, chosen by the version of the password the task mounts ([`Self::env_at`]). Not
    /// part of the document (nor its hash): the env keeps the reference, the engine gets
    /// the user.
    #[serde(skip)]
    pub env_logins: Vec<crate::env_logins::EnvLogin>,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq, PartialOrd, Ord)]
pub struct MountSpec {
    /// `volume` or `bind`.
    pub kind: String,
    pub source: String,
    pub target: String,
    pub read_only: bool,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq, PartialOrd, Ord)]
pub struct FileRef {
    /// Config: the config's name. Secret: the logical secret name (the versioned Docker name is
    /// chosen when applying).
    pub name: String,
    pub target: String,
    pub mode: u32,
    /// The file's owner in the container (root unless the spec names the image's user).
    pub uid: u32,
    pub gid: u32,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq, PartialOrd, Ord)]
pub struct NetworkAttachment {
    pub network: String,
    pub aliases: Vec<String>,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq, PartialOrd, Ord)]
pub struct PublishedPort {
    pub target: u16,
    pub published: u16,
    pub protocol: String,
    /// `ingress` or `host`.
    pub mode: String,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct HealthSpec {
    /// `["CMD", ...]`.
    pub test: Vec<String>,
    pub interval_ns: u64,
    pub timeout_ns: u64,
    pub retries: u64,
    pub start_period_ns: u64,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct RestartSpec {
    pub condition: String,
    pub delay_ns: u64,
    pub max_attempts: u64,
    pub window_ns: u64,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct UpdateSpec {
    pub parallelism: u64,
    /// `stop-first` or `start-first`.
    pub order: String,
    /// What Swarm does when an update fails: `rollback`.
    pub failure_action: String,
    pub monitor_ns: u64,
}

impl ServiceSpec {
    /// A short, stable hash of everything we set (labels aside from the hash itself).
    pub fn hash(&self) -> String {
        let mut copy = self.clone();
        copy.labels.remove(L::SPEC_HASH);
        short_hash(serde_json::to_vec(&copy).expect("serialisable").as_slice())
    }
}

/// 12 hex digits of SHA-256.
pub fn short_hash(bytes: &[u8]) -> String {
    hex::encode(&Sha256::digest(bytes)[..6])
}

/// The logical name of the unseal agent's material (a Docker secret made from the keyring).
/// Validation reserves it (a spec cannot declare or mount such a secret).
pub const UNSEAL_SECRET: &str = sprocket_spec::names::UNSEAL_SECRET;

/// The logical name of a service's Vault token secret.
pub fn token_secret(short_service: &str) -> String {
    format!("{}{short_service}", contract::TOKEN_SECRET_PREFIX)
}

/// Where a service finds its Vault token.
pub const TOKEN_TARGET: &str = "/run/secrets/vault-token";

impl DesiredState {
    /// The secret `logical`, as the first layer that mounts it lists it.
    pub fn secret(&self, logical: &str) -> Option<&SecretRef> {
        self.layers
            .iter()
            .flat_map(|l| &l.secrets)
            .find(|s| s.name == logical)
    }

    /// True for secrets that `up` makes at its Vault step: the unseal material, the services'
    /// tokens and, on a platform with Vault, every generated or source secret (from Vault).
    pub fn is_vault_made(&self, logical: &str) -> bool {
        self.secret(logical)
            .is_some_and(SecretRef::made_at_vault_step)
            || logical == UNSEAL_SECRET
            || logical.starts_with(contract::TOKEN_SECRET_PREFIX)
    }
}

/// The Docker name of version `version` of a secret (`<ns>_<name>-v<version>`): a version, never
/// anything derived from the value.
pub fn versioned_secret_name(prefix: &str, version: u64) -> String {
    format!("{prefix}-v{version}")
}

/// The version a Docker secret's name says (`…-v3`, or `…-v3-r1a2b3c` for one made beside a
/// stale one): `None` for a name of no version (an operator's own secret).
pub fn secret_name_version(name: &str) -> Option<u64> {
    let (head, tail) = name.rsplit_once("-v")?;
    match tail.parse() {
        Ok(v) => Some(v),
        // `-v<N>-r<hex>`: the version is before the `-r`.
        Err(_) if tail.contains("-r") => {
            let (n, fp) = tail.split_once("-r")?;
            (fp.chars().all(|c| c.is_ascii_hexdigit()) && !head.is_empty())
                .then(|| n.parse().ok())
                .flatten()
        }
        Err(_) => None,
    }
}

pub fn service_name(ns: &str, svc: &str) -> String {
    format!("{ns}_{svc}")
}

pub fn volume_name(ns: &str, vol: &str) -> String {
    format!("{ns}_{vol}")
}

pub fn secret_prefix(ns: &str, secret: &str) -> String {
    format!("{ns}_{secret}")
}

/// Services that read Vault and run here (the model's `vault.readers`).
pub fn vault_readers(p: &Platform) -> Vec<&str> {
    p.vault
        .iter()
        .flat_map(|v| v.readers.keys())
        .map(String::as_str)
        .collect()
}

/// Who holds a periodic Vault token the agent renews: the services that read Vault, and the
/// backups' holder where the environment is backed up and an unseal agent runs (it keeps the
/// token as a secret of its own and renews it; without it the token would lapse unseen).
pub fn token_holders(p: &Platform) -> Vec<&str> {
    let mut holders = vault_readers(p);
    if p.backups_hold_a_vault_token() {
        holders.push(sprocket_spec::names::BACKUP_TOKEN_HOLDER);
    }
    holders
}

/// Builds the desired state of the platform in its environment.
pub fn desired(p: &Platform) -> DesiredState {
    let env = &p.environment;
    let ns = env.namespace.as_str();
    let base = |layer: &str, name: &str| -> BTreeMap<String, String> {
        [
            (L::MANAGED_BY, L::MANAGED_BY_VALUE),
            (L::NAMESPACE, ns),
            (L::ENVIRONMENT, env.name.as_str()),
            (L::LAYER, layer),
            (L::NAME, name),
            (L::STACK_NAMESPACE, ns),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    };

    let proxy = p.docker_api_proxy();
    let provisions = crate::provision::provisions(p);
    let crate::networks::Derived { joins, nets } = crate::networks::derive(p, &provisions);

    let mut layers = Vec::new();
    for layer in &p.layers {
        let networks = nets
            .iter()
            .filter(|(_, (l, _))| l == &layer.name)
            .map(|(name, (l, purpose))| NetworkSpec {
                name: name.clone(),
                purpose: purpose.clone(),
                labels: base(l, purpose),
            })
            .collect();
        let mut configs = Vec::new();
        let mut secrets: Vec<SecretRef> = Vec::new();
        let mut services = Vec::new();
        for s in &layer.services {
            // A Redis datastore runs the script that points it at its aclfile.
            let acl = crate::redis_acl::derive(s);
            let mut file_configs = Vec::new();
            for c in &s.configs {
                // Validation checks the name's length with the same stem.
                let stem = sprocket_spec::names::config_stem(&c.file);
                let name = format!("{ns}_{}-{stem}-{}", s.name, short_hash(&c.content));
                let mut labels = base(&layer.name, &format!("{}/{}", s.name, c.file));
                labels.insert(L::SPEC_HASH.into(), short_hash(&c.content));
                configs.push(ConfigSpec {
                    name: name.clone(),
                    labels,
                    content: c.content.clone(),
                    source: Some(c.path.display().to_string()),
                });
                file_configs.push(FileRef {
                    name,
                    target: c.target.clone(),
                    mode: c.mode,
                    uid: 0,
                    gid: 0,
                });
            }
            for m in &s.secrets {
                if !listed(&layers, &secrets, &m.name) {
                    let spec = p.secrets.iter().find(|x| x.name == m.name);
                    let (source, vault) = if m.name == FINGERPRINT_KEY_SECRET {
                        let at = secret_vault_path(ns, FINGERPRINT_KEY_SECRET, None, None);
                        (model::SecretSource::FingerprintKey, Some(at))
                    } else {
                        let source = spec
                            .map(|x| x.source)
                            .unwrap_or(model::SecretSource::Manual);
                        // On a platform with Vault, generated and source values live there.
                        let kept = p.vault.is_some()
                            && matches!(
                                source,
                                model::SecretSource::Generate | model::SecretSource::Doppler
                            );
                        (source, spec.filter(|_| kept).map(|x| x.vault_location(ns)))
                    };
                    secrets.push(SecretRef {
                        name: m.name.clone(),
                        prefix: secret_prefix(ns, &m.name),
                        source,
                        labels: base(&layer.name, &m.name),
                        vault,
                    });
                }
            }
            // Configs sprocketctl derives for a role: (stem, content, target in the container).
            let role_config = match s.role {
                Some(Role::Vault) => Some((
                    "sprocket-listener",
                    vault_socket::listener_hcl(),
                    vault_socket::LISTENER_TARGET,
                )),
                Some(Role::DockerApiProxy) => Some((
                    "sprocket-rules",
                    socket_proxy::config(&docker_socket_target(s), DOCKER_API_PORT),
                    socket_proxy::CONFIG_TARGET,
                )),
                // A private ACME server's CA certificate (validated as PEM text).
                Some(Role::Edge) => match &p.environment.tls {
                    model::Tls::LetsEncrypt {
                        ca_certificate: Some(ca),
                        ..
                    } => Some((
                        "acme-ca",
                        String::from_utf8_lossy(&ca.content).into_owned(),
                        traefik::ACME_CA_TARGET,
                    )),
                    _ => None,
                },
                _ => None,
            };
            let acl_config =
                acl.map(|script| ("redis-acl", script, sprocket_spec::names::REDIS_ACL_SCRIPT));
            for (stem, content, target) in role_config.into_iter().chain(acl_config) {
                let content = content.into_bytes();
                let hash = short_hash(&content);
                let name = format!("{ns}_{}-{stem}-{hash}", s.name);
                let mut labels = base(&layer.name, &format!("{}/{stem}", s.name));
                labels.insert(L::SPEC_HASH.into(), hash);
                configs.push(ConfigSpec {
                    name: name.clone(),
                    labels,
                    content,
                    source: None,
                });
                file_configs.push(FileRef {
                    name,
                    target: target.into(),
                    mode: 0o444,
                    uid: 0,
                    gid: 0,
                });
            }
            let mut derived: Vec<(String, model::SecretSource)> = Vec::new();
            if s.role == Some(Role::UnsealAgent) {
                derived.push((UNSEAL_SECRET.into(), model::SecretSource::Vault));
                // The agent renews every service's token.
                for holder in token_holders(p) {
                    derived.push((token_secret(holder), model::SecretSource::VaultToken));
                }
            }
            if !s.vault_paths.is_empty() {
                derived.push((token_secret(&s.name), model::SecretSource::VaultToken));
            }
            for (name, source) in derived {
                if !listed(&layers, &secrets, &name) {
                    secrets.push(SecretRef {
                        prefix: secret_prefix(ns, &name),
                        source,
                        labels: base(&layer.name, &name),
                        name,
                        vault: None,
                    });
                }
            }
            services.push(service(
                p,
                s,
                &base,
                joins.get(s.name.as_str()),
                file_configs,
                proxy,
            ));
        }
        // An external datastore's administrator: no service mounts its password, the
        // provisioning task does (a Docker secret like the others, kept in Vault likewise);
        // the backup store's, the backup task does, whether a service uses it or not.
        let backup_store = env.backup.as_ref().map(|b| b.store.as_str());
        for pr in provisions.iter().filter(|pr| {
            !pr.in_swarm
                && (!pr.idle() || backup_store == Some(pr.datastore.as_str()))
                && pr.layer == layer.name
        }) {
            for admin in pr.admin_secrets() {
                if listed(&layers, &secrets, admin) {
                    continue;
                }
                let Some(spec) = p.secrets.iter().find(|x| x.name == admin) else {
                    continue;
                };
                let kept = p.vault.is_some()
                    && matches!(
                        spec.source,
                        model::SecretSource::Generate | model::SecretSource::Doppler
                    );
                secrets.push(SecretRef {
                    name: spec.name.clone(),
                    prefix: secret_prefix(ns, &spec.name),
                    source: spec.source,
                    labels: base(&layer.name, &spec.name),
                    vault: kept.then(|| spec.vault_location(ns)),
                });
            }
        }
        layers.push(DesiredLayer {
            name: layer.name.clone(),
            networks,
            configs,
            secrets,
            services,
            disabled: layer.disabled.clone(),
        });
    }
    DesiredState {
        namespace: ns.to_string(),
        environment: env.name.clone(),
        layers,
        vault: crate::vault::config(p),
        provisions,
    }
}

fn service(
    p: &Platform,
    s: &model::Service,
    base: &dyn Fn(&str, &str) -> BTreeMap<String, String>,
    networks: Option<&BTreeSet<String>>,
    configs: Vec<FileRef>,
    proxy: Option<&model::Service>,
) -> ServiceSpec {
    let env = &p.environment;
    let ns = &env.namespace;
    let mut labels = base(&s.layer, &s.name);
    let edge_net = p
        .edge()
        .filter(|e| routed_backend(e, s))
        .map(|_| names::edge_network(ns, &s.name));
    labels.extend(traefik::service_labels(p, s, edge_net.as_deref()));

    let mut args = s.args.clone();
    let mut ports: Vec<PublishedPort> = Vec::new();
    let publish_mode = match env.publish_mode {
        PublishMode::Ingress => "ingress",
        PublishMode::Host => "host",
    };
    let mut mounts: Vec<MountSpec> = s
        .volumes
        .iter()
        .map(|v| match v {
            model::Volume::Named {
                name,
                target,
                read_only,
                ..
            } => MountSpec {
                kind: "volume".into(),
                source: volume_name(ns, name),
                target: target.clone(),
                read_only: *read_only,
            },
            model::Volume::Bind {
                source,
                target,
                read_only,
            } => MountSpec {
                kind: "bind".into(),
                source: source.clone(),
                target: target.clone(),
                read_only: *read_only,
            },
        })
        .collect();
    let mut env_vars = s.env.clone();
    let mut secret_mounts: Vec<FileRef> = s
        .secrets
        .iter()
        .map(|m| FileRef {
            name: m.name.clone(),
            target: m.target.clone(),
            mode: m.mode,
            uid: m.uid,
            gid: m.gid,
        })
        .collect();
    if s.role == Some(Role::UnsealAgent) {
        // Everything the agent needs is derived from the platform.
        if let Some(v) = p.services().find(|x| x.role == Some(Role::Vault)) {
            let port = vault_port(v);
            env_vars.insert(
                agent_env::VAULT_TASKS.into(),
                format!("tasks.{}", service_name(ns, &v.name)),
            );
            env_vars.insert(agent_env::VAULT_SERVICE.into(), service_name(ns, &v.name));
            env_vars.insert(agent_env::VAULT_PORT.into(), port.to_string());
        }
        if let Some(proxy) = proxy {
            env_vars.insert(
                agent_env::DOCKER_API.into(),
                format!("tcp://{}:{DOCKER_API_PORT}", proxy.name),
            );
        }
        if let Some(m) = crate::checks::monitor(p) {
            env_vars.insert(
                agent_env::MONITOR.into(),
                serde_json::to_string(&m).expect("serialisable"),
            );
        }
        secret_mounts.push(FileRef {
            name: UNSEAL_SECRET.into(),
            target: format!("{SECRETS_DIR}/{UNSEAL_SECRET}"),
            mode: 0o400,
            uid: 0,
            gid: 0,
        });
        let holders = token_holders(p);
        if !holders.is_empty() {
            for r in holders {
                let name = token_secret(r);
                secret_mounts.push(FileRef {
                    target: format!("{SECRETS_DIR}/{name}"),
                    name,
                    mode: 0o400,
                    uid: 0,
                    gid: 0,
                });
            }
            if let Some(v) = &p.vault {
                env_vars.insert(agent_env::TOKEN_PERIOD.into(), v.token_period_s.to_string());
            }
        }
    }
    if !s.vault_paths.is_empty() {
        // Vault is reached by its short name on the reader's own network to it.
        if let Some(v) = p.services().find(|x| x.role == Some(Role::Vault)) {
            let port = vault_port(v);
            env_vars
                .entry("VAULT_ADDR".into())
                .or_insert(format!("http://{}:{port}", v.name));
        }
        env_vars
            .entry("VAULT_TOKEN_FILE".into())
            .or_insert(TOKEN_TARGET.into());
        secret_mounts.push(FileRef {
            name: token_secret(&s.name),
            target: TOKEN_TARGET.into(),
            mode: 0o400,
            uid: 0,
            gid: 0,
        });
    }
    if s.role == Some(Role::Vault) {
        // Its private listener: one more `-config=` after the spec's own server arguments
        // (Docker runs command + args), and the socket's volume.
        let mut a = args.unwrap_or_default();
        a.push(format!("-config={}", vault_socket::LISTENER_TARGET));
        args = Some(a);
        mounts.push(MountSpec {
            kind: "volume".into(),
            source: volume_name(ns, vault_socket::VOLUME),
            target: vault_socket::DIR.into(),
            read_only: false,
        });
    }
    if s.role == Some(Role::DockerApiProxy) {
        // Its rules are derived (see `socket_proxy`): HAProxy runs the derived file.
        args = Some(socket_proxy::args());
    }
    if s.role == Some(Role::Edge) {
        let proxy_host = proxy.map(|p| p.name.as_str()).unwrap_or("socket-proxy");
        let mut a = args.unwrap_or_default();
        a.extend(traefik::edge_args(p, proxy_host));
        args = Some(a);
        ports.push(PublishedPort {
            target: 80,
            published: env.http_port,
            protocol: "tcp".into(),
            mode: publish_mode.into(),
        });
        if env.tls.enabled() {
            ports.push(PublishedPort {
                target: 443,
                published: env.https_port,
                protocol: "tcp".into(),
                mode: publish_mode.into(),
            });
        }
    }
    ports.extend(s.ports.iter().map(|pt| PublishedPort {
        target: pt.target,
        published: pt.published,
        protocol: pt.protocol.clone(),
        mode: publish_mode.into(),
    }));
    mounts.sort();
    let mut secrets = secret_mounts;
    secrets.sort();
    let mut configs = configs;
    configs.sort();
    let networks = networks
        .map(|n| {
            n.iter()
                .map(|net| NetworkAttachment {
                    network: net.clone(),
                    aliases: vec![s.name.clone()],
                })
                .collect()
        })
        .unwrap_or_default();
    let mut spec = ServiceSpec {
        name: service_name(ns, &s.name),
        short_name: s.name.clone(),
        layer: s.layer.clone(),
        labels,
        image: s.image.clone(),
        command: s.command.clone(),
        args,
        env: env_vars,
        env_logins: s
            .access
            .iter()
            .filter_map(|a| {
                Some(crate::env_logins::EnvLogin {
                    reference: names::access_user_reference(&a.on),
                    user: a.user.clone(),
                    alternate: a.alternate.clone()?,
                    secret: a.secret.clone(),
                })
            })
            .collect(),
        hostname: s.hostname.clone(),
        hosts: host_gateway_if(
            uses_docker_host(p, &s.uses_external)
                || s.role == Some(Role::Edge) && acme_ca_on_docker_host(p)
                || s.role == Some(Role::UnsealAgent) && alerts_on_docker_host(p),
        ),
        user: s.user.clone(),
        workdir: s.workdir.clone(),
        mounts,
        configs,
        secrets,
        networks,
        endpoint_mode: match env.endpoint_mode {
            EndpointMode::Vip => "vip".into(),
            EndpointMode::Dnsrr => "dnsrr".into(),
        },
        ports,
        mode: s.mode.clone(),
        health: s.health.as_ref().map(|h| HealthSpec {
            test: std::iter::once("CMD".to_string())
                .chain(h.cmd.iter().cloned())
                .collect(),
            interval_ns: h.interval_ns,
            timeout_ns: h.timeout_ns,
            retries: h.retries,
            start_period_ns: h.start_period_ns,
        }),
        resources: s.resources.clone(),
        placement: s.placement.clone(),
        logging: s.logging.clone(),
        // Restart on any exit, backing off, but never forever in a tight loop: the original
        // filled 24 GB of disk with restart loops.
        restart: RestartSpec {
            condition: "any".into(),
            delay_ns: 5_000_000_000,
            max_attempts: 0,
            window_ns: 0,
        },
        update: UpdateSpec {
            parallelism: 1,
            // Host-published ports cannot be bound twice on a node: start-first would wedge.
            order: if ports_block_start_first(s, env) {
                "stop-first".into()
            } else {
                "start-first".into()
            },
            failure_action: "rollback".into(),
            monitor_ns: 5_000_000_000,
        },
        stop_grace_period_ns: s.stop_grace_period_ns,
    };
    let hash = spec.hash();
    spec.labels.insert(L::SPEC_HASH.into(), hash);
    spec
}

/// Where the Docker API proxy finds the Docker socket: the target of its bind mount of a
/// `docker.sock`, or the usual path.
/// The host entry a task needs to reach an external on the Docker host
/// (`host.docker.internal`, which only Docker Desktop resolves by itself): the engine resolves
/// `host-gateway` to its bridge's address.
pub fn docker_host_entries(p: &Platform, externals: &[String]) -> Vec<String> {
    host_gateway_if(uses_docker_host(p, externals))
}

/// Whether one of `externals` is on the Docker host.
fn uses_docker_host(p: &Platform, externals: &[String]) -> bool {
    p.externals
        .iter()
        .any(|e| externals.contains(&e.name) && e.on_docker_host())
}

/// The host entry that makes `host.docker.internal` resolve on Linux engines, when `needed`.
fn host_gateway_if(needed: bool) -> Vec<String> {
    if needed {
        vec![format!(
            "host-gateway {}",
            model::External::HOST_GATEWAY_NAME
        )]
    } else {
        Vec::new()
    }
}

/// Whether the ACME server is on the Docker host (a local Pebble): the edge router then needs
/// the host entry that makes `host.docker.internal` resolve on Linux engines.
fn acme_ca_on_docker_host(p: &Platform) -> bool {
    let model::Tls::LetsEncrypt {
        ca_server: Some(url),
        ..
    } = &p.environment.tls
    else {
        return false;
    };
    on_docker_host(url)
}

/// Whether a URL names the Docker host (`host.docker.internal`).
fn on_docker_host(url: &str) -> bool {
    sprocket_spec::values::url_host(url) == Some(model::External::HOST_GATEWAY_NAME)
}

/// Whether an alert destination is on the Docker host: the agent then needs the host entry.
fn alerts_on_docker_host(p: &Platform) -> bool {
    p.environment.alerts.as_ref().is_some_and(|a| {
        [&a.webhook, &a.alertmanager]
            .into_iter()
            .flatten()
            .any(|u| on_docker_host(u))
    })
}

fn docker_socket_target(s: &model::Service) -> String {
    s.volumes
        .iter()
        .find_map(|v| match v {
            model::Volume::Bind { source, target, .. } if source.ends_with("docker.sock") => {
                Some(target.clone())
            }
            _ => None,
        })
        .unwrap_or_else(|| "/var/run/docker.sock".into())
}

/// A secret belongs to the first layer that mounts it (the one deployed first): a later layer's
/// services mount the same one, so it is planned, and a generated value made, once.
fn listed(earlier: &[DesiredLayer], this: &[SecretRef], name: &str) -> bool {
    earlier
        .iter()
        .flat_map(|l| &l.secrets)
        .chain(this)
        .any(|x| x.name == name)
}

/// A service Traefik forwards to: it has a route with a backend port (internal routes are served
/// by Traefik itself), and it is not the edge router.
pub(crate) fn routed_backend(edge: &model::Service, s: &model::Service) -> bool {
    s.name != edge.name && s.routes.iter().any(|r| r.internal.is_none())
}

/// Vault's API port: its route's, or the default.
pub fn vault_port(v: &model::Service) -> u16 {
    v.routes
        .iter()
        .find_map(|r| r.port)
        .unwrap_or(DEFAULT_VAULT_PORT)
}

/// Services that publish host ports, or own a volume that two tasks must not share (databases),
/// update stop-first; stateless ones start the new task before stopping the old.
fn ports_block_start_first(s: &model::Service, env: &model::Environment) -> bool {
    let host_ports = env.publish_mode == PublishMode::Host
        && (s.role == Some(Role::Edge) || !s.ports.is_empty());
    let stateful = s
        .volumes
        .iter()
        .any(|v| matches!(v, model::Volume::Named { .. }));
    host_ports || stateful
}

impl DesiredState {
    pub fn services(&self) -> impl Iterator<Item = &ServiceSpec> {
        self.layers.iter().flat_map(|l| l.services.iter())
    }
}
