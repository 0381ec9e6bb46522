//! `secrets`: the platform's secret values at their source. `check` reads the environment's
//! source (`secrets_from`, `SPROCKET_SECRETS_FROM` or `--secrets-from`) and checks every secret
//! the enabled services mount from it — missing, duplicated, line-broken, padded, NUL, too short —
//! and the keys nobody claims. It writes nothing and shows keys and lines, never a value.
//! Doppler is read with one download (`DOPPLER_TOKEN`, `DOPPLER_API_HOST`: its CLI's variables).

use super::{load, Ctx};
use crate::error::CliError;
use crate::exit;
use crate::output::{self, Format};
use serde::Serialize;
use sprocket_secrets::check::{check, Finding, Severity, Wanted};
use sprocket_secrets::doppler::{Doppler, DopplerError, Download};
use sprocket_secrets::{dotenv, Entry};
use sprocket_spec::model::SecretSource;
use sprocket_spec::secrets_from::{self as from, SecretsFrom};

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
    let SecretsCommand::Check { secrets_from } = a.command;
    let loaded = load(ctx)?;
    let p = &loaded.platform;
    let source = match secrets_from.as_deref() {
        Some(s) => from::parse(s).map_err(|e| CliError::Invalid(format!("--secrets-from: {e}")))?,
        None => p.environment.secrets_from.clone().ok_or_else(|| {
            CliError::Invalid(format!(
                "environment `{}` names no secrets source\n  hint: set `secrets_from:` in the environment (`doppler:PROJECT/CONFIG`, `dotenv:PATH` or `env`), or pass --secrets-from",
                p.environment.name
            ))
        })?,
    };
    let entries = read(&source).await?;
    // What the enabled services mount from the source, and every key the spec claims there.
    let desired = sprocket_desired::state::desired(p);
    let mut wanted: Vec<Wanted> = Vec::new();
    for r in desired.layers.iter().flat_map(|l| &l.secrets) {
        if r.source != SecretSource::Doppler || wanted.iter().any(|w| w.secret == r.name) {
            continue;
        }
        if let Some(s) = p.secrets.iter().find(|s| s.name == r.name) {
            wanted.push(Wanted {
                secret: s.name.clone(),
                key: s.key.clone(),
                min_length: s.min_length,
            });
        }
    }
    let claimed: Vec<String> = p
        .secrets
        .iter()
        .filter(|s| s.source == SecretSource::Doppler)
        .map(|s| s.key.clone())
        .collect();
    let origin = source.to_string();
    let mut findings = check(&wanted, &claimed, &entries, &origin);
    // A process environment holds much more than secrets: no key there is "unclaimed".
    if source == SecretsFrom::Env {
        findings.retain(|f| f.code != "unclaimed-key");
    }
    let errors = findings
        .iter()
        .filter(|f| f.severity == Severity::Error)
        .count();
    let report = CheckReport {
        ok: errors == 0,
        source: origin,
        checked: wanted.len(),
        errors,
        warnings: findings.len() - errors,
        findings,
    };
    match ctx.format {
        Format::Json => output::json(&report),
        Format::Human => {
            for f in &report.findings {
                let at = match (&source, f.lines.as_slice()) {
                    (SecretsFrom::Dotenv(path), [_, ..]) => format!(
                        " ({})",
                        f.lines
                            .iter()
                            .map(|l| format!("{}:{l}", path.display()))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                    _ => String::new(),
                };
                let sev = match f.severity {
                    Severity::Error => "error",
                    Severity::Warning => "warning",
                };
                println!("{sev}[{}]: {}{at}", f.code, f.message);
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

/// Every entry the source holds.
async fn read(source: &SecretsFrom) -> Result<Vec<Entry>, CliError> {
    match source {
        SecretsFrom::Env => Ok(std::env::vars()
            .filter(|(k, _)| dotenv::valid_key(k))
            .map(|(key, value)| Entry {
                key,
                value,
                line: None,
            })
            .collect()),
        SecretsFrom::Dotenv(path) => {
            let text = std::fs::read_to_string(path).map_err(|e| {
                CliError::Invalid(format!(
                    "cannot read the secrets file {}: {e}",
                    path.display()
                ))
            })?;
            dotenv::parse(&text).map_err(|errs| {
                CliError::Invalid(
                    errs.iter()
                        .map(|e| format!("{}:{}: {}", path.display(), e.line, e.message))
                        .collect::<Vec<_>>()
                        .join("\n"),
                )
            })
        }
        SecretsFrom::Doppler { project, config } => {
            let failed = |e: DopplerError| match e {
                DopplerError::NoToken { .. }
                | DopplerError::Refused { .. }
                | DopplerError::NotFound { .. } => CliError::Invalid(e.to_string()),
                other => CliError::Failed(other.to_string()),
            };
            let doppler = Doppler::from_env(project, config).map_err(failed)?;
            match doppler
                .download(project, config, None)
                .await
                .map_err(failed)?
            {
                Download::Fresh { entries, .. } => Ok(entries),
                Download::NotModified => Err(CliError::Failed(
                    "Doppler answered 304 to a request without an ETag".into(),
                )),
            }
        }
    }
}
