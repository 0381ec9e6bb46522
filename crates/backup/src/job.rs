//! The backup task: `sprocketctl backup` runs it once inside the swarm (sprocketctl's own image,
//! as the provisioning task), where it reaches what the operator's machine may not — Vault's and
//! Redis's backup networks, RabbitMQ's and each external's provisioning network — and streams
//! every artefact, encrypted to the operators, to the bucket. Pure: the document it reads is
//! built here, with no value in it (every password and token is a Docker secret it mounts).

use crate::plan::{Item, Source};
use serde::{Deserialize, Serialize};
use sprocket_desired::labels as L;
use sprocket_desired::provision::{secret_file, Provision};
use sprocket_spec::model::{DatastoreKind, Platform, SslMode, Volume};
use sprocket_spec::names;
use std::collections::BTreeMap;

/// The environment variable the task reads its [`Job`] from.
pub const JOB_ENV: &str = "SPROCKET_BACKUP";
/// The logical name the keyring (already encrypted to the operators) is mounted under.
pub const KEYRING_SECRET: &str = "vault-keyring";
/// On the task's service: the backup's id.
pub const BACKUP_LABEL: &str = "io.sprocket.backup";

/// What the task reads: where each artefact comes from, where it goes, who can read it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Job {
    pub namespace: String,
    pub environment: String,
    pub id: String,
    /// Seconds since the epoch (UTC) the backup started.
    pub started: i64,
    pub spec_sha256: String,
    /// The operators' public keys (age or SSH): only they can read what the task writes.
    pub recipients: Vec<String>,
    pub store: Store,
    pub items: Vec<JobItem>,
    /// Retention, applied once the backup is complete.
    pub keep: crate::Policy,
    /// When the platform's live volumes were made (seconds, UTC; the earliest): retention keeps
    /// the newest backup from before then — after a rebuild, the last one of the platform that
    /// was lost, which a backup of the new, empty one must never push out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volumes_made: Option<i64>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Store {
    pub endpoint: String,
    pub region: String,
    pub bucket: String,
    /// Files with the access key id and the secret key.
    pub key_file: String,
    pub secret_file: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct JobItem {
    pub component: String,
    pub object: String,
    pub take: Take,
    /// The network its source is reached on (what the task joins for it); not in the task's
    /// document.
    #[serde(skip)]
    pub network: Option<String>,
    /// The volume the task mounts for it; not in the task's document.
    #[serde(skip)]
    pub mount: Option<VolumeMount>,
}

/// A named volume mounted into the task (read-only for a backup, writable for a restore).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VolumeMount {
    /// The Docker volume (`<namespace>_<name>`).
    pub volume: String,
    /// Where the task sees it.
    pub target: String,
    /// The services (full names) that mount it: a restore restarts them.
    pub services: Vec<String>,
    /// The layer of the first of them: a restore into a platform whose service has not made
    /// the volume yet (a drill's copy runs no n8n) makes it labelled as that mount would.
    pub layer: String,
}

/// Where the task sees a volume: `/sprocket/volumes/<name>`.
pub fn volume_target(name: &str) -> String {
    format!("/sprocket/volumes/{name}")
}

/// How the task takes one artefact.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Take {
    /// `GET {url}/v1/sys/storage/raft/snapshot` with the backups' token.
    VaultSnapshot { url: String, token_file: String },
    /// A mounted file as it is (the keyring).
    File { path: String },
    /// Redis's replication stream (`SYNC`): the RDB of one point in time, made by a fork like
    /// `BGSAVE`'s, without a file on the task's disk.
    Redis {
        host: String,
        port: u16,
        password_file: String,
    },
    /// `GET {url}/api/definitions` as the administrator.
    RabbitmqDefinitions {
        url: String,
        user: String,
        password_file: String,
    },
    /// A tar of the folder a data volume is mounted at (file modes, owners and times kept).
    Volume { path: String },
    /// One file in a mounted volume (Traefik's `acme.json`): stored as it is, put back with mode
    /// 0600; a file not there yet is stored empty (Traefik reads an empty one as none).
    VolumeFile { path: String },
    /// `pg_dump -Fc` of one database as the administrator (not a superuser).
    Postgres {
        host: String,
        port: u16,
        user: String,
        password_file: String,
        database: String,
        sslmode: SslMode,
    },
}

/// The task's document and what its service needs: networks, host entries, the Docker secrets
/// it mounts (logical names, each at [`secret_file`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Task {
    pub job: Job,
    pub networks: Vec<String>,
    pub hosts: Vec<String>,
    pub secrets: Vec<String>,
    pub labels: BTreeMap<String, String>,
    /// What the plan holds that this task cannot take yet, with why.
    pub skipped: Vec<(String, String)>,
}

impl Task {
    /// The volumes it mounts, each once.
    pub fn mounts(&self) -> Vec<&VolumeMount> {
        distinct(self.job.items.iter().filter_map(|i| i.mount.as_ref()))
    }
}

/// Each volume once.
pub(crate) fn distinct<'a>(mounts: impl Iterator<Item = &'a VolumeMount>) -> Vec<&'a VolumeMount> {
    let mut out: Vec<&VolumeMount> = Vec::new();
    for m in mounts {
        if !out.iter().any(|o| o.volume == m.volume) {
            out.push(m);
        }
    }
    out
}

/// Where a backup of `p` cannot go: no `backup` section, no Vault recipients to encrypt to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotBackedUp(pub String);

/// Builds the task of backup `id` (started at `started`) of `p`. `keyring`: whether the keyring
/// is there to be mounted (its Docker secret made by the caller).
pub fn task(
    p: &Platform,
    provisions: &[Provision],
    items: &[Item],
    id: &str,
    started: i64,
    spec_sha256: &str,
    keyring: bool,
) -> Result<Task, NotBackedUp> {
    let env = &p.environment;
    let ns = env.namespace.as_str();
    let b = env.backup.as_ref().ok_or_else(|| {
        NotBackedUp(format!(
            "environment `{}` has no `backup` section: add `backup: {{ to: <s3 external>, bucket: <name> }}` to it",
            env.name
        ))
    })?;
    let recipients = p
        .vault
        .as_ref()
        .map(|v| v.recipients.clone())
        .unwrap_or_default();
    if recipients.is_empty() {
        return Err(NotBackedUp(
            "backups are encrypted to the operators of `vault.recipients`, and this environment has none: add the operators' public keys there".into(),
        ));
    }
    let s3 = provisions
        .iter()
        .find(|pr| pr.datastore == b.store && pr.kind == DatastoreKind::S3)
        .ok_or_else(|| {
            NotBackedUp(format!(
                "backup.to `{}` is not an S3 store with an administrator's key",
                b.store
            ))
        })?;
    let mut networks = vec![s3.network.clone()];
    let mut hosts = s3.hosts.clone();
    let mut secrets = vec![s3.admin_key_secret.clone(), s3.admin_secret.clone()];
    let store = Store {
        endpoint: s3.endpoint.clone(),
        region: s3.region.clone(),
        bucket: b.bucket.clone(),
        key_file: secret_file(&s3.admin_key_secret),
        secret_file: secret_file(&s3.admin_secret),
    };
    let join = |networks: &mut Vec<String>, net: String| {
        if !networks.contains(&net) {
            networks.push(net);
        }
    };
    let mut out = Vec::new();
    let mut skipped = Vec::new();
    for item in items {
        let object = crate::layout::object(ns, id, &item.component, item.extension);
        // Each artefact with the network the task reaches its source on (none: a mounted file)
        // or the volume it mounts.
        let mut mount = None;
        let (take, network) = match &item.source {
            Source::VaultSnapshot { service } => {
                let Some(v) = p.service(service) else {
                    continue;
                };
                if !sprocket_desired::state::token_holders(p).contains(&names::BACKUP_TOKEN_HOLDER)
                {
                    skipped.push((
                        item.component.clone(),
                        "no unseal agent runs here to keep and renew the backups' Vault token"
                            .to_string(),
                    ));
                    continue;
                }
                let token = sprocket_desired::state::token_secret(names::BACKUP_TOKEN_HOLDER);
                secrets.push(token.clone());
                let take = Take::VaultSnapshot {
                    url: format!(
                        "http://{service}:{}",
                        sprocket_desired::state::vault_port(v)
                    ),
                    token_file: secret_file(&token),
                };
                (take, Some(names::backup_network(ns, service)))
            }
            Source::VaultKeyring => {
                if !keyring {
                    skipped.push((
                        item.component.clone(),
                        "the keyring file is not on this machine".to_string(),
                    ));
                    continue;
                }
                secrets.push(KEYRING_SECRET.into());
                let take = Take::File {
                    path: secret_file(KEYRING_SECRET),
                };
                (take, None)
            }
            Source::Redis { service } => {
                let Some(d) = p.service(service).and_then(|s| s.datastore.as_ref()) else {
                    continue;
                };
                secrets.push(d.admin_secret.clone());
                let take = Take::Redis {
                    host: service.clone(),
                    port: d.admin_port,
                    password_file: secret_file(&d.admin_secret),
                };
                (take, Some(names::backup_network(ns, service)))
            }
            Source::RabbitmqDefinitions { service } => {
                let Some(pr) = provisions.iter().find(|pr| &pr.datastore == service) else {
                    continue;
                };
                secrets.push(pr.admin_secret.clone());
                let take = Take::RabbitmqDefinitions {
                    url: format!("http://{}:{}", pr.host, pr.admin_port),
                    user: pr.admin_user.clone(),
                    password_file: secret_file(&pr.admin_secret),
                };
                (take, Some(pr.network.clone()))
            }
            Source::Postgres {
                datastore,
                database,
            } => {
                let Some(pr) = provisions.iter().find(|pr| &pr.datastore == datastore) else {
                    continue;
                };
                for h in &pr.hosts {
                    if !hosts.contains(h) {
                        hosts.push(h.clone());
                    }
                }
                secrets.push(pr.admin_secret.clone());
                let take = Take::Postgres {
                    host: pr.host.clone(),
                    port: pr.admin_port,
                    user: pr.admin_user.clone(),
                    password_file: secret_file(&pr.admin_secret),
                    database: database.clone(),
                    sslmode: pr.sslmode,
                };
                (take, Some(pr.network.clone()))
            }
            Source::Volume { volume, .. } => {
                let m = volume_mount(p, volume);
                let take = Take::Volume {
                    path: m.target.clone(),
                };
                mount = Some(m);
                (take, None)
            }
            Source::Acme { service, path } => {
                // The named volume of the edge that holds the file.
                let Some((name, within)) = p.service(service).and_then(|e| {
                    e.volumes.iter().find_map(|v| match v {
                        Volume::Named { name, target, .. } => path
                            .strip_prefix(target.trim_end_matches('/'))
                            .and_then(|rest| rest.strip_prefix('/'))
                            .map(|rest| (name.clone(), rest.to_string())),
                        Volume::Bind { .. } => None,
                    })
                }) else {
                    skipped.push((
                        item.component.clone(),
                        format!("{path} is on no named volume of `{service}`: its certificates go with its container, and Let's Encrypt issues them again on a rebuild (mind its rate limits)"),
                    ));
                    continue;
                };
                let m = volume_mount(p, &name);
                let take = Take::VolumeFile {
                    path: format!("{}/{within}", m.target),
                };
                mount = Some(m);
                (take, None)
            }
        };
        if let Some(net) = &network {
            join(&mut networks, net.clone());
        }
        out.push(JobItem {
            component: item.component.clone(),
            object,
            take,
            network,
            mount,
        });
    }
    secrets.sort();
    secrets.dedup();
    let labels = [
        (L::MANAGED_BY, L::MANAGED_BY_VALUE.to_string()),
        (L::NAMESPACE, ns.to_string()),
        (L::ENVIRONMENT, env.name.clone()),
        (L::NAME, "backup".to_string()),
        (BACKUP_LABEL, id.to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    Ok(Task {
        job: Job {
            namespace: ns.to_string(),
            environment: env.name.clone(),
            id: id.to_string(),
            started,
            spec_sha256: spec_sha256.to_string(),
            recipients,
            store,
            items: out,
            keep: crate::Policy {
                daily: b.keep_daily,
                weekly: b.keep_weekly,
                monthly: b.keep_monthly,
            },
            volumes_made: None,
        },
        networks,
        hosts,
        secrets,
        labels,
        skipped,
    })
}

/// Volume `name` of `p`'s namespace as the task mounts it, with the services that mount it.
fn volume_mount(p: &Platform, name: &str) -> VolumeMount {
    let ns = &p.environment.namespace;
    let services: Vec<&sprocket_spec::model::Service> = p
        .services()
        .filter(|s| {
            s.volumes
                .iter()
                .any(|v| matches!(v, Volume::Named { name: n, .. } if n == name))
        })
        .collect();
    VolumeMount {
        volume: sprocket_desired::state::volume_name(ns, name),
        target: volume_target(name),
        services: services
            .iter()
            .map(|s| sprocket_desired::state::service_name(ns, &s.name))
            .collect(),
        layer: services
            .first()
            .map(|s| s.layer.clone())
            .unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn offline() -> Platform {
        crate::example_offline()
    }

    #[test]
    fn the_task_reaches_each_datastore_on_its_own_network_and_mounts_no_value() {
        let p = offline();
        let provisions = sprocket_desired::provision::provisions(&p);
        let items = crate::plan(&p);
        let t = task(
            &p,
            &provisions,
            &items,
            "20261203T020000Z-a1b2",
            0,
            "00",
            true,
        )
        .unwrap();
        let components: Vec<&str> = t.job.items.iter().map(|i| i.component.as_str()).collect();
        assert_eq!(components[..2], ["vault", "vault-keyring"]);
        assert!(components.contains(&"redis:redis"), "{components:?}");
        assert!(components.contains(&"rabbitmq:rabbitmq"), "{components:?}");
        assert!(
            components.iter().any(|c| c.starts_with("postgres:")),
            "{components:?}"
        );
        // Vault and Redis on their backup networks, RabbitMQ and the externals on their
        // provisioning ones; never a consumer's network.
        for net in &t.networks {
            assert!(
                net.starts_with("sprocket_backup_") || net.starts_with("sprocket_provision_"),
                "{net}"
            );
        }
        assert!(t.networks.contains(&"sprocket_backup_vault".to_string()));
        assert!(t.networks.contains(&"sprocket_provision_s3".to_string()));
        // The Docker host (PostgreSQL and SeaweedFS offline) by its host entry.
        assert_eq!(t.hosts, ["host-gateway host.docker.internal"]);
        // Tokens and passwords are files; the document names files, never values.
        assert!(t
            .secrets
            .contains(&"vault-token-sprocketctl-backup".to_string()));
        assert!(t.secrets.contains(&KEYRING_SECRET.to_string()));
        assert_eq!(t.job.recipients, ["age1operator"]);
        for i in &t.job.items {
            assert!(i.object.starts_with("sprocket/20261203T020000Z-a1b2/"));
            assert!(i.object.ends_with(".age"));
        }
        // Without the keyring file its artefact is said skipped, not silently missing.
        let t = task(&p, &provisions, &items, "x", 0, "00", false).unwrap();
        assert_eq!(t.skipped[0].0, "vault-keyring");
        assert!(!t.secrets.contains(&KEYRING_SECRET.to_string()));
    }

    #[test]
    fn data_volumes_and_acme_json_are_taken_from_their_volumes_with_the_services_that_mount_them() {
        let mut p = offline();
        p.environment.tls = sprocket_spec::model::Tls::LetsEncryptStaging {
            email: "ops@example.com".into(),
        };
        let provisions = sprocket_desired::provision::provisions(&p);
        let items = crate::plan(&p);
        let t = task(&p, &provisions, &items, "x", 0, "00", true).unwrap();
        let item = |c: &str| {
            t.job
                .items
                .iter()
                .find(|i| i.component == c)
                .unwrap_or_else(|| panic!("{c} in {:?}", t.job.items))
        };
        // n8n's volume (its encryption key), marked `backup: true` in the example.
        let n8n = item("volume:n8n-data");
        assert_eq!(
            n8n.take,
            Take::Volume {
                path: "/sprocket/volumes/n8n-data".into()
            }
        );
        let m = n8n.mount.as_ref().unwrap();
        assert_eq!(m.volume, "sprocket_n8n-data");
        assert_eq!(m.services, ["sprocket_n8n"]);
        // acme.json, in the edge's volume mounted at /data.
        let acme = item("acme");
        assert_eq!(
            acme.take,
            Take::VolumeFile {
                path: "/sprocket/volumes/traefik-data/acme.json".into()
            }
        );
        assert_eq!(acme.mount.as_ref().unwrap().services, ["sprocket_traefik"]);
        assert_eq!(t.mounts().len(), 2);
        // Unmarked volumes (Redis's, RabbitMQ's: their dumps are taken instead) are not.
        assert!(!t
            .job
            .items
            .iter()
            .any(|i| i.component == "volume:redis-data"));
        // The document names no volume: the task's service mounts them.
        let doc = serde_json::to_string(&t.job).unwrap();
        assert!(!doc.contains("sprocket_n8n-data"), "{doc}");

        // An edge keeping acme.json in its container: said, not taken.
        let edge = p
            .layers
            .iter_mut()
            .flat_map(|l| l.services.iter_mut())
            .find(|s| s.name == "traefik")
            .unwrap();
        edge.volumes.clear();
        let t = task(&p, &provisions, &crate::plan(&p), "x", 0, "00", true).unwrap();
        let (c, why) = t.skipped.iter().find(|(c, _)| c == "acme").unwrap();
        assert!(
            why.contains("on no named volume of `traefik`"),
            "{c}: {why}"
        );
    }

    #[test]
    fn an_environment_without_backup_says_how_to_add_it() {
        let mut p = offline();
        p.environment.backup = None;
        let e = task(&p, &[], &[], "x", 0, "00", true).unwrap_err();
        assert!(e.0.contains("add `backup:"), "{}", e.0);
    }
}
