//! Every route × host through the edge router, and a host no route names. The edge is reached
//! on this machine's ports, with the host in the `Host` header (HTTP) or in SNI (HTTPS, the
//! environment's ACME routers): what is checked is routing and the service behind it, whatever
//! DNS says. Certificates are judged apart (`certs`): here any certificate is accepted.

use sprocket_check::judge::{self, Answer};
use sprocket_check::plan::{RouteProbe, UNKNOWN_HOST};
use sprocket_check::{Finding, Kind, Severity};
use sprocket_spec::model::Environment;
use std::net::SocketAddr;

/// Where the edge router is reached: this machine's published ports (`check`), or its task's
/// ports inside the swarm (the agent).
pub struct Edge {
    /// `host:port` of its HTTP entry point.
    pub http: String,
    pub https: SocketAddr,
    /// The environment's names go over HTTPS (ACME): the unknown host too.
    pub acme: bool,
}

impl Edge {
    pub fn local(env: &Environment) -> Edge {
        Edge {
            http: format!("127.0.0.1:{}", env.http_port),
            https: ([127, 0, 0, 1], env.https_port).into(),
            acme: env.tls.acme(),
        }
    }
}
use std::time::{Duration, Instant};

/// What Traefik answers when no router takes a request.
const EDGE_404: &str = "404 page not found";
const TIMEOUT: Duration = Duration::from_secs(5);

pub(crate) fn client(edge: &Edge, routes: &[RouteProbe]) -> reqwest::Client {
    let https = edge.https;
    let mut b = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .tls_danger_accept_invalid_certs(true)
        .no_proxy()
        .timeout(TIMEOUT);
    for r in routes.iter().filter(|r| r.tls) {
        b = b.resolve(&r.host, https);
    }
    b.resolve(UNKNOWN_HOST, https)
        .build()
        .expect("a client without custom TLS roots builds")
}

/// One request through the edge: its answer and how long it took (ms).
pub(crate) async fn answer(
    c: &reqwest::Client,
    edge: &Edge,
    host: &str,
    path: &str,
    tls: bool,
) -> (Answer, u64) {
    let start = Instant::now();
    let req = if tls {
        c.get(format!("https://{host}{path}"))
    } else {
        c.get(format!("http://{}{path}", edge.http))
            .header(reqwest::header::HOST, host)
    };
    let answer = match req.send().await {
        Ok(r) => {
            let code = r.status().as_u16();
            let ms = start.elapsed().as_millis() as u64;
            let edge_404 = code == 404 && r.text().await.is_ok_and(|b| b.trim_end() == EDGE_404);
            return (Answer::Status { code, edge_404 }, ms);
        }
        Err(e) => Answer::Failed(error_text(&e)),
    };
    (answer, start.elapsed().as_millis() as u64)
}

/// The innermost cause: "connection refused", not reqwest's wrapper.
fn error_text(e: &reqwest::Error) -> String {
    let mut s: &dyn std::error::Error = e;
    while let Some(inner) = s.source() {
        s = inner;
    }
    if e.is_timeout() {
        format!("no answer within {}s", TIMEOUT.as_secs())
    } else {
        s.to_string()
    }
}

/// One finding per route × host (in `routes`' order), then the unknown host's, whose subject
/// is the edge router (`edge_service`): it is what fails when nothing answers.
pub async fn check(edge: &Edge, edge_service: &str, routes: &[RouteProbe]) -> Vec<Finding> {
    let c = client(edge, routes);
    let probes = routes.iter().map(|r| {
        let c = c.clone();
        async move {
            let (mut got, mut ms) = answer(&c, edge, &r.host, &r.path, r.tls).await;
            let (mut sev, mut detail) = judge::route(&got, ms);
            // One more try a second later before a failure is reported: a task that missed
            // one health check, a router reloading (the agent's rounds judge flaps by count).
            if sev == Severity::Critical {
                tokio::time::sleep(Duration::from_secs(1)).await;
                (got, ms) = answer(&c, edge, &r.host, &r.path, r.tls).await;
                (sev, detail) = judge::route(&got, ms);
            }
            let shown = format!("{}{}", r.host, if r.path == "/" { "" } else { &r.path });
            Finding::new(Kind::Route, &r.service, sev, detail)
                .target(&shown)
                .ms(ms)
        }
    });
    let mut out = futures_util::future::join_all(probes).await;
    let (got, ms) = answer(&c, edge, UNKNOWN_HOST, "/", edge.acme).await;
    let (sev, detail) = judge::unknown_host(&got);
    out.push(
        Finding::new(Kind::UnknownHost, edge_service, sev, detail)
            .target(UNKNOWN_HOST)
            .ms(ms),
    );
    out
}
