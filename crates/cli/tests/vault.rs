//! Vault's lifecycle on the real swarm with real OpenBao (the locally built image): `up`
//! initialises and unseals it before layer 2, the keyring is encrypted and 0600 and opens only
//! with the right identity, a second init is a no-op, a restarted Vault comes back sealed and is
//! unsealed from the keyring with its data intact, and bad keyrings give clear errors while Vault
//! stays untouched. Keys and the root token never appear in any output, in `docker inspect`, or in
//! the service's environment.

mod common;

use common::Run;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

const NS: &str = "sprocket-vault-e2e";
const PORT: u16 = 19080;

/// The two tests here deploy the same namespace: under `cargo test` (threads in one process)
/// they take turns; `scripts/test` (nextest, a process per test) runs the dockerd restart alone.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

struct Env {
    dir: PathBuf,
    home: PathBuf,
    spec: PathBuf,
    /// Every byte any command printed, to search for secrets at the end.
    printed: std::cell::RefCell<String>,
}

/// A failed test takes its stack down (what it leaves running would slow the tests after it).
impl Drop for Env {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let _ = self.ctl(&["-q", "down", "--volumes"]);
        }
    }
}

impl Env {
    fn new() -> Env {
        let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let dir = std::env::temp_dir().join(format!("sprocket-vault-e2e-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let home = dir.join("home");
        std::fs::create_dir_all(dir.join("config")).unwrap();
        std::fs::create_dir_all(&home).unwrap();
        for e in std::fs::read_dir(repo.join("examples/sprocket/config")).unwrap() {
            let e = e.unwrap();
            std::fs::copy(e.path(), dir.join("config").join(e.file_name())).unwrap();
        }
        let spec = dir.join("sprocket.yaml");
        let env = Env {
            dir,
            home,
            spec,
            printed: Default::default(),
        };
        env.write_spec(false);
        env
    }

    /// On a swarm, nothing left of an earlier run in its namespace, and the dotenv source the
    /// backup store's key comes from (offline backs up to SeaweedFS: `up` makes its key).
    fn fresh() -> Env {
        common::require_swarm();
        let env = Env::new();
        let _ = env.ctl(&["-q", "down", "--volumes"]);
        assert_eq!(env.ctl(&["-q", "secrets", "init-dotenv"]).code, 0);
        env
    }

    /// The example plus an environment running layer 1 only; the unseal agent only when asked.
    fn write_spec(&self, agent: bool) {
        let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let example =
            std::fs::read_to_string(repo.join("examples/sprocket/sprocket.yaml")).unwrap();
        let no_agent = if agent {
            ""
        } else {
            ", vault-agent: \"phase without the agent\""
        };
        let env = format!(
            "\n  e2e-vault:\n    extends: offline\n    namespace: {NS}\n    http_port: {PORT}\n    https_port: 19443\n    secrets_from: dotenv:secrets.env\n    disable: {{ redis: \"vault test\", rabbitmq: \"vault test\", demo: \"vault test\", n8n: \"vault test\"{no_agent} }}\n"
        );
        std::fs::write(&self.spec, format!("{}\n{env}", example.trim_end())).unwrap();
    }

    /// sprocketctl in this test's HOME and environment; everything it prints is kept, to search
    /// for leaked secrets at the end.
    fn ctl(&self, args: &[&str]) -> Run {
        let r = common::sprocketctl(&self.home, &self.spec, "e2e-vault", args);
        self.printed
            .borrow_mut()
            .push_str(&format!("{}\n{}\n", r.stdout, r.stderr));
        r
    }

    fn keyring(&self) -> PathBuf {
        self.dir.join(format!("keyrings/{NS}.age"))
    }
}

fn docker(args: &[&str]) -> String {
    common::docker_any(args)
}

/// Vault's HTTP API through Traefik.
async fn api(
    method: reqwest::Method,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (u16, Value) {
    common::vault_api(PORT, method, path.trim_start_matches("/v1/"), token, body).await
}

async fn sealed() -> bool {
    for _ in 0..100 {
        if let (200, v) = api(reqwest::Method::GET, "/v1/sys/seal-status", None, None).await {
            return v["sealed"].as_bool().unwrap();
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("Vault never answered")
}

/// Mounts a KV store and writes `kv/probe` (value `survives`), to find after restarts.
async fn write_probe(token: &str) {
    let (s, _) = api(
        reqwest::Method::POST,
        "/v1/sys/mounts/kv",
        Some(token),
        Some(serde_json::json!({"type": "kv", "options": {"version": "2"}})),
    )
    .await;
    assert!(s == 204 || s == 200, "mount kv: {s}");
    let (s, _) = api(
        reqwest::Method::POST,
        "/v1/kv/data/probe",
        Some(token),
        Some(serde_json::json!({"data": {"value": "survives"}})),
    )
    .await;
    assert_eq!(s, 200);
}

/// Force-restarts the Vault task and waits until the new one answers.
async fn restart_vault() {
    docker(&["service", "update", "-q", "--force", &format!("{NS}_vault")]);
    for _ in 0..150 {
        if let (200, v) = api(reqwest::Method::GET, "/v1/sys/seal-status", None, None).await {
            if v["sealed"] == true {
                return;
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("the restarted Vault never answered sealed");
}

/// Vault's private socket on this machine (its volume under the engine's root folder).
fn private_socket() -> PathBuf {
    let root = docker(&["info", "-f", "{{.DockerRootDir}}"]);
    Path::new(root.trim()).join(format!("volumes/{NS}_vault_socket/_data/vault.sock"))
}

/// An HTTP proxy in front of Vault (its private socket) that holds back the answer to requests
/// starting with `slow_request_line` for `delay`. Returns its URL.
async fn delaying_proxy(slow_request_line: &'static str, delay: Duration) -> String {
    use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            tokio::spawn(async move {
                let (r, mut w) = client.into_split();
                let mut r = BufReader::new(r);
                let mut head = String::new();
                let mut request_line = String::new();
                let mut length = 0usize;
                loop {
                    let mut line = String::new();
                    if r.read_line(&mut line).await.unwrap_or(0) == 0 {
                        return;
                    }
                    if request_line.is_empty() {
                        request_line = line.clone();
                        head.push_str(&line);
                        continue;
                    }
                    if line == "\r\n" {
                        break;
                    }
                    let lower = line.to_ascii_lowercase();
                    if let Some(n) = lower.strip_prefix("content-length:") {
                        length = n.trim().parse().unwrap_or(0);
                    }
                    if !lower.starts_with("host:") && !lower.starts_with("connection:") {
                        head.push_str(&line);
                    }
                }
                let mut body = vec![0u8; length];
                r.read_exact(&mut body).await.unwrap();
                head.push_str("Host: vault.localhost\r\nConnection: close\r\n\r\n");
                let mut up = tokio::net::UnixStream::connect(private_socket())
                    .await
                    .unwrap();
                up.write_all(head.as_bytes()).await.unwrap();
                up.write_all(&body).await.unwrap();
                let mut answer = Vec::new();
                up.read_to_end(&mut answer).await.unwrap();
                if request_line.starts_with(slow_request_line) {
                    tokio::time::sleep(delay).await;
                }
                let _ = w.write_all(&answer).await;
                let _ = w.shutdown().await;
            });
        }
    });
    format!("http://{addr}")
}

/// Waits (polling every 20 ms) until Vault answers unsealed after a restart that began at `t0`:
/// first sealed or unreachable (the old task going), then unsealed. Returns seconds since `t0`.
async fn wait_unsealed_after_restart(t0: std::time::Instant) -> f64 {
    wait_unsealed(t0, false, Duration::from_secs(60)).await
}

/// `known_down`: the caller knows Vault went away (dockerd itself was restarted).
async fn wait_unsealed(t0: std::time::Instant, known_down: bool, limit: Duration) -> f64 {
    let mut went_down = known_down;
    loop {
        assert!(
            t0.elapsed() < limit,
            "Vault did not come back unsealed within {limit:?}"
        );
        let c = reqwest::Client::new();
        let r = c
            .get(format!("http://127.0.0.1:{PORT}/v1/sys/seal-status"))
            .header("Host", "vault.localhost")
            .timeout(Duration::from_secs(2))
            .send()
            .await;
        let sealed = match r {
            Ok(resp) if resp.status().is_success() => resp
                .json::<Value>()
                .await
                .ok()
                .and_then(|v| v["sealed"].as_bool()),
            _ => None,
        };
        match sealed {
            Some(false) if went_down => return t0.elapsed().as_secs_f64(),
            Some(false) => {}
            _ => went_down = true,
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vault_is_initialised_unsealed_and_its_keys_stay_encrypted() {
    let _serial = SERIAL.lock().await;
    let env = Env::fresh();

    // Layer 1 before anyone holds a key: Vault runs, uninitialised, and `up` says why.
    let up = env.ctl(&["-o", "json", "up", "--timeout", "120"]);
    assert_eq!(up.code, 0, "{}", up.stdout);
    let r = up.json();
    assert_eq!(r["vault"]["initialized"], false);
    assert!(
        r["vault"]["notes"][0]
            .as_str()
            .unwrap()
            .contains("names no key yet"),
        "{r}"
    );

    // The operator's own key.
    let kg = env.ctl(&["-o", "json", "vault", "keygen"]);
    assert_eq!(kg.code, 0);
    let identity = PathBuf::from(kg.json()["identity"].as_str().unwrap());

    // A slow `sys/init` (here: a proxy that holds Vault's answer back 20 s, on top of raft's
    // own seconds) does not lose the keys: the client waits, and the keyring is written. A
    // Ctrl-C meanwhile (F12) is held until the keyring is on disk, then obeyed (exit 130).
    let slow = delaying_proxy("PUT /v1/sys/init", Duration::from_secs(20)).await;
    let t0 = std::time::Instant::now();
    let child = Command::new(env!("CARGO_BIN_EXE_sprocketctl"))
        .env("HOME", &env.home)
        .env_remove("SPROCKET_IDENTITY")
        .env_remove("VAULT_ADDR")
        .arg("-f")
        .arg(&env.spec)
        .args([
            "-e",
            "e2e-vault",
            "-o",
            "json",
            "vault",
            "init",
            "--vault-addr",
            &slow,
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert!(!env.keyring().exists(), "still waiting for Vault's answer");
    let interrupted = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(interrupted.success());
    let init = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&init.stderr).to_string();
    env.printed.borrow_mut().push_str(&stderr);
    env.printed
        .borrow_mut()
        .push_str(&String::from_utf8_lossy(&init.stdout));
    assert_eq!(init.status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("SIGINT received"), "{stderr}");
    assert!(
        t0.elapsed() >= Duration::from_secs(20),
        "the answer really was late"
    );
    assert!(
        env.keyring().exists(),
        "the keyring was saved before stopping"
    );
    // Stopped right after saving the keyring: Vault is initialised and still sealed.
    assert!(sealed().await);
    let unseal = env.ctl(&["-o", "json", "vault", "unseal"]);
    assert_eq!(unseal.code, 0, "{}", unseal.stderr);
    assert_eq!(unseal.json()["actions"], serde_json::json!(["unsealed"]));
    assert!(!sealed().await);

    // The public route refuses Vault's unauthenticated key endpoints (Traefik: 404), and serves
    // the rest.
    for (method, path) in [
        (reqwest::Method::PUT, "/v1/sys/init"),
        (reqwest::Method::PUT, "/v1/sys/unseal"),
        (reqwest::Method::GET, "/v1/sys/generate-root/attempt"),
        (reqwest::Method::PUT, "/v1/sys/generate-root/attempt"),
        (reqwest::Method::GET, "/v1/sys/rekey/init"),
    ] {
        let body = (method == reqwest::Method::PUT).then(|| serde_json::json!({"reset": true}));
        let (status, _) = api(method.clone(), path, None, body).await;
        assert_eq!(status, 404, "{method} {path} through the route");
    }
    let (status, _) = api(reqwest::Method::GET, "/v1/sys/seal-status", None, None).await;
    assert_eq!(status, 200);

    // sprocketctl reaches Vault over its private socket, not the router: with Traefik gone,
    // `vault status` still answers.
    let traefik = format!("{NS}_traefik");
    docker(&["service", "scale", "--detach", &format!("{traefik}=0")]);
    let status = env.ctl(&["-o", "json", "vault", "status"]);
    assert_eq!(status.code, 0, "{}", status.stderr);
    let v = status.json();
    assert!(v["address"].as_str().unwrap().starts_with("unix:/"), "{v}");
    assert_eq!(v["sealed"], false, "{v}");
    docker(&["service", "scale", &format!("{traefik}=1")]);

    // up now finds Vault initialised and unsealed: nothing to do.
    let up = env.ctl(&["-o", "json", "up"]);
    assert_eq!(up.code, 0, "{}", up.stdout);
    let r = up.json();
    assert_eq!(r["vault"]["actions"], serde_json::json!([]));
    assert_eq!(r["vault"]["sealed"], false);
    assert!(!sealed().await);

    // The keyring: armoured age, mode 0600, opens with the identity, and its root token works.
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::metadata(env.keyring()).expect("keyring written");
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    let text = std::fs::read_to_string(env.keyring()).unwrap();
    assert!(text.starts_with("-----BEGIN AGE ENCRYPTED FILE-----"));
    let k = sprocket_vault::Keyring::open(&env.keyring(), &identity).unwrap();
    assert_eq!((k.shares, k.threshold, k.unseal_keys_b64.len()), (5, 3, 5));
    for key in k.unseal_keys_b64.iter().chain([&k.root_token]) {
        assert!(!text.contains(key.as_str()));
    }
    let (status, _) = api(
        reqwest::Method::GET,
        "/v1/auth/token/lookup-self",
        Some(&k.root_token),
        None,
    )
    .await;
    assert_eq!(status, 200, "the root token works");

    // A second init changes nothing.
    let again = env.ctl(&["-o", "json", "vault", "init"]);
    assert_eq!(again.code, 0);
    assert_eq!(again.json()["actions"], serde_json::json!([]));
    assert_eq!(
        sprocket_vault::Keyring::open(&env.keyring(), &identity)
            .unwrap()
            .fingerprint(),
        k.fingerprint()
    );

    // Data written before a restart is there after it.
    let token = k.root_token.as_str();
    write_probe(token).await;

    // Restarted: sealed; `up` (no changes) unseals it with the keyring, making no engine call.
    restart_vault().await;
    let up = env.ctl(&["-o", "json", "up"]);
    assert_eq!(up.code, 0, "{}", up.stdout);
    let r = up.json();
    assert_eq!(r["vault"]["actions"], serde_json::json!(["unsealed"]));
    assert_eq!(
        r["calls"],
        serde_json::json!({ "create": 0, "update": 0, "remove": 0 })
    );
    let (s, v) = api(reqwest::Method::GET, "/v1/kv/data/probe", Some(token), None).await;
    assert_eq!(
        (s, v["data"]["data"]["value"].as_str()),
        (200, Some("survives"))
    );

    // Restarted again: `vault unseal` with a wrong identity is a clear error and Vault stays sealed.
    restart_vault().await;
    let other = env.dir.join("other-identity.txt");
    let id = age::x25519::Identity::generate();
    std::fs::write(
        &other,
        age::secrecy::ExposeSecret::expose_secret(&id.to_string()),
    )
    .unwrap();
    let wrong = env.ctl(&["vault", "unseal", "--identity", other.to_str().unwrap()]);
    assert_eq!(wrong.code, 3);
    assert!(
        wrong.stderr.contains("cannot open the keyring"),
        "{}",
        wrong.stderr
    );
    assert!(sealed().await, "untouched");

    // A damaged keyring: clear error, Vault untouched.
    let good = std::fs::read(env.keyring()).unwrap();
    let mut bad = good.clone();
    let mid = bad.len() / 2;
    bad[mid] = if bad[mid] == b'A' { b'B' } else { b'A' };
    std::fs::write(env.keyring(), &bad).unwrap();
    let damaged = env.ctl(&["vault", "unseal"]);
    assert_eq!(damaged.code, 3);
    assert!(damaged.stderr.contains("is damaged"), "{}", damaged.stderr);
    assert!(sealed().await);

    // No keyring: `vault init` refuses to re-initialise and says how to recover.
    std::fs::remove_file(env.keyring()).unwrap();
    let missing = env.ctl(&["vault", "init"]);
    assert_eq!(missing.code, 1);
    assert!(
        missing.stderr.contains("will not be initialised again"),
        "{}",
        missing.stderr
    );
    let (_, st) = api(reqwest::Method::GET, "/v1/sys/seal-status", None, None).await;
    assert_eq!(st["initialized"], true, "Vault untouched");
    // `up` without the keyring says the one true cause and its fix, once — never a guessed
    // "no identity" beside it.
    let up = env.ctl(&["up", "--timeout", "60"]);
    assert_ne!(up.code, 0);
    let all = format!("{}{}", up.stdout, up.stderr);
    assert_eq!(
        all.matches("restore the keyring from your backup").count(),
        1,
        "{all}"
    );
    assert!(!all.contains("no identity"), "{all}");
    // The way out it offers removes Vault's volume only, never every layer's data.
    assert!(all.contains("docker volume rm"), "{all}");

    // The keyring restored: unsealed, data intact.
    std::fs::write(env.keyring(), &good).unwrap();
    let unseal = env.ctl(&["-o", "json", "vault", "unseal"]);
    assert_eq!(unseal.code, 0);
    assert_eq!(unseal.json()["actions"], serde_json::json!(["unsealed"]));
    let (s, v) = api(reqwest::Method::GET, "/v1/kv/data/probe", Some(token), None).await;
    assert_eq!(
        (s, v["data"]["data"]["value"].as_str()),
        (200, Some("survives"))
    );

    // The secrets never left in clear: not in any output, not in the swarm's view of the service
    // or its container (args, env, labels, mounts).
    let mut seen = env.printed.borrow().clone();
    seen.push_str(&docker(&["service", "inspect", &format!("{NS}_vault")]));
    let cid = docker(&[
        "ps",
        "-q",
        "--filter",
        &format!("label=com.docker.swarm.service.name={NS}_vault"),
    ]);
    for id in cid.split_whitespace() {
        seen.push_str(&docker(&["inspect", id]));
    }
    seen.push_str(&docker(&[
        "service",
        "logs",
        "--raw",
        &format!("{NS}_vault"),
    ]));
    for secret in k.unseal_keys_b64.iter().chain([&k.root_token]) {
        assert!(
            !seen.contains(secret.as_str()),
            "a secret leaked into output or inspect"
        );
    }

    // With the unseal agent: no command of ours after a restart, Vault comes back unsealed.
    env.write_spec(true);
    let up = env.ctl(&["-o", "json", "up", "--prune", "--timeout", "120"]);
    assert_eq!(up.code, 0, "{}", up.stdout);
    let agent = format!("{NS}_vault-agent");
    let vault = format!("{NS}_vault");
    let mut restart_to_unsealed = Vec::new();
    for i in 0..20 {
        let t0 = std::time::Instant::now();
        docker(&["service", "update", "-q", "--force", "--detach", &vault]);
        let secs = wait_unsealed_after_restart(t0).await;
        restart_to_unsealed.push(secs);
        eprintln!("restart {i}: unsealed {secs:.2}s after the restart command");
    }
    // Its container killed (not a clean stop): Swarm starts a new task, the agent unseals it.
    let cid = docker(&[
        "ps",
        "-q",
        "--filter",
        &format!("label=com.docker.swarm.service.name={vault}"),
    ]);
    let t0 = std::time::Instant::now();
    docker(&["kill", cid.trim()]);
    eprintln!(
        "kill: unsealed {:.2}s later",
        wait_unsealed_after_restart(t0).await
    );
    // Every unseal is an event in the agent's log, with its time from listener-up to unsealed.
    let logs = docker(&["service", "logs", "--raw", &agent]);
    let mut listener_to_unsealed: Vec<f64> = logs
        .lines()
        .filter_map(|l| l.split(" in ").nth(1)?.split('s').next()?.parse().ok())
        .collect();
    assert!(
        listener_to_unsealed.len() >= 21,
        "one event per unseal: {logs}"
    );
    // …and a metric: the agent's Prometheus endpoint, read from inside its container.
    let agent_cid = docker(&[
        "ps",
        "-q",
        "--filter",
        &format!("label=com.docker.swarm.service.name={agent}"),
    ]);
    let metrics = docker(&[
        "exec",
        agent_cid.trim(),
        "curl",
        "-s",
        "http://127.0.0.1:9090/metrics",
    ]);
    let value = |name: &str| -> f64 {
        metrics
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
            .unwrap_or_else(|| panic!("{name} missing from /metrics:\n{metrics}"))
    };
    assert!(value("sprocket_agent_unseals_total") >= 21.0, "{metrics}");
    assert!(
        value("sprocket_agent_time_to_unseal_seconds_count") >= 21.0,
        "{metrics}"
    );
    assert_eq!(
        value("sprocket_agent_unseal_failures_total"),
        0.0,
        "{metrics}"
    );
    let le_300ms = value("sprocket_agent_time_to_unseal_seconds_bucket{le=\"0.3\"}");
    assert!(
        le_300ms >= 0.95 * value("sprocket_agent_time_to_unseal_seconds_count"),
        "p95 under 0.3 s: {metrics}"
    );
    listener_to_unsealed.sort_by(|a, b| a.partial_cmp(b).unwrap());
    restart_to_unsealed.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let pct = |v: &[f64], p: f64| v[((v.len() as f64 - 1.0) * p).round() as usize];
    eprintln!(
        "listener→unsealed p50 {:.3}s p95 {:.3}s; restart→unsealed p50 {:.2}s p95 {:.2}s",
        pct(&listener_to_unsealed, 0.5),
        pct(&listener_to_unsealed, 0.95),
        pct(&restart_to_unsealed, 0.5),
        pct(&restart_to_unsealed, 0.95)
    );
    // The agent restarted while Vault is sealed: it unseals on start.
    docker(&["service", "scale", &format!("{agent}=0")]); // waits until the agent is gone
    restart_vault().await;
    assert!(sealed().await, "nobody unseals without the agent");
    let t0 = std::time::Instant::now();
    docker(&["service", "scale", "-d", &format!("{agent}=1")]);
    eprintln!(
        "agent back: unsealed {:.2}s later",
        wait_unsealed_after_restart(t0).await
    );
    // Vault and the agent restarted together.
    let t0 = std::time::Instant::now();
    docker(&["service", "update", "-q", "--force", "--detach", &agent]);
    docker(&["service", "update", "-q", "--force", "--detach", &vault]);
    eprintln!(
        "both restarted: unsealed {:.2}s later",
        wait_unsealed_after_restart(t0).await
    );
    let (s, v) = api(reqwest::Method::GET, "/v1/kv/data/probe", Some(token), None).await;
    assert_eq!(
        (s, v["data"]["data"]["value"].as_str()),
        (200, Some("survives")),
        "data intact after every restart"
    );
    let mut seen = logs;
    seen.push_str(&docker(&["service", "inspect", &agent]));
    for secret in k.unseal_keys_b64.iter().chain([&k.root_token]) {
        assert!(
            !seen.contains(secret.as_str()),
            "a secret leaked into the agent's logs or inspect"
        );
    }

    let down = env.ctl(&["-q", "down", "--volumes"]);
    assert_eq!(down.code, 0);
    let _ = std::fs::remove_dir_all(&env.dir);
}

/// A host reboot as the swarm sees it: dockerd itself stopped and started again under a running
/// Vault with its unseal agent. Every task is restarted by the swarm; nobody runs a command of
/// ours, and Vault comes back unsealed with its data. A test of its own because it takes every
/// stack on this engine down with it: `scripts/test` runs it alone (.config/nextest.toml), while
/// the other end-to-end tests run two at a time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dockerd_restart_finds_vault_unsealed_with_no_command() {
    let _serial = SERIAL.lock().await;
    let env = Env::fresh();
    let kg = env.ctl(&["-o", "json", "vault", "keygen"]);
    assert_eq!(kg.code, 0, "{}", kg.stderr);
    let identity = PathBuf::from(kg.json()["identity"].as_str().unwrap());
    env.write_spec(true);
    let up = env.ctl(&["-o", "json", "up", "--timeout", "120"]);
    assert_eq!(up.code, 0, "{}", up.stdout);
    assert!(!sealed().await, "{}", up.stdout);
    let k = sprocket_vault::Keyring::open(&env.keyring(), &identity).unwrap();
    let token = k.root_token.as_str();
    write_probe(token).await;

    // A host reboot as the swarm sees it: dockerd itself stopped and started again. Every task
    // is restarted by the swarm; nobody runs a command of ours.
    let pidfile = Path::new("/var/run/sprocket-dockerd.pid");
    assert!(
        pidfile.exists(),
        "the dockerd-restart scenario restarts the engine that scripts/lib/engine.sh started (scripts/test does); there is no pidfile at {}",
        pidfile.display()
    );
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let t0 = std::time::Instant::now();
    let restarted = Command::new("bash")
        .args([
            "-c",
            "source scripts/lib/engine.sh && engine_stop && engine_ensure && swarm_ensure",
        ])
        .current_dir(&repo)
        .status()
        .expect("bash runs");
    assert!(restarted.success(), "dockerd did not come back");
    eprintln!(
        "dockerd restarted: Vault unsealed {:.2}s after the stop",
        wait_unsealed(t0, true, Duration::from_secs(180)).await
    );

    let (s, v) = api(reqwest::Method::GET, "/v1/kv/data/probe", Some(token), None).await;
    assert_eq!(
        (s, v["data"]["data"]["value"].as_str()),
        (200, Some("survives")),
        "data intact after dockerd's restart"
    );
    let logs = docker(&["service", "logs", "--raw", &format!("{NS}_vault-agent")]);
    for secret in k.unseal_keys_b64.iter().chain([&k.root_token]) {
        assert!(
            !logs.contains(secret.as_str()),
            "a secret leaked into the agent's logs"
        );
        assert!(
            !env.printed.borrow().contains(secret.as_str()),
            "a secret leaked into sprocketctl's output"
        );
    }
    let down = env.ctl(&["-q", "down", "--volumes"]);
    assert_eq!(down.code, 0);
    let _ = std::fs::remove_dir_all(&env.dir);
}
