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

/// The logical name of the unseal agent's material, a Docker secret `up` makes from the
/// operators' keyring. Reserved: a spec that declared it could mount the real one anywhere.
pub const UNSEAL_SECRET: &str = "vault-unseal";
/// Logical names of the services' Vault token secrets start with this (`vault-token-<service>`).
/// Reserved for the same reason.
pub const TOKEN_SECRET_PREFIX: &str = "vault-token-";

/// True for the secret names only `up` may make (from the keyring or from Vault).
pub fn is_reserved_secret(n: &str) -> bool {
    n == UNSEAL_SECRET || n.starts_with(TOKEN_SECRET_PREFIX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserved_secrets() {
        assert!(is_reserved_secret("vault-unseal") && is_reserved_secret("vault-token-demo"));
        assert!(!is_reserved_secret("vault-unseal-2") && !is_reserved_secret("vault-tokens"));
    }
}
