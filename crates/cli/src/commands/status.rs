//! `status`: what runs, per layer: replicas, image, last update, health; what this environment
//! disables and why; routes, datastore logins, certificates (days left), Vault. The exit code
//! is the deploy's health and Vault's seal; certificates are reported, not judged here (`check`
//! will alert on them).

use super::{live, Ctx};
use crate::exit;
use crate::output::{self, Format};
use comfy_table::{presets::UTF8_BORDERS_ONLY, Table};
use serde::Serialize;
use sprocket_spec::model::Mode;

#[derive(clap::Args)]
pub struct Args {
    /// To show Vault's seal state and configuration drift too.
    #[command(flatten)]
    pub vault: super::VaultAccess,
}

#[derive(Serialize)]
struct StatusReport {
    namespace: String,
    environment: String,
    layers: Vec<LayerStatus>,
    /// Owned services that the spec does not want in this environment.
    orphans: Vec<String>,
    /// Every published route, with a curl command that reaches it from this machine.
    routes: Vec<RouteInfo>,
    /// Vault: sealed or not, and its configuration against the spec.
    #[serde(skip_serializing_if = "Option::is_none")]
    vault: Option<crate::vault_config::Comparison>,
    /// Which login each consumer of a datastore has: its own (`access`) or a shared one.
    logins: Vec<sprocket_desired::logins::LoginInfo>,
    /// Every routed host's certificate as served, and (ACME) those `acme.json` keeps.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    certificates: Vec<crate::certs::CertInfo>,
}

#[derive(Serialize)]
struct RouteInfo {
    service: String,
    router: String,
    host: String,
    curl: String,
}

/// A curl line that reaches `host` through the edge router from the machine it runs on: the
/// Host header picks the route, whatever DNS says; public names with real certificates are
/// called by name.
fn curl_line(env: &sprocket_spec::model::Environment, host: &str, path: Option<&str>) -> String {
    let path = path.unwrap_or("/");
    if env.tls.acme() && !sprocket_spec::values::is_local_host(host) {
        format!("curl https://{host}{path}")
    } else {
        format!(
            "curl -H 'Host: {host}' http://127.0.0.1:{}{path}",
            env.http_port
        )
    }
}

#[derive(Serialize)]
struct LayerStatus {
    name: String,
    services: Vec<ServiceStatus>,
    disabled: Vec<sprocket_spec::model::Disabled>,
}

#[derive(Serialize)]
struct ServiceStatus {
    name: String,
    /// `healthy`, `starting`, `degraded`, `not deployed`, or `drifted` (differs from the spec).
    state: String,
    running: usize,
    desired: usize,
    image: String,
    updated_at: Option<String>,
    update_state: Option<String>,
    /// Fields that differ from the spec (what `plan` would change).
    drift: Vec<String>,
}

pub async fn run(ctx: &Ctx, a: Args) -> Result<i32, crate::error::CliError> {
    let live = live(ctx).await?;
    let vault = crate::vault_config::compare(
        &live.loaded.platform,
        &live.desired,
        &live.observed.secrets,
        a.vault.identity.as_deref(),
        a.vault.vault_addr.as_deref(),
        &live.engine.root_dir,
    )
    .await;
    let super::Live {
        loaded,
        desired,
        engine,
        observed,
        ..
    } = live;
    let mut layers = Vec::new();
    for l in &desired.layers {
        let mut services = Vec::new();
        for s in &l.services {
            let want = match s.mode {
                Mode::Replicated(n) => n as usize,
                Mode::Global => 1,
            };
            let Some(live) = observed.services.iter().find(|o| o.spec.name == s.name) else {
                services.push(ServiceStatus {
                    name: s.short_name.clone(),
                    state: "not deployed".into(),
                    running: 0,
                    desired: want,
                    image: s.image.clone(),
                    updated_at: None,
                    update_state: None,
                    drift: vec![],
                });
                continue;
            };
            let tasks = engine.tasks(&live.id).await?;
            // The gate's own reading of the tasks (as `up` would judge an unchanged service).
            let seen = std::collections::HashSet::new();
            let a =
                sprocket_docker::assess(&s.mode, &tasks, sprocket_docker::Tracking::Current(&seen));
            let (running, want) = (a.running, a.want);
            let active: Vec<_> = tasks
                .iter()
                .filter(|t| t.desired_state == "running")
                .collect();
            let drift: Vec<String> = sprocket_desired::plan::diff_service(s, &live.spec)
                .into_iter()
                .map(|f| f.path)
                .collect();
            let state = if running >= want && drift.is_empty() {
                "healthy"
            } else if running >= want {
                "drifted"
            } else if active
                .iter()
                .any(|t| t.state == "starting" || t.state == "preparing")
            {
                "starting"
            } else {
                "degraded"
            };
            services.push(ServiceStatus {
                name: s.short_name.clone(),
                state: state.into(),
                running,
                desired: want,
                image: live.spec.image.clone(),
                updated_at: live.updated_at.clone(),
                update_state: live.update_state.clone(),
                drift,
            });
        }
        layers.push(LayerStatus {
            name: l.name.clone(),
            services,
            disabled: l.disabled.clone(),
        });
    }
    let wanted: Vec<&str> = desired.services().map(|s| s.name.as_str()).collect();
    // Not the services other steps keep (the scheduled backups' runner, a check's probe).
    let orphans = observed
        .services
        .iter()
        .filter(|o| !wanted.contains(&o.spec.name.as_str()))
        .filter(|o| !o.kept_by_a_step())
        .map(|o| o.spec.name.clone())
        .collect();
    let env = &loaded.platform.environment;
    let routes = loaded
        .platform
        .services()
        .flat_map(|s| s.routes.iter().map(move |r| (s, r)))
        .flat_map(|(s, r)| {
            r.hosts.iter().map(move |h| RouteInfo {
                service: s.name.clone(),
                router: r.router.clone(),
                host: h.clone(),
                curl: curl_line(env, h, r.path.as_deref()),
            })
        })
        .collect();
    let report = StatusReport {
        namespace: desired.namespace.clone(),
        environment: desired.environment.clone(),
        layers,
        orphans,
        routes,
        vault,
        logins: sprocket_desired::logins::logins(&loaded.platform),
        certificates: crate::certs::gather(&engine, &loaded.platform, &observed).await,
    };
    match ctx.format {
        Format::Json => output::json(&report),
        Format::Human => {
            println!(
                "namespace `{}`, environment `{}`",
                report.namespace, report.environment
            );
            let mut t = Table::new();
            t.load_preset(UTF8_BORDERS_ONLY);
            t.set_header(vec![
                "LAYER", "SERVICE", "REPLICAS", "STATE", "IMAGE", "UPDATED",
            ]);
            for l in &report.layers {
                for s in &l.services {
                    t.add_row(vec![
                        l.name.clone(),
                        s.name.clone(),
                        format!("{}/{}", s.running, s.desired),
                        match &s.update_state {
                            Some(u) if u != "completed" => format!("{} (update {u})", s.state),
                            _ => s.state.clone(),
                        },
                        s.image.clone(),
                        s.updated_at
                            .clone()
                            .unwrap_or_default()
                            .chars()
                            .take(19)
                            .collect(),
                    ]);
                }
                for d in &l.disabled {
                    t.add_row(vec![
                        l.name.clone(),
                        d.service.clone(),
                        "-".into(),
                        "disabled".into(),
                        d.reason.clone(),
                        String::new(),
                    ]);
                }
            }
            println!("{t}");
            if !report.routes.is_empty() {
                println!("routes:");
                for r in &report.routes {
                    println!("  {:<14} {}", r.service, r.curl);
                }
            }
            if !report.logins.is_empty() {
                println!("datastore logins:");
                for l in &report.logins {
                    println!("  {:<10} {:<14} {}", l.datastore, l.consumer, l.login);
                }
            }
            if !report.certificates.is_empty() {
                println!("certificates:");
                for c in &report.certificates {
                    println!(
                        "  {:<26} {:<9} {:<8} {}{}{}",
                        c.host,
                        c.source,
                        match c.level {
                            crate::certs::Level::Ok => "ok",
                            crate::certs::Level::Info => "INFO",
                            crate::certs::Level::Critical => "CRITICAL",
                            crate::certs::Level::Error => "ERROR",
                        },
                        match c.days_left {
                            Some(d) => format!("{d} days left (until {}), ", c.not_after),
                            None => String::new(),
                        },
                        c.issuer,
                        c.note
                            .as_deref()
                            .map(|n| format!(" — {n}"))
                            .unwrap_or_default()
                    );
                }
            }
            if let Some(v) = &report.vault {
                let state = match &v.seal {
                    Some(s) if !s.initialized => "not initialised".to_string(),
                    Some(s) if s.sealed => format!("SEALED ({}/{} shares given)", s.progress, s.t),
                    Some(s) => format!("unsealed, {}", s.version),
                    None => "not answering".into(),
                };
                println!("vault: {state} at {}", v.address);
                match (&v.plan, &v.note) {
                    (Some(p), _) if p.is_empty(false) && p.blocked().next().is_none() => {
                        println!("  configuration as the spec wants it")
                    }
                    (Some(p), _) => {
                        let pending = p
                            .changes
                            .iter()
                            .filter(|c| c.action != sprocket_desired::vault::VaultAction::Blocked)
                            .count();
                        if pending > 0 {
                            println!("  configuration: {pending} change(s) pending (`sprocketctl plan` lists them, `up` applies them)");
                        }
                        for b in p.blocked() {
                            println!(
                                "  blocked: {} {}: {}",
                                b.kind,
                                b.name,
                                b.detail.as_deref().unwrap_or_default()
                            );
                        }
                    }
                    (None, Some(n)) => println!("  configuration {n}"),
                    (None, None) => {}
                }
            }
            for o in &report.orphans {
                println!(
                    "owned but not in the spec here: {o} (`sprocketctl up --prune` removes it)"
                );
            }
        }
    }
    let healthy = report
        .layers
        .iter()
        .flat_map(|l| &l.services)
        .all(|s| s.state == "healthy");
    // A sealed Vault is an outage for everything that reads it.
    let vault_ok = report
        .vault
        .as_ref()
        .and_then(|v| v.seal.as_ref())
        .is_none_or(|s| !s.initialized || !s.sealed);
    Ok(if healthy && vault_ok {
        exit::OK
    } else {
        exit::DEPLOY_FAILED
    })
}
