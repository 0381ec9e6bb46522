//! A Doppler-compatible test server (feature `fake`): the one endpoint sprocketctl and the
//! Doppler CLI read, as documented and as the real CLI is shown to accept it
//! (`crates/secrets/tests/doppler.rs` runs the real CLI against it). Doppler itself cannot be
//! reached from here.
//!
//! `GET /v3/configs/config/secrets/download?project=P&config=C&format=json`: `Authorization:
//! Bearer <token>` (or HTTP Basic with the token as user name); a flat JSON object of the
//! config's secrets plus Doppler's own `DOPPLER_PROJECT`, `DOPPLER_CONFIG` and
//! `DOPPLER_ENVIRONMENT`, sorted by name, with an `ETag`; `If-None-Match` with that tag → 304.
//! Errors as Doppler writes them, `{"messages":[…],"success":false}`: 401 for a wrong token, 404
//! for an unknown project or config, and 429 for the next `throttle` requests when asked.

use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

#[derive(Default)]
pub struct FakeState {
    pub token: String,
    pub project: String,
    pub config: String,
    pub secrets: BTreeMap<String, String>,
    /// Answer 429 to this many more requests.
    pub throttle: u32,
    /// Requests seen.
    pub requests: u32,
}

pub type Shared = Arc<Mutex<FakeState>>;

/// Serves on 127.0.0.1 (a free port) until the runtime ends; returns the API host and the state.
pub async fn start(token: &str, project: &str, config: &str) -> (String, Shared) {
    let state = Arc::new(Mutex::new(FakeState {
        token: token.into(),
        project: project.into(),
        config: config.into(),
        ..Default::default()
    }));
    let app = Router::new()
        .route("/v3/configs/config/secrets/download", get(download))
        .with_state(state.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a port");
    let addr = listener.local_addr().expect("its address");
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}"), state)
}

fn error(status: StatusCode, message: &str) -> Response {
    (
        status,
        [("content-type", "application/json")],
        serde_json::json!({ "messages": [message], "success": false }).to_string(),
    )
        .into_response()
}

/// The token of a `Bearer` or `Basic` (token as user name) Authorization header.
fn token_of(headers: &HeaderMap) -> Option<String> {
    let v = headers.get("authorization")?.to_str().ok()?;
    if let Some(t) = v.strip_prefix("Bearer ") {
        return Some(t.trim().to_string());
    }
    let b64 = v.strip_prefix("Basic ")?;
    let decoded = decode_base64(b64.trim())?;
    let s = String::from_utf8(decoded).ok()?;
    Some(s.split(':').next()?.to_string())
}

fn decode_base64(s: &str) -> Option<Vec<u8>> {
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = Vec::new();
    let mut buf = 0u32;
    let mut bits = 0;
    for c in s.bytes().filter(|c| *c != b'=') {
        let v = alphabet.iter().position(|a| *a == c)? as u32;
        buf = (buf << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((buf >> bits) as u8);
            buf &= (1 << bits) - 1;
        }
    }
    Some(out)
}

async fn download(
    State(state): State<Shared>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let q: HashMap<String, String> = query
        .unwrap_or_default()
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let mut s = state.lock().expect("state");
    s.requests += 1;
    if token_of(&headers).as_deref() != Some(s.token.as_str()) {
        return error(StatusCode::UNAUTHORIZED, "Invalid Auth token");
    }
    if s.throttle > 0 {
        s.throttle -= 1;
        return error(
            StatusCode::TOO_MANY_REQUESTS,
            "You have exceeded the rate limit",
        );
    }
    let (project, config) = (q.get("project"), q.get("config"));
    if project != Some(&s.project) || config != Some(&s.config) {
        return error(StatusCode::NOT_FOUND, "Could not find requested config");
    }
    if q.get("format").map(String::as_str) != Some("json") {
        return error(StatusCode::BAD_REQUEST, "Invalid format");
    }
    let mut all = s.secrets.clone();
    all.insert("DOPPLER_PROJECT".into(), s.project.clone());
    all.insert("DOPPLER_CONFIG".into(), s.config.clone());
    all.insert("DOPPLER_ENVIRONMENT".into(), s.config.clone());
    let body = serde_json::to_string(&all).expect("serialisable");
    let etag = {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        body.hash(&mut h);
        format!("\"{:016x}\"", h.finish())
    };
    if headers.get("if-none-match").and_then(|v| v.to_str().ok()) == Some(etag.as_str()) {
        return (StatusCode::NOT_MODIFIED, [("etag", etag)]).into_response();
    }
    (
        StatusCode::OK,
        [
            ("content-type", "application/json".to_string()),
            ("etag", etag),
        ],
        body,
    )
        .into_response()
}
