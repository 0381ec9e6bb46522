//! A datastore's `datastore:` block and its consumers' `access`: who gets which login where.
//!
//! A consumer never writes a password: it names the datastore it `uses` and what it needs
//! there, and gets its own login (user name derived from the service unless given), a generated
//! password (the secret [`access_secret`], synced to Vault and mounted like any other) and the
//! grants it asked for, nothing more. `up` provisions them in the datastore.

use super::service::ServiceCx;
use super::suggest::suggest;
use super::{pos, Resolver};
use crate::model::{self, DatastoreKind};
use crate::names::{access_secret, check_object_name};
use crate::raw::S;

/// What a consumer's access resolves to: the login and the mount of its password.
pub(super) struct Resolved {
    pub(super) access: Vec<model::Access>,
    pub(super) mounts: Vec<model::SecretMount>,
}

const NAME_HELP: &str =
    "use printable characters without spaces, at most 255 bytes, e.g. the service's name";

/// A RabbitMQ user or vhost name we accept: printable, no whitespace (names travel in API
/// paths, escaped; `/`, the default vhost, is fine), at most 255 bytes.
fn rabbitmq_name(n: &str) -> Result<(), String> {
    if n.is_empty() {
        return Err("is empty".into());
    }
    if n.len() > 255 {
        return Err("is longer than 255 bytes".into());
    }
    if n.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err("holds a space or a control character".into());
    }
    Ok(())
}

impl<'a> Resolver<'a> {
    /// `datastore:`: its kind, its administrator and the secret with the administrator's
    /// password (one the service mounts).
    pub(super) fn datastore(&mut self, cx: &ServiceCx<'_, 'a>) -> Option<model::Datastore> {
        let d = cx.svc.datastore.as_ref()?;
        let name = cx.name();
        let kind = match DatastoreKind::ALL
            .iter()
            .find(|(k, _)| *k == d.value.kind.value)
        {
            Some((_, k)) => *k,
            None => {
                let known: Vec<&str> = DatastoreKind::ALL.iter().map(|(k, _)| *k).collect();
                self.err(
                    "invalid-datastore-kind",
                    pos(&d.value.kind),
                    format!("`{name}`: unknown datastore kind `{}`", d.value.kind.value),
                )
                .help = Some(format!("use one of: {}", known.join(", ")));
                return None;
            }
        };
        if let Err(e) = rabbitmq_name(&d.value.admin_user.value) {
            self.err(
                "invalid-datastore-admin",
                pos(&d.value.admin_user),
                format!("`{name}`: the administrator's name {e}"),
            )
            .help = Some(NAME_HELP.into());
        }
        let secret = &d.value.admin_password;
        if !cx
            .svc
            .secrets
            .iter()
            .any(|s| s.value.name() == secret.value)
        {
            self.err(
                "datastore-admin-secret-not-mounted",
                pos(secret),
                format!(
                    "`{name}`: the administrator's password `{}` is not a secret `{name}` mounts",
                    secret.value
                ),
            )
            .help = Some(format!(
                "name the secret the datastore reads its administrator's password from, and list it under `{name}`'s `secrets`"
            ));
        }
        let admin_port = match &d.value.admin_port {
            Some(p) if p.value == 0 || p.value > 65535 => {
                self.err(
                    "invalid-port",
                    pos(p),
                    format!("`{name}`: admin_port {} is not a port", p.value),
                )
                .help = Some(format!(
                    "give the port of its management API, 1 to 65535, or leave it out for {}",
                    kind.default_admin_port()
                ));
                kind.default_admin_port()
            }
            Some(p) => p.value as u16,
            None => kind.default_admin_port(),
        };
        Some(model::Datastore {
            kind,
            admin_user: d.value.admin_user.value.clone(),
            admin_secret: secret.value.clone(),
            admin_port,
        })
    }

    /// `access:`: for each datastore the service uses and names, its own login there.
    pub(super) fn access(&mut self, cx: &ServiceCx<'_, 'a>, uses: &[String]) -> Resolved {
        let name = cx.name();
        let mut out = Resolved {
            access: Vec::new(),
            mounts: Vec::new(),
        };
        for (on, a) in cx.svc.access.iter() {
            let at = pos(on);
            if !uses.contains(&on.value) {
                self.err(
                    "access-without-uses",
                    at,
                    format!(
                        "`{name}` asks for access to `{}`, which it does not use",
                        on.value
                    ),
                )
                .help = Some(format!("add `{}` to `{name}`'s `uses`", on.value));
                continue;
            }
            let Some(ds) = cx
                .services
                .get(on.value.as_str())
                .and_then(|r| r.svc.datastore.as_ref())
            else {
                let stores: Vec<String> = cx
                    .services
                    .iter()
                    .filter(|(_, r)| r.svc.datastore.is_some())
                    .map(|(k, _)| k.to_string())
                    .collect();
                self.err(
                    "access-not-datastore",
                    at,
                    format!(
                        "`{name}` asks for access to `{}`, which is not a datastore (it has no `datastore:`)",
                        on.value
                    ),
                )
                .help = Some(format!(
                    "give `{}` a `datastore: {{ kind, admin_user, admin_password }}` block; {}",
                    on.value,
                    suggest(&on.value, &stores, "datastores")
                ));
                continue;
            };
            let Some((_, kind)) = DatastoreKind::ALL
                .iter()
                .find(|(k, _)| *k == ds.value.kind.value)
            else {
                continue; // reported at the datastore
            };
            let a = &a.value;
            let user = self.access_name(name, &on.value, "user", a.user.as_ref(), name);
            if user == ds.value.admin_user.value || user == "guest" {
                let at = a.user.as_ref().map(pos).unwrap_or(at);
                self.err(
                    "access-user-reserved",
                    at,
                    format!(
                        "`{name}` would log in to `{}` as `{user}`, which is {}",
                        on.value,
                        if user == "guest" { "RabbitMQ's well-known guest account" } else { "the datastore's administrator" }
                    ),
                )
                .help = Some(format!("give `{name}` a `user:` of its own in its `access` (the default is the service's name)"));
            }
            let vhost = self.access_name(name, &on.value, "vhost", a.vhost.as_ref(), name);
            let pattern = |r: &mut Self, field: &str, v: &Option<S<String>>| -> String {
                let Some(v) = v else { return ".*".into() };
                if let Err(e) = regex::Regex::new(&v.value) {
                    r.err(
                        "invalid-access-pattern",
                        pos(v),
                        format!(
                            "`{name}`: the `{field}` pattern for `{}` is not a regular expression: {}",
                            on.value,
                            e.to_string().lines().last().unwrap_or_default()
                        ),
                    )
                    .help = Some(
                        "RabbitMQ matches queue and exchange names against it: `^demo\\.` for names starting `demo.`, `.*` for all, `^$` for none"
                            .into(),
                    );
                }
                v.value.clone()
            };
            let configure = pattern(self, "configure", &a.configure);
            let write = pattern(self, "write", &a.write);
            let read = pattern(self, "read", &a.read);
            let secret = access_secret(name, &on.value);
            if let Err(e) = check_object_name(&secret) {
                self.err(
                    "invalid-access",
                    at,
                    format!("`{name}`: its password's secret `{secret}` {e}"),
                )
                .help = Some(
                    "the secret is named `<service>-<datastore>-password`: shorten the names"
                        .into(),
                );
            }
            if let Some((k, _)) = self.spec.secrets.iter().find(|(k, _)| k.value == secret) {
                self.err(
                    "access-secret-declared",
                    pos(k),
                    format!(
                        "secret `{secret}` is the password `up` generates for `{name}`'s access to `{}`",
                        on.value
                    ),
                )
                .help = Some("rename this secret: the name is taken by the derived one".into());
            }
            let password_file = match &a.password_file {
                Some(f) if !f.value.starts_with('/') => {
                    self.err(
                        "invalid-access",
                        pos(f),
                        format!(
                            "`{name}`: password_file `{}` is not an absolute path",
                            f.value
                        ),
                    );
                    f.value.clone()
                }
                Some(f) => f.value.clone(),
                None => format!("/run/secrets/{}-password", on.value),
            };
            out.mounts.push(model::SecretMount {
                name: secret.clone(),
                target: password_file.clone(),
                uid: 0,
                gid: 0,
                mode: 0o444,
            });
            out.access.push(model::Access {
                on: on.value.clone(),
                kind: *kind,
                user,
                secret,
                password_file,
                vhost,
                configure,
                write,
                read,
            });
        }
        out
    }

    fn access_name(
        &mut self,
        service: &str,
        on: &str,
        field: &str,
        given: Option<&S<String>>,
        default: &str,
    ) -> String {
        let Some(v) = given else {
            return default.to_string();
        };
        if let Err(e) = rabbitmq_name(&v.value) {
            self.err(
                "invalid-access",
                pos(v),
                format!("`{service}`: the {field} for `{on}` {e}"),
            )
            .help = Some(NAME_HELP.into());
        }
        v.value.clone()
    }

    /// Rules across consumers: two consumers never share a login in one datastore.
    pub(super) fn check_access(&mut self, p: &model::Platform) {
        let mut seen: std::collections::BTreeMap<(&str, &str), &str> = Default::default();
        for s in p.services() {
            for a in &s.access {
                if let Some(other) = seen.insert((a.on.as_str(), a.user.as_str()), &s.name) {
                    let at = self
                        .spec
                        .layers
                        .iter()
                        .flat_map(|(_, l)| l.services.iter())
                        .find(|(k, _)| k.value == s.name)
                        .and_then(|(_, svc)| svc.access.iter().find(|(k, _)| k.value == a.on))
                        .map(|(k, _)| pos(k))
                        .unwrap_or(crate::diag::Pos::UNKNOWN);
                    self.err(
                        "duplicate-access-user",
                        at,
                        format!(
                            "`{}` and `{other}` both log in to `{}` as `{}`",
                            s.name, a.on, a.user
                        ),
                    )
                    .help = Some(
                        "each service gets its own login: drop `user:` on one of them (it defaults to the service's name)"
                            .into(),
                    );
                }
            }
        }
    }
}

/// The generated secrets the consumers' logins need: alphanumeric (no quoting anywhere),
/// 48 characters, synced to Vault like every generated secret.
pub(super) fn derived_secrets(p: &model::Platform) -> Vec<model::Secret> {
    p.services()
        .flat_map(|s| &s.access)
        .map(|a| model::Secret {
            name: a.secret.clone(),
            source: model::SecretSource::Generate,
            key: a.secret.clone(),
            length: 48,
            min_length: 0,
            alphabet: model::Alphabet::Alphanumeric,
            pattern: None,
            vault_path: None,
            vault_key: None,
        })
        .collect()
}
