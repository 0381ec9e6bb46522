//! `sprocketctl restore-task`: what runs inside the one-off task `restore` starts. It first looks
//! at every target (Redis's key count, the database's tables, RabbitMQ's queues): without
//! `force`, a target that holds data stops the run before anything changes. Then, per artefact:
//! download the ciphertext (size and SHA-256 checked against the manifest), decrypt it with its
//! own file key as a stream, and put it back the way its datastore takes it —
//!
//! - PostgreSQL: `pg_restore --clean --if-exists --single-transaction` into the database, as
//!   the administrator (a member of the owner's role: owners come back as they were);
//! - RabbitMQ: `POST /api/definitions` (users, vhosts, permissions, queues, bindings);
//! - a data volume: emptied, then the tar unpacked into it (modes, owners, times); a file of
//!   one (Traefik's `acme.json`) written beside it with mode 0600 and renamed over it — the
//!   services that mount it are restarted by `restore` after the task;
//! - Redis: the task becomes Redis's master for a moment (`REPLICAOF <task> <port>`) and sends
//!   the RDB as a full resynchronisation, which Redis loads in place of its data; then
//!   `REPLICAOF NO ONE`, on every path. Nothing is written into Redis's volume from outside.
//!
//! One result line (`sprocket-restore-result: {…}`), never a value.

use super::filekey::Known;
use super::wire::{ask, http, read, redis_login as redis_admin};
use serde::{Deserialize, Serialize};
use sprocket_backup::job::Take;
use sprocket_backup::restore::{RestoreItem, RestoreJob};
use sprocket_datastores::s3::Client;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::sync::mpsc;

pub const RESULT_PREFIX: &str = "sprocket-restore-result: ";

#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct RestoreResult {
    pub restored: Vec<Restored>,
    /// Targets that hold data (and what), when the run was not forced: nothing was changed.
    pub held: Vec<(String, String)>,
    pub failed: Option<String>,
    pub error: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Restored {
    pub component: String,
    pub bytes: u64,
    pub seconds: f64,
    /// What was there before.
    pub replaced: String,
    /// What it holds after: Redis's keys, the tables and rows of a database, the users, vhosts
    /// and queues of RabbitMQ's definitions as it accepted them; what a drill reports.
    #[serde(default)]
    pub holds: String,
}

#[derive(clap::Args)]
pub struct Args {}

pub async fn run(_: Args) -> i32 {
    let job = super::wire::job_from_env::<RestoreJob>(sprocket_backup::restore::JOB_ENV, "restore");
    let result = match job {
        Ok(job) => put_all(&job).await,
        Err(e) => RestoreResult {
            error: Some(e),
            ..Default::default()
        },
    };
    super::wire::print_result(RESULT_PREFIX, &result);
    if result.error.is_some() {
        crate::exit::ERROR
    } else {
        crate::exit::OK
    }
}

async fn put_all(job: &RestoreJob) -> RestoreResult {
    let mut result = RestoreResult::default();
    let fail = |mut r: RestoreResult, c: &str, e: String| {
        r.failed = Some(c.to_string());
        r.error = Some(e);
        r
    };
    let keys: BTreeMap<String, String> = match read(&job.keys_file)
        .and_then(|t| serde_json::from_str(&t).map_err(|e| e.to_string()))
    {
        Ok(k) => k,
        Err(e) => return fail(result, "keys", e),
    };
    let store = match Client::new(
        &job.store.endpoint,
        &job.store.region,
        &read(&job.store.key_file).unwrap_or_default(),
        &read(&job.store.secret_file).unwrap_or_default(),
    ) {
        Ok(c) => c,
        Err(e) => return fail(result, "bucket", e.to_string()),
    };
    // What each target holds now, all before any change.
    let mut holds = Vec::new();
    for item in &job.items {
        match holding(&item.target, false).await {
            Ok(h) => holds.push(h),
            Err(e) => return fail(result, &item.component, e),
        }
    }
    if !job.force {
        result.held = job
            .items
            .iter()
            .zip(&holds)
            .filter_map(|(i, h)| h.clone().map(|h| (i.component.clone(), h)))
            .collect();
        if !result.held.is_empty() {
            return result;
        }
    }
    for (item, held) in job.items.iter().zip(holds) {
        let t0 = Instant::now();
        eprintln!("{}: restoring", item.component);
        let Some(key) = keys.get(&item.component) else {
            return fail(
                result,
                &item.component,
                "no key for it was handed over".into(),
            );
        };
        match put_one(job, &store, item, key).await {
            Ok(told) => {
                let seconds = t0.elapsed().as_secs_f64();
                eprintln!("{}: restored in {seconds:.1} s", item.component);
                // What it holds now, said when it can be (it is restored either way).
                let holds = match told {
                    Some(h) => h,
                    None => match holding(&item.target, true).await {
                        Ok(h) => h.unwrap_or_else(|| "nothing".into()),
                        Err(e) => format!("unknown (it cannot be read back: {e})"),
                    },
                };
                result.restored.push(Restored {
                    component: item.component.clone(),
                    bytes: item.bytes,
                    seconds,
                    replaced: held.unwrap_or_else(|| "nothing".into()),
                    holds,
                });
            }
            Err(e) => return fail(result, &item.component, e),
        }
    }
    result
}

/// What the target holds (`None`: nothing a restore would replace). `exact`: PostgreSQL's rows
/// counted too (a scan of every table: after a restore, not before one on live data).
async fn holding(t: &Take, exact: bool) -> Result<Option<String>, String> {
    match t {
        Take::Redis {
            host,
            port,
            password_file,
        } => {
            let mut c = redis_admin(host, *port, &read(password_file)?).await?;
            let n = ask(&mut c, host, &[b"DBSIZE"]).await?;
            let n: u64 = n.trim_start_matches(':').parse().unwrap_or(0);
            Ok((n > 0).then(|| format!("{n} keys")))
        }
        Take::RabbitmqDefinitions {
            url,
            user,
            password_file,
        } => {
            let r = http()?
                .get(format!("{url}/api/queues"))
                .basic_auth(user, Some(read(password_file)?))
                .send()
                .await
                .map_err(|e| format!("RabbitMQ at {url}: {e}"))?;
            if !r.status().is_success() {
                return Err(format!("RabbitMQ at {url} answered {}", r.status()));
            }
            let q: Vec<serde_json::Value> = r.json().await.map_err(|e| e.to_string())?;
            Ok((!q.is_empty()).then(|| format!("{} queues", q.len())))
        }
        Take::Postgres {
            host,
            port,
            user,
            password_file,
            database,
            sslmode,
        } => {
            let out = super::wire::pg("psql", host, *port, user, &read(password_file)?, *sslmode)
                .args(["-tA", "-F", " ", "--dbname", database, "-c"])
                // Tables, and with `exact` their rows counted (statistics lag behind a restore).
                .arg(if exact {
                    "SELECT count(*), coalesce(sum((xpath('/row/c/text()', query_to_xml(format('SELECT count(*) AS c FROM %I.%I', schemaname, tablename), false, true, '')))[1]::text::bigint), 0) FROM pg_tables WHERE schemaname NOT IN ('pg_catalog', 'information_schema')"
                } else {
                    "SELECT count(*) FROM pg_tables WHERE schemaname NOT IN ('pg_catalog', 'information_schema')"
                })
                .output()
                .await
                .map_err(|e| format!("psql cannot start ({e})"))?;
            if !out.status.success() {
                return Err(format!(
                    "`{database}` on {host}:{port}: {}",
                    super::wire::pg_message(&String::from_utf8_lossy(&out.stderr))
                ));
            }
            let text = String::from_utf8_lossy(&out.stdout);
            let mut counts = text
                .split_whitespace()
                .map(|n| n.parse::<u64>().unwrap_or(0));
            let tables = counts.next().unwrap_or(0);
            Ok((tables > 0).then(|| match counts.next() {
                Some(rows) => format!("{tables} tables, {rows} rows"),
                None => format!("{tables} tables"),
            }))
        }
        Take::Volume { path } => super::volume::holding(path),
        Take::VolumeFile { path } => super::volume::file_holding(path),
        Take::VaultSnapshot { .. } | Take::File { .. } => Ok(None),
    }
}

/// The artefact's ciphertext into a temporary file, checked against the manifest.
async fn download(
    store: &Client,
    bucket: &str,
    item: &RestoreItem,
) -> Result<tempfile::NamedTempFile, String> {
    let (file, bytes, sha) = super::wire::download(store, bucket, &item.object)
        .await?
        .ok_or_else(|| sprocket_backup::manifest::Mismatch::Missing.to_string())?;
    let a = sprocket_backup::Artefact {
        component: item.component.clone(),
        object: item.object.clone(),
        bytes: item.bytes,
        sha256: item.sha256.clone(),
        seconds: 0.0,
    };
    sprocket_backup::manifest::verify(&a, Some((bytes, &sha))).map_err(|m| m.to_string())?;
    Ok(file)
}

/// The plaintext of `file`, decrypted with `key` on a blocking thread, in chunks; an error
/// (a wrong key, a damaged chunk) ends the stream.
fn plaintext(file: tempfile::NamedTempFile, key: Known) -> mpsc::Receiver<Result<Vec<u8>, String>> {
    let (tx, rx) = mpsc::channel(4);
    tokio::task::spawn_blocking(move || {
        use std::io::Read;
        let opened = std::fs::File::open(file.path())
            .map_err(|e| e.to_string())
            .and_then(|f| {
                age::Decryptor::new(std::io::BufReader::new(f)).map_err(|e| e.to_string())
            })
            .and_then(|d| {
                d.decrypt(std::iter::once(&key as &dyn age::Identity))
                    .map_err(|e| format!("it does not decrypt with its key: {e}"))
            });
        let mut reader = match opened {
            Ok(r) => r,
            Err(e) => {
                let _ = tx.blocking_send(Err(e));
                return;
            }
        };
        let mut buf = vec![0u8; 64 << 10];
        loop {
            match reader.read(&mut buf) {
                Ok(0) => return,
                Ok(n) => {
                    if tx.blocking_send(Ok(buf[..n].to_vec())).is_err() {
                        return;
                    }
                }
                Err(e) => {
                    let _ = tx.blocking_send(Err(format!("it does not decrypt to its end: {e}")));
                    return;
                }
            }
        }
    });
    rx
}

async fn put_one(
    job: &RestoreJob,
    store: &Client,
    item: &RestoreItem,
    key: &str,
) -> Result<Option<String>, String> {
    let key = Known::from_hex(key)?;
    let file = download(store, &job.store.bucket, item).await?;
    let mut plain = plaintext(file, key);
    match &item.target {
        Take::RabbitmqDefinitions {
            url,
            user,
            password_file,
        } => {
            let mut body = Vec::new();
            while let Some(c) = plain.recv().await {
                body.extend_from_slice(&c?);
            }
            let mut d: serde_json::Value = serde_json::from_slice(&body)
                .map_err(|e| format!("the definitions are not JSON: {e}"))?;
            if let Some((from, to)) = &item.retag {
                sprocket_backup::restore::retag(&mut d, from, to);
                body = serde_json::to_vec(&d).expect("serialisable");
            }
            // What it holds after, from what RabbitMQ accepted: the definitions bring the
            // backup's password hashes, the administrator's among them, so logging in again
            // with today's password may fail until `up` rolls RabbitMQ onto the restored one.
            let n = |k: &str| d[k].as_array().map(Vec::len).unwrap_or(0);
            let counts = format!(
                "{} users, {} vhosts, {} queues (imported)",
                n("users"),
                n("vhosts"),
                n("queues")
            );
            let r = http()?
                .post(format!("{url}/api/definitions"))
                .basic_auth(user, Some(read(password_file)?))
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await
                .map_err(|e| format!("RabbitMQ at {url}: {e}"))?;
            if r.status().is_success() {
                Ok(Some(counts))
            } else {
                Err(format!(
                    "RabbitMQ at {url} refused the definitions: {} {}",
                    r.status(),
                    r.text()
                        .await
                        .unwrap_or_default()
                        .chars()
                        .take(300)
                        .collect::<String>()
                ))
            }
        }
        Take::Postgres {
            host,
            port,
            user,
            password_file,
            database,
            sslmode,
        } => pg_restore(
            &mut plain,
            host,
            *port,
            user,
            &read(password_file)?,
            database,
            *sslmode,
            item.owner.as_deref(),
        )
        .await
        .map(|()| None),
        Take::Redis {
            host,
            port,
            password_file,
        } => redis_load(&mut plain, host, *port, &read(password_file)?)
            .await
            .map(|()| None),
        Take::Volume { path } => {
            let dir = path.clone();
            tokio::task::spawn_blocking(move || {
                super::volume::unpack(&dir, super::volume::Plain::new(plain))
            })
            .await
            .map_err(|e| e.to_string())?
            .map(|()| None)
        }
        Take::VolumeFile { path } => {
            let mut body = Vec::new();
            while let Some(c) = plain.recv().await {
                body.extend_from_slice(&c?);
            }
            super::volume::put_file(path, &body)
        }
        Take::VaultSnapshot { .. } | Take::File { .. } => Err("not restored by the task".into()),
    }
}

#[allow(clippy::too_many_arguments)]
async fn pg_restore(
    plain: &mut mpsc::Receiver<Result<Vec<u8>, String>>,
    host: &str,
    port: u16,
    user: &str,
    password: &str,
    database: &str,
    sslmode: sprocket_spec::model::SslMode,
    owner: Option<&str>,
) -> Result<(), String> {
    let mut cmd = super::wire::pg("pg_restore", host, port, user, password, sslmode);
    cmd.args([
        "--clean",
        "--if-exists",
        "--single-transaction",
        "--exit-on-error",
        "--dbname",
        database,
    ]);
    // From another namespace: its owners are not this one's; made as the owner here, with the
    // grants `up` gives (the administrator is a member of the owner's role).
    if let Some(owner) = owner {
        cmd.args(["--no-owner", "--no-privileges", "--role", owner]);
    }
    let mut child = cmd
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| {
            format!("pg_restore cannot start ({e}): this image needs PostgreSQL's client")
        })?;
    let mut stdin = child.stdin.take().expect("piped");
    let mut err = child.stderr.take().expect("piped");
    let errors = tokio::spawn(async move {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s).await;
        s
    });
    let mut fed = Ok(());
    while let Some(c) = plain.recv().await {
        match c {
            Ok(c) => {
                if let Err(e) = stdin.write_all(&c).await {
                    fed = Err(format!("pg_restore stopped reading: {e}"));
                    break;
                }
            }
            Err(e) => {
                fed = Err(e);
                break;
            }
        }
    }
    drop(stdin);
    let status = child.wait().await.map_err(|e| e.to_string())?;
    let errors = errors.await.unwrap_or_default();
    if !status.success() {
        return Err(format!(
            "pg_restore into `{database}` on {host}:{port} failed ({status}), nothing of it was applied: {}",
            super::wire::pg_message(&errors)
        ));
    }
    fed
}

/// One RESP command of the replica (an array of bulk strings), its words.
async fn command(c: &mut BufReader<tokio::net::TcpStream>) -> Result<Vec<String>, String> {
    let mut line = String::new();
    if c.read_line(&mut line).await.map_err(|e| e.to_string())? == 0 {
        return Err("Redis closed the replication link".into());
    }
    let n: usize = line
        .trim_end()
        .trim_start_matches('*')
        .parse()
        .map_err(|_| format!("Redis sent `{}`", line.trim_end()))?;
    let mut words = Vec::with_capacity(n);
    for _ in 0..n {
        line.clear();
        c.read_line(&mut line).await.map_err(|e| e.to_string())?;
        let len: usize = line
            .trim_end()
            .trim_start_matches('$')
            .parse()
            .map_err(|_| "a malformed command".to_string())?;
        let mut w = vec![0u8; len + 2];
        c.read_exact(&mut w).await.map_err(|e| e.to_string())?;
        w.truncate(len);
        words.push(String::from_utf8_lossy(&w).into_owned());
    }
    Ok(words)
}

/// Loads an RDB into Redis as its master of a moment; Redis is its own master again after, on
/// every path.
async fn redis_load(
    plain: &mut mpsc::Receiver<Result<Vec<u8>, String>>,
    host: &str,
    port: u16,
    password: &str,
) -> Result<(), String> {
    let mut admin = redis_admin(host, port, password).await?;
    // This task's address on the network it shares with Redis.
    let me = {
        let s = std::net::UdpSocket::bind("0.0.0.0:0").map_err(|e| e.to_string())?;
        s.connect((host, port))
            .map_err(|e| format!("Redis at {host}:{port}: {e}"))?;
        s.local_addr().map_err(|e| e.to_string())?.ip()
    };
    let listener = tokio::net::TcpListener::bind((me, 0))
        .await
        .map_err(|e| e.to_string())?;
    let my_port = listener
        .local_addr()
        .map_err(|e| e.to_string())?
        .port()
        .to_string();
    let r = ask(
        &mut admin,
        host,
        &[b"REPLICAOF", me.to_string().as_bytes(), my_port.as_bytes()],
    )
    .await?;
    if !r.starts_with("+OK") {
        return Err(format!("Redis at {host}:{port} refuses REPLICAOF: {r}"));
    }
    let served = serve_rdb(plain, &listener, &mut admin, host).await;
    // Whatever happened, Redis is its own master again.
    let back = ask(&mut admin, host, &[b"REPLICAOF", b"NO", b"ONE"]).await;
    served?;
    match back {
        Ok(r) if r.starts_with("+OK") => {}
        Ok(r) => {
            return Err(format!(
                "Redis at {host}:{port} did not leave replication: {r}"
            ))
        }
        Err(e) => return Err(e),
    }
    // On disk before this returns: Redis rewrites its append-only file after a full
    // resynchronisation; a restart before that ends (the `up` after a restore) would lose it.
    let until = Instant::now() + Duration::from_secs(120);
    loop {
        let info = ask(&mut admin, host, &[b"INFO", b"persistence"]).await?;
        let field = |k: &str| {
            info.lines()
                .find_map(|l| l.strip_prefix(&format!("{k}:")))
                .map(|v| v.trim().to_string())
        };
        let aof = field("aof_enabled").as_deref() == Some("1");
        let busy = field("aof_rewrite_in_progress").as_deref() == Some("1")
            || field("aof_rewrite_scheduled").as_deref() == Some("1")
            || field("rdb_bgsave_in_progress").as_deref() == Some("1");
        if !busy {
            if !aof {
                // Without an append-only file: a snapshot of the loaded data.
                let saved = ask(&mut admin, host, &[b"SAVE"]).await?;
                if !saved.starts_with("+OK") {
                    return Err(format!("Redis at {host}:{port} did not save: {saved}"));
                }
            }
            return Ok(());
        }
        if Instant::now() > until {
            return Err(format!(
                "Redis at {host}:{port} is still writing its data to disk after 120 s"
            ));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn serve_rdb(
    plain: &mut mpsc::Receiver<Result<Vec<u8>, String>>,
    listener: &tokio::net::TcpListener,
    admin: &mut BufReader<tokio::net::TcpStream>,
    host: &str,
) -> Result<(), String> {
    let (sock, _) = tokio::time::timeout(Duration::from_secs(30), listener.accept())
        .await
        .map_err(|_| format!("Redis at {host} did not connect to this task in 30 s"))?
        .map_err(|e| e.to_string())?;
    let mut link = BufReader::new(sock);
    // The replica's handshake: PING, (AUTH,) REPLCONF …, then PSYNC/SYNC.
    loop {
        let words = tokio::time::timeout(Duration::from_secs(30), command(&mut link))
            .await
            .map_err(|_| format!("Redis at {host} stopped its handshake"))??;
        let first = words
            .first()
            .map(|w| w.to_ascii_uppercase())
            .unwrap_or_default();
        let w = link.get_mut();
        match first.as_str() {
            "PING" => w.write_all(b"+PONG\r\n").await,
            "PSYNC" | "SYNC" => break,
            _ => w.write_all(b"+OK\r\n").await,
        }
        .map_err(|e| e.to_string())?;
    }
    // The replication id and the stream's end mark: 40 random hex digits each.
    let hex40 = || {
        sprocket_secrets::value::generate(sprocket_spec::model::Alphabet::Hex, 40)
            .map_err(|e| format!("no random bytes: {e}"))
    };
    let (replid, mark) = (hex40()?, hex40()?);
    let w = link.get_mut();
    w.write_all(format!("+FULLRESYNC {replid} 0\r\n$EOF:{mark}\r\n").as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    while let Some(c) = plain.recv().await {
        w.write_all(&c?)
            .await
            .map_err(|e| format!("Redis at {host} dropped the link: {e}"))?;
    }
    w.write_all(mark.as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    w.flush().await.map_err(|e| e.to_string())?;
    // Loaded when its link to this master is up.
    let until = Instant::now() + Duration::from_secs(300);
    loop {
        let info = ask(admin, host, &[b"INFO", b"replication"]).await?;
        if info.contains("master_link_status:up") {
            return Ok(());
        }
        if Instant::now() > until {
            return Err(format!(
                "Redis at {host} did not load the snapshot in 300 s"
            ));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
