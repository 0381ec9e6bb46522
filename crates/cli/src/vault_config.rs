//! Vault's declarative configuration, carried out: read what Vault holds into
//! [`ObservedVault`], and apply a [`VaultPlan`] (computed by the pure `desired::vault`).
//!
//! Works with sprocketctl's scoped admin token. The root token from `sys/init` is used once, to
//! make that admin token (orphan, periodic, policy `sprocketctl-admin`), which is then kept in
//! the keyring beside the unseal keys; `vault revoke-root` can then retire the root token.
//!
//! Service tokens are orphan periodic tokens issued against the `sprocket-services` role; each
//! becomes a Docker secret (labelled with its accessor, never its value) that the service and the
//! unseal agent mount. The agent renews them; the accessor label lets the next `up` see whether a
//! token still lives without holding it.

use crate::output::Progress;
use reqwest::Method;
use serde_json::{json, Value};
use sprocket_desired::labels as L;
use sprocket_desired::plan::ObservedObject;
use sprocket_desired::state::{short_hash, DesiredState};
use sprocket_desired::vault::{
    self as dv, GithubConfig, ObservedMount, ObservedVault, TokenRole, TokenState, VaultAction,
    VaultChange, VaultConfig, VaultKind, VaultPlan,
};
use sprocket_docker::Engine;
use sprocket_vault::{Keyring, VaultClient, VaultError};
use std::collections::BTreeMap;

/// The accessor of the token a Docker secret holds (an accessor can look a token up or revoke
/// it, never use it).
pub const ACCESSOR_LABEL: &str = "io.sprocket.vault-accessor";

/// A token sprocketctl acts with. `Debug` never shows it.
pub struct Session {
    pub token: String,
    /// `admin` or `root`.
    pub kind: &'static str,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Session {{ {} token: <redacted> }}", self.kind)
    }
}

fn is_denied(e: &VaultError) -> bool {
    matches!(e, VaultError::Status { status: 403, .. })
}

/// Revokes the token behind `accessor`; one Vault no longer knows (400) is gone already.
async fn revoke_accessor(c: &VaultClient, t: &str, accessor: &str) -> Result<(), String> {
    match c
        .write(
            "auth/token/revoke-accessor",
            t,
            &json!({ "accessor": accessor }),
        )
        .await
    {
        Ok(_) | Err(VaultError::Status { status: 400, .. }) => Ok(()),
        Err(e) => Err(e.to_string()),
    }
}

/// The token to act with: the keyring's admin token (renewed on the way: every run keeps it
/// alive); else, with `bootstrap`, the root token makes one and the keyring is rewritten with it.
/// Without `bootstrap` (`plan`), the root token is used as is, read-only.
pub async fn session(
    c: &VaultClient,
    v: &sprocket_spec::model::Vault,
    k: &mut Keyring,
    bootstrap: bool,
    p: Progress,
) -> Result<Session, String> {
    if let Some(t) = &k.admin_token {
        match c.write("auth/token/renew-self", t, &json!({})).await {
            Ok(_) => {
                return Ok(Session {
                    token: t.clone(),
                    kind: "admin",
                })
            }
            Err(e) if is_denied(&e) => {
                p.say("vault: the keyring's admin token is no longer valid (expired or revoked)")
            }
            Err(e) => return Err(e.to_string()),
        }
    }
    if k.root_token.is_empty() {
        return Err(format!(
            "no usable token for Vault: the keyring's admin token is no longer valid and its root token was revoked\n  hint: `sprocketctl vault generate-root` makes a root token from the unseal keys (keyring {})",
            v.keyring.display()
        ));
    }
    let root = k.root_token.clone();
    if !bootstrap {
        return Ok(Session {
            token: root,
            kind: "root",
        });
    }
    c.call(
        Method::PUT,
        &format!("sys/policies/acl/{}", dv::ADMIN_POLICY),
        &root,
        Some(&json!({ "policy": dv::admin_policy() })),
    )
    .await
    .map_err(|e| e.to_string())?;
    let answer = c
        .write(
            "auth/token/create-orphan",
            &root,
            &json!({
                "policies": [dv::ADMIN_POLICY],
                "period": dv::ADMIN_TOKEN_PERIOD,
                "display_name": "sprocketctl-admin",
                "renewable": true,
            }),
        )
        .await
        .map_err(|e| e.to_string())?;
    let token = answer
        .as_ref()
        .and_then(|a| a.pointer("/auth/client_token"))
        .and_then(Value::as_str)
        .ok_or("Vault issued no admin token (auth/token/create-orphan answered without one)")?
        .to_string();
    k.admin_token = Some(token.clone());
    k.save(&v.keyring, &v.recipients).map_err(|e| {
        format!("the admin token was made but the keyring could not be rewritten: {e}")
    })?;
    p.say(format!(
        "vault: admin token made (policy {}, renewed by every run) and kept in the keyring; `sprocketctl vault revoke-root` retires the root token",
        dv::ADMIN_POLICY
    ));
    Ok(Session {
        token,
        kind: "admin",
    })
}

fn mount_of(v: &Value) -> ObservedMount {
    ObservedMount {
        kind: v["type"].as_str().unwrap_or_default().to_string(),
        version: v
            .pointer("/options/version")
            .and_then(Value::as_str)
            .map(str::to_string),
        description: v["description"].as_str().unwrap_or_default().to_string(),
    }
}

fn keys(v: Option<Value>) -> Vec<String> {
    v.and_then(|d| d.get("keys").cloned())
        .and_then(|k| serde_json::from_value(k).ok())
        .unwrap_or_default()
}

/// Token secrets by service: the Docker secrets labelled as a service's token.
pub fn token_secrets(secrets: &[ObservedObject]) -> BTreeMap<String, Vec<&ObservedObject>> {
    let mut out: BTreeMap<String, Vec<&ObservedObject>> = BTreeMap::new();
    for s in secrets {
        if let Some(svc) = s
            .label(L::NAME)
            .and_then(|n| n.strip_prefix(sprocket_desired::contract::TOKEN_SECRET_PREFIX))
        {
            out.entry(svc.to_string()).or_default().push(s);
        }
    }
    out
}

/// What Vault holds of what we manage, plus the services' current token secrets (service →
/// the secret holding a live token, when one does).
pub async fn observe(
    c: &VaultClient,
    t: &str,
    secrets: &[ObservedObject],
) -> Result<(ObservedVault, BTreeMap<String, ObservedObject>), VaultError> {
    let mut o = ObservedVault::default();
    if let Some(Value::Object(m)) = c.read("sys/mounts", t).await? {
        o.mounts = m.iter().map(|(k, v)| (k.clone(), mount_of(v))).collect();
    }
    if let Some(Value::Object(m)) = c.read("sys/auth", t).await? {
        o.auth = m.iter().map(|(k, v)| (k.clone(), mount_of(v))).collect();
    }
    for name in keys(c.read("sys/policies/acl?list=true", t).await?) {
        if name == "root" {
            continue;
        }
        if let Some(d) = c.read(&format!("sys/policies/acl/{name}"), t).await? {
            o.policies
                .insert(name, d["policy"].as_str().unwrap_or_default().to_string());
        }
    }
    if let Some(r) = c
        .read(&format!("auth/token/roles/{}", dv::TOKEN_ROLE), t)
        .await?
    {
        o.token_role = Some(TokenRole {
            name: dv::TOKEN_ROLE.into(),
            allowed_policies_glob: serde_json::from_value(r["allowed_policies_glob"].clone())
                .unwrap_or_default(),
            token_period_s: r["token_period"].as_u64().unwrap_or(0),
            orphan: r["orphan"].as_bool().unwrap_or(false),
            renewable: r["renewable"].as_bool().unwrap_or(false),
        });
    }
    o.github_plugin = o.auth.values().any(|m| m.kind == "github")
        || keys(c.read("sys/plugins/catalog/auth?list=true", t).await?)
            .iter()
            .any(|k| k == "github");
    if o.auth.get("github/").is_some_and(|m| m.kind == "github") {
        if let Some(cfg) = c.read("auth/github/config", t).await? {
            let mut teams = BTreeMap::new();
            for team in keys(c.read("auth/github/map/teams?list=true", t).await?) {
                if let Some(d) = c.read(&format!("auth/github/map/teams/{team}"), t).await? {
                    teams.insert(team, d["value"].as_str().unwrap_or_default().to_string());
                }
            }
            o.github = Some(GithubConfig {
                organization: cfg["organization"].as_str().unwrap_or_default().to_string(),
                organization_id: cfg["organization_id"].as_u64().filter(|i| *i != 0),
                base_url: cfg["base_url"]
                    .as_str()
                    .filter(|s| !s.is_empty())
                    .map(str::to_string),
                teams,
            });
        }
    }
    let mut current = BTreeMap::new();
    for (svc, versions) in token_secrets(secrets) {
        let mut state = None;
        for s in versions {
            let Some(acc) = s.label(ACCESSOR_LABEL) else {
                continue;
            };
            match c
                .write("auth/token/lookup-accessor", t, &json!({ "accessor": acc }))
                .await
            {
                Ok(Some(a)) => {
                    state = Some(TokenState::Valid {
                        accessor: acc.to_string(),
                        ttl_s: a.pointer("/data/ttl").and_then(Value::as_u64).unwrap_or(0),
                        policies: serde_json::from_value(a["data"]["policies"].clone())
                            .unwrap_or_default(),
                    });
                    current.insert(svc.clone(), s.clone());
                    break;
                }
                Ok(None) | Err(VaultError::Status { status: 400, .. }) => {
                    state.get_or_insert(TokenState::Gone {
                        accessor: acc.to_string(),
                    });
                }
                Err(e) => return Err(e),
            }
        }
        if let Some(st) = state {
            o.tokens.insert(svc, st);
        }
    }
    Ok((o, current))
}

/// What an apply did.
#[derive(Debug, Default, serde::Serialize)]
pub struct Applied {
    pub changes: Vec<VaultChange>,
    pub blocked: Vec<VaultChange>,
}

/// Carries out `plan`. Service tokens become Docker secrets; `refs` learns their names.
#[allow(clippy::too_many_arguments)]
pub async fn apply(
    c: &VaultClient,
    t: &str,
    d: &VaultConfig,
    plan: &VaultPlan,
    prune: bool,
    desired: &DesiredState,
    engine: &Engine,
    secrets: &[ObservedObject],
    refs: &mut sprocket_docker::Refs,
    p: Progress,
) -> Result<Applied, String> {
    let mut out = Applied::default();
    let e = |e: VaultError| e.to_string();
    let steps = plan
        .changes
        .iter()
        .chain(if prune { plan.prune.iter() } else { [].iter() });
    for ch in steps {
        if ch.action == VaultAction::Blocked {
            out.blocked.push(ch.clone());
            continue;
        }
        let n = ch.name.as_str();
        match (ch.kind, ch.action) {
            (VaultKind::Mount, _) => {
                let m = d
                    .mounts
                    .iter()
                    .find(|m| m.path == n)
                    .expect("plan follows desired");
                c.write(
                    &format!("sys/mounts/{}", n.trim_end_matches('/')),
                    t,
                    &json!({ "type": m.kind, "options": { "version": m.version }, "description": dv::MOUNT_DESCRIPTION }),
                )
                .await
                .map_err(e)?;
            }
            (VaultKind::Policy, VaultAction::Delete) => {
                c.delete(&format!("sys/policies/acl/{n}"), t)
                    .await
                    .map_err(e)?;
            }
            (VaultKind::Policy, _) => {
                c.call(
                    Method::PUT,
                    &format!("sys/policies/acl/{n}"),
                    t,
                    Some(&json!({ "policy": d.policies[n] })),
                )
                .await
                .map_err(e)?;
            }
            (VaultKind::TokenRole, _) => {
                let r = &d.token_role;
                c.write(
                    &format!("auth/token/roles/{}", r.name),
                    t,
                    &json!({
                        "allowed_policies_glob": r.allowed_policies_glob,
                        "orphan": r.orphan,
                        "renewable": r.renewable,
                        "token_period": format!("{}s", r.token_period_s),
                        "token_type": "service",
                    }),
                )
                .await
                .map_err(e)?;
            }
            (VaultKind::Auth, _) => {
                c.write(
                    &format!("sys/auth/{}", n.trim_end_matches('/')),
                    t,
                    &json!({ "type": "github", "description": dv::MOUNT_DESCRIPTION }),
                )
                .await
                .map_err(e)?;
            }
            (VaultKind::GithubConfig, _) => {
                let g = d.github.as_ref().expect("plan follows desired");
                let mut body = json!({ "organization": g.organization });
                if let Some(id) = g.organization_id {
                    body["organization_id"] = json!(id);
                }
                if let Some(u) = &g.base_url {
                    body["base_url"] = json!(u);
                }
                c.write("auth/github/config", t, &body).await.map_err(e)?;
            }
            (VaultKind::GithubTeam, VaultAction::Delete) => {
                c.delete(&format!("auth/github/map/teams/{n}"), t)
                    .await
                    .map_err(e)?;
            }
            (VaultKind::GithubTeam, _) => {
                let g = d.github.as_ref().expect("plan follows desired");
                c.write(
                    &format!("auth/github/map/teams/{n}"),
                    t,
                    &json!({ "value": g.teams[n] }),
                )
                .await
                .map_err(e)?;
            }
            (VaultKind::ServiceToken, VaultAction::Delete) => {
                // Its secret goes with its service, after the layers (`--prune`).
                for s in token_secrets(secrets).remove(n).unwrap_or_default() {
                    if let Some(acc) = s.label(ACCESSOR_LABEL) {
                        revoke_accessor(c, t, acc).await?;
                    }
                }
            }
            (VaultKind::ServiceToken, _) => {
                let token = d
                    .tokens
                    .iter()
                    .find(|x| x.service == n)
                    .expect("plan follows desired");
                let secret = desired
                    .layers
                    .iter()
                    .flat_map(|l| &l.secrets)
                    .find(|s| s.name == token.secret)
                    .expect("desired state declares every token secret");
                let answer = c
                    .write(
                        &format!("auth/token/create/{}", dv::TOKEN_ROLE),
                        t,
                        &json!({
                            "policies": [token.policy],
                            "display_name": format!("{}-{}", desired.namespace, token.service),
                            "meta": { "service": token.service, "namespace": desired.namespace },
                        }),
                    )
                    .await
                    .map_err(e)?;
                let auth = answer.as_ref().and_then(|a| a.get("auth"));
                let (Some(value), Some(accessor)) = (
                    auth.and_then(|a| a["client_token"].as_str()),
                    auth.and_then(|a| a["accessor"].as_str()),
                ) else {
                    return Err(format!("Vault issued no token for `{n}`"));
                };
                let name = format!("{}-{}", secret.prefix, short_hash(accessor.as_bytes()));
                let mut labels = secret.labels.clone();
                labels.insert(ACCESSOR_LABEL.into(), accessor.to_string());
                let id = engine
                    .create_secret(&name, &labels, value.as_bytes())
                    .await
                    .map_err(|e| e.to_string())?;
                // The token it replaces (if any) is retired now: one live token per service.
                for old in token_secrets(secrets).remove(n).unwrap_or_default() {
                    if let Some(acc) = old.label(ACCESSOR_LABEL) {
                        revoke_accessor(c, t, acc).await?;
                    }
                }
                refs.secrets.insert(token.secret.clone(), (name, id));
                p.say(format!(
                    "  vault token for {n}: issued (policy {}, accessor {})",
                    token.policy,
                    &accessor[..accessor.len().min(8)]
                ));
            }
        }
        if ch.kind != VaultKind::ServiceToken {
            p.say(format!(
                "  vault {} {}: {}",
                ch.kind,
                ch.name,
                match ch.action {
                    VaultAction::Create => "created",
                    VaultAction::Update => "updated",
                    VaultAction::Delete => "removed",
                    VaultAction::Blocked => "blocked",
                }
            ));
        }
        out.changes.push(ch.clone());
    }
    for b in &out.blocked {
        p.say(format!(
            "  vault {} {}: blocked: {}",
            b.kind,
            b.name,
            b.detail.as_deref().unwrap_or("")
        ));
    }
    Ok(out)
}

/// Vault's configuration compared, or why it was not.
#[derive(serde::Serialize, Default)]
pub struct Comparison {
    /// Where Vault was reached.
    pub address: String,
    /// Its seal status, when it answered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seal: Option<sprocket_vault::SealStatus>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plan: Option<VaultPlan>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// Reads Vault and diffs it against the spec's configuration (`plan`, `status`). Changes nothing
/// but the admin token's own renewal.
pub async fn compare(
    p: &sprocket_spec::model::Platform,
    desired: &DesiredState,
    secrets: &[ObservedObject],
    a: &crate::commands::VaultAccess,
) -> Option<Comparison> {
    let d = desired.vault.as_ref()?;
    let v = p.vault.as_ref()?;
    let Some(c) = crate::vault_lifecycle::client(p, a.vault_addr.as_deref()) else {
        return Some(Comparison {
            note: Some("Vault has no route to reach it by: pass --vault-addr".into()),
            ..Default::default()
        });
    };
    let seal = c.seal_status().await.ok();
    let mut out = Comparison {
        address: c.address(),
        seal: seal.clone(),
        ..Default::default()
    };
    let mut note = |n: String| {
        out.note = Some(n);
        Some(std::mem::take(&mut out))
    };
    match seal {
        None => {
            return note(
                "not reachable: not compared (`up` configures Vault once its layer runs)".into(),
            )
        }
        Some(s) if !s.initialized => {
            return note("not initialised: `up` initialises and configures it".into())
        }
        Some(s) if s.sealed => return note("sealed: not compared".into()),
        Some(_) => {}
    }
    let mut k = match crate::vault_lifecycle::open_keyring(v, a.identity.as_deref()) {
        Ok(k) => k,
        Err(e) => {
            return note(format!(
                "not compared: {}",
                e.to_string().lines().next().unwrap_or_default()
            ))
        }
    };
    let quiet = crate::output::Progress { enabled: false };
    let s = match session(&c, v, &mut k, false, quiet).await {
        Ok(s) => s,
        Err(e) => return note(format!("not compared: {e}")),
    };
    match observe(&c, &s.token, secrets).await {
        Ok((o, _)) => {
            out.plan = Some(sprocket_desired::vault::plan(d, &o));
            Some(out)
        }
        Err(e) => note(format!("not compared: {e}")),
    }
}

/// What a root-token command did. Fingerprints only.
#[derive(Debug, serde::Serialize)]
pub struct RootReport {
    pub action: String,
    /// 12 hex digits of SHA-256 of the new root token.
    pub root_token_fingerprint: Option<String>,
    pub admin_token: bool,
}

/// Revokes the keyring's root token, after making sure the admin token works (so `up` keeps
/// working), and drops it from the keyring.
pub async fn revoke_root(
    c: &VaultClient,
    v: &sprocket_spec::model::Vault,
    k: &mut Keyring,
    p: Progress,
) -> Result<RootReport, String> {
    let s = session(c, v, k, true, p).await?;
    debug_assert_eq!(s.kind, "admin");
    if k.root_token.is_empty() {
        return Ok(RootReport {
            action: "already revoked".into(),
            root_token_fingerprint: None,
            admin_token: true,
        });
    }
    match c
        .write("auth/token/revoke-self", &k.root_token, &json!({}))
        .await
    {
        Ok(_) => {}
        // Already gone (revoked by someone else): drop it all the same.
        Err(e) if is_denied(&e) => {}
        Err(e) => return Err(e.to_string()),
    }
    k.root_token.clear();
    k.save(&v.keyring, &v.recipients).map_err(|e| {
        format!("the root token was revoked but the keyring could not be rewritten: {e}")
    })?;
    p.say(
        "vault: root token revoked and removed from the keyring; `up` works with the admin token",
    );
    Ok(RootReport {
        action: "revoked".into(),
        root_token_fingerprint: None,
        admin_token: true,
    })
}

/// Makes a new root token from the unseal keys: OpenBao's authenticated
/// `sys/generate-root-token` (with the admin token), else Vault's `sys/generate-root`. The token
/// comes back XOR-encoded with a one-time password that never leaves this process.
pub async fn generate_root(
    c: &VaultClient,
    v: &sprocket_spec::model::Vault,
    k: &mut Keyring,
    p: Progress,
) -> Result<RootReport, String> {
    // The admin token (renewed on the way), else the root token.
    let token = session(c, v, k, false, p).await?.token;
    let mut base = "sys/generate-root-token";
    let _ = c.delete(&format!("{base}/attempt"), &token).await;
    let start = match c
        .call(
            Method::PUT,
            &format!("{base}/attempt"),
            &token,
            Some(&json!({})),
        )
        .await
    {
        Ok(Some(a)) => a,
        // Not there (HashiCorp Vault, OpenBao before 2.6): the unauthenticated endpoints.
        Ok(None) | Err(VaultError::Status { status: 405, .. }) => {
            // HashiCorp Vault (or OpenBao before 2.6): the unauthenticated endpoints.
            base = "sys/generate-root";
            let _ = c.delete(&format!("{base}/attempt"), &token).await;
            c.call(Method::PUT, &format!("{base}/attempt"), &token, Some(&json!({})))
                .await
                .map_err(|e| format!("{e}\n  hint: OpenBao before 2.6 and Vault need `disable_unauthed_generate_root_endpoints = false` on the listener while a root token is generated"))?
                .ok_or("Vault answered no generate-root attempt")?
        }
        Err(e) => return Err(e.to_string()),
    };
    let data = start.get("data").cloned().unwrap_or(start.clone());
    let nonce = data["nonce"]
        .as_str()
        .ok_or("generate-root: no nonce")?
        .to_string();
    let otp = data["otp"]
        .as_str()
        .ok_or("generate-root: no one-time password")?
        .to_string();
    p.say(format!(
        "vault: generating a root token from {} unseal keys",
        k.threshold
    ));
    let mut encoded = None;
    for key in &k.unseal_keys_b64 {
        let r = c
            .call(
                Method::PUT,
                &format!("{base}/update"),
                &token,
                Some(&json!({ "key": key, "nonce": nonce })),
            )
            .await
            .map_err(|e| e.to_string())?
            .ok_or("generate-root: no answer to an update")?;
        let d = r.get("data").cloned().unwrap_or(r);
        if d["complete"].as_bool() == Some(true) {
            encoded = d["encoded_token"]
                .as_str()
                .or(d["encoded_root_token"].as_str())
                .map(str::to_string);
            break;
        }
    }
    let encoded = encoded.ok_or("generate-root did not complete with the keyring's keys")?;
    let root = decode_root(&encoded, &otp)?;
    let policies = c.token_policies(&root).await.map_err(|e| e.to_string())?;
    if !policies.iter().any(|p| p == "root") {
        return Err("the generated token is not a root token".into());
    }
    k.root_token = root;
    k.save(&v.keyring, &v.recipients).map_err(|e| {
        format!("a root token was generated but the keyring could not be rewritten: {e}")
    })?;
    p.say(
        "vault: new root token kept in the keyring (never printed; `vault revoke-root` when done)",
    );
    Ok(RootReport {
        action: "generated".into(),
        root_token_fingerprint: Some(short_hash(k.root_token.as_bytes())),
        admin_token: k.admin_token.is_some(),
    })
}

/// `encoded_token` is base64 of the token XOR the one-time password.
fn decode_root(encoded: &str, otp: &str) -> Result<String, String> {
    use base64::Engine as _;
    let raw = base64::engine::general_purpose::STANDARD_NO_PAD
        .decode(encoded.trim_end_matches('='))
        .or_else(|_| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(encoded.trim_end_matches('='))
        })
        .map_err(|e| format!("generate-root: the encoded token is not base64 ({e})"))?;
    if raw.len() != otp.len() {
        return Err(format!(
            "generate-root: encoded token of {} bytes for a one-time password of {}",
            raw.len(),
            otp.len()
        ));
    }
    String::from_utf8(raw.iter().zip(otp.bytes()).map(|(a, b)| a ^ b).collect())
        .map_err(|_| "generate-root: the decoded token is not text".into())
}

#[cfg(test)]
mod tests {
    #[test]
    fn decodes_an_otp_encoded_token() {
        use base64::Engine as _;
        let otp = "Ly0jdobK4iVeNCjMdVSGKeGZDr";
        let token = "s.abcdefghijklmnopqrstuvwx";
        let enc: Vec<u8> = token.bytes().zip(otp.bytes()).map(|(a, b)| a ^ b).collect();
        let b64 = base64::engine::general_purpose::STANDARD.encode(enc);
        assert_eq!(super::decode_root(&b64, otp).unwrap(), token);
        assert!(super::decode_root(&b64, "short").is_err());
    }
}
