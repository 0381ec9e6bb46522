//! Vault's declarative configuration: what `up` makes Vault hold (mounts, policies, auth
//! methods, the services' token role and tokens), and the diff against what it holds. Pure: the
//! CLI's Vault adapter fills [`ObservedVault`] and carries out the [`VaultPlan`].
//!
//! Derived, not written: one least-privilege policy per service from the paths it reads; a
//! token role that can only issue those policies, as orphan periodic tokens (revoking the admin
//! token does not take the services' tokens with it); sprocketctl's own admin policy, which
//! manages configuration and the platform's secrets (its namespace under the derived
//! `sprocket/` mount, and each `vault_path` the spec names) and reads no other secret.
//!
//! Ownership lives in Vault itself: every policy we write starts with [`MARKER`], every mount
//! and auth method we enable carries it as its description. Nothing else is changed or deleted.

use crate::state::token_secret;
use serde::Serialize;
use sprocket_spec::model::{KvVersion, Platform, SecretSource};
use sprocket_spec::names::SECRETS_MOUNT;
use std::collections::BTreeMap;

/// First line of every policy sprocketctl writes; the description of its mounts.
pub const MARKER: &str = "# managed by sprocketctl";
pub const MOUNT_DESCRIPTION: &str = "managed by sprocketctl";
/// The token role services' tokens are issued against.
pub const TOKEN_ROLE: &str = "sprocket-services";
pub const ADMIN_POLICY: &str = sprocket_spec::names::ADMIN_POLICY;
/// Period of sprocketctl's admin token: every command that uses it renews it.
pub const ADMIN_TOKEN_PERIOD: &str = "768h";

/// What the backups' token reads: `GET /v1/sys/storage/raft/snapshot`.
pub const BACKUP_SNAPSHOT_PATH: &str = "sys/storage/raft/snapshot";

pub fn service_policy(short_service: &str) -> String {
    format!(
        "{}{short_service}",
        sprocket_spec::names::RESERVED_POLICY_PREFIX
    )
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct VaultConfig {
    pub mounts: Vec<MountSpec>,
    /// Name → HCL text (admin, team and service policies).
    pub policies: BTreeMap<String, String>,
    pub github: Option<GithubConfig>,
    pub token_role: TokenRole,
    /// One per service that reads Vault.
    pub tokens: Vec<ServiceToken>,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct MountSpec {
    /// With the trailing slash, as Vault lists mounts (`platform/`).
    pub path: String,
    /// `kv`.
    pub kind: String,
    /// KV version: `1` or `2`.
    pub version: String,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct GithubConfig {
    pub organization: String,
    pub organization_id: Option<u64>,
    pub base_url: Option<String>,
    /// Team slug → comma-separated policies (Vault's own form).
    pub teams: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct TokenRole {
    pub name: String,
    pub allowed_policies_glob: Vec<String>,
    pub token_period_s: u64,
    pub orphan: bool,
    pub renewable: bool,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ServiceToken {
    /// The service's spec name.
    pub service: String,
    pub policy: String,
    /// Logical name of its Docker secret.
    pub secret: String,
}

/// The configuration of the platform's Vault, if it has one.
pub fn config(p: &Platform) -> Option<VaultConfig> {
    let v = p.vault.as_ref()?;
    let mounts = v
        .mounts
        .iter()
        .map(|m| MountSpec {
            path: format!("{}/", m.path),
            kind: "kv".into(),
            version: match m.kind {
                KvVersion::V1 => "1".into(),
                KvVersion::V2 => "2".into(),
            },
        })
        .chain(std::iter::once(MountSpec {
            // sprocketctl's own mount for the platform's secrets (`sprocket/<namespace>/…`).
            path: format!("{SECRETS_MOUNT}/"),
            kind: "kv".into(),
            version: "2".into(),
        }))
        .collect::<Vec<_>>();
    let mut policies = BTreeMap::new();
    policies.insert(ADMIN_POLICY.to_string(), admin_policy(&secret_rules(p)));
    for t in &v.policies {
        let rules: Vec<(String, Vec<String>)> = t.rules.clone();
        policies.insert(
            t.name.clone(),
            hcl(&format!("team policy `{}` from the spec", t.name), &rules),
        );
    }
    let mut tokens = Vec::new();
    for (svc, paths) in &v.readers {
        let mut rules = Vec::new();
        for path in paths {
            let (mount, rest) = path.split_once('/').expect("validated: mount/path");
            match v.mounts.iter().find(|m| m.path == mount).map(|m| m.kind) {
                Some(KvVersion::V2) => {
                    rules.push((format!("{mount}/data/{rest}"), vec!["read".to_string()]));
                    rules.push((
                        format!("{mount}/metadata/{rest}"),
                        vec!["read".to_string(), "list".to_string()],
                    ));
                }
                _ => {
                    let caps = if rest.ends_with('*') {
                        vec!["read".to_string(), "list".to_string()]
                    } else {
                        vec!["read".to_string()]
                    };
                    rules.push((path.clone(), caps));
                }
            }
        }
        let policy = service_policy(svc);
        policies.insert(
            policy.clone(),
            hcl(
                &format!("service `{svc}`, derived from its `vault` paths"),
                &rules,
            ),
        );
        tokens.push(ServiceToken {
            service: svc.clone(),
            policy,
            secret: token_secret(svc),
        });
    }
    if crate::state::token_holders(p).contains(&sprocket_spec::names::BACKUP_TOKEN_HOLDER) {
        let holder = sprocket_spec::names::BACKUP_TOKEN_HOLDER;
        let policy = service_policy(holder);
        policies.insert(
            policy.clone(),
            hcl(
                "backups: Vault's raft snapshot, nothing else",
                &[(BACKUP_SNAPSHOT_PATH.to_string(), vec!["read".to_string()])],
            ),
        );
        tokens.push(ServiceToken {
            service: holder.to_string(),
            policy,
            secret: token_secret(holder),
        });
    }
    Some(VaultConfig {
        mounts,
        policies,
        github: v.github.as_ref().map(|g| GithubConfig {
            organization: g.organization.clone(),
            organization_id: g.organization_id,
            base_url: g.base_url.clone(),
            teams: g
                .teams
                .iter()
                .map(|(t, ps)| (t.clone(), ps.join(",")))
                .collect(),
        }),
        token_role: TokenRole {
            name: TOKEN_ROLE.into(),
            allowed_policies_glob: vec![format!(
                "{}*",
                sprocket_spec::names::RESERVED_POLICY_PREFIX
            )],
            token_period_s: v.token_period_s,
            orphan: true,
            renewable: true,
        },
        tokens,
    })
}

/// HCL of a policy: the ownership marker, what it is, then one block per rule.
pub fn hcl(what: &str, rules: &[(String, Vec<String>)]) -> String {
    let mut out = format!("{MARKER}: {what}\n");
    for (path, caps) in rules {
        let caps: Vec<String> = caps.iter().map(|c| format!("\"{c}\"")).collect();
        out.push_str(&format!(
            "path \"{path}\" {{\n  capabilities = [{}]\n}}\n",
            caps.join(", ")
        ));
    }
    out
}

/// What sprocketctl's admin token may do with the platform's secrets: write and read the
/// namespace's documents under `sprocket/` and each `vault_path` the spec names, read their
/// metadata (versions). Nothing else of any secrets engine.
pub fn secret_rules(p: &Platform) -> Vec<(String, Vec<String>)> {
    let ns = &p.environment.namespace;
    let caps = |c: &[&str]| c.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let mut rules = vec![
        (
            format!("{SECRETS_MOUNT}/data/{ns}/*"),
            caps(&["create", "read", "update"]),
        ),
        (
            format!("{SECRETS_MOUNT}/metadata/{ns}/*"),
            caps(&["read", "list"]),
        ),
    ];
    for s in &p.secrets {
        if s.vault_path.is_none() || s.source == SecretSource::Manual {
            continue;
        }
        let at = s.vault_location(ns);
        rules.push((
            format!("{}/data/{}", at.mount, at.path),
            caps(&["create", "read", "update"]),
        ));
        rules.push((
            format!("{}/metadata/{}", at.mount, at.path),
            caps(&["read"]),
        ));
    }
    rules
}

/// sprocketctl's own policy: configuration, services' tokens, root-token generation (which also
/// needs the unseal keys), and the platform's secrets (`secrets`, from [`secret_rules`]; none at
/// the bootstrap, which the configuration step then completes).
pub fn admin_policy(secrets: &[(String, Vec<String>)]) -> String {
    let rw = || {
        ["create", "read", "update", "delete", "list"]
            .map(String::from)
            .to_vec()
    };
    let with_sudo = || {
        let mut v = rw();
        v.push("sudo".into());
        v
    };
    let one = |c: &[&str]| c.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let rules = vec![
        ("sys/mounts".to_string(), one(&["read"])),
        ("sys/mounts/*".into(), with_sudo()),
        ("sys/auth".into(), one(&["read"])),
        ("sys/auth/*".into(), with_sudo()),
        ("sys/policies/acl".into(), one(&["list"])),
        ("sys/policies/acl/*".into(), rw()),
        (
            "sys/plugins/catalog/auth".into(),
            one(&["read", "list", "sudo"]),
        ),
        ("sys/plugins/catalog/auth/*".into(), one(&["read", "sudo"])),
        ("auth/github/*".into(), rw()),
        (format!("auth/token/roles/{TOKEN_ROLE}"), rw()),
        (
            format!("auth/token/create/{TOKEN_ROLE}"),
            one(&["create", "update"]),
        ),
        ("auth/token/lookup-accessor".into(), one(&["update"])),
        // `restore` of Vault's data from a backup (its keys come from the backup's keyring).
        (
            "sys/storage/raft/snapshot-force".into(),
            one(&["update", "sudo"]),
        ),
        ("auth/token/revoke-accessor".into(), one(&["update"])),
        ("sys/generate-root-token/*".into(), with_sudo()),
    ];
    let rules: Vec<(String, Vec<String>)> =
        rules.into_iter().chain(secrets.iter().cloned()).collect();
    hcl(
        "sprocketctl's admin token (configuration and the platform's secrets)",
        &rules,
    )
}

/// What Vault holds, read by the adapter with the admin token.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ObservedVault {
    /// `platform/` → mount.
    pub mounts: BTreeMap<String, ObservedMount>,
    /// `github/` → auth method.
    pub auth: BTreeMap<String, ObservedMount>,
    /// Name → HCL text.
    pub policies: BTreeMap<String, String>,
    pub token_role: Option<TokenRole>,
    /// Whether the server can run the `github` auth method at all.
    pub github_plugin: bool,
    pub github: Option<GithubConfig>,
    /// Service → its current token (from the Docker secret's labels, looked up by accessor).
    pub tokens: BTreeMap<String, TokenState>,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ObservedMount {
    pub kind: String,
    /// KV version (`options.version`), when it has one.
    pub version: Option<String>,
    pub description: String,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(tag = "state", rename_all = "kebab-case")]
pub enum TokenState {
    Valid {
        accessor: String,
        ttl_s: u64,
        policies: Vec<String>,
    },
    /// Expired or revoked: Vault does not know the accessor any more.
    Gone { accessor: String },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum VaultKind {
    Mount,
    Auth,
    Policy,
    TokenRole,
    GithubConfig,
    GithubTeam,
    ServiceToken,
}

impl std::fmt::Display for VaultKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            VaultKind::Mount => "mount",
            VaultKind::Auth => "auth method",
            VaultKind::Policy => "policy",
            VaultKind::TokenRole => "token role",
            VaultKind::GithubConfig => "github config",
            VaultKind::GithubTeam => "github team",
            VaultKind::ServiceToken => "service token",
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum VaultAction {
    Create,
    Update,
    Delete,
    /// Cannot be done by sprocketctl; `detail` says why and what to do.
    Blocked,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct VaultChange {
    pub kind: VaultKind,
    pub name: String,
    pub action: VaultAction,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct VaultPlan {
    /// In the order they are applied.
    pub changes: Vec<VaultChange>,
    /// Owned objects the spec no longer wants: removed only with `--prune`.
    pub prune: Vec<VaultChange>,
}

impl VaultPlan {
    /// Nothing to do (blocked items do not count: they need a person).
    pub fn is_empty(&self, prune: bool) -> bool {
        !self
            .changes
            .iter()
            .chain(if prune { self.prune.iter() } else { [].iter() })
            .any(|c| c.action != VaultAction::Blocked)
    }

    pub fn blocked(&self) -> impl Iterator<Item = &VaultChange> {
        self.changes
            .iter()
            .filter(|c| c.action == VaultAction::Blocked)
    }
}

fn change(kind: VaultKind, name: &str, action: VaultAction, detail: Option<String>) -> VaultChange {
    VaultChange {
        kind,
        name: name.to_string(),
        action,
        detail,
    }
}

/// Desired vs observed. Order: mounts, policies, token role, auth, GitHub, tokens (a token's
/// policy and role exist before it is issued).
pub fn plan(d: &VaultConfig, o: &ObservedVault) -> VaultPlan {
    use VaultAction::*;
    use VaultKind as K;
    let mut changes = Vec::new();
    let mut prune = Vec::new();
    for m in &d.mounts {
        match o.mounts.get(&m.path) {
            None => changes.push(change(K::Mount, &m.path, Create, Some(format!("kv version {}", m.version)))),
            Some(x) if x.kind != m.kind || x.version.as_deref().unwrap_or("1") != m.version => changes.push(change(
                K::Mount,
                &m.path,
                Blocked,
                Some(format!(
                    "`{}` is a {} mount{} here, the spec wants kv version {}; sprocketctl never changes a mount's type (its data would be lost): move the data and disable the mount by hand, or change the spec",
                    m.path,
                    x.kind,
                    x.version.as_ref().map(|v| format!(" (version {v})")).unwrap_or_default(),
                    m.version
                )),
            )),
            Some(_) => {}
        }
    }
    for (name, text) in &d.policies {
        match o.policies.get(name) {
            None => changes.push(change(K::Policy, name, Create, None)),
            Some(live) if live.trim_end() == text.trim_end() => {}
            Some(live) if live.starts_with(MARKER) => {
                changes.push(change(K::Policy, name, Update, Some(first_difference(live, text))))
            }
            Some(_) => changes.push(change(
                K::Policy,
                name,
                Blocked,
                Some(format!("policy `{name}` exists and was not written by sprocketctl; rename the spec's policy, or delete Vault's (`bao policy delete {name}`) to let sprocketctl manage it")),
            )),
        }
    }
    for (name, text) in &o.policies {
        if text.starts_with(MARKER) && !d.policies.contains_key(name) {
            prune.push(change(K::Policy, name, Delete, None));
        }
    }
    match &o.token_role {
        None => changes.push(change(
            K::TokenRole,
            &d.token_role.name,
            Create,
            Some(format!("period {}s", d.token_role.token_period_s)),
        )),
        Some(r) if r != &d.token_role => changes.push(change(
            K::TokenRole,
            &d.token_role.name,
            Update,
            Some(format!(
                "period {}s → {}s",
                r.token_period_s, d.token_role.token_period_s
            )),
        )),
        Some(_) => {}
    }
    if let Some(g) = &d.github {
        match o.auth.get("github/") {
            _ if !o.github_plugin => changes.push(change(
                K::Auth,
                "github/",
                Blocked,
                Some("this Vault has no `github` auth plugin (OpenBao 2.x ships it as an external plugin): register it (a `plugin \"auth\" \"github\"` block in the server config, or `bao plugin register`) and run `up` again".into()),
            )),
            Some(x) if x.kind != "github" => changes.push(change(
                K::Auth,
                "github/",
                Blocked,
                Some(format!("`github/` is a {} auth method here; disable it by hand or drop `vault.github`", x.kind)),
            )),
            existing => {
                let ours = existing.is_none_or(|x| x.description == MOUNT_DESCRIPTION);
                if !ours {
                    changes.push(change(
                        K::Auth,
                        "github/",
                        Blocked,
                        Some("`github/` was enabled by someone else; sprocketctl does not change it: disable it by hand (`bao auth disable github`) to let sprocketctl manage it, or drop `vault.github`".into()),
                    ));
                    return finish(changes, prune, d, o);
                }
                if existing.is_none() {
                    changes.push(change(K::Auth, "github/", Create, None));
                }
                let live = o.github.clone();
                let (live_cfg, live_teams) = match &live {
                    Some(l) => ((l.organization.as_str(), l.organization_id, l.base_url.as_deref()), l.teams.clone()),
                    None => (("", None, None), BTreeMap::new()),
                };
                let cfg_differs = live_cfg.0 != g.organization
                    || (g.organization_id.is_some() && live_cfg.1 != g.organization_id)
                    || live_cfg.2 != g.base_url.as_deref();
                if live.is_none() || cfg_differs {
                    changes.push(change(
                        K::GithubConfig,
                        "github/config",
                        if live.is_none() { Create } else { Update },
                        Some(format!("organization {}", g.organization)),
                    ));
                }
                for (team, ps) in &g.teams {
                    match live_teams.get(team) {
                        None => changes.push(change(K::GithubTeam, team, Create, Some(ps.clone()))),
                        Some(x) if sorted_csv(x) != sorted_csv(ps) => changes.push(change(
                            K::GithubTeam,
                            team,
                            Update,
                            Some(format!("{x} → {ps}")),
                        )),
                        Some(_) => {}
                    }
                }
                if ours {
                    for team in live_teams.keys().filter(|t| !g.teams.contains_key(*t)) {
                        prune.push(change(K::GithubTeam, team, Delete, None));
                    }
                }
            }
        }
    }
    finish(changes, prune, d, o)
}

/// The services' tokens, last: their policies and role come first.
fn finish(
    mut changes: Vec<VaultChange>,
    mut prune: Vec<VaultChange>,
    d: &VaultConfig,
    o: &ObservedVault,
) -> VaultPlan {
    use VaultAction::*;
    use VaultKind as K;
    for t in &d.tokens {
        match o.tokens.get(&t.service) {
            None => changes.push(change(K::ServiceToken, &t.service, Create, Some(format!("policy {}", t.policy)))),
            Some(TokenState::Gone { .. }) => changes.push(change(
                K::ServiceToken,
                &t.service,
                Create,
                Some("the current token expired or was revoked: a new one is issued and the service restarts with it".into()),
            )),
            Some(TokenState::Valid { policies, .. }) if !policies.contains(&t.policy) => changes.push(change(
                K::ServiceToken,
                &t.service,
                Create,
                Some(format!("the current token lacks policy {}", t.policy)),
            )),
            Some(_) => {}
        }
    }
    for s in o.tokens.keys() {
        if !d.tokens.iter().any(|t| &t.service == s) {
            prune.push(change(K::ServiceToken, s, Delete, Some("revoke".into())));
        }
    }
    VaultPlan { changes, prune }
}

fn sorted_csv(s: &str) -> Vec<&str> {
    let mut v: Vec<&str> = s
        .split(',')
        .map(str::trim)
        .filter(|x| !x.is_empty())
        .collect();
    v.sort();
    v
}

/// The first line that differs, for a plan that says what changes without a full diff.
fn first_difference(live: &str, want: &str) -> String {
    let mut l = live.lines();
    let mut w = want.lines();
    loop {
        match (l.next(), w.next()) {
            (Some(a), Some(b)) if a.trim() == b.trim() => continue,
            (None, Some(b)) => return format!("adds `{}`", b.trim()),
            (Some(a), None) => return format!("drops `{}`", a.trim()),
            (a, b) => {
                return format!(
                    "`{}` → `{}`",
                    a.unwrap_or_default().trim(),
                    b.unwrap_or_default().trim()
                )
            }
        }
    }
}
