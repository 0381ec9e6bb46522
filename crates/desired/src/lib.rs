//! What the swarm should hold, and what it takes to get there. Pure: no I/O.
//!
//! - [`state`]: the validated platform → desired objects (networks derived from `uses`,
//!   services with Traefik labels derived from routes + environment, content-addressed configs,
//!   secret references, ownership labels);
//! - [`graph`]: what each service waits for before it starts (the executor's schedule);
//! - [`compose`]: the same objects as `docker stack deploy` files, one per layer;
//! - [`plan`]: desired vs observed → the ordered, field-by-field plan;
//! - [`vault`]: what Vault should hold (mounts, policies, auth) and its plan;
//! - [`traefik`], [`labels`]: the derived router labels and our ownership labels;
//! - [`socket_proxy`]: the Docker API proxy's read-only rules, derived from its role;
//! - [`contract`]: names the agent, `up` and the desired state must agree on;
//! - [`env_logins`]: `{access.<datastore>.user}` in an env, one of two alternating logins.

pub mod checks;
pub mod compose;
pub mod contract;
pub mod env_logins;
pub mod gatus;
pub mod graph;
pub mod labels;
pub mod logins;
mod networks;
pub mod plan;
pub mod provision;
pub mod redis_acl;
pub mod socket_proxy;
pub mod state;
pub mod traefik;
pub mod vault;

pub use plan::{Observed, Plan};
pub use state::{DesiredState, ServiceSpec};
