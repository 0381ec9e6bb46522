//! The names two sides must agree on, said once: `desired` writes them into services, the unseal
//! agent and `up` read them back. A rename here breaks at compile time on both sides, never at
//! run time in a container.

/// Environment variables the desired state gives the unseal agent (`sprocketctl agent` reads
/// them as its flags' defaults).
pub mod agent_env {
    /// DNS name resolving to every Vault task (`tasks.<ns>_<vault>`).
    pub const VAULT_TASKS: &str = "SPROCKET_VAULT_TASKS";
    /// Vault's service name, to follow its tasks in Docker events.
    pub const VAULT_SERVICE: &str = "SPROCKET_VAULT_SERVICE";
    pub const VAULT_PORT: &str = "SPROCKET_VAULT_PORT";
    /// The Docker API (the read-only socket proxy) for events.
    pub const DOCKER_API: &str = "SPROCKET_DOCKER_API";
    /// Service tokens' period in seconds: the agent renews them at a third of it.
    pub const TOKEN_PERIOD: &str = "SPROCKET_TOKEN_PERIOD";
    pub const UNSEAL_FILE: &str = "SPROCKET_UNSEAL_FILE";
    pub const TOKEN_DIR: &str = "SPROCKET_TOKEN_DIR";
    /// What it watches and where it sends alerts (`checks::Monitor`, JSON), where the
    /// environment has `alerts`.
    pub const MONITOR: &str = "SPROCKET_AGENT_MONITOR";
}

/// Logical names of the service-token secrets start with this (`vault-token-<service>`).
/// Validation reserves it (a spec cannot declare or mount such a secret).
pub const TOKEN_SECRET_PREFIX: &str = sprocket_spec::names::TOKEN_SECRET_PREFIX;

/// Where Docker mounts secrets in a container.
pub const SECRETS_DIR: &str = "/run/secrets";

/// Vault's API port when its route names none.
pub const DEFAULT_VAULT_PORT: u16 = 8200;

/// The Docker socket proxy's port.
pub const DOCKER_API_PORT: u16 = 2375;

/// Vault's private listener, derived for the Vault service: a Unix socket in a volume of its own,
/// which sprocketctl opens on the filesystem of the node that runs Vault (init, unseal,
/// configuration and tokens never cross a network or the shared router). `_` never occurs in a
/// spec's volume name, so no service can declare this volume.
pub mod vault_socket {
    pub const VOLUME: &str = "vault_socket";
    /// Where the volume is mounted in Vault's container.
    pub const DIR: &str = "/run/sprocket-vault";
    pub const FILE: &str = "vault.sock";
    /// The derived listener's configuration file in Vault's container (passed as one more
    /// `-config=`).
    pub const LISTENER_TARGET: &str = "/etc/sprocket/vault-listener.hcl";

    /// The listener's configuration.
    pub fn listener_hcl() -> String {
        format!(
            "# Derived by sprocketctl: its private way to Vault, a Unix socket on Vault's node.\n\
             listener \"unix\" {{\n  address = \"{DIR}/{FILE}\"\n}}\n"
        )
    }

    /// The socket on the node's filesystem, for a local volume under the engine's root folder.
    pub fn host_path(docker_root: &std::path::Path, namespace: &str) -> std::path::PathBuf {
        docker_root
            .join("volumes")
            .join(format!("{namespace}_{VOLUME}"))
            .join("_data")
            .join(FILE)
    }
}
