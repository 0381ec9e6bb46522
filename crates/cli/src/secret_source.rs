//! The environment's secrets source, read and checked: where `secrets check`, `secrets sync`,
//! `secrets rotate` and `up` get the values of the secrets the enabled services mount from it.
//! Nothing here writes; values stay in memory and are never shown (findings name keys and
//! lines).

use crate::error::CliError;
use sprocket_desired::DesiredState;
use sprocket_secrets::check::{check, Finding, Severity, Wanted};
use sprocket_secrets::doppler::{Doppler, DopplerError, Download};
use sprocket_secrets::{dotenv, Entry};
use sprocket_spec::model::{Platform, SecretSource};
use sprocket_spec::secrets_from::{self as from, SecretsFrom};
use std::collections::BTreeMap;

/// The source: `--secrets-from` / `SPROCKET_SECRETS_FROM`, else the environment's `secrets_from`.
pub fn source(p: &Platform, over: Option<&str>) -> Result<SecretsFrom, CliError> {
    match over {
        Some(s) => from::parse(s).map_err(|e| CliError::Invalid(format!("--secrets-from: {e}"))),
        None => p.environment.secrets_from.clone().ok_or_else(|| {
            CliError::Invalid(format!(
                "environment `{}` names no secrets source\n  hint: set `secrets_from:` in the environment (`doppler:PROJECT/CONFIG`, `dotenv:PATH` or `env`), or pass --secrets-from",
                p.environment.name
            ))
        }),
    }
}

/// What the enabled services mount from the source (each once).
pub fn wanted(p: &Platform, desired: &DesiredState) -> Vec<Wanted> {
    let mut out: Vec<Wanted> = Vec::new();
    for r in desired.layers.iter().flat_map(|l| &l.secrets) {
        if r.source != SecretSource::Doppler || out.iter().any(|w| w.secret == r.name) {
            continue;
        }
        if let Some(s) = p.secrets.iter().find(|s| s.name == r.name) {
            out.push(Wanted::of(s));
        }
    }
    out
}

/// The source checked against the spec.
pub struct Checked {
    pub source: SecretsFrom,
    pub findings: Vec<Finding>,
    pub checked: usize,
    /// Secret name → value, for every wanted secret the source holds in a usable form (all of
    /// them when there is no error). `Debug` is not derived: values are never shown.
    pub values: BTreeMap<String, String>,
}

impl Checked {
    pub fn errors(&self) -> usize {
        self.findings
            .iter()
            .filter(|f| f.severity == Severity::Error)
            .count()
    }

    /// The findings, one per line, with their places (a dotenv file's lines).
    pub fn lines(&self) -> Vec<String> {
        self.findings
            .iter()
            .map(|f| {
                let at = match (&self.source, f.lines.as_slice()) {
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
                format!("{sev}[{}]: {}{at}", f.code, f.message)
            })
            .collect()
    }
}

/// Reads the source and checks what the enabled services need from it. Reads nothing when
/// they need nothing from it (and then needs no source at all).
pub async fn read_checked(
    p: &Platform,
    desired: &DesiredState,
    over: Option<&str>,
    always: bool,
) -> Result<Option<Checked>, CliError> {
    let want = wanted(p, desired);
    if want.is_empty() && !always {
        return Ok(None);
    }
    let source = source(p, over)?;
    let entries = read(&source).await?;
    let claimed: Vec<String> = p
        .secrets
        .iter()
        .filter(|s| s.source == SecretSource::Doppler)
        .map(|s| s.key.clone())
        .collect();
    let origin = source.to_string();
    let mut findings = check(&want, &claimed, &entries, &origin);
    // A process environment holds much more than secrets: no key there is "unclaimed".
    if source == SecretsFrom::Env {
        findings.retain(|f| f.code != "unclaimed-key");
    }
    let mut values = BTreeMap::new();
    for w in &want {
        let bad = findings
            .iter()
            .any(|f| f.severity == Severity::Error && f.secret.as_deref() == Some(&w.secret));
        if let (false, Some(e)) = (bad, entries.iter().rev().find(|e| e.key == w.key)) {
            values.insert(w.secret.clone(), e.value.clone());
        }
    }
    Ok(Some(Checked {
        source,
        findings,
        checked: want.len(),
        values,
    }))
}

/// The values of the spec's secrets `names` (each from the source's key it names), for a
/// command that needs a few of them itself (`backup ls` and `verify`: the store's key). A
/// secret the source does not hold is an error that names it and its key.
pub async fn values_of(
    p: &Platform,
    over: Option<&str>,
    names: &[&str],
) -> Result<BTreeMap<String, String>, CliError> {
    let source = source(p, over)?;
    let entries = read(&source).await?;
    let mut out = BTreeMap::new();
    for name in names {
        let Some(s) = p.secrets.iter().find(|s| s.name == *name) else {
            return Err(CliError::Invalid(format!(
                "secret `{name}` is not declared in the spec"
            )));
        };
        if s.source != SecretSource::Doppler {
            return Err(CliError::Invalid(format!(
                "secret `{name}` is generated, so it is not in the source {source}: only Vault holds it"
            )));
        }
        let Some(e) = entries.iter().rev().find(|e| e.key == s.key) else {
            return Err(CliError::Blocked(format!(
                "the source {source} has no `{}` (secret `{name}`)",
                s.key
            )));
        };
        out.insert(name.to_string(), e.value.trim().to_string());
    }
    Ok(out)
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
