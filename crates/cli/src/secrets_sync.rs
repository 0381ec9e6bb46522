//! The secrets' Vault half: the values the enabled services need, written to Vault KV v2 with
//! check-and-set — source values when they differ, generated ones once — and read back as the
//! versions Docker secrets are made from. `secrets sync`, `secrets rotate` and the Vault step of
//! `up` all go through [`sync`]. Values stay in memory; the report names secrets, paths,
//! versions and keyed fingerprints.

use crate::output::Progress;
use serde::Serialize;
use sprocket_desired::DesiredState;
use sprocket_secrets::sync::{self as plan, Current, Origin, Outcome, Want};
use sprocket_secrets::value::{self, FINGERPRINT_KEY_LEN};
use sprocket_spec::model::{Alphabet, Platform, SecretSource};
use sprocket_spec::names::{secret_vault_path, VaultPath, FINGERPRINT_KEY_SECRET};
use sprocket_vault::kv::{KvState, KvWriteError};
use sprocket_vault::Authed;
use std::collections::BTreeMap;

/// One secret after the sync: where it lives, its current version and fingerprint. The value is
/// kept for the Docker secret made from it and never serialised or shown.
#[derive(Clone, Serialize)]
pub struct Synced {
    pub secret: String,
    pub vault_path: String,
    pub outcome: Outcome,
    pub version: u64,
    pub fingerprint: String,
    #[serde(skip)]
    pub value: String,
    /// The value Vault held before this sync (a rotation's way back).
    #[serde(skip)]
    pub previous: Option<String>,
}

impl std::fmt::Debug for Synced {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Synced {{ {} v{} {:?} {} }}",
            self.secret, self.version, self.outcome, self.fingerprint
        )
    }
}

/// What a sync did.
pub struct SyncReport {
    /// Every synced secret, the fingerprints' key first.
    pub secrets: Vec<Synced>,
}

#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error("secret `{secret}`: {source}")]
    Write {
        secret: String,
        source: Box<KvWriteError>,
    },
    #[error("secret `{secret}`: reading {path} from Vault: {source}")]
    Read {
        secret: String,
        path: String,
        source: Box<sprocket_vault::VaultError>,
    },
    #[error("secret `{secret}` comes from the environment's source, which does not hold a usable value for it (run `sprocketctl secrets check`)")]
    NoValue { secret: String },
    #[error("generating a value: {0}")]
    Random(#[from] std::io::Error),
}

/// The secrets the enabled services mount that live in Vault, with where each value comes
/// from (`values`: the checked source values by secret name). The fingerprints' key is not
/// among them: [`sync`] keeps it itself.
pub fn wants(
    p: &Platform,
    desired: &DesiredState,
    values: &BTreeMap<String, String>,
) -> Result<Vec<Want>, SyncError> {
    let mut out = Vec::new();
    for r in desired.layers.iter().flat_map(|l| &l.secrets) {
        let (Some(location), Some(spec)) = (&r.vault, p.secrets.iter().find(|s| s.name == r.name))
        else {
            continue;
        };
        let origin = match spec.source {
            SecretSource::Generate => Origin::Generate {
                alphabet: spec.alphabet,
                length: spec.length,
            },
            SecretSource::Doppler => Origin::Source(values.get(&r.name).cloned().ok_or_else(
                || SyncError::NoValue {
                    secret: r.name.clone(),
                },
            )?),
            _ => continue,
        };
        out.push(Want {
            secret: r.name.clone(),
            location: location.clone(),
            origin,
        });
    }
    Ok(out)
}

async fn current(api: Authed<'_>, secret: &str, at: &VaultPath) -> Result<Current, SyncError> {
    let state = api
        .kv_read(&at.mount, &at.path, &at.key)
        .await
        .map_err(|source| SyncError::Read {
            secret: secret.to_string(),
            path: format!("{}/{}", at.mount, at.path),
            source: Box::new(source),
        })?;
    Ok(match state {
        KvState::Live(v) => Current {
            version: v.version,
            value: v.value,
        },
        other => Current {
            version: other.cas(),
            value: None,
        },
    })
}

/// Writes what differs, generates what is missing (and what `rotate` names), all with
/// check-and-set, and returns every secret's current version. The fingerprints' key is made
/// once (hex of 32 random bytes) beside the namespace's secrets.
pub async fn sync(
    api: Authed<'_>,
    namespace: &str,
    wants: &[Want],
    rotate: &[String],
    p: Progress,
) -> Result<SyncReport, SyncError> {
    let key_want = Want {
        secret: FINGERPRINT_KEY_SECRET.into(),
        location: secret_vault_path(namespace, FINGERPRINT_KEY_SECRET, None, None),
        origin: Origin::Generate {
            alphabet: Alphabet::Hex,
            length: FINGERPRINT_KEY_LEN,
        },
    };
    let all: Vec<&Want> = std::iter::once(&key_want).chain(wants).collect();
    // Read concurrently (a few at a time): with a hundred secrets, one after another made the
    // no-op `up` wait ≈ 0.4 s on Vault alone.
    use futures_util::stream::{self, StreamExt, TryStreamExt};
    let now: BTreeMap<String, _> = stream::iter(all.iter().map(|w| async move {
        current(api, &w.secret, &w.location)
            .await
            .map(|c| (w.secret.clone(), c))
    }))
    .buffered(8)
    .try_collect::<Vec<_>>()
    .await?
    .into_iter()
    .collect();
    let owned: Vec<Want> = all.into_iter().cloned().collect();
    let steps = plan::plan(
        &owned,
        &|name: &str| now.get(name).cloned().unwrap_or_default(),
        rotate,
    )?;
    let mut out: Vec<Synced> = Vec::new();
    let mut key = String::new();
    for s in steps {
        let version = match s.outcome {
            Outcome::Unchanged => s.cas,
            Outcome::Created | Outcome::Changed => api
                .kv_write(
                    &s.location.mount,
                    &s.location.path,
                    &s.location.key,
                    &s.value,
                    s.cas,
                )
                .await
                .map_err(|source| SyncError::Write {
                    secret: s.secret.clone(),
                    source: Box::new(source),
                })?,
        };
        if s.secret == FINGERPRINT_KEY_SECRET {
            key = s.value.clone();
        }
        let fingerprint = value::fingerprint(key.as_bytes(), s.value.as_bytes());
        if s.outcome != Outcome::Unchanged {
            p.say(format!(
                "  secret {}: {} in Vault ({}), version {version}, fingerprint {fingerprint}",
                s.secret,
                match s.outcome {
                    Outcome::Created => "created",
                    _ => "changed",
                },
                s.location.mount.clone() + "/" + &s.location.path,
            ));
        }
        let previous = now.get(&s.secret).and_then(|c| c.value.clone());
        out.push(Synced {
            previous,
            secret: s.secret,
            vault_path: format!("{}/{}", s.location.mount, s.location.path),
            outcome: s.outcome,
            version,
            fingerprint,
            value: s.value,
        });
    }
    Ok(SyncReport { secrets: out })
}

/// Makes sure the secrets have their home before the first sync: sprocketctl's own KV v2 mount
/// and the admin policy that may write there (`up` does the same through its configuration
/// step). A `sprocket/` mount that is not ours is refused, never written into.
pub async fn ensure_home(
    api: Authed<'_>,
    config: &sprocket_desired::vault::VaultConfig,
) -> Result<(), String> {
    use sprocket_desired::vault::{ADMIN_POLICY, MOUNT_DESCRIPTION};
    use sprocket_spec::names::SECRETS_MOUNT;
    let mounts = api.mounts().await.map_err(|e| e.to_string())?;
    match mounts.get(&format!("{SECRETS_MOUNT}/")) {
        None => api
            .enable_mount(SECRETS_MOUNT, "kv", "2", MOUNT_DESCRIPTION)
            .await
            .map_err(|e| e.to_string())?,
        Some(m) if m.description == MOUNT_DESCRIPTION && m.version.as_deref() == Some("2") => {}
        Some(_) => {
            return Err(format!(
                "Vault has a `{SECRETS_MOUNT}/` mount that sprocketctl did not make (or not KV version 2): the platform's secrets are not written into it\n  hint: move it elsewhere (`bao secrets move {SECRETS_MOUNT}/ …`) and run again"
            ))
        }
    }
    if let Some(want) = config.policies.get(ADMIN_POLICY) {
        if api
            .policy(ADMIN_POLICY)
            .await
            .map_err(|e| e.to_string())?
            .as_deref()
            != Some(want)
        {
            api.put_policy(ADMIN_POLICY, want)
                .await
                .map_err(|e| e.to_string())?;
        }
    }
    Ok(())
}
