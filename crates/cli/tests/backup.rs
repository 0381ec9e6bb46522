//! Backups on the real swarm, with real OpenBao, Redis, RabbitMQ, the PostgreSQL 15 and the
//! SeaweedFS outside the swarm:
//!
//! - canaries written first (a Redis key, a RabbitMQ queue, a PostgreSQL row in the demo's own
//!   database) are in the backup: each artefact decrypts with the operator's identity through
//!   the real `age` CLI, to what its tool writes (Redis's RDB with the canary key, `pg_dump`'s
//!   custom format with the row, RabbitMQ's definitions with the queue, Vault's gzip snapshot,
//!   the keyring byte for byte);
//! - no object in the bucket holds a canary or a password in clear; the manifest records every
//!   artefact's size and checksum, and `verify` checks them and decrypts each;
//! - `restore` after the canaries are lost: without `--force` nothing is replaced and what the
//!   targets hold is said (exit 7); with it the canaries are back and what was written since
//!   is gone; a lost keyring file comes back byte for byte;
//! - an object changed in the bucket fails `verify`, naming its component;
//! - a failed dump (PostgreSQL unreachable) fails `backup` naming the component, leaves nothing
//!   listed as complete and every service running;
//! - retention (keep 1 daily) removes the older backup of the day once a newer one completes —
//!   but after a rebuild keeps the lost platform's last backup, and `restore` naming none then
//!   refuses to guess between it and the new platform's;
//! - disaster (`down --volumes`, the keyring file deleted, `up` makes a new Vault with new keys
//!   and passwords): `restore --force` with the bucket and the identity brings back Vault's data
//!   with its original keys, the original passwords in the tasks, the datastores' data; the
//!   agent unseals the restored Vault after a restart;
//! - `drill` of a tampered backup fails naming the component; of a sound one it rebuilds the
//!   platform in a scratch namespace, restores every component (each says what it holds:
//!   the canaries' counts), checks it, removes it — its database and role on the PostgreSQL
//!   outside the swarm too — and keeps its result; the live platform is not touched.

mod common;

use common::{docker_status, Scratch};
use serde_json::Value;
use std::process::Command;

const NS: &str = "sprocket-bk";
const ENV: &str = "e2e-bk";
const BUCKET: &str = "sprocket-bk-backups";

fn block<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Runtime::new().unwrap().block_on(f)
}

/// Every object of the namespace in the bucket, with its bytes.
fn objects(s3: &sprocket_datastores::s3::Client) -> Vec<(String, Vec<u8>)> {
    common::bucket_objects(s3, BUCKET, &format!("{NS}/"))
}

fn age_decrypt(identity: &std::path::Path, bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut child = Command::new("age")
        .args(["-d", "-i"])
        .arg(identity)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("the age CLI runs (Debian's `age`)");
    let mut stdin = child.stdin.take().unwrap();
    let input = bytes.to_vec();
    let writer = std::thread::spawn(move || stdin.write_all(&input));
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap().unwrap();
    assert!(
        out.status.success(),
        "age -d: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

fn secret_in(svc: &str, file: &str) -> String {
    let c = common::container_of(NS, svc);
    let (ok, v) = docker_status(&["exec", &c, "cat", file]);
    assert!(ok && v.trim().len() >= 16, "{svc} holds {file}");
    v.trim().to_string()
}

/// `docker service ls` of the namespace, one line per service in `format`.
fn services_ls(format: &str) -> String {
    let (_, out) = docker_status(&[
        "service",
        "ls",
        "--filter",
        &format!("label=io.sprocket.namespace={NS}"),
        "--format",
        format,
    ]);
    out
}

fn replicas_running() -> Vec<String> {
    services_ls("{{.Name}} {{.Replicas}}")
        .lines()
        .map(str::to_string)
        .collect()
}

/// The keys of the namespace's drill results in the bucket.
fn drill_records(s3: &sprocket_datastores::s3::Client) -> Vec<String> {
    let prefix = sprocket_backup::layout::drills_prefix(NS);
    match block(s3.list(BUCKET, &prefix, None)) {
        Ok(l) => l.objects.into_iter().map(|(k, _)| k).collect(),
        Err(_) => Vec::new(),
    }
}

/// The live platform's services (ids, replicas): what a drill must not touch.
fn live_services() -> String {
    services_ls("{{.ID}} {{.Name}} {{.Replicas}}")
}

/// Nothing of a drill's scratch platform is left: no Docker object of its namespace, no login
/// or database on the PostgreSQL outside the swarm.
fn assert_scratch_gone(r: &Value) {
    let scratch = r["scratch"].as_str().unwrap();
    for kind in ["service", "network", "secret", "config", "volume"] {
        let (_, out) = docker_status(&[
            kind,
            "ls",
            "-q",
            "--filter",
            &format!("label=io.sprocket.namespace={scratch}"),
        ]);
        assert!(out.trim().is_empty(), "{kind}s of {scratch} left: {out}");
    }
    let left = common::psql(
        "postgres",
        &format!("SELECT count(*) FROM pg_database WHERE datname LIKE '{scratch}%'"),
    );
    assert_eq!(left.trim(), "0", "{scratch}'s database is dropped");
    let left = common::psql(
        "postgres",
        &format!("SELECT count(*) FROM pg_roles WHERE rolname LIKE '{scratch}%'"),
    );
    assert_eq!(left.trim(), "0", "{scratch}'s role is dropped");
}

#[test]
fn a_backup_holds_every_canary_encrypted_and_verify_catches_tampering() {
    common::require_swarm();
    let s = Scratch::new(
        "bk",
        ENV,
        &format!(
            "\n  {ENV}:\n    extends: offline\n    namespace: {NS}\n    http_port: 18580\n    https_port: 18943\n    secrets_from: dotenv:secrets.env\n    disable: {{ n8n: \"not under test\" }}\n    backup: {{ to: s3, bucket: {BUCKET}, at: off, keep: {{ daily: 1, weekly: 0, monthly: 0 }} }}\n"
        ),
    );
    let _ = s.ctl(&["-q", "down", "--volumes"]);
    // A failed drill's scratch platform would load the machine under the tests after this one.
    let scratch_down = || {
        let copy = serde_json::json!({
            "namespace": format!("{NS}-drill"),
            "http_port": 18581,
            "https_port": 18944,
            "keyring": s.dir.join("drill-keyring.age"),
        })
        .to_string();
        let _ = s.ctl(&["--scratch", &copy, "-q", "down", "--volumes"]);
    };
    let _scratch_down = common::OnPanic(scratch_down);
    let s3 = common::s3_admin();
    // What an earlier run left in the bucket and in the shared PostgreSQL goes first.
    for (key, _) in objects(&s3) {
        block(s3.delete_object(BUCKET, &key)).unwrap();
    }
    for key in drill_records(&s3) {
        block(s3.delete_object(BUCKET, &key)).unwrap();
    }
    common::psql(
        "postgres",
        &format!("DROP DATABASE IF EXISTS \"{NS}_demo\""),
    );
    common::psql("postgres", &format!("DROP ROLE IF EXISTS \"{NS}_demo\""));
    assert_eq!(s.ctl(&["-q", "vault", "keygen"]).code, 0);
    assert_eq!(s.ctl(&["-q", "secrets", "init-dotenv"]).code, 0);
    let up = s.ctl(&["-q", "up", "--timeout", "240"]);
    assert_eq!(up.code, 0, "{}{}", up.stdout, up.stderr);
    let identity = s.home.join(".config/sprocket/identity.txt");
    let mut printed = String::new();

    // Canaries.
    let canary = format!("canary-{}", std::process::id());
    let redis = common::container_of(NS, "redis");
    let (ok, out) = docker_status(&[
        "exec",
        &redis,
        "sh",
        "-c",
        &format!(
            "REDISCLI_AUTH=\"$(cat /run/secrets/redis-password)\" redis-cli SET bk:canary {canary}"
        ),
    ]);
    assert!(ok && out.contains("OK"), "{out}");
    let rabbit = common::container_of(NS, "rabbitmq");
    let (ok, out) = docker_status(&[
        "exec",
        &rabbit,
        "sh",
        "-c",
        "curl -sf -u \"admin:$(cat /run/secrets/rabbitmq-admin-password)\" -X PUT -H 'content-type: application/json' -d '{\"durable\":true}' http://localhost:15672/api/queues/demo/bk-canary-queue && echo made",
    ]);
    assert!(
        ok && out.contains("made"),
        "a queue on the demo's vhost: {out}"
    );
    let db = format!("{NS}_demo");
    common::psql(
        &db,
        &format!("SET ROLE \"{db}\"; CREATE TABLE bk_canary (v text); INSERT INTO bk_canary VALUES ('{canary}')"),
    );
    let secrets = [
        secret_in("redis", "/run/secrets/redis-password"),
        secret_in("rabbitmq", "/run/secrets/rabbitmq-admin-password"),
        secret_in("demo", "/run/secrets/postgres-password"),
    ];

    // 1. A backup: every artefact of the plan, complete, from a task that leaves nothing.
    let b = s.ctl(&["-o", "json", "backup"]);
    printed.push_str(&(b.stdout.clone() + &b.stderr));
    assert_eq!(b.code, 0, "{}{}", b.stdout, b.stderr);
    let report = b.json();
    assert_eq!(report["complete"], true, "{report}");
    let components: Vec<&str> = report["artefacts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["component"].as_str().unwrap())
        .collect();
    assert_eq!(
        components,
        [
            "vault",
            "vault-keyring",
            "redis:redis",
            "rabbitmq:rabbitmq",
            &format!("postgres:{db}")
        ]
    );
    let first = report["id"].as_str().unwrap().to_string();
    let (_, services) = docker_status(&["service", "ls", "--format", "{{.Name}}"]);
    assert!(!services.contains("backup"), "the task is gone: {services}");

    // 2. The bucket holds ciphertext only; each decrypts (real age CLI) to its tool's format.
    let stored = objects(&s3);
    assert_eq!(stored.len(), components.len() + 1, "artefacts and manifest");
    for (key, body) in &stored {
        for v in secrets.iter().chain([&canary]) {
            assert!(
                !contains(body, v.as_bytes()),
                "{key} holds a value in clear"
            );
        }
    }
    let object = |suffix: &str| -> Vec<u8> {
        stored
            .iter()
            .find(|(k, _)| k.starts_with(&format!("{NS}/{first}/")) && k.ends_with(suffix))
            .unwrap_or_else(|| panic!("no {suffix} in the bucket"))
            .1
            .clone()
    };
    let rdb = age_decrypt(&identity, &object("redis-redis.rdb.age"));
    assert!(rdb.starts_with(b"REDIS"), "an RDB");
    assert!(contains(&rdb, canary.as_bytes()), "the Redis canary");
    let dump = age_decrypt(&identity, &object(&format!("postgres-{db}.dump.age")));
    assert!(dump.starts_with(b"PGDMP"), "pg_dump's custom format");
    assert!(contains(&dump, b"bk_canary"), "the canary table");
    let defs: Value = serde_json::from_slice(&age_decrypt(
        &identity,
        &object("rabbitmq-rabbitmq.json.age"),
    ))
    .unwrap();
    assert!(
        defs["queues"]
            .as_array()
            .unwrap()
            .iter()
            .any(|q| q["name"] == "bk-canary-queue" && q["vhost"] == "demo"),
        "the queue in the definitions"
    );
    assert!(
        defs["users"]
            .as_array()
            .unwrap()
            .iter()
            .any(|u| u["name"] == "demo"),
        "the demo's user (with its password hash) in the definitions"
    );
    let snap = age_decrypt(&identity, &object("vault.snap.age"));
    assert_eq!(&snap[..2], &[0x1f, 0x8b], "Vault's snapshot is gzip");
    let keyring = std::fs::read(s.dir.join(format!("keyrings/{NS}.age"))).unwrap();
    assert_eq!(
        age_decrypt(&identity, &object("vault-keyring.keyring.age")),
        keyring,
        "the keyring, byte for byte"
    );
    let manifest: Value = serde_json::from_slice(&object("manifest.json")).unwrap();
    assert_eq!(manifest["id"], first.as_str());
    assert_eq!(manifest["artefacts"].as_array().unwrap().len(), 5);

    // 3. ls and verify.
    let ls = s.ctl(&["-o", "json", "backup", "ls"]);
    assert_eq!(ls.code, 0, "{}", ls.stderr);
    let listed = ls.json();
    assert_eq!(listed["backups"][0]["id"], first.as_str());
    assert_eq!(listed["backups"][0]["complete"], true);
    let v = s.ctl(&[
        "-o",
        "json",
        "backup",
        "verify",
        "--identity",
        identity.to_str().unwrap(),
    ]);
    assert_eq!(v.code, 0, "{}{}", v.stdout, v.stderr);
    let verified = v.json();
    assert_eq!(verified["ok"], true, "{verified}");
    for a in verified["artefacts"].as_array().unwrap() {
        assert!(a["plain_bytes"].as_u64().unwrap() > 0, "{a}");
    }

    // 4. Restore: the canaries are lost and other data written; without --force nothing is
    // replaced (and what is there is said), with it every canary is back, the data written
    // since is gone, and the demo's own logins still work.
    let redis_cli = |cmd: &str| -> String {
        let (_, out) = docker_status(&[
            "exec",
            &redis,
            "sh",
            "-c",
            &format!("REDISCLI_AUTH=\"$(cat /run/secrets/redis-password)\" redis-cli {cmd}"),
        ]);
        out.trim().to_string()
    };
    assert_eq!(redis_cli("DEL bk:canary"), "1");
    assert_eq!(redis_cli("SET bk:after later"), "OK");
    common::psql(&db, &format!("SET ROLE \"{db}\"; DROP TABLE bk_canary"));
    let (ok, out) = docker_status(&[
        "exec",
        &rabbit,
        "sh",
        "-c",
        "curl -sf -u \"admin:$(cat /run/secrets/rabbitmq-admin-password)\" -X DELETE http://localhost:15672/api/queues/demo/bk-canary-queue && echo gone",
    ]);
    assert!(ok && out.contains("gone"), "{out}");
    let id_arg = identity.to_str().unwrap();
    // The datastores alone: Redis holds keys, so nothing is replaced.
    let held = s.ctl(&[
        "-o",
        "json",
        "restore",
        "--only",
        "redis,rabbitmq,postgres",
        "--identity",
        id_arg,
    ]);
    printed.push_str(&(held.stdout.clone() + &held.stderr));
    assert_eq!(held.code, 7, "{}{}", held.stdout, held.stderr);
    let h = held.json();
    assert!(
        h["held"]
            .as_array()
            .unwrap()
            .iter()
            .any(|x| x[0] == "redis:redis" && x[1].as_str().unwrap().ends_with("keys")),
        "{h}"
    );
    assert!(h["restored"].as_array().unwrap().is_empty(), "{h}");
    // Everything: Vault holds data, so nothing is even looked at, and everything is said.
    let held = s.ctl(&["-o", "json", "restore", "--identity", id_arg]);
    assert_eq!(held.code, 7, "{}{}", held.stdout, held.stderr);
    let h = held.json();
    assert_eq!(h["held"][0][0], "vault", "{h}");
    assert!(h["restored"].as_array().unwrap().is_empty(), "{h}");
    assert_eq!(
        redis_cli("GET bk:after"),
        "later",
        "nothing replaced without --force"
    );
    let restored = s.ctl(&["-o", "json", "restore", "--force", "--identity", id_arg]);
    printed.push_str(&(restored.stdout.clone() + &restored.stderr));
    assert_eq!(restored.code, 0, "{}{}", restored.stdout, restored.stderr);
    let r = restored.json();
    let back: Vec<&str> = r["restored"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["component"].as_str().unwrap())
        .collect();
    // The datastores first (their task logs in with what they hold now), then Vault in place
    // (its own snapshot, its own keys), then `up`, which finds nothing to change.
    assert_eq!(
        back,
        [
            "redis:redis",
            "rabbitmq:rabbitmq",
            &format!("postgres:{db}"),
            "vault",
            "vault-keyring"
        ],
        "{r}"
    );
    assert_eq!(r["up"]["calls"]["update"], 0, "{}", r["up"]);
    assert_eq!(
        redis_cli("GET bk:canary"),
        canary,
        "the Redis canary is back"
    );
    assert_eq!(
        redis_cli("EXISTS bk:after"),
        "0",
        "what was written since is gone"
    );
    assert!(redis_cli("INFO replication").contains("role:master"));
    assert_eq!(
        common::psql(&db, "SELECT v FROM bk_canary").trim(),
        canary,
        "the row is back"
    );
    let (ok, out) = docker_status(&[
        "exec",
        &rabbit,
        "sh",
        "-c",
        "curl -sf -u \"admin:$(cat /run/secrets/rabbitmq-admin-password)\" http://localhost:15672/api/queues/demo/bk-canary-queue",
    ]);
    assert!(
        ok && out.contains("bk-canary-queue"),
        "the queue is back: {out}"
    );
    // The keyring file lost on this machine comes back byte for byte.
    let keyring_path = s.dir.join(format!("keyrings/{NS}.age"));
    std::fs::remove_file(&keyring_path).unwrap();
    let k = s.ctl(&[
        "-o",
        "json",
        "restore",
        "--only",
        "vault-keyring",
        "--identity",
        id_arg,
    ]);
    assert_eq!(k.code, 0, "{}{}", k.stdout, k.stderr);
    assert_eq!(std::fs::read(&keyring_path).unwrap(), keyring);

    // 4b. RabbitMQ alone after a rotation: the definitions bring back the backup's users, the
    //     retired first login `demo` (and its old password) among them; `restore` then has
    //     `up` provision the logins again, which retires it once more.
    let rabbit_users = || {
        let (_, out) = docker_status(&[
            "exec",
            &common::container_of(NS, "rabbitmq"),
            "rabbitmqctl",
            "-q",
            "list_users",
        ]);
        out.lines()
            .filter_map(|l| l.split_whitespace().next())
            .map(String::from)
            .collect::<Vec<_>>()
    };
    let rot = s.ctl(&[
        "-o",
        "json",
        "secrets",
        "rotate",
        "demo-rabbitmq-password",
        "--timeout",
        "120",
    ]);
    printed.push_str(&(rot.stdout.clone() + &rot.stderr));
    assert_eq!(rot.code, 0, "{}{}", rot.stdout, rot.stderr);
    let u = rabbit_users();
    assert!(
        u.contains(&"demo_b".to_string()) && !u.contains(&"demo".to_string()),
        "{u:?}"
    );
    let only = s.ctl(&[
        "-o",
        "json",
        "restore",
        "--only",
        "rabbitmq",
        "--force",
        "--identity",
        id_arg,
    ]);
    printed.push_str(&(only.stdout.clone() + &only.stderr));
    assert_eq!(only.code, 0, "{}{}", only.stdout, only.stderr);
    let r = only.json();
    let pr = common::provisioned(&r["up"], "rabbitmq");
    assert_eq!(pr["ran"], true, "{pr}");
    assert_eq!(
        pr["retired"],
        serde_json::json!(["previous login demo"]),
        "{pr}"
    );
    let u = rabbit_users();
    assert!(
        u.contains(&"demo_b".to_string()) && !u.contains(&"demo".to_string()),
        "the retired login stays retired: {u:?}"
    );

    // 5. A failed dump: PostgreSQL unreachable. Named, nothing complete left, all running.
    let before = replicas_running();
    s.edit(
        "postgres: { host: host.docker.internal, port: 5433 }",
        "postgres: { host: host.docker.internal, port: 5439 }",
    );
    let failed = s.ctl(&["-o", "json", "backup"]);
    printed.push_str(&(failed.stdout.clone() + &failed.stderr));
    assert_ne!(failed.code, 0);
    let f = failed.json();
    assert_eq!(f["complete"], false);
    assert_eq!(f["failed"], format!("postgres:{db}").as_str(), "{f}");
    assert!(f["error"].as_str().unwrap().contains("pg_dump"), "{f}");
    s.edit(
        "postgres: { host: host.docker.internal, port: 5439 }",
        "postgres: { host: host.docker.internal, port: 5433 }",
    );
    assert_eq!(replicas_running(), before, "every service kept running");
    let ls = s.ctl(&["-o", "json", "backup", "ls"]).json();
    let ids: Vec<&str> = ls["backups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [first.as_str()], "the failed one left nothing");

    // 6. Tampering: one flipped byte in the Redis artefact fails verify, naming it.
    let key = format!("{NS}/{first}/redis-redis.rdb.age");
    let mut bytes = object("redis-redis.rdb.age");
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x01;
    block(s3.put_object(BUCKET, &key, bytes)).unwrap();
    let v = s.ctl(&[
        "-o",
        "json",
        "backup",
        "verify",
        "--identity",
        identity.to_str().unwrap(),
    ]);
    assert_ne!(v.code, 0);
    let bad: Vec<Value> = v.json()["artefacts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["ok"] == false)
        .cloned()
        .collect();
    assert_eq!(bad.len(), 1, "{bad:?}");
    assert_eq!(bad[0]["component"], "redis:redis");
    assert!(
        bad[0]["problem"]
            .as_str()
            .unwrap()
            .contains("changed after the backup"),
        "{bad:?}"
    );

    // 6b. A drill of the tampered backup fails before it builds anything, naming the
    // component; the live platform is not touched.
    let live_before = live_services();
    let d = s.ctl(&["-o", "json", "drill", "--from", &first]);
    printed.push_str(&(d.stdout.clone() + &d.stderr));
    assert_eq!(d.code, 1, "{}{}", d.stdout, d.stderr);
    let r = d.json();
    assert_eq!(r["ok"], false);
    assert_eq!(r["failed"], "redis:redis", "{r}");
    assert!(r["error"].as_str().unwrap().contains("redis:redis"), "{r}");
    assert_eq!(
        r["steps"].as_array().unwrap().len(),
        1,
        "only the backup's check: {r}"
    );
    assert_scratch_gone(&r);
    assert_eq!(
        live_services(),
        live_before,
        "the live platform is not touched"
    );

    // 7. Retention (keep 1 daily): a second backup of the day removes the first.
    let second = s.ctl(&["-o", "json", "backup"]);
    printed.push_str(&(second.stdout.clone() + &second.stderr));
    assert_eq!(second.code, 0, "{}", second.stderr);
    let r = second.json();
    assert_eq!(r["removed_by_retention"], serde_json::json!([first]));
    let ls = s.ctl(&["-o", "json", "backup", "ls"]).json();
    assert_eq!(ls["backups"].as_array().unwrap().len(), 1);
    assert_eq!(ls["backups"][0]["id"], r["id"]);
    assert!(!objects(&s3).iter().any(|(k, _)| k.contains(&first)));

    // 7b. A drill of the newest backup: rebuilt in a scratch namespace, every component
    // restored with what it held (the canaries' counts), checked, taken down — logins and
    // database on the PostgreSQL outside the swarm too — and its result kept in the bucket.
    let live_before = live_services();
    let d = s.ctl(&["-o", "json", "drill"]);
    printed.push_str(&(d.stdout.clone() + &d.stderr));
    assert_eq!(d.code, 0, "{}{}", d.stdout, d.stderr);
    let r = d.json();
    eprintln!("the drill measured: {r}");
    assert_eq!(r["ok"], true, "{r}");
    assert_eq!(r["backup"], second.json()["id"]);
    assert_eq!(r["scratch"], format!("{NS}-drill"));
    let holds = |c: &str| -> String {
        r["components"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["component"] == c)
            .unwrap_or_else(|| panic!("{c} restored: {r}"))["holds"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert!(
        holds("vault").contains(&format!("secrets of `{NS}` readable, "))
            && !holds("vault").starts_with("0 "),
        "{r}"
    );
    assert_ne!(holds("redis:redis"), "nothing", "{r}");
    // As many tables as the live database (the canary's and the demo's own), with their rows.
    let tables = common::psql(
        &db,
        "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'",
    );
    let pg = holds(&format!("postgres:{db}"));
    assert!(
        pg.starts_with(&format!("{} tables, ", tables.trim())),
        "{pg}"
    );
    assert!(!pg.ends_with(" 0 rows"), "{pg}");
    assert_ne!(holds("rabbitmq:rabbitmq"), "nothing", "{r}");
    let steps: Vec<&str> = r["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        steps,
        ["check-backup", "rebuild", "restore", "check", "teardown"]
    );
    assert!(
        r["steps"]
            .as_array()
            .unwrap()
            .iter()
            .all(|x| x["ok"] == true),
        "{r}"
    );
    assert!(r["rto_s"].as_f64().unwrap() > 0.0 && r["rpo_s"].as_f64().unwrap() < 3600.0);
    assert!(
        r["targets"]
            .as_array()
            .unwrap()
            .iter()
            .all(|t| t["met"] == true),
        "{r}"
    );
    assert_scratch_gone(&r);
    assert_eq!(
        live_services(),
        live_before,
        "the live platform is not touched"
    );
    // `check` shows the newest backup's age and the last drill.
    let c = s.ctl(&["-o", "json", "check"]).json();
    let finding = |kind: &str| -> Value {
        c["findings"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["kind"] == kind)
            .unwrap_or_else(|| panic!("a {kind} finding: {c}"))
            .clone()
    };
    assert_eq!(finding("backup")["severity"], "ok", "{c}");
    let dr = finding("drill");
    assert_eq!(dr["severity"], "ok", "{dr}");
    assert!(
        dr["detail"].as_str().unwrap().starts_with("last drill ")
            && dr["detail"].as_str().unwrap().contains(", RTO "),
        "{dr}"
    );
    let kept = drill_records(&s3);
    assert_eq!(kept.len(), 2, "both drills' results are kept: {kept:?}");
    assert!(kept
        .iter()
        .any(|k| k.ends_with(&format!("{}.json", r["id"].as_str().unwrap()))));

    // 8. Disaster: the platform with its volumes and the keyring file gone. `up` makes a new
    // Vault (new keys, new generated passwords) and empty datastores; `restore --force` with
    // only the bucket and the identity brings back Vault's data with its original keys and
    // passwords, the datastores' data, and rolls the services onto them.
    let complete = || -> Vec<String> {
        s.ctl(&["-o", "json", "backup", "ls"]).json()["backups"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|b| b["complete"] == true)
            .map(|b| b["id"].as_str().unwrap().to_string())
            .collect()
    };
    let good = complete()[0].clone();
    assert_eq!(s.ctl(&["-q", "down", "--volumes"]).code, 0);
    std::fs::remove_file(&keyring_path).unwrap();
    let up = s.ctl(&["-q", "up", "--timeout", "240"]);
    assert_eq!(up.code, 0, "{}{}", up.stdout, up.stderr);
    // A backup of the rebuilt, still empty platform (as the runner's missed run would take an
    // hour after `up`) is now the newest: `restore` naming none refuses to guess, names both,
    // and changes nothing.
    let empty = s.ctl(&["-o", "json", "backup"]);
    assert_eq!(empty.code, 0, "{}{}", empty.stdout, empty.stderr);
    let empty = empty.json()["id"].as_str().unwrap().to_string();
    // Retention (one a day here) keeps the lost platform's last backup beside it.
    assert_eq!(complete()[..2], [empty.clone(), good.clone()]);
    let unnamed = s.ctl(&["restore", "--force", "--identity", id_arg]);
    printed.push_str(&(unnamed.stdout.clone() + &unnamed.stderr));
    assert_eq!(
        unnamed.code,
        7,
        "{}{}\nbackups: {:?}",
        unnamed.stdout,
        unnamed.stderr,
        complete()
    );
    for want in [
        format!("the newest backup, `{empty}`, was taken"),
        "may hold the new, still empty platform".to_string(),
        format!("sprocketctl restore --from {good}"),
    ] {
        assert!(unnamed.stderr.contains(&want), "{want}: {}", unnamed.stderr);
    }
    // A drill naming none would prove the empty one restores: the same refusal, before it
    // builds anything.
    let drill = s.ctl(&["drill", "--identity", id_arg]);
    printed.push_str(&(drill.stdout.clone() + &drill.stderr));
    assert_eq!(drill.code, 7, "{}{}", drill.stdout, drill.stderr);
    assert!(
        drill
            .stderr
            .contains(&format!("sprocketctl drill --from {good}")),
        "{}",
        drill.stderr
    );
    assert_ne!(
        std::fs::read(&keyring_path).unwrap(),
        keyring,
        "a new Vault, with new keys"
    );
    assert_ne!(
        secret_in("redis", "/run/secrets/redis-password"),
        secrets[0],
        "a new Redis password"
    );
    let held = s.ctl(&[
        "-o",
        "json",
        "restore",
        "--from",
        &good,
        "--identity",
        id_arg,
    ]);
    assert_eq!(held.code, 7, "{}{}", held.stdout, held.stderr);
    assert!(
        held.json()["held"]
            .as_array()
            .unwrap()
            .iter()
            .any(|x| x[0] == "vault"),
        "{}",
        held.stdout
    );
    let back = s.ctl(&[
        "-o",
        "json",
        "restore",
        "--force",
        "--from",
        &good,
        "--identity",
        id_arg,
    ]);
    printed.push_str(&(back.stdout.clone() + &back.stderr));
    assert_eq!(back.code, 0, "{}{}", back.stdout, back.stderr);
    let r = back.json();
    let components: Vec<&str> = r["restored"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["component"].as_str().unwrap())
        .collect();
    for c in ["vault", "vault-keyring", "redis:redis", "rabbitmq:rabbitmq"] {
        assert!(components.contains(&c), "{c} restored: {r}");
    }
    assert_eq!(
        r["up"]["outcome"], "deployed",
        "up after the restore: {}",
        r["up"]
    );
    assert_eq!(
        std::fs::read(&keyring_path).unwrap(),
        keyring,
        "the original keyring"
    );
    // The original passwords, out of Vault, in the tasks again; the data with them.
    assert_eq!(
        secret_in("redis", "/run/secrets/redis-password"),
        secrets[0]
    );
    assert_eq!(
        secret_in("rabbitmq", "/run/secrets/rabbitmq-admin-password"),
        secrets[1]
    );
    let redis = common::container_of(NS, "redis");
    let (_, got) = docker_status(&[
        "exec",
        &redis,
        "sh",
        "-c",
        "REDISCLI_AUTH=\"$(cat /run/secrets/redis-password)\" redis-cli GET bk:canary",
    ]);
    assert_eq!(
        got.trim(),
        canary,
        "the Redis canary, after Redis restarted on its password"
    );
    assert_eq!(common::psql(&db, "SELECT v FROM bk_canary").trim(), canary);
    // The agent keeps the restored Vault unsealed with the original keys.
    let (ok, out) = docker_status(&["service", "update", "-q", "--force", &format!("{NS}_vault")]);
    assert!(ok, "{out}");
    let mut unsealed = false;
    for _ in 0..60 {
        let st = s.ctl(&["-o", "json", "vault", "status"]);
        if st.code == 0 && st.json()["sealed"] == false {
            unsealed = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
    assert!(unsealed, "the agent unsealed the restored Vault");

    // 9. Scheduled backups: with `at` the next minute but one (UTC), the runner `up` makes
    // takes a backup then; a second `up` leaves it alone (no call); `at: off` removes it.
    let before = complete();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let minute = ((now + 90) % 86_400) / 60;
    let at = format!("at: \"{:02}:{:02}\",", minute / 60, minute % 60);
    s.edit("at: off,", &at);
    let up = s.ctl(&["-o", "json", "up", "--timeout", "240"]);
    printed.push_str(&(up.stdout.clone() + &up.stderr));
    assert_eq!(up.code, 0, "{}{}", up.stdout, up.stderr);
    let schedule = up.json()["backup_schedule"].clone();
    assert_eq!(schedule["action"], "created", "{schedule}");
    let runner = format!("{NS}_backup-schedule");
    let mut taken = None;
    for _ in 0..120 {
        taken = complete().into_iter().find(|id| !before.contains(id));
        if taken.is_some() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_secs(2));
    }
    let (_, log) = docker_status(&["service", "logs", "--raw", &runner]);
    printed.push_str(&log);
    let taken =
        taken.unwrap_or_else(|| panic!("no scheduled backup within 240 s; its log:\n{log}"));
    assert!(log.contains(&format!("backup {taken}: taking it")), "{log}");
    let verified = s.ctl(&[
        "-o",
        "json",
        "backup",
        "verify",
        "--from",
        &taken,
        "--identity",
        id_arg,
    ]);
    assert_eq!(verified.code, 0, "{}{}", verified.stdout, verified.stderr);
    // The agent watches the runner (on its own backup network): its metrics say the newest
    // backup's age and that the run completed, and its finding is ok.
    let agent = format!("{}:9090", common::agent_address(NS));
    let mut metrics = String::new();
    for _ in 0..90 {
        metrics = common::run_status(
            "curl",
            &["-s", "-m", "5", &format!("http://{agent}/metrics")],
        )
        .1;
        if metrics.contains("sprocket_agent_backup_last_run_ok 1") {
            break;
        }
        std::thread::sleep(std::time::Duration::from_secs(1));
    }
    assert!(
        metrics.contains("sprocket_agent_backup_last_run_ok 1"),
        "{metrics}"
    );
    let age: i64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("sprocket_agent_backup_age_seconds "))
        .unwrap_or_else(|| panic!("no backup age in {metrics}"))
        .trim()
        .parse()
        .unwrap();
    assert!((0..600).contains(&age), "the newest backup's age: {age}");
    assert!(
        metrics.contains(
            "sprocket_agent_check_status{kind=\"backup\",subject=\"backup\",target=\"scheduled\"} 0"
        ),
        "{metrics}"
    );
    let again = s.ctl(&["-o", "json", "up", "--timeout", "240"]);
    assert_eq!(again.code, 0, "{}{}", again.stdout, again.stderr);
    let again = again.json();
    assert_eq!(again["backup_schedule"]["action"], "unchanged", "{again}");
    assert_eq!(
        again["calls"],
        serde_json::json!({ "create": 0, "update": 0, "remove": 0 }),
        "{again}"
    );
    s.edit(&at, "at: off,");
    let off = s.ctl(&["-o", "json", "up", "--timeout", "240"]);
    assert_eq!(off.code, 0, "{}{}", off.stdout, off.stderr);
    assert_eq!(off.json()["backup_schedule"]["action"], "removed");
    let (_, services) = docker_status(&["service", "ls", "--format", "{{.Name}}"]);
    assert!(!services.contains(&runner), "{services}");

    // No value ever printed.
    for v in secrets.iter() {
        assert!(!printed.contains(v.as_str()), "a secret was printed");
    }
}
