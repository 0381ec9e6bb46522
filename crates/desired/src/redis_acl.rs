//! Redis ACL users, derived from the consumers' `access` to a Redis datastore.
//!
//! Redis keeps ACL users made at run time only in memory (or in an `aclfile`, with which
//! `requirepass` is ignored — a rotation trap). So the users are part of Redis's own start-up
//! config instead, like `requirepass`: the datastore mounts each consumer's generated password
//! (its Docker secret, at [`redis_user_secret_target`]) and a derived script
//! ([`sprocket_spec::names::REDIS_ACL_SCRIPT`]) that prints one `user` line per consumer with the password's SHA-256
//! (`#<hex>`: Redis stores and compares hashes; the clear value stays in the secret file). A
//! restart keeps every user; a consumer added or removed changes the datastore's spec, so `up`
//! restarts Redis with the new set (stop-first: it owns a volume) — and `plan` says so.
//!
//! Pure: no I/O, no secret value.

use sprocket_spec::model::{self, DatastoreKind, Platform};
use sprocket_spec::names::redis_user_secret_target;

/// The commands every ACL user gets: all but administration and the dangerous ones (`KEYS`,
/// `FLUSHALL`, `CONFIG`, `DEBUG` …), on its own keys and channels only.
pub const COMMANDS: &str = "+@all -@admin -@dangerous";

/// One consumer's ACL user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub consumer: String,
    pub name: String,
    /// The generated secret with its password.
    pub secret: String,
    pub keys: Vec<String>,
    pub channels: Vec<String>,
}

impl User {
    /// What it may touch, as Redis writes it: `~keys &channels`.
    pub fn patterns(&self) -> String {
        let keys = self.keys.iter().map(|k| format!("~{k}"));
        let channels = self.channels.iter().map(|c| format!("&{c}"));
        keys.chain(channels).collect::<Vec<_>>().join(" ")
    }

    /// The ACL rules after the password: `~keys &channels +commands`.
    pub fn rules(&self) -> String {
        format!("{} {COMMANDS}", self.patterns())
    }
}

/// The ACL users of the Redis datastore `datastore`, in service order.
pub fn users(p: &Platform, datastore: &str) -> Vec<User> {
    p.services()
        .flat_map(|c| {
            c.access
                .iter()
                .filter(|a| a.on == datastore && a.kind == DatastoreKind::Redis)
                .map(|a| User {
                    consumer: c.name.clone(),
                    name: a.user.clone(),
                    secret: a.secret.clone(),
                    keys: a.keys.clone(),
                    channels: a.channels.clone(),
                })
        })
        .collect()
}

/// The script the datastore runs at start: it prints Redis config `user` lines. Names and
/// patterns are validated (no quote, `$`, backslash or whitespace), so single quotes suffice.
pub fn script(users: &[User]) -> String {
    let mut out = String::from(
        "# Written by sprocketctl from the spec: the Redis ACL users of the services with\n\
         # `access` to this datastore. Prints one `user` line each; a password is read from the\n\
         # user's Docker secret (a final newline dropped, as its consumer reads it) and only its SHA-256\n\
         # is printed. Fails if a secret is missing.\n\
         set -eu\n\
         user() {\n  \
           [ -s \"$2\" ] || { echo \"redis-acl: no password at $2\" >&2; exit 1; }\n  \
           h=$(printf %s \"$(cat \"$2\")\" | sha256sum | cut -d' ' -f1)\n  \
           printf 'user %s reset on #%s %s\\n' \"$1\" \"$h\" \"$3\"\n\
         }\n",
    );
    for u in users {
        out.push_str(&format!(
            "user '{}' '{}' '{}'\n",
            u.name,
            redis_user_secret_target(&u.name),
            u.rules()
        ));
    }
    out
}

/// What a Redis datastore gets beyond its spec: the consumers' password secrets
/// mounted at [`redis_user_secret_target`] (the service is returned with them) and the script.
pub struct Derived {
    pub service: model::Service,
    pub script: String,
}

pub fn derive(p: &Platform, s: &model::Service) -> Option<Derived> {
    if s.datastore.as_ref().map(|d| d.kind) != Some(DatastoreKind::Redis) {
        return None;
    }
    // With no users yet the script is still there (it prints nothing): the datastore's command
    // runs it in every environment, whatever is disabled there.
    let users = users(p, &s.name);
    let mut service = s.clone();
    for u in &users {
        service.secrets.push(model::SecretMount {
            name: u.secret.clone(),
            target: redis_user_secret_target(&u.name),
            uid: 0,
            gid: 0,
            mode: 0o444,
        });
    }
    Some(Derived {
        service,
        script: script(&users),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::{Digest, Sha256};

    fn user(name: &str) -> User {
        User {
            consumer: name.into(),
            name: name.into(),
            secret: format!("{name}-redis-password"),
            keys: vec![format!("{name}:*")],
            channels: vec![format!("{name}:*"), "events".into()],
        }
    }

    /// Runs the real script with `sh`, its secrets in a scratch folder.
    fn run(users: &[User], files: &[(&str, &str)]) -> std::process::Output {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let dir =
            std::env::temp_dir().join(format!("sprocket-redis-acl-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        for (name, value) in files {
            std::fs::write(dir.join(name), value).unwrap();
        }
        let script =
            script(users).replace("/run/secrets/redis-users/", &format!("{}/", dir.display()));
        let out = std::process::Command::new("sh")
            .args(["-c", &script])
            .output()
            .expect("sh runs");
        let _ = std::fs::remove_dir_all(&dir);
        out
    }

    fn sha(v: &str) -> String {
        hex::encode(Sha256::digest(v.as_bytes()))
    }

    #[test]
    fn the_script_prints_one_user_line_each_with_the_password_hash_only() {
        let out = run(
            &[user("demo"), user("core")],
            &[("demo", "s3cret-demo"), ("core", "s3cret-core\n")],
        );
        assert!(out.status.success(), "{out:?}");
        let text = String::from_utf8(out.stdout).unwrap();
        assert_eq!(
            text,
            format!(
                "user demo reset on #{} ~demo:* &demo:* &events +@all -@admin -@dangerous\n\
                 user core reset on #{} ~core:* &core:* &events +@all -@admin -@dangerous\n",
                sha("s3cret-demo"),
                // a final newline is not part of the password, as its consumer reads it
                sha("s3cret-core"),
            )
        );
        assert!(!text.contains("s3cret"), "no clear password: {text}");
    }

    #[test]
    fn a_missing_or_empty_password_fails_the_script_and_says_which() {
        let out = run(&[user("demo"), user("core")], &[("demo", "pw")]);
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("no password at") && err.ends_with("/core\n"),
            "{err}"
        );
        let out = run(&[user("demo")], &[("demo", "")]);
        assert!(!out.status.success(), "{out:?}");
    }
}
