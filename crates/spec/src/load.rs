//! Reading a spec: YAML → typed file (unknown keys collected) → one environment resolved through
//! its `extends` chain → every rule checked → the [`Platform`] model.
//!
//! All problems are collected and returned together. Nothing here touches the network or the
//! engine; the only I/O is reading the spec and the config files it names, through a closure so
//! tests can hand in files from memory.

use crate::diag::{Diagnostic, Pos, Report, SourceFile};
use crate::model::{self, Mode, Platform};
use crate::raw::{self, Role, SpecFile, S};
use crate::tree::{self, Node, OrderedMap, Seg};
use crate::values;
use serde_saphyr::Spanned;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A spec file that parsed: the typed file, its located tree and the problems found so far
/// (unknown keys).
pub struct Parsed {
    pub source: SourceFile,
    pub spec: SpecFile,
    pub diagnostics: Vec<Diagnostic>,
}

/// A spec resolved for one environment.
#[derive(Debug)]
pub struct Loaded {
    pub platform: Platform,
    /// Warnings (never errors: any error makes loading fail).
    pub warnings: Vec<Diagnostic>,
    pub source: SourceFile,
}

fn pos<T>(s: &S<T>) -> Pos {
    Pos::from_location(&s.referenced)
}

/// Reads `path` and resolves environment `env` (the spec's default when `None`).
pub fn load_file(path: &Path, env: Option<&str>) -> Result<Loaded, Report> {
    let parsed = parse_file(path)?;
    resolve(&parsed, env, &|p: &Path| std::fs::read(p))
}

/// Reads and parses `path`; a missing or unreadable file is reported like any other problem.
pub fn parse_file(path: &Path) -> Result<Parsed, Report> {
    let text = std::fs::read_to_string(path).map_err(|e| Report {
        source: None,
        diagnostics: vec![Diagnostic::error(
            "spec-unreadable",
            Pos::UNKNOWN,
            format!("cannot read the spec file: {e}"),
        )
        .help("pass the spec with -f/--file, or run from the folder holding sprocket.yaml")
        .in_file(path)],
    })?;
    parse(SourceFile {
        path: path.to_path_buf(),
        text: Arc::from(text),
    })
}

/// Parses spec text. YAML syntax and type errors stop here (with their location); unknown keys
/// are collected and parsing goes on, so they are reported together with the semantic problems.
pub fn parse(source: SourceFile) -> Result<Parsed, Report> {
    let file = source.path.clone();
    let fail = |e: serde_saphyr::Error| {
        let p = e
            .location()
            .map(|l| Pos::from_location(&l))
            .unwrap_or(Pos::UNKNOWN);
        let msg = e.without_snippet().to_string();
        let msg = strip_location_prefix(&msg).to_string();
        Report {
            source: Some(source.clone()),
            diagnostics: vec![Diagnostic::error("yaml", p, msg)
                .help("fix the YAML at this place; see the spec reference in the README")
                .in_file(&file)],
        }
    };
    let tree: Spanned<Node> = serde_saphyr::from_str(&source.text).map_err(fail)?;
    let mut unknown: Vec<Vec<Seg>> = Vec::new();
    let spec: SpecFile = tree::with_key_positions(&tree, || {
        serde_saphyr::with_deserializer_from_str(&source.text, |de| {
            serde_ignored::deserialize(de, |path| {
                if let Some(segs) = tree::path_segments(&path) {
                    unknown.push(segs);
                }
            })
        })
    })
    .map_err(fail)?;
    let diagnostics = unknown
        .into_iter()
        .map(|segs| {
            let at = tree::find(&tree, &segs).unwrap_or(Pos::UNKNOWN);
            let key = match segs.last() {
                Some(Seg::Key(k)) => k.clone(),
                _ => "?".into(),
            };
            let dotted = segs
                .iter()
                .map(|s| match s {
                    Seg::Key(k) => k.clone(),
                    Seg::Index(i) => i.to_string(),
                })
                .collect::<Vec<_>>()
                .join(".");
            Diagnostic::error("unknown-key", at, format!("unknown key `{key}` (at `{dotted}`)"))
                .help("check the spelling against the spec reference in the README; unknown keys are never ignored")
                .in_file(&file)
        })
        .collect();
    Ok(Parsed {
        source,
        spec,
        diagnostics,
    })
}

fn strip_location_prefix(msg: &str) -> &str {
    // serde-saphyr adds "line N column M: " or " at line N, column M"; we print the location
    // ourselves.
    let mut msg = msg;
    if let Some(rest) = msg.strip_prefix("line ") {
        if let Some(i) = rest.find(": ") {
            msg = &rest[i + 2..];
        }
    }
    if let Some(i) = msg.rfind(" at line ") {
        msg = &msg[..i];
    }
    msg
}

/// The names of the spec's environments, in file order.
pub fn environment_names(parsed: &Parsed) -> Vec<String> {
    parsed
        .spec
        .environments
        .iter()
        .map(|(k, _)| k.value.clone())
        .collect()
}

/// Resolves one environment. `read` loads the config files the spec names.
pub fn resolve(
    parsed: &Parsed,
    env: Option<&str>,
    read: &dyn Fn(&Path) -> std::io::Result<Vec<u8>>,
) -> Result<Loaded, Report> {
    let mut cx = Resolver {
        spec: &parsed.spec,
        spec_dir: parsed
            .source
            .path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default(),
        diags: parsed.diagnostics.clone(),
        read,
    };
    let platform = cx.run(env);
    let file = parsed.source.path.clone();
    let mut diags: Vec<Diagnostic> = cx.diags.into_iter().map(|d| d.in_file(&file)).collect();
    dedup(&mut diags);
    let report = Report {
        source: Some(parsed.source.clone()),
        diagnostics: diags,
    };
    match platform {
        Some(p) if !report.has_errors() => Ok(Loaded {
            platform: p,
            warnings: report.diagnostics,
            source: parsed.source.clone(),
        }),
        _ => Err(report),
    }
}

/// Validates every environment of the spec; returns all distinct diagnostics.
pub fn validate_all(parsed: &Parsed, read: &dyn Fn(&Path) -> std::io::Result<Vec<u8>>) -> Report {
    let mut all = Vec::new();
    let names = environment_names(parsed);
    if names.is_empty() {
        all.extend(parsed.diagnostics.clone());
    }
    for name in names {
        match resolve(parsed, Some(&name), read) {
            Ok(l) => all.extend(l.warnings),
            Err(r) => all.extend(r.diagnostics),
        }
    }
    dedup(&mut all);
    Report {
        source: Some(parsed.source.clone()),
        diagnostics: all,
    }
}

fn dedup(diags: &mut Vec<Diagnostic>) {
    let mut seen = BTreeSet::new();
    diags.retain(|d| seen.insert((d.code, d.pos, d.message.clone())));
    diags.sort_by_key(|d| (d.pos.line, d.pos.column));
}

struct Resolver<'a> {
    spec: &'a SpecFile,
    spec_dir: PathBuf,
    diags: Vec<Diagnostic>,
    read: &'a dyn Fn(&Path) -> std::io::Result<Vec<u8>>,
}

/// An environment with its `extends` chain applied. Values keep the position where they were
/// set, so diagnostics point at the environment that set them.
#[derive(Default)]
struct Effective<'a> {
    namespace: Option<&'a S<String>>,
    hostname: Option<&'a S<String>>,
    server_ip: Option<&'a S<String>>,
    tailscale_ip: Option<&'a S<String>>,
    tls: Option<&'a S<raw::Tls>>,
    endpoint_mode: Option<&'a S<String>>,
    publish_mode: Option<&'a S<String>>,
    http_port: Option<&'a S<u64>>,
    https_port: Option<&'a S<u64>>,
    description: Option<&'a String>,
    images: BTreeMap<String, (&'a S<String>, &'a S<String>)>,
    disabled: BTreeMap<String, (Pos, String)>,
    overrides: BTreeMap<String, Vec<&'a raw::ServiceOverride>>,
    external: BTreeMap<String, Vec<&'a raw::ExternalOverride>>,
    vault: Option<&'a S<raw::VaultSection>>,
}

struct ServiceRef<'a> {
    layer: usize,
    layer_name: &'a str,
    key: &'a S<String>,
    svc: &'a raw::Service,
}

impl<'a> Resolver<'a> {
    fn err(&mut self, code: &'static str, at: Pos, msg: impl Into<String>) -> &mut Diagnostic {
        self.diags.push(Diagnostic::error(code, at, msg));
        self.diags.last_mut().expect("just pushed")
    }

    fn warn(&mut self, code: &'static str, at: Pos, msg: impl Into<String>) -> &mut Diagnostic {
        self.diags.push(Diagnostic::warning(code, at, msg));
        self.diags.last_mut().expect("just pushed")
    }

    fn run(&mut self, env: Option<&str>) -> Option<Platform> {
        let spec = self.spec;
        self.check_all_extends();
        let env_name = self.choose_environment(env)?;
        let chain = self.chain(&env_name)?;
        let mut eff = self.effective(&chain);
        // Where Vault does not run, neither does its unseal agent.
        let with_role = |role: Role| {
            spec.layers
                .iter()
                .flat_map(|(_, l)| l.services.iter())
                .filter(move |(_, s)| s.role.as_ref().map(|r| r.value) == Some(role))
                .map(|(k, _)| (k.value.clone(), pos(k)))
        };
        if let Some((vault, _)) = with_role(Role::Vault).next() {
            if let Some((_, why)) = eff.disabled.get(&vault).cloned() {
                for (agent, at) in with_role(Role::UnsealAgent) {
                    eff.disabled.entry(agent).or_insert((
                        at,
                        format!("its Vault (`{vault}`) does not run here: {why}"),
                    ));
                }
            }
        }
        let environment = self.environment(&env_name, &chain, &eff);

        let services = self.index_services();
        self.check_environment_refs(&eff, &services);
        self.check_cycles(&services);
        let middlewares = self.middlewares();
        for (k, m) in spec.middlewares.iter() {
            if let Some(s) = &m.service {
                if !services.contains_key(s.value.as_str()) {
                    let known: Vec<String> = services.keys().map(|s| s.to_string()).collect();
                    self.err(
                        "unknown-service",
                        pos(s),
                        format!(
                            "middleware `{}` names service `{}`, which is not defined",
                            k.value, s.value
                        ),
                    )
                    .help = Some(suggest(&s.value, &known, "services"));
                }
            }
        }
        let secrets = self.secrets();
        let externals = self.externals(&eff);

        let mut layers = Vec::new();
        for (li, (lkey, layer)) in spec.layers.iter().enumerate() {
            let mut out = model::Layer {
                name: lkey.value.clone(),
                services: Vec::new(),
                disabled: Vec::new(),
            };
            if layer.services.is_empty() {
                self.warn(
                    "empty-layer",
                    pos(lkey),
                    format!("layer `{}` has no services", lkey.value),
                );
            }
            for (skey, svc) in layer.services.iter() {
                // Structural checks apply to disabled services too: the spec is one platform,
                // whatever runs here.
                let resolved = self.service(
                    li,
                    &lkey.value,
                    skey,
                    svc,
                    &eff,
                    &services,
                    environment.as_ref(),
                    &secrets,
                    &middlewares,
                    &externals,
                );
                if let Some((_, reason)) = eff.disabled.get(&skey.value) {
                    out.disabled.push(model::Disabled {
                        service: skey.value.clone(),
                        reason: reason.clone(),
                    });
                } else if let Some(s) = resolved {
                    out.services.push(s);
                }
            }
            layers.push(out);
        }
        let environment = environment?;
        let vault = self.vault(&eff, &layers, &environment.namespace);
        let platform = Platform {
            name: spec.platform.value.clone(),
            environment,
            layers,
            externals,
            secrets,
            middlewares,
            vault,
        };
        self.check_platform(&platform, &services, &eff);
        Some(platform)
    }

    /// The `vault` section, with the environment's overrides, for the Vault service that runs
    /// here (none when it is disabled).
    fn vault(
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
                let path = expand_home(file, &self.spec_dir);
                match (self.read)(&path) {
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
                    self.err("invalid-duration", pos(p), e);
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
        const RESERVED_MOUNTS: [&str; 5] = ["sys", "auth", "identity", "cubbyhole", "token"];
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
                .help = Some("use a name of lowercase letters, digits, `-` and `_` that Vault does not reserve (sys, auth, identity, cubbyhole)".into());
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

    fn check_all_extends(&mut self) {
        let envs = &self.spec.environments;
        for (name, env) in envs.iter() {
            if let Some(parent) = &env.extends {
                if envs.get(&parent.value).is_none() {
                    let known = names(envs);
                    let d = self.err(
                        "unknown-parent",
                        pos(parent),
                        format!(
                            "environment `{}` extends `{}`, which is not defined",
                            name.value, parent.value
                        ),
                    );
                    *d = d
                        .clone()
                        .help(suggest(&parent.value, &known, "environments"));
                }
            }
        }
        // Cycles: walk each chain; report each cycle once.
        let mut reported: BTreeSet<Vec<String>> = BTreeSet::new();
        for (name, _) in envs.iter() {
            let mut seen = vec![name.value.clone()];
            let mut cur = name.value.clone();
            while let Some(parent) = envs.get(&cur).and_then(|e| e.extends.as_ref()) {
                if envs.get(&parent.value).is_none() {
                    break;
                }
                if let Some(i) = seen.iter().position(|s| s == &parent.value) {
                    let mut members = seen.clone();
                    members.sort();
                    if i == 0 && reported.insert(members) {
                        let mut path = seen.clone();
                        path.push(parent.value.clone());
                        let at = pos(parent);
                        self.err(
                            "extends-cycle",
                            at,
                            format!(
                                "environments extend each other in a cycle: {}",
                                path.join(" → ")
                            ),
                        )
                        .help = Some("remove one `extends` so the chain ends".into());
                    }
                    break;
                }
                seen.push(parent.value.clone());
                cur = parent.value.clone();
            }
        }
    }

    fn choose_environment(&mut self, env: Option<&str>) -> Option<String> {
        let envs = &self.spec.environments;
        let known = names(envs);
        if envs.is_empty() {
            self.err(
                "no-environments",
                Pos::UNKNOWN,
                "the spec defines no environments",
            )
            .help = Some(
                "add an `environments:` section with at least one environment (hostname, tls …)"
                    .into(),
            );
            return None;
        }
        let (name, at) = match (env, &self.spec.default_environment) {
            (Some(n), _) => (n.to_string(), Pos::UNKNOWN),
            (None, Some(d)) => (d.value.clone(), pos(d)),
            (None, None) if envs.len() == 1 => (known[0].clone(), Pos::UNKNOWN),
            (None, None) => {
                self.err(
                    "no-environment-chosen",
                    Pos::UNKNOWN,
                    "no environment was chosen and the spec sets no `default_environment`",
                )
                .help = Some(format!("pass -e/--env with one of: {}", known.join(", ")));
                return None;
            }
        };
        if envs.get(&name).is_none() {
            self.err(
                "unknown-environment",
                at,
                format!("environment `{name}` is not defined in the spec"),
            )
            .help = Some(format!("use one of: {}", known.join(", ")));
            return None;
        }
        Some(name)
    }

    /// `name` and its ancestors, nearest first; `None` if the chain is broken (already reported).
    fn chain(&mut self, name: &str) -> Option<Vec<String>> {
        let envs = &self.spec.environments;
        let mut chain = vec![name.to_string()];
        let mut cur = name.to_string();
        while let Some(parent) = envs.get(&cur)?.extends.as_ref() {
            if envs.get(&parent.value).is_none() || chain.contains(&parent.value) {
                return None;
            }
            chain.push(parent.value.clone());
            cur = parent.value.clone();
        }
        Some(chain)
    }

    fn effective(&mut self, chain: &[String]) -> Effective<'a> {
        let envs = &self.spec.environments;
        let mut eff = Effective::default();
        for name in chain.iter().rev() {
            let e = envs.get(name).expect("chain holds defined environments");
            macro_rules! take {
                ($($f:ident),*) => { $( if e.$f.is_some() { eff.$f = e.$f.as_ref(); } )* };
            }
            take!(
                namespace,
                hostname,
                server_ip,
                tailscale_ip,
                tls,
                endpoint_mode,
                publish_mode,
                http_port,
                https_port
            );
            if e.description.is_some() {
                eff.description = e.description.as_ref();
            }
            for (k, v) in e.images.iter() {
                eff.images.insert(k.value.clone(), (k, v));
            }
            for (k, v) in e.disable.iter() {
                eff.disabled
                    .insert(k.value.clone(), (pos(k), v.value.clone()));
            }
            for s in &e.enable {
                eff.disabled.remove(&s.value);
            }
            for (k, v) in e.services.iter() {
                eff.overrides.entry(k.value.clone()).or_default().push(v);
            }
            for (k, v) in e.external.iter() {
                eff.external.entry(k.value.clone()).or_default().push(v);
            }
            if e.vault.is_some() {
                eff.vault = e.vault.as_ref();
            }
        }
        eff
    }

    fn environment(
        &mut self,
        name: &str,
        chain: &[String],
        eff: &Effective<'a>,
    ) -> Option<model::Environment> {
        let env_pos = self.spec.environments.key_pos(name).unwrap_or(Pos::UNKNOWN);
        let mut ok = true;
        let namespace = match eff.namespace {
            Some(n) => {
                if check_object_name(&n.value).is_err() {
                    self.err(
                        "invalid-namespace",
                        pos(n),
                        format!("namespace `{}` is not a valid object name prefix", n.value),
                    )
                    .help = Some(
                        "use lowercase letters, digits and `-`, starting with a letter".into(),
                    );
                    ok = false;
                }
                n.value.clone()
            }
            None => {
                let p = &self.spec.platform;
                if check_object_name(&p.value).is_err() {
                    self.err("invalid-platform-name", pos(p), format!("platform name `{}` cannot prefix object names", p.value))
                        .help = Some("use lowercase letters, digits and `-`, starting with a letter, or set `namespace` in the environment".into());
                    ok = false;
                }
                p.value.clone()
            }
        };
        let hostname = match eff.hostname {
            Some(h) => {
                if let Err(e) = values::check_host(&h.value) {
                    self.err("invalid-host", pos(h), e).help = Some(
                        "write a DNS name such as `sprocket.example.org` or `localhost`".into(),
                    );
                    ok = false;
                }
                h.value.to_ascii_lowercase()
            }
            None => {
                self.err("missing-hostname", env_pos, format!("environment `{name}` sets no `hostname` (nor does any environment it extends)"))
                    .help = Some("add `hostname: <domain>` (or `localhost`) to the environment".into());
                ok = false;
                String::new()
            }
        };
        let mut ip = |this: &mut Self, v: Option<&S<String>>| -> Option<std::net::IpAddr> {
            let v = v?;
            match values::parse_ip(&v.value) {
                Ok(ip) => Some(ip),
                Err(e) => {
                    this.err("invalid-ip", pos(v), e).help = Some(
                        "write a plain address such as `192.168.4.39`, without a port or mask"
                            .into(),
                    );
                    ok = false;
                    None
                }
            }
        };
        let server_ip = ip(self, eff.server_ip);
        let tailscale_ip = ip(self, eff.tailscale_ip);
        let tls = match eff.tls {
            None => model::Tls::None,
            Some(t) => {
                let email = t.value.email.clone();
                let mode = &t.value.mode;
                let need_email = |this: &mut Self| -> String {
                    match &email {
                        Some(e) if e.contains('@') => e.clone(),
                        _ => {
                            this.err(
                                "acme-email",
                                pos(mode),
                                "Let's Encrypt needs an account e-mail",
                            )
                            .help = Some("add `email: ops@example.org` under `tls`".into());
                            String::new()
                        }
                    }
                };
                match mode.value.as_str() {
                    "letsencrypt" => model::Tls::LetsEncrypt {
                        email: need_email(self),
                        ca_server: t.value.ca_server.clone(),
                    },
                    "letsencrypt-staging" => model::Tls::LetsEncryptStaging {
                        email: need_email(self),
                    },
                    "self-signed" => model::Tls::SelfSigned,
                    "none" => model::Tls::None,
                    other => {
                        self.err(
                            "invalid-tls-mode",
                            pos(mode),
                            format!("unknown TLS mode `{other}`"),
                        )
                        .help = Some(
                            "use `letsencrypt`, `letsencrypt-staging`, `self-signed` or `none`"
                                .into(),
                        );
                        ok = false;
                        model::Tls::None
                    }
                }
            }
        };
        if tls.acme() && values::is_local_host(&hostname) {
            let at = eff.tls.map(|t| pos(&t.value.mode)).unwrap_or(env_pos);
            self.err(
                "acme-on-local-host",
                at,
                format!("Let's Encrypt cannot issue certificates for `{hostname}`"),
            )
            .help = Some(
                "use `tls: {mode: self-signed}` for localhost and IP access, or a public hostname"
                    .into(),
            );
        }
        let endpoint_mode = self.choose(
            eff.endpoint_mode,
            &[
                ("vip", model::EndpointMode::Vip),
                ("dnsrr", model::EndpointMode::Dnsrr),
            ],
            "invalid-endpoint-mode",
            "endpoint mode",
            "use `vip` (needs IPVS in the kernel) or `dnsrr`",
        );
        let publish_mode = self.choose(
            eff.publish_mode,
            &[
                ("ingress", model::PublishMode::Ingress),
                ("host", model::PublishMode::Host),
            ],
            "invalid-publish-mode",
            "publish mode",
            "use `ingress` (routing mesh, needs IPVS) or `host`",
        );
        if endpoint_mode == model::EndpointMode::Dnsrr
            && publish_mode == model::PublishMode::Ingress
        {
            let at = eff.endpoint_mode.map(pos).unwrap_or(env_pos);
            self.err(
                "dnsrr-with-ingress",
                at,
                "endpoint mode `dnsrr` cannot publish ports through the ingress routing mesh",
            )
            .help = Some("set `publish_mode: host` in this environment".into());
        }
        let port = |this: &mut Self, v: Option<&S<u64>>, default: u16| -> u16 {
            match v {
                None => default,
                Some(p) if (1..=65535).contains(&p.value) => p.value as u16,
                Some(p) => {
                    this.err(
                        "invalid-port",
                        pos(p),
                        format!("port {} is outside 1–65535", p.value),
                    );
                    default
                }
            }
        };
        let http_port = port(self, eff.http_port, 80);
        let https_port = port(self, eff.https_port, 443);
        if !ok {
            return None;
        }
        Some(model::Environment {
            name: name.to_string(),
            chain: chain.to_vec(),
            description: eff.description.cloned(),
            namespace,
            hostname,
            server_ip,
            tailscale_ip,
            tls,
            endpoint_mode,
            publish_mode,
            http_port,
            https_port,
        })
    }

    /// One of a closed set of words; the first choice is the default. An unknown word is
    /// reported and the default used, so checking goes on.
    fn choose<T: Copy>(
        &mut self,
        value: Option<&S<String>>,
        choices: &[(&str, T)],
        code: &'static str,
        what: &str,
        help: &str,
    ) -> T {
        let Some(v) = value else { return choices[0].1 };
        match choices.iter().find(|(word, _)| *word == v.value) {
            Some((_, t)) => *t,
            None => {
                self.err(code, pos(v), format!("unknown {what} `{}`", v.value))
                    .help = Some(help.into());
                choices[0].1
            }
        }
    }

    fn index_services(&mut self) -> HashMap<&'a str, ServiceRef<'a>> {
        let mut out: HashMap<&'a str, ServiceRef<'a>> = HashMap::new();
        for (li, (lkey, layer)) in self.spec.layers.iter().enumerate() {
            for (skey, svc) in layer.services.iter() {
                if let Err(e) = check_object_name(&skey.value) {
                    self.err(
                        "invalid-service-name",
                        pos(skey),
                        format!("service name `{}` {e}", skey.value),
                    )
                    .help = Some(
                        "service names become DNS names: lowercase letters, digits and `-`".into(),
                    );
                }
                if let Some(first) = out.get(skey.value.as_str()) {
                    let (fp, fl) = (pos(first.key), first.layer_name.to_string());
                    let d = self.err(
                        "duplicate-service",
                        pos(skey),
                        format!(
                            "service `{}` is defined twice (layers `{fl}` and `{}`)",
                            skey.value, lkey.value
                        ),
                    );
                    *d = d.clone().related(fp, "first defined here").help("rename one of them: service names are unique across layers (they are DNS names)");
                    continue;
                }
                out.insert(
                    skey.value.as_str(),
                    ServiceRef {
                        layer: li,
                        layer_name: lkey.value.as_str(),
                        key: skey,
                        svc,
                    },
                );
            }
        }
        out
    }

    fn check_environment_refs(
        &mut self,
        eff: &Effective<'a>,
        services: &HashMap<&'a str, ServiceRef<'a>>,
    ) {
        let known: Vec<String> = services.keys().map(|s| s.to_string()).collect();
        let envs = &self.spec.environments;
        for (ename, env) in envs.iter() {
            let _ = ename;
            let refs = env
                .disable
                .iter()
                .map(|(k, _)| k)
                .chain(env.services.iter().map(|(k, _)| k))
                .chain(env.enable.iter());
            let mut unknown = Vec::new();
            for r in refs {
                if !services.contains_key(r.value.as_str()) {
                    unknown.push((pos(r), r.value.clone()));
                }
            }
            for (at, name) in unknown {
                self.err(
                    "unknown-service",
                    at,
                    format!("environment refers to service `{name}`, which is not defined"),
                )
                .help = Some(suggest(&name, &known, "services"));
            }
            for (k, v) in env.images.iter() {
                if let Err(e) = values::check_image(&v.value) {
                    self.err("invalid-image", pos(v), e).help = Some(
                        "write an image reference such as `registry.example.org/team/app:1.2`"
                            .into(),
                    );
                }
                if !services.values().any(|s| s.svc.image.value == k.value) {
                    self.warn(
                        "unused-image-mapping",
                        pos(k),
                        format!("no service uses image `{}`", k.value),
                    )
                    .help = Some(
                        "remove the mapping or fix the image name to match a service's `image`"
                            .into(),
                    );
                }
            }
        }
        let _ = eff;
    }

    fn check_cycles(&mut self, services: &HashMap<&'a str, ServiceRef<'a>>) {
        // Iterative DFS in file order; report each cycle once, at the `uses` entry closing it.
        let order: Vec<&str> = self
            .spec
            .layers
            .iter()
            .flat_map(|(_, l)| l.services.iter().map(|(k, _)| k.value.as_str()))
            .collect();
        let mut state: HashMap<&str, u8> = HashMap::new(); // 1 = on stack, 2 = done
        let mut reported = BTreeSet::new();
        fn visit<'b>(
            n: &'b str,
            services: &HashMap<&'b str, ServiceRef<'b>>,
            state: &mut HashMap<&'b str, u8>,
            stack: &mut Vec<&'b str>,
            found: &mut Vec<(Pos, Vec<String>)>,
        ) {
            state.insert(n, 1);
            stack.push(n);
            if let Some(s) = services.get(n) {
                for u in &s.svc.uses {
                    let target = u.value.as_str();
                    let Some((tkey, _)) = services.get_key_value(target) else {
                        continue;
                    };
                    match state.get(target) {
                        Some(1) => {
                            let i = stack.iter().position(|x| *x == target).unwrap_or(0);
                            let mut cyc: Vec<String> =
                                stack[i..].iter().map(|s| s.to_string()).collect();
                            cyc.push(target.to_string());
                            found.push((pos(u), cyc));
                        }
                        Some(_) => {}
                        None => visit(tkey, services, state, stack, found),
                    }
                }
            }
            stack.pop();
            state.insert(n, 2);
        }
        let mut found = Vec::new();
        for n in order {
            if !state.contains_key(n) && services.contains_key(n) {
                let key = *services.get_key_value(n).expect("checked").0;
                visit(key, services, &mut state, &mut Vec::new(), &mut found);
            }
        }
        for (at, cyc) in found {
            let mut canon = cyc[..cyc.len() - 1].to_vec();
            canon.sort();
            if reported.insert(canon) {
                self.err(
                    "dependency-cycle",
                    at,
                    format!("services use each other in a cycle: {}", cyc.join(" → ")),
                )
                .help = Some(
                    "break the cycle: a service cannot wait for something that waits for it".into(),
                );
            }
        }
    }

    fn middlewares(&mut self) -> Vec<model::Middleware> {
        let mut out = Vec::new();
        for (k, m) in self.spec.middlewares.iter() {
            let mut kinds = Vec::new();
            if let Some(fa) = &m.forward_auth {
                kinds.push(model::MiddlewareKind::ForwardAuth {
                    address: fa.address.clone(),
                    trust_forward_header: fa.trust_forward_header,
                    response_headers: fa.response_headers.clone(),
                });
            }
            if let Some(p) = &m.strip_prefix {
                kinds.push(model::MiddlewareKind::StripPrefix {
                    prefixes: p.clone(),
                });
            }
            if m.redirect_https == Some(true) {
                kinds.push(model::MiddlewareKind::RedirectHttps);
            }
            if kinds.len() != 1 {
                self.err("invalid-middleware", pos(k), format!("middleware `{}` must set exactly one of `forward_auth`, `strip_prefix`, `redirect_https`", k.value));
                continue;
            }
            out.push(model::Middleware {
                name: k.value.clone(),
                service: m.service.as_ref().map(|s| s.value.clone()),
                kind: kinds.remove(0),
            });
        }
        out
    }

    fn secrets(&mut self) -> Vec<model::Secret> {
        let mut out = Vec::new();
        for (k, s) in self.spec.secrets.iter() {
            let source = match s.source.value.as_str() {
                "doppler" => model::SecretSource::Doppler,
                "generate" => model::SecretSource::Generate,
                "manual" => model::SecretSource::Manual,
                other => {
                    self.err(
                        "invalid-secret-source",
                        pos(&s.source),
                        format!("unknown secret source `{other}`"),
                    )
                    .help = Some("use `doppler`, `generate` or `manual`".into());
                    continue;
                }
            };
            if let Err(e) = check_object_name(&k.value) {
                self.err(
                    "invalid-secret-name",
                    pos(k),
                    format!("secret name `{}` {e}", k.value),
                );
            }
            out.push(model::Secret {
                name: k.value.clone(),
                source,
                key: s.key.clone().unwrap_or_else(|| k.value.clone()),
                length: s.length.unwrap_or(32).clamp(16, 4096) as usize,
            });
        }
        out
    }

    fn externals(&mut self, eff: &Effective<'a>) -> Vec<model::External> {
        let mut out = Vec::new();
        for (k, e) in self.spec.external.iter() {
            let mut x = model::External {
                name: k.value.clone(),
                kind: e.kind.clone(),
                host: e.host.clone(),
                port: e.port,
                endpoint: e.endpoint.clone(),
            };
            for o in eff.external.get(&k.value).into_iter().flatten() {
                if o.host.is_some() {
                    x.host = o.host.clone();
                }
                if o.port.is_some() {
                    x.port = o.port;
                }
                if o.endpoint.is_some() {
                    x.endpoint = o.endpoint.clone();
                }
            }
            out.push(x);
        }
        for name in eff.external.keys() {
            if self.spec.external.get(name).is_none() {
                self.err("unknown-external", Pos::UNKNOWN, format!("an environment overrides external `{name}`, which is not declared under `external`"));
            }
        }
        out
    }

    #[allow(clippy::too_many_arguments)]
    fn service(
        &mut self,
        li: usize,
        layer: &str,
        key: &S<String>,
        svc: &raw::Service,
        eff: &Effective<'a>,
        services: &HashMap<&'a str, ServiceRef<'a>>,
        env: Option<&model::Environment>,
        secrets: &[model::Secret],
        middlewares: &[model::Middleware],
        externals: &[model::External],
    ) -> Option<model::Service> {
        let name = key.value.clone();
        let n_before = self.diags.iter().filter(|d| d.is_error()).count();
        let enabled = !eff.disabled.contains_key(&name);

        if let Err(e) = values::check_image(&svc.image.value) {
            self.err("invalid-image", pos(&svc.image), e).help = Some(
                "write an image reference such as `redis:7.0-alpine` or `ghcr.io/org/app:1.2`"
                    .into(),
            );
        }
        let image = eff
            .images
            .get(&svc.image.value)
            .map(|(_, v)| v.value.clone())
            .unwrap_or_else(|| svc.image.value.clone());

        let overrides = eff.overrides.get(&name).cloned().unwrap_or_default();
        let mut replicas = svc.replicas.as_ref().map(|r| (r.value, pos(r)));
        for o in &overrides {
            if let Some(r) = &o.replicas {
                replicas = Some((r.value, pos(r)));
            }
        }
        let mode = match svc.mode.as_ref().map(|m| (m, m.value.as_str())) {
            None | Some((_, "replicated")) => Mode::Replicated(replicas.map(|r| r.0).unwrap_or(1)),
            Some((m, "global")) => {
                if let Some((_, at)) = replicas {
                    self.err(
                        "replicas-with-global",
                        at,
                        "a `global` service runs one task per node and takes no `replicas`",
                    );
                }
                let _ = m;
                Mode::Global
            }
            Some((m, other)) => {
                self.err(
                    "invalid-mode",
                    pos(m),
                    format!("unknown service mode `{other}`"),
                )
                .help = Some("use `replicated` (with `replicas: N`) or `global`".into());
                Mode::Replicated(1)
            }
        };

        // uses
        let mut uses = Vec::new();
        let mut uses_external = Vec::new();
        let mut known: Vec<String> = services.keys().map(|s| s.to_string()).collect();
        known.extend(externals.iter().map(|e| e.name.clone()));
        for u in &svc.uses {
            if let Some(target) = services.get(u.value.as_str()) {
                if target.layer > li {
                    self.err(
                        "dependency-on-later-layer",
                        pos(u),
                        format!("`{name}` (layer `{layer}`) uses `{}`, which is in the later layer `{}`", u.value, target.layer_name),
                    )
                    .help = Some(format!("move `{}` to layer `{layer}` or earlier, or `{name}` to a later layer: layers start in order", u.value));
                } else if u.value == name {
                    self.err("dependency-cycle", pos(u), format!("`{name}` uses itself"));
                } else if enabled && eff.disabled.contains_key(&u.value) {
                    let reason = &eff.disabled[&u.value].1;
                    self.err(
                        "disabled-dependency",
                        pos(u),
                        format!(
                            "`{name}` uses `{}`, which this environment disables ({reason})",
                            u.value
                        ),
                    )
                    .help = Some(format!(
                        "disable `{name}` in this environment too, or stop disabling `{}`",
                        u.value
                    ));
                }
                uses.push(u.value.clone());
            } else if externals.iter().any(|e| e.name == u.value) {
                uses_external.push(u.value.clone());
            } else {
                self.err(
                    "unknown-dependency",
                    pos(u),
                    format!(
                        "`{name}` uses `{}`, which is neither a service nor an external",
                        u.value
                    ),
                )
                .help = Some(suggest(&u.value, &known, "services and externals"));
            }
        }

        // The unseal agent talks to Vault and to the Docker API proxy: derived, not written.
        if svc.role.as_ref().map(|r| r.value) == Some(Role::UnsealAgent) {
            let mut derived: Vec<&str> = services
                .iter()
                .filter(|(_, r)| {
                    matches!(
                        r.svc.role.as_ref().map(|x| x.value),
                        Some(Role::Vault) | Some(Role::DockerApiProxy)
                    )
                })
                .map(|(name, _)| *name)
                .filter(|name| !uses.iter().any(|u| u == name))
                .collect();
            derived.sort();
            uses.extend(derived.into_iter().map(str::to_string));
            if self.spec.vault.is_none() {
                self.err(
                    "unseal-agent-without-vault",
                    pos(key),
                    format!(
                        "`{name}` has `role: unseal-agent` but the spec has no `vault` section"
                    ),
                )
                .help = Some("add a `vault:` section (shares, threshold, recipients)".into());
            }
        }

        // Vault paths: checked against the declared mounts; Vault becomes a derived dependency.
        let mut vault_paths = Vec::new();
        if !svc.vault.is_empty() {
            let vault_svc = services
                .iter()
                .find(|(_, r)| r.svc.role.as_ref().map(|x| x.value) == Some(Role::Vault));
            match (self.spec.vault.as_ref(), vault_svc) {
                (None, _) | (_, None) => {
                    self.err(
                        "vault-paths-without-vault",
                        pos(&svc.vault[0]),
                        format!("`{name}` reads Vault paths, but the spec has no `vault` section and Vault service"),
                    )
                    .help = Some("add a service with `role: vault` and a `vault:` section with its `mounts`".into());
                }
                (Some(section), Some((vname, vref))) => {
                    let mounts: Vec<String> = section
                        .value
                        .mounts
                        .iter()
                        .map(|(k, _)| k.value.clone())
                        .collect();
                    if vref.layer >= li {
                        self.err(
                            "vault-reader-too-early",
                            pos(&svc.vault[0]),
                            format!("`{name}` (layer `{layer}`) reads Vault, which is set up only after its layer `{}` is healthy", vref.layer_name),
                        )
                        .help = Some(format!("move `{name}` to a layer after `{}`", vref.layer_name));
                    } else if enabled && eff.disabled.contains_key(*vname) {
                        let reason = &eff.disabled[*vname].1;
                        self.err(
                            "disabled-dependency",
                            pos(&svc.vault[0]),
                            format!("`{name}` reads Vault paths, but this environment disables `{vname}` ({reason})"),
                        )
                        .help = Some(format!("disable `{name}` in this environment too, or stop disabling `{vname}`"));
                    }
                    for p in &svc.vault {
                        match values::check_vault_path(&p.value) {
                            Err(e) => {
                                self.err("invalid-vault-path", pos(p), e).help = Some(
                                    "write `<mount>/<path>`, e.g. `platform/core` or `platform/core/*`".into(),
                                );
                            }
                            Ok(mount) if !mounts.iter().any(|m| m == mount) => {
                                self.err(
                                    "unknown-vault-mount",
                                    pos(p),
                                    format!("`{}` is under `{mount}/`, which `vault.mounts` does not declare", p.value),
                                )
                                .help = Some(suggest(mount, &mounts, "mounts"));
                            }
                            Ok(_) => vault_paths.push(p.value.clone()),
                        }
                    }
                    if !uses.iter().any(|u| u == *vname) {
                        uses.push(vname.to_string());
                    }
                }
            }
        }

        // routes
        let mut routes = Vec::new();
        let mut dropped_routes = Vec::new();
        for (i, r) in svc.routes.iter().enumerate() {
            let rv = &r.value;
            let router = match &rv.name {
                Some(n) => {
                    if check_object_name(&n.value).is_err() {
                        self.err(
                            "invalid-router-name",
                            pos(n),
                            format!(
                                "router name `{}` must be lowercase letters, digits and `-`",
                                n.value
                            ),
                        );
                    }
                    n.value.clone()
                }
                None if i == 0 => name.clone(),
                None => format!("{name}-{}", i + 1),
            };
            let port = match (&rv.port, &rv.internal) {
                (Some(p), None) if (1..=65535).contains(&p.value) => Some(p.value as u16),
                (Some(p), None) => {
                    self.err(
                        "invalid-port",
                        pos(p),
                        format!("port {} is outside 1–65535", p.value),
                    );
                    None
                }
                (None, Some(_)) => None,
                (Some(p), Some(_)) => {
                    self.err("route-port-and-internal", pos(p), "a route forwards either to a `port` or to an `internal` Traefik service, not both");
                    None
                }
                (None, None) => {
                    self.err(
                        "route-without-port",
                        pos(r),
                        format!("route `{router}` of `{name}` names no `port`"),
                    )
                    .help = Some("add `port: <container port>` to the route".into());
                    None
                }
            };
            if let Some(p) = &rv.path {
                if !p.value.starts_with('/') || p.value.contains(char::is_whitespace) {
                    self.err(
                        "invalid-path",
                        pos(p),
                        format!(
                            "route path `{}` must start with `/` and contain no spaces",
                            p.value
                        ),
                    );
                }
            }
            for m in &rv.middlewares {
                if !middlewares.iter().any(|x| x.name == m.value)
                    && self.spec.middlewares.get(&m.value).is_none()
                {
                    let known: Vec<String> = self
                        .spec
                        .middlewares
                        .iter()
                        .map(|(k, _)| k.value.clone())
                        .collect();
                    self.err(
                        "unknown-middleware",
                        pos(m),
                        format!(
                            "route `{router}` uses middleware `{}`, which is not declared",
                            m.value
                        ),
                    )
                    .help = Some(suggest(&m.value, &known, "middlewares"));
                }
            }
            let hostname = env.map(|e| e.hostname.clone()).unwrap_or_default();
            let mut hosts = Vec::new();
            match (&rv.subdomain, &rv.host) {
                (Some(s), None) => {
                    if let Err(e) = values::check_host(&s.value) {
                        self.err("invalid-host", pos(s), e);
                    }
                    hosts.push(format!("{}.{hostname}", s.value.to_ascii_lowercase()));
                }
                (None, Some(h)) => {
                    if let Err(e) = values::check_host(&h.value) {
                        self.err("invalid-host", pos(h), e);
                    }
                    hosts.push(h.value.to_ascii_lowercase());
                }
                (None, None) => hosts.push(hostname.clone()),
                (Some(s), Some(_)) => {
                    self.err("subdomain-and-host", pos(s), "a route names either a `subdomain` (of the environment's hostname) or a full `host`, not both");
                }
            }
            if rv.ip_access {
                if let Some(env) = env {
                    hosts.extend(env.access_ips().iter().map(|ip| ip.to_string()));
                }
            }
            let gate_off = rv.middlewares.iter().find_map(|m| {
                let mw = middlewares.iter().find(|x| x.name == m.value)?;
                let gate = mw.service.as_ref()?;
                let (_, why) = eff.disabled.get(gate)?;
                Some(format!(
                    "middleware `{}` needs `{gate}`, which does not run here ({why})",
                    m.value
                ))
            });
            if let Some(reason) = gate_off {
                dropped_routes.push(model::Disabled {
                    service: router,
                    reason,
                });
                continue;
            }
            routes.push((
                pos(r),
                model::Route {
                    at: pos(r),
                    router,
                    hosts,
                    path: rv.path.as_ref().map(|p| p.value.clone()),
                    port,
                    internal: rv.internal.as_ref().map(|s| s.value.clone()),
                    middlewares: rv.middlewares.iter().map(|m| m.value.clone()).collect(),
                },
            ));
        }

        let mut ports = Vec::new();
        for p in &svc.ports {
            let v = &p.value;
            if !(1..=65535).contains(&v.target) || !(1..=65535).contains(&v.published) {
                self.err("invalid-port", pos(p), "ports must be within 1–65535");
                continue;
            }
            if v.protocol != "tcp" && v.protocol != "udp" {
                self.err(
                    "invalid-port",
                    pos(p),
                    format!("protocol `{}` is neither `tcp` nor `udp`", v.protocol),
                );
                continue;
            }
            ports.push(model::Port {
                target: v.target as u16,
                published: v.published as u16,
                protocol: v.protocol.clone(),
            });
        }

        let dur = |this: &mut Self, v: &Option<S<String>>, default: u64| -> u64 {
            match v {
                None => default,
                Some(s) => values::parse_duration(&s.value).unwrap_or_else(|e| {
                    this.err("invalid-duration", pos(s), e);
                    default
                }),
            }
        };
        let health = svc.health.as_ref().map(|h| {
            if h.value.cmd.is_empty() {
                self.err(
                    "invalid-health",
                    pos(h),
                    "the health check's `cmd` is empty",
                )
                .help = Some("give the command in exec form, e.g. `cmd: [redis-cli, ping]`".into());
            }
            model::Health {
                cmd: h.value.cmd.clone(),
                interval_ns: dur(self, &h.value.interval, 5_000_000_000),
                timeout_ns: dur(self, &h.value.timeout, 3_000_000_000),
                retries: h.value.retries.unwrap_or(3),
                start_period_ns: dur(self, &h.value.start_period, 0),
            }
        });
        let stop_grace_period_ns = svc
            .stop_grace_period
            .as_ref()
            .map(|_| dur(self, &svc.stop_grace_period, 10_000_000_000));

        let mut volumes = Vec::new();
        for v in &svc.volumes {
            let vv = &v.value;
            match (&vv.volume, &vv.bind) {
                (Some(n), None) => {
                    if check_object_name(n).is_err() {
                        self.err(
                            "invalid-volume",
                            pos(v),
                            format!("volume name `{n}` must be lowercase letters, digits and `-`"),
                        );
                    }
                    volumes.push(model::Volume::Named {
                        name: n.clone(),
                        target: vv.target.clone(),
                        read_only: vv.read_only,
                    });
                }
                (None, Some(b)) => {
                    if !b.starts_with('/') {
                        self.err(
                            "invalid-volume",
                            pos(v),
                            format!("bind source `{b}` must be an absolute path on the node"),
                        );
                    }
                    volumes.push(model::Volume::Bind {
                        source: b.clone(),
                        target: vv.target.clone(),
                        read_only: vv.read_only,
                    });
                }
                _ => {
                    self.err(
                        "invalid-volume",
                        pos(v),
                        "a volume entry sets exactly one of `volume` (named) or `bind` (host path)",
                    );
                }
            }
            if !vv.target.starts_with('/') {
                self.err(
                    "invalid-volume",
                    pos(v),
                    format!("mount target `{}` must be an absolute path", vv.target),
                );
            }
        }

        let mut configs = Vec::new();
        for c in &svc.configs {
            let path = self.spec_dir.join(&c.value.file.value);
            match (self.read)(&path) {
                Ok(content) => configs.push(model::ConfigFile {
                    file: c.value.file.value.clone(),
                    path,
                    target: c.value.target.clone(),
                    mode: c.value.mode.unwrap_or(0o444),
                    content,
                }),
                Err(e) => {
                    self.err(
                        "missing-config-file",
                        pos(&c.value.file),
                        format!("cannot read config file `{}`: {e}", path.display()),
                    )
                    .help = Some("config paths are relative to the spec file's folder".into());
                }
            }
        }

        let mut secret_mounts = Vec::new();
        for s in &svc.secrets {
            let sname = s.value.name();
            if !secrets.iter().any(|x| x.name == sname) && self.spec.secrets.get(sname).is_none() {
                let known: Vec<String> = self
                    .spec
                    .secrets
                    .iter()
                    .map(|(k, _)| k.value.clone())
                    .collect();
                self.err(
                    "undeclared-secret",
                    pos(s),
                    format!("`{name}` references secret `{sname}`, which is not declared"),
                )
                .help = Some(format!(
                    "declare it under the top-level `secrets:` with its source; {}",
                    suggest(sname, &known, "secrets")
                ));
                continue;
            }
            secret_mounts.push(model::SecretMount {
                name: sname.to_string(),
                target: s
                    .value
                    .target()
                    .map(str::to_string)
                    .unwrap_or_else(|| format!("/run/secrets/{sname}")),
            });
        }

        let mut resources = model::Resources::default();
        let mut apply_resources = |this: &mut Self, r: &raw::Resources| {
            let mem = |this: &mut Self, v: &Option<S<String>>| -> Option<i64> {
                let v = v.as_ref()?;
                match values::parse_memory(&v.value) {
                    Ok(b) => Some(b as i64),
                    Err(e) => {
                        this.err("invalid-memory", pos(v), e);
                        None
                    }
                }
            };
            if let Some(c) = r.cpus {
                resources.nano_cpus = Some((c * 1e9) as i64);
            }
            if let Some(c) = r.reserve_cpus {
                resources.reserve_nano_cpus = Some((c * 1e9) as i64);
            }
            if let Some(m) = mem(this, &r.memory) {
                resources.memory_bytes = Some(m);
            }
            if let Some(m) = mem(this, &r.reserve_memory) {
                resources.reserve_memory_bytes = Some(m);
            }
        };
        if let Some(r) = &svc.resources {
            apply_resources(self, r);
        }
        let mut env_vars: BTreeMap<String, String> = svc
            .env
            .iter()
            .map(|(k, v)| (k.value.clone(), v.0.clone()))
            .collect();
        let mut args = svc.args.clone();
        let mut placement_src: Vec<&S<String>> = svc.placement.iter().collect();
        for o in &overrides {
            if let Some(r) = &o.resources {
                apply_resources(self, r);
            }
            for (k, v) in o.env.iter() {
                env_vars.insert(k.value.clone(), v.0.clone());
            }
            if o.args.is_some() {
                args = o.args.clone();
            }
            if let Some(p) = &o.placement {
                placement_src = p.iter().collect();
            }
        }
        let mut placement = Vec::new();
        for p in placement_src {
            let ok = ["==", "!="].iter().any(|op| {
                p.value
                    .split_once(op)
                    .is_some_and(|(a, b)| !a.trim().is_empty() && !b.trim().is_empty())
            });
            if !ok {
                self.err(
                    "invalid-constraint",
                    pos(p),
                    format!(
                        "placement constraint `{}` is not `<attribute> == <value>` or `!=`",
                        p.value
                    ),
                )
                .help = Some("e.g. `node.role == manager` or `node.labels.role == storage`".into());
                continue;
            }
            placement.push(p.value.clone());
        }
        if let Some(h) = &svc.hostname {
            if let Err(e) = values::check_host(&h.value) {
                self.err("invalid-host", pos(h), e);
            }
        }
        let logging = match &svc.logging {
            Some(l) => model::Logging {
                driver: l.driver.clone(),
                options: l
                    .options
                    .iter()
                    .map(|(k, v)| (k.value.clone(), v.0.clone()))
                    .collect(),
            },
            None => model::Logging::default(),
        };

        let n_after = self.diags.iter().filter(|d| d.is_error()).count();
        let _ = enabled;
        if n_after > n_before {
            return None;
        }
        let (routes_pos, routes): (Vec<Pos>, Vec<model::Route>) = routes.into_iter().unzip();
        let _ = routes_pos;
        Some(model::Service {
            name,
            layer: layer.to_string(),
            role: svc.role.as_ref().map(|r| r.value),
            image,
            spec_image: svc.image.value.clone(),
            command: svc.command.clone(),
            args,
            env: env_vars,
            mode,
            uses,
            uses_external,
            routes,
            dropped_routes,
            ports,
            health,
            volumes,
            configs,
            secrets: secret_mounts,
            vault_paths,
            resources,
            placement,
            hostname: svc.hostname.as_ref().map(|h| h.value.clone()),
            user: svc.user.clone(),
            workdir: svc.workdir.clone(),
            stop_grace_period_ns,
            logging,
            description: svc.description.clone(),
        })
    }

    /// Rules across services of the resolved environment: roles, routers, route and port
    /// collisions.
    fn check_platform(
        &mut self,
        p: &Platform,
        services: &HashMap<&'a str, ServiceRef<'a>>,
        eff: &Effective<'a>,
    ) {
        let svc_pos = |svc: &str| {
            services
                .get(svc)
                .map(|s| pos(s.key))
                .unwrap_or(Pos::UNKNOWN)
        };

        // Roles.
        for role in [
            Role::Edge,
            Role::DockerApiProxy,
            Role::Vault,
            Role::UnsealAgent,
        ] {
            let with: Vec<&str> = p
                .services()
                .filter(|s| s.role == Some(role))
                .map(|s| s.name.as_str())
                .collect();
            if with.len() > 1 {
                self.err(
                    "duplicate-role",
                    svc_pos(with[1]),
                    format!(
                        "services `{}` and `{}` both have role `{}`",
                        with[0],
                        with[1],
                        role_name(role)
                    ),
                )
                .help = Some(
                    "a platform has one edge router, one Docker API proxy and one Vault".into(),
                );
            }
        }
        let routed: Vec<&model::Service> = p.services().filter(|s| !s.routes.is_empty()).collect();
        let edge = p.edge();
        if let (Some(first), None) = (routed.first(), edge) {
            self.err(
                "no-edge-router",
                svc_pos(&first.name),
                format!(
                    "`{}` has routes but this environment runs no service with `role: edge`",
                    first.name
                ),
            )
            .help =
                Some("declare Traefik with `role: edge` (or disable the routed services)".into());
        }
        if let Some(edge) = edge {
            if p.docker_api_proxy().is_none() {
                self.err("no-docker-api-proxy", svc_pos(&edge.name), "the edge router needs a service with `role: docker-api-proxy`: Traefik reads the Docker API only through a read-only proxy, never the raw socket")
                    .help = Some("add the socket proxy (e.g. tecnativa/docker-socket-proxy) with `role: docker-api-proxy` in the same layer".into());
            }
            let li = p.layer_index(&edge.layer).unwrap_or(0);
            for s in &routed {
                if p.layer_index(&s.layer).unwrap_or(0) < li {
                    self.err(
                        "route-before-edge",
                        svc_pos(&s.name),
                        format!(
                            "`{}` is routed but starts in a layer before the edge router `{}`",
                            s.name, edge.name
                        ),
                    );
                }
            }
        }

        // Routers and routes.
        let mut routers: HashMap<String, (Pos, String)> = HashMap::new();
        let mut claims: HashMap<(String, String), (Pos, String)> = HashMap::new();
        let acme = p.environment.tls.acme();
        for s in p.services() {
            for r in &s.routes {
                let at = r.at;
                if let Some((first, owner)) = routers.get(&r.router) {
                    let d = self.err(
                        "duplicate-router",
                        at,
                        format!(
                            "router name `{}` is used twice (services `{owner}` and `{}`)",
                            r.router, s.name
                        ),
                    );
                    *d = d
                        .clone()
                        .related(*first, "first used here")
                        .help("give one of the routes its own `name`");
                } else {
                    routers.insert(r.router.clone(), (at, s.name.clone()));
                }
                for h in &r.hosts {
                    if acme && values::is_local_host(h) {
                        self.err("acme-on-local-host", at, format!("route `{}` answers on `{h}`, for which Let's Encrypt cannot issue a certificate", r.router))
                            .help = Some("drop `ip_access` from the route, or use `self-signed` TLS in this environment".into());
                    }
                    let path = r.path.clone().unwrap_or_else(|| "/".into());
                    let key = (h.clone(), path.clone());
                    if let Some((first, other)) = claims.get(&key) {
                        let d = self.err(
                            "route-collision",
                            at,
                            format!("routes `{other}` and `{}` both claim host `{h}` with path `{path}` in environment `{}`", r.router, p.environment.name),
                        );
                        let hint = if h.parse::<std::net::IpAddr>().is_ok() {
                            "an IP is one host: give each `ip_access` route its own `path`, or keep `ip_access` on one route"
                        } else {
                            "give one route another subdomain or a `path`"
                        };
                        *d = d.clone().related(*first, "claimed first here").help(hint);
                    } else {
                        claims.insert(key, (at, r.router.clone()));
                    }
                }
            }
        }

        // Published ports (the edge router's come from the environment).
        let mut taken: HashMap<(u16, String), (Pos, String)> = HashMap::new();
        let env_pos = |field: Option<&S<u64>>| field.map(pos).unwrap_or(Pos::UNKNOWN);
        let mut claim = |this: &mut Self, port: u16, proto: &str, at: Pos, who: String| {
            if let Some((first, other)) = taken.get(&(port, proto.to_string())) {
                let d = this.err(
                    "port-clash",
                    at,
                    format!("{who} and {other} both publish {proto} port {port}"),
                );
                *d = d
                    .clone()
                    .related(*first, "published first here")
                    .help("publish one of them on another port");
            } else {
                taken.insert((port, proto.to_string()), (at, who));
            }
        };
        if let Some(edge) = edge {
            claim(
                self,
                p.environment.http_port,
                "tcp",
                env_pos(eff.http_port),
                format!("the edge router `{}` (http)", edge.name),
            );
            if p.environment.tls.enabled() {
                claim(
                    self,
                    p.environment.https_port,
                    "tcp",
                    env_pos(eff.https_port),
                    format!("the edge router `{}` (https)", edge.name),
                );
            }
        }
        for s in p.services() {
            let raw_ports = services.get(s.name.as_str()).map(|r| &r.svc.ports);
            for (i, port) in s.ports.iter().enumerate() {
                let at = raw_ports
                    .and_then(|v| v.get(i))
                    .map(pos)
                    .unwrap_or(Pos::UNKNOWN);
                claim(
                    self,
                    port.published,
                    &port.protocol,
                    at,
                    format!("`{}`", s.name),
                );
            }
        }
    }
}

fn role_name(r: Role) -> &'static str {
    match r {
        Role::Edge => "edge",
        Role::DockerApiProxy => "docker-api-proxy",
        Role::Vault => "vault",
        Role::UnsealAgent => "unseal-agent",
    }
}

fn names<T>(m: &OrderedMap<T>) -> Vec<String> {
    m.iter().map(|(k, _)| k.value.clone()).collect()
}

/// `~/x` → the home folder; relative paths → relative to the spec's folder.
fn expand_home(p: &str, spec_dir: &Path) -> PathBuf {
    match p.strip_prefix("~/") {
        Some(rest) => std::env::var_os("HOME")
            .map(PathBuf::from)
            .unwrap_or_default()
            .join(rest),
        None => spec_dir.join(p),
    }
}

/// Object names (services, secrets, volumes, namespaces) become parts of Docker object names and
/// DNS names.
/// Service policies are named `svc-<service>`; team policies may not take that prefix.
pub const RESERVED_POLICY_PREFIX: &str = "svc-";
/// The policy of sprocketctl's own admin token.
pub const ADMIN_POLICY: &str = "sprocketctl-admin";

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

pub fn check_object_name(n: &str) -> Result<(), String> {
    let ok = !n.is_empty()
        && n.len() <= 48
        && n.bytes().next().is_some_and(|b| b.is_ascii_lowercase())
        && n.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !n.ends_with('-');
    if ok {
        Ok(())
    } else {
        Err("must be 1–48 lowercase letters, digits and `-`, starting with a letter".into())
    }
}

/// "did you mean" for a misspelt name.
fn suggest(name: &str, known: &[String], what: &str) -> String {
    let best = known
        .iter()
        .map(|k| (levenshtein(name, k), k))
        .filter(|(d, k)| *d <= 2.max(k.len() / 3))
        .min();
    match best {
        Some((_, k)) => format!("did you mean `{k}`?"),
        None if known.is_empty() => format!("no {what} are declared"),
        None => {
            let mut list: Vec<&str> = known.iter().map(String::as_str).collect();
            list.sort();
            format!("declared {what}: {}", list.join(", "))
        }
    }
}

fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur.push(sub.min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}
