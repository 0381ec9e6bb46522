//! What a round looks at besides the routes: the services' tasks through the read-only Docker
//! API, Vault's seal, the scheduled backups' runner.

use serde_json::Value;
use sprocket_check::backups::RunnerStatus;
use sprocket_check::{judge, Finding, Kind, Severity};
use sprocket_desired::checks::Monitor;
use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

/// `tcp://host:port` (the agent's Docker API setting) as an HTTP base URL.
pub fn http_base(api: &str) -> String {
    format!(
        "http://{}",
        api.trim_start_matches("tcp://")
            .trim_start_matches("http://")
            .trim_end_matches('/')
    )
}

/// Running tasks against those wanted, per service, from the Docker API; `false` when the API
/// did not answer (nothing is known of the services this round). A service in `seen` that is
/// gone was removed (critical), not "not deployed yet".
pub(super) async fn replicas(
    m: &Monitor,
    api: &str,
    http: &reqwest::Client,
    seen: &BTreeSet<String>,
) -> (Vec<Finding>, bool) {
    let base = http_base(api);
    let get = |path: String| {
        let http = http.clone();
        async move {
            let r = http
                .get(path)
                .send()
                .await
                .map_err(|e| e.without_url().to_string())?;
            if !r.status().is_success() {
                return Err(format!("the Docker API answered {}", r.status()));
            }
            r.json::<Value>()
                .await
                .map_err(|e| e.without_url().to_string())
        }
    };
    let filter = |k: &str, v: String| {
        sprocket_docker::filters_query(&HashMap::from([(k.to_string(), vec![v])]))
    };
    let services = get(format!(
        "{base}/services?filters={}",
        filter(
            "label",
            format!("io.sprocket.namespace={}", m.watch.namespace)
        )
    ))
    .await;
    let tasks = get(format!(
        "{base}/tasks?filters={}",
        filter("desired-state", "running".into())
    ))
    .await;
    let (services, tasks) = match (services, tasks) {
        (Ok(s), Ok(t)) => (s, t),
        (Err(e), _) | (_, Err(e)) => {
            // One finding, about the proxy (a service the edge router and the agent use): not
            // one per service, which would make each of them a root of its own.
            let proxy = api
                .trim_start_matches("tcp://")
                .trim_start_matches("http://")
                .split(':')
                .next()
                .unwrap_or(api);
            return (
                vec![Finding::new(
                    Kind::Replicas,
                    proxy,
                    Severity::Critical,
                    format!("the Docker API at {api} does not answer: {e}; no service's tasks could be counted"),
                )],
                false,
            );
        }
    };
    let ids: HashMap<&str, &str> = services
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| Some((s["Spec"]["Name"].as_str()?, s["ID"].as_str()?)))
        .collect();
    let mut running: HashMap<&str, usize> = HashMap::new();
    for t in tasks.as_array().into_iter().flatten() {
        if t["Status"]["State"] == "running" {
            if let Some(id) = t["ServiceID"].as_str() {
                *running.entry(id).or_default() += 1;
            }
        }
    }
    let found = m
        .watch
        .services
        .iter()
        .map(|s| match ids.get(s.name.as_str()) {
            None if seen.contains(&s.service) => Finding::new(
                Kind::Replicas,
                &s.service,
                Severity::Critical,
                format!(
                    "removed: it ran here before and the swarm has no service {} now (`sprocketctl up` recreates it)",
                    s.name
                ),
            ),
            // Not deployed yet (the agent runs from the first layer on, during the first
            // `up`): reported, not alerted; one deployed with no task running is.
            None => Finding::new(
                Kind::Replicas,
                &s.service,
                Severity::Info,
                format!("{} (0/{})", sprocket_check::report::NOT_DEPLOYED, s.desired),
            ),
            Some(id) => {
                let n = running.get(id).copied().unwrap_or(0);
                Finding::new(
                    Kind::Replicas,
                    &s.service,
                    judge::replicas(n, s.desired),
                    format!("{n}/{} running", s.desired),
                )
            }
        })
        .collect();
    (found, true)
}

/// The scheduled backups as their runner says (`None`: no runner to watch here), and what it
/// said.
pub(super) async fn backups(
    m: &Monitor,
    http: &reqwest::Client,
) -> (Option<Finding>, Option<RunnerStatus>) {
    let Some(url) = &m.backups else {
        return (None, None);
    };
    let finding = |sev, detail: String| {
        Finding::new(Kind::Backup, Kind::Backup.name(), sev, detail).target("scheduled")
    };
    let said = async {
        let r = http
            .get(url)
            .timeout(Duration::from_secs(5))
            .send()
            .await
            .map_err(|e| e.without_url().to_string())?;
        if !r.status().is_success() {
            return Err(format!("it answered {}", r.status()));
        }
        r.json::<RunnerStatus>()
            .await
            .map_err(|e| format!("its answer is not its status: {}", e.without_url()))
    };
    match said.await {
        Ok(s) => {
            let now = crate::clock::unix_now().as_secs() as i64;
            let (sev, text) = sprocket_check::backups::judge(&s, now);
            (Some(finding(sev, text)), Some(s))
        }
        Err(e) => (
            Some(finding(
                Severity::Warning,
                format!("the scheduled backups' runner does not answer at {url} ({e}): `sprocketctl up` makes it again"),
            )),
            None,
        ),
    }
}

pub(super) async fn vault(m: &Monitor) -> Option<Finding> {
    let (service, port) = m.vault.as_ref()?;
    let c = sprocket_vault::VaultClient::new(&format!("http://{service}:{port}"));
    Some(crate::check::vault_finding(service, &c).await)
}

#[cfg(test)]
mod tests {
    use super::super::{a_monitor, WatchMetrics};
    use super::*;
    use prometheus_client::registry::Registry;

    #[tokio::test]
    async fn the_runners_word_is_judged_into_a_finding_and_gauges_and_its_silence_warns() {
        use sprocket_check::backups::LastRun;
        let now = crate::clock::unix_now().as_secs() as i64;
        let said = RunnerStatus {
            began: now - 7200,
            at_minute: 120,
            newest_complete: Some(now - 600),
            next_at: Some(now + 3600),
            last: Some(LastRun {
                id: "x".into(),
                started: now - 600,
                ended: now - 590,
                ok: true,
                failed: None,
                error: None,
            }),
            ..Default::default()
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let served = said.clone();
        tokio::spawn(async move {
            let app = axum::Router::new().route(
                "/",
                axum::routing::get(move || {
                    let s = served.clone();
                    async move { axum::Json(s) }
                }),
            );
            axum::serve(listener, app).await.unwrap();
        });
        let mut m = a_monitor();
        m.backups = Some(format!("http://{addr}/"));
        let http = reqwest::Client::builder().no_proxy().build().unwrap();
        let (f, got) = backups(&m, &http).await;
        let f = f.unwrap();
        assert_eq!(
            (f.kind, f.severity),
            (Kind::Backup, Severity::Ok),
            "{}",
            f.detail
        );
        assert!(f.detail.contains("10 min old"), "{}", f.detail);
        assert_eq!(got.as_ref(), Some(&said));
        let mut r = Registry::default();
        let metrics = WatchMetrics::register(&mut r);
        metrics.backups(&said, now);
        assert_eq!(metrics.backup_age.get(), 600);
        assert_eq!(metrics.backup_last_ok.get(), 1);
        // Nobody answers: a warning that says where and what to do; the gauges keep their
        // last word.
        m.backups = Some("http://127.0.0.1:1/".into());
        let (f, got) = backups(&m, &http).await;
        let f = f.unwrap();
        assert_eq!(f.severity, Severity::Warning);
        assert!(
            f.detail.contains("does not answer at http://127.0.0.1:1/"),
            "{}",
            f.detail
        );
        assert!(f.detail.contains("`sprocketctl up`"), "{}", f.detail);
        assert!(got.is_none());
        // No runner here: nothing said.
        m.backups = None;
        assert!(backups(&m, &http).await.0.is_none());
    }
}
