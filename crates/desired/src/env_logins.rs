//! `{access.<datastore>.user}` in a service's env: the user of its own PostgreSQL or RabbitMQ
//! login, which is one of two that alternate per version of its password
//! ([`crate::provision::alternate_current`]). The env keeps the reference in the desired state
//! (its hash does not change with a rotation); the engine gets the user the mounted password's
//! version makes current ([`ServiceSpec::env_at`], when the spec goes to the engine), and
//! `plan` takes either user for the reference ([`ServiceSpec::env_agrees`]). Pure.

use crate::state::ServiceSpec;
use std::collections::BTreeMap;

/// One `{access.<datastore>.user}` of a service's env: its login's two users and the secret
/// whose version picks between them ([`crate::provision::alternate_current`]).
#[derive(Debug, Clone, PartialEq)]
pub struct EnvLogin {
    pub reference: String,
    pub user: String,
    pub alternate: String,
    /// Logical name of the password's secret.
    pub secret: String,
}

impl ServiceSpec {
    /// The env as the task gets it: each login reference replaced by the user that the version
    /// of its password (`version_of`, by logical secret name) makes current.
    pub fn env_at(&self, version_of: impl Fn(&str) -> Option<u64>) -> BTreeMap<String, String> {
        let mut env = self.env.clone();
        for l in &self.env_logins {
            let user =
                crate::provision::current_login(&l.user, &l.alternate, version_of(&l.secret));
            for v in env.values_mut() {
                if v.contains(&l.reference) {
                    *v = v.replace(&l.reference, user);
                }
            }
        }
        env
    }

    /// Whether a live env value (`live`) is this service's value of `key` with either of its
    /// logins: a task runs on one of them, so both agree with the spec.
    pub fn env_agrees(&self, key: &str, live: &str) -> bool {
        let Some(want) = self.env.get(key) else {
            return false;
        };
        let mut candidates = vec![want.clone()];
        for l in self
            .env_logins
            .iter()
            .filter(|l| want.contains(&l.reference))
        {
            candidates = candidates
                .iter()
                .flat_map(|c| {
                    [
                        c.replace(&l.reference, &l.user),
                        c.replace(&l.reference, &l.alternate),
                    ]
                })
                .collect();
        }
        candidates.iter().any(|c| c == live)
    }
}
