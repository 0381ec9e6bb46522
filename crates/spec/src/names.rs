//! Names the spec hands on to other systems, and the words they reserve.
//!
//! Service, secret, volume and namespace names become parts of Docker object names and DNS
//! names; policy names become Vault policies. The rules live here, beside the model, so the
//! crates that derive Docker and Vault objects (`desired`) share them with validation instead of
//! reaching into the loader.

/// Service policies are named `svc-<service>`; team policies may not take that prefix.
pub const RESERVED_POLICY_PREFIX: &str = "svc-";
/// The policy of sprocketctl's own admin token.
pub const ADMIN_POLICY: &str = "sprocketctl-admin";

/// Object names (services, secrets, volumes, namespaces) become parts of Docker object names and
/// DNS names.
pub fn check_object_name(n: &str) -> Result<(), String> {
    let ok = !n.is_empty()
        && n.len() <= 48
        && n.bytes().next().is_some_and(|b| b.is_ascii_lowercase())
        && n.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !n.ends_with('-');
    if ok {
        Ok(())
    } else {
        Err("must be 1–48 lowercase letters, digits and `-`, starting with a letter".into())
    }
}

/// The overlay network between one consumer and one provider it `uses`: only the two join it,
/// so two consumers of one provider never share a network. `_` never occurs in a service or
/// namespace name, so the name cannot collide with another pair's or an edge network's.
pub fn pair_network(namespace: &str, consumer: &str, provider: &str) -> String {
    format!("{namespace}_{consumer}_to_{provider}")
}

/// The overlay network between the edge router and one routed service: Traefik joins every one,
/// each routed service only its own.
pub fn edge_network(namespace: &str, service: &str) -> String {
    format!("{namespace}_edge_{service}")
}

/// sprocketctl's own image, as published; an environment's `images` may map it to a local one.
pub const TOOL_IMAGE: &str = concat!(
    "ghcr.io/sprocketbot/sprocketctl:",
    env!("CARGO_PKG_VERSION")
);

/// The overlay network of the one-off task that provisions a datastore's logins: the
/// datastore joins it, and only that task besides.
pub fn provision_network(namespace: &str, datastore: &str) -> String {
    format!("{namespace}_provision_{datastore}")
}

/// The overlay network of the one-off backup task to a service no provisioning task reaches
/// (Vault, Redis): that service joins it where the environment is backed up, and only the
/// backup task besides. (Datastores with logins to provision are reached on their
/// [`provision_network`], which the backup task joins too.)
pub fn backup_network(namespace: &str, service: &str) -> String {
    format!("{namespace}_backup_{service}")
}

/// The logical name of the generated secret with `service`'s password in `datastore` (its
/// `access`). A spec secret of that name is refused.
pub fn access_secret(service: &str, datastore: &str) -> String {
    format!("{service}-{datastore}-password")
}

/// The second login of a PostgreSQL role or RabbitMQ user `user` whose consumer takes its user
/// name from `{access.<datastore>.user}`: the two alternate per version of its password, so a
/// rotation sets the new password on the login the old task does not use (no window).
pub fn alternate_login(user: &str) -> String {
    format!("{user}_b")
}

/// What a consumer writes in an `env` value to get the user name of its login on `datastore`
/// (the current one of its two alternating logins).
pub fn access_user_reference(datastore: &str) -> String {
    format!("{{access.{datastore}.user}}")
}

/// The logical names of the generated secrets with `service`'s own key in the S3 store
/// `datastore` (`keys: per-service`): its access key id and its secret key.
pub fn s3_key_secrets(service: &str, datastore: &str) -> (String, String) {
    (
        format!("{service}-{datastore}-access-key"),
        format!("{service}-{datastore}-secret-key"),
    )
}

/// Where a Redis datastore finds the script sprocketctl derives for it: it writes the shared
/// login into Redis's aclfile (where its consumers' ACL users live) and prints the `aclfile`
/// config line (see `sprocket-desired`'s `redis_acl`); the Redis service's command runs it into
/// the config it reads from stdin.
pub const REDIS_ACL_SCRIPT: &str = "/run/sprocket/redis-acl.sh";

/// The logical name of the unseal agent's material, a Docker secret `up` makes from the
/// operators' keyring. Reserved: a spec that declared it could mount the real one anywhere.
pub const UNSEAL_SECRET: &str = "vault-unseal";
/// Logical names of the services' Vault token secrets start with this (`vault-token-<service>`).
/// Reserved for the same reason.
pub const TOKEN_SECRET_PREFIX: &str = "vault-token-";
/// Who holds the backups' Vault token (policy `svc-sprocketctl-backup`: reads Vault's raft
/// snapshot, nothing else) beside the services: its secret is `vault-token-sprocketctl-backup`,
/// the agent renews it. No service may take this name.
pub const BACKUP_TOKEN_HOLDER: &str = "sprocketctl-backup";

/// True for the secret names only `up` may make (from the keyring or from Vault).
pub fn is_reserved_secret(n: &str) -> bool {
    n == UNSEAL_SECRET || n.starts_with(TOKEN_SECRET_PREFIX) || n == FINGERPRINT_KEY_SECRET
}

/// The KV v2 mount sprocketctl keeps the platform's secrets in (`sprocket/<namespace>/<secret>`):
/// derived, managed by sprocketctl, read by no service policy and no team policy it writes.
pub const SECRETS_MOUNT: &str = "sprocket";
/// The field of a secret's Vault document that holds its value, unless the spec says another.
pub const SECRET_VALUE_KEY: &str = "value";
/// The per-platform key of the secrets' fingerprints (an HMAC key made once, kept in Vault
/// beside the secrets). A service may mount it to report its own secrets' fingerprints (the
/// demo does); it is never shown.
pub const FINGERPRINT_KEY_SECRET: &str = "sprocket-fingerprint-key";

/// Where Vault keeps one secret: a KV v2 mount, a path in it and the document's field.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
pub struct VaultPath {
    pub mount: String,
    pub path: String,
    pub key: String,
}

impl std::fmt::Display for VaultPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}#{}", self.mount, self.path, self.key)
    }
}

/// The convention: `sprocket/<namespace>/<secret>`, field `value` — one rule for the writer
/// (`up`, `secrets sync`) and the readers, so they can never disagree. `over` is the spec's
/// `vault_path` (`mount/path`, validated), `key` its `vault_key`.
pub fn secret_vault_path(
    namespace: &str,
    secret: &str,
    over: Option<&str>,
    key: Option<&str>,
) -> VaultPath {
    let (mount, path) = match over.and_then(|o| o.split_once('/')) {
        Some((m, p)) => (m.to_string(), p.to_string()),
        None => (SECRETS_MOUNT.to_string(), format!("{namespace}/{secret}")),
    };
    VaultPath {
        mount,
        path,
        key: key.unwrap_or(SECRET_VALUE_KEY).to_string(),
    }
}

/// Swarm rejects service and network names longer than this (swarmkit `validateAnnotations`).
pub const MAX_SERVICE_NAME: usize = 63;
/// See [`MAX_SERVICE_NAME`].
pub const MAX_NETWORK_NAME: usize = 63;
/// Swarm rejects config and secret names longer than this.
pub const MAX_CONFIG_NAME: usize = 64;
/// See [`MAX_CONFIG_NAME`].
pub const MAX_SECRET_NAME: usize = 64;
/// Versioned configs and secrets end in `-` and this many hex digits (a content hash or a
/// fingerprint).
pub const VERSION_HEX: usize = 12;

/// The part of a config's Docker name that comes from its file: the file name, every character
/// other than an ASCII letter, digit or `-` made `-` (`grafana-datasources.yaml` →
/// `grafana-datasources-yaml`). Configs are named `<ns>_<service>-<stem>-<12 hex>`.
pub fn config_stem(file: &str) -> String {
    std::path::Path::new(file)
        .file_name()
        .map(|f| f.to_string_lossy().to_string())
        .unwrap_or_default()
        .chars()
        .map(|ch| {
            if ch.is_ascii_alphanumeric() || ch == '-' {
                ch
            } else {
                '-'
            }
        })
        .collect()
}

/// Environment variable names: `[A-Za-z_][A-Za-z0-9_]*`. A `=` would be read back as part of the
/// value (a change on every run); an empty name or a newline is rejected by the engine.
pub fn check_env_key(k: &str) -> Result<(), String> {
    let ok = k
        .bytes()
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if ok {
        Ok(())
    } else {
        Err("must be letters, digits and `_`, not starting with a digit".into())
    }
}

/// An environment variable that carries a secret as a literal value: its name says password,
/// secret, token or key, and its value is not a path to a mounted file. Secrets go through
/// `secrets:` (files under /run/secrets, never env): a literal one is in `docker service
/// inspect`, in the Docker API proxy's `/services` and in every `render`.
pub fn looks_like_literal_secret(key: &str, value: &str) -> bool {
    let k = key.to_ascii_uppercase();
    let secretish = [
        "PASSWORD",
        "PASSWD",
        "SECRET",
        "TOKEN",
        "PRIVATE_KEY",
        "API_KEY",
        "ACCESS_KEY",
    ]
    .iter()
    .any(|w| k.contains(w))
        || k.ends_with("_KEY");
    // Names that hold a path or a setting about a secret, not the secret.
    let about = [
        "_FILE", "_PATH", "_DIR", "_PERIOD", "_TTL", "_LENGTH", "_EXPIRY", "_EXPIRES",
    ]
    .iter()
    .any(|s| k.ends_with(s));
    secretish && !about && !value.is_empty() && !value.starts_with("/run/secrets/")
}

/// Levenshtein distance: how far a misspelt name is from a known one ("did you mean …?").
pub fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur.push(sub.min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserved_secrets_stems_and_env_keys() {
        assert!(is_reserved_secret("vault-unseal") && is_reserved_secret("vault-token-demo"));
        assert!(!is_reserved_secret("vault-unseal-2") && !is_reserved_secret("vault-tokens"));
        assert_eq!(
            config_stem("config/grafana-datasources.yaml"),
            "grafana-datasources-yaml"
        );
        assert_eq!(config_stem("é.conf"), "--conf");
        for ok in ["PATH", "_X", "GF_DATABASE_PASSWORD__FILE", "a1"] {
            assert!(check_env_key(ok).is_ok(), "{ok}");
        }
        for bad in ["", "1A", "A=B", "A B", "A\nB", "A-B", "Ä"] {
            assert!(check_env_key(bad).is_err(), "{bad:?}");
        }
        for (k, v) in [
            ("DB_PASSWORD", "hunter2"),
            ("JWT_SECRET", "x"),
            ("GITHUB_TOKEN", "ghp_x"),
            ("STRIPE_API_KEY", "sk_live"),
            ("ENCRYPTION_KEY", "abc"),
        ] {
            assert!(looks_like_literal_secret(k, v), "{k}");
        }
        for (k, v) in [
            (
                "GF_DATABASE_PASSWORD__FILE",
                "/run/secrets/grafana-db-password",
            ),
            ("DB_PASSWORD", "/run/secrets/db-password"),
            ("VAULT_TOKEN_FILE", "/run/secrets/vault-token"),
            ("TOKEN_PERIOD", "86400"),
            ("LOG_LEVEL", "debug"),
            ("MONKEY", "banana"),
            ("DB_PASSWORD", ""),
        ] {
            assert!(!looks_like_literal_secret(k, v), "{k}={v}");
        }
    }
}
