//! The status page the agent serves on a route of the environment: the last round's verdict,
//! its incidents (a root and what it takes down with it), every service by layer with its
//! uptime over 7 and 30 days against its target, every route × host with its answer. One HTML
//! document, rendered on the server (it shows without JavaScript), refreshed by the browser
//! every round. Pure: the agent gives it the round, the history and the time.
//!
//! It says what the platform's users may know — names, states, latencies — never a finding's
//! raw detail beyond what `check` prints (which holds no secret: see `logs::redact`).

use crate::history::{self, History};
use crate::report::{Kind, Report};
use crate::Severity;
use serde::Serialize;
use sprocket_desired::checks::Watch;

/// A service's line on the page.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ServiceStatus {
    pub service: String,
    pub layer: String,
    /// `up`, `degraded` (a warning: slow, a replica missing), `down`, `not deployed`.
    pub state: &'static str,
    /// Why it is down (the finding that says so), and the root it is down because of.
    pub why: Option<String>,
    pub because_of: Option<String>,
    pub uptime_7d: Option<f64>,
    pub uptime_30d: Option<f64>,
    pub slo: Option<f64>,
}

/// A route × host's line on the page.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RouteStatus {
    pub service: String,
    pub host: String,
    pub path: String,
    pub severity: Severity,
    pub detail: String,
    pub ms: Option<u64>,
}

/// What the page shows, also served as JSON (`/status.json`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Status {
    pub namespace: String,
    pub environment: String,
    /// `operational`, `degraded` (something warns or a service is down), `outage` (a critical
    /// finding), `unknown` (no round yet).
    pub overall: &'static str,
    /// When the round ran (RFC 3339), and how often rounds run.
    pub checked_at: Option<String>,
    pub interval_s: u64,
    pub incidents: Vec<crate::roots::Incident>,
    pub services: Vec<ServiceStatus>,
    pub routes: Vec<RouteStatus>,
}

/// The page's content from the last round (`None` before the first one).
pub fn status(
    w: &Watch,
    last: Option<(&Report, &str)>,
    h: &History,
    now: u64,
    interval_s: u64,
) -> Status {
    let services: Vec<ServiceStatus> = w
        .services
        .iter()
        .map(|s| {
            let (state, why, because_of) = match last {
                None => ("unknown", None, None),
                Some((r, _)) => service_state(r, &s.service),
            };
            ServiceStatus {
                service: s.service.clone(),
                layer: s.layer.clone(),
                state,
                why,
                because_of,
                uptime_7d: h.uptime(&s.service, 7, now).map(|u| u.percent),
                uptime_30d: h.uptime(&s.service, 30, now).map(|u| u.percent),
                slo: s.slo,
            }
        })
        .collect();
    let routes = match last {
        None => Vec::new(),
        Some((r, _)) => r
            .findings
            .iter()
            .filter(|f| f.kind == Kind::Route)
            .filter_map(|f| {
                // A route finding's target is `host` or `host/path`.
                let target = f.target.as_deref()?;
                let (host, path) = match target.find('/') {
                    Some(i) => (target[..i].to_string(), target[i..].to_string()),
                    None => (target.to_string(), "/".to_string()),
                };
                Some(RouteStatus {
                    service: f.subject.clone(),
                    host,
                    path,
                    severity: f.severity,
                    detail: f.detail.clone(),
                    ms: f.ms,
                })
            })
            .collect(),
    };
    let overall = match last {
        None => "unknown",
        Some((r, _)) => match r.worst {
            Severity::Critical => "outage",
            Severity::Warning => "degraded",
            _ => "operational",
        },
    };
    Status {
        namespace: w.namespace.clone(),
        environment: w.environment.clone(),
        overall,
        checked_at: last.map(|(_, at)| at.to_string()),
        interval_s,
        // An outage's incidents: those whose root is down (a slow root is degraded, shown in
        // its line).
        incidents: last
            .map(|(r, _)| r.incidents.clone())
            .unwrap_or_default()
            .into_iter()
            .filter(|i| {
                services
                    .iter()
                    .any(|x| x.service == i.root && x.state == "down")
            })
            .collect(),
        services,
        routes,
    }
}

fn service_state(r: &Report, service: &str) -> (&'static str, Option<String>, Option<String>) {
    let mine: Vec<_> = r.findings.iter().filter(|f| f.subject == service).collect();
    if mine.iter().any(|f| crate::report::not_deployed(f)) {
        return ("not deployed", None, None);
    }
    let failing = mine
        .iter()
        .filter(|f| f.severity >= Severity::Warning && f.kind.fails_its_service())
        .max_by_key(|f| f.severity);
    let Some(f) = failing else {
        return ("up", None, None);
    };
    let why = Some(match &f.target {
        Some(t) => format!("{} {t}: {}", f.kind.name(), f.detail),
        None => format!("{}: {}", f.kind.name(), f.detail),
    });
    if history::is_up(r, service) {
        // Slow, or short of a replica: serving.
        return ("degraded", why, None);
    }
    ("down", why, f.explained_by.clone())
}

/// Text for HTML: `&`, `<`, `>`, `"` and `'` escaped.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn percent(p: Option<f64>) -> String {
    match p {
        Some(p) if p >= 99.995 => "100 %".into(),
        Some(p) => format!("{p:.2} %"),
        None => "—".into(),
    }
}

const STYLE: &str = "body{font:15px/1.45 system-ui,sans-serif;margin:2rem auto;max-width:60rem;padding:0 1rem;color:#1b1f24}\
h1{font-size:1.5rem;padding:.8rem 1rem;border-radius:.4rem;color:#fff}\
.operational{background:#1a7f37}.degraded{background:#9a6700}.outage{background:#cf222e}.unknown{background:#57606a}\
table{border-collapse:collapse;width:100%;margin:.5rem 0 1.5rem}td,th{text-align:left;padding:.3rem .5rem;border-bottom:1px solid #d0d7de}\
.up,.ok{color:#1a7f37}.down,.critical{color:#cf222e}.warning{color:#9a6700}.muted,.info{color:#57606a}\
li{margin:.3rem 0}";

/// The page. `refresh_s`: how often the browser reloads it (the round's interval).
pub fn render(s: &Status) -> String {
    let e = escape;
    let headline = match s.overall {
        "operational" => "All systems operational",
        "degraded" => "Degraded",
        "outage" => "Outage",
        _ => "Not checked yet",
    };
    let mut h = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
<meta http-equiv=\"refresh\" content=\"{refresh}\">\
<title>{env} — {headline}</title><style>{STYLE}</style></head><body>\
<h1 id=\"overall\" class=\"{overall}\" data-overall=\"{overall}\">{headline}</h1>\
<p class=\"muted\">Environment <b>{env}</b> (namespace {ns}) · {checked} · checked every {every} s</p>",
        refresh = s.interval_s.clamp(5, 300),
        env = e(&s.environment),
        ns = e(&s.namespace),
        overall = s.overall,
        checked = match &s.checked_at {
            Some(t) => format!("last checked <time id=\"checked\">{}</time>", e(t)),
            None => "the first check runs within a round".into(),
        },
        every = s.interval_s,
    );
    h.push_str("<section id=\"incidents\"><h2>Incidents</h2>");
    if s.incidents.is_empty() {
        h.push_str("<p class=\"muted\">No incidents.</p>");
    } else {
        h.push_str("<ul>");
        for i in &s.incidents {
            let why = s
                .services
                .iter()
                .find(|x| x.service == i.root)
                .and_then(|x| x.why.clone())
                .map(|w| format!(" ({})", e(&w)))
                .unwrap_or_default();
            h.push_str(&format!(
                "<li class=\"incident\" data-root=\"{root}\"><b>{root}</b> is failing{why}{affects}</li>",
                root = e(&i.root),
                affects = if i.affects.is_empty() {
                    String::new()
                } else {
                    format!("; it affects {}", e(&i.affects.join(", ")))
                },
            ));
        }
        h.push_str("</ul>");
    }
    h.push_str("</section><section id=\"services\"><h2>Services</h2><table><thead><tr><th>Service</th><th>Layer</th><th>State</th><th>Uptime 7 days</th><th>30 days</th><th>Target</th></tr></thead><tbody>");
    for x in &s.services {
        let class = match x.state {
            "up" => "up",
            "down" => "down",
            "degraded" => "warning",
            _ => "muted",
        };
        let state = match (&x.because_of, &x.why) {
            (Some(root), _) => format!("down because {} is", e(root)),
            (None, Some(why)) => format!("{}: {}", x.state, e(why)),
            (None, None) => x.state.to_string(),
        };
        h.push_str(&format!(
            "<tr data-service=\"{svc}\" data-state=\"{st}\"><td>{svc}</td><td>{layer}</td><td class=\"{class}\">{state}</td><td>{u7}</td><td>{u30}</td><td>{slo}</td></tr>",
            svc = e(&x.service),
            st = x.state,
            layer = e(&x.layer),
            u7 = percent(x.uptime_7d),
            u30 = percent(x.uptime_30d),
            slo = x.slo.map(|v| format!("{v} %")).unwrap_or_else(|| "—".into()),
        ));
    }
    h.push_str("</tbody></table></section><section id=\"routes\"><h2>Routes</h2>");
    if s.routes.is_empty() {
        h.push_str("<p class=\"muted\">No route checked yet.</p>");
    } else {
        h.push_str("<table><thead><tr><th>Address</th><th>Service</th><th>Answer</th><th>Time</th></tr></thead><tbody>");
        for r in &s.routes {
            h.push_str(&format!(
                "<tr data-route=\"{host}{path}\"><td>{host}{path}</td><td>{svc}</td><td class=\"{sev}\">{detail}</td><td>{ms}</td></tr>",
                host = e(&r.host),
                path = e(if r.path == "/" { "" } else { &r.path }),
                svc = e(&r.service),
                sev = r.severity.name(),
                detail = e(&r.detail),
                ms = r.ms.map(|m| format!("{m} ms")).unwrap_or_default(),
            ));
        }
        h.push_str("</tbody></table>");
    }
    h.push_str("</section></body></html>\n");
    h
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::Finding;
    use sprocket_desired::checks::{RouteProbe, ServiceCheck};

    fn watch() -> Watch {
        let svc = |name: &str, layer: &str, slo| ServiceCheck {
            name: format!("ns_{name}"),
            service: name.into(),
            layer: layer.into(),
            desired: 1,
            errors_per_day: 50,
            slo,
        };
        Watch {
            namespace: "ns".into(),
            environment: "prod".into(),
            services: vec![
                svc("redis", "data", Some(99.9)),
                svc("demo", "platform", Some(99.5)),
                svc("web", "platform", None),
            ],
            routes: vec![RouteProbe {
                service: "demo".into(),
                router: "demo".into(),
                host: "demo.example.org".into(),
                path: "/api".into(),
                tls: true,
            }],
            uses: [
                ("redis".to_string(), vec![]),
                ("demo".to_string(), vec!["redis".to_string()]),
                ("web".to_string(), vec![]),
            ]
            .into_iter()
            .collect(),
        }
    }

    fn round(redis_down: bool) -> Report {
        let w = watch();
        let mut f = vec![
            Finding::new(Kind::Replicas, "demo", Severity::Ok, "1/1 running"),
            Finding::new(Kind::Replicas, "web", Severity::Info, "not deployed (0/1)"),
            Finding::new(
                Kind::Replicas,
                "redis",
                if redis_down {
                    Severity::Critical
                } else {
                    Severity::Ok
                },
                if redis_down {
                    "0/1 running"
                } else {
                    "1/1 running"
                },
            ),
        ];
        f.push(
            Finding::new(
                Kind::Route,
                "demo",
                if redis_down {
                    Severity::Critical
                } else {
                    Severity::Ok
                },
                if redis_down { "503 <b>" } else { "200" },
            )
            .target("demo.example.org/api")
            .ms(12),
        );
        Report::new("ns", "prod", f, &w.uses, 0.1)
    }

    #[test]
    fn a_root_and_what_it_takes_down_are_shown_as_one_incident() {
        let w = watch();
        let mut h = History::default();
        let names: Vec<String> = w.services.iter().map(|s| s.service.clone()).collect();
        let t0 = 100 * 3600;
        for i in 0..10u64 {
            h.record(&round(i == 9), &names, t0 + i * 30, 30);
        }
        let r = round(true);
        let s = status(&w, Some((&r, "2026-12-03T20:00:00Z")), &h, t0 + 300, 30);
        assert_eq!(s.overall, "outage");
        assert_eq!(s.incidents.len(), 1);
        assert_eq!(s.incidents[0].root, "redis");
        let redis = &s.services[0];
        assert_eq!(redis.state, "down");
        assert_eq!(redis.why.as_deref(), Some("replicas: 0/1 running"));
        assert_eq!(redis.uptime_7d, Some(90.0));
        let demo = &s.services[1];
        assert_eq!(
            (demo.state, demo.because_of.as_deref()),
            ("down", Some("redis"))
        );
        assert_eq!(s.services[2].state, "not deployed");
        assert_eq!(s.routes[0].path, "/api");
        let page = render(&s);
        assert!(page.contains("data-overall=\"outage\""), "{page}");
        assert!(page.contains("<li class=\"incident\" data-root=\"redis\"><b>redis</b> is failing (replicas: 0/1 running); it affects demo</li>"), "{page}");
        assert!(page.contains("<td class=\"down\">down because redis is</td>"));
        assert!(page.contains("<td>90.00 %</td>"));
        assert!(page.contains("<td>demo.example.org/api</td>"));
        // What a finding says is text, never markup.
        assert!(page.contains("503 &lt;b&gt;") && !page.contains("503 <b>"));
    }

    #[test]
    fn a_slow_route_is_degraded_not_down() {
        let w = watch();
        let mut r = round(false);
        r.findings.retain(|f| f.kind != Kind::Route);
        r.findings.push(
            Finding::new(
                Kind::Route,
                "demo",
                Severity::Warning,
                "200 in 1014 ms (over 800 ms)",
            )
            .target("demo.example.org/api"),
        );
        let r = Report::new("ns", "prod", r.findings, &w.uses, 0.0);
        let s = status(&w, Some((&r, "t")), &History::default(), 0, 30);
        let demo = &s.services[1];
        assert_eq!(demo.state, "degraded");
        assert!(history::is_up(&r, "demo"), "a warning is not downtime");
        assert_eq!(s.overall, "degraded");
        assert!(s.incidents.is_empty(), "slow is not an outage");
        assert!(render(&s).contains(
            "<td class=\"warning\">degraded: route demo.example.org/api: 200 in 1014 ms (over 800 ms)</td>"
        ));
    }

    #[test]
    fn a_healthy_round_and_no_round_yet() {
        let w = watch();
        let h = History::default();
        let r = round(false);
        let s = status(&w, Some((&r, "t")), &h, 0, 30);
        // The web service is not deployed yet: info, not a degradation.
        assert_eq!(s.overall, "operational");
        assert!(s.incidents.is_empty());
        assert!(render(&s).contains("All systems operational"));
        let s = status(&w, None, &h, 0, 30);
        assert_eq!(s.overall, "unknown");
        assert!(s.services.iter().all(|x| x.state == "unknown"));
        assert!(render(&s).contains("Not checked yet"));
    }
}
