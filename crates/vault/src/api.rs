//! The calls sprocketctl makes with a token, one typed method each: mounts and auth methods,
//! ACL policies, the services' token role, tokens (issue, look up and revoke by accessor, renew),
//! the GitHub auth method's configuration, and the generate-root protocol. Paths, verbs and JSON
//! shapes live here and nowhere else; callers get typed answers.
//!
//! Answers are read as leniently as before this module existed (a missing or odd field is its
//! default), so that what `plan` and `up` compare does not depend on Vault's optional fields.
//! The same rules as [`crate::client`]: errors never carry request bodies, and nothing that
//! holds a token shows it in `Debug`.

use crate::client::{VaultClient, VaultError};
use reqwest::Method;
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// A client that acts with one token: `client.with_token(t).mounts()`. `Debug` never shows it.
#[derive(Clone, Copy)]
pub struct Authed<'a> {
    client: &'a VaultClient,
    token: &'a str,
}

impl std::fmt::Debug for Authed<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Authed {{ {}, token: <redacted> }}",
            self.client.address()
        )
    }
}

impl VaultClient {
    /// The typed API, acting with `token`.
    pub fn with_token<'a>(&'a self, token: &'a str) -> Authed<'a> {
        Authed {
            client: self,
            token,
        }
    }
}

/// A secrets engine (`sys/mounts`) or an auth method (`sys/auth`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    /// `kv`, `github`, …
    pub kind: String,
    /// KV version (`options.version`), when it has one.
    pub version: Option<String>,
    pub description: String,
}

/// A token role (`auth/token/roles/NAME`), as far as sprocketctl sets it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRole {
    pub allowed_policies_glob: Vec<String>,
    pub token_period_s: u64,
    pub orphan: bool,
    pub renewable: bool,
}

/// What `auth/token/lookup-accessor` tells about a live token (never the token).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenInfo {
    pub ttl_s: u64,
    pub policies: Vec<String>,
}

/// A token Vault just issued. `Debug` shows the accessor, never the token.
pub struct IssuedToken {
    pub token: String,
    /// Looks the token up or revokes it; cannot act as it.
    pub accessor: String,
}

impl std::fmt::Debug for IssuedToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "IssuedToken {{ accessor: {}, token: <redacted> }}",
            self.accessor
        )
    }
}

/// A service token to issue against a token role.
#[derive(Debug, Clone)]
pub struct TokenRequest<'a> {
    pub policies: &'a [String],
    pub display_name: &'a str,
    pub meta: &'a BTreeMap<String, String>,
}

/// An orphan, renewable, periodic token (sprocketctl's own admin token).
#[derive(Debug, Clone)]
pub struct OrphanRequest<'a> {
    pub policies: &'a [String],
    /// Vault's duration syntax: `768h`.
    pub period: &'a str,
    pub display_name: &'a str,
}

/// The GitHub auth method's configuration (`auth/github/config`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GithubConfig {
    pub organization: String,
    pub organization_id: Option<u64>,
    pub base_url: Option<String>,
}

/// Where a root token is generated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RootEndpoint {
    /// OpenBao 2.6+: `sys/generate-root-token`, authenticated.
    Authenticated,
    /// HashiCorp Vault and older OpenBao: `sys/generate-root`, unauthenticated (a listener may
    /// have it disabled).
    Unauthenticated,
}

impl RootEndpoint {
    fn path(self) -> &'static str {
        match self {
            RootEndpoint::Authenticated => "sys/generate-root-token",
            RootEndpoint::Unauthenticated => "sys/generate-root",
        }
    }
}

/// A generate-root attempt in progress. The one-time password never leaves this process and is
/// not shown by `Debug`.
pub struct RootAttempt {
    pub endpoint: RootEndpoint,
    pub nonce: String,
    pub otp: String,
}

impl std::fmt::Debug for RootAttempt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "RootAttempt {{ {:?}, nonce: {}, otp: <redacted> }}",
            self.endpoint, self.nonce
        )
    }
}

/// Why an encoded root token could not be decoded.
#[derive(Debug, thiserror::Error)]
pub enum DecodeRootError {
    #[error("generate-root: the encoded token is not base64 ({0})")]
    NotBase64(String),
    #[error("generate-root: encoded token of {encoded} bytes for a one-time password of {otp}")]
    Length { encoded: usize, otp: usize },
    #[error("generate-root: the decoded token is not text")]
    NotText,
}

/// `encoded_token` is base64 of the token XOR the one-time password.
pub fn decode_root(encoded: &str, otp: &str) -> Result<String, DecodeRootError> {
    use base64::Engine as _;
    let raw = base64::engine::general_purpose::STANDARD_NO_PAD
        .decode(encoded.trim_end_matches('='))
        .or_else(|_| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(encoded.trim_end_matches('='))
        })
        .map_err(|e| DecodeRootError::NotBase64(e.to_string()))?;
    if raw.len() != otp.len() {
        return Err(DecodeRootError::Length {
            encoded: raw.len(),
            otp: otp.len(),
        });
    }
    String::from_utf8(raw.iter().zip(otp.bytes()).map(|(a, b)| a ^ b).collect())
        .map_err(|_| DecodeRootError::NotText)
}

fn text(v: &Value) -> String {
    v.as_str().unwrap_or_default().to_string()
}

fn mount_of(v: &Value) -> Mount {
    Mount {
        kind: text(&v["type"]),
        version: v
            .pointer("/options/version")
            .and_then(Value::as_str)
            .map(str::to_string),
        description: text(&v["description"]),
    }
}

/// A `LIST` answer's `keys`.
fn keys(data: Option<Value>) -> Vec<String> {
    data.and_then(|d| d.get("keys").cloned())
        .and_then(|k| serde_json::from_value(k).ok())
        .unwrap_or_default()
}

impl Authed<'_> {
    pub(crate) async fn read(&self, path: &str) -> Result<Option<Value>, VaultError> {
        self.client.read(path, self.token).await
    }

    pub(crate) async fn write(
        &self,
        path: &str,
        body: &Value,
    ) -> Result<Option<Value>, VaultError> {
        self.client.write(path, self.token, body).await
    }

    async fn put(&self, path: &str, body: &Value) -> Result<Option<Value>, VaultError> {
        self.client
            .call(Method::PUT, path, self.token, Some(body))
            .await
    }

    async fn delete(&self, path: &str) -> Result<(), VaultError> {
        self.client.delete(path, self.token).await
    }

    pub(crate) async fn list(&self, path: &str) -> Result<Vec<String>, VaultError> {
        Ok(keys(self.read(&format!("{path}?list=true")).await?))
    }

    async fn mount_table(&self, path: &str) -> Result<BTreeMap<String, Mount>, VaultError> {
        Ok(match self.read(path).await? {
            Some(Value::Object(m)) => m.iter().map(|(k, v)| (k.clone(), mount_of(v))).collect(),
            _ => BTreeMap::new(),
        })
    }

    /// `GET sys/mounts`: path (`platform/`) → secrets engine.
    pub async fn mounts(&self) -> Result<BTreeMap<String, Mount>, VaultError> {
        self.mount_table("sys/mounts").await
    }

    /// `GET sys/auth`: path (`github/`) → auth method.
    pub async fn auth_methods(&self) -> Result<BTreeMap<String, Mount>, VaultError> {
        self.mount_table("sys/auth").await
    }

    /// `POST sys/mounts/PATH`: mounts a secrets engine (`path` without slashes).
    pub async fn enable_mount(
        &self,
        path: &str,
        kind: &str,
        version: &str,
        description: &str,
    ) -> Result<(), VaultError> {
        let body =
            json!({ "type": kind, "options": { "version": version }, "description": description });
        self.write(&format!("sys/mounts/{path}"), &body)
            .await
            .map(drop)
    }

    /// `POST sys/auth/PATH`: enables an auth method (`path` without slashes).
    pub async fn enable_auth(
        &self,
        path: &str,
        kind: &str,
        description: &str,
    ) -> Result<(), VaultError> {
        let body = json!({ "type": kind, "description": description });
        self.write(&format!("sys/auth/{path}"), &body)
            .await
            .map(drop)
    }

    /// `LIST sys/plugins/catalog/auth`: the auth plugins this server can run.
    pub async fn auth_plugins(&self) -> Result<Vec<String>, VaultError> {
        self.list("sys/plugins/catalog/auth").await
    }

    /// `LIST sys/policies/acl`.
    pub async fn policy_names(&self) -> Result<Vec<String>, VaultError> {
        self.list("sys/policies/acl").await
    }

    /// `GET sys/policies/acl/NAME`: its HCL text, `None` when there is no such policy.
    pub async fn policy(&self, name: &str) -> Result<Option<String>, VaultError> {
        Ok(self
            .read(&format!("sys/policies/acl/{name}"))
            .await?
            .map(|d| text(&d["policy"])))
    }

    /// `PUT sys/policies/acl/NAME`: creates or replaces it.
    pub async fn put_policy(&self, name: &str, hcl: &str) -> Result<(), VaultError> {
        self.put(
            &format!("sys/policies/acl/{name}"),
            &json!({ "policy": hcl }),
        )
        .await
        .map(drop)
    }

    /// `DELETE sys/policies/acl/NAME`.
    pub async fn delete_policy(&self, name: &str) -> Result<(), VaultError> {
        self.delete(&format!("sys/policies/acl/{name}")).await
    }

    /// `GET auth/token/roles/NAME`, `None` when there is no such role.
    pub async fn token_role(&self, name: &str) -> Result<Option<TokenRole>, VaultError> {
        Ok(self
            .read(&format!("auth/token/roles/{name}"))
            .await?
            .map(|r| TokenRole {
                allowed_policies_glob: serde_json::from_value(r["allowed_policies_glob"].clone())
                    .unwrap_or_default(),
                token_period_s: r["token_period"].as_u64().unwrap_or(0),
                orphan: r["orphan"].as_bool().unwrap_or(false),
                renewable: r["renewable"].as_bool().unwrap_or(false),
            }))
    }

    /// `POST auth/token/roles/NAME`: creates or replaces it; its tokens are service tokens.
    pub async fn put_token_role(&self, name: &str, role: &TokenRole) -> Result<(), VaultError> {
        let body = json!({
            "allowed_policies_glob": role.allowed_policies_glob,
            "orphan": role.orphan,
            "renewable": role.renewable,
            "token_period": format!("{}s", role.token_period_s),
            "token_type": "service",
        });
        self.write(&format!("auth/token/roles/{name}"), &body)
            .await
            .map(drop)
    }

    /// `POST auth/token/lookup-accessor`: the token behind `accessor`, `None` when Vault no
    /// longer knows it (expired or revoked: 400, or nothing there).
    pub async fn lookup_accessor(&self, accessor: &str) -> Result<Option<TokenInfo>, VaultError> {
        match self
            .write(
                "auth/token/lookup-accessor",
                &json!({ "accessor": accessor }),
            )
            .await
        {
            Ok(Some(a)) => Ok(Some(TokenInfo {
                ttl_s: a.pointer("/data/ttl").and_then(Value::as_u64).unwrap_or(0),
                policies: serde_json::from_value(a["data"]["policies"].clone()).unwrap_or_default(),
            })),
            Ok(None) => Ok(None),
            Err(e) if e.status() == Some(400) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// `POST auth/token/revoke-accessor`. A token Vault no longer knows (400) is gone already.
    pub async fn revoke_accessor(&self, accessor: &str) -> Result<(), VaultError> {
        match self
            .write(
                "auth/token/revoke-accessor",
                &json!({ "accessor": accessor }),
            )
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if e.status() == Some(400) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// The token and accessor of an answer that issued one.
    fn issued(&self, call: &str, answer: Option<Value>) -> Result<IssuedToken, VaultError> {
        let auth = answer.as_ref().and_then(|a| a.get("auth"));
        match (
            auth.and_then(|a| a["client_token"].as_str()),
            auth.and_then(|a| a["accessor"].as_str()),
        ) {
            (Some(token), Some(accessor)) => Ok(IssuedToken {
                token: token.to_string(),
                accessor: accessor.to_string(),
            }),
            _ => Err(VaultError::Protocol {
                addr: self.client.address(),
                call: call.to_string(),
                reason: "it issued no token (no auth.client_token and auth.accessor)".into(),
            }),
        }
    }

    /// `POST auth/token/create/ROLE`: a token against a token role.
    pub async fn create_token(
        &self,
        role: &str,
        request: &TokenRequest<'_>,
    ) -> Result<IssuedToken, VaultError> {
        let path = format!("auth/token/create/{role}");
        let body = json!({
            "policies": request.policies,
            "display_name": request.display_name,
            "meta": request.meta,
        });
        let answer = self.write(&path, &body).await?;
        self.issued(&format!("POST {path}"), answer)
    }

    /// `POST auth/token/create-orphan`: an orphan, renewable, periodic token.
    pub async fn create_orphan(
        &self,
        request: &OrphanRequest<'_>,
    ) -> Result<IssuedToken, VaultError> {
        let body = json!({
            "policies": request.policies,
            "period": request.period,
            "display_name": request.display_name,
            "renewable": true,
        });
        let answer = self.write("auth/token/create-orphan", &body).await?;
        self.issued("POST auth/token/create-orphan", answer)
    }

    /// `POST auth/token/renew-self`: keeps this token alive for another period.
    pub async fn renew_self(&self) -> Result<(), VaultError> {
        self.write("auth/token/renew-self", &json!({}))
            .await
            .map(drop)
    }

    /// `POST auth/token/revoke-self`: this token stops working.
    pub async fn revoke_self(&self) -> Result<(), VaultError> {
        self.write("auth/token/revoke-self", &json!({}))
            .await
            .map(drop)
    }

    /// `GET auth/github/config`, `None` when it was never written.
    pub async fn github_config(&self) -> Result<Option<GithubConfig>, VaultError> {
        Ok(self
            .read("auth/github/config")
            .await?
            .map(|cfg| GithubConfig {
                organization: text(&cfg["organization"]),
                organization_id: cfg["organization_id"].as_u64().filter(|i| *i != 0),
                base_url: cfg["base_url"]
                    .as_str()
                    .filter(|s| !s.is_empty())
                    .map(str::to_string),
            }))
    }

    /// `POST auth/github/config`; unset optional fields are left out.
    pub async fn put_github_config(&self, config: &GithubConfig) -> Result<(), VaultError> {
        let mut body = json!({ "organization": config.organization });
        if let Some(id) = config.organization_id {
            body["organization_id"] = json!(id);
        }
        if let Some(u) = &config.base_url {
            body["base_url"] = json!(u);
        }
        self.write("auth/github/config", &body).await.map(drop)
    }

    /// `LIST auth/github/map/teams`: the team slugs mapped to policies.
    pub async fn github_teams(&self) -> Result<Vec<String>, VaultError> {
        self.list("auth/github/map/teams").await
    }

    /// `GET auth/github/map/teams/TEAM`: its policies (comma-separated, Vault's form).
    pub async fn github_team(&self, team: &str) -> Result<Option<String>, VaultError> {
        Ok(self
            .read(&format!("auth/github/map/teams/{team}"))
            .await?
            .map(|d| text(&d["value"])))
    }

    /// `POST auth/github/map/teams/TEAM`.
    pub async fn put_github_team(&self, team: &str, policies: &str) -> Result<(), VaultError> {
        self.write(
            &format!("auth/github/map/teams/{team}"),
            &json!({ "value": policies }),
        )
        .await
        .map(drop)
    }

    /// `DELETE auth/github/map/teams/TEAM`.
    pub async fn delete_github_team(&self, team: &str) -> Result<(), VaultError> {
        self.delete(&format!("auth/github/map/teams/{team}")).await
    }

    /// Cancels any generate-root attempt at `endpoint` (whatever the answer), then starts one.
    /// `Ok(None)` when the server has nothing at that path (404).
    pub async fn generate_root_start(
        &self,
        endpoint: RootEndpoint,
    ) -> Result<Option<RootAttempt>, VaultError> {
        let attempt = format!("{}/attempt", endpoint.path());
        let _ = self.delete(&attempt).await;
        let Some(start) = self.put(&attempt, &json!({})).await? else {
            return Ok(None);
        };
        let data = start.get("data").cloned().unwrap_or(start);
        let field = |name: &str, what: &str| {
            data[name]
                .as_str()
                .map(str::to_string)
                .ok_or_else(|| VaultError::Protocol {
                    addr: self.client.address(),
                    call: format!("PUT {attempt}"),
                    reason: format!("no {what}"),
                })
        };
        Ok(Some(RootAttempt {
            endpoint,
            nonce: field("nonce", "nonce")?,
            otp: field("otp", "one-time password")?,
        }))
    }

    /// Gives one unseal key to `attempt`: `Some(encoded token)` once the threshold is reached
    /// (decode it with [`decode_root`] and the attempt's one-time password).
    pub async fn generate_root_update(
        &self,
        attempt: &RootAttempt,
        key: &str,
    ) -> Result<Option<String>, VaultError> {
        let path = format!("{}/update", attempt.endpoint.path());
        let protocol = |reason: &str| VaultError::Protocol {
            addr: self.client.address(),
            call: format!("PUT {path}"),
            reason: reason.into(),
        };
        let r = self
            .put(&path, &json!({ "key": key, "nonce": attempt.nonce }))
            .await?
            .ok_or_else(|| protocol("no answer to an update"))?;
        let d = r.get("data").cloned().unwrap_or(r);
        if d["complete"].as_bool() != Some(true) {
            return Ok(None);
        }
        d["encoded_token"]
            .as_str()
            .or(d["encoded_root_token"].as_str())
            .map(|e| Some(e.to_string()))
            .ok_or_else(|| protocol("complete, but no encoded token"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_an_otp_encoded_token() {
        use base64::Engine as _;
        let otp = "Ly0jdobK4iVeNCjMdVSGKeGZDr";
        let token = "s.abcdefghijklmnopqrstuvwx";
        let enc: Vec<u8> = token.bytes().zip(otp.bytes()).map(|(a, b)| a ^ b).collect();
        let b64 = base64::engine::general_purpose::STANDARD.encode(enc);
        assert_eq!(decode_root(&b64, otp).unwrap(), token);
        assert!(decode_root(&b64, "short").is_err());
    }

    #[test]
    fn debug_never_shows_a_token() {
        let issued = IssuedToken {
            token: "s.secret-token".into(),
            accessor: "acc".into(),
        };
        let attempt = RootAttempt {
            endpoint: RootEndpoint::Authenticated,
            nonce: "n".into(),
            otp: "secret-otp".into(),
        };
        let client = VaultClient::new("http://127.0.0.1:1");
        let authed = client.with_token("s.secret-token");
        for shown in [
            format!("{issued:?}"),
            format!("{attempt:?}"),
            format!("{authed:?}"),
        ] {
            assert!(!shown.contains("secret"), "{shown}");
        }
    }
}
