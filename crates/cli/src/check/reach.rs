//! Reachability from each service's own side: a short-lived task with the sprocketctl image on
//! exactly that service's networks (and its host entries) resolves and connects to what the
//! service uses, and must not resolve what it shares no network with. Tracked like the
//! provisioning tasks (labels, removed whatever happens); all run at once.

use sprocket_check::plan::ReachProbe;
use sprocket_check::reach::{self, Input, PROBE_ENV};
use sprocket_check::{Finding, Kind, Severity};
use sprocket_desired::labels as L;
use sprocket_desired::plan::Observed;
use sprocket_docker::{Engine, JobSpec};
use std::collections::BTreeMap;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use sprocket_desired::labels::CHECK as CHECK_LABEL;
const JOB_TIMEOUT: Duration = Duration::from_secs(60);

fn labels(namespace: &str, service: &str) -> BTreeMap<String, String> {
    [
        (L::MANAGED_BY, L::MANAGED_BY_VALUE),
        (L::NAMESPACE, namespace),
        (CHECK_LABEL, service),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

/// Removes probe tasks an interrupted `check` left (ours by their labels): those older than a
/// probe may live, so that a `check` running beside this one keeps its own.
pub async fn clean(engine: &Engine, observed: &Observed) {
    let cutoff = crate::certs::rfc3339(
        crate::clock::unix_now().as_secs() as i64 - 2 * JOB_TIMEOUT.as_secs() as i64,
    );
    let cutoff = sprocket_docker::tasks::time_key(&cutoff);
    for o in observed.services.iter().filter(|o| {
        o.spec.labels.contains_key(CHECK_LABEL)
            && o.updated_at
                .as_deref()
                .is_none_or(|t| sprocket_docker::tasks::time_key(t) < cutoff)
    }) {
        let _ = engine.remove_service(&o.id, &o.spec.name).await;
    }
}

/// The Docker secrets (name, id, file) the live service `<namespace>_<service>` mounts for
/// `names` (the spec's secret names): the probe mounts exactly those, at the same paths.
fn mounts(
    observed: &Observed,
    namespace: &str,
    service: &str,
    names: &[String],
) -> Vec<(String, String, String)> {
    let full = sprocket_desired::state::service_name(namespace, service);
    let Some(live) = observed.services.iter().find(|o| o.spec.name == full) else {
        return Vec::new();
    };
    names
        .iter()
        .filter_map(|n| {
            let file = live.spec.secrets.iter().find(|f| &f.name == n)?;
            let id = live.secret_ids.get(n)?;
            let docker = observed.secrets.iter().find(|x| &x.id == id)?;
            Some((docker.name.clone(), id.clone(), file.target.clone()))
        })
        .collect()
}

async fn one(
    engine: &Engine,
    namespace: &str,
    image: &str,
    tag: &str,
    p: &ReachProbe,
    observed: &Observed,
) -> Vec<Finding> {
    let secrets = mounts(observed, namespace, &p.service, &p.secrets);
    // A login whose files the live service does not mount (a deploy not yet made): said, not
    // tried.
    let mounted = |file: &str| secrets.iter().any(|(_, _, f)| f == file);
    let (logins, unmounted): (Vec<_>, Vec<_>) = p
        .logins
        .iter()
        .cloned()
        .partition(|l| mounted(&l.password_file) && l.key_file.as_deref().is_none_or(mounted));
    // As the consumer logs in: with the user its mounted password's version makes current.
    let logins: Vec<_> = logins
        .into_iter()
        .map(|l| {
            let version = secrets
                .iter()
                .find(|(_, _, f)| *f == l.password_file)
                .and_then(|(name, _, _)| sprocket_desired::state::secret_name_version(name));
            l.as_mounted(version)
        })
        .collect();
    let unchecked = unmounted.iter().map(|l| {
        Finding::new(
            Kind::Login,
            &p.service,
            Severity::Warning,
            format!(
                "not tried: the running service mounts no {} (deploy with `up`)",
                l.password_file
            ),
        )
        .target(&l.datastore)
    });
    let input = Input {
        targets: p.targets.clone(),
        logins: logins.clone(),
    };
    let spec = JobSpec {
        name: format!("{namespace}_check-{}-{tag}", p.service),
        image: image.to_string(),
        args: vec!["sprocketctl".into(), "probe".into()],
        env: vec![format!(
            "{PROBE_ENV}={}",
            serde_json::to_string(&input).expect("serialisable")
        )],
        networks: p.networks.clone(),
        hosts: p.hosts.clone(),
        secrets,
        labels: labels(namespace, &p.service),
        memory_bytes: Some(32 << 20),
        mounts: Vec::new(),
        constraints: Vec::new(),
    };
    let cancel = AtomicBool::new(false);
    let failed = |why: String| {
        vec![Finding::new(
            Kind::Reach,
            &p.service,
            Severity::Critical,
            format!("its probe task could not run: {why}"),
        )]
    };
    let end = match engine.run_job(&spec, JOB_TIMEOUT, &cancel).await {
        Ok(end) => end,
        Err(e) => return failed(e.to_string()),
    };
    let Some(out) = reach::from_logs(&end.logs) else {
        return failed(format!(
            "it ended `{}`{} without a result",
            end.state,
            end.error.map(|e| format!(" ({e})")).unwrap_or_default()
        ));
    };
    p.targets
        .iter()
        .map(|t| reach::judge(&p.service, t, out.targets.iter().find(|o| o.name == t.name)))
        .chain(logins.iter().map(|l| {
            reach::judge_login(
                &p.service,
                l,
                out.logins.iter().find(|o| o.datastore == l.datastore),
            )
        }))
        .chain(unchecked)
        .collect()
}

/// Every probe's findings, in the plan's order.
pub async fn check(
    engine: &Engine,
    namespace: &str,
    image: &str,
    probes: &[ReachProbe],
    observed: &Observed,
) -> Vec<Finding> {
    let tag = format!(
        "{:06x}",
        crate::clock::unix_now().subsec_nanos() & 0xff_ffff
    );
    let all = probes
        .iter()
        .filter(|p| !p.targets.is_empty() && !p.networks.is_empty())
        .map(|p| one(engine, namespace, image, &tag, p, observed));
    futures_util::future::join_all(all)
        .await
        .into_iter()
        .flatten()
        .collect()
}
