//! `secrets`: the platform's secret values from their source to the services.
//! - `check` reads the environment's source (`secrets_from`, `SPROCKET_SECRETS_FROM` or
//!   `--secrets-from`) and checks every secret the enabled services mount from it — missing,
//!   duplicated, line-broken, padded, NUL, too short, off its pattern — and the keys nobody
//!   claims. It writes nothing and shows keys and lines, never a value. Doppler is read with one
//!   download (`DOPPLER_TOKEN`, `DOPPLER_API_HOST`: its CLI's variables).
//! - `sync` does the same check, then writes to Vault (check-and-set; generated ones once).
//! - `ls` shows every secret: source, Vault path, version, keyed fingerprint, age, and the
//!   version each consumer's running task mounts.

use super::{load, Ctx};
use crate::error::CliError;
use crate::exit;
use crate::output::{self, Format};
use crate::secret_source;
use serde::Serialize;
use sprocket_secrets::check::Finding;

#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub command: SecretsCommand,
}

#[derive(clap::Subcommand)]
pub enum SecretsCommand {
    /// Check the source against the spec; write nothing. Exit 3 on any error.
    Check {
        /// Where the values are: `doppler:PROJECT/CONFIG`, `dotenv:PATH` or `env` (default:
        /// the environment's `secrets_from`).
        #[arg(long, env = "SPROCKET_SECRETS_FROM")]
        secrets_from: Option<String>,
    },
    /// Check the source, then write the secrets the enabled services need to Vault (KV v2,
    /// check-and-set): source values that differ, generated ones that are missing (made once).
    /// Docker secrets and services follow at the next `up`. Exit 3 on a bad source.
    Sync {
        /// Where the values are (default: the environment's `secrets_from`).
        #[arg(long, env = "SPROCKET_SECRETS_FROM")]
        secrets_from: Option<String>,
        #[command(flatten)]
        vault: super::VaultAccess,
    },
    /// Every secret the enabled services mount: source, Vault path, current version, keyed
    /// fingerprint, age, and the version each consumer's running task really mounts.
    Ls,
    /// A new value (generated, or re-read from the source) → Vault → a new Docker secret →
    /// its consumers rolled and healthy on it → the old version removed. On failure the
    /// consumers go back to the previous value; exit 5.
    Rotate(super::secrets_rotate::Args),
    /// For a machine without Doppler (the offline quick start): create the environment's dotenv
    /// source (mode 0600) with a strong random value for every key the enabled services need
    /// that it lacks. Values already there are kept; none is shown.
    InitDotenv {
        /// The file (default: the environment's `secrets_from: dotenv:PATH`).
        path: Option<std::path::PathBuf>,
    },
}

#[derive(Serialize)]
struct CheckReport {
    ok: bool,
    source: String,
    /// Secrets the enabled services need from the source.
    checked: usize,
    errors: usize,
    warnings: usize,
    findings: Vec<Finding>,
}

pub async fn run(ctx: &Ctx, a: Args) -> Result<i32, CliError> {
    match a.command {
        SecretsCommand::Check { secrets_from } => check(ctx, secrets_from.as_deref()).await,
        SecretsCommand::Sync {
            secrets_from,
            vault,
        } => sync(ctx, secrets_from.as_deref(), &vault).await,
        SecretsCommand::Ls => super::secrets_ls::run(ctx).await,
        SecretsCommand::Rotate(a) => super::secrets_rotate::run(ctx, a).await,
        SecretsCommand::InitDotenv { path } => init_dotenv(ctx, path),
    }
}

async fn check(ctx: &Ctx, secrets_from: Option<&str>) -> Result<i32, CliError> {
    let loaded = load(ctx)?;
    let p = &loaded.platform;
    let desired = sprocket_desired::state::desired(p);
    let c = secret_source::read_checked(p, &desired, secrets_from, true)
        .await?
        .expect("always read");
    let errors = c.errors();
    let report = CheckReport {
        ok: errors == 0,
        source: c.source.to_string(),
        checked: c.checked,
        errors,
        warnings: c.findings.len() - errors,
        findings: c.findings.clone(),
    };
    match ctx.format {
        Format::Json => output::json(&report),
        Format::Human => {
            for l in c.lines() {
                println!("{l}");
            }
            println!(
                "{}: {} secret(s) checked in {}: {} error(s), {} warning(s)",
                if report.ok { "ok" } else { "not ok" },
                report.checked,
                report.source,
                report.errors,
                report.warnings
            );
        }
    }
    Ok(if report.ok { exit::OK } else { exit::INVALID })
}

#[derive(Serialize)]
struct SyncOutput {
    namespace: String,
    source: Option<String>,
    secrets: Vec<crate::secrets_sync::Synced>,
}

async fn sync(
    ctx: &Ctx,
    secrets_from: Option<&str>,
    access: &super::VaultAccess,
) -> Result<i32, CliError> {
    let loaded = load(ctx)?;
    let p = &loaded.platform;
    let desired = sprocket_desired::state::desired(p);
    let (Some(v), Some(config)) = (p.vault.clone(), desired.vault.as_ref()) else {
        return Err(CliError::Invalid(format!(
            "environment `{}` runs no Vault: its secrets live only in Docker (generated by `up`)",
            p.environment.name
        )));
    };
    let checked = secret_source::read_checked(p, &desired, secrets_from, false).await?;
    if let Some(c) = checked.as_ref().filter(|c| c.errors() > 0) {
        for l in c.lines() {
            eprintln!("{l}");
        }
        return Err(CliError::Invalid(format!(
            "{} error(s) in the secrets of {} (above). Nothing was written.",
            c.errors(),
            c.source
        )));
    }
    let values = checked
        .as_ref()
        .map(|c| c.values.clone())
        .unwrap_or_default();
    let wants = crate::secrets_sync::wants(p, &desired, &values)
        .map_err(|e| CliError::Invalid(e.to_string()))?;
    let ns = p.environment.namespace.clone();
    let _lock = crate::lock::acquire(&ns, "secrets sync", super::LOCK_WAIT, ctx.progress).await?;
    let docker_root = match access.vault_addr {
        Some(_) => std::path::PathBuf::new(),
        None => super::connect().await?.root_dir,
    };
    let client = crate::vault_lifecycle::client(p, access.vault_addr.as_deref(), &docker_root)
        .ok_or_else(|| {
            CliError::Invalid(format!(
                "Vault service `{}` does not run in environment `{}`; pass --vault-addr",
                v.service, p.environment.name
            ))
        })?;
    let mut k = crate::vault_lifecycle::open_keyring(&v, access.identity.as_deref())?;
    if client.seal_status().await?.sealed {
        return Err(CliError::Blocked(
            "Vault is sealed: the unseal agent unseals it within seconds of a start; if it does not run, `sprocketctl vault unseal`. Nothing was written.".into(),
        ));
    }
    let session = crate::vault_config::session(&client, &v, &mut k, false, ctx.progress)
        .await
        .map_err(|e| CliError::Failed(e.to_string()))?;
    let api = client.with_token(&session.token);
    crate::secrets_sync::ensure_home(api, config)
        .await
        .map_err(|e| CliError::Failed(e.to_string()))?;
    let report = crate::secrets_sync::sync(api, &ns, &wants, &[], ctx.progress)
        .await
        .map_err(|e| CliError::Failed(e.to_string()))?;
    let out = SyncOutput {
        namespace: ns,
        source: checked.map(|c| c.source.to_string()),
        secrets: report.secrets,
    };
    match ctx.format {
        Format::Json => output::json(&out),
        Format::Human => {
            for s in &out.secrets {
                let outcome = serde_json::to_value(s.outcome).expect("serialisable");
                println!(
                    "{:<28} {:<9} v{:<4} {}  {}",
                    s.secret,
                    outcome.as_str().unwrap_or_default(),
                    s.version,
                    s.fingerprint,
                    s.vault_path
                );
            }
            let n = |o| out.secrets.iter().filter(|s| s.outcome == o).count();
            use sprocket_secrets::sync::Outcome as O;
            println!(
                "Synced to Vault: {} created, {} changed, {} unchanged. `sprocketctl up` makes their Docker secrets and rolls their consumers.",
                n(O::Created),
                n(O::Changed),
                n(O::Unchanged)
            );
        }
    }
    Ok(exit::OK)
}

#[derive(Serialize)]
struct InitDotenvOutput {
    path: String,
    /// Keys given a new random value.
    added: Vec<String>,
    /// Keys the file already held.
    kept: Vec<String>,
}

fn init_dotenv(ctx: &Ctx, path: Option<std::path::PathBuf>) -> Result<i32, CliError> {
    use sprocket_spec::secrets_from::SecretsFrom;
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let loaded = load(ctx)?;
    let p = &loaded.platform;
    let path = match (path, &p.environment.secrets_from) {
        (Some(path), _) => path,
        (None, Some(SecretsFrom::Dotenv(path))) => path.clone(),
        (None, _) => {
            return Err(CliError::Invalid(format!(
                "environment `{}` does not read a dotenv file (`secrets_from: dotenv:PATH`); name the file",
                p.environment.name
            )))
        }
    };
    let desired = sprocket_desired::state::desired(p);
    let existing = match std::fs::read_to_string(&path) {
        Ok(text) => sprocket_secrets::dotenv::parse(&text).map_err(|errs| {
            CliError::Invalid(
                errs.iter()
                    .map(|e| format!("{}:{}: {}", path.display(), e.line, e.message))
                    .collect::<Vec<_>>()
                    .join("\n"),
            )
        })?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => {
            return Err(CliError::Invalid(format!(
                "cannot read {}: {e}",
                path.display()
            )))
        }
    };
    let mut out = InitDotenvOutput {
        path: path.display().to_string(),
        added: Vec::new(),
        kept: Vec::new(),
    };
    let mut lines = String::new();
    for w in secret_source::wanted(p, &desired) {
        if existing.iter().any(|e| e.key == w.key) {
            out.kept.push(w.key);
            continue;
        }
        let value = random_fitting(&w).ok_or_else(|| {
            CliError::Invalid(format!(
                "no random value fits the pattern of secret `{}`; add `{}=…` to {} yourself",
                w.secret,
                w.key,
                path.display()
            ))
        })?;
        lines.push_str(&format!("{}={value}\n", w.key));
        out.added.push(w.key);
    }
    if !lines.is_empty() {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            use std::os::unix::fs::DirBuilderExt;
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(|e| CliError::Failed(format!("cannot create {}: {e}", dir.display())))?;
        }
        // Appended, never rewritten: an operator's own lines and comments stay as they are.
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&path)
            .map_err(|e| CliError::Failed(format!("cannot write {}: {e}", path.display())))?;
        f.write_all(lines.as_bytes())
            .and_then(|_| f.sync_all())
            .map_err(|e| CliError::Failed(format!("cannot write {}: {e}", path.display())))?;
    }
    match ctx.format {
        Format::Json => output::json(&out),
        Format::Human => println!(
            "{}: {} key(s) added with random values{}, {} kept",
            out.path,
            out.added.len(),
            if out.added.is_empty() {
                String::new()
            } else {
                format!(" ({})", out.added.join(", "))
            },
            out.kept.len()
        ),
    }
    Ok(exit::OK)
}

/// A random value of at least 48 characters (or the secret's minimum) that passes its pattern:
/// alphanumeric, hex or base64url, the first that fits.
fn random_fitting(w: &sprocket_secrets::check::Wanted) -> Option<String> {
    use sprocket_spec::model::Alphabet;
    let len = w.min_length.max(48);
    [Alphabet::Alphanumeric, Alphabet::Hex, Alphabet::Base64url]
        .into_iter()
        .filter_map(|a| sprocket_secrets::value::generate(a, len).ok())
        .find(|v| {
            let entry = sprocket_secrets::Entry {
                key: w.key.clone(),
                value: v.clone(),
                line: None,
            };
            sprocket_secrets::check::check(std::slice::from_ref(w), &[], &[entry], "").is_empty()
        })
}
