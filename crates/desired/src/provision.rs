//! What `up` provisions in each datastore: every consumer's own login, derived from its
//! `access`. Pure: the document a provisioning task receives is built here, with no value in
//! it (each password travels as a Docker secret the task mounts, never in its spec).
//!
//! The task runs inside the swarm (`sprocketctl provision`, sprocketctl's own image), on a
//! network only the datastore shares ([`names::provision_network`]): it works where the
//! operator's machine cannot reach the datastore, and it is the only thing besides the
//! consumers that reaches it.

use crate::labels as L;
use serde::{Deserialize, Serialize};
pub use sprocket_spec::model::DatastoreKind;
use sprocket_spec::model::Platform;
use sprocket_spec::names;
use std::collections::BTreeMap;

/// On the marker config of a provisioning that succeeded: the datastore's service name.
pub const PROVISIONED: &str = "io.sprocket.provisioned";

/// One datastore's provisioning.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Provision {
    /// The datastore service (its name in the spec).
    pub datastore: String,
    /// Its Docker service name (`<ns>_<datastore>`).
    pub service: String,
    pub layer: String,
    pub kind: DatastoreKind,
    pub admin_user: String,
    /// Logical name of the secret with the administrator's password.
    pub admin_secret: String,
    pub admin_port: u16,
    /// The network the task joins to reach the datastore.
    pub network: String,
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
    /// The marker of what we made (RabbitMQ: a user tag and a vhost tag): what carries it is
    /// ours; what does not is never changed or removed.
    pub owner: String,
    pub logins: Vec<JobLogin>,
    /// Remove our logins (and vhosts) that no consumer declares any more.
    pub prune: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct JobLogin {
    pub service: String,
    pub user: String,
    pub password_file: String,
    pub vhost: String,
    pub configure: String,
    pub write: String,
    pub read: String,
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
/// to still appears: a `--prune` run removes the logins its former consumers left).
pub fn provisions(p: &Platform) -> Vec<Provision> {
    let ns = p.environment.namespace.as_str();
    let mut out = Vec::new();
    for ds in p.services() {
        let Some(d) = &ds.datastore else { continue };
        let logins = p
            .services()
            .flat_map(|c| c.access.iter().map(move |a| (c, a)))
            .filter(|(_, a)| a.on == ds.name)
            .map(|(c, a)| Login {
                service: c.name.clone(),
                user: a.user.clone(),
                secret: a.secret.clone(),
                vhost: a.vhost.clone(),
                configure: a.configure.clone(),
                write: a.write.clone(),
                read: a.read.clone(),
            })
            .collect();
        let labels = [
            (L::MANAGED_BY, L::MANAGED_BY_VALUE.to_string()),
            (L::NAMESPACE, ns.to_string()),
            (L::ENVIRONMENT, p.environment.name.clone()),
            (L::LAYER, ds.layer.clone()),
            (L::NAME, format!("provision-{}", ds.name)),
            (PROVISIONED, ds.name.clone()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        out.push(Provision {
            datastore: ds.name.clone(),
            service: crate::state::service_name(ns, &ds.name),
            layer: ds.layer.clone(),
            kind: d.kind,
            admin_user: d.admin_user.clone(),
            admin_secret: d.admin_secret.clone(),
            admin_port: d.admin_port,
            network: names::provision_network(ns, &ds.name),
            logins,
            labels,
        });
    }
    out
}

impl Provision {
    /// The task's document.
    pub fn job(&self, namespace: &str, prune: bool) -> Job {
        Job {
            kind: self.kind,
            host: self.datastore.clone(),
            port: self.admin_port,
            admin_user: self.admin_user.clone(),
            admin_password_file: secret_file(&self.admin_secret),
            owner: owner(namespace),
            logins: self
                .logins
                .iter()
                .map(|l| JobLogin {
                    service: l.service.clone(),
                    user: l.user.clone(),
                    password_file: secret_file(&l.secret),
                    vhost: l.vhost.clone(),
                    configure: l.configure.clone(),
                    write: l.write.clone(),
                    read: l.read.clone(),
                })
                .collect(),
            prune,
        }
    }

    /// The secrets the task mounts: the administrator's and every login's (logical names).
    pub fn secrets(&self) -> Vec<&str> {
        std::iter::once(self.admin_secret.as_str())
            .chain(self.logins.iter().map(|l| l.secret.as_str()))
            .collect()
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
    /// `user@vhost` of every login.
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
                logins: pr
                    .logins
                    .iter()
                    .map(|l| format!("{}@{}", l.user, l.vhost))
                    .collect(),
                why: why.to_string(),
            });
        }
    }
    out
}
