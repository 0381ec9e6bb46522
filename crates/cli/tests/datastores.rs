//! Datastore logins made by `up`, on the real swarm with real RabbitMQ and OpenBao:
//!
//! - the demo's `access: { rabbitmq: {} }` gives it its own user `demo` on its own vhost `demo`,
//!   with a generated password kept in Vault: from its task, it logs in and opens its vhost;
//!   `guest` is refused, and its own user cannot open another vhost;
//! - a second `up` runs no provisioning task and makes no call;
//! - `secrets rotate` of its password changes it in RabbitMQ and in the demo's task, under
//!   load with no login refused (the demo takes its user from `{access.rabbitmq.user}`: two
//!   alternating users); the same for PostgreSQL;
//! - dropping the access and `up --prune` removes the user and the vhost sprocketctl made, but
//!   never a user made by hand;
//! - a hand-made user of a wanted name is refused (exit 5, named), never taken over;
//! - the demo's `access: { postgres: {} }` gives it its own role owning its own database on the
//!   real PostgreSQL 15 outside the swarm (`sprocket-ds_demo`, over TLS, a SCRAM verifier): it
//!   writes there and cannot open a database made by hand; a database declared later shows in
//!   `plan`, and `up` creates it and updates the demo alone; a changed login hands the database
//!   over and `--prune` removes the old role (its other database is kept, handed to the
//!   administrator), never a hand-made one;
//! - the demo's `access: { redis: {} }` gives it its own Redis ACL user `demo` (keys and
//!   channels `demo:*`): it writes its own keys, not another's; Redis without a password
//!   answers NOAUTH and holds only the password's SHA-256; the user is made at run time and
//!   kept in Redis's aclfile: a restart of Redis keeps it; a rotation restarts nothing but the
//!   demo, none of its logins during the roll is refused, and the old password is refused after;
//! - the demo's `access: { s3: … }` gives it its own IAM user on the real SeaweedFS outside the
//!   swarm (`sprocket-ds-demo`) with a generated key pair and a policy on its buckets: it writes
//!   and reads `sprocket-main`, is refused writing the bucket it only reads and one it does not
//!   use; `--prune` after its access is dropped removes the user, never a bucket;
//! - the password never appears in any output, `docker service inspect` or task log.

mod common;

use common::{docker_status, http_get, provisioned, Scratch};
use serde_json::Value;

const NS: &str = "sprocket-ds";
const ENV: &str = "e2e-ds";
const HTTP_PORT: u16 = 18380;
/// The demo's answer to `path` once `want` holds of it (it runs its checks again on every
/// request), or its last answer after 60 s: a slow login on a loaded machine, or Traefik still
/// routing to a task that is gone, is waited out; a real failure is still asserted on, with
/// what the demo said.
fn demo_until(path: &str, want: impl Fn(&Value) -> bool) -> Value {
    let end = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let mut last = None;
    loop {
        let (status, body) = http_get(HTTP_PORT, "demo.localhost", path);
        match serde_json::from_str::<Value>(&body) {
            Ok(v) if want(&v) => return v,
            Ok(v) => last = Some(v),
            Err(_) => {}
        }
        if std::time::Instant::now() >= end {
            return last.unwrap_or_else(|| {
                panic!("the demo does not answer {path} through Traefik: {status} {body}")
            });
        }
        std::thread::sleep(std::time::Duration::from_millis(250));
    }
}

/// The demo's first answer to `path` (JSON).
/// Asks the demo for `path` through its route every 100 ms until [`Load::finish`]: a
/// consumer logging in again and again while a rotation rolls it.
struct Load {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    handle: std::thread::JoinHandle<(usize, Vec<String>)>,
}

fn load(path: &'static str) -> Load {
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let handle = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let (mut ok, mut refused) = (0, Vec::new());
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                // Only the demo's own answers count: Traefik's 502 for a task going away says
                // nothing of a login.
                let (_, body) = http_get(HTTP_PORT, "demo.localhost", path);
                match serde_json::from_str::<Value>(&body) {
                    Ok(v) if v["ok"] == true => ok += 1,
                    // The first few say enough.
                    Ok(v) if refused.len() < 5 => refused.push(v["detail"].to_string()),
                    Ok(_) => refused.push(String::new()),
                    Err(_) => {}
                }
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
            (ok, refused)
        })
    };
    Load { stop, handle }
}

impl Load {
    /// How many of the demo's answers said its login worked, and what the others said.
    fn finish(self) -> (usize, Vec<String>) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        self.handle.join().unwrap()
    }
}

fn demo(path: &str) -> Value {
    demo_until(path, |_| true)
}

/// The demo's check `name` once `want` holds of it (or its last state after 60 s).
fn check_until(name: &str, want: impl Fn(&Value) -> bool) -> Value {
    let v = demo_until("/", |v| {
        v["checks"]
            .as_array()
            .is_some_and(|a| a.iter().any(|c| c["name"] == name && want(c)))
    });
    named_check(&v, name)
}

/// The demo's check `name` once it passes.
fn passing(name: &str) -> Value {
    check_until(name, |c| c["ok"] == true)
}

fn named_check(v: &Value, name: &str) -> Value {
    v["checks"]
        .as_array()
        .unwrap_or_else(|| panic!("no checks in {v}"))
        .iter()
        .find(|c| c["name"] == name)
        .cloned()
        .unwrap()
}

/// The names of this namespace's services (another test's leftovers are not this one's).
fn own_services() -> String {
    docker_status(&[
        "service",
        "ls",
        "--filter",
        &format!("label=io.sprocket.namespace={NS}"),
        "--format",
        "{{.Name}}",
    ])
    .1
}

/// `rabbitmqctl ARGS…` in the RabbitMQ container.
fn rabbitmqctl(args: &[&str]) -> String {
    let c = common::container_of(NS, "rabbitmq");
    let mut all = vec!["exec", c.as_str(), "rabbitmqctl", "-q"];
    all.extend_from_slice(args);
    let (ok, out) = docker_status(&all);
    assert!(ok, "rabbitmqctl {args:?}: {out}");
    out
}

fn users() -> Vec<String> {
    rabbitmqctl(&["list_users", "--formatter", "json"])
        .parse::<Value>()
        .ok()
        .and_then(|v| v.as_array().cloned())
        .unwrap_or_default()
        .iter()
        .filter_map(|u| u["user"].as_str().map(str::to_string))
        .collect()
}

fn vhosts() -> Vec<String> {
    rabbitmqctl(&["list_vhosts", "--formatter", "json"])
        .parse::<Value>()
        .ok()
        .and_then(|v| v.as_array().cloned())
        .unwrap_or_default()
        .iter()
        .filter_map(|u| u["name"].as_str().map(str::to_string))
        .collect()
}

/// `psql` in the server's maintenance database (see [`common::psql`]).
fn psql(sql: &str) -> String {
    common::psql("postgres", sql)
}

/// `redis-cli CMD…` in the Redis task, as the shared `default` login when `auth`.
fn redis_cli(auth: bool, cmd: &str) -> String {
    let c = common::container_of(NS, "redis");
    let login = if auth {
        "REDISCLI_AUTH=\"$(cat /run/secrets/redis-password)\" "
    } else {
        ""
    };
    docker_status(&["exec", &c, "sh", "-c", &format!("{login}redis-cli {cmd}")]).1
}

/// Hex SHA-256 of `v`, by the host's coreutils (not by the code under test).
/// Whether the local SeaweedFS has the IAM user `user` (asked as its administrator).
fn s3_user_exists(user: &str) -> bool {
    let admin = common::s3_admin();
    tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(admin.user_tags(user))
        .unwrap()
        .is_some()
}

fn sha256(v: &str) -> String {
    use std::io::Write;
    let mut child = std::process::Command::new("sha256sum")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("sha256sum runs");
    child.stdin.take().unwrap().write_all(v.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    String::from_utf8_lossy(&out.stdout)[..64].to_string()
}

#[test]
fn every_consumer_gets_its_own_login_made_by_up() {
    common::require_swarm();
    let s = Scratch::new(
        "ds",
        ENV,
        &format!("\n  {ENV}:\n    extends: offline\n    namespace: {NS}\n    http_port: {HTTP_PORT}\n    https_port: 18743\n    secrets_from: dotenv:secrets.env\n    disable: {{ n8n: \"not under test\" }}\n"),
    );
    let _ = s.ctl(&["-q", "down", "--volumes"]);
    // The PostgreSQL server outlives deploys (it is outside the swarm): what an earlier run
    // of this test left there goes first.
    let pg_clean = || {
        psql("DROP DATABASE IF EXISTS \"sprocket-ds_demo\" WITH (FORCE)");
        psql("DROP DATABASE IF EXISTS handmade_ds WITH (FORCE)");
        psql("DROP DATABASE IF EXISTS \"sprocket-ds_reports\" WITH (FORCE)");
        for role in [
            "sprocket-ds_demo_b",
            "sprocket-ds_demo",
            "sprocket-ds_demo2_b",
            "sprocket-ds_demo2",
            "handmade_ds_role",
        ] {
            psql(&format!("DROP ROLE IF EXISTS \"{role}\""));
        }
    };
    pg_clean();
    assert_eq!(s.ctl(&["-q", "vault", "keygen"]).code, 0);
    assert_eq!(s.ctl(&["-q", "secrets", "init-dotenv"]).code, 0);
    let mut printed = String::new();

    // 1. up from nothing: the demo's login is made before the demo starts.
    let up = s.ctl(&["-o", "json", "up", "--timeout", "180"]);
    printed.push_str(&(up.stdout.clone() + &up.stderr));
    assert_eq!(up.code, 0, "{}", up.stdout);
    let report = up.json();
    let p = provisioned(&report, "rabbitmq");
    assert_eq!(p["ran"], true);
    assert_eq!(
        p["logins"],
        serde_json::json!([{ "service": "demo", "user": "demo", "outcome": "created" }])
    );
    assert_eq!(p["made"], serde_json::json!(["vhost demo"]));
    let path: Vec<&str> = report["critical_path"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["step"].as_str().unwrap())
        .collect();
    // The provisioning is a step of the deploy, between RabbitMQ and the demo. Which of
    // RabbitMQ's health and its provisioning ended last (and so is on the critical path) is a
    // race on a loaded machine: `ran` above proves the step; the path holds one of them.
    assert!(
        path.iter()
            .any(|s| *s == format!("{NS}_rabbitmq (provision logins)")
                || *s == format!("{NS}_rabbitmq")),
        "{path:?}"
    );
    // Nothing of the one-off task is left.
    let services = own_services();
    assert!(!services.contains("provision"), "{services}");
    let (_, containers) = docker_status(&[
        "ps",
        "-aq",
        "--filter",
        &format!("label=io.sprocket.namespace={NS}"),
        "--filter",
        "label=io.sprocket.provisioned",
    ]);
    assert!(
        containers.is_empty(),
        "the task's container is gone: {containers}"
    );
    // The demo, from its own task: its own login works, guest and other vhosts do not.
    let check = passing("rabbitmq");
    assert_eq!(check["ok"], true, "{check}");
    assert_eq!(check["detail"], "logged in as demo on vhost demo");
    let guest = demo_until("/amqp?guest", |v| v["ok"] == false);
    assert_eq!(guest["ok"], false, "{guest}");
    assert!(
        guest["detail"].as_str().unwrap().contains("ACCESS_REFUSED"),
        "{guest}"
    );
    let other = demo_until("/amqp?vhost=/", |v| v["ok"] == false);
    assert_eq!(other["ok"], false, "{other}");
    assert!(
        other["detail"].as_str().unwrap().contains("NOT_ALLOWED"),
        "{other}"
    );
    assert!(users().contains(&"demo".to_string()));
    // Redis: the demo logs in as its own ACL user and writes under its prefix; another key is
    // refused; without a password Redis answers NOAUTH; Redis holds only the password's hash.
    let check = passing("redis");
    assert_eq!(check["ok"], true, "{check}");
    assert_eq!(check["detail"], "PONG; wrote and read demo:check as demo");
    let other = demo_until("/redis?key=core:session", |v| v["ok"] == false);
    assert_eq!(other["ok"], false, "{other}");
    assert!(
        other["detail"].as_str().unwrap().contains("NOPERM"),
        "{other}"
    );
    assert!(redis_cli(false, "PING").contains("NOAUTH"));
    let acl = redis_cli(true, "ACL LIST");
    let demo_pw = |when: &str| {
        let c = common::container_of(NS, "demo");
        let (ok, pw) = docker_status(&["exec", &c, "cat", "/run/secrets/redis-acl-password"]);
        assert!(
            ok && pw.len() >= 32,
            "{when}: the demo holds its Redis password"
        );
        pw
    };
    let redis_pw = demo_pw("after up");
    let line = acl
        .lines()
        .find(|l| l.starts_with("user demo on "))
        .unwrap_or_else(|| panic!("no user demo: {acl}"));
    for want in [
        format!(" #{} ", sha256(&redis_pw)),
        " ~demo:* ".into(),
        " &demo:* ".into(),
        " -@dangerous".into(),
    ] {
        assert!(line.contains(&want), "{want} in {line}");
    }
    // Made by `up`'s provisioning at run time, not part of Redis's spec (no consumer password
    // is mounted into Redis); kept in its aclfile on its volume: a restart of Redis keeps it.
    assert_eq!(
        provisioned(&report, "redis")["logins"],
        serde_json::json!([{ "service": "demo", "user": "demo", "outcome": "created" }])
    );
    let (_, redis_spec) = docker_status(&["service", "inspect", &format!("{NS}_redis")]);
    assert!(
        !redis_spec.contains("demo-redis-password"),
        "no consumer's password in Redis's spec"
    );
    let before = common::container_of(NS, "redis");
    let (ok, out) = docker_status(&[
        "service",
        "update",
        "--force",
        "--quiet",
        &format!("{NS}_redis"),
    ]);
    assert!(ok, "{out}");
    assert_ne!(common::container_of(NS, "redis"), before, "Redis restarted");
    let check = passing("redis");
    assert_eq!(check["ok"], true, "after Redis restarted: {check}");
    // PostgreSQL: its own role owns its own database (both named after the namespace), made
    // before it started, reached over TLS; a database made by hand is closed to it.
    let pg = provisioned(&report, "postgres");
    assert_eq!(pg["ran"], true);
    assert_eq!(pg["logins"][0]["user"], "sprocket-ds_demo");
    assert!(
        ["created", "unchanged", "updated"].contains(&pg["logins"][0]["outcome"].as_str().unwrap()),
        "{pg}"
    );
    let check = passing("postgres");
    assert_eq!(check["ok"], true, "{check}");
    assert!(
        check["detail"]
            .as_str()
            .unwrap()
            .starts_with("connected as sprocket-ds_demo to sprocket-ds_demo over TLS"),
        "{check}"
    );
    assert_eq!(
        psql("SELECT pg_get_userbyid(datdba), shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = 'sprocket-ds_demo'"),
        "sprocket-ds_demo|sprocketctl-sprocket-ds"
    );
    assert!(
        psql("SELECT rolpassword FROM pg_authid WHERE rolname = 'sprocket-ds_demo'")
            .starts_with("SCRAM-SHA-256$4096:"),
        "a SCRAM verifier is stored"
    );
    psql("DROP DATABASE IF EXISTS handmade_ds WITH (FORCE)");
    psql("CREATE DATABASE handmade_ds");
    psql("REVOKE ALL ON DATABASE handmade_ds FROM PUBLIC");
    let other = demo_until("/pg?database=handmade_ds", |v| v["ok"] == false);
    assert_eq!(other["ok"], false, "{other}");
    assert!(
        other["detail"]
            .as_str()
            .unwrap()
            .contains("permission denied"),
        "{other}"
    );
    // S3: its own user with its own key (both halves generated), made before it started: it
    // writes and reads its bucket; it is refused a bucket it only reads and one it does not use.
    let s3 = provisioned(&report, "s3");
    assert_eq!(s3["ran"], true, "{s3}");
    assert_eq!(s3["logins"][0]["user"], format!("{NS}-demo"), "{s3}");
    let check = passing("s3");
    assert_eq!(check["ok"], true, "{check}");
    assert_eq!(
        check["detail"],
        "wrote and read sprocket-main/demo-check.txt"
    );
    for bucket in ["sprocket-replays-main", "sprocket-image-gen-main"] {
        let r = demo(&format!("/s3?bucket={bucket}"));
        assert_eq!(r["ok"], false, "{r}");
        assert!(
            r["detail"].as_str().unwrap().contains("AccessDenied"),
            "{r}"
        );
    }
    let s3_secret = {
        let c = common::container_of(NS, "demo");
        let (ok, v) = docker_status(&["exec", &c, "cat", "/run/secrets/s3-secret-key"]);
        assert!(ok && v.len() >= 32, "the demo holds its S3 secret key");
        v
    };
    psql("DROP ROLE IF EXISTS handmade_ds_role");
    psql("CREATE ROLE handmade_ds_role LOGIN");
    let password = |when: &str| {
        let c = common::container_of(NS, "demo");
        let (ok, pw) = docker_status(&["exec", &c, "cat", "/run/secrets/rabbitmq-password"]);
        assert!(ok && pw.len() >= 32, "{when}: the demo holds its password");
        pw
    };
    let mut values = vec![password("after up"), redis_pw, s3_secret];

    // 2. a second up: no provisioning task, no call at all.
    let again = s.ctl(&["-o", "json", "up"]);
    printed.push_str(&(again.stdout.clone() + &again.stderr));
    assert_eq!(again.code, 0, "{}", again.stdout);
    let again = again.json();
    assert_eq!(
        again["calls"],
        serde_json::json!({ "create": 0, "update": 0, "remove": 0 })
    );
    for p in again["provisioned"].as_array().unwrap() {
        assert_eq!(p["ran"], false, "{p}");
    }
    let plan = s.ctl(&["-o", "json", "plan", "--detailed-exitcode"]);
    printed.push_str(&(plan.stdout.clone() + &plan.stderr));
    assert_eq!(plan.code, 0, "{}", plan.stdout);
    assert!(plan.json().get("provision").is_none());

    // 2a. a database declared for the demo: `plan` shows its provisioning, `up` creates it and
    //     updates the demo alone (nothing else restarts, no other datastore's task runs).
    s.edit(
        "          postgres: {}\n",
        "          postgres: { database: sprocket-ds_reports }\n",
    );
    s.edit(
        "DEMO_PG_DATABASE: \"{namespace}_demo\"",
        "DEMO_PG_DATABASE: \"{namespace}_reports\"",
    );
    let plan = s.ctl(&["-o", "json", "plan", "--detailed-exitcode"]);
    printed.push_str(&(plan.stdout.clone() + &plan.stderr));
    assert_eq!(plan.code, 2, "{}", plan.stdout);
    let plan = plan.json();
    assert_eq!(
        plan["provision"],
        serde_json::json!([{
            "datastore": "postgres",
            "logins": ["sprocket-ds_demo@sprocket-ds_reports (owner, alternating with sprocket-ds_demo_b)"],
            "why": plan["provision"][0]["why"],
        }]),
        "{plan}"
    );
    let added = s.ctl(&["-o", "json", "up", "--timeout", "120"]);
    printed.push_str(&(added.stdout.clone() + &added.stderr));
    assert_eq!(added.code, 0, "{}", added.stdout);
    let added = added.json();
    assert_eq!(
        provisioned(&added, "postgres")["made"],
        serde_json::json!(["database sprocket-ds_reports"])
    );
    for other in ["rabbitmq", "s3"] {
        assert_eq!(provisioned(&added, other)["ran"], false, "{added}");
    }
    let actions: Vec<(String, String)> = added["layers"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|l| l["services"].as_array().unwrap().clone())
        .map(|s| {
            (
                s["name"].as_str().unwrap().to_string(),
                s["action"].as_str().unwrap().to_string(),
            )
        })
        .filter(|(_, a)| a != "unchanged")
        .collect();
    assert_eq!(actions, [(format!("{NS}_demo"), "update".to_string())]);
    assert_eq!(added["calls"]["update"], 1, "{added}");
    let check = check_until("postgres", |c| {
        c["detail"]
            .as_str()
            .is_some_and(|d| d.starts_with("connected as sprocket-ds_demo to sprocket-ds_reports"))
    });
    assert!(
        check["detail"]
            .as_str()
            .unwrap()
            .starts_with("connected as sprocket-ds_demo to sprocket-ds_reports over TLS"),
        "{check}"
    );
    assert_eq!(
        psql(
            "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = 'sprocket-ds_reports'"
        ),
        "sprocket-ds_demo"
    );

    // 3. rotating the demo's password: RabbitMQ and the demo's new task agree on the new one.
    //    A provisioning task an interrupted run left behind is removed first.
    rabbitmqctl(&["add_user", "ops", "made-by-hand-ops-password"]);
    let leftover = format!("{NS}_provision-rabbitmq-dead00");
    let (ok, out) = docker_status(&[
        "service",
        "create",
        "--detach",
        "--name",
        &leftover,
        "--mode",
        "replicated-job",
        "--label",
        "io.sprocket.managed-by=sprocketctl",
        "--label",
        &format!("io.sprocket.namespace={NS}"),
        "--label",
        "io.sprocket.provisioned=rabbitmq",
        "sprocket-local/sprocketctl:0.1",
        "sprocketctl",
        "--version",
    ]);
    assert!(ok, "{out}");
    // The demo takes its user from `{access.rabbitmq.user}`: the new password goes to its
    // second login, `demo_b`, while its running task keeps logging in as `demo` (an AMQP
    // login on every request, every 100 ms, all through the roll: none refused); `demo` goes
    // once the old task is gone.
    let amqp = load("/amqp?vhost=demo");
    let rot = s.ctl(&[
        "-o",
        "json",
        "secrets",
        "rotate",
        "demo-rabbitmq-password",
        "--timeout",
        "120",
    ]);
    let (logged_in, refused) = amqp.finish();
    printed.push_str(&(rot.stdout.clone() + &rot.stderr));
    assert_eq!(rot.code, 0, "{}", rot.stdout);
    assert!(
        refused.is_empty() && logged_in >= 10,
        "every AMQP login during the roll worked ({logged_in} did, refused: {refused:?})"
    );
    let rot = rot.json();
    let p = provisioned(&rot["deploy"], "rabbitmq");
    assert_eq!(p["ran"], true);
    assert_eq!(
        p["logins"],
        serde_json::json!([{ "service": "demo", "user": "demo_b", "outcome": "created", "changed": ["demo kept for the roll"] }]),
        "{p}"
    );
    assert_eq!(
        p["retired"],
        serde_json::json!(["previous login demo"]),
        "{p}"
    );
    let u = users();
    assert!(
        u.contains(&"demo_b".to_string()) && !u.contains(&"demo".to_string()),
        "{u:?}"
    );
    let check = check_until("rabbitmq", |c| {
        c["detail"] == "logged in as demo_b on vhost demo"
    });
    assert_eq!(check["ok"], true, "after the rotation: {check}");
    let services = own_services();
    assert!(!services.contains(&leftover), "{services}");
    values.push(password("after the rotation"));
    // (Never `assert_ne!` on values: its failure prints both.)
    assert!(values[0] != values[1], "a new RabbitMQ password");
    // The same for its PostgreSQL password: a new SCRAM verifier in the server, the demo's new
    // task logs in with the new value, the old value no longer works.
    let pg_password = |when: &str| {
        let c = common::container_of(NS, "demo");
        let (ok, pw) = docker_status(&["exec", &c, "cat", "/run/secrets/postgres-password"]);
        assert!(
            ok && pw.len() >= 32,
            "{when}: the demo holds its PostgreSQL password"
        );
        pw
    };
    let before = pg_password("before the rotation");
    // Its second login, `sprocket-ds_demo_b`, gets the new password (a SCRAM verifier); the
    // running task keeps connecting as `sprocket-ds_demo` (and writing a row) every 100 ms all
    // through the roll, none refused; the old password is removed once that task is gone.
    let pg_load = load("/pg?database=sprocket-ds_reports");
    let rot = s.ctl(&[
        "-o",
        "json",
        "secrets",
        "rotate",
        "demo-postgres-password",
        "--timeout",
        "120",
    ]);
    let (connected, refused) = pg_load.finish();
    printed.push_str(&(rot.stdout.clone() + &rot.stderr));
    assert_eq!(rot.code, 0, "{}", rot.stdout);
    assert!(
        refused.is_empty() && connected >= 10,
        "every PostgreSQL login during the roll worked ({connected} did, refused: {refused:?})"
    );
    let rot = rot.json();
    let p = provisioned(&rot["deploy"], "postgres");
    assert_eq!(p["logins"][0]["user"], "sprocket-ds_demo_b", "{p}");
    assert_eq!(
        p["logins"][0]["changed"],
        serde_json::json!(["password", "sprocket-ds_demo kept for the roll"]),
        "{p}"
    );
    assert_eq!(
        p["retired"],
        serde_json::json!(["previous password of role sprocket-ds_demo"]),
        "{p}"
    );
    let check = check_until("postgres", |c| {
        c["detail"].as_str().is_some_and(|d| {
            d.starts_with("connected as sprocket-ds_demo_b to sprocket-ds_reports")
        })
    });
    assert_eq!(check["ok"], true, "after the rotation: {check}");
    let after = pg_password("after the rotation");
    assert!(before != after, "a new PostgreSQL password");
    assert!(
        psql("SELECT rolpassword FROM pg_authid WHERE rolname = 'sprocket-ds_demo_b'")
            .starts_with("SCRAM-SHA-256$4096:"),
        "a SCRAM verifier for the second login"
    );
    assert_eq!(
        psql("SELECT rolvaliduntil FROM pg_roles WHERE rolname = 'sprocket-ds_demo'"),
        "-infinity",
        "the first login is retired"
    );
    // The old value is refused by the server itself (over TCP and TLS, as a task would log in).
    let login = |user: &str, password: &str| {
        std::process::Command::new("psql")
            .args([
                "-X",
                "-At",
                &format!(
                    "host=127.0.0.1 port=5433 user={user} dbname=sprocket-ds_demo sslmode=require"
                ),
                "-c",
                "select 1",
            ])
            .env("PGPASSWORD", password)
            .output()
            .unwrap()
    };
    let old = login("sprocket-ds_demo", &before);
    assert!(
        !old.status.success()
            && String::from_utf8_lossy(&old.stderr).contains("password authentication failed"),
        "{}",
        String::from_utf8_lossy(&old.stderr)
    );
    let new = login("sprocket-ds_demo_b", &after);
    assert!(
        new.status.success(),
        "{}",
        String::from_utf8_lossy(&new.stderr)
    );
    values.push(before);
    values.push(after);
    // And its Redis password: Redis adds the new one to the demo's ACL user and keeps the old
    // one while the demo rolls — Redis itself does not restart, and the demo (an AUTH and a
    // write on every request, every 100 ms all through the roll) is never refused — then the
    // old one is removed and refused.
    let old = demo_pw("before the rotation");
    let redis_task = common::container_of(NS, "redis");
    let redis_load = load("/redis?key=demo:rotation");
    let rot = s.ctl(&[
        "-o",
        "json",
        "secrets",
        "rotate",
        "demo-redis-password",
        "--timeout",
        "120",
    ]);
    let (authed, refused) = redis_load.finish();
    printed.push_str(&(rot.stdout.clone() + &rot.stderr));
    assert_eq!(rot.code, 0, "{}", rot.stdout);
    assert!(
        refused.is_empty() && authed >= 10,
        "every Redis login during the roll worked ({authed} did, refused: {refused:?})"
    );
    assert_eq!(
        common::container_of(NS, "redis"),
        redis_task,
        "Redis did not restart"
    );
    let rot = rot.json();
    let p = provisioned(&rot["deploy"], "redis");
    assert_eq!(
        p["logins"][0]["changed"],
        serde_json::json!(["password", "previous password kept for the roll"]),
        "{p}"
    );
    assert_eq!(
        p["retired"],
        serde_json::json!(["previous password of ACL user demo"]),
        "{p}"
    );
    let check = passing("redis");
    assert_eq!(check["ok"], true, "after the rotation: {check}");
    let new = demo_pw("after the rotation");
    assert!(old != new, "a new Redis password");
    let c = common::container_of(NS, "redis");
    // The old value goes in on stdin: never in an argument or a variable of `docker exec`.
    let refused = {
        use std::io::Write;
        let mut child = std::process::Command::new("docker")
            .args(["exec", "-i", &c, "sh", "-c"])
            .arg("REDISCLI_AUTH=$(cat) exec redis-cli --user demo ping 2>&1")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("docker runs");
        child
            .stdin
            .take()
            .unwrap()
            .write_all(old.as_bytes())
            .unwrap();
        String::from_utf8_lossy(&child.wait_with_output().unwrap().stdout).to_string()
    };
    assert!(
        refused.contains("WRONGPASS"),
        "the old password is refused: {refused}"
    );
    values.push(old);
    values.push(new);

    // And its S3 key pair, under load: `secrets rotate demo-s3-secret-key` gives both halves
    // new values; the store holds the new key beside the previous one while the demo rolls, so
    // none of the demo's writes into its bucket (a thread sends one through the route every
    // 100 ms all along) is refused, and the previous key is removed once the old task is gone.
    let s3_pair = |when: &str| {
        let c = common::container_of(NS, "demo");
        let (ok_key, key) = docker_status(&["exec", &c, "cat", "/run/secrets/s3-access-key"]);
        let (ok_secret, secret) = docker_status(&["exec", &c, "cat", "/run/secrets/s3-secret-key"]);
        assert!(
            ok_key && ok_secret,
            "{when}: the demo holds its S3 key pair"
        );
        (key.trim().to_string(), secret.trim().to_string())
    };
    let pair_before = s3_pair("before the rotation");
    let writer = load("/s3?bucket=sprocket-main");
    let rot = s.ctl(&[
        "-o",
        "json",
        "secrets",
        "rotate",
        "demo-s3-secret-key",
        "--timeout",
        "120",
    ]);
    let (written, refused) = writer.finish();
    printed.push_str(&(rot.stdout.clone() + &rot.stderr));
    assert_eq!(rot.code, 0, "{}", rot.stdout);
    let rot = rot.json();
    assert!(
        refused.is_empty() && written >= 10,
        "every write during the roll succeeded ({written} written, refused: {refused:?})"
    );
    assert_eq!(
        rot["with"],
        serde_json::json!(["demo-s3-access-key"]),
        "{rot}"
    );
    let p = provisioned(&rot["deploy"], "s3");
    assert_eq!(
        p["logins"][0]["changed"],
        serde_json::json!(["key", "previous key kept for the roll"]),
        "{p}"
    );
    assert_eq!(
        p["retired"],
        serde_json::json!([format!("previous key of user {NS}-demo")]),
        "{p}"
    );
    let pair_after = s3_pair("after the rotation");
    assert!(pair_before.0 != pair_after.0, "a new key id");
    assert!(pair_before.1 != pair_after.1, "a new secret key");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let old = rt
        .block_on(
            common::s3_client(&pair_before.0, &pair_before.1)
                .get_object("sprocket-main", "demo-check.txt"),
        )
        .unwrap();
    assert_eq!(
        (old.status, old.code()),
        (403, Some("InvalidAccessKeyId")),
        "the previous key is refused after the roll"
    );
    let new = rt
        .block_on(
            common::s3_client(&pair_after.0, &pair_after.1)
                .get_object("sprocket-main", "demo-check.txt"),
        )
        .unwrap();
    assert_eq!(new.status, 200, "the new key reads the demo's bucket");
    let check = passing("s3");
    assert_eq!(check["ok"], true, "after the rotation: {check}");
    values.push(pair_before.1);
    values.push(pair_after.1);

    // 4. the demo no longer asks for RabbitMQ access and logs in to PostgreSQL as another
    //    role: `up --prune` removes its RabbitMQ user and vhost, never the hand-made `ops`; the
    //    database goes to the new role, the old role is removed, the hand-made role stays.
    s.edit(
        "          rabbitmq: {}\n          postgres: { database: sprocket-ds_reports }\n          s3: { buckets: { sprocket-main: readwrite, sprocket-replays-main: read } }\n",
        "          postgres: { user: sprocket-ds_demo2 }\n",
    );
    s.edit(
        "DEMO_PG_DATABASE: \"{namespace}_reports\"",
        "DEMO_PG_DATABASE: \"{namespace}_demo\"",
    );
    // Nor Redis access: its ACL user goes, never one made by hand (no owner mark).
    s.edit(
        "          redis: { password_file: /run/secrets/redis-acl-password }\n",
        "",
    );
    redis_cli(true, "ACL SETUSER ops on nopass ~ops:*");
    // (No RabbitMQ access, so no `{access.rabbitmq.user}`: `validate` would refuse it.)
    s.edit(
        "DEMO_AMQP_USER: \"{access.rabbitmq.user}\"",
        "DEMO_AMQP_USER: demo",
    );
    let pruned = s.ctl(&["-o", "json", "up", "--prune", "--timeout", "120"]);
    printed.push_str(&(pruned.stdout.clone() + &pruned.stderr));
    assert_eq!(pruned.code, 0, "{}", pruned.stdout);
    let pruned = pruned.json();
    assert_eq!(
        provisioned(&pruned, "rabbitmq")["removed"],
        serde_json::json!(["user demo_b", "vhost demo"])
    );
    assert_eq!(
        provisioned(&pruned, "redis")["removed"],
        serde_json::json!(["ACL user demo"])
    );
    let acl = redis_cli(true, "ACL LIST");
    assert!(
        acl.contains("user ops ") && !acl.contains("user demo "),
        "{acl}"
    );
    // S3: its user and key go; the buckets stay (they hold data).
    assert_eq!(
        provisioned(&pruned, "s3")["removed"],
        serde_json::json!([format!("user {NS}-demo")])
    );
    assert!(
        !s3_user_exists(&format!("{NS}-demo")),
        "the S3 user is gone"
    );
    let pg = provisioned(&pruned, "postgres");
    assert_eq!(
        pg["removed"],
        serde_json::json!([
            "role sprocket-ds_demo",
            "database sprocket-ds_reports kept (it holds data; owned by doadmin now, drop it by hand when it is not needed)",
            "role sprocket-ds_demo_b"
        ]),
        "{pg}"
    );
    // Its password is still at an even version: the new role's second login is the current one.
    assert_eq!(pg["logins"][0]["user"], "sprocket-ds_demo2_b");
    assert_eq!(
        pg["logins"][0]["changed"],
        serde_json::json!(["owner"]),
        "{pg}"
    );
    assert_eq!(
        psql("SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = 'sprocket-ds_demo'"),
        "sprocket-ds_demo2"
    );
    let roles = psql(
        "SELECT string_agg(rolname, ',' ORDER BY rolname) FROM pg_roles WHERE rolname LIKE '%ds_%'",
    );
    assert!(
        !roles.split(',').any(|r| r == "sprocket-ds_demo"),
        "{roles}"
    );
    assert!(roles.split(',').any(|r| r == "handmade_ds_role"), "{roles}");

    let u = users();
    assert!(!u.contains(&"demo".to_string()), "{u:?}");
    assert!(u.contains(&"ops".to_string()), "{u:?}");
    assert!(!vhosts().contains(&"demo".to_string()));

    // 5. a user of the wanted name made by hand is somebody else's: refused, named, untouched.
    rabbitmqctl(&["add_user", "demo", "made-by-hand-demo-password"]);
    s.edit(
        "          postgres: { user: sprocket-ds_demo2 }\n",
        "          rabbitmq: {}\n          postgres: { user: sprocket-ds_demo2 }\n",
    );
    let plan = s.ctl(&["-o", "json", "plan", "--detailed-exitcode"]);
    printed.push_str(&(plan.stdout.clone() + &plan.stderr));
    assert_eq!(plan.code, 2, "{}", plan.stdout);
    assert_eq!(
        plan.json()["provision"][0]["logins"],
        serde_json::json!(["demo@demo"])
    );
    let refused = s.ctl(&["-o", "json", "up", "--timeout", "120"]);
    printed.push_str(&(refused.stdout.clone() + &refused.stderr));
    assert_eq!(refused.code, 5, "{}", refused.stdout);
    let refused = refused.json();
    let reason = refused["failure"]["reason"].as_str().unwrap();
    assert!(
        reason.contains("RabbitMQ user `demo` (for `demo`) exists and was not made by sprocketctl"),
        "{reason}"
    );
    let demo_report = refused["layers"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|l| l["services"].as_array().unwrap().clone())
        .find(|s| s["name"] == format!("{NS}_demo"))
        .unwrap();
    assert_eq!(demo_report["state"], "not-started", "{demo_report}");

    // No value in any output, service spec, log or provisioning marker.
    let (_, markers) = docker_status(&[
        "config",
        "ls",
        "-q",
        "--filter",
        "label=io.sprocket.provisioned",
    ]);
    let mut marker_text = String::new();
    for id in markers.lines() {
        marker_text.push_str(&docker_status(&["config", "inspect", "--pretty", id]).1);
    }
    assert!(
        marker_text.contains("\"logins\""),
        "markers hold the job: {marker_text}"
    );
    for needle in values.iter().map(String::as_str).chain(["made-by-hand"]) {
        assert!(!marker_text.contains(needle), "a password in a marker");
        assert!(!printed.contains(needle), "a password was printed");
        for svc in ["demo", "rabbitmq", "redis"] {
            let (_, inspect) = docker_status(&["service", "inspect", &format!("{NS}_{svc}")]);
            assert!(!inspect.contains(needle), "a password in {svc}'s spec");
            let (_, logs) = docker_status(&["service", "logs", &format!("{NS}_{svc}")]);
            assert!(!logs.contains(needle), "a password in {svc}'s log");
        }
    }
    drop(s);
    pg_clean();
}
