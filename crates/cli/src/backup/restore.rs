//! `sprocketctl restore`: a backup back into the platform, one command. On this machine: pick
//! the backup (the newest complete, or `--from`), read its manifest, unwrap each artefact's file
//! key with the operator's identity (the header only is downloaded for that), and put the
//! keyring file back where it was missing. In the swarm: a one-off task on the datastores' admin
//! networks, with the artefacts' keys as one Docker secret made for the run and removed after,
//! puts the datastores' data back ([`super::put`]). A target that holds data is left as it is
//! unless `--force`, and the report says what it holds.

use super::store::{self, StoreArgs};
use super::{filekey, put};
use crate::commands::{live_changing, Ctx};
use crate::error::CliError;
use crate::output::{self, Format};
use serde::Serialize;
use sprocket_backup::restore::{self, KEYS_SECRET};
use sprocket_docker::JobSpec;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

#[derive(clap::Args)]
pub struct Args {
    /// The backup to restore (an id from `backup ls`; default: the newest complete one — unless
    /// it was taken within a day after every live volume was made while an older one exists: a
    /// rebuilt, maybe empty platform; then `restore` names both and stops).
    #[arg(long)]
    pub from: Option<String>,
    /// Only these components, or kinds of them (`vault`, `vault-keyring`, `redis`, `rabbitmq`,
    /// `postgres`, `postgres:<database>`, `volume`, `volume:<name>`, `acme`), comma-separated.
    #[arg(long, value_delimiter = ',')]
    pub only: Vec<String>,
    /// Replace data that is there (without it, a target that holds data is left as it is).
    #[arg(long)]
    pub force: bool,
    /// An operator's private key: an age identity file or an unencrypted OpenSSH private key
    /// (default ~/.config/sprocket/identity.txt).
    #[arg(long, env = "SPROCKET_IDENTITY")]
    pub identity: Option<PathBuf>,
    /// Seconds the restore may take.
    #[arg(long, default_value_t = 1800, value_parser = clap::value_parser!(u64).range(10..=86_400))]
    pub timeout: u64,
    #[command(flatten)]
    pub store: StoreArgs,
}

#[derive(Debug, Serialize)]
pub struct RestoreReport {
    pub id: String,
    pub ok: bool,
    pub restored: Vec<put::Restored>,
    /// Left as they were because they hold data (`--force` replaces it): component, what.
    pub held: Vec<(String, String)>,
    /// In the backup, not restored: component, why.
    pub left: Vec<(String, String)>,
    pub failed: Option<String>,
    pub error: Option<String>,
    /// `up`'s report, when Vault was restored.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub up: Option<serde_json::Value>,
    pub seconds: f64,
}

/// `sprocketctl up` after Vault's restore, as its own process (its own lock, its own report):
/// exit code and JSON report.
fn up_after(
    ctx: &Ctx,
    identity: &std::path::Path,
    secrets_from: Option<&str>,
) -> (i32, serde_json::Value) {
    let identity = identity.to_string_lossy();
    let mut args = vec!["up", "--identity", &identity];
    if let Some(s) = secrets_from {
        args.extend(["--secrets-from", s]);
    }
    ctx.run_json(&args)
}

/// [`up_after`], with its report kept in the restore's and its failure said as the restore's.
fn then_up(
    ctx: &Ctx,
    identity: &std::path::Path,
    secrets_from: Option<&str>,
    report: &mut RestoreReport,
) {
    let (code, up) = up_after(ctx, identity, secrets_from);
    report.up = Some(up);
    if code != crate::exit::OK {
        report.failed = Some("up".into());
        report.error = Some(format!(
            "`up` after the restore ended with exit code {code}"
        ));
    }
}

/// The first bytes of an object: enough for an age header.
async fn head(store: &store::Store, key: &str) -> Result<Vec<u8>, String> {
    let mut r = store
        .client
        .get_stream(&store.bucket, key)
        .await
        .map_err(|e| e.to_string())?
        .ok_or("its object is missing from the bucket")?;
    let mut out = Vec::new();
    while let Some(c) = r.chunk().await.map_err(|e| e.to_string())? {
        out.extend_from_slice(&c);
        if out.len() >= 64 << 10 {
            break;
        }
    }
    Ok(out)
}

/// Without `--from`: the newest complete backup (`None`: there is none; `chosen` says so) —
/// refused when it may be of a rebuilt, still empty platform (`sprocket_backup::choose`):
/// nothing is changed, and both candidates are named for `command` (`restore`, `drill`).
pub(super) async fn unnamed(
    engine: &sprocket_docker::Engine,
    ns: &str,
    store: &store::Store,
    command: &str,
) -> Result<Option<String>, CliError> {
    let made = super::volumes_made(engine, ns).await?;
    let backups = store.backups().await?;
    let complete: Vec<&str> = backups
        .iter()
        .filter(|b| b.complete)
        .map(|b| b.id.as_str())
        .collect();
    let Some(a) = sprocket_backup::choose::ambiguous(&complete, made) else {
        return Ok(complete.first().map(|id| id.to_string()));
    };
    Err(CliError::Blocked(format!(
        "the newest backup, `{}`, was taken {} after this platform's volumes were made: after a rebuild it may hold the new, still empty platform (the scheduled runner takes a missed run an hour after `up` starts it); the newest from before them is `{}`\n  hint: name the one to {command}: `sprocketctl {command} --from {}` (or `--from {}`); `sprocketctl backup ls` lists them with their sizes",
        a.newest,
        store::age(a.after_made_s),
        a.before,
        a.before,
        a.newest
    )))
}

pub async fn run(ctx: &Ctx, a: Args) -> Result<i32, CliError> {
    let t0 = std::time::Instant::now();
    let (identity, identities) = store::identities(a.identity.clone())?;
    let mut live = live_changing(ctx, "restore").await?;
    let p = &live.loaded.platform;
    let store = store::open(p, a.store.secrets_from.as_deref()).await?;
    // One listing of the bucket: the choice is made here, `chosen` reads its manifest.
    let from = match a.from.clone() {
        Some(id) => Some(id),
        None => unnamed(&live.engine, &p.environment.namespace, &store, "restore").await?,
    };
    let (id, manifest) = store.chosen(from).await?;
    // No scheduled backup of a platform half-restored: the runner goes, and the `up` after the
    // restore makes it again (it then waits its hour before making up a missed run).
    let runner = format!("{}_{}", p.environment.namespace, super::schedule::NAME);
    if a.force {
        if let Some(o) = live.observed.services.iter().find(|o| {
            o.spec.name == runner
                && o.spec
                    .labels
                    .contains_key(sprocket_desired::labels::SCHEDULE)
        }) {
            live.engine.remove_service(&o.id, &o.spec.name).await?;
            ctx.progress.say(format!(
                "restore {id}: the scheduled backups' runner stopped until `up`"
            ));
        }
    }
    let provisions = sprocket_desired::provision::provisions(p);
    let mut task = restore::task(p, &provisions, &manifest, &a.only, a.force)
        .map_err(|e| CliError::Invalid(e.0))?;
    // A data volume is put back where its service's task runs (a local volume is there).
    let (node, away) = super::placement(
        &live.engine,
        &live.observed,
        &p.environment.namespace,
        &task.mounts(),
        true,
    )
    .await?;
    let missing = super::take_away(&mut task.job.items, &away, |i| {
        (&i.component, i.mount.as_ref())
    });
    task.left.extend(missing);
    let mut report = RestoreReport {
        id: id.clone(),
        ok: false,
        restored: Vec::new(),
        held: Vec::new(),
        left: task.left.clone(),
        failed: None,
        error: None,
        up: None,
        seconds: 0.0,
    };
    let with_vault = task.local.iter().any(|c| c == "vault");
    // The keyring, on this machine (with Vault's data, it comes back with it, below).
    for component in task.local.iter().filter(|c| *c != "vault" && !with_vault) {
        let art = manifest.artefact(component).expect("from the manifest");
        let Some(v) = &p.vault else { continue };
        let bytes = download_plain(&store, art, &identities)
            .await
            .map_err(|e| CliError::Failed(format!("{component}: {e}")))?;
        let there = std::fs::read(&v.keyring).ok();
        match there {
            Some(b) if b == bytes => report.left.push((
                component.clone(),
                format!("{} is already this keyring", v.keyring.display()),
            )),
            Some(_) if !a.force => report.held.push((
                component.clone(),
                format!("{} holds another keyring", v.keyring.display()),
            )),
            _ => {
                if let Some(dir) = v.keyring.parent() {
                    std::fs::create_dir_all(dir)
                        .map_err(|e| CliError::Failed(format!("{}: {e}", dir.display())))?;
                }
                sprocket_vault::keyring::write_atomic(&v.keyring, &bytes)
                    .map_err(|e| CliError::Failed(format!("{}: {e}", v.keyring.display())))?;
                report.restored.push(put::Restored {
                    component: component.clone(),
                    bytes: bytes.len() as u64,
                    seconds: 0.0,
                    replaced: "nothing".into(),
                    holds: "the backup's keyring".into(),
                });
            }
        }
    }
    // Vault holds data whenever it is initialised. Without --force nothing is restored then,
    // not even empty datastores: they would come back with the backup's passwords while Vault
    // keeps today's.
    let mut vault_holds = false;
    let mut restart_failed: Option<(String, String)> = None;
    let mut reprovision = false;
    if with_vault && !a.force {
        if let super::vault::Outcome::Held(what) = super::vault::restore(
            p,
            &live.engine.root_dir,
            &store,
            &manifest,
            &identities,
            &identity,
            false,
        )
        .await?
        {
            vault_holds = true;
            report.held.push(("vault".into(), what));
        }
    }
    if vault_holds {
        for i in &task.job.items {
            report.left.push((
                i.component.clone(),
                "not restored: it comes back with Vault's data, which is held (--force)".into(),
            ));
        }
    } else if !task.job.items.is_empty() {
        let mut keys = std::collections::BTreeMap::new();
        for i in &task.job.items {
            let h = head(&store, &i.object)
                .await
                .map_err(|e| CliError::Failed(format!("{}: {e}", i.component)))?;
            let k = filekey::unwrap(&h, &identities)
                .map_err(|e| CliError::Failed(format!("{}: {e}", i.component)))?;
            keys.insert(i.component.clone(), k);
        }
        let ran = run_task(
            ctx,
            &live,
            (&task, node.as_deref()),
            &keys,
            Duration::from_secs(a.timeout),
        )
        .await?;
        // The services of a volume that got its files back start again on them. A restart
        // that fails is said, after Vault and `up` (it does not stop them).
        let put_back: Vec<&str> = ran
            .restored
            .iter()
            .filter(|r| r.holds != super::volume::NOTHING_PUT_BACK)
            .map(|r| r.component.as_str())
            .collect();
        for name in task.restarts(&put_back) {
            // A service with no task (a drill's copy runs no n8n) reads its files when it
            // starts.
            let Some(o) = live.observed.services.iter().find(|o| {
                o.spec.name == name && o.spec.mode != sprocket_spec::model::Mode::Replicated(0)
            }) else {
                continue;
            };
            ctx.progress.say(format!(
                "restore {id}: {name} restarts on its restored files"
            ));
            if let Err(e) = restart(&live.engine, o, Duration::from_secs(240)).await {
                restart_failed.get_or_insert((name.clone(), e));
            }
        }
        // RabbitMQ's definitions brought back the backup's users and password hashes: a
        // password rotated since, or a login retired since (a two-login consumer's), is as it
        // was then. Its provisioning's markers go, so `up` (below, or after Vault's restore)
        // provisions its logins again and retires what the consumers no longer use.
        for ds in ran
            .restored
            .iter()
            .filter_map(|r| r.component.strip_prefix("rabbitmq:"))
        {
            reprovision = true;
            for m in live
                .observed
                .configs
                .iter()
                .filter(|c| c.label(sprocket_desired::provision::PROVISIONED) == Some(ds))
            {
                live.engine
                    .remove_config(&m.id, &m.name)
                    .await
                    .map_err(|e| CliError::Failed(e.to_string()))?;
            }
        }
        report.restored.extend(ran.restored);
        report.held.extend(ran.held);
        if ran.failed.is_some() {
            report.failed = ran.failed;
            report.error = ran.error;
        }
    }
    // Vault's data after the datastores' (their task logged in with the credentials they hold
    // now), then `up` rolls everything onto the restored secrets and keys.
    if with_vault && a.force && report.failed.is_none() {
        ctx.progress
            .say(format!("restore {id}: Vault's data and keyring"));
        let outcome = match super::vault::restore(
            p,
            &live.engine.root_dir,
            &store,
            &manifest,
            &identities,
            &identity,
            a.force,
        )
        .await
        {
            Ok(o) => Some(o),
            // Said in the report, with what was restored before it.
            Err(CliError::Failed(e)) => {
                report.failed = Some("vault".into());
                report.error = Some(e);
                None
            }
            Err(e) => return Err(e),
        };
        match outcome {
            None => {}
            Some(super::vault::Outcome::Held(what)) => report.held.push(("vault".into(), what)),
            Some(super::vault::Outcome::Restored {
                keyring_fingerprint,
                seconds,
                holds,
            }) => {
                for c in ["vault", "vault-keyring"] {
                    if let Some(art) = manifest.artefact(c) {
                        report.restored.push(put::Restored {
                            component: c.to_string(),
                            bytes: art.bytes,
                            seconds: if c == "vault" { seconds } else { 0.0 },
                            replaced: if c == "vault" {
                                "Vault's data and keys (the keyring in place kept beside it)".into()
                            } else {
                                format!("the keyring file (now fingerprint {keyring_fingerprint})")
                            },
                            holds: if c == "vault" {
                                holds.clone()
                            } else {
                                format!("fingerprint {keyring_fingerprint}")
                            },
                        });
                    }
                }
                live.lock.take();
                ctx.progress.say(format!(
                    "restore {id}: `up` rolls the services onto the restored secrets and the agent onto the original keys"
                ));
                then_up(ctx, &identity, a.store.secrets_from.as_deref(), &mut report);
            }
        }
    }
    // Without Vault's restore (whose `up` did it), `up` provisions RabbitMQ's logins again.
    if reprovision && report.up.is_none() && report.failed.is_none() {
        ctx.progress.say(format!(
            "restore {id}: `up` provisions RabbitMQ's logins again (the definitions brought back the backup's users and password hashes)"
        ));
        live.lock.take();
        then_up(ctx, &identity, a.store.secrets_from.as_deref(), &mut report);
    }
    if let (None, Some((name, e))) = (&report.failed, restart_failed) {
        report.failed = Some(name);
        report.error = Some(e);
    }
    report.seconds = t0.elapsed().as_secs_f64();
    report.ok = report.failed.is_none() && report.held.is_empty();
    match ctx.format {
        Format::Json => output::json(&report),
        Format::Human => print(&report),
    }
    Ok(if report.failed.is_some() {
        crate::exit::ERROR
    } else if !report.held.is_empty() {
        crate::exit::BLOCKED
    } else {
        crate::exit::OK
    })
}

/// A small artefact (the keyring, Vault's snapshot) decrypted in memory, after its size and
/// SHA-256 are checked against the manifest.
pub(super) async fn download_plain(
    store: &store::Store,
    art: &sprocket_backup::Artefact,
    identities: &[Box<dyn age::Identity>],
) -> Result<Vec<u8>, String> {
    use std::io::Read;
    let (file, bytes, sha) = super::wire::download(&store.client, &store.bucket, &art.object)
        .await?
        .ok_or_else(|| sprocket_backup::manifest::Mismatch::Missing.to_string())?;
    sprocket_backup::manifest::verify(art, Some((bytes, &sha))).map_err(|m| m.to_string())?;
    let f = std::io::BufReader::new(std::fs::File::open(file.path()).map_err(|e| e.to_string())?);
    let dec = age::Decryptor::new(f).map_err(|e| e.to_string())?;
    let mut r = dec
        .decrypt(identities.iter().map(|i| i.as_ref() as &dyn age::Identity))
        .map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    r.read_to_end(&mut out).map_err(|e| e.to_string())?;
    Ok(out)
}

async fn run_task(
    ctx: &Ctx,
    live: &crate::commands::Live,
    (task, node): (&restore::RestoreTask, Option<&str>),
    keys: &std::collections::BTreeMap<String, String>,
    timeout: Duration,
) -> Result<put::RestoreResult, CliError> {
    let p = &live.loaded.platform;
    let ns = &p.environment.namespace;
    let engine = &live.engine;
    // The keys' secret, for this run only.
    let tag = format!("{:08x}", crate::clock::unix_now().subsec_nanos());
    let keys_name = format!("{ns}_{KEYS_SECRET}-{tag}");
    let labels = super::own_secret_labels(p, KEYS_SECRET);
    let doc = serde_json::to_vec(keys).expect("serialisable");
    let keys_id = engine.create_secret(&keys_name, &labels, &doc).await?;
    let result = async {
        let secrets = super::task_secrets(
            &live.observed,
            ns,
            &task.secrets,
            (KEYS_SECRET, Some((keys_name.clone(), keys_id.clone()))),
            "so nothing can be restored\n  hint: run `sprocketctl up` first (the restore puts data into the platform as `up` made it)",
        )?;
        let (mounts, constraints) = super::mounts_spec(p, &task.mounts(), node, false);
        let spec = JobSpec {
            name: format!("{ns}_restore-{}", task.job.id.to_ascii_lowercase()),
            image: p.environment.tool_image.clone(),
            args: vec!["sprocketctl".into(), "restore-task".into()],
            env: vec![format!(
                "{}={}",
                restore::JOB_ENV,
                serde_json::to_string(&task.job).expect("serialisable")
            )],
            networks: task.networks.clone(),
            hosts: task.hosts.clone(),
            secrets,
            labels: task.labels.clone(),
            memory_bytes: Some(256 << 20),
            mounts,
            constraints,
        };
        ctx.progress.say(format!(
            "restore {}: {} artefact(s) from s3 bucket `{}`{}",
            task.job.id,
            task.job.items.len(),
            task.job.store.bucket,
            if task.job.force { " (--force)" } else { "" }
        ));
        let cancel = AtomicBool::new(false);
        let end = engine.run_job(&spec, timeout, &cancel).await?;
        for l in end.logs.iter().filter(|l| !l.contains(put::RESULT_PREFIX)) {
            ctx.progress.say(format!("  {l}"));
        }
        Ok(super::wire::result_in_logs(&end.logs, put::RESULT_PREFIX)
            .unwrap_or_else(|| put::RestoreResult {
                failed: Some("task".into()),
                error: Some(format!(
                    "the restore task ended `{}`{} without a result",
                    end.state,
                    end.error.map(|e| format!(" ({e})")).unwrap_or_default()
                )),
                ..Default::default()
            }))
    }
    .await;
    let _ = engine.remove_secret(&keys_id, &keys_name).await;
    result
}

/// Restarts service `name` (a new task, same spec) and waits until the gate's own reading of
/// its tasks ([`sprocket_docker::assess`]) says it is healthy with no task of before still
/// running; a new task that fails ends the wait at once.
async fn restart(
    engine: &sprocket_docker::Engine,
    o: &sprocket_desired::plan::ObservedService,
    timeout: Duration,
) -> Result<(), String> {
    let name = &o.spec.name;
    let old: std::collections::HashSet<String> = engine
        .tasks(&o.id)
        .await
        .map_err(|e| e.to_string())?
        .into_iter()
        .map(|t| t.id)
        .collect();
    engine
        .restart_service(name)
        .await
        .map_err(|e| format!("{name} cannot be restarted on its restored files: {e}"))?;
    let t0 = std::time::Instant::now();
    loop {
        let tasks = engine.tasks(&o.id).await.map_err(|e| e.to_string())?;
        let a = sprocket_docker::assess(
            &o.spec.mode,
            &tasks,
            sprocket_docker::Tracking::Current(&old),
        );
        if let Some(f) = &a.failed {
            return Err(format!(
                "{name}'s new task on its restored files failed ({}): see `docker service ps {name}`",
                f.error.as_deref().unwrap_or(&f.state)
            ));
        }
        let old_running = tasks.iter().any(|t| old.contains(&t.id) && t.is_running());
        if a.healthy() && a.running > 0 && !old_running {
            return Ok(());
        }
        if t0.elapsed() > timeout {
            return Err(format!(
                "{name} did not run again within {} s of its restart on its restored files: see `docker service ps {name}`",
                timeout.as_secs()
            ));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

fn print(r: &RestoreReport) {
    for x in &r.restored {
        println!(
            "restored {:<28} {:>10}  {:>5.1} s  (replaced: {})",
            x.component,
            super::human_bytes(x.bytes),
            x.seconds,
            x.replaced
        );
    }
    for (c, what) in &r.held {
        println!("HELD     {c:<28} it holds data ({what}): left as it is; --force replaces it");
    }
    for (c, why) in &r.left {
        println!("left     {c:<28} {why}");
    }
    match (&r.failed, &r.error) {
        (Some(c), Some(e)) => eprintln!("error: restoring `{c}` failed: {e}"),
        _ if r.ok => println!("backup {} restored in {:.1} s", r.id, r.seconds),
        _ => {}
    }
}
