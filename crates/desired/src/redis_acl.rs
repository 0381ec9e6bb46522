//! Redis ACL users, derived from the consumers' `access` to a Redis datastore.
//!
//! They are made at run time by `up`'s provisioning ([`crate::provision`]: a one-off task on
//! Redis's provisioning network, `ACL SETUSER` with the passwords' SHA-256 only) and kept in an
//! `aclfile` on Redis's volume (`ACL SAVE`), so a restart keeps them and a consumer added,
//! removed or rotated restarts nothing — a rotation adds the new password beside the previous
//! one while the consumer rolls, and the previous goes after ([`sprocket_datastores`]'s redis).
//! Redis ignores `requirepass` once it reads an aclfile, so the datastore runs a derived script
//! at start ([`sprocket_spec::names::REDIS_ACL_SCRIPT`]) that writes the shared login, `default`,
//! with the administrator's password hash into that file (the rest of the file as Redis saved
//! it) and prints the `aclfile` line of its config. The script is the same whoever the
//! consumers are: their changes never touch Redis's spec.
//!
//! Pure: no I/O, no secret value.

use sprocket_spec::model::{self, DatastoreKind};

/// The commands every ACL user gets: all but administration and the dangerous ones (`KEYS`,
/// `FLUSHALL`, `CONFIG`, `DEBUG` …), on its own keys and channels only.
pub const COMMANDS: &str = "+@all -@admin -@dangerous";

/// What an ACL user may touch, as Redis writes it: `~key` and `&channel` patterns.
pub fn patterns(keys: &[String], channels: &[String]) -> Vec<String> {
    let keys = keys.iter().map(|k| format!("~{k}"));
    keys.chain(channels.iter().map(|c| format!("&{c}")))
        .collect()
}

/// The aclfile's name in the Redis's volume.
pub const ACLFILE: &str = "sprocket-users.acl";

/// Where a Redis keeps its aclfile: in its first writable volume or bind mount (validation
/// wants one where it has ACL users).
pub fn aclfile(s: &model::Service) -> Option<String> {
    s.volumes.iter().find_map(|v| match v {
        model::Volume::Named {
            target,
            read_only: false,
            ..
        }
        | model::Volume::Bind {
            target,
            read_only: false,
            ..
        } => Some(format!("{}/{ACLFILE}", target.trim_end_matches('/'))),
        _ => None,
    })
}

/// The script the datastore runs at start (`aclfile`: where the users live; `password`: the
/// file with the administrator's password). Paths are validated (no quote), so single quotes
/// suffice.
pub fn script(aclfile: &str, password: &str) -> String {
    format!(
        "# Written by sprocketctl from the spec. Redis's ACL users live in {aclfile} (its volume),\n\
         # made and changed at run time by `up` (ACL SETUSER, ACL SAVE): a restart keeps them.\n\
         # At each start the shared login, `default`, gets the administrator's password there\n\
         # (its SHA-256 only; a final newline dropped, as a client reads it); the rest of the\n\
         # file stays as Redis saved it. Prints the config line that points Redis at the file.\n\
         set -eu\n\
         f='{aclfile}'\n\
         p='{password}'\n\
         [ -s \"$p\" ] || {{ echo \"redis-acl: no password at $p\" >&2; exit 1; }}\n\
         h=$(printf %s \"$(cat \"$p\")\" | sha256sum | cut -d' ' -f1)\n\
         {{ printf 'user default on #%s ~* &* +@all\\n' \"$h\"; [ ! -f \"$f\" ] || grep -v '^user default ' \"$f\" || true; }} > \"$f.new\"\n\
         mv \"$f.new\" \"$f\"\n\
         printf 'aclfile %s\\n' \"$f\"\n"
    )
}

/// The script of a Redis datastore (`None` for any other service): its consumers' users are
/// not part of it.
pub fn derive(s: &model::Service) -> Option<String> {
    let d = s.datastore.as_ref()?;
    if d.kind != DatastoreKind::Redis {
        return None;
    }
    let password = s
        .secrets
        .iter()
        .find(|m| m.name == d.admin_secret)
        .map(|m| m.target.clone())
        .unwrap_or_else(|| format!("/run/secrets/{}", d.admin_secret));
    // Without a volume (validation refuses that where it has consumers) the file is the
    // container's own: users last until the task is replaced.
    let file = aclfile(s).unwrap_or_else(|| format!("/data/{ACLFILE}"));
    Some(script(&file, &password))
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::{Digest, Sha256};

    /// Runs the real script with `sh` in a scratch folder: its output and the file after.
    fn run(file_before: Option<&str>, password: Option<&str>) -> (std::process::Output, String) {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let dir =
            std::env::temp_dir().join(format!("sprocket-redis-acl-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let (f, p) = (dir.join(ACLFILE), dir.join("pw"));
        if let Some(b) = file_before {
            std::fs::write(&f, b).unwrap();
        }
        if let Some(v) = password {
            std::fs::write(&p, v).unwrap();
        }
        let out = std::process::Command::new("sh")
            .args([
                "-c",
                &script(&f.display().to_string(), &p.display().to_string()),
            ])
            .output()
            .expect("sh runs");
        let after = std::fs::read_to_string(&f).unwrap_or_default();
        let _ = std::fs::remove_dir_all(&dir);
        (out, after)
    }

    fn sha(v: &str) -> String {
        hex::encode(Sha256::digest(v.as_bytes()))
    }

    #[test]
    fn the_script_writes_the_default_user_and_keeps_the_saved_ones() {
        // First start: the file has the shared login alone, with the password's hash only.
        let (out, file) = run(None, Some("s3cret-admin\n"));
        assert!(out.status.success(), "{out:?}");
        let printed = String::from_utf8(out.stdout).unwrap();
        assert!(
            printed.starts_with("aclfile ") && printed.ends_with("/sprocket-users.acl\n"),
            "{printed}"
        );
        assert_eq!(
            file,
            format!("user default on #{} ~* &* +@all\n", sha("s3cret-admin"))
        );
        // A later start (a rotated administrator's password): the users Redis saved stay, the
        // default line is the new one.
        let saved = format!(
            "user default on #{} ~* &* +@all\nuser demo on #aa #bb ~demo:* &demo:* +@all -@admin -@dangerous\n",
            sha("s3cret-admin")
        );
        let (out, file) = run(Some(&saved), Some("s3cret-new"));
        assert!(out.status.success(), "{out:?}");
        assert_eq!(
            file,
            format!(
                "user default on #{} ~* &* +@all\nuser demo on #aa #bb ~demo:* &demo:* +@all -@admin -@dangerous\n",
                sha("s3cret-new")
            )
        );
        assert!(!file.contains("s3cret"), "no clear password: {file}");
    }

    #[test]
    fn a_missing_or_empty_password_fails_the_script_and_says_which() {
        let (out, _) = run(None, None);
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("no password at") && err.ends_with("/pw\n"),
            "{err}"
        );
        let (out, _) = run(None, Some(""));
        assert!(!out.status.success(), "{out:?}");
    }
}
