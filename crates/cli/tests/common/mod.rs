//! The harness the end-to-end tests share: run `sprocketctl` as an operator would (its own
//! HOME, no inherited identity or Vault address), and insist on a real swarm — a test that
//! cannot reach one fails, it never skips.

use serde_json::Value;
use std::path::Path;
use std::process::Command;

/// The offline environment's managed PostgreSQL and S3: the real PostgreSQL 15 and SeaweedFS
/// `scripts/local-up` runs outside the swarm (`scripts/lib/postgres.sh`,
/// `scripts/lib/seaweedfs.sh`), started once per test process (they are shared: every
/// namespace's roles, databases and S3 users are named after it). Their administrators'
/// credentials are written into the dotenv file `dotenv` as `POSTGRES_PASSWORD`,
/// `S3_ACCESS_KEY` and `S3_SECRET_KEY` (the keys the spec's `db-password`, `s3-access-key` and
/// `s3-secret-key` read), replacing earlier lines; the file is made 0600 if missing. No value is
/// ever printed.
#[allow(dead_code)]
pub fn seed_externals(dotenv: &Path) {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    static LINES: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let lines = LINES.get_or_init(|| {
        let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let out = Command::new("bash")
            .args([
                "-c",
                "source scripts/lib/engine.sh && source scripts/lib/postgres.sh \
                 && source scripts/lib/seaweedfs.sh && pg_ensure >&2 && s3_ensure >&2 \
                 && echo \"POSTGRES_PASSWORD=$(pg_admin_password)\" \
                 && echo \"S3_ACCESS_KEY=$(s3_admin_access_key)\" \
                 && echo \"S3_SECRET_KEY=$(s3_admin_secret_key)\"",
            ])
            .current_dir(repo)
            .output()
            .expect("bash runs");
        assert!(
            out.status.success(),
            "the local PostgreSQL or SeaweedFS (scripts/lib/postgres.sh, seaweedfs.sh) does not start: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    });
    let seeded = ["POSTGRES_PASSWORD=", "S3_ACCESS_KEY=", "S3_SECRET_KEY="];
    let kept: String = std::fs::read_to_string(dotenv)
        .unwrap_or_default()
        .lines()
        .filter(|l| !seeded.iter().any(|k| l.starts_with(k)))
        .map(|l| format!("{l}\n"))
        .collect();
    if let Some(dir) = dotenv.parent() {
        std::fs::create_dir_all(dir).unwrap();
    }
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .mode(0o600)
        .open(dotenv)
        .unwrap();
    std::io::Write::write_all(&mut f, format!("{kept}{lines}").as_bytes()).unwrap();
    std::fs::set_permissions(dotenv, std::fs::Permissions::from_mode(0o600)).unwrap();
}

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    #[allow(dead_code)]
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}\nstderr: {}", self.stdout, self.stderr))
    }
}

/// `sprocketctl -f SPEC -e ENV ARGS…` with `HOME=home`; echoes the command and its stderr.
pub fn sprocketctl(home: &Path, spec: &Path, env: &str, args: &[&str]) -> Run {
    sprocketctl_in(Path::new("."), home, spec, env, args)
}

/// [`sprocketctl`] run from the folder `cwd` (`spec` may then be relative to it).
pub fn sprocketctl_in(cwd: &Path, home: &Path, spec: &Path, env: &str, args: &[&str]) -> Run {
    test_clock();
    let started = std::time::Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_sprocketctl"))
        .current_dir(cwd)
        .env("HOME", home)
        .env_remove("SPROCKET_IDENTITY")
        .env_remove("VAULT_ADDR")
        .env_remove("SPROCKET_VAULT_ADDR")
        .arg("-f")
        .arg(spec)
        .args(["-e", env])
        .args(args)
        .output()
        .expect("sprocketctl runs");
    let r = Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into(),
        stderr: String::from_utf8_lossy(&out.stderr).into(),
    };
    // When and how long: a failure seen only in CI's log can be placed on the test's timeline.
    eprintln!(
        "$ sprocketctl {} → exit {} (in {:.1}s, at +{:.1}s)\n{}",
        args.join(" "),
        r.code,
        started.elapsed().as_secs_f64(),
        test_clock().as_secs_f64(),
        r.stderr
    );
    r
}

/// Time since this test binary's first `sprocketctl` run.
fn test_clock() -> std::time::Duration {
    static START: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    START
        .get_or_init(|| {
            report_failures();
            std::time::Instant::now()
        })
        .elapsed()
}

/// A failing test's message where CI shows it. libtest prints a failed test's captured output
/// (here the whole command log) before its message, and CI keeps only the head of that section
/// and the tail of the run, so the message would be lost: its last lines are also written at
/// once to the process's own stderr (not captured) and, when `SPROCKET_TEST_FAILURES` names a
/// file, appended there (`scripts/test` prints it at the end of a failed run).
fn report_failures() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let payload = info
                .payload()
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| info.payload().downcast_ref::<&str>().copied())
                .unwrap_or("(no message)");
            let lines: Vec<&str> = payload.lines().collect();
            let tail: Vec<String> = lines[lines.len().saturating_sub(30)..]
                .iter()
                .map(|l| l.chars().take(400).collect())
                .collect();
            let text = format!(
                "[failed] {} at {} (+{:.0}s){}:\n{}\n",
                std::thread::current().name().unwrap_or("?"),
                info.location()
                    .map(|l| format!("{}:{}", l.file(), l.line()))
                    .unwrap_or_default(),
                test_clock().as_secs_f64(),
                if lines.len() > 30 {
                    format!(", the message's last 30 of {} lines", lines.len())
                } else {
                    String::new()
                },
                tail.join("\n")
            );
            let _ = std::io::Write::write_all(&mut std::io::stderr(), text.as_bytes());
            if let Some(path) = std::env::var_os("SPROCKET_TEST_FAILURES") {
                if let Ok(mut f) = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                {
                    let _ = std::io::Write::write_all(&mut f, text.as_bytes());
                }
            }
            default(info);
        }));
    });
}

/// Runs its closure when dropped during a panic: a failed test takes its stack down, so what it
/// leaves running does not load the machine (2 cores) under the tests after it.
#[allow(dead_code)] // used by the tests without a `Scratch`
pub struct OnPanic<F: FnMut()>(pub F);

impl<F: FnMut()> Drop for OnPanic<F> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            (self.0)();
        }
    }
}

/// Fails loudly unless a Docker engine answers as a swarm manager.
pub fn require_swarm() {
    test_clock();
    let engine = Command::new("docker")
        .args(["info", "--format", "{{.Swarm.ControlAvailable}}"])
        .output();
    match engine {
        Ok(o) if String::from_utf8_lossy(&o.stdout).trim() == "true" => {}
        other => panic!(
            "no Docker engine in swarm mode answers ({other:?}). Run the tests with scripts/test, which installs and starts dockerd and initialises the swarm."
        ),
    }
}

/// `docker ARGS…`: stdout and stderr together (some checks look at either), success or not.
#[allow(dead_code)]
pub fn docker_any(args: &[&str]) -> String {
    let out = Command::new("docker")
        .args(args)
        .output()
        .expect("docker CLI runs");
    String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr)
}

/// Vault's HTTP API through Traefik on `port` (Host `vault.localhost`); `path` is after `/v1/`.
#[allow(dead_code)]
pub async fn vault_api(
    port: u16,
    method: reqwest::Method,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (u16, Value) {
    let mut r = reqwest::Client::new()
        .request(method, format!("http://127.0.0.1:{port}/v1/{path}"))
        .header("Host", "vault.localhost");
    if let Some(t) = token {
        r = r.header("X-Vault-Token", t);
    }
    if let Some(b) = body {
        r = r.json(&b);
    }
    let resp = r
        .timeout(std::time::Duration::from_secs(30))
        .send()
        .await
        .expect("Vault answers through Traefik");
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

/// `docker ARGS…`: whether it succeeded, and its stdout then stderr, trimmed.
#[allow(dead_code)]
pub fn docker_status(args: &[&str]) -> (bool, String) {
    run_status("docker", args)
}

/// `psql` in database `db` of the local PostgreSQL as the server's own superuser (peer login on
/// its socket — what the operator of a managed database could not do: for checks and for
/// hand-made objects only). Panics when the statement fails.
#[allow(dead_code)]
pub fn psql(db: &str, sql: &str) -> String {
    let (ok, out) = run_status(
        "runuser",
        &[
            "-u",
            "postgres",
            "--",
            "psql",
            "-X",
            "-At",
            "-h",
            "/var/run/postgresql",
            "-p",
            "5433",
            "-d",
            db,
            "-c",
            sql,
        ],
    );
    assert!(ok, "psql {sql}: {out}");
    out
}

/// Runs `program` with `args`: (success, stdout then stderr, trimmed).
#[allow(dead_code)]
pub fn run_status(program: &str, args: &[&str]) -> (bool, String) {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{program} runs: {e}"));
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).trim().to_string()
            + String::from_utf8_lossy(&out.stderr).trim(),
    )
}

/// The provisioning of `datastore` in an `up` report (`up -o json`, or a rotation's `deploy`).
#[allow(dead_code)]
pub fn provisioned<'v>(report: &'v serde_json::Value, datastore: &str) -> &'v serde_json::Value {
    report["provisioned"]
        .as_array()
        .unwrap_or_else(|| panic!("no provisioning in {report}"))
        .iter()
        .find(|p| p["datastore"] == datastore)
        .unwrap_or_else(|| panic!("no provisioning of {datastore} in {report}"))
}

/// The id of the running container of service `<ns>_<svc>` on this node (one replica).
#[allow(dead_code)]
pub fn container_of(ns: &str, svc: &str) -> String {
    let (_, out) = docker_status(&[
        "ps",
        "-q",
        "--filter",
        &format!("label=com.docker.swarm.service.name={ns}_{svc}"),
    ]);
    let id = out.lines().next().unwrap_or_default().to_string();
    assert!(!id.is_empty(), "no running container of {ns}_{svc}");
    id
}

/// `GET path` with a `Host` header through Traefik on `port`: (status, body); (0, "") when
/// nothing answers.
#[allow(dead_code)]
pub fn http_get(port: u16, host: &str, path: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return (0, String::new());
    };
    s.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    let status = out
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = out
        .split_once("\r\n\r\n")
        .map(|x| x.1.to_string())
        .unwrap_or_default();
    (status, body)
}

/// Every object under `prefix` in `bucket`, with its bytes (none when the bucket is not there).
#[allow(dead_code)]
pub fn bucket_objects(
    s3: &sprocket_datastores::s3::Client,
    bucket: &str,
    prefix: &str,
) -> Vec<(String, Vec<u8>)> {
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let listing = match s3.list(bucket, prefix, None).await {
            Ok(l) => l,
            Err(_) => return Vec::new(),
        };
        let mut out = Vec::new();
        for (key, _) in listing.objects {
            let mut r = s3.get_stream(bucket, &key).await.unwrap().unwrap();
            let mut body = Vec::new();
            while let Some(c) = r.chunk().await.unwrap() {
                body.extend_from_slice(&c);
            }
            out.push((key, body));
        }
        out
    })
}

/// The agent's address on docker_gwbridge, where the host reaches its task (`/metrics`).
#[allow(dead_code)]
pub fn agent_address(ns: &str) -> String {
    let agent = container_of(ns, "vault-agent");
    let (ok, out) = docker_status(&[
        "network",
        "inspect",
        "docker_gwbridge",
        "--format",
        &format!("{{{{with index .Containers \"{agent}\"}}}}{{{{.IPv4Address}}}}{{{{end}}}}"),
    ]);
    // The container id in the listing is the full one.
    let out = if ok && !out.is_empty() {
        out
    } else {
        let (_, full) = docker_status(&["inspect", "--format", "{{.Id}}", &agent]);
        docker_status(&[
            "network",
            "inspect",
            "docker_gwbridge",
            "--format",
            &format!("{{{{with index .Containers \"{full}\"}}}}{{{{.IPv4Address}}}}{{{{end}}}}"),
        ])
        .1
    };
    let ip = out.split('/').next().unwrap_or_default().to_string();
    assert!(!ip.is_empty(), "the agent's task is on docker_gwbridge");
    ip
}

/// `GET url` with curl: (status, body); status 0 when nothing answers.
/// Deletes every object under `prefix` in `bucket`; returns them, with their bytes.
#[allow(dead_code)]
pub fn empty_bucket(bucket: &str, prefix: &str) -> Vec<(String, Vec<u8>)> {
    let s3 = s3_admin();
    let all = bucket_objects(&s3, bucket, prefix);
    let rt = tokio::runtime::Runtime::new().unwrap();
    for (key, _) in &all {
        rt.block_on(s3.delete_object(bucket, key)).unwrap();
    }
    all
}

/// The local SeaweedFS as its administrator (its endpoint and key from
/// scripts/lib/seaweedfs.sh), for looking at what the code under test left there.
#[allow(dead_code)]
pub fn s3_admin() -> sprocket_datastores::s3::Client {
    let (endpoint, key, secret) = s3_local();
    sprocket_datastores::s3::Client::new(&endpoint, "us-east-1", &key, &secret).unwrap()
}

/// A client of the local SeaweedFS with the key pair `key`/`secret` (a consumer's, read out of
/// its task), to see what the store accepts from it.
#[allow(dead_code)]
pub fn s3_client(key: &str, secret: &str) -> sprocket_datastores::s3::Client {
    let (endpoint, _, _) = s3_local();
    sprocket_datastores::s3::Client::new(&endpoint, "us-east-1", key, secret).unwrap()
}

/// The local SeaweedFS's endpoint and its administrator's key pair.
#[allow(dead_code)]
fn s3_local() -> (String, String, String) {
    let out = Command::new("bash")
        .args([
            "-c",
            "source scripts/lib/engine.sh && source scripts/lib/seaweedfs.sh \\
             && echo \"http://$(s3_endpoint_host):$(s3_port)\" && s3_admin_access_key && echo \\
             && s3_admin_secret_key",
        ])
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
        .output()
        .expect("bash runs");
    let text = String::from_utf8(out.stdout).unwrap();
    let l: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    assert_eq!(l.len(), 3, "the local SeaweedFS's endpoint and key");
    (l[0].to_string(), l[1].to_string(), l[2].to_string())
}

/// A scratch copy of the example platform in a folder of its own, with one more environment
/// (`env_yaml`: its lines under `environments:`), run as an operator with its own HOME. Taken
/// down with its volumes, and its folder removed, when dropped.
#[allow(dead_code)]
pub struct Scratch {
    pub dir: std::path::PathBuf,
    pub home: std::path::PathBuf,
    pub spec: std::path::PathBuf,
    pub env: String,
}

#[allow(dead_code)]
impl Scratch {
    pub fn new(tag: &str, env: &str, env_yaml: &str) -> Scratch {
        let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let dir = std::env::temp_dir().join(format!("sprocket-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let home = dir.join("home");
        std::fs::create_dir_all(dir.join("config")).unwrap();
        std::fs::create_dir_all(&home).unwrap();
        for e in std::fs::read_dir(repo.join("examples/sprocket/config")).unwrap() {
            let e = e.unwrap();
            std::fs::copy(e.path(), dir.join("config").join(e.file_name())).unwrap();
        }
        let example =
            std::fs::read_to_string(repo.join("examples/sprocket/sprocket.yaml")).unwrap();
        let spec = dir.join("sprocket.yaml");
        std::fs::write(&spec, format!("{}\n{env_yaml}", example.trim_end())).unwrap();
        // Whichever dotenv file the environment reads: the offline one, or the tests' own.
        seed_externals(&dir.join(".secrets/offline.env"));
        seed_externals(&dir.join("secrets.env"));
        Scratch {
            dir,
            home,
            spec,
            env: env.to_string(),
        }
    }

    pub fn ctl(&self, args: &[&str]) -> Run {
        sprocketctl(&self.home, &self.spec, &self.env, args)
    }

    /// Rewrites the spec: `from` (which must be there) → `to`.
    pub fn edit(&self, from: &str, to: &str) {
        let text = std::fs::read_to_string(&self.spec).unwrap();
        assert!(text.contains(from), "the spec holds {from:?}");
        std::fs::write(&self.spec, text.replacen(from, to, 1)).unwrap();
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        // Twice if need be: what one test leaves running loads the machine under the next
        // (`down` gives up on a network still in use after its wait, on a slow machine).
        for _ in 0..2 {
            let down = sprocketctl(
                &self.home,
                &self.spec,
                &self.env,
                &["-q", "down", "--volumes"],
            );
            if down.code == 0 {
                break;
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
