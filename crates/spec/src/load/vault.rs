//! The `vault` section: shares and threshold, the keyring and its recipients, the token period,
//! and Vault's own configuration (mounts, team policies, GitHub login).
//!
//! Apart from the services because it is one per platform and validated once, after the
//! services are resolved: which services read Vault (and so get tokens) is known only then.
//! `file:` recipients are the only files read here, through the injected [`Files`], which also
//! says what `~/` stands for.

use super::suggest::suggest;
use super::{pos, Effective, Files, Resolver};
use crate::model;
use crate::names::{ADMIN_POLICY, RESERVED_POLICY_PREFIX};
use crate::raw::{self, Role, S};
use crate::values;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

impl<'a> Resolver<'a> {
    /// The `vault` section, with the environment's overrides, for the Vault service that runs
    /// here (none when it is disabled).
    pub(super) fn vault(
        &mut self,
        eff: &Effective<'a>,
        layers: &[model::Layer],
        namespace: &str,
    ) -> Option<model::Vault> {
        let base = self.spec.vault.as_ref()?;
        let service = layers
            .iter()
            .flat_map(|l| &l.services)
            .find(|s| s.role == Some(Role::Vault))
            .map(|s| s.name.clone());
        let any_vault = self.spec.layers.iter().any(|(_, l)| {
            l.services
                .iter()
                .any(|(_, s)| s.role.as_ref().map(|r| r.value) == Some(Role::Vault))
        });
        if !any_vault {
            self.err(
                "vault-without-service",
                pos(base),
                "the spec has a `vault` section but no service with `role: vault`",
            )
            .help = Some("mark the Vault/OpenBao service with `role: vault`".into());
            return None;
        }
        let over = eff.vault.map(|v| &v.value);
        let shares = base
            .value
            .shares
            .as_ref()
            .map(|s| (s.value, pos(s)))
            .unwrap_or((5, pos(base)));
        let threshold = base
            .value
            .threshold
            .as_ref()
            .map(|s| (s.value, pos(s)))
            .unwrap_or((3, pos(base)));
        if shares.0 == 0 || shares.0 > 255 {
            self.err(
                "invalid-vault-shares",
                shares.1,
                format!("{} shares: Vault accepts 1 to 255", shares.0),
            );
        }
        if threshold.0 == 0 || threshold.0 > shares.0 {
            self.err(
                "invalid-vault-threshold",
                threshold.1,
                format!(
                    "threshold {} must be between 1 and the number of shares ({})",
                    threshold.0, shares.0
                ),
            )
            .help = Some("e.g. `shares: 5, threshold: 3`".into());
        }
        let keyring = over
            .and_then(|o| o.keyring.as_ref())
            .or(base.value.keyring.as_ref())
            .map(|k| k.value.clone())
            .unwrap_or_else(|| "keyrings/{namespace}.age".into())
            .replace("{namespace}", namespace);
        let recipients_src: &Vec<S<String>> = match over {
            Some(o) if !o.recipients.is_empty() => &o.recipients,
            _ => &base.value.recipients,
        };
        if recipients_src.is_empty() {
            self.err("no-vault-recipients", pos(base), "`vault.recipients` is empty: nobody could open the keyring")
                .help = Some("list the operators' public keys (`age1…`, `ssh-ed25519 …`) or `file:~/.config/sprocket/age.pub`".into());
        }
        let mut recipients = Vec::new();
        for r in recipients_src {
            let v = r.value.trim();
            if let Some(file) = v.strip_prefix("file:") {
                let path = expand_home(file, &self.spec_dir, self.files);
                match (self.files.read)(&path) {
                    Ok(bytes) => {
                        let text = String::from_utf8_lossy(&bytes).to_string();
                        let keys: Vec<String> = text
                            .lines()
                            .map(str::trim)
                            .filter(|l| !l.is_empty() && !l.starts_with('#'))
                            .filter(|l| l.starts_with("age1") || l.starts_with("ssh-"))
                            .map(str::to_string)
                            .collect();
                        if keys.is_empty() {
                            self.err(
                                "invalid-recipient",
                                pos(r),
                                format!("{} holds no age or SSH public key", path.display()),
                            );
                        }
                        recipients.extend(keys);
                    }
                    // Only `vault init` needs recipients: a developer who never initialises a Vault
                    // need not have a key.
                    Err(e) => {
                        self.warn("missing-recipients-file", pos(r), format!("cannot read recipients file {}: {e}", path.display()))
                            .help = Some("create it with `sprocketctl vault keygen` (writes ~/.config/sprocket/identity.txt and age.pub)".into());
                    }
                }
            } else if v.starts_with("age1")
                || v.starts_with("ssh-ed25519 ")
                || v.starts_with("ssh-rsa ")
            {
                recipients.push(v.to_string());
            } else {
                self.err("invalid-recipient", pos(r), format!("`{}` is not an age (age1…) or SSH (ssh-ed25519/ssh-rsa) public key, nor `file:PATH`", v.chars().take(40).collect::<String>()));
            }
        }
        if let Some(o) = eff.vault {
            if !o.value.mounts.is_empty()
                || !o.value.policies.is_empty()
                || o.value.github.is_some()
            {
                self.warn(
                    "vault-override-ignored",
                    pos(o),
                    "an environment's `vault` overrides only `keyring`, `recipients` and `token_period`; its `mounts`, `policies` and `github` are ignored",
                )
                .help = Some("Vault's configuration is one for the platform: write it in the top-level `vault` section".into());
            }
        }
        let (mounts, policies, github) = self.vault_config(&base.value);
        let period = over
            .and_then(|o| o.token_period.as_ref())
            .or(base.value.token_period.as_ref());
        let token_period_s = match period {
            None => 24 * 3600,
            Some(p) => match values::parse_duration(&p.value) {
                Ok(ns) if ns >= 3_000_000_000 => ns / 1_000_000_000,
                Ok(_) => {
                    self.err(
                        "invalid-token-period",
                        pos(p),
                        "`token_period` must be at least 3s: the agent renews at a third of it",
                    )
                    .help = Some("e.g. `token_period: 24h`".into());
                    24 * 3600
                }
                Err(e) => {
                    self.err("invalid-duration", pos(p), e).help =
                        Some(super::service::DURATION_HELP.into());
                    24 * 3600
                }
            },
        };
        let readers: BTreeMap<String, Vec<String>> = layers
            .iter()
            .flat_map(|l| &l.services)
            .filter(|s| !s.vault_paths.is_empty())
            .map(|s| (s.name.clone(), s.vault_paths.clone()))
            .collect();
        let agent_runs = layers
            .iter()
            .flat_map(|l| &l.services)
            .any(|s| s.role == Some(Role::UnsealAgent));
        if !readers.is_empty() && !agent_runs {
            let names: Vec<&str> = readers.keys().map(String::as_str).collect();
            self.warn(
                "tokens-not-renewed",
                pos(base),
                format!(
                    "no unseal agent runs here, so the Vault tokens of {} are not renewed: they expire after `token_period` and the next `up` issues new ones (restarting those services)",
                    names.join(", ")
                ),
            )
            .help = Some("add a service with `role: unseal-agent` (it renews the tokens), or accept the restarts".into());
        }
        Some(model::Vault {
            service: service?,
            shares: shares.0.min(255) as u32,
            threshold: threshold.0.min(255) as u32,
            keyring: self.spec_dir.join(keyring),
            recipients,
            mounts,
            policies,
            github,
            token_period_s,
            readers,
        })
    }

    /// Mounts, team policies and GitHub login of the `vault` section.
    fn vault_config(
        &mut self,
        v: &raw::VaultSection,
    ) -> (
        Vec<model::VaultMount>,
        Vec<model::VaultPolicy>,
        Option<model::GithubAuth>,
    ) {
        const RESERVED_MOUNTS: [&str; 6] = [
            "sys",
            "auth",
            "identity",
            "cubbyhole",
            "token",
            crate::names::SECRETS_MOUNT,
        ];
        let mut mounts = Vec::new();
        for (k, t) in v.mounts.iter() {
            let kind = match t.value.as_str() {
                "kv-v2" => model::KvVersion::V2,
                "kv" => model::KvVersion::V1,
                other => {
                    self.err(
                        "invalid-mount-type",
                        pos(t),
                        format!("mount `{}`: unknown type `{other}`", k.value),
                    )
                    .help = Some("use `kv-v2` (versioned) or `kv` (version 1)".into());
                    continue;
                }
            };
            if RESERVED_MOUNTS.contains(&k.value.as_str()) || check_vault_name(&k.value).is_err() {
                self.err(
                    "invalid-mount-path",
                    pos(k),
                    format!("`{}` cannot be a mount path", k.value),
                )
                .help = Some("use a name of lowercase letters, digits, `-` and `_` that Vault does not reserve (sys, auth, identity, cubbyhole) and is not sprocketctl's own `sprocket` (where the platform's secrets live)".into());
                continue;
            }
            mounts.push(model::VaultMount {
                path: k.value.clone(),
                kind,
            });
        }
        const CAPS: [&str; 8] = [
            "create", "read", "update", "patch", "delete", "list", "sudo", "deny",
        ];
        let mut policies = Vec::new();
        for (k, rules) in v.policies.iter() {
            let name = &k.value;
            if check_vault_name(name).is_err()
                || name == "root"
                || name == "default"
                || name.starts_with(RESERVED_POLICY_PREFIX)
                || name == ADMIN_POLICY
            {
                self.err("invalid-policy-name", pos(k), format!("`{name}` cannot name a team policy"))
                    .help = Some(format!("use lowercase letters, digits, `-` and `_` (Vault lowercases policy names); `root`, `default`, `{ADMIN_POLICY}` and `{RESERVED_POLICY_PREFIX}…` (the services' derived policies) are taken"));
                continue;
            }
            let mut out = Vec::new();
            for r in rules {
                let path = &r.value.path;
                if path.value.is_empty()
                    || !path
                        .value
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"-_./*+".contains(&b))
                {
                    self.err(
                        "invalid-vault-path",
                        pos(path),
                        format!("`{}` is not a Vault ACL path", path.value),
                    )
                    .help = Some("use letters, digits, `-_./`, `*` at the end, `+` for one segment, e.g. `platform/data/*`".into());
                }
                if r.value.capabilities.is_empty() {
                    self.err(
                        "invalid-capability",
                        pos(r),
                        format!("the rule for `{}` grants no capability", path.value),
                    )
                    .help = Some(format!("use some of: {}", CAPS.join(", ")));
                }
                let mut caps = Vec::new();
                for c in &r.value.capabilities {
                    if CAPS.contains(&c.value.as_str()) {
                        caps.push(c.value.clone());
                    } else {
                        let known: Vec<String> = CAPS.iter().map(|c| c.to_string()).collect();
                        self.err(
                            "invalid-capability",
                            pos(c),
                            format!("`{}` is not a Vault capability", c.value),
                        )
                        .help = Some(suggest(&c.value, &known, "capabilities"));
                    }
                }
                out.push((path.value.clone(), caps));
            }
            policies.push(model::VaultPolicy {
                name: name.clone(),
                rules: out,
            });
        }
        let github = v.github.as_ref().map(|g| {
            let g = &g.value;
            let mut known: Vec<String> = policies.iter().map(|p| p.name.clone()).collect();
            known.push("default".into());
            let mut teams = BTreeMap::new();
            for (team, ps) in g.teams.iter() {
                if check_vault_name(&team.value).is_err() {
                    self.err(
                        "invalid-team",
                        pos(team),
                        format!("`{}` is not a GitHub team slug", team.value),
                    )
                    .help = Some("write the team's slug as GitHub shows it in the team's URL: lowercase letters, digits and `-`".into());
                }
                for p in ps {
                    if !known.contains(&p.value) {
                        self.err(
                            "unknown-policy",
                            pos(p),
                            format!(
                                "GitHub team `{}` gets policy `{}`, which `vault.policies` does not declare",
                                team.value, p.value
                            ),
                        )
                        .help = Some(suggest(&p.value, &known, "policies"));
                    }
                }
                teams.insert(
                    team.value.clone(),
                    ps.iter().map(|p| p.value.clone()).collect(),
                );
            }
            model::GithubAuth {
                organization: g.organization.value.clone(),
                organization_id: g.organization_id.as_ref().map(|i| i.value),
                base_url: g.base_url.as_ref().map(|u| u.value.clone()),
                teams,
            }
        });
        (mounts, policies, github)
    }
}

/// Names Vault keeps as written: it lowercases policy names and GitHub team keys, so a capital
/// letter would make the spec and Vault disagree on every run.
fn check_vault_name(n: &str) -> Result<(), ()> {
    let ok = !n.is_empty()
        && n.len() <= 64
        && n.bytes()
            .next()
            .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        && n.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
    ok.then_some(()).ok_or(())
}

/// `~/x` → the home folder the caller handed in; relative paths → relative to the spec's folder.
/// Without a home folder `~/x` stays `x`, as it did when `HOME` was unset.
fn expand_home(p: &str, spec_dir: &Path, files: &Files) -> PathBuf {
    match p.strip_prefix("~/") {
        Some(rest) => files.home.clone().unwrap_or_default().join(rest),
        None => spec_dir.join(p),
    }
}
