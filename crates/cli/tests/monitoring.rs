//! `check`, the agent's watch, its alerts, metrics, status page and SLA report, on the real
//! swarm with the example platform (real Traefik, OpenBao, Redis, RabbitMQ, PostgreSQL,
//! SeaweedFS), a real Prometheus and `promtool` (Debian's `prometheus`) and headless Chromium
//! (Debian's `chromium`):
//!
//! - `check` finds every route × host and every `uses` edge well and everything else isolated,
//!   and each of the demo's own datastore logins working with its own credentials; a login
//!   broken by hand is the demo's own incident, and `secrets rotate` repairs it;
//! - the agent's `/metrics` passes `promtool check metrics`, and a real Prometheus scrapes it;
//! - its status page (the example's `health` route of the agent), loaded in Chromium through
//!   Traefik, shows every service up;
//! - with Redis scaled to 0 by hand, `check` exits critical with Redis as the one root of the
//!   demo's failures; the agent sends exactly one alert, for Redis, naming the demo, to a
//!   webhook, and one resolution when Redis is back; the status page shows Redis failing and the
//!   demo down because of it;
//! - the SLA report counts the rounds Redis and the demo were down, and a restart of the agent
//!   keeps them;
//! - with the demo scaled to 0, each host of its route fails (502/503), and only those.

mod common;

use common::{docker_status, http_get, Scratch};
use serde_json::Value;
use std::time::Duration;

const NS: &str = "sprocket-mon";
const ENV: &str = "e2e-mon";
const HTTP_PORT: u16 = 18480;
/// The test's webhook receiver, on every address of this machine (the agent's task reaches it
/// as host.docker.internal).
const HOOK_PORT: u16 = 18490;
/// The test's Prometheus.
const PROMETHEUS_PORT: u16 = 18491;

/// A webhook receiver: every POST body it got, in order.
fn receiver() -> std::sync::Arc<std::sync::Mutex<Vec<Value>>> {
    use std::io::{BufRead, BufReader, Read, Write};
    let got = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let listener =
        std::net::TcpListener::bind(("0.0.0.0", HOOK_PORT)).expect("the hook port is free");
    let keep = got.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            let mut r = BufReader::new(conn);
            let mut len = 0;
            let mut line = String::new();
            while r.read_line(&mut line).is_ok_and(|n| n > 0) {
                if line == "\r\n" {
                    break;
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    len = v.trim().parse().unwrap_or(0);
                }
                line.clear();
            }
            let mut body = vec![0; len];
            if r.read_exact(&mut body).is_ok() {
                if let Ok(v) = serde_json::from_slice(&body) {
                    keep.lock().unwrap().push(v);
                }
            }
            let _ = r
                .get_mut()
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
        }
    });
    got
}

/// The demo's self-check through Traefik.
fn demo_redis_ok() -> bool {
    let (status, body) = http_get(HTTP_PORT, "demo.localhost", "/");
    status == 200
        && serde_json::from_str::<Value>(&body).is_ok_and(|v| {
            v["checks"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|c| c["name"] == "redis" && c["ok"] == true)
        })
}

/// The status page as headless Chromium renders it (its DOM after load), through Traefik:
/// `health.localhost` is loopback to Chromium, as every `*.localhost` name.
fn status_page() -> String {
    let profile = tempfile::tempdir().unwrap();
    let out = std::process::Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            &format!("--user-data-dir={}", profile.path().display()),
            "--dump-dom",
            &format!("http://health.localhost:{HTTP_PORT}/"),
        ])
        .output()
        .expect("Chromium (Debian's `chromium`, installed by scripts/test) runs");
    assert!(
        out.status.success(),
        "chromium: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Waits (up to `secs`) until the status page satisfies `ok`; the last page either way.
fn status_page_until(secs: u64, ok: impl Fn(&str) -> bool) -> String {
    let mut page = String::new();
    for _ in 0..secs {
        page = status_page();
        if ok(&page) {
            break;
        }
        std::thread::sleep(Duration::from_secs(1));
    }
    page
}

fn get(url: &str) -> (u16, String) {
    let (_, out) = common::run_status("curl", &["-s", "-m", "5", "-w", "\n%{http_code}", url]);
    let (body, code) = out.rsplit_once('\n').unwrap_or(("", &out));
    (code.trim().parse().unwrap_or(0), body.to_string())
}

/// A real Prometheus scraping the agent every second: it stops (and its data goes) when
/// dropped.
struct Prometheus {
    child: std::process::Child,
    _data: tempfile::TempDir,
}

impl Prometheus {
    fn start(target: &str) -> Prometheus {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("prometheus.yml");
        std::fs::write(
            &config,
            format!("global: {{ scrape_interval: 1s }}\nscrape_configs:\n  - job_name: sprocket-agent\n    static_configs: [{{ targets: [\"{target}\"] }}]\n"),
        )
        .unwrap();
        let (ok, out) =
            common::run_status("promtool", &["check", "config", config.to_str().unwrap()]);
        assert!(ok, "{out}");
        let child = std::process::Command::new("prometheus")
            .args([
                &format!("--config.file={}", config.display()),
                &format!("--storage.tsdb.path={}", dir.path().join("data").display()),
                &format!("--web.listen-address=127.0.0.1:{PROMETHEUS_PORT}"),
            ])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("Prometheus (Debian's `prometheus`, installed by scripts/test) starts");
        Prometheus { child, _data: dir }
    }

    /// The value of an instant query's first sample, when there is one.
    fn query(&self, q: &str) -> Option<f64> {
        let (code, body) = get(&format!(
            "http://127.0.0.1:{PROMETHEUS_PORT}/api/v1/query?query={q}"
        ));
        if code != 200 {
            return None;
        }
        let v: Value = serde_json::from_str(&body).ok()?;
        v["data"]["result"][0]["value"][1].as_str()?.parse().ok()
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn check_alerts_metrics_and_status_page_follow_a_datastore_outage() {
    common::require_swarm();
    let hooks = receiver();
    let s = Scratch::new(
        "mon",
        ENV,
        &format!("\n  {ENV}:\n    extends: offline\n    namespace: {NS}\n    http_port: {HTTP_PORT}\n    https_port: 18843\n    secrets_from: dotenv:secrets.env\n    disable: {{ n8n: \"not under test\" }}\n    alerts: {{ webhook: \"http://host.docker.internal:{HOOK_PORT}/hook\", fail_after: 2, resolve_after: 2, interval: 1s }}\n"),
    );
    let _ = s.ctl(&["-q", "down", "--volumes"]);
    // The PostgreSQL server outlives deploys (it is outside the swarm): the demo's database
    // and role of an earlier run go first.
    common::psql(
        "postgres",
        &format!("DROP DATABASE IF EXISTS \"{NS}_demo\""),
    );
    common::psql("postgres", &format!("DROP ROLE IF EXISTS \"{NS}_demo\""));
    assert_eq!(s.ctl(&["-q", "vault", "keygen"]).code, 0);
    assert_eq!(s.ctl(&["-q", "secrets", "init-dotenv"]).code, 0);
    let up = s.ctl(&["-o", "json", "up", "--timeout", "180"]);
    assert_eq!(up.code, 0, "{}{}", up.stdout, up.stderr);

    // 1. `check`: every route × host answers, every `uses` edge is reached from the consumer's
    //    own networks and everything else is isolated.
    let checked = s.ctl(&["-o", "json", "check"]);
    let code = checked.code;
    let checked = checked.json();
    // A loaded machine (2 cores, a test suite) may be over the runbook's CPU band: that is
    // this node's finding, not the platform's.
    let platform_critical: Vec<&Value> = checked["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["severity"] == "critical" && f["kind"] != "resources")
        .collect();
    assert!(
        [0, 8, 9].contains(&code) && platform_critical.is_empty(),
        "{platform_critical:?}"
    );
    let findings = checked["findings"].as_array().unwrap().clone();
    let of = |kind: &str| -> Vec<Value> {
        findings
            .iter()
            .filter(|f| f["kind"] == kind)
            .cloned()
            .collect()
    };
    for kind in [
        "replicas",
        "route",
        "unknown-host",
        "reach",
        "isolation",
        "login",
        "vault",
    ] {
        let all = of(kind);
        assert!(!all.is_empty(), "no {kind} finding: {checked}");
        // The demo's `/` checks its four datastores: on a loaded machine (2 cores, a test
        // suite) it may answer over the runbook's 800 ms, a warning about its speed.
        let slow = |f: &Value| {
            kind == "route"
                && f["severity"] == "warning"
                && f["detail"].as_str().unwrap().contains("(over 800 ms)")
        };
        assert!(
            all.iter().all(|f| f["severity"] == "ok" || slow(f)),
            "{kind}: {all:?}"
        );
    }
    for kind in ["errors", "resources", "docker-disk"] {
        assert!(!of(kind).is_empty(), "no {kind} finding: {checked}");
    }
    assert_eq!(
        of("errors").len(),
        of("replicas").len(),
        "one error count per service"
    );
    let routes: Vec<String> = of("route")
        .iter()
        .map(|f| f["target"].as_str().unwrap().to_string())
        .collect();
    for host in [
        "demo.localhost",
        "192.168.4.39",
        "100.110.185.84",
        "health.localhost",
    ] {
        assert!(routes.contains(&host.to_string()), "{host} in {routes:?}");
    }
    let reached: Vec<String> = of("reach")
        .iter()
        .filter(|f| f["subject"] == "demo")
        .map(|f| f["target"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(reached, ["redis", "rabbitmq", "vault", "postgres", "s3"]);
    assert!(of("isolation")
        .iter()
        .any(|f| f["subject"] == "demo" && f["target"] == "socket-proxy"));
    let (_, left) = docker_status(&["service", "ls", "--format", "{{.Name}}"]);
    assert!(!left.contains("_check-"), "probe tasks are removed: {left}");
    // Each of the demo's own logins, tried with its own credentials from its own networks.
    let mut logins: Vec<(String, String)> = of("login")
        .iter()
        .filter(|f| f["subject"] == "demo")
        .map(|f| {
            (
                f["target"].as_str().unwrap().to_string(),
                f["detail"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    logins.sort();
    assert_eq!(
        logins,
        [
            (
                "postgres".to_string(),
                format!("connected as {NS}_demo to {NS}_demo over TLS")
            ),
            (
                "rabbitmq".to_string(),
                "logged in as demo on vhost demo".to_string()
            ),
            (
                "redis".to_string(),
                "AUTH as demo, PING answered".to_string()
            ),
            ("s3".to_string(), "its key pair is accepted".to_string()),
        ]
    );

    // 1a. A login broken by hand (its password changed in RabbitMQ, which nothing else
    //     notices: RabbitMQ is up, the demo reconnects only when it must) is the demo's own
    //     incident; `secrets rotate` of that password repairs it.
    let rabbit = common::container_of(NS, "rabbitmq");
    let (ok, out) = docker_status(&[
        "exec",
        &rabbit,
        "rabbitmqctl",
        "-q",
        "change_password",
        "demo",
        "not-the-demos",
    ]);
    assert!(ok, "{out}");
    let rabbitmq_login = |report: &Value| -> Value {
        report["findings"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["kind"] == "login" && f["target"] == "rabbitmq")
            .cloned()
            .unwrap_or_else(|| panic!("no login finding for rabbitmq: {report}"))
    };
    let broken = s.ctl(&["-o", "json", "check"]);
    assert_eq!(broken.code, 9, "{}", broken.stdout);
    let broken = broken.json();
    let login = rabbitmq_login(&broken);
    assert_eq!(login["severity"], "critical", "{login}");
    assert!(
        login["detail"]
            .as_str()
            .unwrap()
            .starts_with("its own login `demo` fails: login refused: 403 ACCESS_REFUSED"),
        "{login}"
    );
    assert!(login["explained_by"].is_null(), "{login}");
    assert!(
        broken["incidents"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["root"] == "demo"),
        "{broken}"
    );
    let rot = s.ctl(&["-q", "secrets", "rotate", "demo-rabbitmq-password"]);
    assert_eq!(rot.code, 0, "{}{}", rot.stdout, rot.stderr);
    let login = rabbitmq_login(&s.ctl(&["-o", "json", "check"]).json());
    assert_eq!(login["severity"], "ok", "{login}");

    // 2. The agent's metrics: valid for promtool, scraped by a real Prometheus.
    let agent = format!("{}:9090", common::agent_address(NS));
    let (code, metrics) = get(&format!("http://{agent}/metrics"));
    assert_eq!(code, 200, "{metrics}");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("metrics.txt");
    std::fs::write(&file, &metrics).unwrap();
    let (ok, lint) = common::run_status(
        "bash",
        &[
            "-c",
            &format!("promtool check metrics < {}", file.display()),
        ],
    );
    assert!(ok && lint.is_empty(), "promtool check metrics: {lint}");
    assert!(
        metrics.contains(
            "sprocket_agent_check_status{kind=\"replicas\",subject=\"redis\",target=\"\"} 0"
        ),
        "{metrics}"
    );
    let prometheus = Prometheus::start(&agent);
    let mut rounds = None;
    for _ in 0..60 {
        rounds = prometheus
            .query("sprocket_agent_check_rounds_total")
            .filter(|r| *r > 0.0);
        if rounds.is_some() && prometheus.query("up") == Some(1.0) {
            break;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    assert!(rounds.is_some(), "Prometheus scraped the agent's rounds");
    assert_eq!(
        prometheus.query(
            "sprocket_agent_check_status%7Bkind%3D%22replicas%22%2Csubject%3D%22redis%22%7D"
        ),
        Some(0.0),
        "Redis's replicas check as Prometheus sees it"
    );
    drop(prometheus);

    // 3. The status page, in a real browser through Traefik: everything up.
    // (Not necessarily "operational": a loaded machine may answer a route slower than the
    // runbook's 800 ms, a warning.)
    let healthy = |p: &str| {
        p.contains("data-overall=")
            && !p.contains("data-overall=\"outage\"")
            && !p.contains("data-overall=\"unknown\"")
    };
    let page = status_page_until(30, healthy);
    assert!(healthy(&page), "{page}");
    for svc in ["redis", "rabbitmq", "vault", "demo"] {
        // (degraded: serving, slower than 800 ms on a loaded machine)
        assert!(
            page.contains(&format!("data-service=\"{svc}\" data-state=\"up\""))
                || page.contains(&format!("data-service=\"{svc}\" data-state=\"degraded\"")),
            "{svc} up: {page}"
        );
    }
    assert!(page.contains("No incidents."), "{page}");

    // 4. Redis scaled to 0 by hand: `check` exits critical with one root, Redis, that explains
    //    the demo's failures; the agent alerts once; the status page shows it.
    hooks.lock().unwrap().clear();
    let (ok, out) = docker_status(&["service", "scale", "-d", &format!("{NS}_redis=0")]);
    assert!(ok, "{out}");
    let mut down = Value::Null;
    let until = std::time::Instant::now() + Duration::from_secs(60);
    while std::time::Instant::now() < until {
        let c = s.ctl(&["-o", "json", "check"]);
        if c.code == 9 && !c.json()["incidents"].as_array().unwrap().is_empty() {
            down = c.json();
            break;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    assert_eq!(
        down["incidents"],
        serde_json::json!([{ "root": "redis", "affects": ["demo"], "explained": ["demo"] }]),
        "{down}"
    );
    for f in down["findings"].as_array().unwrap() {
        if f["severity"] == "critical" && f["subject"] == "demo" {
            assert_eq!(f["explained_by"], "redis", "{f}");
        }
    }
    let page = status_page_until(30, |p| p.contains("data-root=\"redis\""));
    assert!(page.contains("data-overall=\"outage\""), "{page}");
    assert!(
        page.contains("<b>redis</b> is failing (replicas: 0/1 running); it affects demo"),
        "{page}"
    );
    assert!(
        page.contains("data-service=\"redis\" data-state=\"down\""),
        "{page}"
    );
    assert!(
        page.contains("data-service=\"demo\" data-state=\"down\"")
            && page.contains("down because redis is"),
        "{page}"
    );
    // Exactly one alert, for Redis, naming the demo it affects; none for the demo.
    let firing = |hooks: &[Value]| -> Vec<Value> {
        hooks
            .iter()
            .filter(|h| h["status"] == "firing")
            .cloned()
            .collect()
    };
    for _ in 0..60 {
        if !firing(&hooks.lock().unwrap()).is_empty() {
            break;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    std::thread::sleep(Duration::from_secs(3));
    let fired = firing(&hooks.lock().unwrap());
    assert_eq!(fired.len(), 1, "{fired:?}");
    assert_eq!(fired[0]["key"], "service:redis", "{fired:?}");
    assert_eq!(fired[0]["root"], "redis");
    assert_eq!(fired[0]["affects"], serde_json::json!(["demo"]));
    assert_eq!(fired[0]["severity"], "critical");
    assert_eq!(fired[0]["namespace"], NS);
    let (ok, out) = docker_status(&["service", "scale", "-d", &format!("{NS}_redis=1")]);
    assert!(ok, "{out}");
    for _ in 0..60 {
        if demo_redis_ok() {
            break;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    assert!(demo_redis_ok(), "the demo reaches Redis again");
    let resolved = || -> Vec<Value> {
        hooks
            .lock()
            .unwrap()
            .iter()
            .filter(|h| h["status"] == "resolved")
            .cloned()
            .collect()
    };
    for _ in 0..60 {
        if !resolved().is_empty() {
            break;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    let r = resolved();
    assert_eq!(r.len(), 1, "{r:?}");
    assert_eq!(r[0]["key"], "service:redis");
    // Until Redis's resolution nothing else fired (afterwards the demo may take a moment to
    // reconnect, which is its own business).
    let all = hooks.lock().unwrap().clone();
    let upto = all
        .iter()
        .position(|h| h["status"] == "resolved" && h["key"] == "service:redis")
        .unwrap();
    assert_eq!(
        firing(&all[..upto]).len(),
        1,
        "no other alert fired: {all:?}"
    );
    let (_, metrics) = get(&format!("http://{agent}/metrics"));
    assert!(
        metrics.contains("sprocket_agent_alerts_firing 0"),
        "{metrics}"
    );

    // 5. The SLA report, from the agent's rounds: Redis and the demo (its route failed with
    //    it) were down for some rounds (seconds: within their 99.9 % budget). A restart of the
    //    agent keeps the rounds.
    let sla = |when: &str| {
        let r = s.ctl(&["-o", "json", "check", "--sla"]);
        assert!([0, 9].contains(&r.code), "{when}: {}{}", r.stdout, r.stderr);
        (r.code, r.json())
    };
    let (code, before) = sla("after Redis came back");
    assert_eq!(
        code, 0,
        "seconds down, within a 99.9 % budget of 43 min: {before}"
    );
    let line = |r: &Value, svc: &str| -> Value {
        r["services"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["service"] == svc)
            .cloned()
            .unwrap()
    };
    for down in ["redis", "demo"] {
        let l = line(&before, down);
        assert!(l["last_7_days"]["percent"].as_f64().unwrap() < 100.0, "{l}");
        assert!(l["used_minutes"].as_f64().unwrap() > 0.0, "{l}");
        assert_eq!(l["within"], true, "{l}");
    }
    assert!(
        line(&before, "rabbitmq")["last_7_days"]["rounds"]
            .as_u64()
            .unwrap()
            > 0
    );
    let rounds = before["rounds"].as_u64().unwrap();
    assert!(rounds >= 5, "{before}");
    let (ok, out) = docker_status(&[
        "service",
        "update",
        "--force",
        "--quiet",
        &format!("{NS}_vault-agent"),
    ]);
    assert!(ok, "{out}");
    let (_, after) = sla("after the agent restarted");
    assert!(
        after["rounds"].as_u64().unwrap() >= rounds,
        "kept across the restart: {after}"
    );
    // The status page is back with the agent, with Redis's uptime under 100 %.
    let page = status_page_until(30, healthy);
    assert!(healthy(&page), "{page}");
    assert!(
        page.contains("data-service=\"redis\" data-state=\"up\""),
        "{page}"
    );

    // 6. A route whose service is down: each host of that route fails, and only those. With a
    //    VIP the edge answers 502/503; offline (dnsrr, no IPVS) Traefik drops the route of a
    //    service with no task, which `check` says as such.
    let (ok, out) = docker_status(&["service", "scale", "-d", &format!("{NS}_demo=0")]);
    assert!(ok, "{out}");
    let mut routes = Vec::new();
    // Until the demo's task has stopped and Traefik dropped it: 90 s at most, for a machine
    // loaded with another test's stack beside this one.
    let until = std::time::Instant::now() + Duration::from_secs(90);
    while std::time::Instant::now() < until {
        let c = s.ctl(&["-o", "json", "check"]).json();
        routes = c["findings"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| f["kind"] == "route")
            .cloned()
            .collect();
        if routes
            .iter()
            .any(|f| f["subject"] == "demo" && f["severity"] == "critical")
        {
            break;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    for f in &routes {
        if f["subject"] == "demo" {
            assert_eq!(f["severity"], "critical", "{f}");
            let detail = f["detail"].as_str().unwrap();
            assert!(
                detail.starts_with("502")
                    || detail.starts_with("503")
                    || detail == sprocket_check::report::DROPPED_ROUTE,
                "{f}"
            );
        } else {
            // (a warning at most: slow on a loaded machine)
            assert_ne!(f["severity"], "critical", "only the demo's hosts fail: {f}");
        }
    }
    assert_eq!(
        routes.iter().filter(|f| f["subject"] == "demo").count(),
        3,
        "{routes:?}"
    );
    let (ok, out) = docker_status(&["service", "scale", "-d", &format!("{NS}_demo=1")]);
    assert!(ok, "{out}");
}
