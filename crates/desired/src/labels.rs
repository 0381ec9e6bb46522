//! Ownership labels: the live swarm is the state. Every object sprocketctl creates carries
//! them; nothing without them is ever touched.

/// `sprocketctl` on every object we own.
pub const MANAGED_BY: &str = "io.sprocket.managed-by";
pub const MANAGED_BY_VALUE: &str = "sprocketctl";
/// The environment's namespace (object name prefix): several environments can share a swarm.
pub const NAMESPACE: &str = "io.sprocket.namespace";
pub const ENVIRONMENT: &str = "io.sprocket.environment";
pub const LAYER: &str = "io.sprocket.layer";
/// The spec's name of the object (service, network purpose, config file, secret).
pub const NAME: &str = "io.sprocket.name";
/// Hash of the desired service spec at the time it was applied (history, `status`).
pub const SPEC_HASH: &str = "io.sprocket.spec-hash";
/// On task containers only: the deploy that created the task, so `up` follows *its* tasks.
/// Not compared by `plan` (it changes with every deploy by design).
pub const DEPLOY_ID: &str = "io.sprocket.deploy-id";
/// The label compose/stack deploys put on their objects; we set it too so `docker stack ls`
/// shows the platform.
pub const STACK_NAMESPACE: &str = "com.docker.stack.namespace";
/// On a secret's Docker secrets: the version of the value it holds (Vault's KV version; `1` for
/// a generated secret on a platform without Vault).
pub const SECRET_VERSION: &str = "io.sprocket.secret-version";
/// On `check`'s short-lived probe tasks: the service whose networks it joins. They are not
/// part of the platform: `plan` never counts them as orphans (a check runs without the lock).
pub const CHECK: &str = "io.sprocket.check";
/// On a secret's Docker secrets: the keyed fingerprint of the value (never an unkeyed hash).
pub const SECRET_FINGERPRINT: &str = "io.sprocket.secret-fingerprint";

/// On a long-lived service `up` keeps outside the spec's services (the scheduled backups'
/// runner): the plan does not prune it; the step that made it keeps or removes it.
pub const SCHEDULE: &str = "io.sprocket.schedule";
