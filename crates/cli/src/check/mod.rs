//! `sprocketctl check`: the runbook's morning and weekly checklists as one command, derived
//! from the spec and the live swarm — every service N/N and its restarts in 24 h, every route ×
//! host through the edge router (and an unknown host's 404), from each service's own networks
//! what it uses (reachable) and what it does not (isolated), Vault unsealed, certificates, error
//! lines in 24 h against each service's budget, the node's resources and Docker's disk, the
//! newest backup's age and the last drill (`backups`). The
//! probes run in parallel; failures are grouped by their root (`sprocket_check::roots`). Exit 0
//! ok, 8 a warning, 9 something critical.

mod backups;
mod errors;
mod node;
mod reach;
pub(crate) mod routes;
mod sla;

use crate::commands::{live, Ctx};
use crate::error::CliError;
use crate::exit;
use crate::output::{self, Format};
use sprocket_check::{judge, Finding, Kind, Report, Severity};
use sprocket_spec::model::Platform;
use std::time::Instant;

#[derive(clap::Args)]
pub struct Args {
    /// List every check in the human output, not only those that are not OK.
    #[arg(long)]
    pub all: bool,
    /// Instead: each service's uptime and error budget over 7 and 30 days, from the agent's
    /// rounds (the environment needs `alerts`), against its `check: { slo }`.
    #[arg(long)]
    pub sla: bool,
    /// Vault is reached as `status` reaches it.
    #[command(flatten)]
    pub vault: crate::commands::VaultAccess,
}

/// `f`'s result and how long it took, in seconds.
async fn timed<T>(f: impl std::future::Future<Output = T>) -> (T, f64) {
    let t = Instant::now();
    let r = f.await;
    (r, t.elapsed().as_secs_f64())
}

/// Replicas against those wanted, and tasks that failed in the last 24 hours.
async fn services(
    engine: &sprocket_docker::Engine,
    plan: &sprocket_check::CheckPlan,
    desired: &sprocket_desired::DesiredState,
    observed: &sprocket_desired::Observed,
) -> Vec<Finding> {
    let now = crate::clock::unix_now().as_secs() as i64;
    let since = crate::certs::rfc3339(now - 86_400);
    let since = since.trim_end_matches('Z');
    let mut out = Vec::new();
    for s in &plan.services {
        let Some(live) = observed.services.iter().find(|o| o.spec.name == s.name) else {
            out.push(Finding::new(
                Kind::Replicas,
                &s.service,
                Severity::Critical,
                format!(
                    "{} (0/{}): `sprocketctl up`",
                    sprocket_check::report::NOT_DEPLOYED,
                    s.desired
                ),
            ));
            continue;
        };
        let tasks = match engine.tasks(&live.id).await {
            Ok(t) => t,
            Err(e) => {
                out.push(Finding::new(
                    Kind::Replicas,
                    &s.service,
                    Severity::Critical,
                    format!("its tasks cannot be read: {e}"),
                ));
                continue;
            }
        };
        let spec = desired
            .services()
            .find(|d| d.name == s.name)
            .expect("planned from it");
        let seen = std::collections::HashSet::new();
        let a = sprocket_docker::assess(
            &spec.mode,
            &tasks,
            sprocket_docker::Tracking::Current(&seen),
        );
        let sev = judge::replicas(a.running, a.want);
        out.push(Finding::new(
            Kind::Replicas,
            &s.service,
            sev,
            format!("{}/{} running", a.running, a.want),
        ));
        let failed: Vec<_> = tasks
            .iter()
            .filter(|t| {
                t.has_failed()
                    && sprocket_docker::tasks::time_key(&t.created_at).0.as_str() >= since
            })
            .collect();
        let mut f = Finding::new(
            Kind::Restarts,
            &s.service,
            judge::restarts(failed.len()),
            format!("{} task(s) failed in 24 h", failed.len()),
        );
        if let Some(last) = failed
            .iter()
            .max_by_key(|t| sprocket_docker::tasks::time_key(&t.created_at))
        {
            let why = last
                .error
                .as_deref()
                .or(last.message.as_deref())
                .unwrap_or(&last.state);
            f.detail.push_str(&format!(" (last: {why})"));
        }
        out.push(f);
    }
    out
}

async fn vault(p: &Platform, addr: Option<&str>, root: &std::path::Path) -> Option<Finding> {
    let v = p.vault.as_ref()?;
    let c = crate::vault_lifecycle::client(p, addr, root)?;
    Some(vault_finding(&v.service, &c).await)
}

/// Vault's seal as a finding about its service (`check`'s and the agent's).
pub(crate) async fn vault_finding(service: &str, c: &sprocket_vault::VaultClient) -> Finding {
    let f = |sev, d: &str| Finding::new(Kind::Vault, service, sev, d);
    match c.seal_status().await {
        Err(e) => f(Severity::Critical, &format!("does not answer at {}: {e}", c.address())),
        Ok(s) if !s.initialized => f(Severity::Critical, "not initialised: `sprocketctl up` initialises it"),
        Ok(s) if s.sealed => f(Severity::Critical, "sealed: the unseal agent has not unsealed it (its log says why; `sprocketctl vault unseal`)"),
        Ok(_) => f(Severity::Ok, "initialised and unsealed"),
    }
}

fn certificates(certs: Vec<crate::certs::CertInfo>) -> Vec<Finding> {
    use crate::certs::Level;
    certs
        .into_iter()
        .map(|c| {
            let sev = match c.level {
                Level::Ok => Severity::Ok,
                Level::Info => Severity::Info,
                Level::Critical | Level::Error => Severity::Critical,
            };
            let mut d = match c.days_left {
                Some(n) => format!("{n} days left ({}, {})", c.source, c.issuer),
                None => c.source.to_string(),
            };
            if let Some(n) = &c.note {
                d.push_str(&format!(": {n}"));
            }
            Finding::new(Kind::Certificate, &c.host, sev, d)
        })
        .collect()
}

pub async fn run(ctx: &Ctx, a: Args) -> Result<i32, CliError> {
    let start = Instant::now();
    let live = live(ctx).await?;
    if a.sla {
        return sla::run(ctx, &live).await;
    }
    let p = &live.loaded.platform;
    let plan = sprocket_check::plan::plan(p, &live.desired);
    reach::clean(&live.engine, &live.observed).await;
    ctx.progress.say(format!(
        "checking {} service(s), {} route × host, {} reach probe task(s)",
        plan.services.len(),
        plan.routes.len(),
        plan.reach
            .iter()
            .filter(|r| !r.targets.is_empty() && !r.networks.is_empty())
            .count()
    ));
    // What measures time or load goes first, alone: the probe tasks' start would load the
    // machine and slow the routes' answers. Then the heavy reads and the probe tasks, at once.
    let edge = routes::Edge::local(&p.environment);
    let (node, routes, vault, certs, backups) = tokio::join!(
        timed(node::check(&live.engine)),
        timed(routes::check(
            &edge,
            p.edge().map(|e| e.name.as_str()).unwrap_or("edge"),
            &plan.routes
        )),
        timed(vault(
            p,
            a.vault.vault_addr.as_deref(),
            &live.engine.root_dir
        )),
        timed(crate::certs::gather(&live.engine, p, &live.observed)),
        timed(backups::check(p, &live.observed)),
    );
    let (svc, reached, errors) = tokio::join!(
        timed(services(&live.engine, &plan, &live.desired, &live.observed)),
        timed(reach::check(
            &live.engine,
            &plan.namespace,
            &p.environment.tool_image,
            &plan.reach,
            &live.observed,
        )),
        timed(errors::check(&live.engine, &plan, &live.observed)),
    );
    let phases = [
        ("node", node.1),
        ("routes", routes.1),
        ("vault", vault.1),
        ("certificates", certs.1),
        ("backups", backups.1),
        ("services", svc.1),
        ("reach", reached.1),
        ("errors", errors.1),
    ];
    let (svc, routes, reached, vault, certs, errors, node) = (
        svc.0, routes.0, reached.0, vault.0, certs.0, errors.0, node.0,
    );
    let mut findings = svc;
    findings.extend(vault);
    findings.extend(routes);
    findings.extend(reached);
    findings.extend(errors);
    findings.extend(certificates(certs));
    findings.extend(node);
    findings.extend(backups.0);
    let mut report = Report::new(
        &plan.namespace,
        &p.environment.name,
        findings,
        &plan.uses,
        start.elapsed().as_secs_f64(),
    );
    report.phases = phases
        .into_iter()
        .map(|(k, v)| (k.to_string(), (v * 1000.0).round() / 1000.0))
        .collect();
    match ctx.format {
        Format::Json => output::json(&report),
        Format::Human => print!("{}", human(&report, a.all)),
    }
    Ok(match report.worst {
        Severity::Critical => exit::CHECK_CRITICAL,
        Severity::Warning => exit::CHECK_WARNING,
        _ => exit::OK,
    })
}

/// What is not OK first, grouped by root; then a line of what is.
pub fn human(r: &Report, all: bool) -> String {
    use comfy_table::{presets::UTF8_BORDERS_ONLY, Table};
    let mut out = String::new();
    for i in &r.incidents {
        out.push_str(&format!(
            "ROOT {}: {}\n",
            i.root,
            match i.affects.is_empty() {
                true => "nothing uses it".to_string(),
                false => format!(
                    "affects {} (their failures below are explained by it)",
                    i.affects.join(", ")
                ),
            }
        ));
    }
    let shown: Vec<&Finding> = r
        .findings
        .iter()
        .filter(|f| all || f.severity > Severity::Ok)
        .collect();
    if !shown.is_empty() {
        let mut t = Table::new();
        t.load_preset(UTF8_BORDERS_ONLY);
        t.set_header(["", "check", "service", "target", "detail"]);
        for f in shown {
            let detail = match &f.explained_by {
                Some(root) => format!("{} [because {root} fails]", f.detail),
                None => f.detail.clone(),
            };
            t.add_row([
                f.severity.name().to_uppercase(),
                f.kind.name().to_string(),
                f.subject.clone(),
                f.target.clone().unwrap_or_default(),
                detail,
            ]);
        }
        out.push_str(&format!("{t}\n"));
    }
    let s = &r.summary;
    out.push_str(&format!(
        "{}: {} ok, {} info, {} warning, {} critical — namespace `{}`, environment `{}`, in {:.1}s\n",
        r.worst.name().to_uppercase(),
        s.ok,
        s.info,
        s.warning,
        s.critical,
        r.namespace,
        r.environment,
        r.seconds
    ));
    out
}
