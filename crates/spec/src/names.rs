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
