//! Docker's name limits, checked on the names `desired` derives: Swarm refuses a service or
//! network name over 63 characters and a config or secret name over 64, and `up` would only
//! find out mid-run, after earlier layers were applied (and, for a token secret, after Vault
//! issued the token).
//!
//! The formats (`crates/desired/src/state.rs` derives the names):
//! - service `<ns>_<service>`;
//! - networks: one per `uses` edge, [`pair_network`] (`<ns>_<consumer>_to_<provider>`), and
//!   one per routed service, [`edge_network`] (`<ns>_edge_<service>`);
//! - config `<ns>_<service>-<file stem>-<12 hex>`;
//! - secrets `<ns>_<name>-<12 hex>`, the Vault-made ones included (`vault-token-<service>`,
//!   `vault-unseal`, and the backups' `vault-token-sprocketctl-backup`).
//!
//! A backed-up environment is also deployed by `sprocketctl drill` as `<ns>-drill`, so its
//! names are checked again in that longer namespace: what only it makes too long is a warning
//! (`up` works; the drill's own load of the spec refuses it, before building anything).

use super::environment::Effective;
use super::{pos, Resolver, ServiceRef};
use crate::diag::Pos;
use crate::model::{Platform, Scratch};
use crate::names::{
    config_stem, edge_network, pair_network, BACKUP_TOKEN_HOLDER, MAX_CONFIG_NAME,
    MAX_NETWORK_NAME, MAX_SECRET_NAME, MAX_SERVICE_NAME, TOKEN_SECRET_PREFIX, UNSEAL_SECRET,
    VERSION_HEX,
};
use std::collections::HashMap;

/// `-` and the version's hex digits, as they end config and secret names.
const VERSION: usize = 1 + VERSION_HEX;

impl<'a> Resolver<'a> {
    pub(super) fn check_name_lengths(
        &mut self,
        p: &Platform,
        services: &HashMap<&'a str, ServiceRef<'a>>,
        eff: &Effective<'a>,
    ) {
        let env = &p.environment;
        self.check_names_in(p, services, eff, &env.namespace, false);
        // A drill of a backed-up environment makes the same names in `<ns>-drill` (not for the
        // drill's own platform, already in it): what only that makes too long is a warning —
        // `up` works; `drill` would stop at its start, on the same check.
        if env.backup.is_some() && env.scratch_of.is_none() {
            self.check_names_in(
                p,
                services,
                eff,
                &Scratch::namespace_of(&env.namespace),
                true,
            );
        }
    }

    /// Checks the names made in namespace `ns` (`drill`: a drill's scratch namespace, where
    /// only a name that fits in the environment's own namespace is reported, as a warning).
    fn check_names_in(
        &mut self,
        p: &Platform,
        services: &HashMap<&'a str, ServiceRef<'a>>,
        eff: &Effective<'a>,
        ns: &str,
        drill: bool,
    ) {
        let env = &p.environment;
        let namespace = env.namespace.as_str();
        let extra = ns.len() - namespace.len();
        let too_long = |this: &mut Self, at: Pos, what: String, len: usize, max: usize| {
            if len <= max || (drill && len - extra > max) {
                return;
            }
            let help = format!(
                "shorten the names it is made of, or the namespace `{namespace}` (set `namespace` in the environment)"
            );
            if drill {
                this.warn(
                    "drill-name-too-long",
                    at,
                    format!(
                        "{what} would be {len} characters in `sprocketctl drill`'s scratch namespace `{ns}`; Swarm allows at most {max}: a drill of this environment stops before it starts"
                    ),
                )
                .help = Some(help);
            } else {
                this.err(
                    "name-too-long",
                    at,
                    format!("{what} would be {len} characters; Swarm allows at most {max}"),
                )
                .help = Some(help);
            }
        };
        // `<ns>_` starts every name.
        let prefix = ns.len() + 1;
        let key_pos = |svc: &str| {
            services
                .get(svc)
                .map(|s| pos(s.key))
                .unwrap_or(Pos::UNKNOWN)
        };
        for s in p.services() {
            let raw = services.get(s.name.as_str());
            too_long(
                self,
                key_pos(&s.name),
                format!("service name `{ns}_{}`", s.name),
                prefix + s.name.len(),
                MAX_SERVICE_NAME,
            );
            for used in &s.uses {
                let at = raw
                    .and_then(|r| r.svc.uses.iter().find(|u| &u.value == used))
                    .map(pos)
                    .unwrap_or_else(|| key_pos(&s.name));
                let net = pair_network(ns, &s.name, used);
                too_long(
                    self,
                    at,
                    format!(
                        "`{}` uses `{used}`: the network between them (`{net}`)",
                        s.name
                    ),
                    net.len(),
                    MAX_NETWORK_NAME,
                );
            }
            if let Some(r) = s.routes.first() {
                let net = edge_network(ns, &s.name);
                too_long(
                    self,
                    r.at,
                    format!("`{}` is routed: its edge network (`{net}`)", s.name),
                    net.len(),
                    MAX_NETWORK_NAME,
                );
            }
            for (i, c) in s.configs.iter().enumerate() {
                let stem = config_stem(&c.file);
                let at = raw
                    .and_then(|r| r.svc.configs.get(i))
                    .map(|c| pos(&c.value.file))
                    .unwrap_or_else(|| key_pos(&s.name));
                too_long(
                    self,
                    at,
                    format!("config name `{ns}_{}-{stem}-<{VERSION_HEX} hex>`", s.name),
                    prefix + s.name.len() + 1 + stem.len() + VERSION,
                    MAX_CONFIG_NAME,
                );
            }
            for a in &s.access {
                let at = raw
                    .and_then(|r| r.svc.access.iter().find(|(k, _)| k.value == a.on))
                    .map(|(k, _)| pos(k))
                    .unwrap_or_else(|| key_pos(&s.name));
                too_long(
                    self,
                    at,
                    format!(
                        "`{}`'s access to `{}`: its password's secret `{ns}_{}-<{VERSION_HEX} hex>`",
                        s.name, a.on, a.secret
                    ),
                    prefix + a.secret.len() + VERSION,
                    MAX_SECRET_NAME,
                );
            }
            if s.datastore.is_some() {
                let at = raw
                    .and_then(|r| r.svc.datastore.as_ref())
                    .map(pos)
                    .unwrap_or_else(|| key_pos(&s.name));
                let net = crate::names::provision_network(ns, &s.name);
                too_long(
                    self,
                    at,
                    format!("datastore `{}`: its provisioning network (`{net}`)", s.name),
                    net.len(),
                    MAX_NETWORK_NAME,
                );
                too_long(
                    self,
                    at,
                    format!(
                        "datastore `{}`: its provisioning marker `{ns}_provisioned-{}-<{VERSION_HEX} hex>`",
                        s.name, s.name
                    ),
                    prefix + "provisioned-".len() + s.name.len() + VERSION,
                    MAX_CONFIG_NAME,
                );
                too_long(
                    self,
                    at,
                    format!(
                        "datastore `{}`: its provisioning task `{ns}_provision-{}-<6 hex>`",
                        s.name, s.name
                    ),
                    prefix + "provision-".len() + s.name.len() + 7,
                    MAX_SERVICE_NAME,
                );
            }
            if !s.vault_paths.is_empty() {
                let at = raw
                    .and_then(|r| r.svc.vault.first())
                    .map(pos)
                    .unwrap_or_else(|| key_pos(&s.name));
                too_long(
                    self,
                    at,
                    format!(
                        "`{}` reads Vault: its token secret `{ns}_{TOKEN_SECRET_PREFIX}{}-<{VERSION_HEX} hex>`",
                        s.name, s.name
                    ),
                    prefix + TOKEN_SECRET_PREFIX.len() + s.name.len() + VERSION,
                    MAX_SECRET_NAME,
                );
            }
        }
        // The backups' own Vault token, where the agent renews it.
        if p.backups_hold_a_vault_token() {
            let at = eff
                .backup
                .map(pos)
                .or(eff.namespace.map(pos))
                .unwrap_or(Pos::UNKNOWN);
            too_long(
                self,
                at,
                format!(
                    "the backups' Vault token secret `{ns}_{TOKEN_SECRET_PREFIX}{BACKUP_TOKEN_HOLDER}-<{VERSION_HEX} hex>`"
                ),
                prefix + TOKEN_SECRET_PREFIX.len() + BACKUP_TOKEN_HOLDER.len() + VERSION,
                MAX_SECRET_NAME,
            );
        }
        if let Some(agent) = p.unseal_agent() {
            too_long(
                self,
                key_pos(&agent.name),
                format!("the unseal agent's secret `{ns}_{UNSEAL_SECRET}-<{VERSION_HEX} hex>`"),
                prefix + UNSEAL_SECRET.len() + VERSION,
                MAX_SECRET_NAME,
            );
        }
        let spec = self.spec;
        for (name, _) in spec.secrets.iter() {
            too_long(
                self,
                pos(name),
                format!("secret name `{ns}_{}-<{VERSION_HEX} hex>`", name.value),
                prefix + name.value.len() + VERSION,
                MAX_SECRET_NAME,
            );
        }
    }
}
