//! What `restore` puts back, from a backup's manifest into the platform as the spec describes it
//! now. Pure: the restore task's document, like the backup task's, holds where each artefact
//! comes from and goes, and files — never a value. Its artefacts' keys (each artefact's own age
//! file key, unwrapped on the operator's machine with the operator's identity) reach it as one
//! Docker secret made for the run, so the identity itself never leaves that machine and the task
//! can read exactly the artefacts it restores.

use crate::job::{self, Store, Take};
use crate::Manifest;
use serde::{Deserialize, Serialize};
use sprocket_desired::provision::{secret_file, Provision};
use sprocket_spec::model::{Platform, Privileges};
use std::collections::BTreeMap;

/// The environment variable the restore task reads its [`RestoreJob`] from.
pub const JOB_ENV: &str = "SPROCKET_RESTORE";
/// The logical name the artefacts' keys are mounted under (JSON: component → hex file key).
pub const KEYS_SECRET: &str = "restore-keys";

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RestoreJob {
    pub namespace: String,
    /// The backup restored.
    pub id: String,
    pub store: Store,
    pub items: Vec<RestoreItem>,
    /// Replace data that is there; without it, a datastore holding data is left as it is and
    /// reported.
    pub force: bool,
    /// The file with the artefacts' keys.
    pub keys_file: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct RestoreItem {
    pub component: String,
    pub object: String,
    pub bytes: u64,
    pub sha256: String,
    /// Where it goes: the same endpoint and administrator the backup took it from.
    pub target: Take,
    /// PostgreSQL, restored into another namespace: the role that owns the database here. The
    /// dump's owners are the other namespace's roles, so its objects are made as this one
    /// (`--no-owner --role`) and its grants are the ones `up` gives.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    /// RabbitMQ, restored into another namespace: the ownership marker of the backup's
    /// namespace, which the definitions' users and vhosts carry; they are given this
    /// namespace's ([`retag`]), so `up` knows them as its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retag: Option<(String, String)>,
    /// The volume the task mounts (writable) for it; not in the task's document.
    #[serde(skip)]
    pub mount: Option<job::VolumeMount>,
}

/// Replaces the ownership tag `from` with `to` in RabbitMQ definitions (`users[].tags`,
/// `vhosts[].tags` and `vhosts[].metadata.tags`, as a comma-separated string or a list, as
/// RabbitMQ's versions write them); other tags are kept. How many it replaced.
pub fn retag(definitions: &mut serde_json::Value, from: &str, to: &str) -> usize {
    use serde_json::Value;
    fn one(tags: &mut Value, from: &str, to: &str) -> usize {
        match tags {
            Value::String(s) => {
                let mut n = 0;
                let parts: Vec<String> = s
                    .split(',')
                    .map(|t| {
                        if t.trim() == from {
                            n += 1;
                            to.to_string()
                        } else {
                            t.to_string()
                        }
                    })
                    .collect();
                *s = parts.join(",");
                n
            }
            Value::Array(a) => a
                .iter_mut()
                .filter(|t| t.as_str() == Some(from))
                .map(|t| *t = Value::String(to.to_string()))
                .count(),
            _ => 0,
        }
    }
    let mut n = 0;
    for list in ["users", "vhosts"] {
        for o in definitions[list].as_array_mut().into_iter().flatten() {
            if let Some(t) = o.get_mut("tags") {
                n += one(t, from, to);
            }
            if let Some(t) = o.get_mut("metadata").and_then(|m| m.get_mut("tags")) {
                n += one(t, from, to);
            }
        }
    }
    n
}

/// A component of a backup of namespace `from`, named as in namespace `to`: a database named
/// after its namespace (`<namespace>_<service>`, `access`'s default) is the same one named after
/// the other; every other component keeps its name.
pub fn component_in(component: &str, from: &str, to: &str) -> String {
    match component
        .strip_prefix("postgres:")
        .and_then(|d| d.strip_prefix(from))
        .and_then(|d| d.strip_prefix('_'))
    {
        Some(rest) if from != to => format!("postgres:{to}_{rest}"),
        _ => component.to_string(),
    }
}

/// The restore task and what runs elsewhere.
#[derive(Debug, Clone, PartialEq)]
pub struct RestoreTask {
    pub job: RestoreJob,
    pub networks: Vec<String>,
    pub hosts: Vec<String>,
    /// Logical names of the secrets it mounts ([`KEYS_SECRET`] among them).
    pub secrets: Vec<String>,
    pub labels: BTreeMap<String, String>,
    /// Restored from the operator's machine: Vault's data (over its private socket, with the
    /// backup's keyring), the keyring file.
    pub local: Vec<String>,
    /// In the backup but not restored by this version or not wanted, with why.
    pub left: Vec<(String, String)>,
}

impl RestoreTask {
    /// The volumes it mounts (writable), each once.
    pub fn mounts(&self) -> Vec<&job::VolumeMount> {
        job::distinct(self.job.items.iter().filter_map(|i| i.mount.as_ref()))
    }

    /// The services to restart once it has run: those that mount a volume it put files into
    /// (`put_back`: the components that put something back; they read their files at start,
    /// and must not keep writing over the restored ones).
    pub fn restarts(&self, put_back: &[&str]) -> Vec<String> {
        let mut out: Vec<String> = self
            .job
            .items
            .iter()
            .filter(|i| put_back.contains(&i.component.as_str()))
            .filter_map(|i| i.mount.as_ref())
            .flat_map(|m| m.services.iter().cloned())
            .collect();
        out.sort();
        out.dedup();
        out
    }
}

/// Builds the restore of `manifest` into `p`. `only`: the components (or their kinds: `redis`
/// for `redis:redis`) to restore; empty for all.
pub fn task(
    p: &Platform,
    provisions: &[Provision],
    manifest: &Manifest,
    only: &[String],
    force: bool,
) -> Result<RestoreTask, job::NotBackedUp> {
    let items = crate::plan(p);
    let t = job::task(p, provisions, &items, &manifest.id, 0, "", true)?;
    let wanted = |component: &str| {
        only.is_empty()
            || only
                .iter()
                .any(|o| o == component || component.split(':').next() == Some(o.as_str()))
    };
    let mut out = Vec::new();
    let mut local = Vec::new();
    let mut left = Vec::new();
    let mut secrets = vec![
        t.job
            .store
            .key_file
            .trim_start_matches(&secret_file(""))
            .to_string(),
        t.job
            .store
            .secret_file
            .trim_start_matches(&secret_file(""))
            .to_string(),
        KEYS_SECRET.to_string(),
    ];
    let mut networks = vec![t.networks[0].clone()];
    let here = &p.environment.namespace;
    // Another namespace's backup goes only into a drill's scratch copy of it.
    let other = &manifest.namespace != here;
    if other && p.environment.scratch_of.as_ref() != Some(&manifest.namespace) {
        return Err(job::NotBackedUp(format!(
            "backup {} is of namespace `{}`: it is restored into `{}` or a drill's copy of it, not into `{here}`",
            manifest.id, manifest.namespace, manifest.namespace
        )));
    }
    for a in &manifest.artefacts {
        let component = component_in(&a.component, &manifest.namespace, here);
        // A database not named after its namespace is not the copy's own: on a server both
        // share, it is the live platform's.
        if other && component == a.component && a.component.starts_with("postgres:") {
            left.push((
                a.component.clone(),
                format!("not named after namespace `{}`: on a server a drill's copy shares with the live platform, it is the live one's; not restored into `{here}`", manifest.namespace),
            ));
            continue;
        }
        if !wanted(&a.component) && !wanted(&component) {
            left.push((a.component.clone(), "not asked for (--only)".to_string()));
            continue;
        }
        let Some(target) = t.job.items.iter().find(|i| i.component == component) else {
            left.push((
                a.component.clone(),
                "the spec has no such component here any more".to_string(),
            ));
            continue;
        };
        let file = match &target.take {
            Take::File { .. } => {
                local.push(a.component.clone());
                continue;
            }
            Take::VaultSnapshot { .. } => {
                local.push(a.component.clone());
                continue;
            }
            Take::Redis { password_file, .. }
            | Take::RabbitmqDefinitions { password_file, .. }
            | Take::Postgres { password_file, .. } => Some(password_file.clone()),
            Take::Volume { .. } | Take::VolumeFile { .. } => None,
        };
        if let Some(file) = file {
            secrets.push(file.trim_start_matches(&secret_file("")).to_string());
        }
        let owner = match &target.take {
            Take::Postgres { database, .. } if other => provisions
                .iter()
                .flat_map(|pr| &pr.logins)
                .find(|l| &l.database == database && l.privileges == Privileges::Owner)
                .map(|l| l.user.clone()),
            _ => None,
        };
        let retag = match &target.take {
            Take::RabbitmqDefinitions { .. } if other => Some((
                sprocket_desired::provision::owner(&manifest.namespace),
                sprocket_desired::provision::owner(here),
            )),
            _ => None,
        };
        out.push(RestoreItem {
            component: a.component.clone(),
            object: a.object.clone(),
            bytes: a.bytes,
            sha256: a.sha256.clone(),
            target: target.take.clone(),
            owner,
            retag,
            mount: target.mount.clone(),
        });
        // The networks of what is restored: the backup task's, less what this run does not
        // touch.
        if let Some(net) = target.network.as_ref().filter(|n| !networks.contains(n)) {
            networks.push(net.clone());
        }
    }
    secrets.sort();
    secrets.dedup();
    let mut labels = t.labels.clone();
    labels.insert(
        sprocket_desired::labels::NAME.to_string(),
        "restore".to_string(),
    );
    Ok(RestoreTask {
        job: RestoreJob {
            namespace: p.environment.namespace.clone(),
            id: manifest.id.clone(),
            store: t.job.store.clone(),
            items: out,
            force,
            keys_file: secret_file(KEYS_SECRET),
        },
        networks,
        hosts: t.hosts.clone(),
        secrets,
        labels,
        local,
        left,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Artefact;

    fn offline() -> Platform {
        crate::example_offline()
    }

    fn manifest(components: &[&str]) -> Manifest {
        Manifest {
            format: crate::manifest::FORMAT,
            id: "20261203T020000Z-a1b2".into(),
            namespace: "sprocket".into(),
            environment: "offline".into(),
            started_at: String::new(),
            finished_at: String::new(),
            spec_sha256: String::new(),
            recipients: Vec::new(),
            artefacts: components
                .iter()
                .map(|c| Artefact {
                    component: c.to_string(),
                    object: format!("sprocket/x/{c}.age"),
                    bytes: 1,
                    sha256: "00".into(),
                    seconds: 0.0,
                })
                .collect(),
        }
    }

    #[test]
    fn a_volume_is_put_back_through_a_writable_mount_and_its_services_restart() {
        let p = offline();
        let provisions = sprocket_desired::provision::provisions(&p);
        let m = manifest(&["redis:redis", "volume:n8n-data"]);
        let t = task(&p, &provisions, &m, &["volume".into()], true).unwrap();
        assert_eq!(t.job.items.len(), 1, "{:?}", t.job.items);
        assert_eq!(t.job.items[0].component, "volume:n8n-data");
        assert_eq!(t.mounts()[0].volume, "sprocket_n8n-data");
        assert_eq!(t.restarts(&["volume:n8n-data"]), ["sprocket_n8n"]);
        // Nothing put back (an empty acme.json artefact): nothing restarts.
        assert!(t.restarts(&[]).is_empty());
        // No password of anything for it.
        assert!(
            !t.secrets.iter().any(|s| s.contains("password")),
            "{:?}",
            t.secrets
        );
        // Without it nothing restarts.
        let t = task(&p, &provisions, &m, &["redis".into()], true).unwrap();
        assert!(t.mounts().is_empty() && t.restarts(&["redis:redis"]).is_empty());
    }

    #[test]
    fn vault_and_its_keyring_from_here_the_datastores_in_the_swarm_and_only_what_is_asked() {
        let p = offline();
        let provisions = sprocket_desired::provision::provisions(&p);
        let m = manifest(&[
            "vault",
            "vault-keyring",
            "redis:redis",
            "rabbitmq:rabbitmq",
            "gone:x",
        ]);
        let t = task(&p, &provisions, &m, &[], true).unwrap();
        assert_eq!(t.local, ["vault", "vault-keyring"]);
        let swarm: Vec<&str> = t.job.items.iter().map(|i| i.component.as_str()).collect();
        assert_eq!(swarm, ["redis:redis", "rabbitmq:rabbitmq"]);
        assert_eq!(t.left[0].0, "gone:x");
        // The task mounts the keys and the administrators' secrets, never the backups' token.
        assert!(t.secrets.contains(&KEYS_SECRET.to_string()));
        assert!(
            !t.secrets.iter().any(|s| s.starts_with("vault-token")),
            "{:?}",
            t.secrets
        );
        assert!(t.networks.contains(&"sprocket_backup_redis".to_string()));
        assert!(!t.networks.contains(&"sprocket_backup_vault".to_string()));
        // --only by kind.
        let t = task(&p, &provisions, &m, &["redis".to_string()], false).unwrap();
        assert!(t.local.is_empty() && !t.job.force);
        assert_eq!(t.job.items.len(), 1);
        assert_eq!(t.left.len(), 4);
    }

    #[test]
    fn into_another_namespace_a_database_is_the_one_named_after_it_and_made_as_its_owner() {
        let scratch = sprocket_spec::model::Scratch {
            namespace: "sprocket-drill".into(),
            http_port: 18080,
            https_port: 18443,
            keyring: "/tmp/k.age".into(),
        };
        let p = crate::example_offline_as(Some(&scratch));
        let provisions = sprocket_desired::provision::provisions(&p);
        let m = manifest(&[
            "vault",
            "postgres:sprocket_demo",
            "postgres:sprocket_n8n",
            "postgres:shared",
        ]);
        let t = task(&p, &provisions, &m, &[], true).unwrap();
        assert!(
            t.left
                .iter()
                .any(|(c, why)| c == "postgres:shared" && why.contains("live one's")),
            "{:?}",
            t.left
        );
        let pg: Vec<_> = t
            .job
            .items
            .iter()
            .map(|i| match &i.target {
                Take::Postgres { database, .. } => (database.clone(), i.owner.clone()),
                other => panic!("{other:?}"),
            })
            .collect();
        // The artefact keeps its name (its key's), the target is this namespace's database,
        // made as the role that owns it here.
        assert_eq!(t.job.items[0].component, "postgres:sprocket_demo");
        assert!(pg.contains(&(
            "sprocket-drill_demo".into(),
            Some("sprocket-drill_demo".into())
        )));
        assert!(
            t.networks
                .contains(&"sprocket-drill_provision_postgres".to_string()),
            "{:?}",
            t.networks
        );
        // Another namespace's backup into anything but a drill's copy of it: refused.
        let mut elsewhere = m.clone();
        elsewhere.namespace = "other".into();
        assert!(task(&p, &provisions, &elsewhere, &[], true).is_err());
        // In its own namespace a dump's owners are the ones it names.
        let p = offline();
        let t = task(&p, &provisions_of(&p), &m, &[], true).unwrap();
        assert!(t.job.items.iter().all(|i| i.owner.is_none()));
        assert_eq!(
            component_in("postgres:sprocket_demo", "sprocket", "x"),
            "postgres:x_demo"
        );
        assert_eq!(
            component_in("postgres:other", "sprocket", "x"),
            "postgres:other"
        );
        assert_eq!(component_in("redis:redis", "sprocket", "x"), "redis:redis");
    }

    fn provisions_of(p: &Platform) -> Vec<Provision> {
        sprocket_desired::provision::provisions(p)
    }

    #[test]
    fn retag_replaces_only_the_backups_owner_in_both_forms() {
        let mut d = serde_json::json!({
            "users": [
                { "name": "demo", "tags": "sprocketctl-sprocket" },
                { "name": "admin", "tags": ["administrator"] },
                { "name": "x", "tags": "monitoring,sprocketctl-sprocket" },
                { "name": "y", "tags": "sprocketctl-sprocket-drill" }
            ],
            "vhosts": [
                { "name": "demo", "metadata": { "tags": ["sprocketctl-sprocket"] } },
                { "name": "/" }
            ]
        });
        assert_eq!(retag(&mut d, "sprocketctl-sprocket", "sprocketctl-s2"), 3);
        assert_eq!(d["users"][0]["tags"], "sprocketctl-s2");
        assert_eq!(d["users"][1]["tags"], serde_json::json!(["administrator"]));
        assert_eq!(d["users"][2]["tags"], "monitoring,sprocketctl-s2");
        assert_eq!(
            d["users"][3]["tags"], "sprocketctl-sprocket-drill",
            "another owner's"
        );
        assert_eq!(
            d["vhosts"][0]["metadata"]["tags"],
            serde_json::json!(["sprocketctl-s2"])
        );
    }
}
