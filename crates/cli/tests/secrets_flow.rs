//! The secrets pipeline end to end, on the real swarm with real OpenBao: source (a dotenv file)
//! → check → Vault KV v2 → versioned Docker secrets → the services that mount them.
//!
//! - the demo's `/fingerprints` (what its running task really holds) matches `secrets ls`;
//! - generated secrets are stable across `sync` and `up`, and differ from each other;
//! - a bad source (a duplicate key, a line-broken value) stops `up` and `sync` with file:line,
//!   and changes nothing: Vault's KV versions and the engine's objects are as before;
//! - a changed source value rolls exactly its consumer, and its old Docker secret goes;
//! - `secrets rotate` of a generated secret rolls exactly its consumers onto the new version;
//! - a rotation its consumer refuses goes back to the previous value and exits 5;
//! - canary values planted in the source appear in no output, no `docker inspect` of services
//!   or tasks, no service log and no file outside the source.

mod common;

use common::Run;
use serde_json::Value;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

const NS: &str = "sprocket-sec";
const ENV: &str = "e2e-sec";
const HTTP_PORT: u16 = 18280;

struct Env {
    /// The scratch platform (its folder, HOME and spec; taken down when dropped).
    s: common::Scratch,
    /// Everything every command printed, for the canary check.
    printed: std::cell::RefCell<String>,
}

impl Env {
    fn ctl(&self, args: &[&str]) -> Run {
        let r = self.s.ctl(args);
        self.printed
            .borrow_mut()
            .push_str(&format!("{}\n{}\n", r.stdout, r.stderr));
        r
    }

    fn source(&self, text: &str) {
        std::fs::write(self.s.dir.join("secrets.env"), text).unwrap();
        // The local PostgreSQL's administrator, after the test's own lines.
        common::seed_externals(&self.s.dir.join("secrets.env"));
    }
}

fn setup() -> Env {
    // The demo refuses a key that starts with `revoked-` (its health check fails): a consumer
    // that refuses a rotated value.
    let env = format!(
        "\n  {ENV}:\n    extends: offline\n    namespace: {NS}\n    http_port: {HTTP_PORT}\n    https_port: 18643\n    secrets_from: dotenv:secrets.env\n    disable: {{ n8n: \"not under test\" }}\n    services: {{ demo: {{ env: {{ DEMO_REFUSE_PREFIX: revoked- }} }} }}\n"
    );
    Env {
        s: common::Scratch::new("sec-e2e", ENV, &env),
        printed: Default::default(),
    }
}

/// `GET path` with a Host header through Traefik: (status, body).
fn get(host: &str, path: &str) -> (u16, String) {
    common::http_get(HTTP_PORT, host, path)
}

/// What the demo's running task holds: secret → keyed fingerprint.
fn live_fingerprints() -> Value {
    for _ in 0..40 {
        let (status, body) = get("demo.localhost", "/fingerprints");
        if status == 200 {
            return serde_json::from_str(&body).unwrap();
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    panic!("the demo's /fingerprints does not answer");
}

/// `secrets ls -o json`, by secret.
fn ls(env: &Env) -> Value {
    let r = env.ctl(&["-o", "json", "secrets", "ls"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let mut by = serde_json::Map::new();
    for row in r.json().as_array().unwrap() {
        by.insert(row["secret"].as_str().unwrap().to_string(), row.clone());
    }
    Value::Object(by)
}

fn docker(args: &[&str]) -> String {
    common::docker_any(args)
}

fn owned_secrets() -> Vec<String> {
    let mut v: Vec<String> = docker(&[
        "secret",
        "ls",
        "--filter",
        &format!("label=io.sprocket.namespace={NS}"),
        "--format",
        "{{.Name}}",
    ])
    .lines()
    .map(str::to_string)
    .collect();
    v.sort();
    v
}

fn service_versions() -> Vec<String> {
    let mut v: Vec<String> = docker(&[
        "service",
        "ls",
        "--filter",
        &format!("label=io.sprocket.namespace={NS}"),
        "--format",
        "{{.Name}}",
    ])
    .lines()
    .map(|n| {
        format!(
            "{n}@{}",
            docker(&["service", "inspect", n, "--format", "{{.Version.Index}}"]).trim()
        )
    })
    .collect();
    v.sort();
    v
}

/// Services a deploy report created or updated.
fn changed(report: &Value) -> Vec<String> {
    let mut v: Vec<String> = report["layers"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|l| l["services"].as_array().unwrap())
        .filter(|s| s["action"] == "update" || s["action"] == "create")
        .map(|s| {
            s["name"]
                .as_str()
                .unwrap()
                .trim_start_matches(&format!("{NS}_"))
                .to_string()
        })
        .collect();
    v.sort();
    v
}

/// Vault's current KV version of one of the namespace's secrets (its metadata, read with the
/// root token from the keyring).
async fn vault_version(env: &Env, secret: &str) -> u64 {
    let k = sprocket_vault::Keyring::open(
        &env.s.dir.join(format!("keyrings/{NS}.age")),
        &env.s.home.join(".config/sprocket/identity.txt"),
    )
    .unwrap();
    let (s, v) = common::vault_api(
        HTTP_PORT,
        reqwest::Method::GET,
        &format!("sprocket/metadata/{NS}/{secret}"),
        Some(&k.root_token),
        None,
    )
    .await;
    assert_eq!(s, 200, "{v}");
    v["data"]["current_version"].as_u64().unwrap()
}

fn random(n: usize) -> String {
    let mut b = vec![0u8; n];
    std::fs::File::open("/dev/urandom")
        .unwrap()
        .read_exact(&mut b)
        .unwrap();
    b.iter()
        .map(|x| char::from(b"abcdefghijklmnopqrstuvwxyz0123456789"[*x as usize % 36]))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn secrets_from_source_to_running_tasks() {
    common::require_swarm();
    let env = setup();
    let _ = env.ctl(&["-q", "down", "--volumes"]);
    assert_eq!(env.ctl(&["-q", "vault", "keygen"]).code, 0);
    // Canaries: values that must never leave the source, Vault and Docker's secret store.
    let canary1 = format!("canaryONE{}", random(40));
    let canary2 = format!("canaryTWO{}", random(40));
    let revoked = format!("revoked-canaryTHREE{}", random(30));
    env.source(&format!("# the offline source\nDEMO_API_KEY={canary1}\n"));

    // 1. up from nothing: the demo's running task holds what `secrets ls` says.
    let up = env.ctl(&["-o", "json", "up", "--timeout", "180"]);
    assert_eq!(up.code, 0, "{}", up.stdout);
    let l = ls(&env);
    let live = live_fingerprints();
    for s in ["demo-api-key", "redis-password"] {
        assert_eq!(l[s]["version"], 1, "{s}: {}", l[s]);
        assert_eq!(
            live[s], l[s]["fingerprint"],
            "{s}: the task holds the listed version"
        );
        let tasks = l[s]["consumers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["service"] == "demo")
            .unwrap()["tasks"]
            .clone();
        assert_eq!(tasks.as_array().unwrap().len(), 1);
        assert_eq!(tasks[0]["version"], 1);
        assert_eq!(tasks[0]["current"], true);
    }
    assert_eq!(
        l["demo-api-key"]["vault_path"],
        format!("sprocket/{NS}/demo-api-key#value")
    );
    assert_eq!(
        l["demo-api-key"]["source"],
        "dotenv:".to_string() + env.s.dir.join("secrets.env").to_str().unwrap()
    );
    // Generated secrets differ from each other.
    assert_ne!(
        l["redis-password"]["fingerprint"],
        l["rabbitmq-admin-password"]["fingerprint"]
    );

    // 2. generated secrets are stable: sync and up keep them; up changes nothing at all.
    let sync = env.ctl(&["-o", "json", "secrets", "sync"]);
    assert_eq!(sync.code, 0, "{}", sync.stderr);
    for s in sync.json()["secrets"].as_array().unwrap() {
        assert_eq!(s["outcome"], "unchanged", "{s}");
        assert_eq!(s["version"], 1, "{s}");
    }
    let again = env.ctl(&["-o", "json", "up"]);
    assert_eq!(again.code, 0);
    assert_eq!(
        again.json()["calls"],
        serde_json::json!({ "create": 0, "update": 0, "remove": 0 })
    );
    assert_eq!(
        ls(&env)["redis-password"]["fingerprint"],
        l["redis-password"]["fingerprint"]
    );

    // 3. a bad source stops `up` and `sync` before anything changes: Vault and the swarm as
    //    they were.
    let (secrets_before, services_before) = (owned_secrets(), service_versions());
    let vault_before = vault_version(&env, "demo-api-key").await;
    env.source(&format!(
        "DEMO_API_KEY={canary2}\nOTHER=1\nDEMO_API_KEY=\"{}\n{}\"\n",
        &canary1[..20],
        &canary1[20..]
    ));
    for args in [&["up"][..], &["secrets", "sync"][..]] {
        let bad = env.ctl(args);
        assert_eq!(bad.code, 3, "{args:?}: {}", bad.stderr);
        let said = bad.stdout.clone() + &bad.stderr;
        assert!(said.contains("duplicate-key"), "{said}");
        assert!(
            said.contains("secrets.env:1") && said.contains("secrets.env:3"),
            "both lines: {said}"
        );
        assert!(said.contains("line-break"), "{said}");
        assert!(said.contains("Nothing was"), "{said}");
    }
    assert_eq!(owned_secrets(), secrets_before);
    assert_eq!(service_versions(), services_before);
    assert_eq!(vault_version(&env, "demo-api-key").await, vault_before);

    // 4. one changed value rolls exactly its consumer; its old Docker secret goes.
    env.source(&format!("DEMO_API_KEY={canary2}\n"));
    let up = env.ctl(&["-o", "json", "up", "--timeout", "120"]);
    assert_eq!(up.code, 0, "{}", up.stdout);
    let r = up.json();
    assert_eq!(changed(&r), ["demo"]);
    assert_eq!(
        r["calls"],
        serde_json::json!({ "create": 1, "update": 1, "remove": 1 })
    );
    let l2 = ls(&env);
    assert_eq!(l2["demo-api-key"]["version"], 2);
    assert_ne!(
        l2["demo-api-key"]["fingerprint"],
        l["demo-api-key"]["fingerprint"]
    );
    assert_eq!(
        live_fingerprints()["demo-api-key"],
        l2["demo-api-key"]["fingerprint"]
    );
    let names = owned_secrets();
    assert!(
        names.contains(&format!("{NS}_demo-api-key-v2")),
        "{names:?}"
    );
    assert!(
        !names.contains(&format!("{NS}_demo-api-key-v1")),
        "the old version is gone: {names:?}"
    );
    assert_eq!(vault_version(&env, "demo-api-key").await, 2);

    // 5. rotating a generated secret rolls exactly its consumers (Redis and the demo).
    let rot = env.ctl(&[
        "-o",
        "json",
        "secrets",
        "rotate",
        "redis-password",
        "--timeout",
        "120",
    ]);
    assert_eq!(rot.code, 0, "{}", rot.stdout);
    let rot = rot.json();
    assert_eq!(rot["result"], "rotated");
    assert_eq!(rot["to_version"], 2);
    assert_eq!(changed(&rot["deploy"]), ["demo", "redis"]);
    let l3 = ls(&env);
    assert_eq!(l3["redis-password"]["version"], 2);
    assert_eq!(l3["redis-password"]["fingerprint"], rot["fingerprint"]);
    assert_ne!(
        l3["redis-password"]["fingerprint"],
        l["redis-password"]["fingerprint"]
    );
    assert_eq!(live_fingerprints()["redis-password"], rot["fingerprint"]);
    assert!(!owned_secrets().contains(&format!("{NS}_redis-password-v1")));
    // The demo still reaches Redis with the new password.
    let (status, body) = get("demo.localhost", "/");
    assert_eq!(status, 200, "{body}");

    // 6. a rotation its consumer refuses goes back to the previous value: exit 5.
    env.source(&format!("DEMO_API_KEY={revoked}\n"));
    let refused = env.ctl(&[
        "-o",
        "json",
        "secrets",
        "rotate",
        "demo-api-key",
        "--timeout",
        "60",
    ]);
    assert_eq!(refused.code, 5, "{}", refused.stdout);
    let refused = refused.json();
    assert_eq!(refused["result"], "rolled-back");
    assert_eq!(refused["to_version"], 3);
    assert_eq!(refused["rollback"]["outcome"], "deployed");
    let l4 = ls(&env);
    assert_eq!(
        l4["demo-api-key"]["version"], 4,
        "the previous value, written again"
    );
    assert_eq!(
        l4["demo-api-key"]["fingerprint"], l2["demo-api-key"]["fingerprint"],
        "the same value as version 2"
    );
    assert_eq!(
        live_fingerprints()["demo-api-key"],
        l2["demo-api-key"]["fingerprint"]
    );
    assert_eq!(vault_version(&env, "demo-api-key").await, 4);
    assert!(!owned_secrets().contains(&format!("{NS}_demo-api-key-v3")));
    env.source(&format!("DEMO_API_KEY={canary2}\n"));
    let settled = env.ctl(&["-o", "json", "up"]);
    assert_eq!(settled.code, 0);
    assert_eq!(
        settled.json()["calls"]["update"],
        0,
        "Vault and the tasks agree"
    );

    // 7. the canaries never left the source, Vault and Docker's secret store.
    let mut seen = env.printed.borrow().clone();
    let services: Vec<String> = docker(&[
        "service",
        "ls",
        "--filter",
        &format!("label=io.sprocket.namespace={NS}"),
        "--format",
        "{{.Name}}",
    ])
    .lines()
    .map(str::to_string)
    .collect();
    for s in &services {
        seen.push_str(&docker(&["service", "inspect", s]));
        seen.push_str(&docker(&["service", "logs", "--raw", s]));
        for task in docker(&["service", "ps", "-q", s]).lines() {
            seen.push_str(&docker(&["inspect", task]));
        }
    }
    for c in docker(&[
        "ps",
        "-aq",
        "--filter",
        &format!("label=com.docker.stack.namespace={NS}"),
    ])
    .lines()
    {
        seen.push_str(&docker(&["inspect", c]));
    }
    for f in walk(&env.s.dir) {
        if f.file_name().is_some_and(|n| n == "secrets.env") {
            continue;
        }
        seen.push_str(&String::from_utf8_lossy(
            &std::fs::read(&f).unwrap_or_default(),
        ));
    }
    for canary in [&canary1, &canary2, &revoked] {
        assert!(
            !seen.contains(canary.as_str()),
            "a canary value left the source"
        );
        assert!(
            !seen.contains(&canary[..24]),
            "part of a canary value left the source"
        );
    }
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}
