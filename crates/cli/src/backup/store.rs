//! The backup bucket as seen from the operator's machine: `backup ls`, and what `verify` reads.
//! The store's key comes from the environment's secrets source (the same value `up` gives the
//! swarm), so reading backups needs neither a running platform nor its Vault — only the bucket,
//! the source and, to decrypt, an operator's identity.

use crate::commands::Ctx;
use crate::error::CliError;
use crate::output::{self, Format};
use serde::Serialize;
use sprocket_backup::{layout, Manifest};
use sprocket_datastores::s3::Client;
use sprocket_spec::model::{External, Platform};

#[derive(clap::Args, Clone, Default)]
pub struct StoreArgs {
    /// Where the store's key is: `doppler:PROJECT/CONFIG`, `dotenv:PATH` or `env` (default: the
    /// environment's `secrets_from`).
    #[arg(long, env = "SPROCKET_SECRETS_FROM")]
    pub secrets_from: Option<String>,
}

/// The operator's identity (`--identity`, else the default one) and what it holds.
pub fn identities(
    arg: Option<std::path::PathBuf>,
) -> Result<(std::path::PathBuf, Vec<Box<dyn age::Identity>>), CliError> {
    let path = arg
        .or_else(crate::vault_lifecycle::default_identity)
        .ok_or_else(|| {
            CliError::Invalid(
                "no identity to decrypt the backup with\n  hint: pass --identity (or SPROCKET_IDENTITY) with an operator's age identity or SSH private key".into(),
            )
        })?;
    let ids = sprocket_vault::keyring::read_identities(&path)
        .map_err(|e| CliError::Invalid(e.to_string()))?;
    Ok((path, ids))
}

pub struct Store {
    pub client: Client,
    pub bucket: String,
    pub namespace: String,
    /// As reached from here.
    pub endpoint: String,
}

/// An endpoint on the Docker host (`host.docker.internal`, what tasks call it) is this machine's
/// loopback from here: sprocketctl runs on a manager node, which offline is the Docker host.
pub fn from_here(endpoint: &str) -> String {
    endpoint.replacen(
        &format!("://{}", External::HOST_GATEWAY_NAME),
        "://127.0.0.1",
        1,
    )
}

pub async fn open(p: &Platform, over: Option<&str>) -> Result<Store, CliError> {
    let b = p.environment.backup.as_ref().ok_or_else(|| {
        CliError::Invalid(format!(
            "environment `{}` has no `backup` section: it is not backed up\n  hint: add `backup: {{ to: <s3 external>, bucket: <name> }}` to it",
            p.environment.name
        ))
    })?;
    let d = p
        .externals
        .iter()
        .find(|e| e.name == b.store)
        .and_then(|e| e.datastore.as_ref())
        .ok_or_else(|| CliError::Invalid(format!("backup.to `{}` is not an S3 store", b.store)))?;
    let values = crate::secret_source::values_of(
        p,
        over,
        &[d.admin_key_secret.as_str(), d.admin_secret.as_str()],
    )
    .await?;
    let endpoint = from_here(&d.endpoint);
    let client = Client::new(
        &endpoint,
        &d.region,
        &values[&d.admin_key_secret],
        &values[&d.admin_secret],
    )
    .map_err(|e| CliError::Invalid(e.to_string()))?;
    Ok(Store {
        client,
        bucket: b.bucket.clone(),
        // A drill's scratch copy reads the backups of the namespace it copies.
        namespace: p
            .environment
            .scratch_of
            .clone()
            .unwrap_or_else(|| p.environment.namespace.clone()),
        endpoint,
    })
}

/// One backup in the bucket.
#[derive(Debug, Serialize)]
pub struct Listed {
    pub id: String,
    /// RFC 3339, from its id.
    pub started_at: String,
    pub age_s: i64,
    /// With a manifest: every artefact was written.
    pub complete: bool,
    pub objects: usize,
    pub bytes: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub manifest: Option<Manifest>,
}

impl Store {
    fn failed(&self, e: impl std::fmt::Display) -> CliError {
        CliError::Failed(format!(
            "the backup bucket `{}` at {}: {e}",
            self.bucket, self.endpoint
        ))
    }

    /// The manifest of backup `id`, `None` when it has none (incomplete) or is not there.
    pub async fn manifest(&self, id: &str) -> Result<Option<Manifest>, CliError> {
        let r = self
            .client
            .get_object(&self.bucket, &layout::manifest(&self.namespace, id))
            .await
            .map_err(|e| self.failed(e))?;
        match r.status {
            200 => serde_json::from_str(&r.body)
                .map(Some)
                .map_err(|e| self.failed(format!("the manifest of {id} is not one: {e}"))),
            404 => Ok(None),
            _ => Err(self.failed(r.ok("read a manifest").unwrap_err())),
        }
    }

    /// Backup `from` (an id), or the newest complete one, with its manifest.
    pub async fn chosen(&self, from: Option<String>) -> Result<(String, Manifest), CliError> {
        let id = match from {
            Some(id) => id,
            None => self
                .backups()
                .await?
                .into_iter()
                .find(|b| b.complete)
                .map(|b| b.id)
                .ok_or_else(|| {
                    CliError::Blocked(format!(
                        "no complete backup of `{}` in bucket `{}`: take one with `sprocketctl backup`",
                        self.namespace, self.bucket
                    ))
                })?,
        };
        let manifest = self.manifest(&id).await?.ok_or_else(|| {
            CliError::Blocked(format!(
                "backup `{id}` has no manifest in bucket `{}`: it is incomplete or not there (`sprocketctl backup ls`)",
                self.bucket
            ))
        })?;
        if manifest.namespace != self.namespace {
            return Err(CliError::Blocked(format!(
                "backup `{id}` under `{}/` in bucket `{}` says it is of namespace `{}`: not restored or drilled",
                self.namespace, self.bucket, manifest.namespace
            )));
        }
        Ok((id, manifest))
    }

    /// The objects (key, size) under `prefix`; none when the bucket does not exist yet.
    async fn objects(&self, prefix: &str) -> Result<Vec<(String, u64)>, CliError> {
        match self.client.list(&self.bucket, prefix, None).await {
            Ok(l) => Ok(l.objects),
            Err(e) if e.to_string().contains("NoSuchBucket") => Ok(Vec::new()),
            Err(e) => Err(self.failed(e)),
        }
    }

    /// The namespace's last drill's result (`sprocketctl drill`), if any was kept.
    pub async fn last_drill(&self) -> Result<Option<sprocket_backup::drill::Record>, CliError> {
        let objects = self
            .objects(&layout::drills_prefix(&self.namespace))
            .await?;
        // Ids sort as their times: the greatest key is the last drill.
        let Some(key) = objects.iter().map(|(k, _)| k).max() else {
            return Ok(None);
        };
        let r = self
            .client
            .get_object(&self.bucket, key)
            .await
            .map_err(|e| self.failed(e))?;
        let r = r.ok("read a drill's result").map_err(|e| self.failed(e))?;
        serde_json::from_str(&r.body)
            .map(Some)
            .map_err(|e| self.failed(format!("{key} is not a drill's result: {e}")))
    }

    /// The namespace's backups, newest first (a bucket that does not exist holds none).
    pub async fn backups(&self) -> Result<Vec<Listed>, CliError> {
        let prefix = layout::namespace_prefix(&self.namespace);
        let objects = self.objects(&prefix).await?;
        let now = crate::clock::unix_now().as_secs() as i64;
        let mut by_id: std::collections::BTreeMap<String, (usize, u64, bool)> = Default::default();
        for (key, size) in &objects {
            let Some((id, rest)) = key.strip_prefix(&prefix).and_then(|r| r.split_once('/')) else {
                continue;
            };
            if layout::time_of(id).is_none() {
                continue;
            }
            let e = by_id.entry(id.to_string()).or_default();
            e.0 += 1;
            e.1 += size;
            e.2 |= rest == "manifest.json";
        }
        let mut out = Vec::new();
        for (id, (objects, bytes, complete)) in by_id.into_iter().rev() {
            let t = layout::time_of(&id).unwrap_or(0);
            let manifest = if complete {
                self.manifest(&id).await?
            } else {
                None
            };
            out.push(Listed {
                started_at: crate::certs::rfc3339(t),
                age_s: now - t,
                complete: manifest.is_some(),
                objects,
                bytes,
                manifest,
                id,
            });
        }
        Ok(out)
    }
}

pub async fn ls(ctx: &Ctx, a: StoreArgs) -> Result<i32, CliError> {
    let loaded = crate::commands::load(ctx)?;
    let store = open(&loaded.platform, a.secrets_from.as_deref()).await?;
    let backups = store.backups().await?;
    match ctx.format {
        Format::Json => output::json(&serde_json::json!({
            "bucket": store.bucket,
            "namespace": store.namespace,
            "backups": backups,
        })),
        Format::Human => {
            if backups.is_empty() {
                println!(
                    "no backup of `{}` in bucket `{}` yet: `sprocketctl backup` takes one",
                    store.namespace, store.bucket
                );
            }
            for b in &backups {
                let what = match &b.manifest {
                    Some(m) => format!(
                        "{} artefacts: {}",
                        m.artefacts.len(),
                        m.artefacts
                            .iter()
                            .map(|a| a.component.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                    None => "INCOMPLETE (no manifest: never restored)".into(),
                };
                println!(
                    "{}  {:>10}  {:>12} ago  {what}",
                    b.id,
                    super::human_bytes(b.bytes),
                    age(b.age_s)
                );
            }
        }
    }
    Ok(crate::exit::OK)
}

/// `3 h 12 min`, `2 d 4 h`.
pub fn age(s: i64) -> String {
    let s = s.max(0);
    match s {
        0..60 => format!("{s} s"),
        60..3600 => format!("{} min", s / 60),
        3600..86_400 => format!("{} h {} min", s / 3600, s % 3600 / 60),
        _ => format!("{} d {} h", s / 86_400, s % 86_400 / 3600),
    }
}
