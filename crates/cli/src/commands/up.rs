//! `up`: apply the plan, each service as soon as what it needs is healthy; returns when every
//! changed service has converged. Exit codes tell failure from timeout.

use super::{secs, Ctx};
use crate::apply::{self, LayerStatus, Outcome, ServiceAction, ServiceState, UpReport};
use crate::error::CliError;
use crate::exit;
use crate::output::{self, Format};
use sprocket_spec::model::Alphabet;
use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

#[derive(clap::Args)]
pub struct Args {
    /// How long each service may take, from its start, to run healthy with its old tasks gone,
    /// in seconds (0 to 86400).
    #[arg(long, default_value_t = 300, value_parser = clap::value_parser!(u64).range(0..=86_400))]
    pub timeout: u64,
    /// Also remove owned services and networks the spec no longer wants here.
    #[arg(long)]
    pub prune: bool,
    #[command(flatten)]
    pub vault: super::VaultAccess,
    /// Where the secrets' values are: `doppler:PROJECT/CONFIG`, `dotenv:PATH` or `env`
    /// (default: the environment's `secrets_from`).
    #[arg(long, env = "SPROCKET_SECRETS_FROM")]
    pub secrets_from: Option<String>,
    /// Deploy even where the Let's Encrypt pre-flight refuses a host (it does not resolve to
    /// this swarm, or port 80 does not answer there): each failed validation spends the CA's
    /// budget.
    #[arg(long)]
    pub skip_acme_preflight: bool,
}

pub async fn run(ctx: &Ctx, a: Args) -> Result<i32, CliError> {
    let super::Live {
        loaded,
        desired,
        engine,
        observed,
        lock: _lock,
    } = super::live_changing(ctx, "up").await?;
    // Blocked before anything changes: services would wait forever for secrets nobody makes.
    let plan = sprocket_desired::plan::plan(&desired, &observed);
    if !plan.conflicts.is_empty() {
        let list: Vec<String> = plan
            .conflicts
            .iter()
            .map(|c| format!("{} {} (made by {})", c.kind, c.name, c.owner))
            .collect();
        return Err(CliError::Blocked(format!(
            "objects with the names this platform needs exist but are not ours: {}. {}. Nothing was changed.",
            list.join("; "),
            plan.conflicts[0].fix
        )));
    }
    if !plan.missing_secrets.is_empty() {
        return Err(CliError::Blocked(format!(
            "secrets missing in the swarm: {}. Their source is Doppler or an operator; create each as a Docker secret named `{ns}_<name>-<anything>` with the labels io.sprocket.managed-by=sprocketctl, io.sprocket.namespace={ns} and io.sprocket.name=<name> (`printf %s \"$VALUE\" | docker secret create --label io.sprocket.managed-by=sprocketctl --label io.sprocket.namespace={ns} --label io.sprocket.name=<name> {ns}_<name>-1 -`; `down --volumes` removes them with the platform), or disable the services that mount them in this environment. Nothing was changed.",
            plan.missing_secrets.join(", "),
            ns = desired.namespace
        )));
    }
    let p = &loaded.platform;
    // Let's Encrypt's budget: a host that would fail its validation stops here.
    let findings = crate::preflight::run(&engine, p, &observed).await;
    let refused: Vec<String> = findings
        .iter()
        .filter_map(|f| match &f.verdict {
            crate::preflight::Verdict::Refused { reason } => Some(format!("{}: {reason}", f.host)),
            _ => None,
        })
        .collect();
    for f in &findings {
        if let crate::preflight::Verdict::Ready {
            address,
            note: Some(n),
        } = &f.verdict
        {
            ctx.progress.say(format!(
                "acme pre-flight: {} resolves to {address}; {n}",
                f.host
            ));
        }
    }
    if !refused.is_empty() && !a.skip_acme_preflight {
        return Err(CliError::Invalid(format!(
            "Let's Encrypt would fail to validate {} host(s), spending its rate limits (5 failed validations per name per hour, 50 new certificates per domain per week):\n  {}\nFix DNS and port 80 first, or deploy anyway with --skip-acme-preflight. Nothing was changed.",
            refused.len(),
            refused.join("\n  ")
        )));
    }
    // The source's values, checked before anything changes: a bad value stops here.
    let values = source_values(p, &desired, a.secrets_from.as_deref()).await?;
    let wants = crate::secrets_sync::wants(p, &desired, &values)
        .map_err(|e| CliError::Invalid(e.to_string()))?;
    let lengths = generated(p);
    let opts = apply::Options {
        timeout: Duration::from_secs(a.timeout),
        prune: a.prune,
        progress: ctx.progress,
        vault: vault_step(p, &engine, &a.vault, wants, Vec::new()),
        spec_file: ctx.cli_file.clone(),
    };
    let report = match apply::up(
        &engine,
        &loaded.platform,
        &desired,
        observed,
        plan,
        &lengths,
        &opts,
    )
    .await
    {
        Ok(r) => r,
        Err(e) => return Err(e.into()),
    };
    match ctx.format {
        Format::Json => output::json(&report),
        Format::Human => print!("{}", human(&report)),
    }
    Ok(match report.outcome {
        Outcome::Deployed => exit::OK,
        Outcome::Failed => exit::DEPLOY_FAILED,
        Outcome::TimedOut => exit::TIMEOUT,
    })
}

/// The values the enabled services need from the environment's source, checked: any error is
/// printed (keys and lines, never values) and stops the command before anything changes.
pub(crate) async fn source_values(
    p: &sprocket_spec::model::Platform,
    desired: &sprocket_desired::DesiredState,
    secrets_from: Option<&str>,
) -> Result<BTreeMap<String, String>, CliError> {
    match crate::secret_source::read_checked(p, desired, secrets_from, false).await? {
        Some(c) if c.errors() > 0 => {
            for l in c.lines() {
                eprintln!("{l}");
            }
            Err(CliError::Invalid(format!(
                "{} error(s) in the secrets of {} (above). Nothing was changed.",
                c.errors(),
                c.source
            )))
        }
        Some(c) => Ok(c.values),
        None => Ok(BTreeMap::new()),
    }
}

/// Alphabet and length of every generated secret (made in Docker where there is no Vault).
pub(crate) fn generated(p: &sprocket_spec::model::Platform) -> HashMap<String, (Alphabet, usize)> {
    p.secrets
        .iter()
        .map(|s| (s.name.clone(), (s.alphabet, s.length)))
        .collect()
}

/// The Vault step of a deploy, where the platform runs a Vault this machine reaches.
pub(crate) fn vault_step(
    p: &sprocket_spec::model::Platform,
    engine: &sprocket_docker::Engine,
    access: &super::VaultAccess,
    secrets: Vec<sprocket_secrets::sync::Want>,
    rotate: Vec<String>,
) -> Option<apply::VaultStep> {
    let config = p.vault.clone()?;
    Some(apply::VaultStep {
        client: crate::vault_lifecycle::client(p, access.vault_addr.as_deref(), &engine.root_dir)?,
        config,
        identity: access.identity.clone(),
        secrets,
        rotate,
    })
}

pub(crate) fn human(r: &UpReport) -> String {
    let mut out = String::new();
    for l in &r.layers {
        let mark = match l.status {
            LayerStatus::Deployed => "✓",
            LayerStatus::NotStarted => "·",
            LayerStatus::Partial => "◐",
            LayerStatus::Failed | LayerStatus::TimedOut => "✗",
        };
        let count = |a: ServiceAction| {
            l.services
                .iter()
                .filter(|s| s.action == a && s.started_after.is_some())
                .count()
        };
        let status = serde_json::to_value(l.status).expect("serialisable");
        out.push_str(&format!(
            "{mark} layer {}: {} in {} ({} created, {} updated, {} unchanged)\n",
            l.name,
            status.as_str().unwrap_or_default(),
            secs(Duration::from_secs_f64(l.seconds)),
            count(ServiceAction::Create),
            count(ServiceAction::Update),
            count(ServiceAction::Unchanged)
        ));
        for s in &l.services {
            let why = s.not_started_because.as_deref().unwrap_or_default();
            match s.state {
                ServiceState::NotStarted => {
                    out.push_str(&format!("    {}: not started: {why}\n", s.name))
                }
                ServiceState::Skipped => {
                    out.push_str(&format!("    {}: left out: {why}\n", s.name))
                }
                ServiceState::Failed => out.push_str(&format!("    {}: failed\n", s.name)),
                ServiceState::TimedOut => out.push_str(&format!("    {}: timed out\n", s.name)),
                ServiceState::Healthy => {}
            }
        }
        if !l.disabled.is_empty() {
            let names: Vec<&str> = l.disabled.iter().map(|d| d.service.as_str()).collect();
            out.push_str(&format!(
                "    not run in this environment: {} (`sprocketctl status` says why)\n",
                names.join(", ")
            ));
        }
    }
    // On a run that changed nothing the path only says how fast the tasks were read.
    if r.calls != Default::default() {
        let path: Vec<String> = r
            .critical_path
            .iter()
            .map(|s| format!("{} {:.1}s→{:.1}s", s.step, s.started_after, s.healthy_after))
            .collect();
        if !path.is_empty() {
            out.push_str(&format!("  critical path: {}\n", path.join(" ▸ ")));
        }
    }
    for p in r.provisioned.iter().filter(|p| p.ran) {
        let logins: Vec<String> = p
            .logins
            .iter()
            .map(|l| format!("{} {}", l.user, l.outcome))
            .collect();
        out.push_str(&format!(
            "  {}: logins provisioned in {:.1}s: {}{}\n",
            p.datastore,
            p.seconds,
            logins.join(", "),
            if p.removed.is_empty() {
                String::new()
            } else {
                format!("; removed {}", p.removed.join(", "))
            }
        ));
    }
    if let Some(v) = &r.vault {
        let state = if !v.initialized {
            "not initialised"
        } else if v.sealed {
            "sealed"
        } else {
            "unsealed"
        };
        let did = if v.actions.is_empty() {
            String::new()
        } else {
            format!(" — this run: {}", v.actions.join(", "))
        };
        out.push_str(&format!("  vault: {state}{did}; keyring {}\n", v.keyring));
        for n in &v.notes {
            out.push_str(&format!("    note: {n}\n"));
        }
        if let Some(c) = &v.config {
            out.push_str(&format!(
                "    configuration: {} change(s) applied{}\n",
                c.changes.len(),
                if c.blocked.is_empty() {
                    String::new()
                } else {
                    format!(", {} blocked", c.blocked.len())
                }
            ));
            for b in &c.blocked {
                out.push_str(&format!(
                    "    blocked: {} {}: {}\n",
                    b.kind,
                    b.name,
                    b.detail.as_deref().unwrap_or_default()
                ));
            }
        }
    }
    for f in &r.failures {
        out.push_str(&format!(
            "\n{} in layer `{}`: {}\n",
            f.service, f.layer, f.reason
        ));
        if let Some(t) = &f.task {
            if let Some(code) = t.exit_code {
                out.push_str(&format!("  exit code {code}\n"));
            }
        }
        if !f.logs.is_empty() {
            out.push_str("  last log lines:\n");
            for l in &f.logs {
                out.push_str(&format!("    | {l}\n"));
            }
        }
        out.push_str(&format!("  {}\n", f.hint));
    }
    for x in &r.removed {
        out.push_str(&format!("removed {x}\n"));
    }
    if let Some(b) = &r.backup_schedule {
        out.push_str(&match b.action.as_str() {
            "failed" => format!(
                "warning: the scheduled backups' runner is not running as the spec says: {}\n  hint: fix it and run `up` again; until then only `sprocketctl backup` takes backups (`check` says how old the newest is)\n",
                b.detail
            ),
            a => format!("scheduled backups: {} ({a})\n", b.detail),
        });
    }
    out.push_str(&format!(
        "{} in {} — engine calls: {} create, {} update, {} remove.\n",
        match r.outcome {
            Outcome::Deployed => "Deployed",
            Outcome::Failed => "Failed",
            Outcome::TimedOut => "Timed out",
        },
        secs(Duration::from_secs_f64(r.seconds)),
        r.calls.create,
        r.calls.update,
        r.calls.remove
    ));
    out
}
