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
        return Ok(ProvisionReport {
            datastore: pr.datastore.clone(),
            ran: false,
            seconds: 0.0,
            logins: Vec::new(),
            made: Vec::new(),
            removed: Vec::new(),
        });
    }
    if let Some(logical) = missing {
        return Err(format!(
            "secret `{logical}` does not exist, so `{}`'s logins cannot be provisioned",
            pr.datastore
        ));
    }
    let marker = pr.marker(namespace, &versions);
    let current = names.contains(&marker.as_str());
    let job = pr.job(namespace, prune);
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
        secrets,
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
    // The marker of this provisioning; with `--prune`, earlier ones go (what they made and no
    // consumer wants any more was just removed).
    if !current {
        engine
            .create_config(&ConfigSpec {
                name: marker.clone(),
                labels: pr.labels.clone(),
                content: doc.into_bytes(),
                source: None,
            })
            .await
            .map_err(|e| e.to_string())?;
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
        datastore: pr.datastore.clone(),
        ran: true,
        seconds,
        logins: result.logins,
        made: result.made,
        removed: result.removed,
    })
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
    let nothing = || ProvisionReport {
        datastore: pr.datastore.clone(),
        ran: false,
        seconds: 0.0,
        logins: Vec::new(),
        made: Vec::new(),
        removed: Vec::new(),
    };
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
        datastore: pr.datastore.clone(),
        ran: true,
        seconds,
        logins: Vec::new(),
        made: Vec::new(),
        removed: result.removed,
    })
}
