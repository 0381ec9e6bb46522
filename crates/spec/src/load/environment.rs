//! Environments: which one runs, its `extends` chain, and the values that chain adds up to.
//!
//! Resolution happens in two steps so that every later rule can point at the environment that
//! set a value: [`Effective`] keeps each value with its position, then
//! [`Resolver::environment`] checks and parses them into [`model::Environment`].

use super::suggest::suggest;
use super::{pos, Resolver};
use crate::diag::Pos;
use crate::model;
use crate::names::check_object_name;
use crate::raw::{self, S};
use crate::tree::OrderedMap;
use crate::values;
use std::collections::{BTreeMap, BTreeSet};

/// An environment with its `extends` chain applied. Values keep the position where they were
/// set, so diagnostics point at the environment that set them.
#[derive(Default)]
pub(super) struct Effective<'a> {
    pub(super) namespace: Option<&'a S<String>>,
    pub(super) hostname: Option<&'a S<String>>,
    pub(super) server_ip: Option<&'a S<String>>,
    pub(super) tailscale_ip: Option<&'a S<String>>,
    pub(super) tls: Option<&'a S<raw::Tls>>,
    pub(super) endpoint_mode: Option<&'a S<String>>,
    pub(super) publish_mode: Option<&'a S<String>>,
    pub(super) secrets_from: Option<&'a S<String>>,
    pub(super) http_port: Option<&'a S<u64>>,
    pub(super) https_port: Option<&'a S<u64>>,
    pub(super) description: Option<&'a String>,
    pub(super) images: BTreeMap<String, (&'a S<String>, &'a S<String>)>,
    pub(super) disabled: BTreeMap<String, (Pos, String)>,
    pub(super) overrides: BTreeMap<String, Vec<&'a raw::ServiceOverride>>,
    pub(super) external: BTreeMap<String, Vec<&'a raw::ExternalOverride>>,
    pub(super) vault: Option<&'a S<raw::VaultSection>>,
    pub(super) alerts: Option<&'a S<raw::Alerts>>,
    pub(super) backup: Option<&'a S<raw::Backup>>,
}

impl<'a> Resolver<'a> {
    pub(super) fn check_all_extends(&mut self) {
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

    pub(super) fn choose_environment(&mut self, env: Option<&str>) -> Option<String> {
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
    pub(super) fn chain(&mut self, name: &str) -> Option<Vec<String>> {
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

    pub(super) fn effective(&mut self, chain: &[String]) -> Effective<'a> {
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
                secrets_from,
                http_port,
                https_port,
                alerts,
                backup
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

    pub(super) fn environment(
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
            let v = v.filter(|v| v.value != "none")?;
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
        let alerts = self.alerts(eff.alerts);
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
                        ca_server: self.ca_server(&t.value),
                        ca_certificate: self.ca_certificate(&t.value),
                        certificates_duration: self.certificates_duration(&t.value),
                    },
                    "letsencrypt-staging" => {
                        self.acme_private_fields_refused(&t.value);
                        model::Tls::LetsEncryptStaging {
                            email: need_email(self),
                        }
                    }
                    "self-signed" => {
                        self.acme_private_fields_refused(&t.value);
                        model::Tls::SelfSigned
                    }
                    "none" => {
                        self.acme_private_fields_refused(&t.value);
                        model::Tls::None
                    }
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
        let secrets_from = eff.secrets_from.and_then(|v| {
            match crate::secrets_from::parse(&v.value) {
                Ok(crate::secrets_from::SecretsFrom::Dotenv(p)) if p.is_relative() => Some(
                    crate::secrets_from::SecretsFrom::Dotenv(self.spec_dir.join(p)),
                ),
                Ok(f) => Some(f),
                Err(e) => {
                    self.err("invalid-secrets-from", pos(v), e).help = Some(
                        "e.g. `secrets_from: doppler:sprocket/prd`, `dotenv:secrets/offline.env` or `env`".into(),
                    );
                    None
                }
            }
        });
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
            secrets_from,
            tool_image: eff
                .images
                .get(crate::names::TOOL_IMAGE)
                .map(|(_, v)| v.value.clone())
                .unwrap_or_else(|| crate::names::TOOL_IMAGE.to_string()),
            alerts,
            // Resolved once the externals are known (`load::backup`).
            backup: None,
            scratch_of: None,
        })
    }

    /// One of a closed set of words; the first choice is the default. An unknown word is
    /// reported and the default used, so checking goes on.
    pub(super) fn choose<T: Copy>(
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
}

fn names<T>(m: &OrderedMap<T>) -> Vec<String> {
    m.iter().map(|(k, _)| k.value.clone()).collect()
}
