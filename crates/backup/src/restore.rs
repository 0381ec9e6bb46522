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
use sprocket_spec::model::Platform;
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
    for a in &manifest.artefacts {
        if !wanted(&a.component) {
            left.push((a.component.clone(), "not asked for (--only)".to_string()));
            continue;
        }
        let Some(target) = t.job.items.iter().find(|i| i.component == a.component) else {
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
            | Take::Postgres { password_file, .. } => password_file.clone(),
        };
        secrets.push(file.trim_start_matches(&secret_file("")).to_string());
        out.push(RestoreItem {
            component: a.component.clone(),
            object: a.object.clone(),
            bytes: a.bytes,
            sha256: a.sha256.clone(),
            target: target.take.clone(),
        });
    }
    // The networks of what is restored: the backup task's, less what this run does not touch.
    for i in t
        .job
        .items
        .iter()
        .filter(|i| out.iter().any(|o| o.component == i.component))
    {
        if let Some(net) = i.network.as_ref().filter(|n| !networks.contains(n)) {
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
}
