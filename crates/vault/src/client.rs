//! A small typed client for the Vault HTTP API: the calls sprocketctl needs, nothing more. This
//! file holds the transport and the calls about the server itself (seal, init, unseal, health,
//! and what a token may do); [`crate::api`] holds those that read or change what Vault holds.
//!
//! `sys/init` runs without a client timeout: on raft storage it can take longer than 5 s
//! (measured 7.4 s here), and a client that gives up loses the only copy of the unseal keys while
//! the server finishes initialising. Every other call has a timeout.
//!
//! Errors never carry request bodies (they may hold keys or tokens); response bodies from Vault
//! are error messages and are kept, shortened.

use serde::{Deserialize, Serialize};
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    #[error("Vault at {addr} does not answer: {reason}\n  hint: is the vault service running (`sprocketctl status`)? Set --vault-addr / SPROCKET_VAULT_ADDR if it is reached another way")]
    Unreachable { addr: String, reason: String },
    #[error("Vault at {addr} answered {status} to {call}: {body}")]
    Status {
        addr: String,
        call: String,
        status: u16,
        body: String,
    },
    #[error(
        "Vault at {addr} sent an answer to {call} that is not what the API documents: {reason}"
    )]
    Protocol {
        addr: String,
        call: String,
        reason: String,
    },
}

impl VaultError {
    /// The HTTP status Vault answered with, when it answered with an error.
    pub fn status(&self) -> Option<u16> {
        match self {
            VaultError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// `GET /v1/sys/seal-status`.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
pub struct SealStatus {
    pub initialized: bool,
    pub sealed: bool,
    /// Threshold.
    #[serde(default)]
    pub t: u32,
    /// Shares.
    #[serde(default)]
    pub n: u32,
    #[serde(default)]
    pub progress: u32,
    #[serde(default)]
    pub version: String,
    #[serde(default)]
    pub storage_type: Option<String>,
    #[serde(default)]
    pub cluster_name: Option<String>,
}

/// `GET /v1/sys/health`.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
pub struct Health {
    #[serde(default)]
    pub initialized: bool,
    #[serde(default)]
    pub sealed: bool,
    #[serde(default)]
    pub standby: bool,
    #[serde(default)]
    pub version: String,
}

/// What a Vault node is doing, from its health. Shown and serialised as `active`, `standby`,
/// `sealed` or `uninitialised`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Active,
    Standby,
    Sealed,
    Uninitialised,
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Role::Active => "active",
            Role::Standby => "standby",
            Role::Sealed => "sealed",
            Role::Uninitialised => "uninitialised",
        })
    }
}

impl Health {
    /// What this node is doing: not initialised and sealed come first, then standby.
    pub fn role(&self) -> Role {
        match (self.initialized, self.sealed, self.standby) {
            (false, _, _) => Role::Uninitialised,
            (_, true, _) => Role::Sealed,
            (_, _, true) => Role::Standby,
            _ => Role::Active,
        }
    }
}

/// What `sys/init` returns. Its `Debug` never shows the secrets.
#[derive(Deserialize)]
pub struct InitResponse {
    pub keys_base64: Vec<String>,
    pub root_token: String,
}

impl std::fmt::Debug for InitResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "InitResponse {{ {} keys, root token: <redacted> }}",
            self.keys_base64.len()
        )
    }
}

#[derive(Clone)]
pub struct VaultClient {
    /// Where requests go (`http://10.0.3.7:8200`; `http://vault` over a Unix socket).
    base: String,
    /// How it reaches Vault, for messages (`unix:/var/lib/docker/volumes/…/vault.sock`).
    address: String,
    http: reqwest::Client,
    slow: reqwest::Client,
}

/// Every Vault client: no redirects (a standby answers 307 to its `api_addr`, a name that
/// resolves only inside the swarm; following it would also re-send the token elsewhere), and no
/// proxy from `HTTP(S)_PROXY`/`ALL_PROXY`: unseal keys and tokens go to Vault and nowhere else.
fn builder(connect: Duration, socket: Option<&std::path::Path>) -> reqwest::ClientBuilder {
    let b = reqwest::Client::builder()
        .connect_timeout(connect)
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy();
    match socket {
        Some(path) => b.unix_socket(path.to_path_buf()),
        None => b,
    }
}

impl VaultClient {
    /// Vault at the URL `base` (`--vault-addr`, or a task's address for the unseal agent).
    pub fn new(base: &str) -> VaultClient {
        Self::with_timeout(base, Duration::from_secs(15))
    }

    /// Like [`VaultClient::new`] with another timeout for every call but `sys/init` (the unseal
    /// agent probes with short ones).
    pub fn with_timeout(base: &str, timeout: Duration) -> VaultClient {
        Self::build(base, None, timeout)
    }

    /// Vault's private listener: a Unix socket on this machine (see `sprocketctl`'s
    /// `vault_lifecycle::client`). Nothing between sprocketctl and Vault can read or answer.
    pub fn over_socket(path: &std::path::Path) -> VaultClient {
        Self::build("http://vault", Some(path), Duration::from_secs(15))
    }

    fn build(base: &str, socket: Option<&std::path::Path>, timeout: Duration) -> VaultClient {
        let http = builder(timeout.min(Duration::from_secs(5)), socket)
            .timeout(timeout)
            .build()
            .expect("an HTTP client");
        let slow = builder(Duration::from_secs(5), socket)
            .build()
            .expect("an HTTP client");
        let base = base.trim_end_matches('/').to_string();
        VaultClient {
            address: match socket {
                Some(path) => format!("unix:{}", path.display()),
                None => base.clone(),
            },
            base,
            http,
            slow,
        }
    }

    /// How this client reaches Vault, for messages.
    pub fn address(&self) -> String {
        self.address.clone()
    }

    fn req(
        &self,
        client: &reqwest::Client,
        method: reqwest::Method,
        path: &str,
    ) -> reqwest::RequestBuilder {
        client.request(method, format!("{}{path}", self.base))
    }

    /// Sends; `Ok(None)` for 404 when `none_on_404`, the body otherwise; any other non-success
    /// status is an error that carries Vault's (shortened) answer, never the request.
    async fn exchange(
        &self,
        call: &str,
        r: reqwest::RequestBuilder,
        none_on_404: bool,
    ) -> Result<Option<Vec<u8>>, VaultError> {
        let (status, body) = self.fetch(r).await?;
        if none_on_404 && status == reqwest::StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !status.is_success() {
            return Err(VaultError::Status {
                addr: self.address(),
                call: call.to_string(),
                status: status.as_u16(),
                body: String::from_utf8_lossy(&body).chars().take(300).collect(),
            });
        }
        Ok(Some(body))
    }

    /// Sends and reads the whole answer, whatever its status.
    async fn fetch(
        &self,
        r: reqwest::RequestBuilder,
    ) -> Result<(reqwest::StatusCode, Vec<u8>), VaultError> {
        let unreachable = |e: reqwest::Error| VaultError::Unreachable {
            addr: self.address(),
            reason: without_url(&e),
        };
        let resp = r.send().await.map_err(unreachable)?;
        let status = resp.status();
        let body = resp.bytes().await.map_err(unreachable)?;
        Ok((status, body.to_vec()))
    }

    async fn send<T: for<'de> Deserialize<'de>>(
        &self,
        call: &'static str,
        r: reqwest::RequestBuilder,
    ) -> Result<T, VaultError> {
        let body = self.exchange(call, r, false).await?.unwrap_or_default();
        serde_json::from_slice(&body).map_err(|e| VaultError::Protocol {
            addr: self.address(),
            call: call.to_string(),
            reason: json_error(&e),
        })
    }

    /// A call with a token. `Ok(None)` when Vault answers 404 (nothing there) or 204 (done, no
    /// body). `path` is after `/v1/`; a `LIST` is a GET with `?list=true`.
    pub(crate) async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        token: &str,
        body: Option<&serde_json::Value>,
    ) -> Result<Option<serde_json::Value>, VaultError> {
        let mut r = self
            .req(&self.http, method.clone(), &format!("/v1/{path}"))
            .header("X-Vault-Token", token);
        if let Some(b) = body {
            r = r.json(b);
        }
        let call = format!("{method} {}", path.split('?').next().unwrap_or(path));
        let Some(bytes) = self.exchange(&call, r, true).await? else {
            return Ok(None);
        };
        if bytes.is_empty() {
            return Ok(None);
        }
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| VaultError::Protocol {
                addr: self.address(),
                call,
                reason: json_error(&e),
            })
    }

    /// `GET path` → its `data`, or `None` when there is nothing.
    pub(crate) async fn read(
        &self,
        path: &str,
        token: &str,
    ) -> Result<Option<serde_json::Value>, VaultError> {
        Ok(self
            .call(reqwest::Method::GET, path, token, None)
            .await?
            .and_then(|v| v.get("data").cloned()))
    }

    /// `POST path` with a JSON body; the whole answer (tokens come back in `auth`).
    pub(crate) async fn write(
        &self,
        path: &str,
        token: &str,
        body: &serde_json::Value,
    ) -> Result<Option<serde_json::Value>, VaultError> {
        self.call(reqwest::Method::POST, path, token, Some(body))
            .await
    }

    pub(crate) async fn delete(&self, path: &str, token: &str) -> Result<(), VaultError> {
        self.call(reqwest::Method::DELETE, path, token, None)
            .await
            .map(|_| ())
    }

    /// `POST sys/storage/raft/snapshot-force`: installs `snapshot` (a raft snapshot, possibly of
    /// another cluster: the keys it was sealed with are not checked) in place of all data. Vault
    /// then needs the snapshot's own unseal keys. Needs `update` and `sudo` on that path.
    pub async fn snapshot_force(&self, token: &str, snapshot: Vec<u8>) -> Result<(), VaultError> {
        let r = self
            .req(
                &self.http,
                reqwest::Method::POST,
                "/v1/sys/storage/raft/snapshot-force",
            )
            .header("X-Vault-Token", token)
            .header("content-type", "application/octet-stream")
            .body(snapshot);
        self.exchange("POST sys/storage/raft/snapshot-force", r, false)
            .await
            .map(|_| ())
    }

    pub async fn seal_status(&self) -> Result<SealStatus, VaultError> {
        self.send(
            "sys/seal-status",
            self.req(&self.http, reqwest::Method::GET, "/v1/sys/seal-status"),
        )
        .await
    }

    /// `PUT /v1/sys/init`, waiting as long as the server takes.
    /// `PUT sys/init`, its answer as received: the caller keeps it (encrypted) even when it
    /// does not parse, since it may hold the only copy of the keys. See [`Self::parse_init`].
    pub async fn init_raw(&self, shares: u32, threshold: u32) -> Result<Vec<u8>, VaultError> {
        let body = serde_json::json!({ "secret_shares": shares, "secret_threshold": threshold });
        let r = self
            .req(&self.slow, reqwest::Method::PUT, "/v1/sys/init")
            .json(&body);
        Ok(self
            .exchange("sys/init", r, false)
            .await?
            .unwrap_or_default())
    }

    /// Reads an answer of [`Self::init_raw`]; the error quotes nothing of it.
    pub fn parse_init(&self, raw: &[u8]) -> Result<InitResponse, VaultError> {
        serde_json::from_slice(raw).map_err(|e| VaultError::Protocol {
            addr: self.address(),
            call: "sys/init".into(),
            reason: json_error(&e),
        })
    }

    /// `GET sys/health`. Its status code encodes the state (200 active, 429 standby, 501
    /// uninitialised, 503 sealed …); the body says the same in fields, which is what we read.
    pub async fn health(&self) -> Result<Health, VaultError> {
        let r = self.req(&self.http, reqwest::Method::GET, "/v1/sys/health");
        let (_, body) = self.fetch(r).await?;
        serde_json::from_slice(&body).map_err(|e| VaultError::Protocol {
            addr: self.address(),
            call: "sys/health".into(),
            reason: json_error(&e),
        })
    }

    /// True when requests to this address are served: it is the active node, or a standby that
    /// knows the active one (and forwards to it). Not while raft is still electing a leader.
    pub async fn is_active(&self) -> Result<bool, VaultError> {
        match self.health().await?.role() {
            Role::Active => Ok(true),
            Role::Standby => {
                #[derive(Deserialize)]
                struct Leader {
                    #[serde(default)]
                    leader_address: String,
                }
                let l: Leader = self
                    .send(
                        "sys/leader",
                        self.req(&self.http, reqwest::Method::GET, "/v1/sys/leader"),
                    )
                    .await?;
                Ok(!l.leader_address.is_empty())
            }
            Role::Sealed | Role::Uninitialised => Ok(false),
        }
    }

    /// Submits one unseal key share.
    pub async fn unseal(&self, key_b64: &str) -> Result<SealStatus, VaultError> {
        let body = serde_json::json!({ "key": key_b64 });
        self.send(
            "sys/unseal",
            self.req(&self.http, reqwest::Method::PUT, "/v1/sys/unseal")
                .json(&body),
        )
        .await
    }

    /// `GET auth/token/lookup-self`: does this token work? Returns its policies.
    pub async fn token_policies(&self, token: &str) -> Result<Vec<String>, VaultError> {
        #[derive(Deserialize)]
        struct Data {
            #[serde(default)]
            policies: Vec<String>,
        }
        #[derive(Deserialize)]
        struct Resp {
            data: Data,
        }
        let r: Resp = self
            .send(
                "auth/token/lookup-self",
                self.req(
                    &self.http,
                    reqwest::Method::GET,
                    "/v1/auth/token/lookup-self",
                )
                .header("X-Vault-Token", token),
            )
            .await?;
        Ok(r.data.policies)
    }
}

/// reqwest's errors name the URL; ours say the address already, and a URL never holds secrets
/// here, but keep messages short.
fn without_url(e: &reqwest::Error) -> String {
    let mut s = e.to_string();
    if let Some(u) = e.url() {
        s = s.replace(&format!(" for url ({u})"), "");
    }
    let mut src = std::error::Error::source(e);
    while let Some(inner) = src {
        s.push_str(&format!(": {inner}"));
        src = inner.source();
    }
    s
}

/// A JSON error without serde's quote of the offending value: in an answer of Vault's that value
/// can be an unseal key or a token. Its class and position say enough to report a protocol
/// mismatch.
pub(crate) fn json_error(e: &serde_json::Error) -> String {
    format!(
        "unexpected answer ({:?} error at line {} column {})",
        e.classify(),
        e.line(),
        e.column()
    )
}
