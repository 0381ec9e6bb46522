//! Which login each consumer of a datastore has: its own or the datastore's shared one. Read
//! off what `up` makes — the provisionings' logins ([`crate::provision`]), Redis's ACL users
//! among them — so `status` answers "who logs in as what" from the spec without
//! reading any datastore, in the words `plan` uses. Pure.

use serde::Serialize;
use sprocket_spec::model::Platform;

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct LoginInfo {
    pub datastore: String,
    pub consumer: String,
    /// `true`: a login of its own, made by `up`.
    pub own: bool,
    /// What it is, in words (`ACL user demo (~demo:* &demo:*)`).
    pub login: String,
}

/// Every (datastore, consumer) pair of the services running here, in spec order.
pub fn logins(p: &Platform) -> Vec<LoginInfo> {
    let provisions = crate::provision::provisions(p);
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
        let provisioned = provisions.iter().find(|pr| pr.datastore == name);
        for c in p.services() {
            if !c.uses.iter().chain(&c.uses_external).any(|u| u == name) {
                continue;
            }
            let own = provisioned.and_then(|pr| {
                pr.logins
                    .iter()
                    .find(|l| l.service == c.name)
                    .map(|l| pr.describe(l))
            });
            let login = match &own {
                Some(l) => l.clone(),
                None if provisioned.is_some()
                    && d.kind != sprocket_spec::model::DatastoreKind::Redis =>
                {
                    "none of its own (no `access`): whatever it mounts".into()
                }
                // Redis: its shared login, `default` (the administrator's password).
                None => format!(
                    "the shared `{}` login{}",
                    d.admin_user,
                    if c.secrets.iter().any(|m| m.name == d.admin_secret) {
                        format!(" (it mounts `{}`)", d.admin_secret)
                    } else {
                        String::new()
                    }
                ),
            };
            out.push(LoginInfo {
                datastore: name.to_string(),
                consumer: c.name.clone(),
                own: own.is_some() && provisioned.is_none_or(|pr| pr.per_consumer()),
                login,
            });
        }
    }
    out
}
