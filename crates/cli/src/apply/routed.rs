//! After a deploy, the edge router serves what changed. Traefik reads the swarm every 2 s
//! (`providers.swarm.refreshSeconds`; its throttle after each change is 100 ms, not its default
//! 2 s), so a new or moved service's router appears a moment after its tasks run healthy: until
//! then its hosts get Traefik's own 404. `up` returns when every
//! route × host of a created or updated service (every route, when the edge router itself
//! changed) is answered by a router — not Traefik's 404, not a refused connection — or, after
//! [`WAIT`], says which are not.
//!
//! The edge is reached on this machine's ports (as `check` does), so only against a local
//! engine; a remote one's routes are `check`'s to judge.

use super::{ServiceAction, UpReport};
use crate::check::routes::{self, Edge};
use crate::output::Progress;
use serde::Serialize;
use sprocket_check::judge::Answer;
use sprocket_desired::checks::RouteProbe;
use sprocket_spec::model::Platform;
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

/// How long a route may take to appear before `up` says so.
pub const WAIT: Duration = Duration::from_secs(20);

#[derive(Debug, Serialize, Clone, PartialEq)]
pub struct RoutesServed {
    /// Route × host pairs waited for.
    pub routes: usize,
    /// Until the last was served (or the wait ended).
    pub seconds: f64,
    /// `host/path` not served when the wait ended.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub pending: Vec<String>,
}

/// Whether the edge router has a router for the request: any answer but its own 404.
pub fn served(a: &Answer) -> bool {
    matches!(
        a,
        Answer::Status {
            edge_404: false,
            ..
        }
    )
}

/// Waits until each of `routes` is served, up to `wait`.
pub async fn wait(edge: &Edge, routes: &[RouteProbe], wait: Duration) -> RoutesServed {
    let start = Instant::now();
    let c = routes::client(edge, routes);
    let mut pending: Vec<&RouteProbe> = routes.iter().collect();
    loop {
        let answers = futures_util::future::join_all(
            pending
                .iter()
                .map(|r| routes::answer(&c, edge, &r.host, &r.path, r.tls)),
        )
        .await;
        let mut left = Vec::new();
        for (r, (a, _)) in pending.into_iter().zip(answers) {
            if !served(&a) {
                left.push(r);
            }
        }
        pending = left;
        if pending.is_empty() || start.elapsed() >= wait {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    RoutesServed {
        routes: routes.len(),
        seconds: start.elapsed().as_secs_f64(),
        pending: pending
            .iter()
            .map(|r| format!("{}{}", r.host, if r.path == "/" { "" } else { &r.path }))
            .collect(),
    }
}

/// After a converged deploy: waits for the routes of what `report` created or updated (all of
/// them when the edge router changed), says how it went, and adds it to the report.
pub async fn after_deploy(
    platform: &Platform,
    namespace: &str,
    report: &mut UpReport,
    progress: &Progress,
) {
    let full = |name: &str| sprocket_desired::state::service_name(namespace, name);
    let changed: BTreeSet<&str> = report
        .layers
        .iter()
        .flat_map(|l| &l.services)
        .filter(|s| s.action != ServiceAction::Unchanged)
        .map(|s| s.name.as_str())
        .collect();
    let edge = platform.edge().map(|e| full(&e.name));
    let edge_changed = edge.as_deref().is_some_and(|e| changed.contains(e));
    let routes: Vec<RouteProbe> = sprocket_desired::checks::watch(platform)
        .routes
        .into_iter()
        .filter(|r| edge_changed || changed.contains(full(&r.service).as_str()))
        .collect();
    if routes.is_empty() {
        return;
    }
    let served = wait(&Edge::local(&platform.environment), &routes, WAIT).await;
    progress.say(if served.pending.is_empty() {
        format!(
            "{} route × host served by the edge router after {:.1}s",
            served.routes, served.seconds
        )
    } else {
        format!(
            "not served by the edge router after {:.0}s: {} (its 404, or nothing answers on this machine's port {}); see `docker service logs {}`",
            served.seconds,
            served.pending.join(", "),
            platform.environment.http_port,
            edge.unwrap_or_default()
        )
    });
    report.seconds += served.seconds;
    report.routes = Some(served);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_routers_answer_is_served() {
        for (a, want) in [
            (
                Answer::Status {
                    code: 404,
                    edge_404: true,
                },
                false,
            ),
            (
                Answer::Status {
                    code: 404,
                    edge_404: false,
                },
                true,
            ),
            (
                Answer::Status {
                    code: 503,
                    edge_404: false,
                },
                true,
            ),
            (Answer::Failed("connection refused".into()), false),
        ] {
            assert_eq!(served(&a), want, "{a:?}");
        }
    }

    #[tokio::test]
    async fn waits_for_a_router_that_appears_and_names_one_that_never_does() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        use std::sync::Arc;
        // An edge that answers its own 404 to `late.test` for its first three requests, then
        // serves it; `never.test` is never served.
        let hits = Arc::new(AtomicUsize::new(0));
        let h = hits.clone();
        let app = axum::Router::new().fallback(move |headers: axum::http::HeaderMap| {
            let h = h.clone();
            async move {
                let host = headers
                    .get("host")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_string();
                let n = if host == "late.test" {
                    h.fetch_add(1, Ordering::SeqCst)
                } else {
                    0
                };
                if host == "late.test" && n >= 3 {
                    (axum::http::StatusCode::OK, "app")
                } else {
                    (axum::http::StatusCode::NOT_FOUND, "404 page not found\n")
                }
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        let edge = Edge {
            http: addr.to_string(),
            https: addr,
            acme: false,
        };
        let route = |host: &str| RouteProbe {
            service: "s".into(),
            router: "s".into(),
            host: host.into(),
            path: "/".into(),
            tls: false,
        };
        let r = wait(&edge, &[route("late.test")], Duration::from_secs(5)).await;
        assert!(r.pending.is_empty(), "{r:?}");
        assert!(hits.load(Ordering::SeqCst) >= 4);
        assert!(r.seconds >= 0.7, "three 404s, 250 ms apart: {r:?}");
        let r = wait(
            &edge,
            &[route("late.test"), route("never.test")],
            Duration::from_millis(600),
        )
        .await;
        assert_eq!(r.pending, ["never.test"]);
        assert_eq!(r.routes, 2);
    }
}
