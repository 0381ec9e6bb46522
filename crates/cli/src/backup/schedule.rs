//! The scheduled backups: every deploy that converged (`up`, `secrets rotate`) keeps one service
//! per backed-up environment, `<namespace>_backup-schedule`, that takes a backup every day at
//! `backup.at` (UTC) and makes up a missed one ([`super::take`]'s `scheduled`). It is the backup
//! task run as a long-lived service (the same image, networks, administrators' secrets,
//! document): it writes only ciphertext to the operators' recipients and reads back only the
//! bucket's listing. Made at apply time like the provisioning tasks (its secrets are the live
//! versions), before the deploy's clean-up, so the plan's prune leaves it to this step; `at: off`
//! (or no `backup`, or a drill's copy) removes it, `down` too.

use super::task_spec;
use crate::error::CliError;
use serde::Serialize;
use sprocket_desired::labels as L;
use sprocket_desired::plan::Observed;
use sprocket_docker::{Engine, Ensured};
use sprocket_spec::model::Platform;

/// Its logical name.
pub const NAME: &str = sprocket_desired::checks::BACKUP_RUNNER;

/// What `up` did to the runner.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ScheduleReport {
    /// `created`, `updated`, `unchanged`, `removed` or `failed`.
    pub action: String,
    /// `daily at 02:00 UTC`, or why it could not be made.
    pub detail: String,
}

/// Makes, updates or removes the runner as the environment says. `observed`: the namespace
/// after the deploy. A runner the environment wants but that cannot be made (a secret missing,
/// no recipients) is reported, never fatal to the deploy it follows.
pub async fn ensure(
    engine: &Engine,
    observed: &Observed,
    p: &Platform,
    spec_file: &std::path::Path,
) -> Option<ScheduleReport> {
    let ns = &p.environment.namespace;
    let name = format!("{ns}_{NAME}");
    let named = observed.services.iter().find(|o| o.spec.name == name);
    let live = named.filter(|o| o.spec.labels.contains_key(L::SCHEDULE));
    let wanted = p.environment.backup.as_ref().filter(|b| b.scheduled);
    let Some(b) = wanted else {
        let o = live?;
        return Some(match engine.remove_service(&o.id, &o.spec.name).await {
            Ok(()) => report("removed", "no scheduled backup in this environment"),
            Err(e) => report("failed", &format!("removing `{name}`: {e}")),
        });
    };
    if named.is_some() && live.is_none() {
        return Some(report(
            "failed",
            &format!(
                "`{name}` is a service of the spec, not the backups' runner: rename that service"
            ),
        ));
    }
    let when = format!(
        "daily at {:02}:{:02} UTC",
        b.at_minute / 60,
        b.at_minute % 60
    );
    // What its runs cannot take, said with the schedule (a volume on another node …).
    let with_skipped = |skipped: &[(String, String)]| {
        let mut d = when.clone();
        for (c, why) in skipped {
            d.push_str(&format!("; without {c}: {why}"));
        }
        d
    };
    match runner(engine, observed, p, spec_file, &name, b.at_minute, live).await {
        Ok((Ensured::Created, s)) => Some(report("created", &with_skipped(&s))),
        Ok((Ensured::Updated, s)) => Some(report("updated", &with_skipped(&s))),
        Ok((Ensured::Unchanged, s)) => Some(report("unchanged", &with_skipped(&s))),
        Err(e) => Some(report("failed", &e.to_string())),
    }
}

fn report(action: &str, detail: &str) -> ScheduleReport {
    ScheduleReport {
        action: action.into(),
        detail: detail.into(),
    }
}

async fn runner(
    engine: &Engine,
    observed: &Observed,
    p: &Platform,
    spec_file: &std::path::Path,
    name: &str,
    at_minute: u32,
    live: Option<&sprocket_desired::plan::ObservedService>,
) -> Result<(Ensured, Vec<(String, String)>), CliError> {
    let (mut spec, task) = task_spec(
        engine,
        observed,
        p,
        spec_file,
        // Each run puts its objects under its own id (`Job::for_run`).
        ("template", 0),
        (
            name.to_string(),
            vec![
                "sprocketctl".into(),
                "backup-task".into(),
                "--daily-at".into(),
                at_minute.to_string(),
            ],
        ),
    )
    .await?;
    // The agent reads how the backups go on its backup network (its status port).
    spec.networks
        .extend(sprocket_desired::checks::agent_backup_network(p));
    spec.labels.remove(sprocket_backup::job::BACKUP_LABEL);
    spec.labels.insert(L::NAME.into(), NAME.into());
    spec.labels.insert(L::SCHEDULE.into(), "backup".into());
    // What decides its task: a new secret version, a changed document or image replaces it.
    // Not the spec file's hash alone (any edit of the spec would restart it, maybe mid-backup):
    // its manifests carry the hash of the spec that last changed it.
    let mut doc = task.job.clone();
    doc.spec_sha256.clear();
    let fingerprint = serde_json::to_vec(&(
        &spec.image,
        &spec.args,
        &doc,
        &spec.networks,
        &spec.hosts,
        &spec.secrets,
        spec.memory_bytes,
        &spec.mounts,
        &spec.constraints,
    ))
    .expect("serialisable");
    spec.labels.insert(
        L::SPEC_HASH.into(),
        super::sha256_hex(&fingerprint)[..16].to_string(),
    );
    let current = live.map(|o| {
        (
            o.id.as_str(),
            o.spec.labels.get(L::SPEC_HASH).map(String::as_str),
        )
    });
    Ok((
        engine.ensure_daemon(&spec, L::SPEC_HASH, current).await?,
        task.skipped,
    ))
}
