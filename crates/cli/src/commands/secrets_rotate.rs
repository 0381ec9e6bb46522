//! `secrets rotate NAME`: a new value — generated, or re-read from the source — written to Vault,
//! a new Docker secret made from it, exactly its consumers rolled, their new tasks healthy on the
//! new version and the old tasks gone, then the old Docker secret removed. Done means the
//! consumers' live tasks hold the new value.
//!
//! On failure the consumers go back to the previous value: it is written to Vault again (as the
//! next version, the way Vault's own `kv rollback` does), so Vault and the running tasks agree
//! and the next `up` does not roll the refused value out again; the command says so and exits 5.
//!
//! Only a platform that is as its spec says is rotated: pending changes would roll other
//! services too, so they are refused first (`up` them, then rotate).

use super::{up, Ctx};
use crate::apply::{self, Outcome, UpReport};
use crate::error::CliError;
use crate::exit;
use crate::output::{self, Format};
use serde::Serialize;
use sprocket_secrets::sync::{Origin, Outcome as SyncOutcome};
use sprocket_spec::model::SecretSource;
use std::time::Duration;

#[derive(clap::Args)]
pub struct Args {
    /// The secret, as the spec names it.
    pub name: String,
    /// Where the values are (default: the environment's `secrets_from`).
    #[arg(long, env = "SPROCKET_SECRETS_FROM")]
    pub secrets_from: Option<String>,
    /// How long each consumer may take to run healthy on the new version, in seconds.
    #[arg(long, default_value_t = 300, value_parser = clap::value_parser!(u64).range(0..=86_400))]
    pub timeout: u64,
    #[command(flatten)]
    pub vault: super::VaultAccess,
}

#[derive(Serialize)]
struct RotateReport {
    secret: String,
    /// `rotated`, `unchanged` (the source holds the value Vault has) or `rolled-back`.
    result: &'static str,
    from_version: Option<u64>,
    to_version: Option<u64>,
    fingerprint: Option<String>,
    /// The other half of an S3 key pair, rotated with it.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    with: Vec<String>,
    /// The services that mount it.
    consumers: Vec<String>,
    deploy: UpReport,
    /// After a failure: the deploy that put the previous value back.
    #[serde(skip_serializing_if = "Option::is_none")]
    rollback: Option<UpReport>,
}

pub async fn run(ctx: &Ctx, a: Args) -> Result<i32, CliError> {
    let super::Live {
        loaded,
        desired,
        engine,
        observed,
        lock: _lock,
    } = super::live_changing(ctx, "secrets rotate").await?;
    let p = &loaded.platform;
    let name = a.name.as_str();
    let Some(r) = desired.secret(name) else {
        let known: Vec<String> = desired
            .layers
            .iter()
            .flat_map(|l| &l.secrets)
            .filter(|s| s.vault.is_some())
            .map(|s| s.name.clone())
            .collect();
        return Err(CliError::Invalid(format!(
            "no service that runs in environment `{}` mounts a secret `{name}`; rotatable here: {}",
            p.environment.name,
            known.join(", ")
        )));
    };
    let refuse = |why: &str| Err(CliError::Invalid(format!("`{name}` {why}")));
    match (r.source, &r.vault) {
        (SecretSource::FingerprintKey, _) => {
            return refuse("is the fingerprints' key: a new one would change every fingerprint at once, not a secret's version")
        }
        (SecretSource::Vault | SecretSource::VaultToken, _) => {
            return refuse("is made from Vault's keys or is a service's token: `up` replaces it when the keyring or the token changes")
        }
        (SecretSource::Manual, _) => {
            return refuse("is set by an operator as a Docker secret: create its next version by hand")
        }
        (_, None) => {
            return refuse("lives only in Docker here (no Vault runs in this environment): there is no version to rotate from")
        }
        _ => {}
    }
    // An S3 login's key is a pair (its id and its secret, two secrets): rotating either half
    // gives both new values, so the new pair is a key of its own that the store holds beside the
    // previous one during the consumers' roll (one key id holds one secret), and the previous
    // key is retired once they converged.
    let names: Vec<String> = desired
        .provisions
        .iter()
        .flat_map(|pr| &pr.logins)
        .find(|l| !l.key_secret.is_empty() && (l.secret == name || l.key_secret == name))
        .map(|l| vec![l.key_secret.clone(), l.secret.clone()])
        .unwrap_or_else(|| vec![name.to_string()]);
    let with: Vec<String> = names.iter().filter(|n| *n != name).cloned().collect();
    let consumers: Vec<String> = desired
        .services()
        .filter(|s| s.secrets.iter().any(|f| f.name == name))
        .map(|s| s.short_name.clone())
        .collect();
    let plan = sprocket_desired::plan::plan(&desired, &observed);
    if !plan.is_empty(false) || !plan.missing_secrets.is_empty() || !plan.conflicts.is_empty() {
        return Err(CliError::Blocked(format!(
            "the platform is not as its spec says ({} change(s) pending): a rotation would roll other services too. Run `sprocketctl up` first (`sprocketctl plan` shows what it changes), then rotate. Nothing was changed.",
            {
                let n = plan.summary(false);
                n.create + n.update + n.delete + plan.missing_secrets.len() + plan.conflicts.len()
            }
        )));
    }
    let values = up::source_values(p, &desired, a.secrets_from.as_deref()).await?;
    let wants: Vec<_> = crate::secrets_sync::wants(p, &desired, &values)
        .map_err(|e| CliError::Invalid(e.to_string()))?
        .into_iter()
        .filter(|w| names.contains(&w.secret))
        .collect();
    let generated = up::generated(p);
    let deploy = |wants, rotate: Vec<String>| apply::Options {
        timeout: Duration::from_secs(a.timeout),
        prune: false,
        progress: ctx.progress,
        vault: up::vault_step(p, &engine, &a.vault, wants, rotate),
        spec_file: ctx.cli_file.clone(),
    };
    let opts = deploy(wants.clone(), names.clone());
    if opts.vault.is_none() {
        return Err(CliError::Invalid(format!(
            "Vault service `{}` is not reachable from here; pass --vault-addr",
            p.vault
                .as_ref()
                .map(|v| v.service.as_str())
                .unwrap_or("vault")
        )));
    }
    let report = apply::up(&engine, p, &desired, observed, plan, &generated, &opts).await?;
    let synced_of = |report: &UpReport, secret: &str| {
        report
            .vault
            .as_ref()
            .and_then(|v| v.secrets.as_ref())
            .and_then(|s| s.iter().find(|x| x.secret == secret))
            .cloned()
    };
    let synced = synced_of(&report, name);
    let Some(synced) = synced else {
        // The Vault step did not get to the secrets (keys unavailable, Vault sealed): said in
        // the deploy's report.
        print(ctx, &report, None);
        return Err(CliError::Blocked(format!(
            "`{name}` was not rotated: the Vault step did not sync the secrets (see above)"
        )));
    };
    let mut out = RotateReport {
        secret: name.to_string(),
        result: "rotated",
        from_version: Some(synced.version.saturating_sub(1))
            .filter(|_| synced.outcome != SyncOutcome::Unchanged),
        to_version: Some(synced.version),
        fingerprint: Some(synced.fingerprint.clone()),
        with: with.clone(),
        consumers,
        deploy: report,
        rollback: None,
    };
    if synced.outcome == SyncOutcome::Unchanged {
        out.result = "unchanged";
        out.from_version = Some(synced.version);
        emit(ctx, &out, &format!("`{name}`: the source holds the value Vault already has (version {}): nothing to rotate. Change it at the source first.", synced.version));
        return Ok(exit::OK);
    }
    if out.deploy.outcome == Outcome::Deployed {
        let msg = format!(
            "`{name}` rotated{}: version {} → {} (fingerprint {}); {} run healthy on it, the old version is removed.",
            if with.is_empty() {
                String::new()
            } else {
                format!(" with `{}`, its key pair's other half", with.join("`, `"))
            },
            synced.version - 1,
            synced.version,
            synced.fingerprint,
            out.consumers.join(", ")
        );
        emit(ctx, &out, &msg);
        return Ok(exit::OK);
    }
    // The consumers refused the new value: the previous one goes back, through Vault (each
    // half of a pair its own).
    let previous: Option<Vec<_>> = names
        .iter()
        .map(|n| synced_of(&out.deploy, n).and_then(|x| x.previous.map(|v| (n.clone(), v))))
        .collect();
    let Some(previous) = previous else {
        emit(
            ctx,
            &out,
            &format!(
                "`{name}`: the rotation failed, and Vault held no previous value to go back to"
            ),
        );
        return Ok(exit::DEPLOY_FAILED);
    };
    ctx.progress.say(format!(
        "rotation of `{name}` failed: putting the previous value back (Vault version {} → {})",
        synced.version,
        synced.version + 1
    ));
    let observed = engine.observe(&desired.namespace).await?;
    let plan = sprocket_desired::plan::plan(&desired, &observed);
    let back: Vec<_> = wants
        .into_iter()
        .map(|mut w| {
            if let Some((_, v)) = previous.iter().find(|(n, _)| *n == w.secret) {
                w.origin = Origin::Source(v.clone());
            }
            w
        })
        .collect();
    let opts = deploy(back, Vec::new());
    let rollback = apply::up(&engine, p, &desired, observed, plan, &generated, &opts).await?;
    let restored = rollback.outcome == Outcome::Deployed;
    let version_back = rollback
        .vault
        .as_ref()
        .and_then(|v| v.secrets.as_ref())
        .and_then(|s| s.iter().find(|x| x.secret == name))
        .map(|s| s.version);
    out.result = "rolled-back";
    out.rollback = Some(rollback);
    let reason = out
        .deploy
        .failure
        .as_ref()
        .map(|f| format!("{}: {}", f.service, f.reason))
        .unwrap_or_else(|| "its consumers did not become healthy".into());
    let msg = if restored {
        format!(
            "`{name}` NOT rotated: {reason}.\nThe consumers ({}) are back on the previous value (Vault version {}, same value as version {}); the refused version {} is no longer mounted.",
            out.consumers.join(", "),
            version_back.map(|v| v.to_string()).unwrap_or_else(|| "?".into()),
            synced.version - 1,
            synced.version
        )
    } else {
        format!(
            "`{name}` NOT rotated: {reason}.\nPutting the previous value back did not converge either: see the rollback's report; `sprocketctl secrets ls` shows what each task mounts."
        )
    };
    emit(ctx, &out, &msg);
    Ok(exit::DEPLOY_FAILED)
}

fn print(ctx: &Ctx, report: &UpReport, extra: Option<&str>) {
    match ctx.format {
        Format::Json => output::json(report),
        Format::Human => {
            print!("{}", up::human(report));
            if let Some(e) = extra {
                println!("{e}");
            }
        }
    }
}

fn emit(ctx: &Ctx, out: &RotateReport, msg: &str) {
    match ctx.format {
        Format::Json => output::json(out),
        Format::Human => {
            print!("{}", up::human(&out.deploy));
            if let Some(r) = &out.rollback {
                println!("\nrollback:");
                print!("{}", up::human(r));
            }
            println!("{msg}");
        }
    }
}
