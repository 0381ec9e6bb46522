//! What `up` provisions in each datastore: every consumer's own login, derived from its
//! `access`. Pure: the document a provisioning task receives is built here, with no value in
//! it (each password travels as a Docker secret the task mounts, never in its spec).
//!
//! The task runs inside the swarm (`sprocketctl provision`, sprocketctl's own image), on a
//! network only the datastore shares ([`names::provision_network`]): it works where the
//! operator's machine cannot reach the datastore, and it is the only thing besides the
//! consumers that reaches it. An external datastore (a managed PostgreSQL that trusts only the
//! swarm's nodes) is reached the way its consumers reach it, out of the swarm, from a network
//! the task joins alone.

use crate::labels as L;
use serde::{Deserialize, Serialize};
pub use sprocket_spec::model::DatastoreKind;
use sprocket_spec::model::{BucketAccess, Platform, Privileges, S3Keys, SslMode};
use sprocket_spec::names;
use std::collections::BTreeMap;

/// On the marker config of a provisioning that succeeded: the datastore's service name.
pub const PROVISIONED: &str = "io.sprocket.provisioned";

/// One datastore's provisioning.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Provision {
    /// The datastore service or external (its name in the spec).
    pub datastore: String,
    /// Its Docker service name (`<ns>_<datastore>`): the key of its step. An external has no
    /// service of that name.
    pub service: String,
    /// A service of the swarm (its provisioning waits for its task), or an external.
    pub in_swarm: bool,
    /// The layer of the datastore; an external's is its first consumer's.
    pub layer: String,
    pub kind: DatastoreKind,
    /// Where the task reaches it: the service's name on the provisioning network, or the
    /// external's host.
    pub host: String,
    pub admin_user: String,
    /// Logical name of the secret with the administrator's password.
    pub admin_secret: String,
    pub admin_port: u16,
    /// PostgreSQL: the administrator's database and TLS.
    pub admin_database: String,
    pub sslmode: SslMode,
    /// The network the task joins to reach the datastore.
    pub network: String,
    /// Extra `/etc/hosts` lines of the task (an external on the Docker host).
    pub hosts: Vec<String>,
    /// S3: the secret with the administrator's access key id (`admin_secret`: its secret key),
    /// the endpoint, the signing region, the buckets to create and whose keys consumers use.
    pub admin_key_secret: String,
    pub endpoint: String,
    pub region: String,
    pub buckets: Vec<String>,
    pub keys: S3Keys,
    /// Whether a service running here uses it at all (with or without `access`): an S3 store's
    /// buckets are made only then.
    pub used: bool,
    /// Every consumer's login, by service.
    pub logins: Vec<Login>,
    /// Labels of the task's service and of the marker config.
    pub labels: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Login {
    /// The consumer (its name in the spec).
    pub service: String,
    pub user: String,
    /// Logical name of the secret with its password.
    pub secret: String,
    pub vhost: String,
    pub configure: String,
    pub write: String,
    pub read: String,
    /// PostgreSQL: the database and the login's privileges there.
    pub database: String,
    pub privileges: Privileges,
    /// S3: its buckets, and the secret with its access key id (`secret`: its secret key).
    pub buckets: Vec<(String, BucketAccess)>,
    pub key_secret: String,
    /// Redis: the key and channel patterns of its ACL user.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub keys: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub channels: Vec<String>,
    /// PostgreSQL, RabbitMQ: its second login, when the consumer takes its user name from
    /// `{access.<datastore>.user}` ([`alternate_current`] says which of the two is current).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alternate: Option<String>,
}

/// Whether version `version` of a password belongs to a login's alternate (`<user>_b`): its
/// even versions do, its odd ones the login's own user. Consecutive versions alternate, so a
/// rotation sets the new password on the login the running task does not log in with, and the
/// consumer's new task logs in with the other; the replaced one is retired once the old task
/// is gone. A password with no version (an operator's own secret) is the user's.
pub fn alternate_current(version: Option<u64>) -> bool {
    version.is_some_and(|v| v % 2 == 0)
}

/// What the provisioning task reads (`SPROCKET_PROVISION`, JSON): where the datastore is, who
/// administers it, and each login with the file its password is mounted at. No value.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Job {
    pub kind: DatastoreKind,
    /// Host name of the datastore on the provisioning network.
    pub host: String,
    pub port: u16,
    pub admin_user: String,
    pub admin_password_file: String,
    /// PostgreSQL: the database the administrator connects to, and TLS.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub admin_database: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sslmode: Option<SslMode>,
    /// S3: the endpoint (`http(s)://host[:port]`), the signing region, the file with the
    /// administrator's access key id (`admin_password_file`: its secret key), and the buckets
    /// to create.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub endpoint: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub region: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub admin_key_file: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub buckets: Vec<String>,
    /// The marker of what we made (RabbitMQ: a user tag and a vhost tag): what carries it is
    /// ours; what does not is never changed or removed.
    pub owner: String,
    pub logins: Vec<JobLogin>,
    /// Remove our logins (and vhosts) that no consumer declares any more.
    pub prune: bool,
    /// With `prune`: drop our databases no login wants too, their data with them (PostgreSQL;
    /// a drill's scratch platform going away). Without it they are kept and handed to the
    /// administrator.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub drop_data: bool,
    /// Only retire the replaced credentials its logins kept for their consumers' roll (S3: each
    /// login's keys but its current one), after the consumers converged on the new ones.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub retire: bool,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct JobLogin {
    pub service: String,
    pub user: String,
    pub password_file: String,
    /// RabbitMQ.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub vhost: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub configure: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub write: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub read: String,
    /// PostgreSQL.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub database: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub privileges: Option<Privileges>,
    /// S3: its buckets and the file with its access key id (`password_file`: its secret key).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub buckets: Vec<(String, BucketAccess)>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub key_file: String,
    /// Redis: the key and channel patterns of its ACL user.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub keys: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub channels: Vec<String>,
    /// No task of the consumer runs (its service is about to be made): nothing holds an earlier
    /// credential, so none is kept for a roll (S3: a previous key goes at once).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub fresh: bool,
    /// PostgreSQL, RabbitMQ: its second login (see [`alternate_current`]); empty: one login.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub alternate: String,
    /// Whether the password's version makes `alternate` the current login (set when `up`
    /// knows the versions: [`Job::choose_logins`]). The other one keeps the previous password
    /// while the consumer rolls and is retired after.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub use_alternate: bool,
}

impl JobLogin {
    /// The login the consumer's new tasks use.
    pub fn current(&self) -> &str {
        if self.use_alternate && !self.alternate.is_empty() {
            &self.alternate
        } else {
            &self.user
        }
    }

    /// The other of its two logins — or, for a consumer with one (its env spells its user),
    /// the second one it had while it took its user from `{access.…user}`: the adapter keeps
    /// it for the roll and retires it like any previous login, where it exists and is ours.
    pub fn other(&self) -> String {
        match (self.alternate.is_empty(), self.use_alternate) {
            (true, _) => names::alternate_login(&self.user),
            (false, true) => self.user.clone(),
            (false, false) => self.alternate.clone(),
        }
    }

    /// Every login name that is this consumer's: its user and its (maybe former) second login.
    /// A prune keeps them all; [`Self::other`] retires the one no longer current.
    pub fn names(&self) -> [String; 2] {
        [self.user.clone(), names::alternate_login(&self.user)]
    }
}

/// The user version `version` of a login's password makes current: `user`'s odd versions,
/// `alternate`'s even ones (see [`alternate_current`]); `user` without an alternate.
pub fn current_login<'a>(user: &'a str, alternate: &'a str, version: Option<u64>) -> &'a str {
    if !alternate.is_empty() && alternate_current(version) {
        alternate
    } else {
        user
    }
}

impl Job {
    /// Marks the logins whose consumer has no service yet (`runs`: whether the consumer, by its
    /// name in the spec, has one): see [`JobLogin::fresh`].
    pub fn mark_fresh(mut self, runs: impl Fn(&str) -> bool) -> Self {
        for l in &mut self.logins {
            l.fresh = !runs(&l.service);
        }
        self
    }

    /// Chooses each two-login consumer's current login from its password's version
    /// (`version_of`: by the file the password is mounted at), as the consumer's env is
    /// resolved when it is deployed ([`crate::state::ServiceSpec::env_at`]).
    pub fn choose_logins(mut self, version_of: impl Fn(&str) -> Option<u64>) -> Self {
        for l in self.logins.iter_mut().filter(|l| !l.alternate.is_empty()) {
            l.use_alternate = alternate_current(version_of(&l.password_file));
        }
        self
    }
}

/// The environment variable the task reads its [`Job`] from.
pub const JOB_ENV: &str = "SPROCKET_PROVISION";

/// The owner marker of one namespace's objects in a datastore.
pub fn owner(namespace: &str) -> String {
    format!("sprocketctl-{namespace}")
}

/// Where the task finds the secret `logical` (mounted under its logical name).
pub fn secret_file(logical: &str) -> String {
    format!("{}/{logical}", crate::contract::SECRETS_DIR)
}

/// Every datastore of the platform with its consumers' logins (a datastore nobody asks access
/// to still appears: a `--prune` run removes the logins its former consumers left): the
/// services with `datastore:` (Redis's ACL users among them, kept in its aclfile:
/// [`crate::redis_acl`]), then the externals with an administrator.
pub fn provisions(p: &Platform) -> Vec<Provision> {
    let ns = p.environment.namespace.as_str();
    let logins = |ds: &str| -> Vec<Login> {
        p.services()
            .flat_map(|c| c.access.iter().map(move |a| (c, a)))
            .filter(|(_, a)| a.on == ds)
            .map(|(c, a)| Login {
                service: c.name.clone(),
                user: a.user.clone(),
                secret: a.secret.clone(),
                vhost: a.vhost.clone(),
                configure: a.configure.clone(),
                write: a.write.clone(),
                read: a.read.clone(),
                database: a.database.clone(),
                privileges: a.privileges,
                buckets: a.buckets.clone(),
                key_secret: a.key_secret.clone(),
                keys: a.keys.clone(),
                channels: a.channels.clone(),
                alternate: a.alternate.clone(),
            })
            .collect()
    };
    let labels = |layer: &str, ds: &str| -> BTreeMap<String, String> {
        [
            (L::MANAGED_BY, L::MANAGED_BY_VALUE.to_string()),
            (L::NAMESPACE, ns.to_string()),
            (L::ENVIRONMENT, p.environment.name.clone()),
            (L::LAYER, layer.to_string()),
            (L::NAME, format!("provision-{ds}")),
            (PROVISIONED, ds.to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
    };
    let mut out = Vec::new();
    for ds in p.services() {
        let Some(d) = &ds.datastore else { continue };
        out.push(Provision {
            datastore: ds.name.clone(),
            service: crate::state::service_name(ns, &ds.name),
            in_swarm: true,
            layer: ds.layer.clone(),
            kind: d.kind,
            host: ds.name.clone(),
            admin_user: d.admin_user.clone(),
            admin_secret: d.admin_secret.clone(),
            admin_port: d.admin_port,
            admin_database: d.admin_database.clone(),
            sslmode: d.sslmode,
            admin_key_secret: d.admin_key_secret.clone(),
            endpoint: d.endpoint.clone(),
            region: d.region.clone(),
            buckets: d.buckets.clone(),
            keys: d.keys,
            used: true,
            network: names::provision_network(ns, &ds.name),
            hosts: Vec::new(),
            logins: logins(&ds.name),
            labels: labels(&ds.layer, &ds.name),
        });
    }
    for x in &p.externals {
        let Some(d) = &x.datastore else { continue };
        // Where no consumer running here logs in, it is idle: it needs neither the server nor
        // its administrator's password, and runs only for an `up --prune` after its last
        // consumer went (see [`Provision::decide`]).
        let logins = logins(&x.name);
        // Its step belongs with its first consumer (the earliest layer that logs in).
        let layer = p
            .services()
            .find(|c| c.access.iter().any(|a| a.on == x.name))
            .or_else(|| p.services().next())
            .map(|c| c.layer.clone())
            .unwrap_or_default();
        out.push(Provision {
            datastore: x.name.clone(),
            service: crate::state::service_name(ns, &x.name),
            in_swarm: false,
            layer: layer.clone(),
            kind: d.kind,
            host: match d.kind {
                DatastoreKind::S3 => sprocket_spec::load::endpoint_host(&d.endpoint)
                    .unwrap_or_default()
                    .to_string(),
                _ => x.host.clone().unwrap_or_default(),
            },
            admin_user: d.admin_user.clone(),
            admin_secret: d.admin_secret.clone(),
            admin_port: d.admin_port,
            admin_database: d.admin_database.clone(),
            sslmode: d.sslmode,
            admin_key_secret: d.admin_key_secret.clone(),
            endpoint: d.endpoint.clone(),
            region: d.region.clone(),
            buckets: d.buckets.clone(),
            keys: d.keys,
            used: p.services().any(|c| c.uses_external.contains(&x.name)),
            network: names::provision_network(ns, &x.name),
            hosts: crate::state::docker_host_entries(p, std::slice::from_ref(&x.name)),
            logins,
            labels: labels(&layer, &x.name),
        });
    }
    out
}

impl Provision {
    /// How progress names it: the datastore's service, or the external by its name.
    pub fn step_name(&self) -> String {
        if self.in_swarm {
            self.service.clone()
        } else {
            format!("{} (external)", self.datastore)
        }
    }

    /// An external nobody running here logs in to (and, S3, nobody here uses, or with no
    /// bucket to make): its provisioning runs only to remove, with `--prune`, what earlier ones
    /// made, and only when its administrator's password is there.
    pub fn idle(&self) -> bool {
        !self.in_swarm && self.logins.is_empty() && (self.buckets.is_empty() || !self.used)
    }

    /// Whether the task makes each consumer's own login: not for an S3 store whose keys are
    /// shared (made in its console), where it only makes the buckets.
    pub fn per_consumer(&self) -> bool {
        !(self.kind == DatastoreKind::S3 && self.keys == S3Keys::Shared)
    }

    /// The task's document.
    pub fn job(&self, namespace: &str, prune: bool) -> Job {
        let postgres = self.kind == DatastoreKind::Postgres;
        let s3 = self.kind == DatastoreKind::S3;
        let text = |on: bool, v: &str| if on { v.to_string() } else { String::new() };
        Job {
            kind: self.kind,
            host: self.host.clone(),
            port: self.admin_port,
            admin_user: self.admin_user.clone(),
            admin_password_file: secret_file(&self.admin_secret),
            admin_database: if postgres {
                self.admin_database.clone()
            } else {
                String::new()
            },
            sslmode: postgres.then_some(self.sslmode),
            endpoint: text(s3, &self.endpoint),
            region: text(s3, &self.region),
            admin_key_file: if s3 {
                secret_file(&self.admin_key_secret)
            } else {
                String::new()
            },
            buckets: self.buckets.clone(),
            owner: owner(namespace),
            logins: self
                .logins
                .iter()
                .filter(|_| self.per_consumer())
                .map(|l| JobLogin {
                    service: l.service.clone(),
                    user: l.user.clone(),
                    password_file: secret_file(&l.secret),
                    vhost: l.vhost.clone(),
                    configure: l.configure.clone(),
                    write: l.write.clone(),
                    read: l.read.clone(),
                    database: l.database.clone(),
                    privileges: postgres.then_some(l.privileges),
                    buckets: l.buckets.clone(),
                    key_file: if s3 {
                        secret_file(&l.key_secret)
                    } else {
                        String::new()
                    },
                    keys: l.keys.clone(),
                    channels: l.channels.clone(),
                    fresh: false,
                    alternate: l.alternate.clone().unwrap_or_default(),
                    use_alternate: false,
                })
                .collect(),
            prune,
            drop_data: false,
            retire: false,
        }
    }

    /// The job that retires the credentials a provisioning kept for the roll
    /// ([`Job::retire`]), once the consumers run on their new ones: no bucket, no prune.
    pub fn retire_job(&self, namespace: &str) -> Job {
        Job {
            buckets: Vec::new(),
            retire: true,
            ..self.job(namespace, false)
        }
    }

    /// The job that removes everything of `namespace` here: every login, vhost and key of ours,
    /// and (PostgreSQL) our databases with their data. Buckets stay: they are never removed.
    pub fn teardown_job(&self, namespace: &str) -> Job {
        Job {
            logins: Vec::new(),
            buckets: Vec::new(),
            drop_data: true,
            ..self.job(namespace, true)
        }
    }

    /// The secrets the task mounts: the administrator's (S3: its key's two) and every login's
    /// (logical names).
    pub fn secrets(&self) -> Vec<&str> {
        let mut out = self.admin_secrets();
        for l in self.logins.iter().filter(|_| self.per_consumer()) {
            out.push(l.secret.as_str());
            if !l.key_secret.is_empty() {
                out.push(l.key_secret.as_str());
            }
        }
        out
    }

    /// The administrator's secrets: its password, or (S3) its key's id and secret.
    pub fn admin_secrets(&self) -> Vec<&str> {
        if self.admin_key_secret.is_empty() {
            vec![self.admin_secret.as_str()]
        } else {
            vec![self.admin_key_secret.as_str(), self.admin_secret.as_str()]
        }
    }

    /// The marker config's name once this provisioning, with these secret versions (their
    /// Docker names), succeeded: `<ns>_provisioned-<datastore>-<12 hex>`. Its presence is how a
    /// no-op `up` knows there is nothing to provision (no task, no call).
    pub fn marker(&self, namespace: &str, secret_versions: &[String]) -> String {
        let doc = serde_json::to_vec(&(&self.job(namespace, false), secret_versions))
            .expect("serialisable");
        format!(
            "{namespace}_provisioned-{}-{}",
            self.datastore,
            crate::state::short_hash(&doc)
        )
    }
}

impl Provision {
    /// How `plan`, `render` and `status` name one of its logins ([`Login::describe`]); a
    /// consumer of an S3 store with shared keys has no login of its own: `shared key (…)`.
    pub fn describe(&self, l: &Login) -> String {
        match self.per_consumer() {
            true => l.describe(self.kind),
            false => format!("shared key ({})", l.buckets_text()),
        }
    }
}

impl Login {
    /// Redis: what its ACL user may touch, as Redis writes it: `~keys &channels`.
    pub fn patterns(&self) -> String {
        crate::redis_acl::patterns(&self.keys, &self.channels).join(" ")
    }

    fn buckets_text(&self) -> String {
        let b: Vec<String> = self
            .buckets
            .iter()
            .map(|(b, a)| format!("{b} {}", a.name()))
            .collect();
        b.join(", ")
    }

    /// `user@vhost`, `user@database (privileges)`, or `user (bucket read|readwrite, …)`.
    pub fn describe(&self, kind: DatastoreKind) -> String {
        let second = self
            .alternate
            .as_ref()
            .map(|a| format!(", alternating with {a}"))
            .unwrap_or_default();
        match kind {
            DatastoreKind::Rabbitmq => format!("{}@{}{second}", self.user, self.vhost),
            DatastoreKind::Postgres => format!(
                "{}@{} ({}{second})",
                self.user,
                self.database,
                self.privileges.name()
            ),
            DatastoreKind::Redis => format!("ACL user {} ({})", self.user, self.patterns()),
            DatastoreKind::S3 => format!("{} ({})", self.user, self.buckets_text()),
        }
    }
}

/// Whether a provisioning must run, given the markers of earlier ones and the Docker secret
/// versions of its passwords: the one decision `plan` and `up` share.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Its marker is there (and, with `--prune`, no earlier one is left): no task, no call.
    Skip,
    /// Run the task, because `why`.
    Run { why: &'static str },
}

impl Provision {
    /// Decides from the names of this datastore's markers and the passwords' Docker secret
    /// names (`None`: one is not made yet).
    pub fn decide(
        &self,
        namespace: &str,
        markers: &[&str],
        versions: Option<&[String]>,
        prune: bool,
    ) -> Decision {
        if self.idle() {
            // Nothing to make; something to remove only where an earlier provisioning made
            // something and `--prune` asks for it.
            return match versions {
                Some(v)
                    if prune
                        && !markers.is_empty()
                        && markers != [self.marker(namespace, v).as_str()] =>
                {
                    Decision::Run {
                        why: "its last consumer went: what earlier provisionings made is removed with --prune",
                    }
                }
                _ => Decision::Skip,
            };
        }
        let Some(v) = versions else {
            return Decision::Run {
                why: "passwords to be made first",
            };
        };
        if !markers.contains(&self.marker(namespace, v).as_str()) {
            return Decision::Run {
                why: if markers.is_empty() {
                    "never provisioned"
                } else {
                    "logins or passwords changed"
                },
            };
        }
        if prune && markers.len() > 1 {
            return Decision::Run {
                why: "what an earlier provisioning made may be left: removed with --prune",
            };
        }
        Decision::Skip
    }

    /// The names of this datastore's markers among `configs`.
    pub fn markers<'o>(&self, configs: &'o [crate::plan::ObservedObject]) -> Vec<&'o str> {
        configs
            .iter()
            .filter(|c| c.label(PROVISIONED) == Some(self.datastore.as_str()))
            .map(|c| c.name.as_str())
            .collect()
    }
}

/// A provisioning `up` will run (its marker is not there): why, and the logins it makes sure of.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Pending {
    pub datastore: String,
    /// `user@vhost` (RabbitMQ) or `user@database (privileges)` (PostgreSQL) of every login.
    pub logins: Vec<String>,
    pub why: String,
}

/// The provisionings an `up` would run, judged by their markers and the secrets' newest
/// versions the swarm holds. A password `up` will write first (a changed source value, a
/// rotation) is not known here; `up` runs the provisioning then too.
pub fn pending(
    provisions: &[Provision],
    observed: &crate::plan::Observed,
    namespace: &str,
    prune: bool,
) -> Vec<Pending> {
    let newest = observed.newest_secrets();
    let mut out = Vec::new();
    for pr in provisions {
        let versions: Option<Vec<String>> = pr
            .secrets()
            .iter()
            .map(|s| newest.get(*s).map(|o| o.name.clone()))
            .collect();
        let decision = pr.decide(
            namespace,
            &pr.markers(&observed.configs),
            versions.as_deref(),
            prune,
        );
        if let Decision::Run { why } = decision {
            out.push(Pending {
                datastore: pr.datastore.clone(),
                logins: pr.logins.iter().map(|l| pr.describe(l)).collect(),
                why: why.to_string(),
            });
        }
    }
    out
}
