//! Vault's data back from a backup, from the operator's machine over Vault's private socket.
//!
//! A raft snapshot is sealed with the keys of the Vault it was taken from, so it comes back
//! with them (OpenBao's documented path for a fresh cluster): the running Vault (initialised by
//! `up`, with keys of its own) installs the snapshot with `sys/storage/raft/snapshot-force`,
//! then is unsealed with the backup's keyring — the original keys. The keyring file becomes the
//! backup's (the one in place is kept beside it), so `up` afterwards gives the unseal agent the
//! original keys and rolls the services onto the restored secrets.

use super::store::Store;
use crate::error::CliError;
use crate::vault_lifecycle as life;
use sprocket_backup::Manifest;
use sprocket_spec::model::Platform;
use sprocket_vault::keyring::Keyring;
use std::path::Path;
use std::time::{Duration, Instant};

/// What restoring Vault did, or why it did not.
pub enum Outcome {
    Restored {
        keyring_fingerprint: String,
        seconds: f64,
        /// The backup's namespace's secrets read back with the original token: what it holds.
        holds: String,
    },
    /// Vault holds data and the run was not forced: what it holds.
    Held(String),
}

/// Restores Vault's data and keyring from `manifest` (which must hold both).
pub async fn restore(
    p: &Platform,
    docker_root: &Path,
    store: &Store,
    manifest: &Manifest,
    identities: &[Box<dyn age::Identity>],
    identity: &Path,
    force: bool,
) -> Result<Outcome, CliError> {
    let t0 = Instant::now();
    let v = p
        .vault
        .as_ref()
        .ok_or_else(|| CliError::Invalid("the spec has no `vault` section here".into()))?;
    let c = life::client(p, None, docker_root).ok_or_else(|| {
        CliError::Invalid(format!(
            "Vault service `{}` does not run in environment `{}`",
            v.service, p.environment.name
        ))
    })?;
    let status = life::wait_listener(&c, Duration::from_secs(60)).await?;
    if !status.initialized {
        return Err(CliError::Blocked(
            "Vault is not initialised: run `sprocketctl up` first (it starts and initialises Vault), then `restore --force`".into(),
        ));
    }
    let current = life::open_keyring(v, Some(identity))?;
    if !force {
        return Ok(Outcome::Held(format!(
            "Vault is initialised with its own data (keyring {}, fingerprint {})",
            v.keyring.display(),
            current.fingerprint()
        )));
    }
    let missing = |c: &str| CliError::Failed(format!("backup {} holds no `{c}`", manifest.id));
    let keyring_art = manifest
        .artefact("vault-keyring")
        .ok_or_else(|| missing("vault-keyring"))?;
    let snapshot_art = manifest.artefact("vault").ok_or_else(|| missing("vault"))?;
    let keyring_bytes = super::restore::download_plain(store, keyring_art, identities)
        .await
        .map_err(|e| CliError::Failed(format!("vault-keyring: {e}")))?;
    let original = open_bytes(&keyring_bytes, identity)?;
    let snapshot = super::restore::download_plain(store, snapshot_art, identities)
        .await
        .map_err(|e| CliError::Failed(format!("vault: {e}")))?;
    super::verify::check_snapshot(&mut &snapshot[..])
        .map_err(|e| CliError::Failed(format!("vault: {e}")))?;
    // The snapshot goes in with the running Vault's own token.
    if c.seal_status().await?.sealed {
        life::unseal(&c, &current).await?;
    }
    life::wait_active(&c, Duration::from_secs(60)).await?;
    c.snapshot_force(current.token(), snapshot).await?;
    // Vault now holds data sealed with the original keys: it seals itself (or, still open,
    // answers only tokens of the backup).
    let until = Instant::now() + Duration::from_secs(60);
    loop {
        let s = c.seal_status().await?;
        if s.sealed {
            life::unseal(&c, &original).await?;
            break;
        }
        if c.token_policies(original.token()).await.is_ok() {
            break;
        }
        if Instant::now() > until {
            return Err(CliError::Failed(
                "Vault took the snapshot but neither sealed nor accepts the backup's token after 60 s".into(),
            ));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    life::wait_active(&c, Duration::from_secs(60)).await?;
    c.token_policies(original.token()).await.map_err(|e| {
        CliError::Failed(format!(
            "Vault took the snapshot, but the backup's token does not work in it: {e}"
        ))
    })?;
    // The keyring file: the backup's, the one in place kept beside it.
    if v.keyring.exists() {
        let aside = v.keyring.with_extension(format!(
            "age.replaced-{}",
            crate::clock::unix_now().as_secs()
        ));
        std::fs::rename(&v.keyring, &aside)
            .map_err(|e| CliError::Failed(format!("{}: {e}", v.keyring.display())))?;
    }
    sprocket_vault::keyring::write_atomic(&v.keyring, &keyring_bytes)
        .map_err(|e| CliError::Failed(format!("{}: {e}", v.keyring.display())))?;
    // Into a drill's scratch copy: the backup's secrets become this namespace's too, so `up`
    // rolls the services onto the values the restored data was made with — except the store's
    // per-service S3 keys: those name users of a store both namespaces share, and this
    // namespace gets keys of its own. In place, the read-back only says what Vault holds.
    let own_keys: Vec<String> = sprocket_desired::provision::provisions(p)
        .iter()
        .filter(|pr| pr.kind == sprocket_spec::model::DatastoreKind::S3)
        .flat_map(|pr| &pr.logins)
        .flat_map(|l| [l.secret.clone(), l.key_secret.clone()])
        .collect();
    let back = read_back(p, &c, original.token(), &manifest.namespace, &own_keys).await;
    let holds = match back {
        Ok(h) => h,
        Err(e) if manifest.namespace != p.environment.namespace => return Err(e),
        Err(e) => format!("unknown ({e})"),
    };
    Ok(Outcome::Restored {
        keyring_fingerprint: original.fingerprint(),
        seconds: t0.elapsed().as_secs_f64(),
        holds,
    })
}

/// Reads, with the restored Vault's token, each secret of the spec that Vault keeps per
/// namespace, where namespace `from` keeps it (values are looked at, never kept or shown);
/// when this platform is another namespace (a drill's copy), writes each but `skip` where it
/// keeps it, if it has none there. `N secrets of <from> readable[, K made <to>'s]` (the spec's
/// secrets that are in Vault there: those of the services that run in the environment).
async fn read_back(
    p: &Platform,
    c: &sprocket_vault::VaultClient,
    token: &str,
    from: &str,
    skip: &[String],
) -> Result<String, CliError> {
    use sprocket_spec::model::SecretSource;
    use sprocket_vault::kv::KvState;
    let to = p.environment.namespace.as_str();
    let a = c.with_token(token);
    let failed = |at: &sprocket_spec::names::VaultPath, e: String| {
        CliError::Failed(format!("vault: `{}/{}`: {e}", at.mount, at.path))
    };
    // Per namespace: not a `vault_path` of its own (those are shared, and come back as they
    // are), not one an operator writes by hand.
    let kept: Vec<_> = p
        .secrets
        .iter()
        .filter(|s| s.vault_path.is_none() && s.source != SecretSource::Manual)
        .collect();
    let mut values = Vec::new();
    for s in &kept {
        let at = s.vault_location(from);
        match a.kv_read(&at.mount, &at.path, &at.key).await {
            Ok(KvState::Live(v)) => {
                if let Some(value) = v.value.filter(|v| !v.is_empty()) {
                    values.push((*s, value));
                }
            }
            Ok(KvState::Absent | KvState::Gone { .. }) => {}
            Err(e) => return Err(failed(&at, format!("cannot be read back: {e}"))),
        }
    }
    let readable = format!("{} secrets of `{from}` readable", values.len());
    if from == to {
        return Ok(readable);
    }
    // The restored admin policy is the backup's namespace's: this namespace's first (what `up`
    // would make it), then its secrets.
    a.put_policy(
        sprocket_desired::vault::ADMIN_POLICY,
        &sprocket_desired::vault::admin_policy(&sprocket_desired::vault::secret_rules(p)),
    )
    .await
    .map_err(|e| CliError::Failed(format!("vault: the admin policy of `{to}`: {e}")))?;
    let mut copied = 0;
    for (s, value) in values.iter().filter(|(s, _)| !skip.contains(&s.name)) {
        let at = s.vault_location(to);
        let there = a
            .kv_read(&at.mount, &at.path, &at.key)
            .await
            .map_err(|e| failed(&at, e.to_string()))?;
        if matches!(there, KvState::Live(_)) {
            continue;
        }
        a.kv_write(&at.mount, &at.path, &at.key, value, there.cas())
            .await
            .map_err(|e| failed(&at, e.to_string()))?;
        copied += 1;
    }
    Ok(format!("{readable}, {copied} made `{to}`'s"))
}

/// Opens a keyring held in memory (the backup's) with the operator's identity.
fn open_bytes(bytes: &[u8], identity: &Path) -> Result<Keyring, CliError> {
    let dir = tempfile::tempdir().map_err(|e| CliError::Failed(e.to_string()))?;
    let path = dir.path().join("keyring.age");
    std::fs::write(&path, bytes).map_err(|e| CliError::Failed(e.to_string()))?;
    Keyring::open(&path, identity)
        .map_err(|e| CliError::Failed(format!("the backup's keyring: {e}")))
}
