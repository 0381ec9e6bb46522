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
use crate::names::{access_secret, check_object_name, REDIS_ACL_SCRIPT};
use crate::raw::S;
use std::collections::BTreeSet;

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

/// A PostgreSQL role or database name we accept: printable, no whitespace, at most 63 bytes
/// (longer names are cut by the server), not `pg_…` (reserved) and not `postgres`.
fn postgres_name(n: &str) -> Result<(), String> {
    rabbitmq_name(n)?;
    if n.len() > 63 {
        return Err("is longer than 63 bytes (PostgreSQL cuts it)".into());
    }
    if n.starts_with("pg_") {
        return Err("starts with `pg_`, which PostgreSQL reserves".into());
    }
    if n == "postgres" {
        return Err("is `postgres`, the server's own".into());
    }
    Ok(())
}

/// A Redis ACL user name or key/channel pattern we accept: printable, no whitespace, and none of
/// ``'"`$\`` (they travel into the shell script that prints Redis's `user` lines).
fn redis_name(n: &str) -> Result<(), String> {
    rabbitmq_name(n)?;
    if let Some(c) = n.chars().find(|c| "'\"`$\\".contains(*c)) {
        return Err(format!("holds `{c}`"));
    }
    Ok(())
}

/// An IAM user name as AWS and SeaweedFS accept it: 1 to 64 of letters, digits and `+=,.@_-`.
fn s3_user_name(n: &str) -> Result<(), String> {
    if n.is_empty() || n.len() > 64 {
        return Err("is not 1 to 64 characters long".into());
    }
    if let Some(c) = n
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || "+=,.@_-".contains(*c)))
    {
        return Err(format!(
            "holds `{c}` (IAM user names take letters, digits and `+=,.@_-`)"
        ));
    }
    Ok(())
}

/// Whose access a name is checked for, and where.
struct Who<'w> {
    service: &'w str,
    on: &'w str,
    kind: DatastoreKind,
    at: crate::diag::Pos,
}

/// The fields of a datastore's administrator, from a service's `datastore:` or an external.
pub(super) struct AdminFields<'r> {
    pub(super) owner: &'r str,
    pub(super) kind: &'r S<String>,
    pub(super) admin_user: &'r S<String>,
    pub(super) admin_password: &'r S<String>,
    pub(super) admin_port: Option<&'r S<u64>>,
    pub(super) admin_database: Option<&'r S<String>>,
    pub(super) sslmode: Option<&'r S<String>>,
}

impl<'a> Resolver<'a> {
    /// `datastore:`: its kind, its administrator and the secret with the administrator's
    /// password (one the service mounts).
    pub(super) fn datastore(&mut self, cx: &ServiceCx<'_, 'a>) -> Option<model::Datastore> {
        let d = cx.svc.datastore.as_ref()?;
        let name = cx.name();
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
        self.datastore_admin(AdminFields {
            owner: name,
            kind: &d.value.kind,
            admin_user: &d.value.admin_user,
            admin_password: secret,
            admin_port: d.value.admin_port.as_ref(),
            admin_database: d.value.admin_database.as_ref(),
            sslmode: d.value.sslmode.as_ref(),
        })
    }

    /// A datastore's kind and administrator, checked.
    pub(super) fn datastore_admin(&mut self, f: AdminFields<'_>) -> Option<model::Datastore> {
        let name = f.owner;
        let kind = match DatastoreKind::ALL.iter().find(|(k, _)| *k == f.kind.value) {
            Some((_, k)) => *k,
            None => {
                let known: Vec<&str> = DatastoreKind::ALL.iter().map(|(k, _)| *k).collect();
                self.err(
                    "invalid-datastore-kind",
                    pos(f.kind),
                    format!("`{name}`: unknown datastore kind `{}`", f.kind.value),
                )
                .help = Some(format!("use one of: {}", known.join(", ")));
                return None;
            }
        };
        let checked = match kind {
            DatastoreKind::Rabbitmq => rabbitmq_name(&f.admin_user.value),
            // requirepass is the password of the `default` user; sprocketctl makes no other
            // administrator in Redis.
            DatastoreKind::Redis if f.admin_user.value != "default" => Err(
                "must be `default`: Redis's shared login is its `default` user, whose password is `requirepass`".into(),
            ),
            DatastoreKind::Redis => Ok(()),
            // An S3 store is an external (`admin_access_key`, `admin_secret_key`).
            DatastoreKind::S3 => {
                self.err(
                    "invalid-datastore-kind",
                    pos(f.kind),
                    format!("`{name}`: an S3 store is declared under `external`, not as a service's `datastore:`"),
                )
                .help = Some("declare it as `external: { <name>: { kind: s3, endpoint, admin_access_key, admin_secret_key, buckets } }`".into());
                return None;
            }
            DatastoreKind::Postgres => rabbitmq_name(&f.admin_user.value).and_then(|()| {
                (f.admin_user.value.len() <= 63)
                    .then_some(())
                    .ok_or_else(|| "is longer than 63 bytes".to_string())
            }),
        };
        if let Err(e) = checked {
            self.err(
                "invalid-datastore-admin",
                pos(f.admin_user),
                format!("`{name}`: the administrator's name {e}"),
            )
            .help = Some(NAME_HELP.into());
        }
        let admin_port = match f.admin_port {
            Some(p) if p.value == 0 || p.value > 65535 => {
                self.err(
                    "invalid-port",
                    pos(p),
                    format!("`{name}`: admin_port {} is not a port", p.value),
                )
                .help = Some(format!(
                    "give the port provisioning talks to, 1 to 65535, or leave it out for {}",
                    kind.default_admin_port()
                ));
                kind.default_admin_port()
            }
            Some(p) => p.value as u16,
            None => kind.default_admin_port(),
        };
        let postgres_only = |r: &mut Self, field: &str, v: Option<&S<String>>| {
            if let (Some(v), false) = (v, kind == DatastoreKind::Postgres) {
                r.err(
                    "invalid-datastore-field",
                    pos(v),
                    format!(
                        "`{name}`: `{field}` is a PostgreSQL setting; `{name}` is {}",
                        kind.name()
                    ),
                )
                .help = Some(format!("remove `{field}`"));
            }
        };
        postgres_only(self, "admin_database", f.admin_database);
        postgres_only(self, "sslmode", f.sslmode);
        let admin_database = match f.admin_database {
            Some(d) => {
                if let Err(e) = rabbitmq_name(&d.value) {
                    self.err(
                        "invalid-datastore-admin",
                        pos(d),
                        format!("`{name}`: admin_database {e}"),
                    )
                    .help = Some(
                        "name the database the administrator connects to (DigitalOcean: `defaultdb`)"
                            .into(),
                    );
                }
                d.value.clone()
            }
            None => "postgres".into(),
        };
        let sslmode = self.sslmode(name, f.sslmode);
        Some(model::Datastore {
            kind,
            admin_user: f.admin_user.value.clone(),
            admin_secret: f.admin_password.value.clone(),
            admin_port,
            admin_database,
            sslmode,
            admin_key_secret: String::new(),
            endpoint: String::new(),
            region: String::new(),
            buckets: Vec::new(),
            keys: model::S3Keys::default(),
        })
    }

    pub(super) fn sslmode(&mut self, owner: &str, v: Option<&S<String>>) -> model::SslMode {
        let Some(v) = v else {
            return model::SslMode::default();
        };
        match model::SslMode::ALL.iter().find(|(k, _)| *k == v.value) {
            Some((_, m)) => *m,
            None => {
                self.err(
                    "invalid-sslmode",
                    pos(v),
                    format!("`{owner}`: sslmode `{}` is not one sprocketctl speaks", v.value),
                )
                .help = Some(
                    "use `require` (encrypted; the default) or `disable` (plain TCP, for a server on a private network)"
                        .into(),
                );
                model::SslMode::default()
            }
        }
    }

    /// `access:`: for each datastore the service uses and names, its own login there.
    pub(super) fn access(
        &mut self,
        cx: &ServiceCx<'_, 'a>,
        uses: &[String],
        uses_external: &[String],
    ) -> Resolved {
        let name = cx.name();
        let mut out = Resolved {
            access: Vec::new(),
            mounts: Vec::new(),
        };
        for (on, a) in cx.svc.access.iter() {
            let at = pos(on);
            if !uses.contains(&on.value) && !uses_external.contains(&on.value) {
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
            // The datastore's kind and administrator: a service's `datastore:` or an external
            // with an administrator.
            let target = match cx.services.get(on.value.as_str()) {
                Some(r) => r.svc.datastore.as_ref().map(|d| {
                    (
                        DatastoreKind::ALL
                            .iter()
                            .find(|(k, _)| *k == d.value.kind.value)
                            .map(|(_, k)| *k),
                        d.value.admin_user.value.clone(),
                    )
                }),
                None => cx
                    .externals
                    .iter()
                    .find(|e| e.name == on.value)
                    .and_then(|e| e.datastore.as_ref())
                    .map(|d| (Some(d.kind), d.admin_user.clone())),
            };
            let Some((kind, admin_user)) = target else {
                let mut stores: Vec<String> = cx
                    .services
                    .iter()
                    .filter(|(_, r)| r.svc.datastore.is_some())
                    .map(|(k, _)| k.to_string())
                    .collect();
                stores.extend(
                    cx.externals
                        .iter()
                        .filter(|e| e.datastore.is_some())
                        .map(|e| e.name.clone()),
                );
                let external = cx.externals.iter().any(|e| e.name == on.value);
                self.err(
                    "access-not-datastore",
                    at,
                    format!(
                        "`{name}` asks for access to `{}`, which is not a datastore ({})",
                        on.value,
                        if external {
                            "an external without `admin_user` and `admin_password`"
                        } else {
                            "it has no `datastore:`"
                        }
                    ),
                )
                .help = Some(if external {
                    format!(
                        "give the external `{}` the administrator `up` provisions as: `admin_user` and `admin_password` (a secret); {}",
                        on.value,
                        suggest(&on.value, &stores, "datastores")
                    )
                } else {
                    format!(
                        "give `{}` a `datastore: {{ kind, admin_user, admin_password }}` block; {}",
                        on.value,
                        suggest(&on.value, &stores, "datastores")
                    )
                });
                continue;
            };
            let Some(kind) = kind else {
                continue; // reported at the datastore
            };
            let a = &a.value;
            let who = Who {
                service: name,
                on: &on.value,
                kind,
                at,
            };
            // Each field present, with its place: of the other kinds, they are mistakes.
            type Fields = [(&'static str, Option<crate::diag::Pos>)];
            let rabbitmq_fields: &Fields = &[
                ("vhost", a.vhost.as_ref().map(pos)),
                ("configure", a.configure.as_ref().map(pos)),
                ("write", a.write.as_ref().map(pos)),
                ("read", a.read.as_ref().map(pos)),
            ];
            let postgres_fields: &Fields = &[
                ("database", a.database.as_ref().map(pos)),
                ("privileges", a.privileges.as_ref().map(pos)),
            ];
            let list_at = |l: &Vec<S<String>>| l.first().map(pos).unwrap_or(at);
            let redis_fields: &Fields = &[
                ("keys", a.keys.as_ref().map(list_at)),
                ("channels", a.channels.as_ref().map(list_at)),
            ];
            let s3_fields: &Fields = &[
                (
                    "buckets",
                    a.buckets
                        .as_ref()
                        .map(|b| b.iter().next().map(|(k, _)| pos(k)).unwrap_or(at)),
                ),
                ("access_key_file", a.access_key_file.as_ref().map(pos)),
                ("secret_key_file", a.secret_key_file.as_ref().map(pos)),
            ];
            let present = |f: &Fields| {
                f.iter()
                    .filter_map(|(k, p)| p.map(|p| (*k, p)))
                    .collect::<Vec<_>>()
            };
            let foreign: Vec<(&str, crate::diag::Pos)> = match kind {
                DatastoreKind::Rabbitmq => [
                    present(postgres_fields),
                    present(redis_fields),
                    present(s3_fields),
                ]
                .concat(),
                DatastoreKind::Postgres => [
                    present(rabbitmq_fields),
                    present(redis_fields),
                    present(s3_fields),
                ]
                .concat(),
                DatastoreKind::Redis => [
                    present(rabbitmq_fields),
                    present(postgres_fields),
                    present(s3_fields),
                ]
                .concat(),
                DatastoreKind::S3 => [
                    present(rabbitmq_fields),
                    present(postgres_fields),
                    present(redis_fields),
                    present(&[("password_file", a.password_file.as_ref().map(pos))]),
                ]
                .concat(),
            };
            for (field, at) in foreign {
                self.err(
                    "invalid-access",
                    at,
                    format!(
                        "`{name}`: `{field}` does not apply to `{}`, a {} datastore",
                        on.value,
                        kind.name()
                    ),
                )
                .help = Some(match kind {
                    DatastoreKind::Rabbitmq => {
                        "RabbitMQ access takes `user`, `vhost`, `configure`, `write`, `read` and `password_file`".into()
                    }
                    DatastoreKind::Postgres => {
                        "PostgreSQL access takes `user`, `database`, `privileges` and `password_file`".into()
                    }
                    DatastoreKind::Redis => {
                        "Redis access takes `user`, `keys`, `channels` and `password_file`".into()
                    }
                    DatastoreKind::S3 => {
                        "S3 access takes `buckets`, `user`, `access_key_file` and `secret_key_file`".into()
                    }
                });
            }
            // PostgreSQL logins and databases are the namespace's (`<ns>_<service>`): environments
            // often share one managed server (the original's roles were `sprocket_<env>`).
            // S3 users are the store's, and environments often share one store: `<ns>-<service>`.
            let default_name = match (kind, cx.env) {
                (DatastoreKind::Postgres, Some(e)) => format!("{}_{name}", e.namespace),
                (DatastoreKind::S3, Some(e)) => format!("{}-{name}", e.namespace),
                _ => name.to_string(),
            };
            let user = self.access_name(&who, "user", a.user.as_ref(), &default_name);
            if user == admin_user || user == "guest" && kind == DatastoreKind::Rabbitmq {
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
            let (mut vhost, mut configure, mut write, mut read) = Default::default();
            let (mut database, mut privileges) = (String::new(), model::Privileges::default());
            let (mut keys, mut channels) = (Vec::new(), Vec::new());
            let mut buckets = Vec::new();
            let store = cx
                .externals
                .iter()
                .find(|e| e.name == on.value)
                .and_then(|e| e.datastore.as_ref())
                .filter(|d| d.kind == DatastoreKind::S3);
            match kind {
                DatastoreKind::S3 => {
                    if let Some(store) = store {
                        buckets = self.s3_buckets(name, &on.value, at, a.buckets.as_ref(), store);
                    }
                }
                DatastoreKind::Redis => {
                    keys = self.redis_patterns(&who, "keys", a.keys.as_deref(), &user);
                    channels = self.redis_patterns(&who, "channels", a.channels.as_deref(), &user);
                }
                DatastoreKind::Rabbitmq => {
                    vhost = self.access_name(&who, "vhost", a.vhost.as_ref(), name);
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
                    configure = pattern(self, "configure", &a.configure);
                    write = pattern(self, "write", &a.write);
                    read = pattern(self, "read", &a.read);
                }
                DatastoreKind::Postgres => {
                    database =
                        self.access_name(&who, "database", a.database.as_ref(), &default_name);
                    if let Some(p) = &a.privileges {
                        match model::Privileges::ALL.iter().find(|(k, _)| *k == p.value) {
                            Some((_, v)) => privileges = *v,
                            None => {
                                self.err(
                                    "invalid-access",
                                    pos(p),
                                    format!("`{name}`: unknown privileges `{}` for `{}`", p.value, on.value),
                                )
                                .help = Some(
                                    "use `owner` (the default: `up` creates the database and the service owns it), `readwrite` or `read` (in a database another consumer owns)"
                                        .into(),
                                );
                            }
                        }
                    }
                }
            }
            let (secret, password_file, key_secret, key_file) = match store {
                Some(store) => {
                    let (key_secret, key_file, secret, secret_file) =
                        self.s3_key(name, &on.value, at, a, store);
                    (secret, secret_file, key_secret, key_file)
                }
                None => {
                    let (secret, file) = self.password(name, &on.value, at, a);
                    (secret, file, String::new(), String::new())
                }
            };
            for (s, t) in [(&key_secret, &key_file), (&secret, &password_file)] {
                if !s.is_empty() {
                    out.mounts.push(model::SecretMount {
                        name: s.clone(),
                        target: t.clone(),
                        uid: 0,
                        gid: 0,
                        mode: 0o444,
                    });
                }
            }
            out.access.push(model::Access {
                on: on.value.clone(),
                kind,
                user,
                secret,
                password_file,
                vhost,
                configure,
                write,
                read,
                database,
                privileges,
                keys,
                channels,
                buckets,
                key_secret,
                key_file,
                alternate: None,
            });
        }
        out
    }

    /// The logins whose consumer takes its user name from `{access.<datastore>.user}` in
    /// its `env` (`referenced`) get their second login, checked like the first.
    pub(super) fn alternates(
        &mut self,
        cx: &ServiceCx<'_, 'a>,
        access: &mut [model::Access],
        referenced: &BTreeSet<String>,
    ) {
        for a in access.iter_mut().filter(|a| referenced.contains(&a.on)) {
            let alternate = crate::names::alternate_login(&a.user);
            let check = match a.kind {
                DatastoreKind::Postgres => postgres_name(&alternate),
                _ => rabbitmq_name(&alternate),
            };
            if let Err(e) = check {
                let at = cx
                    .svc
                    .access
                    .iter()
                    .find(|(k, _)| k.value == a.on)
                    .map(|(k, _)| pos(k))
                    .unwrap_or(pos(cx.key));
                self.err(
                    "invalid-access",
                    at,
                    format!(
                        "`{}`: the second login for `{}`, `{alternate}` (its env takes the user from `{}`), {e}",
                        cx.name(),
                        a.on,
                        crate::names::access_user_reference(&a.on)
                    ),
                )
                .help = Some(format!(
                    "give a shorter `user:` in `{}`'s access to `{}`",
                    cx.name(),
                    a.on
                ));
            }
            a.alternate = Some(alternate);
        }
    }

    /// A login's generated password: its secret (checked) and where the service mounts it.
    fn password(
        &mut self,
        name: &str,
        on: &str,
        at: crate::diag::Pos,
        a: &crate::raw::Access,
    ) -> (String, String) {
        let secret = access_secret(name, on);
        if let Err(e) = check_object_name(&secret) {
            self.err(
                "invalid-access",
                at,
                format!("`{name}`: its password's secret `{secret}` {e}"),
            )
            .help = Some(
                "the secret is named `<service>-<datastore>-password`: shorten the names".into(),
            );
        }
        if let Some((k, _)) = self.spec.secrets.iter().find(|(k, _)| k.value == secret) {
            self.err(
                    "access-secret-declared",
                    pos(k),
                    format!(
                        "secret `{secret}` is the password `up` generates for `{name}`'s access to `{on}`"
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
            None => format!("/run/secrets/{on}-password"),
        };
        (secret, password_file)
    }

    /// A Redis user's key or channel patterns: as given, or `<user>:*`.
    fn redis_patterns(
        &mut self,
        who: &Who<'_>,
        field: &str,
        given: Option<&[S<String>]>,
        user: &str,
    ) -> Vec<String> {
        let Some(given) = given else {
            return vec![format!("{user}:*")];
        };
        if given.is_empty() {
            self.err(
                "invalid-access",
                who.at,
                format!("`{}`: `{field}` for `{}` is empty", who.service, who.on),
            )
            .help = Some(format!(
                "list the patterns, e.g. `{field}: [\"{user}:*\"]`, or leave `{field}` out for that default"
            ));
        }
        for p in given {
            let prefixed = p.value.starts_with('~') || p.value.starts_with('&');
            if let Err(e) = redis_name(&p.value).and_then(|()| {
                (!prefixed)
                    .then_some(())
                    .ok_or_else(|| "starts with Redis's `~`/`&`, which sprocketctl adds".into())
            }) {
                self.err(
                    "invalid-access",
                    pos(p),
                    format!(
                        "`{}`: the {field} pattern `{}` for `{}` {e}",
                        who.service, p.value, who.on
                    ),
                )
                .help = Some(format!(
                    "write a glob pattern as Redis matches it, e.g. `{user}:*` or `cache:{user}:*`"
                ));
            }
        }
        given.iter().map(|p| p.value.clone()).collect()
    }

    fn access_name(
        &mut self,
        who: &Who<'_>,
        field: &str,
        given: Option<&S<String>>,
        default: &str,
    ) -> String {
        let (service, on, kind, at) = (who.service, who.on, who.kind, who.at);
        let check = |n: &str| match kind {
            DatastoreKind::Rabbitmq => rabbitmq_name(n),
            DatastoreKind::Postgres => postgres_name(n),
            DatastoreKind::Redis => redis_name(n),
            // IAM user names: letters, digits and `+=,.@_-`, at most 64.
            DatastoreKind::S3 => s3_user_name(n),
        };
        let Some(v) = given else {
            // A derived name too long for PostgreSQL is reported where it comes from.
            if let Err(e) = check(default) {
                self.err(
                    "invalid-access",
                    at,
                    format!("`{service}`: the {field} for `{on}` (its name, `{default}`) {e}"),
                )
                .help = Some(format!("give `{field}:` in `{service}`'s access to `{on}`"));
            }
            return default.to_string();
        };
        if let Err(e) = check(&v.value) {
            self.err(
                "invalid-access",
                pos(v),
                format!("`{service}`: the {field} for `{on}` {e}"),
            )
            .help = Some(NAME_HELP.into());
        }
        v.value.clone()
    }

    /// A Redis datastore must load its ACL users: its command runs the derived script
    /// ([`REDIS_ACL_SCRIPT`]) into the config it starts with (the `aclfile` line), or the users
    /// `up` makes would not survive a restart and `ACL SAVE` would fail; and where it has
    /// consumers with `access`, that file needs a named volume, or a new task would start
    /// without them.
    fn check_redis_acl_loaded(&mut self, p: &model::Platform) {
        for s in p.services() {
            if s.datastore.as_ref().map(|d| d.kind) != Some(DatastoreKind::Redis) {
                continue;
            }
            let users: Vec<&str> = p
                .services()
                .flat_map(|c| {
                    c.access
                        .iter()
                        .filter(|a| a.on == s.name)
                        .map(|_| c.name.as_str())
                })
                .collect();
            let runs =
                |v: &Option<Vec<String>>| v.iter().flatten().any(|a| a.contains(REDIS_ACL_SCRIPT));
            let at = self
                .spec
                .layers
                .iter()
                .flat_map(|(_, l)| l.services.iter())
                .find(|(k, _)| k.value == s.name)
                .and_then(|(_, svc)| svc.datastore.as_ref())
                .map(|d| pos(&d.value.kind))
                .unwrap_or(crate::diag::Pos::UNKNOWN);
            let volume = s.volumes.iter().any(|v| {
                matches!(
                    v,
                    model::Volume::Named {
                        read_only: false,
                        ..
                    } | model::Volume::Bind {
                        read_only: false,
                        ..
                    }
                )
            });
            if !users.is_empty() && !volume {
                self.err(
                    "redis-acl-needs-volume",
                    at,
                    format!(
                        "`{}` is a Redis datastore with ACL users ({}), but no writable volume for the file that keeps them",
                        s.name,
                        users.join(", ")
                    ),
                )
                .help = Some(
                    "give it a volume (`volumes: [{ volume: redis-data, target: /data }]`): its users live in an aclfile there, made at run time, and a new task without it would start with none"
                        .into(),
                );
            }
            if runs(&s.command) || runs(&s.args) {
                continue;
            }
            self.err(
                "redis-acl-not-loaded",
                at,
                format!(
                    "`{}` is a Redis datastore, but its command never runs {REDIS_ACL_SCRIPT}, which makes its consumers' ACL users{}",
                    s.name,
                    if users.is_empty() { String::new() } else { format!(" ({})", users.join(", ")) }
                ),
            )
            .help = Some(format!(
                "put its output into the config Redis reads from stdin: `acl=$(sh {REDIS_ACL_SCRIPT}) || exit 1`, then `$acl` in the heredoc after `requirepass` (see the example spec's `redis`)"
            ));
        }
    }

    /// Rules across consumers: two consumers never share a login in one datastore.
    pub(super) fn check_access(&mut self, p: &model::Platform) {
        self.check_redis_acl_loaded(p);
        let mut seen: std::collections::BTreeMap<(&str, &str), (&str, bool)> = Default::default();
        let mut owners: std::collections::BTreeMap<(&str, &str), &str> = Default::default();
        for s in p.services() {
            for a in &s.access {
                let at = || {
                    self.spec
                        .layers
                        .iter()
                        .flat_map(|(_, l)| l.services.iter())
                        .find(|(k, _)| k.value == s.name)
                        .and_then(|(_, svc)| svc.access.iter().find(|(k, _)| k.value == a.on))
                        .map(|(k, _)| pos(k))
                        .unwrap_or(crate::diag::Pos::UNKNOWN)
                };
                if a.kind == DatastoreKind::Postgres && a.privileges == model::Privileges::Owner {
                    if let Some(other) =
                        owners.insert((a.on.as_str(), a.database.as_str()), &s.name)
                    {
                        let at = at();
                        self.err(
                            "duplicate-database-owner",
                            at,
                            format!(
                                "`{}` and `{other}` both own the database `{}` in `{}`",
                                s.name, a.database, a.on
                            ),
                        )
                        .help = Some(
                            "a database has one owner: give the other consumer `privileges: readwrite` (or `read`)"
                                .into(),
                        );
                    }
                }
                // A login's alternate (`<user>_b`) is a login too: no other may take its name.
                for user in std::iter::once(&a.user).chain(&a.alternate) {
                    let second = a.alternate.as_ref() == Some(user);
                    if let Some((other, other_second)) =
                        seen.insert((a.on.as_str(), user.as_str()), (&s.name, second))
                    {
                        let at = at();
                        let whose = match (second, other_second) {
                            (true, _) => format!(" (`{}`'s second login)", s.name),
                            (_, true) => format!(" (`{other}`'s second login)"),
                            _ => String::new(),
                        };
                        let whose = if whose.is_empty() {
                            whose
                        } else {
                            format!(
                                "{whose}: a consumer whose env takes its user from `{{access.{}.user}}` alternates between `<user>` and `<user>_b`",
                                a.on
                            )
                        };
                        self.err(
                            "duplicate-access-user",
                            at,
                            format!(
                                "`{}` and `{other}` both log in to `{}` as `{user}`{whose}",
                                s.name, a.on
                            ),
                        )
                        .help = Some(
                            "each service gets its own login: drop `user:` on one of them (it defaults to the service's name; on PostgreSQL `<namespace>_<service>`)"
                                .into(),
                        );
                    }
                }
            }
        }
    }
}

/// The generated secrets the consumers' logins need: alphanumeric (no quoting anywhere),
/// 48 characters, synced to Vault like every generated secret. An S3 key of its own is two:
/// its access key id (20 characters, as AWS's) and its secret key; a shared S3 key is the
/// external's, from the source of truth.
pub(super) fn derived_secrets(p: &model::Platform) -> Vec<model::Secret> {
    let generated = |name: &str, length: usize| model::Secret {
        name: name.to_string(),
        source: model::SecretSource::Generate,
        key: name.to_string(),
        length,
        min_length: 0,
        alphabet: model::Alphabet::Alphanumeric,
        pattern: None,
        vault_path: None,
        vault_key: None,
    };
    let mut out = Vec::new();
    for a in p.services().flat_map(|s| &s.access) {
        if a.kind != DatastoreKind::S3 {
            out.push(generated(&a.secret, 48));
            continue;
        }
        let shared = p
            .externals
            .iter()
            .find(|e| e.name == a.on)
            .and_then(|e| e.datastore.as_ref())
            .is_some_and(|d| d.admin_secret == a.secret);
        if !shared {
            out.push(generated(&a.key_secret, 20));
            out.push(generated(&a.secret, 48));
        }
    }
    out
}
