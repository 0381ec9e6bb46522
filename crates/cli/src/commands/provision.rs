//! `sprocketctl provision`: what runs inside the one-off task `up` starts on a datastore's
//! provisioning network. It reads the job from `SPROCKET_PROVISION` (no value in it), the
//! passwords from its mounted Docker secrets, makes the logins, and prints one result line
//! (`sprocket-provision-result: {…}`, never a value) that `up` reads from the task's log.

use crate::exit;
use sprocket_datastores::{JobResult, RESULT_PREFIX};
use sprocket_desired::provision::{Job, JOB_ENV};

#[derive(clap::Args)]
pub struct Args {}

pub async fn run(_: Args) -> i32 {
    let result = match std::env::var(JOB_ENV)
        .map_err(|_| format!("{JOB_ENV} is not set: this command runs in the task `up` starts"))
        .and_then(|j| {
            serde_json::from_str::<Job>(&j).map_err(|e| format!("{JOB_ENV} is not a job: {e}"))
        }) {
        Ok(job) => sprocket_datastores::provision(&job, &sprocket_datastores::read_secret)
            .await
            .unwrap_or_else(|e| JobResult {
                error: Some(e.to_string()),
                ..Default::default()
            }),
        Err(e) => JobResult {
            error: Some(e),
            ..Default::default()
        },
    };
    println!(
        "{RESULT_PREFIX}{}",
        serde_json::to_string(&result).expect("serialisable")
    );
    if result.error.is_some() {
        exit::ERROR
    } else {
        exit::OK
    }
}
