//! The status page: the last round's verdict with the uptime so far, served where a route of
//! the agent forwards (nothing else of the agent is there).

use sprocket_check::history::History;
use sprocket_check::status_page;
use sprocket_desired::checks::Monitor;

/// What the status page shows: the last round's verdict with the uptime so far, replaced
/// after every round and rendered on request.
#[derive(Clone)]
pub struct Page(std::sync::Arc<std::sync::RwLock<status_page::Status>>);

impl Page {
    /// Before the first round: every service of the watch, not checked yet.
    pub fn new(m: &Monitor) -> Page {
        let s = status_page::status(&m.watch, None, &History::default(), 0, m.alerts.interval_s);
        Page(std::sync::Arc::new(std::sync::RwLock::new(s)))
    }

    pub(super) fn set(&self, s: status_page::Status) {
        *self.0.write().unwrap_or_else(|e| e.into_inner()) = s;
    }

    pub(super) fn get(&self) -> status_page::Status {
        self.0.read().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// Serves the status page (`/`, HTML) and its content (`/status.json`) on `listener`: what a
/// route of the agent forwards to. Nothing else of the agent (its metrics, its health) is there.
pub async fn serve_status(listener: tokio::net::TcpListener, page: Page) {
    use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
    use axum::routing::get;
    let html = page.clone();
    let app = axum::Router::new()
        .route(
            "/",
            get(move || {
                let p = html.clone();
                async move {
                    (
                        [
                            (CONTENT_TYPE, "text/html; charset=utf-8"),
                            (CACHE_CONTROL, "no-store"),
                        ],
                        status_page::render(&p.get()),
                    )
                }
            }),
        )
        .route(
            "/status.json",
            get(move || {
                let p = page.clone();
                async move { axum::Json(p.get()) }
            }),
        );
    if let Err(e) = axum::serve(listener, app).await {
        eprintln!("agent: the status page stopped: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::super::a_monitor;
    use super::*;
    use serde_json::Value;
    use sprocket_check::{Finding, Kind, Report, Severity};

    #[tokio::test]
    async fn the_status_page_shows_the_last_round_and_nothing_else_of_the_agent() {
        let m = a_monitor();
        let page = Page::new(&m);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(serve_status(listener, page.clone()));
        let http = reqwest::Client::builder().no_proxy().build().unwrap();
        let get = |path: &'static str| {
            let http = http.clone();
            async move {
                let r = http
                    .get(format!("http://{addr}{path}"))
                    .send()
                    .await
                    .unwrap();
                (r.status().as_u16(), r.text().await.unwrap())
            }
        };
        let (code, html) = get("/").await;
        assert_eq!(code, 200);
        assert!(html.contains("Not checked yet"), "{html}");
        // A round: Redis down.
        let report = Report::new(
            "ns",
            "prod",
            vec![Finding::new(
                Kind::Replicas,
                "redis",
                Severity::Critical,
                "0/1 running",
            )],
            &m.watch.uses,
            0.0,
        );
        page.set(status_page::status(
            &m.watch,
            Some((&report, "2026-12-03T20:00:00Z")),
            &History::default(),
            0,
            30,
        ));
        let (_, html) = get("/").await;
        assert!(
            html.contains("data-service=\"redis\" data-state=\"down\""),
            "{html}"
        );
        let (code, json) = get("/status.json").await;
        assert_eq!(code, 200);
        let v: Value = serde_json::from_str(&json).unwrap();
        assert_eq!(v["overall"], "outage");
        assert_eq!(v["incidents"][0]["root"], "redis");
        for other in ["/metrics", "/healthz"] {
            assert_eq!(get(other).await.0, 404, "{other} is not on the page's port");
        }
    }
}
