//! `sprocketctl backup` (take one now), `backup ls` (what the bucket holds), `backup verify`
//! (download, checksums, decrypt with an operator's identity).
//!
//! A backup is taken by a one-off task inside the swarm ([`take`]): it reaches Vault, Redis,
//! RabbitMQ and the managed PostgreSQL from their admin networks, with their administrators'
//! secrets mounted, and writes only ciphertext (age, to `vault.recipients`) to the bucket. This
//! side plans it (pure: `sprocket_backup`), hands it the Docker secrets it needs, runs it, and
//! reports. `ls` and `verify` read the bucket from here, with the store's key from the
//! environment's secrets source.

pub mod drill;
mod filekey;
pub mod put;
pub mod restore;
pub mod schedule;
pub mod store;
pub mod take;
mod vault;
mod verify;
mod volume;
mod wire;

use crate::commands::{live, Ctx};
use crate::error::CliError;
use crate::output::{self, Format};
use serde::Serialize;
use sprocket_backup::job::{self, KEYRING_SECRET};
use sprocket_desired::labels as L;
use sprocket_desired::plan::Observed;
use sprocket_docker::{Engine, JobSpec};
use std::sync::atomic::AtomicBool;
use std::time::Duration;

#[derive(clap::Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct Args {
    #[command(subcommand)]
    pub command: Option<Sub>,
    /// Seconds the backup may take before it is stopped (and left incomplete).
    #[arg(long, default_value_t = 1800, value_parser = clap::value_parser!(u64).range(10..=86_400))]
    pub timeout: u64,
}

#[derive(clap::Subcommand)]
pub enum Sub {
    /// The environment's backups in the bucket, newest first: complete ones with their size,
    /// artefacts and age; incomplete ones (a run that failed or was stopped) marked as such.
    Ls(store::StoreArgs),
    /// Download a backup (the newest, or --from ID), check every artefact's size and SHA-256
    /// against its manifest, and decrypt each with an operator's identity.
    Verify(verify::Args),
}

pub async fn run(ctx: &Ctx, a: Args) -> Result<i32, CliError> {
    match a.command {
        Some(Sub::Ls(s)) => store::ls(ctx, s).await,
        Some(Sub::Verify(v)) => verify::run(ctx, v).await,
        None => take_now(ctx, Duration::from_secs(a.timeout)).await,
    }
}

/// What `backup` reports.
#[derive(Debug, Serialize)]
pub struct BackupReport {
    pub id: String,
    pub complete: bool,
    pub bucket: String,
    pub manifest: Option<String>,
    pub artefacts: Vec<sprocket_backup::Artefact>,
    /// In the spec's plan but not taken by this version, with why.
    pub skipped: Vec<Skipped>,
    pub failed: Option<String>,
    pub error: Option<String>,
    pub removed_by_retention: Vec<String>,
    pub seconds: f64,
}

#[derive(Debug, Serialize)]
pub struct Skipped {
    pub component: String,
    pub why: String,
}

/// The live Docker secret of the logical secret `logical`: the one a running service of the
/// namespace mounts under that name (what the consumers use now), else our newest version.
pub fn live_secret(observed: &Observed, logical: &str) -> Option<(String, String)> {
    // The scheduled runner follows the others' versions: never the one it holds.
    for o in observed
        .services
        .iter()
        .filter(|o| !o.spec.labels.contains_key(L::SCHEDULE))
    {
        if o.spec.secrets.iter().any(|f| f.name == logical) {
            if let Some(id) = o.secret_ids.get(logical) {
                if let Some(s) = observed.secrets.iter().find(|s| &s.id == id) {
                    return Some((s.name.clone(), id.clone()));
                }
            }
        }
    }
    observed
        .secrets
        .iter()
        .filter(|s| s.label(L::NAME) == Some(logical))
        .max_by_key(|s| {
            s.label(L::SECRET_VERSION)
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0)
        })
        .map(|s| (s.name.clone(), s.id.clone()))
}

use sprocket_datastores::sigv4::payload_hash as sha256_hex;

/// The labels of a Docker secret a backup or restore run makes for itself (`name`: its logical
/// name): ours, of this namespace and environment.
pub(crate) fn own_secret_labels(
    p: &sprocket_spec::model::Platform,
    name: &str,
) -> std::collections::BTreeMap<String, String> {
    [
        (L::MANAGED_BY, L::MANAGED_BY_VALUE.to_string()),
        (L::NAMESPACE, p.environment.namespace.clone()),
        (L::ENVIRONMENT, p.environment.name.clone()),
        (L::NAME, name.to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

/// The Docker secrets (name, id, file) a one-off task mounts for its logical `names`: the live
/// ones, and `own` — one the run made for itself (`None`: not there). A missing one is an error
/// naming it, then `why`.
fn task_secrets(
    observed: &Observed,
    ns: &str,
    names: &[String],
    own: (&str, Option<(String, String)>),
    why: &str,
) -> Result<Vec<(String, String, String)>, CliError> {
    let mut out = Vec::new();
    for logical in names {
        let found = if logical == own.0 {
            own.1.clone()
        } else {
            live_secret(observed, logical)
        };
        let Some((name, id)) = found else {
            return Err(CliError::Blocked(format!(
                "secret `{logical}` does not exist in namespace `{ns}`, {why}"
            )));
        };
        out.push((name, id, sprocket_desired::provision::secret_file(logical)));
    }
    Ok(out)
}

/// The keyring's Docker secret (already encrypted to the operators): made when its content is
/// new, older ones removed. `None` when there is no keyring file here.
async fn keyring_secret(
    engine: &Engine,
    observed: &Observed,
    p: &sprocket_spec::model::Platform,
) -> Result<Option<(String, String)>, CliError> {
    let Some(v) = &p.vault else { return Ok(None) };
    let Ok(bytes) = std::fs::read(&v.keyring) else {
        return Ok(None);
    };
    let ns = &p.environment.namespace;
    let name = format!("{ns}_{KEYRING_SECRET}-{}", &sha256_hex(&bytes)[..12]);
    let ours: Vec<_> = observed
        .secrets
        .iter()
        .filter(|s| s.label(L::NAME) == Some(KEYRING_SECRET))
        .collect();
    for old in ours.iter().filter(|s| s.name != name) {
        let _ = engine.remove_secret(&old.id, &old.name).await;
    }
    if let Some(s) = ours.iter().find(|s| s.name == name) {
        return Ok(Some((s.name.clone(), s.id.clone())));
    }
    let labels = own_secret_labels(p, KEYRING_SECRET);
    let id = engine.create_secret(&name, &labels, &bytes).await?;
    Ok(Some((name, id)))
}

/// The backup task of `p` for backup `id` (started at `started`): its document and its
/// service (networks, host entries, the live Docker secrets it mounts, the keyring's made when
/// new). `args`: what it runs (`backup-task`, and a schedule for the runner).
pub(crate) async fn task_spec(
    engine: &Engine,
    observed: &Observed,
    p: &sprocket_spec::model::Platform,
    spec_file: &std::path::Path,
    (id, started): (&str, i64),
    (name, args): (String, Vec<String>),
) -> Result<(JobSpec, job::Task), CliError> {
    let ns = &p.environment.namespace;
    let spec_sha = sha256_hex(&std::fs::read(spec_file).unwrap_or_default());
    let keyring = keyring_secret(engine, observed, p).await?;
    let provisions = sprocket_desired::provision::provisions(p);
    let items = sprocket_backup::plan(p);
    let mut task = job::task(
        p,
        &provisions,
        &items,
        id,
        started,
        &spec_sha,
        keyring.is_some(),
    )
    .map_err(|e| CliError::Invalid(e.0))?;
    // After a rebuild, retention keeps the last backup from before it.
    task.job.volumes_made = volumes_made(engine, ns).await?;
    // A data volume is taken where it is: the task runs on its node.
    let (node, away) = placement(engine, observed, ns, &task.mounts(), false).await?;
    let missing = take_away(&mut task.job.items, &away, |i| {
        (&i.component, i.mount.as_ref())
    });
    task.skipped.extend(missing);
    let (mounts, constraints) = mounts_spec(p, &task.mounts(), node.as_deref(), true);
    let secrets = task_secrets(
        observed,
        ns,
        &task.secrets,
        (KEYRING_SECRET, keyring.clone()),
        "so the backup cannot be taken\n  hint: run `sprocketctl up` first (it makes every secret the backup mounts, the backups' Vault token included)",
    )?;
    let doc = serde_json::to_string(&task.job).expect("serialisable");
    let spec = JobSpec {
        name,
        image: p.environment.tool_image.clone(),
        args,
        env: vec![format!("{}={doc}", job::JOB_ENV)],
        networks: task.networks.clone(),
        hosts: task.hosts.clone(),
        secrets,
        labels: task.labels.clone(),
        memory_bytes: Some(256 << 20),
        mounts,
        constraints,
    };
    Ok((spec, task))
}

/// When the namespace's live volumes (on this node) were made: the earliest; `None` when none
/// is there. A rebuilt platform's are all younger than the backups of the one it replaced.
pub(crate) async fn volumes_made(engine: &Engine, ns: &str) -> Result<Option<i64>, CliError> {
    Ok(engine
        .volumes(ns)
        .await?
        .iter()
        .filter_map(|v| {
            v.created_at
                .as_deref()
                .and_then(sprocket_spec::values::rfc3339_utc)
        })
        .min())
}

/// The node a task that mounts `mounts` runs on, and the volumes it cannot reach there (with
/// why). A local volume lives on the node of the task that mounts it: a mount goes where a
/// running task of its services is; one no task runs with goes where it is on this node — or,
/// for a restore (`make`), is made on this node. The first mount's node is the task's; a volume
/// on another node is left out, said.
pub(crate) async fn placement(
    engine: &Engine,
    observed: &Observed,
    ns: &str,
    mounts: &[&job::VolumeMount],
    make: bool,
) -> Result<(Option<String>, std::collections::BTreeMap<String, String>), CliError> {
    let here: std::collections::BTreeSet<String> = engine
        .volumes(ns)
        .await?
        .into_iter()
        .map(|v| v.name)
        .collect();
    let mut node: Option<String> = None;
    let mut away = std::collections::BTreeMap::new();
    for m in mounts {
        let mut on = None;
        for o in observed
            .services
            .iter()
            .filter(|o| m.services.contains(&o.spec.name))
        {
            on = engine
                .tasks(&o.id)
                .await?
                .into_iter()
                .find(|t| t.state == "running" && t.desired_state == "running")
                .and_then(|t| t.node);
            if on.is_some() {
                break;
            }
        }
        let on = match on {
            Some(n) => n,
            None if here.contains(&m.volume) || make => engine.node_id.clone(),
            None => {
                away.insert(
                    m.volume.clone(),
                    format!("volume {} is not on this node and no task of its service runs: nothing to take", m.volume),
                );
                continue;
            }
        };
        match &node {
            None => node = Some(on),
            Some(n) if *n == on => {}
            Some(n) => {
                away.insert(
                    m.volume.clone(),
                    format!("volume {} is on node {on}, the task runs on {n} (another volume's): take it with `--only` from there", m.volume),
                );
            }
        }
    }
    Ok((node.filter(|n| !n.is_empty()), away))
}

/// Takes out of `items` those whose volume [`placement`] found away: (component, why) each.
pub(crate) fn take_away<T>(
    items: &mut Vec<T>,
    away: &std::collections::BTreeMap<String, String>,
    of: impl Fn(&T) -> (&String, Option<&job::VolumeMount>),
) -> Vec<(String, String)> {
    let mut out = Vec::new();
    items.retain(|i| match of(i) {
        (component, Some(m)) if away.contains_key(&m.volume) => {
            out.push((component.clone(), away[&m.volume].clone()));
            false
        }
        _ => true,
    });
    out
}

/// The job spec's mounts of `mounts` and the constraint that keeps the task on `node`, where
/// they are. A backup's (`read_only`) are there; a restore's makes a missing one labelled as its
/// service's mount would (a drill's copy runs no n8n to make its volume).
pub(crate) fn mounts_spec(
    p: &sprocket_spec::model::Platform,
    mounts: &[&job::VolumeMount],
    node: Option<&str>,
    read_only: bool,
) -> (Vec<sprocket_docker::JobMount>, Vec<String>) {
    use sprocket_desired::labels as L;
    let env = &p.environment;
    let specs: Vec<sprocket_docker::JobMount> = mounts
        .iter()
        .map(|m| sprocket_docker::JobMount {
            volume: m.volume.clone(),
            target: m.target.clone(),
            read_only,
            labels: (!read_only).then(|| {
                [
                    (L::MANAGED_BY, L::MANAGED_BY_VALUE.to_string()),
                    (L::NAMESPACE, env.namespace.clone()),
                    (L::ENVIRONMENT, env.name.clone()),
                    (L::LAYER, m.layer.clone()),
                ]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect()
            }),
        })
        .collect();
    let constraints = match node {
        Some(n) if !specs.is_empty() => vec![format!("node.id=={n}")],
        _ => Vec::new(),
    };
    (specs, constraints)
}

async fn take_now(ctx: &Ctx, timeout: Duration) -> Result<i32, CliError> {
    let live = live(ctx).await?;
    let p = &live.loaded.platform;
    let ns = p.environment.namespace.clone();
    if let Some(of) = &p.environment.scratch_of {
        return Err(CliError::Invalid(format!(
            "`{ns}` is a drill's scratch copy of `{of}`: it is not backed up (its backups are `{of}`'s)"
        )));
    }
    let started = crate::clock::unix_now().as_secs() as i64;
    let tag = (crate::clock::unix_now().subsec_nanos() >> 8) as u16;
    let id = sprocket_backup::layout::id(started, tag);
    let (spec, task) = task_spec(
        &live.engine,
        &live.observed,
        p,
        &ctx.cli_file,
        (&id, started),
        (
            format!("{ns}_backup-{}", id.to_ascii_lowercase()),
            vec!["sprocketctl".into(), "backup-task".into()],
        ),
    )
    .await?;
    ctx.progress.say(format!(
        "backup {id}: {} artefacts to s3 bucket `{}` ({}), encrypted to {} recipient(s)",
        task.job.items.len(),
        task.job.store.bucket,
        task.job.store.endpoint,
        task.job.recipients.len()
    ));
    for (c, why) in &task.skipped {
        ctx.progress.say(format!("  {c}: not taken: {why}"));
    }
    let cancel = AtomicBool::new(false);
    let end = live.engine.run_job(&spec, timeout, &cancel).await?;
    let result: Option<take::TaskResult> = wire::result_in_logs(&end.logs, take::RESULT_PREFIX);
    let result = result.unwrap_or_else(|| take::TaskResult {
        error: Some(format!(
            "the backup task ended `{}`{} without a result{}",
            end.state,
            end.error
                .as_deref()
                .map(|e| format!(" ({e})"))
                .unwrap_or_default(),
            end.logs
                .last()
                .map(|l| format!("; its last line: {l}"))
                .unwrap_or_default()
        )),
        ..Default::default()
    });
    for l in end.logs.iter().filter(|l| !l.contains(take::RESULT_PREFIX)) {
        ctx.progress.say(format!("  {l}"));
    }
    let report = BackupReport {
        id: id.clone(),
        complete: result.manifest.is_some(),
        bucket: task.job.store.bucket.clone(),
        manifest: result.manifest.clone(),
        artefacts: result.artefacts.clone(),
        skipped: task
            .skipped
            .iter()
            .map(|(c, w)| Skipped {
                component: c.clone(),
                why: w.clone(),
            })
            .collect(),
        failed: result.failed.clone(),
        error: result.error.clone(),
        removed_by_retention: result.removed.clone(),
        seconds: end.seconds,
    };
    match ctx.format {
        Format::Json => output::json(&report),
        Format::Human => print_report(&report, result.retention_error.as_deref()),
    }
    if report.complete {
        return Ok(crate::exit::OK);
    }
    if ctx.format == Format::Human {
        eprintln!(
            "error: backup {id} failed{}: {}\n  nothing of it is kept (it has no manifest, so it is never listed or restored); every service kept running",
            report
                .failed
                .as_deref()
                .map(|c| format!(" at `{c}`"))
                .unwrap_or_default(),
            report.error.as_deref().unwrap_or("no reason given")
        );
    }
    Ok(crate::exit::ERROR)
}

fn print_report(r: &BackupReport, retention_error: Option<&str>) {
    for a in &r.artefacts {
        println!(
            "{:<28} {:>12}  {:>6.1} s  sha256 {}",
            a.component,
            human_bytes(a.bytes),
            a.seconds,
            &a.sha256[..16]
        );
    }
    if r.complete {
        println!(
            "backup {} complete: {} artefacts, {} in {:.1} s → s3://{}/{}",
            r.id,
            r.artefacts.len(),
            human_bytes(r.artefacts.iter().map(|a| a.bytes).sum()),
            r.seconds,
            r.bucket,
            r.manifest.as_deref().unwrap_or("")
        );
    }
    if !r.removed_by_retention.is_empty() {
        println!(
            "retention removed {} older backup(s): {}",
            r.removed_by_retention.len(),
            r.removed_by_retention.join(", ")
        );
    }
    if let Some(e) = retention_error {
        println!("retention could not run (the backup stands): {e}");
    }
}

/// `1.2 MiB`.
pub fn human_bytes(b: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = b as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{b} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}
