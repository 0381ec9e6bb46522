//! The agent's watch: every `alerts.interval` it checks what `check` checks from inside the
//! swarm — every service's running tasks (the Docker API, through the read-only socket proxy),
//! every route × host through the edge router's own ports, Vault's seal, the scheduled backups
//! (their runner's status port: the newest backup's age, a failed run) — judges the round like
//! `check` (roots and what they affect), and turns successive rounds into alerts
//! (`sprocket_check::alerts`): fired after `fail_after` failing rounds, resolved after
//! `resolve_after` good ones, one per root. Alerts go to the webhook (JSON, Slack or Discord
//! bodies) as they fire and resolve, and to Alertmanager every round while they fire. Each
//! round's findings are metrics on the agent's `/metrics`.
//!
//! What needs more than read access is `check`'s alone: its reach probes create tasks, which
//! the read-only proxy does not allow.

use crate::check::routes::{self, Edge};
use serde_json::Value;
use sprocket_check::alerts::{Event, Policy};
use sprocket_check::backups::RunnerStatus;
use sprocket_check::history::{self, History};
use sprocket_check::notify::{self, Origin};
use sprocket_check::status_page;
use sprocket_check::{Finding, Kind, Report, Severity};
use sprocket_desired::checks::Monitor;
use sprocket_spec::model::Alerts;
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

mod metrics;
mod page;
mod probes;

use metrics::level;
pub use metrics::{CheckLabels, WatchMetrics};
pub use page::{serve_status, Page};
pub use probes::http_base;
use probes::{backups, replicas, vault};

/// One round: every check, judged together; `false` when the services' tasks could not be
/// counted (the round is not recorded for uptime); what the backups' runner said. `seen`: the
/// services seen deployed before.
pub async fn round(
    m: &Monitor,
    api: Option<&str>,
    http: &reqwest::Client,
    seen: &BTreeSet<String>,
) -> (Report, bool, Option<RunnerStatus>) {
    let start = Instant::now();
    let edge = match &m.edge {
        Some(e) => tokio::net::lookup_host((e.as_str(), 443))
            .await
            .ok()
            .and_then(|mut a| a.next())
            .map(|https| Edge {
                http: format!("{e}:80"),
                https,
                acme: m.watch.routes.iter().any(|r| r.tls),
            }),
        None => None,
    };
    let routes = async {
        match (&edge, &m.edge) {
            (Some(edge), Some(name)) => routes::check(edge, name, &m.watch.routes).await,
            (None, Some(e)) => vec![Finding::new(
                Kind::Route,
                e,
                Severity::Critical,
                format!("the edge router `{e}` does not resolve from the agent"),
            )],
            _ => Vec::new(),
        }
    };
    let replicas = async {
        match api {
            Some(api) => replicas(m, api, http, seen).await,
            None => (Vec::new(), true),
        }
    };
    let ((mut findings, complete), routes, vault, (backup, runner)) =
        tokio::join!(replicas, routes, vault(m), backups(m, http));
    findings.extend(vault);
    findings.extend(routes);
    findings.extend(backup);
    let report = Report::new(
        &m.watch.namespace,
        &m.watch.environment,
        findings,
        &m.watch.uses,
        start.elapsed().as_secs_f64(),
    );
    (report, complete, runner)
}

/// The agent's state file in [`Alerts::STATE_DIR`]: `check --sla` reads it from its container.
pub const STATE_FILE: &str = "state.json";

/// Written whole, then renamed: a crash never leaves half a file.
fn save(path: &std::path::Path, h: &History) -> std::io::Result<()> {
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, serde_json::to_vec(h).expect("serialisable"))?;
    std::fs::rename(&tmp, path)
}

async fn post(http: &reqwest::Client, url: &str, body: &Value) -> Result<(), String> {
    let r = http
        .post(url)
        .json(body)
        .send()
        .await
        // Never the URL in the error: a webhook's path is often its credential.
        .map_err(|e| e.without_url().to_string())?;
    if r.status().is_success() {
        Ok(())
    } else {
        Err(format!("answered {}", r.status()))
    }
}

/// Posts `outbox`'s bodies in order until one fails: those sent leave it. Returns how many were
/// sent, and the failure that stopped it.
async fn deliver<F, Fut>(outbox: &mut Vec<Value>, post: F) -> (usize, Option<String>)
where
    F: Fn(Value) -> Fut,
    Fut: std::future::Future<Output = Result<(), String>>,
{
    let mut sent = 0;
    let mut err = None;
    for body in outbox.iter() {
        match post(body.clone()).await {
            Ok(()) => sent += 1,
            Err(e) => {
                err = Some(e);
                break;
            }
        }
    }
    outbox.drain(..sent);
    (sent, err)
}

/// Runs rounds forever (the agent aborts it on shutdown).
pub async fn watch(m: Monitor, api: Option<String>, metrics: WatchMetrics, page: Page) {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .no_proxy()
        .build()
        .expect("http client");
    let policy = Policy {
        fail_after: m.alerts.fail_after,
        resolve_after: m.alerts.resolve_after,
    };
    let origin = Origin {
        namespace: &m.watch.namespace,
        environment: &m.watch.environment,
    };
    // A webhook URL that is a credential comes as a file (`alerts.webhook_secret`): read once,
    // never printed (only its host is).
    let webhook = match (&m.alerts.webhook, &m.alerts.webhook_secret) {
        (Some(u), _) => Some(u.clone()),
        (None, Some(name)) => match std::fs::read_to_string(Alerts::WEBHOOK_FILE) {
            Ok(v) => Some(v.trim().to_string()),
            Err(e) => {
                eprintln!(
                    "agent: cannot read the webhook's URL (secret `{name}`) at {}: {e}; alerts go to Alertmanager only",
                    Alerts::WEBHOOK_FILE
                );
                None
            }
        },
        (None, None) => None,
    };
    // What earlier rounds (before a restart too) found: the alerts' state and the uptime.
    let state = std::path::Path::new(Alerts::STATE_DIR).join(STATE_FILE);
    let mut history: History = std::fs::read(&state)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default();
    let services: Vec<String> = m.watch.services.iter().map(|s| s.service.clone()).collect();
    let mut save_failed = false;
    let mut last_runner: Option<RunnerStatus> = None;
    let every = Duration::from_secs(m.alerts.interval_s.max(1));
    println!(
        "agent: watching {} service(s) and {} route × host every {}s; alerts to {}",
        m.watch.services.len(),
        m.watch.routes.len(),
        every.as_secs(),
        [
            webhook.as_deref().map(crate::agent::redacted_url),
            m.alerts
                .alertmanager
                .as_deref()
                .map(crate::agent::redacted_url)
        ]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(" and ")
    );
    loop {
        let started = Instant::now();
        let (report, complete, runner) = round(&m, api.as_deref(), &http, &history.seen).await;
        // The age grows while the runner is silent: from what it said last.
        if runner.is_some() {
            last_runner = runner;
        }
        if let Some(r) = &last_runner {
            metrics.backups(r, crate::clock::unix_now().as_secs() as i64);
        }
        // Deployed now (its tasks counted): from here on, its absence is a removal.
        for f in report.findings.iter().filter(|f| {
            f.kind == Kind::Replicas
                && !sprocket_check::report::not_deployed(f)
                && services.contains(&f.subject)
        }) {
            history.seen.insert(f.subject.clone());
        }
        metrics.rounds.inc();
        metrics.status.clear();
        for f in &report.findings {
            metrics
                .status
                .get_or_create(&CheckLabels {
                    kind: f.kind.name().replace(' ', "-"),
                    subject: f.subject.clone(),
                    target: f.target.clone().unwrap_or_default(),
                })
                .set(level(f.severity));
        }
        let now = crate::clock::unix_now().as_secs();
        let events = history.tracker.observe(&report, now, policy);
        if complete {
            history.record(&report, &services, now, every.as_secs());
        }
        metrics.firing.set(history.tracker.firing().len() as i64);
        page.set(status_page::status(
            &m.watch,
            Some((&report, &crate::certs::rfc3339(now as i64))),
            &history,
            now,
            every.as_secs(),
        ));
        for e in &events {
            let (what, a) = match e {
                Event::Firing(a) => ("firing", a),
                Event::Resolved { alert, .. } => ("resolved", alert),
            };
            println!(
                "agent: alert {what}: {} ({}){}",
                a.key,
                a.summary,
                if a.affects.is_empty() {
                    String::new()
                } else {
                    format!(", affects {}", a.affects.join(", "))
                }
            );
            if webhook.is_some() {
                history
                    .outbox
                    .push(notify::webhook(e, m.alerts.format, &origin));
            }
        }
        // Oldest first, in order; what the webhook refuses is tried again next round (and
        // after a restart: the outbox is part of the state).
        if let Some(url) = &webhook {
            let dropped = history.outbox.len().saturating_sub(history::OUTBOX);
            if dropped > 0 {
                history.outbox.drain(..dropped);
                eprintln!(
                    "agent: {dropped} undelivered notification(s) dropped (more than {} waiting)",
                    history::OUTBOX
                );
            }
            let waiting = history.outbox.len();
            let (sent, err) = deliver(&mut history.outbox, |body| {
                let http = &http;
                async move { post(http, url, &body).await }
            })
            .await;
            if let Some(err) = err {
                metrics.notifications_failed.inc();
                eprintln!(
                    "agent: the webhook at {} refused a notification: {err} ({} waiting, tried again next round)",
                    crate::agent::redacted_url(url),
                    waiting - sent
                );
            }
        }
        match save(&state, &history) {
            Ok(()) => save_failed = false,
            Err(e) if !save_failed => {
                save_failed = true;
                eprintln!("agent: cannot keep its state at {}: {e} (a restart will forget alerts and uptime)", state.display());
            }
            Err(_) => {}
        }
        if let Some(am) = &m.alerts.alertmanager {
            let resolved: Vec<_> = events
                .iter()
                .filter_map(|e| match e {
                    Event::Resolved { alert, at } => Some((alert.clone(), *at)),
                    _ => None,
                })
                .collect();
            let firing = history.tracker.firing();
            if !firing.is_empty() || !resolved.is_empty() {
                // Firing until three rounds from now: Alertmanager ends an alert nobody
                // repeats by then (whatever its `resolve_timeout`), so a dead agent's alerts end.
                let until = now + 3 * every.as_secs();
                let body = notify::alertmanager(&firing, &resolved, &origin, until, |t| {
                    crate::certs::rfc3339(t as i64)
                });
                let url = format!("{}/api/v2/alerts", am.trim_end_matches('/'));
                if let Err(err) = post(&http, &url, &body).await {
                    metrics.notifications_failed.inc();
                    eprintln!(
                        "agent: Alertmanager at {} refused the alerts: {err}",
                        crate::agent::redacted_url(am)
                    );
                }
            }
        }
        tokio::time::sleep(every.saturating_sub(started.elapsed())).await;
    }
}

/// A watch of one Redis, with a status page (the submodules' tests).
#[cfg(test)]
fn a_monitor() -> Monitor {
    Monitor {
        watch: sprocket_desired::checks::Watch {
            namespace: "ns".into(),
            environment: "prod".into(),
            services: vec![sprocket_desired::checks::ServiceCheck {
                name: "ns_redis".into(),
                service: "redis".into(),
                layer: "data".into(),
                desired: 1,
                errors_per_day: 50,
                slo: Some(99.9),
            }],
            routes: Vec::new(),
            uses: [("redis".to_string(), Vec::new())].into_iter().collect(),
        },
        alerts: Alerts::watch_only(),
        edge: None,
        vault: None,
        status_port: Some(0),
        backups: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_refused_notification_waits_in_order_for_the_next_round() {
        let mut outbox: Vec<Value> = (1..=3).map(|i| serde_json::json!({ "n": i })).collect();
        let up = std::sync::atomic::AtomicBool::new(false);
        let got = std::sync::Mutex::new(Vec::new());
        let post = |b: Value| {
            let ok = up.load(std::sync::atomic::Ordering::SeqCst) || b["n"] == 1;
            if ok {
                got.lock().unwrap().push(b["n"].as_i64().unwrap());
            }
            async move {
                if ok {
                    Ok(())
                } else {
                    Err("answered 503".to_string())
                }
            }
        };
        let (sent, err) = deliver(&mut outbox, post).await;
        assert_eq!((sent, err.as_deref()), (1, Some("answered 503")));
        assert_eq!(outbox.len(), 2, "2 and 3 wait, in order");
        up.store(true, std::sync::atomic::Ordering::SeqCst);
        let (sent, err) = deliver(&mut outbox, post).await;
        assert_eq!((sent, err), (2, None));
        assert!(outbox.is_empty());
        assert_eq!(*got.lock().unwrap(), [1, 2, 3]);
    }

    #[test]
    fn a_webhooks_path_is_never_shown() {
        assert_eq!(
            crate::agent::redacted_url("https://hooks.slack.com/services/T0/B0/XXXX"),
            "https://hooks.slack.com/…"
        );
        assert_eq!(
            crate::agent::redacted_url("https://user:pass@am.example.org:9093/api"),
            "https://am.example.org:9093/…"
        );
        assert_eq!(
            http_base("tcp://socket-proxy:2375"),
            "http://socket-proxy:2375"
        );
    }
}
