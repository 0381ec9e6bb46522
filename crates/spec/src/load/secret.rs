//! The top-level `secrets`: each secret's source, its rules (length, pattern, alphabet) and
//! where Vault keeps it — by convention `sprocket/<namespace>/<secret>`, or a `vault_path` on a
//! `kv-v2` mount of the spec. Two secrets never share a Vault path: the writer and the readers
//! derive it from the same rule ([`crate::names::secret_vault_path`]), so they cannot disagree.

use super::{pos, Resolver};
use crate::diag::Pos;
use crate::model::{self, KvVersion, Platform};
use crate::names::{
    check_object_name, is_reserved_secret, FINGERPRINT_KEY_SECRET, SECRETS_MOUNT,
    TOKEN_SECRET_PREFIX, UNSEAL_SECRET,
};
use std::collections::BTreeMap;

/// A Vault path segment: what KV paths of ours may hold (no `..`, no `*`, no `+`).
fn vault_segment(s: &str) -> bool {
    !s.is_empty()
        && s != "."
        && s != ".."
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
}

impl<'a> Resolver<'a> {
    pub(super) fn secrets(&mut self) -> Vec<model::Secret> {
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
                    .help = Some("use `doppler` (the environment's source: Doppler, a dotenv file or the environment), `generate` or `manual`".into());
                    continue;
                }
            };
            if is_reserved_secret(&k.value) {
                self.err(
                    "reserved-secret-name",
                    pos(k),
                    format!(
                        "secret name `{}` is reserved: `up` makes `{UNSEAL_SECRET}` (the unseal agent's keys), `{TOKEN_SECRET_PREFIX}<service>` (a Vault reader's token) and `{FINGERPRINT_KEY_SECRET}` (the fingerprints' key) itself",
                        k.value
                    ),
                )
                .help = Some("rename the secret; a service gets its Vault token from its `vault:` paths, the unseal agent its keys from `role: unseal-agent`".into());
                continue;
            }
            if let Err(e) = check_object_name(&k.value) {
                self.err(
                    "invalid-secret-name",
                    pos(k),
                    format!("secret name `{}` {e}", k.value),
                )
                .help = Some(
                    "secret names become Docker object names: lowercase letters, digits and `-`"
                        .into(),
                );
            }
            let alphabet = match s.alphabet.as_ref().map(|a| a.value.as_str()) {
                None | Some("alphanumeric") => model::Alphabet::Alphanumeric,
                Some("hex") => model::Alphabet::Hex,
                Some("base64url") => model::Alphabet::Base64url,
                Some(other) => {
                    let at = s.alphabet.as_ref().map(pos).unwrap_or(Pos::UNKNOWN);
                    self.err(
                        "invalid-secret-alphabet",
                        at,
                        format!("secret `{}`: unknown alphabet `{other}`", k.value),
                    )
                    .help = Some("use `alphanumeric` (default), `hex` or `base64url`: generated values never hold padding or a line break".into());
                    model::Alphabet::Alphanumeric
                }
            };
            if s.alphabet.is_some() && source != model::SecretSource::Generate {
                let at = s.alphabet.as_ref().map(pos).unwrap_or(Pos::UNKNOWN);
                self.warn(
                    "alphabet-not-generated",
                    at,
                    format!(
                        "secret `{}` is not generated: its `alphabet` is not used",
                        k.value
                    ),
                );
            }
            let pattern = s.pattern.as_ref().and_then(|p| {
                match regex::Regex::new(&format!("^(?:{})$", p.value)) {
                    Ok(_) => Some(p.value.clone()),
                    Err(e) => {
                        // The regex crate's message spans lines with a caret under the spot.
                        let why = e.to_string().lines().last().unwrap_or("").trim().to_string();
                        self.err(
                            "invalid-secret-pattern",
                            pos(p),
                            format!("secret `{}`: `pattern` is not a regular expression: {why}", k.value),
                        )
                        .help = Some("the whole value must match it (it is anchored for you), e.g. `pattern: \"[A-Za-z0-9_-]{43}\"`".into());
                        None
                    }
                }
            });
            let vault_path = s.vault_path.as_ref().and_then(|v| {
                let ok = v
                    .value
                    .split_once('/')
                    .is_some_and(|(m, rest)| vault_segment(m) && rest.split('/').all(vault_segment));
                if ok {
                    Some(v.value.clone())
                } else {
                    self.err(
                        "invalid-secret-vault-path",
                        pos(v),
                        format!("secret `{}`: `vault_path: {}` is not `mount/path`", k.value, v.value),
                    )
                    .help = Some("name a `kv-v2` mount of `vault.mounts` and a path in it, e.g. `platform/core/jwt` (letters, digits, `-`, `_`, `.`; no `*`)".into());
                    None
                }
            });
            let vault_key = s.vault_key.as_ref().and_then(|v| {
                if vault_segment(&v.value) {
                    Some(v.value.clone())
                } else {
                    self.err(
                        "invalid-secret-vault-key",
                        pos(v),
                        format!(
                            "secret `{}`: `vault_key: {}` is not a field name",
                            k.value, v.value
                        ),
                    )
                    .help = Some("use letters, digits, `-`, `_` and `.`".into());
                    None
                }
            });
            out.push(model::Secret {
                name: k.value.clone(),
                source,
                key: s.key.clone().unwrap_or_else(|| k.value.clone()),
                length: s.length.unwrap_or(32).clamp(16, 4096) as usize,
                min_length: s.min_length.unwrap_or(0).min(4096) as usize,
                alphabet,
                pattern,
                vault_path,
                vault_key,
            });
        }
        out
    }

    /// Rules that need the resolved platform: a `vault_path` names a `kv-v2` mount of the spec,
    /// no two secrets share a Vault path, and a secret from the source has Vault to live in.
    pub(super) fn check_secrets(&mut self, p: &Platform) {
        let at = |r: &Resolver<'a>, name: &str, field: &str| -> Pos {
            r.spec
                .secrets
                .iter()
                .find(|(k, _)| k.value == name)
                .map(|(k, s)| match field {
                    "vault_path" => s.vault_path.as_ref().map(pos).unwrap_or_else(|| pos(k)),
                    _ => pos(k),
                })
                .unwrap_or(Pos::UNKNOWN)
        };
        let ns = &p.environment.namespace;
        let mut claimed: BTreeMap<(String, String), &str> = BTreeMap::new();
        for s in &p.secrets {
            if s.source == model::SecretSource::Manual {
                continue;
            }
            let loc = s.vault_location(ns);
            if s.vault_path.is_some() {
                if loc.mount == SECRETS_MOUNT {
                    let here = at(self, &s.name, "vault_path");
                    self.err(
                        "invalid-secret-vault-path",
                        here,
                        format!("secret `{}`: `{SECRETS_MOUNT}/` is sprocketctl's own mount, where the convention already puts it (`{SECRETS_MOUNT}/{ns}/{}`)", s.name, s.name),
                    )
                    .help = Some("remove `vault_path`, or name a `kv-v2` mount of `vault.mounts`".into());
                    continue;
                }
                if let Some(v) = &p.vault {
                    match v.mounts.iter().find(|m| m.path == loc.mount) {
                        Some(m) if m.kind == KvVersion::V2 => {}
                        found => {
                            let why = if found.is_some() {
                                "is a `kv` (version 1) mount: secrets need versions"
                            } else {
                                "is not a mount of `vault.mounts`"
                            };
                            let known: Vec<&str> = v
                                .mounts
                                .iter()
                                .filter(|m| m.kind == KvVersion::V2)
                                .map(|m| m.path.as_str())
                                .collect();
                            let here = at(self, &s.name, "vault_path");
                            self.err(
                                "invalid-secret-vault-path",
                                here,
                                format!("secret `{}`: `{}` {why}", s.name, loc.mount),
                            )
                            .help = Some(format!(
                                "use a `kv-v2` mount: {}",
                                if known.is_empty() {
                                    "declare one under `vault.mounts`".to_string()
                                } else {
                                    known.join(", ")
                                }
                            ));
                            continue;
                        }
                    }
                }
            }
            let key = (loc.mount.clone(), loc.path.clone());
            if let Some(first) = claimed.get(&key) {
                let here = at(self, &s.name, "vault_path");
                self.err(
                    "duplicate-secret-vault-path",
                    here,
                    format!(
                        "secrets `{first}` and `{}` both claim Vault path `{}/{}`",
                        s.name, loc.mount, loc.path
                    ),
                )
                .help = Some("give each secret its own `vault_path` (one Vault document per secret), or drop `vault_path` to use the convention".into());
            } else {
                claimed.insert(key, &s.name);
            }
        }
        // A value from the source is written to Vault and made into Docker secrets from there:
        // without Vault it has nowhere to live between runs.
        if p.vault.is_none() {
            let mut needed: Vec<&str> = Vec::new();
            for svc in p.services() {
                for m in &svc.secrets {
                    let from_vault = m.name == FINGERPRINT_KEY_SECRET
                        || p.secrets
                            .iter()
                            .any(|s| s.name == m.name && s.source == model::SecretSource::Doppler);
                    if from_vault && !needed.contains(&m.name.as_str()) {
                        needed.push(&m.name);
                    }
                }
            }
            for name in needed {
                let here = at(self, name, "");
                self.err(
                    "secret-without-vault",
                    here,
                    format!("secret `{name}` is kept in Vault (it comes from the environment's source, or is the fingerprints' key), but no Vault runs in environment `{}`", p.environment.name),
                )
                .help = Some("enable the service with `role: vault` here, or disable the services that mount it".into());
            }
        }
    }
}
