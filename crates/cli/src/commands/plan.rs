//! `plan`: desired vs the live swarm, object by object and field by field.

use super::{live, Ctx};
use crate::exit;
use crate::output::{self, Format};
use serde::Serialize;
use sprocket_desired::plan::{Action, Plan, Summary};
use sprocket_desired::provision::Pending;
use sprocket_desired::vault::VaultAction;

#[derive(clap::Args)]
pub struct Args {
    /// Exit 2 when there are changes, 0 when there are none.
    #[arg(long)]
    pub detailed_exitcode: bool,
    /// Include the deletion of owned objects the spec no longer wants.
    #[arg(long)]
    pub prune: bool,
    /// To compare Vault's configuration too.
    #[command(flatten)]
    pub vault: super::VaultAccess,
}

#[derive(Serialize)]
struct PlanReport<'a> {
    plan: &'a Plan,
    summary: Summary,
    prune: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    vault: Option<&'a crate::vault_config::Comparison>,
    /// Datastore provisionings `up` will run (from inside the swarm).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    provision: Vec<Pending>,
    /// Certificates Traefik will request from the ACME CA (routed hosts `acme.json` does not
    /// cover), with Let's Encrypt's weekly budget.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    certificates: Vec<crate::cert_budget::NewCertificate>,
}

pub async fn run(ctx: &Ctx, a: Args) -> Result<i32, crate::error::CliError> {
    let live = live(ctx).await?;
    let plan = sprocket_desired::plan::plan(&live.desired, &live.observed);
    let summary = plan.summary(a.prune);
    let provision = sprocket_desired::provision::pending(
        &live.desired.provisions,
        &live.observed,
        &live.desired.namespace,
        a.prune,
    );
    let vault = crate::vault_config::compare(
        &live.loaded.platform,
        &live.desired,
        &live.observed.secrets,
        a.vault.identity.as_deref(),
        a.vault.vault_addr.as_deref(),
        &live.engine.root_dir,
    )
    .await;
    let certificates = new_certificates(&live).await;
    match ctx.format {
        Format::Json => output::json(&PlanReport {
            plan: &plan,
            summary,
            prune: a.prune,
            vault: vault.as_ref(),
            provision: provision.clone(),
            certificates: certificates.clone(),
        }),
        Format::Human => {
            print!("{}", human(&plan, a.prune));
            for p in &provision {
                println!(
                    "  ~ provision {} logins {} ({}; a one-off task in the swarm makes or checks them)",
                    p.datastore,
                    p.logins.join(", "),
                    p.why
                );
            }
            for c in &certificates {
                match &c.budget {
                    Some(b) => println!(
                        "  + certificate {} from Let's Encrypt ({}: {} issued this week by what acme.json holds, {} of {} left)",
                        c.host, b.domain, b.issued_this_week, b.left, crate::cert_budget::PER_DOMAIN_PER_WEEK
                    ),
                    None => println!("  + certificate {} from {}", c.host, c.ca),
                }
            }
            if let Some(v) = &vault {
                print!("{}", human_vault(v, a.prune));
            }
        }
    }
    let vault_changes = vault
        .as_ref()
        .and_then(|v| v.plan.as_ref())
        .is_some_and(|vp| !vp.is_empty(a.prune));
    Ok(if !plan.conflicts.is_empty() {
        exit::BLOCKED
    } else if a.detailed_exitcode
        && (summary != Summary::default() || vault_changes || !provision.is_empty())
    {
        exit::CHANGES
    } else {
        exit::OK
    })
}

fn sym(a: Action) -> &'static str {
    match a {
        Action::Create => "+",
        Action::Update => "~",
        Action::Delete => "-",
    }
}

fn show(v: &Option<serde_json::Value>) -> String {
    match v {
        None => "(none)".into(),
        Some(v) => v.to_string(),
    }
}

/// The plan as text, Terraform-style.
pub fn human(plan: &Plan, prune: bool) -> String {
    let mut out = format!(
        "Plan for namespace `{}` (environment `{}`):\n",
        plan.namespace, plan.environment
    );
    for l in &plan.layers {
        if l.changes.is_empty() {
            out.push_str(&format!(
                "  layer {}: no changes ({} services as desired)\n",
                l.name,
                l.unchanged.len()
            ));
            continue;
        }
        out.push_str(&format!("  layer {}:\n", l.name));
        for c in &l.changes {
            out.push_str(&format!("    {} {} {}\n", sym(c.action), c.kind, c.name));
            for f in &c.fields {
                out.push_str(&format!(
                    "        {}: {} → {}\n",
                    f.path,
                    show(&f.before),
                    show(&f.after)
                ));
            }
        }
    }
    if !plan.prune.is_empty() {
        let what = if prune {
            "will be removed (--prune)"
        } else {
            "are no longer in the spec; `--prune` removes them"
        };
        out.push_str(&format!("  owned objects that {what}:\n"));
        for c in &plan.prune {
            out.push_str(&format!("    - {} {}\n", c.kind, c.name));
        }
    }
    for c in &plan.conflicts {
        out.push_str(&format!(
            "  blocked: {} {} exists but is not ours: made by {}; {}\n",
            c.kind, c.name, c.owner, c.fix
        ));
    }
    if !plan.missing_secrets.is_empty() {
        out.push_str(&format!(
            "  blocked: secrets without a value in the swarm: {} (they come from Doppler or an operator)\n",
            plan.missing_secrets.join(", ")
        ));
    }
    let s = plan.summary(prune);
    out.push_str(&format!(
        "Plan: {} to create, {} to change, {} to destroy.\n",
        s.create, s.update, s.delete
    ));
    out
}

/// Vault's part of the plan as text.
pub fn human_vault(v: &crate::vault_config::Comparison, prune: bool) -> String {
    let mut out = String::new();
    if let Some(n) = &v.note {
        return format!("  vault: {n}\n");
    }
    let Some(p) = &v.plan else { return out };
    if p.changes.is_empty() && (p.prune.is_empty()) {
        return "  vault: no changes (mounts, policies, auth and service tokens as the spec wants)\n".into();
    }
    out.push_str("  vault:\n");
    let line = |c: &sprocket_desired::vault::VaultChange| {
        let s = match c.action {
            VaultAction::Create => "+",
            VaultAction::Update => "~",
            VaultAction::Delete => "-",
            VaultAction::Blocked => "!",
        };
        format!(
            "    {s} {} {}{}\n",
            c.kind,
            c.name,
            c.detail
                .as_ref()
                .map(|d| format!(": {d}"))
                .unwrap_or_default()
        )
    };
    for c in &p.changes {
        out.push_str(&line(c));
    }
    if !p.prune.is_empty() {
        out.push_str(if prune {
            "    removed with --prune:\n"
        } else {
            "    owned by sprocketctl, no longer in the spec (`--prune` removes them):\n"
        });
        for c in &p.prune {
            out.push_str(&line(c));
        }
    }
    out
}

/// The certificates an `up` will make Traefik request: in an ACME environment, the routed hosts
/// no certificate in `acme.json` covers (all of them before Traefik's first deploy).
async fn new_certificates(live: &super::Live) -> Vec<crate::cert_budget::NewCertificate> {
    let p = &live.loaded.platform;
    let Some((ca, lets_encrypt)) = sprocket_desired::traefik::acme_directory(&p.environment.tls)
    else {
        return Vec::new();
    };
    let hosts = crate::certs::routed_hosts(p);
    let kept = crate::certs::kept(&live.engine, p, &live.observed)
        .await
        .unwrap_or_default();
    let now = crate::clock::unix_now().as_secs() as i64;
    crate::cert_budget::new_certificates(&hosts, &kept, &ca, lets_encrypt, now)
}
