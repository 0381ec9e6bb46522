//! `sprocketctl backup verify`: is this backup restorable? Every artefact is downloaded, its size
//! and SHA-256 compared with the manifest's (a changed or missing object names its component),
//! and it is decrypted with an operator's identity to its end (age authenticates every 64 KiB
//! chunk: a flipped bit anywhere fails). Only ciphertext touches the disk (a temporary file per
//! artefact); the plaintext is counted and dropped.

use super::store::{self, StoreArgs};
use crate::commands::Ctx;
use crate::error::CliError;
use crate::output::{self, Format};
use serde::Serialize;
use sha2::Digest;
use std::io::Write;
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    /// The backup to verify (an id from `backup ls`; default: the newest complete one).
    #[arg(long)]
    pub from: Option<String>,
    /// An operator's private key: an age identity file or an unencrypted OpenSSH private key
    /// (default ~/.config/sprocket/identity.txt).
    #[arg(long, env = "SPROCKET_IDENTITY")]
    pub identity: Option<PathBuf>,
    #[command(flatten)]
    pub store: StoreArgs,
}

#[derive(Debug, Serialize)]
pub struct Checked {
    pub component: String,
    pub ok: bool,
    pub bytes: u64,
    /// Bytes after decryption.
    pub plain_bytes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct VerifyReport {
    pub id: String,
    pub ok: bool,
    pub artefacts: Vec<Checked>,
}

pub async fn run(ctx: &Ctx, a: Args) -> Result<i32, CliError> {
    let loaded = crate::commands::load(ctx)?;
    let identity = a
        .identity
        .clone()
        .or_else(crate::vault_lifecycle::default_identity)
        .ok_or_else(|| {
            CliError::Invalid(
                "no identity to decrypt the backup with\n  hint: pass --identity (or SPROCKET_IDENTITY) with an operator's age identity or SSH private key".into(),
            )
        })?;
    let identities = sprocket_vault::keyring::read_identities(&identity)
        .map_err(|e| CliError::Invalid(e.to_string()))?;
    let store = store::open(&loaded.platform, a.store.secrets_from.as_deref()).await?;
    let id = match a.from {
        Some(id) => id,
        None => store
            .backups()
            .await?
            .into_iter()
            .find(|b| b.complete)
            .map(|b| b.id)
            .ok_or_else(|| {
                CliError::Blocked(format!(
                    "no complete backup of `{}` in bucket `{}`",
                    store.namespace, store.bucket
                ))
            })?,
    };
    let manifest = store.manifest(&id).await?.ok_or_else(|| {
        CliError::Blocked(format!(
            "backup `{id}` has no manifest in bucket `{}`: it is incomplete or not there (`sprocketctl backup ls`)",
            store.bucket
        ))
    })?;
    let mut checked = Vec::new();
    for art in &manifest.artefacts {
        ctx.progress.say(format!("verifying {}", art.component));
        let c = one(&store, art, &identities).await;
        checked.push(c);
    }
    let report = VerifyReport {
        ok: checked.iter().all(|c| c.ok),
        id: id.clone(),
        artefacts: checked,
    };
    match ctx.format {
        Format::Json => output::json(&report),
        Format::Human => {
            for c in &report.artefacts {
                match &c.problem {
                    None => println!(
                        "ok      {:<28} {} encrypted, {} decrypted",
                        c.component,
                        super::human_bytes(c.bytes),
                        super::human_bytes(c.plain_bytes.unwrap_or(0))
                    ),
                    Some(p) => println!("FAILED  {:<28} {p}", c.component),
                }
            }
        }
    }
    if report.ok {
        if ctx.format == Format::Human {
            println!(
                "backup {id}: every artefact matches its manifest and decrypts with {}",
                identity.display()
            );
        }
        Ok(crate::exit::OK)
    } else {
        let bad: Vec<&str> = report
            .artefacts
            .iter()
            .filter(|c| !c.ok)
            .map(|c| c.component.as_str())
            .collect();
        if ctx.format == Format::Human {
            eprintln!(
                "error: backup {id} is not restorable as it is: {} failed verification",
                bad.join(", ")
            );
        }
        Ok(crate::exit::ERROR)
    }
}

async fn one(
    store: &store::Store,
    art: &sprocket_backup::Artefact,
    identities: &[Box<dyn age::Identity>],
) -> Checked {
    let mut c = Checked {
        component: art.component.clone(),
        ok: false,
        bytes: 0,
        plain_bytes: None,
        problem: None,
    };
    let downloaded = download(store, &art.object).await;
    let (file, bytes, sha) = match downloaded {
        Ok(Some(d)) => d,
        Ok(None) => {
            c.problem = Some(sprocket_backup::manifest::Mismatch::Missing.to_string());
            return c;
        }
        Err(e) => {
            c.problem = Some(e);
            return c;
        }
    };
    c.bytes = bytes;
    if let Err(m) = sprocket_backup::manifest::verify(art, Some((bytes, &sha))) {
        c.problem = Some(m.to_string());
        return c;
    }
    match decrypt_len(file.path(), identities) {
        Ok(n) => {
            c.plain_bytes = Some(n);
            c.ok = true;
        }
        Err(e) => c.problem = Some(e),
    }
    c
}

/// The object into a temporary file, with its size and SHA-256.
async fn download(
    store: &store::Store,
    key: &str,
) -> Result<Option<(tempfile::NamedTempFile, u64, String)>, String> {
    let Some(mut r) = store
        .client
        .get_stream(&store.bucket, key)
        .await
        .map_err(|e| e.to_string())?
    else {
        return Ok(None);
    };
    let mut file = tempfile::NamedTempFile::new().map_err(|e| e.to_string())?;
    let mut sha = sha2::Sha256::new();
    let mut bytes = 0u64;
    while let Some(chunk) = r.chunk().await.map_err(|e| e.to_string())? {
        sha.update(&chunk);
        bytes += chunk.len() as u64;
        file.write_all(&chunk).map_err(|e| e.to_string())?;
    }
    file.flush().map_err(|e| e.to_string())?;
    Ok(Some((file, bytes, hex::encode(sha.finalize()))))
}

/// Decrypts the file to its end; returns the plaintext's length.
fn decrypt_len(
    path: &std::path::Path,
    identities: &[Box<dyn age::Identity>],
) -> Result<u64, String> {
    let f = std::io::BufReader::new(std::fs::File::open(path).map_err(|e| e.to_string())?);
    let dec = age::Decryptor::new(f).map_err(|e| format!("not an age file: {e}"))?;
    let mut reader = match dec.decrypt(identities.iter().map(|i| i.as_ref() as &dyn age::Identity))
    {
        Ok(r) => r,
        Err(age::DecryptError::NoMatchingKeys) => {
            return Err("this identity is not among its recipients".into())
        }
        Err(e) => return Err(format!("does not decrypt: {e}")),
    };
    std::io::copy(&mut reader, &mut std::io::sink())
        .map_err(|e| format!("does not decrypt to its end: {e}"))
}
