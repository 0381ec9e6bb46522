//! Provisioning in the platform's datastores, run inside the swarm by `sprocketctl provision`
//! (a one-off task on the datastore's provisioning network) from the document `up` derives
//! ([`sprocket_desired::provision::Job`]); and logging in as a consumer does ([`consumer`]),
//! which `check`'s probe tasks do with each consumer's own credentials.
//!
//! Every datastore adapter follows the same rules: what it makes carries the namespace's owner
//! marker; what does not carry it is never changed or removed (a foreign login of a wanted name
//! is an error that says so); a consumer's password is checked and set through a salted hash
//! where the datastore takes one, so it never crosses the wire in clear; the outcome names
//! logins, never values. The administrator's own password does travel: as HTTP Basic auth to
//! RabbitMQ's management API, on the provisioning network only the task and the datastore join
//! (an unencrypted overlay between nodes). PostgreSQL's administrator logs in with SCRAM, which
//! never sends it.

pub mod amqp;
pub mod consumer;
pub mod postgres;
pub mod rabbitmq;
pub mod redis;
pub mod s3;
pub mod sigv4;
pub mod tls;

use serde::{Deserialize, Serialize};
use sprocket_desired::provision::DatastoreKind;

/// What happened to one login.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    Created,
    /// Its password or grants changed.
    Updated,
    Unchanged,
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Outcome::Created => "created",
            Outcome::Updated => "updated",
            Outcome::Unchanged => "unchanged",
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoginResult {
    pub service: String,
    pub user: String,
    pub outcome: Outcome,
    /// What changed: `password`, `permissions`, `vhost`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub changed: Vec<String>,
}

/// The task's result, printed as one line after [`RESULT_PREFIX`] (its log is how `up` reads
/// it back).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobResult {
    pub logins: Vec<LoginResult>,
    /// Objects made besides logins (`vhost demo`).
    #[serde(default)]
    pub made: Vec<String>,
    /// Objects of ours removed (`--prune`): `user billing`, `vhost billing`; or, by a job
    /// that retires, the credentials kept for a roll (`previous login demo`).
    #[serde(default)]
    pub removed: Vec<String>,
    /// Users that keep a replaced credential beside their new one (S3: the previous key) so
    /// that their consumers' running tasks keep working during the roll: `up` retires it once
    /// the consumers run on the new one ([`sprocket_desired::provision::Job::retire`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub retire: Vec<String>,
    /// Why it failed, when it did (never a value).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The marker of the result line in the task's log.
pub const RESULT_PREFIX: &str = "sprocket-provision-result: ";

impl JobResult {
    /// The result line of a task's log, if it printed one.
    pub fn from_logs(lines: &[String]) -> Option<JobResult> {
        lines.iter().rev().find_map(|l| {
            let i = l.find(RESULT_PREFIX)?;
            serde_json::from_str(&l[i + RESULT_PREFIX.len()..]).ok()
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ProvisionError {
    #[error("{0}")]
    Refused(String),
    #[error("cannot read {path}: {error}")]
    Secret { path: String, error: String },
    #[error("{what}: {error}")]
    Api { what: String, error: String },
}

/// A mounted secret's value: one line, surrounding whitespace removed (Docker secrets end as
/// written; the pipeline never writes a newline, an operator's file might).
pub fn read_secret(path: &str) -> Result<String, ProvisionError> {
    let v = std::fs::read_to_string(path).map_err(|e| ProvisionError::Secret {
        path: path.into(),
        error: e.kind().to_string(),
    })?;
    let v = v.trim().to_string();
    if v.is_empty() {
        return Err(ProvisionError::Secret {
            path: path.into(),
            error: "it is empty".into(),
        });
    }
    Ok(v)
}

/// Runs a job of any kind.
pub async fn provision(
    job: &sprocket_desired::provision::Job,
    read: &dyn Fn(&str) -> Result<String, ProvisionError>,
) -> Result<JobResult, ProvisionError> {
    match job.kind {
        DatastoreKind::Rabbitmq => rabbitmq::provision(job, read).await,
        DatastoreKind::Postgres => postgres::provision(job, read).await,
        DatastoreKind::S3 => s3::provision(job, read).await,
        DatastoreKind::Redis => redis::provision(job, read).await,
    }
}
