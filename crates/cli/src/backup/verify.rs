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
    let (identity, identities) = store::identities(a.identity.clone())?;
    let store = store::open(&loaded.platform, a.store.secrets_from.as_deref()).await?;
    let (id, manifest) = store.chosen(a.from).await?;
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

pub(super) async fn one(
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
    let downloaded = super::wire::download(&store.client, &store.bucket, &art.object).await;
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
    let vault = art.component == "vault";
    match decrypt_len(file.path(), identities, vault) {
        Ok(n) => {
            c.plain_bytes = Some(n);
            c.ok = true;
        }
        Err(e) => c.problem = Some(e),
    }
    c
}

/// Decrypts the file to its end; returns the plaintext's length. `snapshot`: the plaintext is
/// Vault's snapshot, whose members are checked against its `SHA256SUMS` on the way.
fn decrypt_len(
    path: &std::path::Path,
    identities: &[Box<dyn age::Identity>],
    snapshot: bool,
) -> Result<u64, String> {
    let f = std::io::BufReader::new(std::fs::File::open(path).map_err(|e| e.to_string())?);
    let dec = age::Decryptor::new(f).map_err(|e| format!("not an age file: {e}"))?;
    let reader = match dec.decrypt(identities.iter().map(|i| i.as_ref() as &dyn age::Identity)) {
        Ok(r) => r,
        Err(age::DecryptError::NoMatchingKeys) => {
            return Err("this identity is not among its recipients".into())
        }
        Err(e) => return Err(format!("does not decrypt: {e}")),
    };
    let mut counted = Counted {
        inner: reader,
        n: 0,
    };
    if snapshot {
        check_snapshot(&mut counted)?;
    }
    std::io::copy(&mut counted, &mut std::io::sink())
        .map_err(|e| format!("does not decrypt to its end: {e}"))?;
    Ok(counted.n)
}

/// A reader that counts what passes.
struct Counted<R> {
    inner: R,
    n: u64,
}

impl<R: std::io::Read> std::io::Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.n += n as u64;
        Ok(n)
    }
}

/// Vault's snapshot: a gzipped tar whose `SHA256SUMS` matches its members.
pub(super) fn check_snapshot(r: &mut impl std::io::Read) -> Result<(), String> {
    use std::io::Read;
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(r));
    let mut got = std::collections::BTreeMap::new();
    let mut sums = None;
    let entries = archive
        .entries()
        .map_err(|e| format!("Vault's snapshot is not a gzipped tar: {e}"))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| format!("Vault's snapshot is damaged: {e}"))?;
        let name = entry
            .path()
            .map_err(|e| e.to_string())?
            .to_string_lossy()
            .into_owned();
        let mut sha = sha2::Sha256::new();
        let mut body = Vec::new();
        let mut buf = vec![0u8; 64 << 10];
        loop {
            let n = entry
                .read(&mut buf)
                .map_err(|e| format!("Vault's snapshot is damaged: {e}"))?;
            if n == 0 {
                break;
            }
            sha.update(&buf[..n]);
            if name == "SHA256SUMS" {
                body.extend_from_slice(&buf[..n]);
            }
        }
        if name == "SHA256SUMS" {
            sums = Some(String::from_utf8_lossy(&body).into_owned());
        }
        got.insert(name, hex::encode(sha.finalize()));
    }
    sprocket_backup::snapshot::check(sums.as_deref(), &got)
}
