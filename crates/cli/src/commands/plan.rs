//! `plan`: desired vs the live swarm, object by object and field by field.

use super::{live, Ctx};
use crate::exit;
use crate::output::{self, Format};
use serde::Serialize;
use sprocket_desired::plan::{Action, Plan, Summary};

#[derive(clap::Args)]
pub struct Args {
    /// Exit 2 when there are changes, 0 when there are none.
    #[arg(long)]
    pub detailed_exitcode: bool,
    /// Include the deletion of owned objects the spec no longer wants.
    #[arg(long)]
    pub prune: bool,
}

#[derive(Serialize)]
struct PlanReport<'a> {
    plan: &'a Plan,
    summary: Summary,
    prune: bool,
}

pub async fn run(ctx: &Ctx, a: Args) -> i32 {
    let live = match live(ctx).await {
        Ok(l) => l,
        Err(code) => return code,
    };
    let plan = sprocket_desired::plan::plan(&live.desired, &live.observed);
    let summary = plan.summary(a.prune);
    match ctx.format {
        Format::Json => output::json(&PlanReport {
            plan: &plan,
            summary,
            prune: a.prune,
        }),
        Format::Human => print!("{}", human(&plan, a.prune)),
    }
    if a.detailed_exitcode && summary != Summary::default() {
        exit::CHANGES
    } else {
        exit::OK
    }
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
