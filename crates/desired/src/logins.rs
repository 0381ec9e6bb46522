//! Which login each consumer of a datastore has: its own (from `access`) or the datastore's
//! shared one. `status` shows it, so "who logs in as what" is answered from the spec without
//! reading any datastore. Pure.

use serde::Serialize;
use sprocket_spec::model::{DatastoreKind, Platform};

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct LoginInfo {
    pub datastore: String,
    pub consumer: String,
    /// `true`: a login of its own, made by `up`.
    pub own: bool,
    /// What it is, in words (`ACL user demo (keys demo:*, channels demo:*)`).
    pub login: String,
}

/// Every (datastore, consumer) pair of the services running here, in spec order.
pub fn logins(p: &Platform) -> Vec<LoginInfo> {
    let stores = p
        .services()
        .filter_map(|s| s.datastore.as_ref().map(|d| (s.name.as_str(), d)))
        .chain(
            p.externals
                .iter()
                .filter_map(|x| x.datastore.as_ref().map(|d| (x.name.as_str(), d))),
        );
    let mut out = Vec::new();
    for (name, d) in stores {
        for c in p.services() {
            if !c.uses.iter().chain(&c.uses_external).any(|u| u == name) {
                continue;
            }
            let own = c.access.iter().find(|a| a.on == name);
            let login = match (own, d.kind) {
                (Some(a), DatastoreKind::Redis) => format!(
                    "ACL user {} (keys {}, channels {})",
                    a.user,
                    a.keys.join(" "),
                    a.channels.join(" ")
                ),
                (Some(a), DatastoreKind::Rabbitmq) => {
                    format!("user {} on vhost {}", a.user, a.vhost)
                }
                (Some(a), DatastoreKind::Postgres) => format!(
                    "role {} on database {} ({})",
                    a.user,
                    a.database,
                    a.privileges.name()
                ),
                (None, DatastoreKind::Redis) => {
                    let mounted = c.secrets.iter().any(|m| m.name == d.admin_secret);
                    format!(
                        "the shared `{}` login{}",
                        d.admin_user,
                        if mounted {
                            format!(" (it mounts `{}`)", d.admin_secret)
                        } else {
                            String::new()
                        }
                    )
                }
                (None, _) => "none of its own (no `access`): whatever it mounts".into(),
            };
            out.push(LoginInfo {
                datastore: name.to_string(),
                consumer: c.name.clone(),
                own: own.is_some(),
                login,
            });
        }
    }
    out
}
