//! `up`: apply the plan layer by layer with health gates; exit codes tell failure from timeout.

use super::{live, secs, Ctx};
use crate::apply::{self, Outcome, UpReport};
use crate::exit;
use crate::output::{self, Format};
use std::collections::HashMap;
use std::time::Duration;

#[derive(clap::Args)]
pub struct Args {
    /// How long each layer may take to become healthy, in seconds.
    #[arg(long, default_value_t = 300)]
    pub timeout: u64,
    /// Also remove owned services and networks the spec no longer wants here.
    #[arg(long)]
    pub prune: bool,
    #[command(flatten)]
    pub vault: super::VaultAccess,
}

pub async fn run(ctx: &Ctx, a: Args) -> i32 {
    let super::Live {
        loaded,
        desired,
        engine,
        observed,
    } = match live(ctx).await {
        Ok(l) => l,
        Err(code) => return code,
    };
    // Blocked before anything changes: services would wait forever for secrets nobody makes.
    let plan = sprocket_desired::plan::plan(&desired, &observed);
    if !plan.missing_secrets.is_empty() {
        return super::fail(
            ctx,
            &format!(
                "secrets missing in the swarm: {}. Their source is Doppler or an operator; create them (as Docker secrets named `{}_<name>-…` with label io.sprocket.name=<name>) or disable the services that mount them in this environment. Nothing was changed.",
                plan.missing_secrets.join(", "),
                desired.namespace
            ),
            exit::BLOCKED,
        );
    }
    let lengths: HashMap<String, usize> = loaded
        .platform
        .secrets
        .iter()
        .map(|s| (s.name.clone(), s.length))
        .collect();
    let opts = apply::Options {
        timeout: Duration::from_secs(a.timeout),
        prune: a.prune,
        progress: ctx.progress,
        vault: loaded.platform.vault.clone().and_then(|config| {
            Some(apply::VaultStep {
                client: crate::vault_lifecycle::client(
                    &loaded.platform,
                    a.vault.vault_addr.as_deref(),
                )?,
                config,
                identity: a.vault.identity.clone(),
            })
        }),
    };
    let report = match apply::up(&engine, &desired, observed, plan, &lengths, &opts).await {
        Ok(r) => r,
        Err(e) => return super::fail(ctx, &e.to_string(), exit::ERROR),
    };
    match ctx.format {
        Format::Json => output::json(&report),
        Format::Human => print!("{}", human(&report)),
    }
    match report.outcome {
        Outcome::Deployed => exit::OK,
        Outcome::Failed => exit::DEPLOY_FAILED,
        Outcome::TimedOut => exit::TIMEOUT,
    }
}

fn human(r: &UpReport) -> String {
    let mut out = String::new();
    for l in &r.layers {
        let mark = match l.status.as_str() {
            "deployed" => "✓",
            "not-started" => "·",
            _ => "✗",
        };
        let count = |a: &str| l.services.iter().filter(|s| s.action == a).count();
        out.push_str(&format!(
            "{mark} layer {}: {} in {} ({} created, {} updated, {} unchanged)\n",
            l.name,
            l.status,
            secs(Duration::from_secs_f64(l.seconds)),
            count("create"),
            count("update"),
            count("unchanged")
        ));
        if !l.disabled.is_empty() {
            let names: Vec<&str> = l.disabled.iter().map(|d| d.service.as_str()).collect();
            out.push_str(&format!(
                "    not run in this environment: {} (`sprocketctl status` says why)\n",
                names.join(", ")
            ));
        }
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
    if let Some(f) = &r.failure {
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
