//! The Docker API proxy's rules, derived from its role instead of hand-written section switches:
//! read-only (`GET`/`HEAD`), and only the swarm objects its readers need — Traefik's Docker
//! provider (services, tasks, networks, nodes, events, version, info, ping) and the unseal
//! agent (events). A path with any percent-encoding is refused (no Docker object this proxy
//! serves needs one), and every other is matched whole, anchored at both ends, so no prefix match
//! reaches a container's logs, archive or export, a service's or task's logs, configs, secrets,
//! images, `exec` or the swarm's join tokens, whatever the namespace is called. The spec's own
//! section variables (`SERVICES: 1`, `POST: 1`, …) no longer decide anything.
//!
//! Mounted as a config and run with `haproxy -f` (the image's entrypoint adds `-W -db`), so the
//! upstream image and the offline stand-in run the same rules.

/// Where the derived configuration is mounted in the proxy's container.
pub const CONFIG_TARGET: &str = "/etc/sprocket/socket-proxy.cfg";

/// Read-only paths, each a whole path (query strings aside): lists, and inspection by id.
const LISTS: &str = "_ping|version|info|events|services|tasks|networks|nodes";
const INSPECT: &str = "services|tasks|networks|nodes";

/// The proxy's arguments: HAProxy with the derived configuration.
pub fn args() -> Vec<String> {
    vec!["haproxy".into(), "-f".into(), CONFIG_TARGET.into()]
}

/// The HAProxy configuration for a proxy that reaches the Docker socket at `socket` and listens
/// on `port`.
pub fn config(socket: &str, port: u16) -> String {
    format!(
        r#"# Derived by sprocketctl from the docker-api-proxy role; do not edit.
global
    log stdout format raw daemon info
    maxconn 4000

defaults
    mode http
    log global
    option httplog
    option dontlognull
    option http-server-close
    timeout http-request 10s
    timeout connect 10s
    timeout client 10m
    timeout server 10m

backend dockerbackend
    server dockersocket {socket}

backend docker-events
    server dockersocket {socket}
    timeout server 0

frontend dockerfrontend
    bind :{port}
    http-request deny unless METH_GET
    http-request deny if {{ path -m sub % }}
    http-request allow if {{ path -m reg ^(/v[0-9.]+)?/({LISTS})$ }}
    http-request allow if {{ path -m reg ^(/v[0-9.]+)?/({INSPECT})/[a-zA-Z0-9_.-]+$ }}
    http-request deny
    default_backend dockerbackend
    use_backend docker-events if {{ path -m reg ^(/v[0-9.]+)?/events$ }}
"#
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The rules themselves run in HAProxy on the real swarm (`crates/cli/tests/reach.rs`
    /// asks the proxy for logs, containers, configs and a POST from inside a task); here: the
    /// file says what that test relies on, and nothing more is allowed.
    #[test]
    fn get_only_two_anchored_allow_rules_then_deny() {
        let cfg = config("/var/run/docker.sock", 2375);
        assert!(cfg.contains("http-request deny unless METH_GET"));
        assert!(cfg.contains("server dockersocket /var/run/docker.sock"));
        assert!(cfg.contains("bind :2375"));
        let allows: Vec<&str> = cfg.lines().filter(|l| l.contains("allow")).collect();
        assert_eq!(allows.len(), 2);
        assert!(allows
            .iter()
            .all(|l| l.contains("path -m reg ^(/v[0-9.]+)?/(") && l.contains("$ }")));
        assert!(cfg.contains("http-request deny if { path -m sub % }"));
        for word in [
            "containers",
            "configs",
            "secrets",
            "swarm",
            "images",
            "exec",
            "logs",
        ] {
            assert!(!cfg.contains(word), "{word}");
        }
    }
}
