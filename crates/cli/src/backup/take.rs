//! `sprocketctl backup-task`: what runs inside the one-off task `backup` starts. For each
//! artefact of its job, in order: take it from its source as a stream (Vault's snapshot API,
//! Redis's replication stream, RabbitMQ's definitions, `pg_dump -Fc`, a mounted file), encrypt it
//! to the operators' age recipients as it comes, upload the ciphertext as it comes (S3
//! multipart), and count its size and SHA-256. Nothing is written to the task's disk; nothing it
//! takes can be read back by it. The manifest goes last: a backup that failed half-way has none,
//! and its objects are deleted. One result line (`sprocket-backup-result: {…}`) tells `backup`
//! what happened; no value is ever in it.

use super::wire::{ask, http, read, redis_login};
use serde::{Deserialize, Serialize};
use sprocket_backup::job::{Job, Take};
use sprocket_backup::{Artefact, Manifest};
use sprocket_datastores::s3::{Client, Upload};
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};

pub const RESULT_PREFIX: &str = "sprocket-backup-result: ";
/// How much of a source is read at once.
const CHUNK: usize = 64 << 10;

/// What the task did.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct TaskResult {
    /// Taken and uploaded, in order.
    pub artefacts: Vec<Artefact>,
    /// The manifest's object, once written (the backup is complete).
    pub manifest: Option<String>,
    /// The component that failed, and why.
    pub failed: Option<String>,
    pub error: Option<String>,
    /// Backups retention removed after this one completed, and why it could not (the backup
    /// itself stands).
    #[serde(default)]
    pub removed: Vec<String>,
    #[serde(default)]
    pub retention_error: Option<String>,
}

#[derive(clap::Args)]
pub struct Args {
    /// Run as the scheduled runner: a backup every day at this many minutes after 00:00 UTC
    /// (a missed one made up an hour after the runner started), until stopped.
    #[arg(long)]
    pub daily_at: Option<u32>,
}

pub async fn run(a: Args) -> i32 {
    let job = super::wire::job_from_env::<Job>(sprocket_backup::job::JOB_ENV, "backup");
    if let (Some(at), Ok(template)) = (a.daily_at, &job) {
        return scheduled(template, at).await;
    }
    let result = match job {
        Ok(job) => take_all(&job).await,
        Err(e) => TaskResult {
            error: Some(e),
            ..Default::default()
        },
    };
    super::wire::print_result(RESULT_PREFIX, &result);
    if result.manifest.is_some() {
        crate::exit::OK
    } else {
        crate::exit::ERROR
    }
}

/// The scheduled runner (the service `up` keeps as `<namespace>_backup-schedule`): sleeps until
/// the next daily time and takes the backup as the one-off task would, logs its result line,
/// and goes on; it never exits by itself. A daily time that passed with no complete backup
/// since (the runner was down, or the run failed) is made up for — an hour after the runner
/// started (a platform just rebuilt after a loss is restored first: its empty state must not
/// become the newest backup) and 15 minutes after a failed run ended. A run that takes longer
/// than [`sprocket_backup::retention::LONGEST_RUN_S`] is given up.
async fn scheduled(template: &Job, at_minute: u32) -> i32 {
    use sprocket_backup::schedule;
    use sprocket_check::backups::{LastRun, RunnerStatus};
    const RETRY_S: i64 = 15 * 60;
    const SETTLE_S: i64 = 3600;
    let unix = || crate::clock::unix_now().as_secs() as i64;
    let began = unix();
    let status = Arc::new(Mutex::new(RunnerStatus {
        began,
        at_minute,
        ..Default::default()
    }));
    tokio::spawn(serve_status(status.clone()));
    let set =
        |f: &dyn Fn(&mut RunnerStatus)| f(&mut status.lock().unwrap_or_else(|e| e.into_inner()));
    let mut failed_at: Option<i64> = None;
    loop {
        let now = unix();
        let at = match newest_complete(template).await {
            Ok(newest) => {
                set(&|s| {
                    s.newest_complete = newest;
                    s.listing_error = None;
                });
                if schedule::missed(now, at_minute, newest) {
                    (began + SETTLE_S).max(failed_at.map_or(now, |f| f + RETRY_S))
                } else {
                    schedule::next_after(now, at_minute)
                }
            }
            Err(e) => {
                eprintln!(
                    "the bucket's backups cannot be listed ({e}): the next daily time stands"
                );
                set(&|s| s.listing_error = Some(e.clone()));
                schedule::next_after(now, at_minute)
            }
        };
        set(&|s| s.next_at = Some(at));
        if at > now {
            eprintln!(
                "next backup at {} (daily at {:02}:{:02} UTC)",
                crate::certs::rfc3339(at),
                at_minute / 60,
                at_minute % 60
            );
        }
        // In slices, reading the wall clock again: a suspended machine or a clock set anew does
        // not stretch the wait.
        while unix() < at {
            let left = (at - unix()).clamp(1, 60) as u64;
            tokio::time::sleep(std::time::Duration::from_secs(left)).await;
        }
        let started = unix();
        let tag = (crate::clock::unix_now().subsec_nanos() >> 8) as u16;
        let id = sprocket_backup::layout::id(started, tag);
        eprintln!("backup {id}: taking it");
        set(&|s| s.running = Some(started));
        let run = template.for_run(&id, started);
        let limit =
            std::time::Duration::from_secs(sprocket_backup::retention::LONGEST_RUN_S as u64);
        let result = match tokio::time::timeout(limit, take_all(&run)).await {
            Ok(r) => r,
            Err(_) => TaskResult {
                error: Some(format!(
                    "given up after {} h (a dump or an upload hung)",
                    limit.as_secs() / 3600
                )),
                ..Default::default()
            },
        };
        super::wire::print_result(RESULT_PREFIX, &result);
        let ok = result.manifest.is_some();
        let last = LastRun {
            id: id.clone(),
            started,
            ended: unix(),
            ok,
            failed: result.failed.clone(),
            error: result.error.clone(),
        };
        set(&|s| {
            s.running = None;
            s.last = Some(last.clone());
            if ok {
                s.newest_complete = Some(started);
            }
        });
        failed_at = match &result.manifest {
            Some(_) => None,
            None => {
                eprintln!(
                    "backup {id} failed{}: {}; retried in {} min",
                    result
                        .failed
                        .as_deref()
                        .map(|c| format!(" at `{c}`"))
                        .unwrap_or_default(),
                    result.error.as_deref().unwrap_or("no reason given"),
                    RETRY_S / 60
                );
                Some(unix())
            }
        };
    }
}

/// The runner's status on [`BACKUP_RUNNER_PORT`](sprocket_desired::checks::BACKUP_RUNNER_PORT)
/// (`GET /`, JSON): what the agent judges every round. Times and outcomes only.
async fn serve_status(status: Arc<Mutex<sprocket_check::backups::RunnerStatus>>) {
    let port = sprocket_desired::checks::BACKUP_RUNNER_PORT;
    let listener = match tokio::net::TcpListener::bind(("0.0.0.0", port)).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("the runner's status port {port} cannot be opened ({e}): the agent cannot see how the backups go");
            return;
        }
    };
    let app = axum::Router::new().route(
        "/",
        axum::routing::get(move || {
            let s = status.lock().unwrap_or_else(|e| e.into_inner()).clone();
            async move { axum::Json(s) }
        }),
    );
    if let Err(e) = axum::serve(listener, app).await {
        eprintln!("the runner's status port stopped: {e}");
    }
}

/// The start of the namespace's newest complete backup (one with a manifest) in the bucket.
async fn newest_complete(job: &Job) -> Result<Option<i64>, String> {
    let store = Client::new(
        &job.store.endpoint,
        &job.store.region,
        &read_or_empty(&job.store.key_file),
        &read_or_empty(&job.store.secret_file),
    )
    .map_err(|e| e.to_string())?;
    let prefix = sprocket_backup::layout::namespace_prefix(&job.namespace);
    let listing = store
        .list(&job.store.bucket, &prefix, None)
        .await
        .map_err(|e| e.to_string())?;
    Ok(listing
        .objects
        .iter()
        .filter_map(|(k, _)| {
            let (id, rest) = k.strip_prefix(&prefix)?.split_once('/')?;
            (rest == "manifest.json")
                .then(|| sprocket_backup::layout::time_of(id))
                .flatten()
        })
        .max())
}

async fn take_all(job: &Job) -> TaskResult {
    let mut result = TaskResult::default();
    let store = match Client::new(
        &job.store.endpoint,
        &job.store.region,
        &read_or_empty(&job.store.key_file),
        &read_or_empty(&job.store.secret_file),
    ) {
        Ok(c) => c,
        Err(e) => {
            result.error = Some(e.to_string());
            return result;
        }
    };
    if let Err(e) = store.create_bucket(&job.store.bucket).await {
        result.failed = Some("bucket".into());
        result.error = Some(format!("bucket `{}`: {e}", job.store.bucket));
        return result;
    }
    for item in &job.items {
        let t0 = Instant::now();
        eprintln!("{}: taking", item.component);
        match take_one(job, &store, &item.take, &item.object).await {
            Ok((bytes, sha256)) => {
                let seconds = t0.elapsed().as_secs_f64();
                eprintln!("{}: {bytes} bytes in {seconds:.1} s", item.component);
                result.artefacts.push(Artefact {
                    component: item.component.clone(),
                    object: item.object.clone(),
                    bytes,
                    sha256,
                    seconds,
                });
            }
            Err(e) => {
                result.failed = Some(item.component.clone());
                result.error = Some(e);
                // An incomplete backup leaves nothing behind (it has no manifest either way).
                for a in &result.artefacts {
                    let _ = store.delete_object(&job.store.bucket, &a.object).await;
                }
                return result;
            }
        }
    }
    let manifest = Manifest {
        format: sprocket_backup::manifest::FORMAT,
        id: job.id.clone(),
        namespace: job.namespace.clone(),
        environment: job.environment.clone(),
        started_at: crate::certs::rfc3339(job.started),
        finished_at: crate::certs::rfc3339(crate::clock::unix_now().as_secs() as i64),
        spec_sha256: job.spec_sha256.clone(),
        recipients: job.recipients.clone(),
        artefacts: result.artefacts.clone(),
    };
    let key = sprocket_backup::layout::manifest(&job.namespace, &job.id);
    let body = serde_json::to_vec_pretty(&manifest).expect("serialisable");
    match store
        .put_object(&job.store.bucket, &key, body)
        .await
        .and_then(|r| r.ok("write the manifest"))
    {
        Ok(_) => result.manifest = Some(key),
        Err(e) => {
            result.failed = Some("manifest".into());
            result.error = Some(e.to_string());
            return result;
        }
    }
    if let Err(e) = retention(job, &store, &mut result).await {
        result.retention_error = Some(e);
    }
    result
}

/// Applies the retention policy to the namespace's backups, now that this one is complete.
async fn retention(job: &Job, store: &Client, result: &mut TaskResult) -> Result<(), String> {
    let prefix = sprocket_backup::layout::namespace_prefix(&job.namespace);
    let listing = store
        .list(&job.store.bucket, &prefix, None)
        .await
        .map_err(|e| e.to_string())?;
    let keys: Vec<String> = listing.objects.into_iter().map(|(k, _)| k).collect();
    let (removed, doomed) = sprocket_backup::retention::sweep(
        &job.namespace,
        &keys,
        &job.id,
        job.keep,
        job.volumes_made,
    );
    for key in doomed {
        store
            .delete_object(&job.store.bucket, &key)
            .await
            .map_err(|e| e.to_string())?;
    }
    result.removed = removed;
    Ok(())
}

fn read_or_empty(path: &str) -> String {
    read(path).unwrap_or_default()
}

/// age encryption to the recipients, its ciphertext uploaded as it is made.
struct Sealer<'c> {
    writer: Option<age::stream::StreamWriter<Sink>>,
    out: Arc<Mutex<Vec<u8>>>,
    upload: Upload<'c>,
}

/// Where the encryptor writes: a buffer the sealer empties into the upload.
struct Sink(Arc<Mutex<Vec<u8>>>);

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("not poisoned").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'c> Sealer<'c> {
    fn new(
        store: &'c Client,
        bucket: &str,
        object: &str,
        recipients: &[String],
    ) -> Result<Sealer<'c>, String> {
        let parsed =
            sprocket_vault::keyring::parse_recipients(recipients).map_err(|e| e.to_string())?;
        let enc = age::Encryptor::with_recipients(
            parsed.iter().map(|r| r.as_ref() as &dyn age::Recipient),
        )
        .map_err(|e| e.to_string())?;
        let out = Arc::new(Mutex::new(Vec::new()));
        let writer = enc
            .wrap_output(Sink(out.clone()))
            .map_err(|e| e.to_string())?;
        Ok(Sealer {
            writer: Some(writer),
            out,
            upload: Upload::new(store, bucket, object),
        })
    }

    async fn drain(&mut self) -> Result<(), String> {
        let ready = std::mem::take(&mut *self.out.lock().expect("not poisoned"));
        if !ready.is_empty() {
            self.upload.write(&ready).await.map_err(|e| e.to_string())?;
        }
        Ok(())
    }

    async fn feed(&mut self, data: &[u8]) -> Result<(), String> {
        if let Some(w) = self.writer.as_mut() {
            w.write_all(data).map_err(|e| e.to_string())?;
        }
        self.drain().await
    }

    async fn finish(mut self) -> Result<(u64, String), String> {
        if let Some(w) = self.writer.take() {
            w.finish().map_err(|e| e.to_string())?;
        }
        self.drain().await?;
        self.upload.finish().await.map_err(|e| e.to_string())
    }
}

async fn take_one(
    job: &Job,
    store: &Client,
    take: &Take,
    object: &str,
) -> Result<(u64, String), String> {
    let mut sealer = Sealer::new(store, &job.store.bucket, object, &job.recipients)?;
    let fed = match take {
        Take::File { path } => {
            let bytes = std::fs::read(path).map_err(|e| format!("read {path}: {e}"))?;
            sealer.feed(&bytes).await
        }
        Take::VolumeFile { path } => sealer.feed(&super::volume::read_file(path)?).await,
        Take::Volume { path } => volume_tar(&mut sealer, path).await,
        Take::VaultSnapshot { url, token_file } => {
            vault_snapshot(&mut sealer, url, &read(token_file)?).await
        }
        Take::Redis {
            host,
            port,
            password_file,
        } => redis_rdb(&mut sealer, host, *port, &read(password_file)?).await,
        Take::RabbitmqDefinitions {
            url,
            user,
            password_file,
        } => rabbitmq_definitions(&mut sealer, url, user, &read(password_file)?).await,
        Take::Postgres {
            host,
            port,
            user,
            password_file,
            database,
            sslmode,
        } => {
            pg_dump(
                &mut sealer,
                host,
                *port,
                user,
                &read(password_file)?,
                database,
                *sslmode,
            )
            .await
        }
    };
    match fed {
        Ok(()) => sealer.finish().await,
        Err(e) => {
            sealer.upload.abort().await;
            Err(e)
        }
    }
}

/// The tar of a mounted volume's folder, made on a blocking thread as it is sealed.
async fn volume_tar(sealer: &mut Sealer<'_>, path: &str) -> Result<(), String> {
    let (tx, mut rx) = tokio::sync::mpsc::channel(4);
    let dir = path.to_string();
    let packer = tokio::task::spawn_blocking(move || super::volume::pack(&dir, tx));
    while let Some(chunk) = rx.recv().await {
        // On an upload error `rx` is dropped here, which ends the packer too.
        sealer.feed(&chunk).await?;
    }
    packer.await.map_err(|e| e.to_string())?
}

async fn stream_body(sealer: &mut Sealer<'_>, mut r: reqwest::Response) -> Result<(), String> {
    while let Some(chunk) = r
        .chunk()
        .await
        .map_err(|e| format!("the answer broke off: {e}"))?
    {
        sealer.feed(&chunk).await?;
    }
    Ok(())
}

async fn vault_snapshot(sealer: &mut Sealer<'_>, url: &str, token: &str) -> Result<(), String> {
    let r = http()?
        .get(format!("{url}/v1/sys/storage/raft/snapshot"))
        .header("X-Vault-Token", token)
        .send()
        .await
        .map_err(|e| format!("Vault at {url} does not answer: {e}"))?;
    match r.status().as_u16() {
        200 => stream_body(sealer, r).await,
        403 => Err(format!("Vault at {url} refuses the backups' token (403): is it valid? `up` makes it and the agent renews it")),
        503 => Err(format!("Vault at {url} is sealed or not initialised (503)")),
        s => Err(format!(
            "Vault at {url} answered {s} to the snapshot: {}",
            r.text().await.unwrap_or_default().chars().take(300).collect::<String>()
        )),
    }
}

async fn rabbitmq_definitions(
    sealer: &mut Sealer<'_>,
    url: &str,
    user: &str,
    password: &str,
) -> Result<(), String> {
    let r = http()?
        .get(format!("{url}/api/definitions"))
        .basic_auth(user, Some(password))
        .send()
        .await
        .map_err(|e| format!("RabbitMQ's management API at {url} does not answer: {e}"))?;
    match r.status().as_u16() {
        200 => stream_body(sealer, r).await,
        401 => Err(format!(
            "RabbitMQ at {url} refuses the administrator `{user}` (401)"
        )),
        s => Err(format!(
            "RabbitMQ at {url} answered {s} to /api/definitions"
        )),
    }
}

/// Redis's replication stream as a replica that wants only the RDB (`REPLCONF rdb-only 1`, as
/// `redis-cli --rdb` asks): Redis forks, as for `BGSAVE`, and sends the snapshot of that instant
/// — as `$<length>` and the bytes, or (diskless) `$EOF:<40-byte mark>`, the bytes, the mark.
async fn redis_rdb(
    sealer: &mut Sealer<'_>,
    host: &str,
    port: u16,
    password: &str,
) -> Result<(), String> {
    let at = format!("Redis at {host}:{port}");
    let mut conn = redis_login(host, port, password).await?;
    // Redis before 7.0 does not know `rdb-only`: it then streams the commands after the RDB,
    // which the reading below stops before.
    let _ = ask(&mut conn, &at, &[b"REPLCONF", b"rdb-only", b"1"]).await?;
    conn.get_mut()
        .write_all(&super::wire::resp(&[b"SYNC"]))
        .await
        .map_err(|e| format!("{at}: {e}"))?;
    // Newlines keep the link alive while the fork writes.
    let header = loop {
        let mut l = String::new();
        let n = tokio::time::timeout(std::time::Duration::from_secs(300), conn.read_line(&mut l))
            .await
            .map_err(|_| format!("{at}: no snapshot after 300 s"))?
            .map_err(|e| format!("{at}: {e}"))?;
        if n == 0 {
            return Err(format!("{at} closed the link before its snapshot"));
        }
        let l = l.trim_end().to_string();
        if !l.is_empty() {
            break l;
        }
    };
    let Some(size) = header.strip_prefix('$') else {
        return Err(format!(
            "{at} did not send a snapshot: {}",
            header.trim_start_matches('-')
        ));
    };
    let mut buf = vec![0u8; CHUNK];
    if let Some(mark) = size.strip_prefix("EOF:") {
        let mark = mark.as_bytes().to_vec();
        // Hold back the last mark-length bytes: the stream ends where they equal the mark.
        let mut held: Vec<u8> = Vec::new();
        loop {
            let n = conn
                .read(&mut buf)
                .await
                .map_err(|e| format!("{at}: {e}"))?;
            if n == 0 {
                return Err(format!("{at} closed the link inside its snapshot"));
            }
            held.extend_from_slice(&buf[..n]);
            if held.len() > mark.len() {
                let cut = held.len() - mark.len();
                sealer.feed(&held[..cut]).await?;
                held.drain(..cut);
            }
            if held == mark {
                return Ok(());
            }
        }
    }
    let mut left: u64 = size
        .parse()
        .map_err(|_| format!("{at} sent `${size}` for its snapshot"))?;
    while left > 0 {
        let want = buf.len().min(left as usize);
        let n = conn
            .read(&mut buf[..want])
            .await
            .map_err(|e| format!("{at}: {e}"))?;
        if n == 0 {
            return Err(format!("{at} closed the link inside its snapshot"));
        }
        sealer.feed(&buf[..n]).await?;
        left -= n as u64;
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
async fn pg_dump(
    sealer: &mut Sealer<'_>,
    host: &str,
    port: u16,
    user: &str,
    password: &str,
    database: &str,
    sslmode: sprocket_spec::model::SslMode,
) -> Result<(), String> {
    let mut child = super::wire::pg("pg_dump", host, port, user, password, sslmode)
        .args(["--format=custom", "--dbname", database])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| format!("pg_dump cannot start ({e}): this image needs PostgreSQL's client (Debian's postgresql-client)"))?;
    let mut out = child.stdout.take().expect("piped");
    let mut err = child.stderr.take().expect("piped");
    let errors = tokio::spawn(async move {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s).await;
        s
    });
    let mut buf = vec![0u8; CHUNK];
    loop {
        let n = out
            .read(&mut buf)
            .await
            .map_err(|e| format!("pg_dump's output: {e}"))?;
        if n == 0 {
            break;
        }
        sealer.feed(&buf[..n]).await?;
    }
    let status = child.wait().await.map_err(|e| e.to_string())?;
    let errors = errors.await.unwrap_or_default();
    if status.success() {
        Ok(())
    } else {
        Err(format!(
            "pg_dump of `{database}` on {host}:{port} failed ({status}): {}",
            super::wire::pg_message(&errors)
        ))
    }
}
