//! End to end, on the real dockerd + swarm that `scripts/test` starts, with the locally built
//! images: the example platform in an `e2e` environment (its own namespace and ports, so it
//! never touches a platform the developer runs locally).
//!
//! One ordered story, because each step builds on the swarm state the previous one left:
//! up from nothing → every service N/N → every Host of every route reaches its service, an
//! unknown Host gets 404 → the demo app (platform layer) reaches Redis and RabbitMQ (data layer)
//! → a second up makes zero engine calls → one env var changes exactly one service → a service
//! that cannot start fails `up` with its error, its logs and exit code 5, earlier layers untouched
//! → the next up continues → a provider that fails stops exactly its consumers → down leaves no
//! object of the namespace behind.
//!
//! No engine is a failure, never a skip.

mod common;

use common::Run;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

const NS: &str = "sprocket-e2e";
const HTTP_PORT: u16 = 18080;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The example spec plus an `e2e` environment appended to its `environments:` (the last section
/// of the file) with `extra` lines inside it.
fn write_spec(dir: &Path, extra: &str) -> PathBuf {
    let example = std::fs::read_to_string(repo().join("examples/sprocket/sprocket.yaml")).unwrap();
    assert!(
        example.trim_end().rsplit("\n\n").next().unwrap().contains("    extends: "),
        "the e2e environment is appended to `environments:`, which must stay the example's last section"
    );
    // n8n (its own test, n8n.rs) is not under test here.
    let extra = if extra.contains("    disable: { ") {
        extra.replacen(
            "    disable: { ",
            "    disable: { n8n: \"not under test\", ",
            1,
        )
    } else {
        format!("    disable: {{ n8n: \"not under test\" }}\n{extra}")
    };
    let env = format!(
        "\n  e2e:\n    extends: offline\n    namespace: {NS}\n    http_port: {HTTP_PORT}\n    https_port: 18443\n{extra}"
    );
    let path = dir.join("sprocket.yaml");
    std::fs::write(&path, format!("{}\n{env}", example.trim_end())).unwrap();
    common::seed_externals(&dir.join(".secrets/offline.env"));
    path
}

fn home() -> PathBuf {
    std::env::temp_dir().join(format!("sprocket-e2e-home-{}", std::process::id()))
}

fn ctl(spec: &Path, args: &[&str]) -> Run {
    common::sprocketctl(&home(), spec, "e2e", args)
}

fn docker(args: &[&str]) -> String {
    let out = Command::new("docker")
        .args(args)
        .output()
        .expect("docker CLI runs");
    assert!(
        out.status.success(),
        "docker {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// `GET /` with a Host header through Traefik: (status, body).
fn get(host: &str) -> (u16, String) {
    common::http_get(HTTP_PORT, host, "/")
}

/// Traefik picks up new routes within its provider refresh; retry briefly.
fn get_until(host: &str, ok: impl Fn(u16) -> bool) -> (u16, String) {
    let mut last = (0, String::new());
    for _ in 0..40 {
        last = get(host);
        if ok(last.0) {
            return last;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    last
}

fn versions(layer: &str) -> Vec<(String, String)> {
    let ids = docker(&[
        "service",
        "ls",
        "-q",
        "--filter",
        &format!("label=io.sprocket.namespace={NS}"),
        "--filter",
        &format!("label=io.sprocket.layer={layer}"),
    ]);
    let mut v: Vec<(String, String)> = ids
        .lines()
        .map(|id| {
            (
                id.to_string(),
                docker(&["service", "inspect", id, "--format", "{{.Version.Index}}"]),
            )
        })
        .collect();
    v.sort();
    v
}

fn owned(kind: &str) -> Vec<String> {
    let filter = format!("label=io.sprocket.namespace={NS}");
    let args: Vec<&str> = match kind {
        "service" => vec!["service", "ls", "-q", "--filter", &filter],
        "network" => vec!["network", "ls", "-q", "--filter", &filter],
        "config" => vec!["config", "ls", "-q", "--filter", &filter],
        "secret" => vec!["secret", "ls", "-q", "--filter", &filter],
        _ => vec!["volume", "ls", "-q", "--filter", &filter],
    };
    docker(&args).lines().map(str::to_string).collect()
}

#[test]
fn platform_lifecycle_on_a_real_swarm() {
    common::require_swarm();
    let dir = std::env::temp_dir().join(format!("sprocket-e2e-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    copy_dir(
        &repo().join("examples/sprocket/config"),
        &dir.join("config"),
    );
    let spec = write_spec(&dir, "");
    let spec_at = spec.clone();
    let _down = common::OnPanic(move || {
        let _ = ctl(&spec_at, &["-q", "down", "--volumes"]);
    });

    // Clean slate (a previous run that was killed may have left objects).
    let _ = ctl(&spec, &["-q", "down", "--volumes"]);
    // An operator key of our own, so `up` initialises Vault and deploys its unseal agent.
    std::fs::create_dir_all(home()).unwrap();
    assert_eq!(ctl(&spec, &["-q", "vault", "keygen"]).code, 0);
    // The offline environment reads its secrets from a dotenv file beside the spec.
    assert_eq!(ctl(&spec, &["-q", "secrets", "init-dotenv"]).code, 0);

    // 1. up from nothing.
    let up = ctl(&spec, &["-o", "json", "up", "--timeout", "180"]);
    assert_eq!(up.code, 0, "up failed: {}", up.stdout);
    let r = up.json();
    assert_eq!(r["outcome"], "deployed");
    assert!(r["layers"]
        .as_array()
        .unwrap()
        .iter()
        .all(|l| l["status"] == "deployed"));

    // 2. every service N/N.
    let st = ctl(&spec, &["-o", "json", "status"]);
    assert_eq!(st.code, 0, "{}", st.stdout);
    let st = st.json();
    let services: Vec<&Value> = st["layers"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|l| l["services"].as_array().unwrap())
        .collect();
    assert_eq!(
        services.len(),
        7,
        "traefik, socket-proxy, vault, vault-agent, redis, rabbitmq, demo"
    );
    for s in &services {
        assert_eq!(s["running"], s["desired"], "{s}");
        assert_eq!(s["state"], "healthy", "{s}");
    }

    // 3. every Host of every route reaches its service; unknown Hosts get 404.
    let parsed = sprocket_spec::parse_file(&spec).unwrap();
    let platform = sprocket_spec::resolve(&parsed, Some("e2e"), &sprocket_spec::Files::disk())
        .unwrap()
        .platform;
    let mut hosts = 0;
    for svc in platform.services() {
        for route in &svc.routes {
            for host in &route.hosts {
                let (status, body) = get_until(host, |s| s != 404 && s != 0 && s < 500);
                assert!(
                    status != 404 && status != 0 && status < 500,
                    "{host} → {} got {status}: {body}",
                    svc.name
                );
                if svc.name == "demo" {
                    assert_eq!(status, 200, "{body}");
                }
                if svc.name == "rabbitmq" {
                    assert!(
                        body.contains("RabbitMQ Management"),
                        "{host} reached something else: {body}"
                    );
                }
                hosts += 1;
            }
        }
    }
    assert!(
        hosts >= 4,
        "demo (3 hosts: name, LAN IP, Tailscale IP), vault"
    );
    // RabbitMQ's management UI is behind the admin gate, whose service does not run offline:
    // the route is not published at all.
    assert_eq!(get("rabbitmq.localhost").0, 404);
    assert_eq!(get("nobody.localhost").0, 404);
    assert_eq!(get("10.9.9.9").0, 404);

    // 4. across layers: the demo app in `platform` reaches Redis and RabbitMQ in `data` by name.
    let (status, body) = get("demo.localhost");
    assert_eq!(status, 200, "{body}");
    let demo: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(demo["ok"], true, "{body}");
    // its own Redis ACL user (`access`), on its own keys
    assert_eq!(
        demo["checks"][0]["detail"],
        "PONG; wrote and read demo:check as demo"
    );
    // its own RabbitMQ login (`access`), made by `up` before the demo started
    assert_eq!(
        demo["checks"][1]["detail"],
        "logged in as demo on vhost demo"
    );

    // 4b. Redis requires its password (the demo's PONG came after AUTH with the secret it
    // mounts); RabbitMQ has no guest, and its administrator logs in with the generated password.
    let task = |svc: &str| common::container_of(NS, svc);
    // One generated value for a secret two layers mount: Redis and the demo mount one version.
    let mounted = |svc: &str| {
        docker(&[
            "service",
            "inspect",
            "-f",
            "{{range .Spec.TaskTemplate.ContainerSpec.Secrets}}{{.SecretName}} {{end}}",
            &format!("{NS}_{svc}"),
        ])
        .split_whitespace()
        .find(|n| n.starts_with(&format!("{NS}_redis-password-")))
        .map(str::to_string)
    };
    assert_eq!(mounted("redis"), mounted("demo"));
    assert!(mounted("redis").is_some());
    let redis = task("redis");
    let noauth = docker(&["exec", &redis, "redis-cli", "ping"]);
    assert!(
        noauth.contains("NOAUTH"),
        "Redis answered without a password: {noauth}"
    );
    let rabbit = task("rabbitmq");
    let whoami = |user: &str, password: &str| {
        docker(&[
            "exec",
            &rabbit,
            "bash",
            "-c",
            &format!("curl -s -u {user}:{password} http://127.0.0.1:15672/api/whoami"),
        ])
    };
    assert!(
        whoami("guest", "guest").contains("not_authorized"),
        "guest logs in"
    );
    assert!(
        whoami("admin", "\"$(cat /run/secrets/rabbitmq-admin-password)\"")
            .contains("\"administrator\""),
        "the administrator cannot log in"
    );

    // 5. a second up changes nothing and makes zero engine calls; plan agrees.
    let again = ctl(&spec, &["-o", "json", "up"]).json();
    assert_eq!(
        again["calls"],
        serde_json::json!({ "create": 0, "update": 0, "remove": 0 })
    );
    assert_eq!(ctl(&spec, &["plan", "--detailed-exitcode"]).code, 0);

    // 6. one env var changes exactly one service.
    let infra = versions("infrastructure");
    let data = versions("data");
    let spec = write_spec(
        &dir,
        "    services:\n      demo: { env: { E2E_MARK: \"2\" } }\n",
    );
    assert_eq!(ctl(&spec, &["plan", "--detailed-exitcode"]).code, 2);
    let changed = ctl(&spec, &["-o", "json", "up"]);
    assert_eq!(changed.code, 0, "{}", changed.stdout);
    let changed = changed.json();
    assert_eq!(
        changed["calls"],
        serde_json::json!({ "create": 0, "update": 1, "remove": 0 })
    );
    let updated: Vec<String> = changed["layers"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|l| l["services"].as_array().unwrap())
        .filter(|s| s["action"] == "update")
        .map(|s| s["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(updated, [format!("{NS}_demo")]);
    // Returned converged: the start-first update's old task is gone, not merely told to stop
    // (`docker service ls` would show 2/1), and the report says when that happened.
    let live: Vec<String> = docker(&[
        "service",
        "ps",
        &format!("{NS}_demo"),
        "--format",
        "{{.CurrentState}}",
    ])
    .lines()
    .filter(|l| {
        !l.starts_with("Shutdown") && !l.starts_with("Complete") && !l.starts_with("Failed")
    })
    .map(str::to_string)
    .collect();
    assert_eq!(live.len(), 1, "one live task at return: {live:?}");
    assert!(live[0].starts_with("Running"), "{live:?}");
    assert_eq!(
        docker(&[
            "service",
            "ls",
            "--filter",
            &format!("name={NS}_demo"),
            "--format",
            "{{.Replicas}}"
        ]),
        "1/1"
    );
    let demo = changed["layers"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|l| l["services"].as_array().unwrap())
        .find(|s| s["name"] == format!("{NS}_demo"))
        .unwrap();
    assert!(demo["converged_after"].as_f64().unwrap() >= demo["healthy_after"].as_f64().unwrap());
    assert_eq!(versions("infrastructure"), infra);
    assert_eq!(versions("data"), data);

    // 7. a service that cannot start fails `up` with its error, logs and exit code 5; earlier
    //    layers stay untouched.
    let spec = write_spec(&dir, "    services:\n      demo: { env: { E2E_MARK: \"3\", DEMO_LISTEN: \"not-an-address\" } }\n");
    let failed = ctl(&spec, &["-o", "json", "up", "--timeout", "120"]);
    assert_eq!(failed.code, 5, "{}", failed.stdout);
    let f = failed.json();
    assert_eq!(f["outcome"], "failed");
    assert_eq!(f["failure"]["service"], format!("{NS}_demo"));
    assert!(
        f["failure"]["reason"].as_str().unwrap().contains("failed"),
        "{}",
        f["failure"]
    );
    let logs = f["failure"]["logs"].as_array().unwrap();
    assert!(
        logs.iter().any(|l| l
            .as_str()
            .unwrap()
            .contains("cannot listen on not-an-address")),
        "the task's own error: {logs:?}"
    );
    assert_eq!(versions("infrastructure"), infra);
    assert_eq!(versions("data"), data);
    let human = ctl(&spec, &["up", "--timeout", "120"]);
    assert_eq!(human.code, 5);
    assert!(
        human.stdout.contains("cannot listen on not-an-address")
            && human.stdout.contains("run `sprocketctl up` again"),
        "{}",
        human.stdout
    );

    // 8a. a deadline that passes is a timeout (exit 6), not a failure.
    let spec = write_spec(
        &dir,
        "    services:\n      demo: { env: { E2E_MARK: \"4\" } }\n",
    );
    let slow = ctl(&spec, &["-o", "json", "up", "--timeout", "0"]);
    assert_eq!(slow.code, 6, "{}", slow.stdout);
    assert_eq!(slow.json()["outcome"], "timed-out");

    // 8. fixed spec: the next up continues from there and ends healthy.
    let spec = write_spec(&dir, "");
    let fixed = ctl(&spec, &["-o", "json", "up", "--timeout", "120"]);
    assert_eq!(fixed.code, 0, "{}", fixed.stdout);
    assert_eq!(get_until("demo.localhost", |s| s == 200).0, 200);

    // 8b. a provider that fails stops exactly what uses it: Redis cannot start, so the demo
    //     (which uses it, and whose spec changed too) is not started and says why; RabbitMQ and
    //     the infrastructure carry on, untouched.
    let infra = versions("infrastructure");
    let spec = write_spec(
        &dir,
        "    services:\n      redis: { args: [sh, -c, \"sh /run/sprocket/redis-acl.sh >/dev/null && exec redis-server --no-such-directive 1\"] }\n      demo: { env: { E2E_MARK: \"5\" } }\n",
    );
    let broken = ctl(&spec, &["-o", "json", "up", "--timeout", "120"]);
    assert_eq!(broken.code, 5, "{}", broken.stdout);
    let b = broken.json();
    assert_eq!(b["failure"]["service"], format!("{NS}_redis"));
    let service = |name: &str| -> Value {
        b["layers"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|l| l["services"].as_array().unwrap().clone())
            .find(|s| s["name"] == format!("{NS}_{name}"))
            .unwrap_or_else(|| panic!("{name} in the report"))
    };
    assert_eq!(service("demo")["state"], "not-started");
    assert_eq!(
        service("demo")["not_started_because"],
        format!("{NS}_redis failed")
    );
    assert_eq!(service("rabbitmq")["state"], "healthy");
    assert_eq!(service("traefik")["state"], "healthy");
    let layer = |name: &str| -> Value {
        b["layers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["name"] == name)
            .unwrap()["status"]
            .clone()
    };
    assert_eq!(layer("data"), "failed");
    assert_eq!(layer("platform"), "not-started");
    assert_eq!(layer("infrastructure"), "deployed");
    // (Swarm bumps a service's version when its last update completes: compare the spec.)
    let demo_env = docker(&[
        "service",
        "inspect",
        "--format",
        "{{json .Spec.TaskTemplate.ContainerSpec.Env}}",
        &format!("{NS}_demo"),
    ]);
    assert!(
        !demo_env.contains("E2E_MARK=5"),
        "the demo was not updated: {demo_env}"
    );
    assert_eq!(versions("infrastructure"), infra);
    let spec = write_spec(&dir, "");
    let healed = ctl(&spec, &["-o", "json", "up", "--timeout", "120"]);
    assert_eq!(healed.code, 0, "{}", healed.stdout);
    assert_eq!(get_until("demo.localhost", |s| s == 200).0, 200);

    // 9. services the spec no longer runs here are removed only with --prune, and nothing else:
    //    Vault disabled, its unseal agent goes with it (derived).
    //    (The demo stops reading Vault and mounting the secrets kept there first: a service
    //    that needs Vault cannot run without it.)
    let spec = write_spec(&dir, "    disable: { vault: \"e2e: not needed\" }\n");
    let text = std::fs::read_to_string(&spec).unwrap();
    let text: Vec<&str> = text
        .lines()
        .filter(|l| !l.contains("vault: [platform/demo/*]") && !l.ends_with("# kept in Vault"))
        .collect();
    std::fs::write(&spec, text.join("\n")).unwrap();
    let kept = ctl(&spec, &["-o", "json", "up"]);
    assert_eq!(kept.code, 0, "{}", kept.stdout);
    assert_eq!(kept.json()["calls"]["remove"], 0);
    assert_eq!(
        owned("service").len(),
        7,
        "without --prune the dropped services stay"
    );
    let pruned = ctl(&spec, &["-o", "json", "up", "--prune"]);
    assert_eq!(pruned.code, 0, "{}", pruned.stdout);
    let removed: Vec<String> = pruned.json()["removed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    let services: Vec<&String> = removed
        .iter()
        .filter(|r| r.starts_with("service "))
        .collect();
    assert_eq!(
        services,
        [
            &format!("service {NS}_vault"),
            &format!("service {NS}_vault-agent")
        ],
        "{removed:?}"
    );
    for r in &removed {
        assert!(
            r.starts_with("service ")
                || r.starts_with(&format!("config {NS}_vault-"))
                // the agent's unseal material and the demo's (former) Vault token, and the
                // secrets the demo no longer mounts (they were kept in Vault)
                || r.starts_with(&format!("secret {NS}_vault-"))
                || r.starts_with(&format!("secret {NS}_demo-api-key-v"))
                || r.starts_with(&format!("secret {NS}_sprocket-fingerprint-key-v"))
                // Vault's own networks: to its agent, its reader, Traefik; the agent's to the
                // Docker API proxy and Traefik's to the agent (its status page)
                || r == &format!("network {NS}_vault-agent_to_vault")
                || r == &format!("network {NS}_demo_to_vault")
                || r == &format!("network {NS}_edge_vault")
                || r == &format!("network {NS}_edge_vault-agent")
                || r == &format!("network {NS}_vault-agent_to_socket-proxy")
                // and its own network with the backup task (the environment is backed up)
                || r == &format!("network {NS}_backup_vault"),
            "only what belonged to Vault and its agent goes: {removed:?}"
        );
    }
    assert_eq!(owned("service").len(), 5);

    // 10. down leaves nothing of the namespace.
    let down = ctl(&spec, &["-o", "json", "down", "--volumes"]);
    assert_eq!(down.code, 0, "{}", down.stdout);
    for kind in ["service", "network", "config", "secret", "volume"] {
        assert!(owned(kind).is_empty(), "{kind}s left: {:?}", owned(kind));
    }
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_dir_all(home());
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
}
