//! Vault's declarative configuration, carried out: read what Vault holds into
//! [`ObservedVault`], apply a [`VaultPlan`] (computed by the pure `desired::vault`), and compare
//! the two for `plan` and `status`. What is sent to Vault, and how its answers are shaped, is the
//! Vault adapter's business (`sprocket_vault::api`); this module maps its typed answers onto the
//! desired state's types, turns plan steps into its calls, and makes Docker secrets of tokens.
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
use sprocket_desired::labels as L;
use sprocket_desired::plan::ObservedObject;
use sprocket_desired::state::{short_hash, DesiredState};
use sprocket_desired::vault::{
    self as dv, GithubConfig, ObservedMount, ObservedVault, TokenRole, TokenState, VaultAction,
    VaultChange, VaultConfig, VaultKind, VaultPlan,
};
use sprocket_docker::{Engine, EngineError};
use sprocket_vault::api::{self, OrphanRequest, TokenRequest};
use sprocket_vault::{Keyring, KeyringError, VaultClient, VaultError};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum VaultConfigError {
    #[error(transparent)]
    Vault(#[from] VaultError),
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error("no usable token for Vault: the keyring's admin token is no longer valid and its root token was revoked\n  hint: `sprocketctl vault generate-root` makes a root token from the unseal keys (keyring {})", keyring.display())]
    NoUsableToken { keyring: PathBuf },
    /// `done`: what was done in Vault that the keyring now fails to record.
    #[error("{done} but the keyring could not be rewritten: {source}")]
    KeyringNotRewritten {
        done: &'static str,
        source: KeyringError,
    },
}

/// apply.rs's Vault step still returns `Result<_, String>`; this keeps its `?` working until
/// its errors are typed too.
impl From<VaultConfigError> for String {
    fn from(e: VaultConfigError) -> String {
        e.to_string()
    }
}

/// The accessor of the token a Docker secret holds (an accessor can look a token up or revoke
/// it, never use it).
pub const ACCESSOR_LABEL: &str = "io.sprocket.vault-accessor";

/// Which token a [`Session`] acts with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionKind {
    /// sprocketctl's scoped admin token (policy `sprocketctl-admin`).
    Admin,
    /// The root token (`plan` before the admin token exists; break-glass work).
    Root,
}

impl std::fmt::Display for SessionKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            SessionKind::Admin => "admin",
            SessionKind::Root => "root",
        })
    }
}

/// A token sprocketctl acts with. `Debug` never shows it.
pub struct Session {
    pub token: String,
    pub kind: SessionKind,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Session {{ {} token: <redacted> }}", self.kind)
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
) -> Result<Session, VaultConfigError> {
    if let Some(t) = &k.admin_token {
        match c.with_token(t).renew_self().await {
            Ok(()) => {
                return Ok(Session {
                    token: t.clone(),
                    kind: SessionKind::Admin,
                })
            }
            Err(e) if e.status() == Some(403) => {
                p.say("vault: the keyring's admin token is no longer valid (expired or revoked)")
            }
            Err(e) => return Err(e.into()),
        }
    }
    if k.root_token.is_empty() {
        return Err(VaultConfigError::NoUsableToken {
            keyring: v.keyring.clone(),
        });
    }
    let root = k.root_token.clone();
    // The bootstrap rewrites the keyring: refused before anything is made in Vault when the
    // spec's recipients are not the ones it is encrypted to.
    if bootstrap {
        k.check_recipients(&v.keyring, &v.recipients)
            .map_err(|source| VaultConfigError::KeyringNotRewritten {
                done: "nothing was done in Vault",
                source,
            })?;
    }
    if !bootstrap {
        return Ok(Session {
            token: root,
            kind: SessionKind::Root,
        });
    }
    let api = c.with_token(&root);
    api.put_policy(dv::ADMIN_POLICY, &dv::admin_policy(&[]))
        .await?;
    let issued = api
        .create_orphan(&OrphanRequest {
            policies: &[dv::ADMIN_POLICY.to_string()],
            period: dv::ADMIN_TOKEN_PERIOD,
            display_name: "sprocketctl-admin",
        })
        .await?;
    let before = k.admin_token.replace(issued.token.clone());
    if let Err(source) = k.save(&v.keyring, &v.recipients) {
        // Not kept: revoked, never left alive with nobody holding it (the next run makes one).
        k.admin_token = before;
        if let Err(r) = c.with_token(&issued.token).revoke_self().await {
            p.say(format!("vault: the admin token just made could not be revoked ({r}): nobody holds it; revoke it by its accessor"));
        }
        return Err(VaultConfigError::KeyringNotRewritten {
            done: "the admin token was made (and revoked again)",
            source,
        });
    }
    p.say(format!(
        "vault: admin token made (policy {}, renewed by every run) and kept in the keyring; `sprocketctl vault revoke-root` retires the root token",
        dv::ADMIN_POLICY
    ));
    Ok(Session {
        token: issued.token,
        kind: SessionKind::Admin,
    })
}

fn observed_mount(m: api::Mount) -> ObservedMount {
    ObservedMount {
        kind: m.kind,
        version: m.version,
        description: m.description,
    }
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
    let api = c.with_token(t);
    let observed = |table: BTreeMap<String, api::Mount>| {
        table
            .into_iter()
            .map(|(path, m)| (path, observed_mount(m)))
            .collect()
    };
    let mut o = ObservedVault {
        mounts: observed(api.mounts().await?),
        auth: observed(api.auth_methods().await?),
        ..Default::default()
    };
    for name in api.policy_names().await? {
        if name == "root" {
            continue;
        }
        if let Some(hcl) = api.policy(&name).await? {
            o.policies.insert(name, hcl);
        }
    }
    if let Some(r) = api.token_role(dv::TOKEN_ROLE).await? {
        o.token_role = Some(TokenRole {
            name: dv::TOKEN_ROLE.into(),
            allowed_policies_glob: r.allowed_policies_glob,
            token_period_s: r.token_period_s,
            orphan: r.orphan,
            renewable: r.renewable,
        });
    }
    o.github_plugin = o.auth.values().any(|m| m.kind == "github")
        || api.auth_plugins().await?.iter().any(|k| k == "github");
    if o.auth.get("github/").is_some_and(|m| m.kind == "github") {
        if let Some(cfg) = api.github_config().await? {
            let mut teams = BTreeMap::new();
            for team in api.github_teams().await? {
                if let Some(policies) = api.github_team(&team).await? {
                    teams.insert(team, policies);
                }
            }
            o.github = Some(GithubConfig {
                organization: cfg.organization,
                organization_id: cfg.organization_id,
                base_url: cfg.base_url,
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
            match api.lookup_accessor(acc).await? {
                Some(info) => {
                    state = Some(TokenState::Valid {
                        accessor: acc.to_string(),
                        ttl_s: info.ttl_s,
                        policies: info.policies,
                    });
                    current.insert(svc.clone(), s.clone());
                    break;
                }
                None => {
                    state.get_or_insert(TokenState::Gone {
                        accessor: acc.to_string(),
                    });
                }
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
) -> Result<Applied, VaultConfigError> {
    let api = c.with_token(t);
    let mut out = Applied::default();
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
                api.enable_mount(
                    n.trim_end_matches('/'),
                    &m.kind,
                    &m.version,
                    dv::MOUNT_DESCRIPTION,
                )
                .await?;
            }
            (VaultKind::Policy, VaultAction::Delete) => api.delete_policy(n).await?,
            (VaultKind::Policy, _) => api.put_policy(n, &d.policies[n]).await?,
            (VaultKind::TokenRole, _) => {
                let r = &d.token_role;
                let role = api::TokenRole {
                    allowed_policies_glob: r.allowed_policies_glob.clone(),
                    token_period_s: r.token_period_s,
                    orphan: r.orphan,
                    renewable: r.renewable,
                };
                api.put_token_role(&r.name, &role).await?;
            }
            (VaultKind::Auth, _) => {
                api.enable_auth(n.trim_end_matches('/'), "github", dv::MOUNT_DESCRIPTION)
                    .await?
            }
            (VaultKind::GithubConfig, _) => {
                let g = d.github.as_ref().expect("plan follows desired");
                api.put_github_config(&api::GithubConfig {
                    organization: g.organization.clone(),
                    organization_id: g.organization_id,
                    base_url: g.base_url.clone(),
                })
                .await?;
            }
            (VaultKind::GithubTeam, VaultAction::Delete) => api.delete_github_team(n).await?,
            (VaultKind::GithubTeam, _) => {
                let g = d.github.as_ref().expect("plan follows desired");
                api.put_github_team(n, &g.teams[n]).await?;
            }
            (VaultKind::ServiceToken, VaultAction::Delete) => {
                // Its secret goes with its service, after the layers (`--prune`).
                for s in token_secrets(secrets).remove(n).unwrap_or_default() {
                    if let Some(acc) = s.label(ACCESSOR_LABEL) {
                        api.revoke_accessor(acc).await?;
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
                let meta = BTreeMap::from([
                    ("service".to_string(), token.service.clone()),
                    ("namespace".to_string(), desired.namespace.clone()),
                ]);
                let issued = api
                    .create_token(
                        dv::TOKEN_ROLE,
                        &TokenRequest {
                            policies: std::slice::from_ref(&token.policy),
                            display_name: &format!("{}-{}", desired.namespace, token.service),
                            meta: &meta,
                        },
                    )
                    .await?;
                let accessor = issued.accessor.as_str();
                let name = format!("{}-{}", secret.prefix, short_hash(accessor.as_bytes()));
                let mut labels = secret.labels.clone();
                labels.insert(ACCESSOR_LABEL.into(), accessor.to_string());
                let id = match engine
                    .create_secret(&name, &labels, issued.token.as_bytes())
                    .await
                {
                    Ok(id) => id,
                    Err(e) => {
                        // Not kept anywhere: revoked, never left alive (the next run reissues).
                        if let Err(r) = api.revoke_accessor(accessor).await {
                            p.say(format!("  vault token for {n}: could not be revoked after its secret failed ({r}); revoke it by hand (its accessor starts with {})", &accessor[..accessor.len().min(8)]));
                        }
                        return Err(e.into());
                    }
                };
                // The token it replaces (if any) is retired now: one live token per service.
                for old in token_secrets(secrets).remove(n).unwrap_or_default() {
                    if let Some(acc) = old.label(ACCESSOR_LABEL) {
                        api.revoke_accessor(acc).await?;
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
/// but the admin token's own renewal. `identity` opens the keyring (else the default one);
/// `addr` reaches Vault (else its route).
pub async fn compare(
    p: &sprocket_spec::model::Platform,
    desired: &DesiredState,
    secrets: &[ObservedObject],
    identity: Option<&Path>,
    addr: Option<&str>,
    docker_root: &Path,
) -> Option<Comparison> {
    let d = desired.vault.as_ref()?;
    let v = p.vault.as_ref()?;
    let Some(c) = crate::vault_lifecycle::client(p, addr, docker_root) else {
        return Some(Comparison {
            note: Some(
                "Vault's service does not run in this environment: pass --vault-addr".into(),
            ),
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
    let mut k = match crate::vault_lifecycle::open_keyring(v, identity) {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_never_shows_its_token() {
        let s = Session {
            token: "s.admin-secret".into(),
            kind: SessionKind::Admin,
        };
        assert_eq!(format!("{s:?}"), "Session { admin token: <redacted> }");
    }
}
