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
