//! `check --sla`: each service's uptime and error budget over 7 and 30 days, from what the
//! agent recorded round by round (its state file, read from its container), against the
//! service's `check: { slo }`.

use crate::commands::Live;
use crate::error::CliError;
use crate::exit;
use crate::output::{self, Format};
use serde::Serialize;
use sprocket_check::history::{History, Uptime};
use sprocket_spec::model::{Alerts, Role};

#[derive(Serialize)]
struct Line {
    service: String,
    slo: Option<f64>,
    last_7_days: Option<Uptime>,
    last_30_days: Option<Uptime>,
    /// Over 30 days: the budget the target allows and what was used of it, in minutes.
    budget_minutes: Option<f64>,
    used_minutes: Option<f64>,
    within: Option<bool>,
}

#[derive(Serialize)]
struct SlaReport {
    namespace: String,
    environment: String,
    /// Rounds the agent has recorded (across its restarts).
    rounds: u64,
    services: Vec<Line>,
}

fn pct(u: &Option<Uptime>) -> String {
    u.map(|u| format!("{:.3} %", u.percent))
        .unwrap_or_else(|| "—".into())
}

pub async fn run(ctx: &crate::commands::Ctx, live: &Live) -> Result<i32, CliError> {
    let p = &live.loaded.platform;
    if p.environment.alerts.is_none() {
        return Err(CliError::Invalid(format!(
            "the agent does not watch environment `{}`: add `alerts` to it (see README, \"Alerts\"), `up`, and the SLA report fills from its rounds",
            p.environment.name
        )));
    }
    let task = crate::certs::role_task(&live.engine, p, &live.observed, Role::UnsealAgent)
        .await
        .ok_or_else(|| {
            CliError::Invalid("no running agent task: `sprocketctl status` says why".into())
        })?;
    let container = task
        .container_id
        .clone()
        .ok_or_else(|| CliError::Invalid("the agent's task has no container yet".into()))?;
    let path = format!("{}/{}", Alerts::STATE_DIR, crate::monitor::STATE_FILE);
    let bytes = live
        .engine
        .container_file(&container, &path)
        .await
        .map_err(|e| {
            CliError::Invalid(format!("the agent's state ({path}) cannot be read: {e}"))
        })?;
    let h: History = serde_json::from_slice(&bytes).map_err(|e| {
        CliError::Invalid(format!("the agent's state ({path}) is not readable: {e}"))
    })?;
    let now = crate::clock::unix_now().as_secs();
    let mut breached = false;
    let services: Vec<Line> = sprocket_desired::checks::watch(p)
        .services
        .into_iter()
        .map(|s| {
            let d7 = h.uptime(&s.service, 7, now);
            let d30 = h.uptime(&s.service, 30, now);
            let (budget, used) = match (s.slo, d30) {
                (Some(t), Some(u)) => {
                    let (b, used) = u.budget(t);
                    (Some(b), Some(used))
                }
                _ => (None, None),
            };
            let within = budget.zip(used).map(|(b, u)| u <= b);
            breached |= within == Some(false);
            Line {
                service: s.service,
                slo: s.slo,
                last_7_days: d7,
                last_30_days: d30,
                budget_minutes: budget,
                used_minutes: used,
                within,
            }
        })
        .collect();
    let report = SlaReport {
        namespace: p.environment.namespace.clone(),
        environment: p.environment.name.clone(),
        rounds: h.rounds,
        services,
    };
    match ctx.format {
        Format::Json => output::json(&report),
        Format::Human => {
            use comfy_table::{presets::UTF8_BORDERS_ONLY, Table};
            let mut t = Table::new();
            t.load_preset(UTF8_BORDERS_ONLY);
            t.set_header([
                "service",
                "7 days",
                "30 days",
                "target",
                "budget (30 d)",
                "used",
            ]);
            for l in &report.services {
                t.add_row([
                    l.service.clone(),
                    pct(&l.last_7_days),
                    pct(&l.last_30_days),
                    l.slo
                        .map(|s| format!("{s} %"))
                        .unwrap_or_else(|| "—".into()),
                    l.budget_minutes
                        .map(|b| format!("{b:.0} min"))
                        .unwrap_or_default(),
                    match (l.used_minutes, l.within) {
                        (Some(u), Some(false)) => format!("{u:.0} min — OVER"),
                        (Some(u), _) => format!("{u:.0} min"),
                        _ => String::new(),
                    },
                ]);
            }
            println!("{t}");
            println!(
                "from {} round(s) of the agent; uptime counts the rounds a service could serve (its tasks, route, what it reaches)",
                report.rounds
            );
        }
    }
    Ok(if breached {
        exit::CHECK_CRITICAL
    } else {
        exit::OK
    })
}
