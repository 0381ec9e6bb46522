//! The provisioning step of `up`: a datastore's consumers' logins, made from inside the swarm.
//!
//! It starts as soon as the datastore's task has started (the task waits for the datastore to
//! answer, so the provisioning overlaps its boot), once the Vault step made the passwords'
//! Docker secrets where they live in Vault, and before any consumer with `access` starts. It
//! starts `sprocketctl provision` as a one-off task on the datastore's provisioning network
//! with the administrator's and the consumers' passwords mounted as Docker secrets, reads the
//! result line from its log and removes the task.
//!
//! A marker config (`<ns>_provisioned-<datastore>-<hash>`, the hash of the job and of the
//! secrets' versions) records a provisioning that succeeded: when it exists, nothing changed
//! and the step makes no call at all. Markers of earlier provisionings stay until a `--prune`
//! run has removed what those earlier ones made.

use crate::output::Progress;
use serde::Serialize;
use sprocket_datastores::{JobResult, LoginResult};
use sprocket_desired::plan::Observed;
use sprocket_desired::provision::{Decision, Provision, JOB_ENV, PROVISIONED};
use sprocket_desired::state::ConfigSpec;
use sprocket_docker::{Engine, JobSpec, Refs};
use std::time::Duration;

/// What one datastore's provisioning did.
#[derive(Debug, Clone, Serialize)]
pub struct ProvisionReport {
    pub datastore: String,
    /// False when its marker said nothing changed (no task ran).
    pub ran: bool,
    pub seconds: f64,
    pub logins: Vec<LoginResult>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub made: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub removed: Vec<String>,
    /// Replaced credentials kept for the consumers' roll and removed once they converged
    /// (`previous key of user …`, `previous password of role …`, `previous login …`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub retired: Vec<String>,
    /// Why keeping them ended badly, when it did (they still work: the next `up` retires them).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retire_error: Option<String>,
    /// What the retirement after the roll needs, while it is pending.
    #[serde(skip)]
    pub(super) retire: Option<Retire>,
}

/// A provisioning that kept replaced credentials for the roll: its marker is made only once
/// they are retired, so a run that stops before (a failed roll, a crash) leaves no marker, and
/// the next `up` provisions again and retires them after its own roll.
#[derive(Debug, Clone)]
pub(super) struct Retire {
    marker: String,
    marker_doc: String,
    current: bool,
    secrets: Vec<(String, String, String)>,
}

impl ProvisionReport {
    fn nothing(datastore: &str) -> ProvisionReport {
        ProvisionReport {
            datastore: datastore.to_string(),
            ran: false,
            seconds: 0.0,
            logins: Vec::new(),
            made: Vec::new(),
            removed: Vec::new(),
            retired: Vec::new(),
            retire_error: None,
            retire: None,
        }
    }
}

/// How long the task may take, from its creation to its end, its wait for a booting datastore
/// included (pulling nothing: the image is sprocketctl's own, already on the node where the
/// agent runs). Longer than the task's own wait for the datastore to answer.
const JOB_TIMEOUT: Duration = Duration::from_secs(150);

#[allow(clippy::too_many_arguments)]
pub(super) async fn run(
    engine: &Engine,
    pr: &Provision,
    namespace: &str,
    image: &str,
    refs: Refs,
    observed: &Observed,
    prune: bool,
    cancel: std::sync::Arc<std::sync::atomic::AtomicBool>,
    p: Progress,
) -> Result<ProvisionReport, String> {
    // The passwords' Docker secrets; `decide` says what a missing one means (an idle
    // external's: nothing to do; a wanted login's: an error below).
    let mut secrets = Vec::new();
    let mut missing = None;
    for logical in pr.secrets() {
        match refs.secrets.get(logical) {
            Some((name, id)) => secrets.push((name.clone(), id.clone(), logical.to_string())),
            None => missing = missing.or(Some(logical)),
        }
    }
    let versions: Vec<String> = secrets.iter().map(|(name, _, _)| name.clone()).collect();
    let markers: Vec<_> = observed
        .configs
        .iter()
        .filter(|c| c.label(PROVISIONED) == Some(pr.datastore.as_str()))
        .collect();
    let names: Vec<&str> = markers.iter().map(|c| c.name.as_str()).collect();
    let known = missing.is_none().then_some(versions.as_slice());
    if pr.decide(namespace, &names, known, prune) == Decision::Skip {
        return Ok(ProvisionReport::nothing(&pr.datastore));
    }
    if let Some(logical) = missing {
        return Err(format!(
            "secret `{logical}` does not exist, so `{}`'s logins cannot be provisioned",
            pr.datastore
        ));
    }
    let marker = pr.marker(namespace, &versions);
    let current = names.contains(&marker.as_str());
    // A consumer with no service yet runs no task that could hold an earlier credential.
    let job = pr
        .job(namespace, prune)
        .mark_fresh(|consumer| {
            let name = sprocket_desired::state::service_name(namespace, consumer);
            observed.services.iter().any(|o| o.spec.name == name)
        })
        .choose_logins(version_of(&secrets));
    let doc = serde_json::to_string(&job).expect("serialisable");
    let spec = job_spec(
        pr,
        format!(
            "{namespace}_provision-{}-{}",
            pr.datastore,
            &marker[marker.len() - 6..]
        ),
        image,
        &doc,
        secrets.clone(),
    );
    // A task an interrupted run left behind (Ctrl-C, a crash) would clash with this one's name:
    // ours by its labels, so it goes first.
    for o in observed
        .services
        .iter()
        .filter(|o| o.spec.labels.get(PROVISIONED) == Some(&pr.datastore))
    {
        engine
            .remove_service(&o.id, &o.spec.name)
            .await
            .map_err(|e| e.to_string())?;
        p.say(format!(
            "  {}: removed a provisioning task an interrupted run left",
            o.spec.name
        ));
    }
    p.say(format!(
        "  {}: provisioning {} login(s) from a one-off task",
        pr.datastore,
        pr.logins.len()
    ));
    let (result, seconds) = run_task(engine, pr, &spec, &cancel).await?;
    // The marker of this provisioning (unless credentials kept for the roll still wait to be
    // retired: then after that); with `--prune`, earlier ones go (what they made and no
    // consumer wants any more was just removed).
    let retire = (!result.retire.is_empty()).then(|| Retire {
        marker: marker.clone(),
        marker_doc: doc.clone(),
        current,
        secrets,
    });
    if retire.is_none() && !current {
        make_marker(engine, pr, &marker, doc).await?;
    }
    if prune {
        for m in markers.iter().filter(|m| m.name != marker) {
            engine
                .remove_config(&m.id, &m.name)
                .await
                .map_err(|e| e.to_string())?;
        }
    }
    for l in &result.logins {
        p.say(format!(
            "  {}: login `{}` for {}: {}{}",
            pr.datastore,
            l.user,
            l.service,
            l.outcome,
            if l.changed.is_empty() {
                String::new()
            } else {
                format!(" ({})", l.changed.join(", "))
            }
        ));
    }
    for m in &result.made {
        p.say(format!("  {}: {m} created", pr.datastore));
    }
    for r in &result.removed {
        p.say(format!("  {}: {r} removed (--prune)", pr.datastore));
    }
    Ok(ProvisionReport {
        ran: true,
        seconds,
        logins: result.logins,
        made: result.made,
        removed: result.removed,
        retire,
        ..ProvisionReport::nothing(&pr.datastore)
    })
}

async fn make_marker(
    engine: &Engine,
    pr: &Provision,
    marker: &str,
    doc: String,
) -> Result<(), String> {
    engine
        .create_config(&ConfigSpec {
            name: marker.to_string(),
            labels: pr.labels.clone(),
            content: doc.into_bytes(),
            source: None,
        })
        .await
        .map(drop)
        .map_err(|e| e.to_string())
}

/// After the deploy converged (the consumers' old tasks are gone): removes the credentials the
/// provisioning kept for the roll ([`Provision::retire_job`], a one-off task like the
/// provisioning's), then makes the provisioning's marker. Returns what it removed.
pub(super) async fn retire(
    engine: &Engine,
    pr: &Provision,
    namespace: &str,
    image: &str,
    pending: Retire,
    p: Progress,
) -> Result<Vec<String>, String> {
    let job = pr
        .retire_job(namespace)
        .choose_logins(version_of(&pending.secrets));
    let doc = serde_json::to_string(&job).expect("serialisable");
    let name = format!(
        "{namespace}_retire-{}-{}",
        pr.datastore,
        &pending.marker[pending.marker.len() - 6..]
    );
    let spec = job_spec(pr, name, image, &doc, pending.secrets);
    p.say(format!(
        "  {}: retiring the credentials kept for the roll, from a one-off task",
        pr.datastore
    ));
    let cancel = std::sync::atomic::AtomicBool::new(false);
    let (result, _) = run_task(engine, pr, &spec, &cancel).await?;
    for r in &result.removed {
        p.say(format!("  {}: {r} removed", pr.datastore));
    }
    if !pending.current {
        make_marker(engine, pr, &pending.marker, pending.marker_doc).await?;
    }
    Ok(result.removed)
}

/// The version of the password mounted at a file, among a task's secrets (Docker name, id,
/// logical name): what chooses a two-login consumer's current login, as its env was chosen.
fn version_of(secrets: &[(String, String, String)]) -> impl Fn(&str) -> Option<u64> + '_ {
    move |file| {
        secrets
            .iter()
            .find(|(_, _, logical)| sprocket_desired::provision::secret_file(logical) == file)
            .and_then(|(name, _, _)| sprocket_desired::state::secret_name_version(name))
    }
}

/// The one-off task of a provisioning job (`doc`, its JSON) on the datastore's network.
fn job_spec(
    pr: &Provision,
    name: String,
    image: &str,
    doc: &str,
    secrets: Vec<(String, String, String)>,
) -> JobSpec {
    JobSpec {
        name,
        image: image.to_string(),
        args: vec!["sprocketctl".into(), "provision".into()],
        env: vec![format!("{JOB_ENV}={doc}")],
        networks: vec![pr.network.clone()],
        hosts: pr.hosts.clone(),
        secrets,
        labels: pr.labels.clone(),
        memory_bytes: Some(64 << 20),
        mounts: Vec::new(),
        constraints: Vec::new(),
    }
}

/// Runs one provisioning task and reads its result line: the result and the task's seconds,
/// or what failed with the end of its log.
async fn run_task(
    engine: &Engine,
    pr: &Provision,
    spec: &JobSpec,
    cancel: &std::sync::atomic::AtomicBool,
) -> Result<(JobResult, f64), String> {
    let end = engine
        .run_job(spec, JOB_TIMEOUT, cancel)
        .await
        .map_err(|e| e.to_string())?;
    let result = JobResult::from_logs(&end.logs);
    let failed = |why: String| -> String {
        let tail: Vec<&str> = end
            .logs
            .iter()
            .rev()
            .take(5)
            .rev()
            .map(String::as_str)
            .collect();
        format!(
            "provisioning `{}`'s logins failed: {why}{}",
            pr.datastore,
            if tail.is_empty() {
                String::new()
            } else {
                format!("\n  its log ends:\n    {}", tail.join("\n    "))
            }
        )
    };
    let result = match (result, end.succeeded()) {
        (Some(r), _) if r.error.is_some() => {
            return Err(failed(r.error.unwrap_or_default()));
        }
        (Some(r), true) => r,
        (_, _) => {
            return Err(failed(format!(
                "its task ended `{}`{}{}",
                end.state,
                end.exit_code
                    .map(|c| format!(" with exit code {c}"))
                    .unwrap_or_default(),
                end.error
                    .as_deref()
                    .map(|e| format!(" ({e})"))
                    .unwrap_or_default()
            )));
        }
    };
    Ok((result, end.seconds))
}

/// Removes what `up` made for `namespace` in an external datastore (`pr`): every login, key and
/// vhost of ours, and our databases with their data ([`Provision::teardown_job`]) — a drill's
/// scratch platform going away, while it still runs (the task uses its provisioning network and
/// its administrator's secret). Then the markers of its provisionings.
pub async fn teardown(
    engine: &Engine,
    pr: &Provision,
    namespace: &str,
    image: &str,
    observed: &Observed,
    p: Progress,
) -> Result<ProvisionReport, String> {
    let nothing = || ProvisionReport::nothing(&pr.datastore);
    let mut secrets = Vec::new();
    for logical in pr.admin_secrets() {
        // Without its administrator's secret nothing was provisioned there (a deploy that
        // stopped before): nothing to remove.
        let Some((name, id)) = crate::backup::live_secret(observed, logical) else {
            return Ok(nothing());
        };
        secrets.push((name, id, logical.to_string()));
    }
    let job = pr.teardown_job(namespace);
    let name = format!("{namespace}_teardown-{}", pr.datastore);
    // A teardown task an interrupted run left would clash with this one's name.
    for o in observed.services.iter().filter(|o| o.spec.name == name) {
        engine
            .remove_service(&o.id, &o.spec.name)
            .await
            .map_err(|e| e.to_string())?;
    }
    let doc = serde_json::to_string(&job).expect("serialisable");
    let spec = job_spec(pr, name, image, &doc, secrets);
    p.say(format!(
        "  {}: removing `{namespace}`'s logins and databases from a one-off task",
        pr.datastore
    ));
    let cancel = std::sync::atomic::AtomicBool::new(false);
    let (result, seconds) = run_task(engine, pr, &spec, &cancel).await?;
    for m in observed
        .configs
        .iter()
        .filter(|c| c.label(PROVISIONED) == Some(pr.datastore.as_str()))
    {
        engine
            .remove_config(&m.id, &m.name)
            .await
            .map_err(|e| e.to_string())?;
    }
    for r in &result.removed {
        p.say(format!("  {}: {r} removed", pr.datastore));
    }
    Ok(ProvisionReport {
        ran: true,
        seconds,
        removed: result.removed,
        ..ProvisionReport::nothing(&pr.datastore)
    })
}
