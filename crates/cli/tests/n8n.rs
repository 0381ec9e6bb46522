//! n8n for real, offline: n8n 1.64.3 from npm (`sprocket-local/n8n`, images/n8n) on the real
//! swarm, its data in its own database on the real PostgreSQL 15 outside the swarm, made by
//! `up` (`access: { postgres: {} }`):
//!
//! - `up` provisions its role and database, then n8n starts, migrates its schema there as its
//!   own role (its tables exist, owned by it) and becomes healthy;
//! - its `/webhook` route answers through Traefik (n8n's own answer), its UI route stays
//!   unpublished (its forward-auth gate does not run offline);
//! - a second `up` makes no call; the password appears in no output and no service spec;
//! - its volume is data (`backup: true`: its encryption key decrypts the credentials in its
//!   database): `backup` holds it encrypted, `restore --only volume` refuses to replace it
//!   without `--force` and with it puts it back as it was and restarts n8n on it.

mod common;

use common::{http_get, Scratch};

const NS: &str = "sprocket-n8n";
const ENV: &str = "e2e-n8n";
const HTTP_PORT: u16 = 18980;
const DB: &str = "sprocket-n8n_n8n";
const BUCKET: &str = "sprocket-n8n-backups";

#[test]
fn n8n_runs_offline_on_its_own_database() {
    common::require_swarm();
    let s = Scratch::new(
        "n8n",
        ENV,
        &format!(
            "\n  {ENV}:\n    extends: offline\n    namespace: {NS}\n    http_port: {HTTP_PORT}\n    https_port: 19843\n    secrets_from: dotenv:secrets.env\n    disable: {{ redis: \"n8n test\", rabbitmq: \"n8n test\", demo: \"n8n test\" }}\n    backup: {{ to: s3, bucket: {BUCKET}, at: off, keep: {{ daily: 1, weekly: 0, monthly: 0 }} }}\n"
        ),
    );
    let _ = s.ctl(&["-q", "down", "--volumes"]);
    assert_eq!(s.ctl(&["-q", "vault", "keygen"]).code, 0);
    // The server outlives deploys: what an earlier run left goes first.
    common::psql("postgres", &format!("DROP DATABASE IF EXISTS \"{DB}\""));
    common::psql("postgres", &format!("DROP ROLE IF EXISTS \"{DB}_b\""));
    common::psql("postgres", &format!("DROP ROLE IF EXISTS \"{DB}\""));
    assert_eq!(s.ctl(&["-q", "secrets", "init-dotenv"]).code, 0);
    let mut printed = String::new();

    let up = s.ctl(&["-o", "json", "up", "--timeout", "300"]);
    printed.push_str(&(up.stdout.clone() + &up.stderr));
    assert_eq!(up.code, 0, "{}\n{}", up.stdout, up.stderr);
    let report = up.json();
    let pg = common::provisioned(&report, "postgres");
    assert_eq!(pg["logins"][0]["user"], DB, "{pg}");
    assert_eq!(pg["logins"][0]["outcome"], "created", "{pg}");

    // n8n migrated its schema into its own database, as its own role (its health endpoint
    // answers while the migrations still run: on a busy machine they end a little later).
    let count = || -> i64 {
        common::psql(
            DB,
            "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'",
        )
        .parse()
        .unwrap()
    };
    let mut tables = count();
    for _ in 0..120 {
        if tables >= 20 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(500));
        tables = count();
    }
    assert!(tables >= 20, "n8n's tables in {DB}: {tables}");
    assert_eq!(
        common::psql(
            DB,
            "SELECT string_agg(DISTINCT tableowner, ',') FROM pg_tables WHERE schemaname = 'public'"
        ),
        DB
    );
    let migrations: i64 = common::psql(DB, "SELECT count(*) FROM migrations")
        .parse()
        .unwrap();
    assert!(migrations > 0, "n8n recorded its migrations");

    // Its webhook route reaches n8n's webhook handler through Traefik (an unregistered path:
    // n8n's own 404 in its own words, not Traefik's "404 page not found"; in n8n's first
    // seconds its HTTP server answers before the handler is there); its UI is not published.
    const TRAEFIK_404: &str = "404 page not found";
    let mut last = (0, String::new());
    for _ in 0..60 {
        last = http_get(HTTP_PORT, "n8n.localhost", "/webhook/sprocket-test");
        if last.1.contains("The requested webhook") {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(250));
    }
    assert_eq!(last.0, 404, "an unregistered webhook: {last:?}");
    assert!(
        last.1
            .contains("The requested webhook \\\"GET sprocket-test\\\" is not registered"),
        "n8n answers, not Traefik: {last:?}"
    );
    let ui = http_get(HTTP_PORT, "n8n.localhost", "/");
    assert_eq!(ui.0, 404, "{ui:?}");
    assert!(
        ui.1.contains(TRAEFIK_404),
        "the UI is not published: {ui:?}"
    );

    // A second up: nothing to do.
    let again = s.ctl(&["-o", "json", "up"]);
    printed.push_str(&(again.stdout.clone() + &again.stderr));
    assert_eq!(again.code, 0, "{}", again.stdout);
    assert_eq!(
        again.json()["calls"],
        serde_json::json!({ "create": 0, "update": 0, "remove": 0 })
    );

    // Its password: in no output and not in its service spec.
    let c = common::container_of(NS, "n8n");
    let (ok, pw) = common::docker_status(&["exec", &c, "cat", "/run/secrets/postgres-password"]);
    assert!(ok && pw.len() >= 32, "n8n holds its password");
    assert!(!printed.contains(&pw), "the password was printed");
    let (_, inspect) = common::docker_status(&["service", "inspect", &format!("{NS}_n8n")]);
    assert!(!inspect.contains(&pw), "the password in n8n's spec");
    assert!(inspect.contains("DB_POSTGRESDB_PASSWORD_FILE"));

    // Its password rotated: n8n takes its user from `{access.postgres.user}`, so it moves to
    // its second login, which acts as its role: n8n comes back healthy on it, and everything
    // in its database is still its role's.
    let rot = s.ctl(&[
        "-o",
        "json",
        "secrets",
        "rotate",
        "n8n-postgres-password",
        "--timeout",
        "300",
    ]);
    printed.push_str(&(rot.stdout.clone() + &rot.stderr));
    assert_eq!(rot.code, 0, "{}\n{}", rot.stdout, rot.stderr);
    let rot = rot.json();
    let pg = common::provisioned(&rot["deploy"], "postgres");
    assert_eq!(pg["logins"][0]["user"], format!("{DB}_b"), "{pg}");
    assert_eq!(
        pg["retired"],
        serde_json::json!([format!("previous password of role {DB}")]),
        "{pg}"
    );
    let (_, env) = common::docker_status(&[
        "service",
        "inspect",
        "--format",
        "{{json .Spec.TaskTemplate.ContainerSpec.Env}}",
        &format!("{NS}_n8n"),
    ]);
    assert!(env.contains(&format!("DB_POSTGRESDB_USER={DB}_b")), "{env}");
    assert_eq!(
        common::psql(
            DB,
            &format!("SELECT count(*) FROM pg_tables WHERE schemaname = 'public' AND tableowner <> '{DB}'")
        ),
        "0",
        "n8n's tables stay its role's"
    );
    let hook = http_get(HTTP_PORT, "n8n.localhost", "/webhook/sprocket-test");
    assert!(
        hook.1.contains("The requested webhook"),
        "n8n answers after the rotation: {hook:?}"
    );

    // Its volume in a backup, and back.
    volume_back(&s, &mut printed);
    let key: serde_json::Value =
        serde_json::from_str(&n8n_sh("cat /home/node/.n8n/config")).unwrap();
    let key = key["encryptionKey"].as_str().unwrap().to_string();
    assert!(key.len() >= 16);
    assert!(!printed.contains(&key), "n8n's encryption key was printed");

    // n8n goes from this environment: it was the external's last consumer here, so its
    // provisioning is idle — and with `--prune` it still runs once, to remove n8n's role. Its
    // database holds data: kept, handed to the administrator, and said so.
    s.edit(
        "demo: \"n8n test\" }",
        "demo: \"n8n test\", n8n: \"gone\" }",
    );
    let pruned = s.ctl(&["-o", "json", "up", "--prune", "--timeout", "120"]);
    assert_eq!(pruned.code, 0, "{}", pruned.stdout);
    let pruned = pruned.json();
    // (the idle provisioning ran)
    let pg = common::provisioned(&pruned, "postgres");
    assert_eq!(pg["ran"], true, "{pg}");
    assert_eq!(pg["removed"][0], format!("role {DB}"), "{pg}");
    assert!(
        pg["removed"][1]
            .as_str()
            .unwrap()
            .starts_with(&format!("database {DB} kept")),
        "{pg}"
    );
    assert_eq!(
        common::psql(
            "postgres",
            &format!("SELECT count(*) FROM pg_roles WHERE rolname = '{DB}'")
        ),
        "0"
    );
    assert_eq!(
        common::psql(
            "postgres",
            &format!("SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = '{DB}'")
        ),
        "doadmin"
    );
    // And once only: the next --prune has nothing to do there.
    let again = s.ctl(&["-o", "json", "up", "--prune"]);
    assert_eq!(again.code, 0, "{}", again.stdout);
    for p in again.json()["provisioned"].as_array().unwrap() {
        assert_eq!(p["ran"], false, "{p}");
    }

    drop(s);
    empty_bucket();
    common::psql("postgres", &format!("DROP DATABASE IF EXISTS \"{DB}\""));
    common::psql("postgres", &format!("DROP ROLE IF EXISTS \"{DB}\""));
}

/// A shell command in n8n's running container (as n8n's user): its output.
fn n8n_sh(cmd: &str) -> String {
    let c = common::container_of(NS, "n8n");
    let (ok, out) = common::docker_status(&["exec", &c, "sh", "-c", cmd]);
    assert!(ok, "{cmd}: {out}");
    out
}

/// The test's backups, deleted: (key, bytes) of every object under its namespace.
fn empty_bucket() -> Vec<(String, Vec<u8>)> {
    common::empty_bucket(BUCKET, &format!("{NS}/"))
}

fn volume_back(s: &Scratch, printed: &mut String) {
    empty_bucket();
    let canary = format!("canary-{}", std::process::id());
    n8n_sh(&format!("echo {canary} > /home/node/.n8n/bk-canary"));
    let config = n8n_sh("cat /home/node/.n8n/config");
    let stat = "stat -c '%n %U %a %Y' /home/node/.n8n/config /home/node/.n8n/bk-canary";
    let modes = n8n_sh(stat);
    let key: serde_json::Value = serde_json::from_str(&config).unwrap();
    let key = key["encryptionKey"].as_str().unwrap().to_string();
    let b = s.ctl(&["-o", "json", "backup"]);
    printed.push_str(&(b.stdout.clone() + &b.stderr));
    assert_eq!(b.code, 0, "{}{}", b.stdout, b.stderr);
    let report = b.json();
    let art = report["artefacts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["component"] == "volume:n8n-data")
        .cloned()
        .unwrap_or_else(|| panic!("n8n's volume in {report}"));
    assert!(art["bytes"].as_u64().unwrap() > 0, "{art}");
    let (_, services) = common::docker_status(&["service", "ls", "--format", "{{.Name}}"]);
    assert!(!services.contains("backup"), "the task is gone: {services}");

    // Changed since: the canary lost, a file written after the backup. Without --force
    // nothing is replaced, and what is there is said.
    n8n_sh("rm /home/node/.n8n/bk-canary && echo later > /home/node/.n8n/bk-after");
    let identity = s.home.join(".config/sprocket/identity.txt");
    let id = identity.to_str().unwrap();
    let held = s.ctl(&[
        "-o",
        "json",
        "restore",
        "--only",
        "volume",
        "--identity",
        id,
    ]);
    assert_eq!(held.code, 7, "{}{}", held.stdout, held.stderr);
    let h = held.json();
    assert_eq!(h["held"][0][0], "volume:n8n-data", "{h}");
    assert!(
        h["held"][0][1].as_str().unwrap().contains(" files, "),
        "{h}"
    );
    assert!(n8n_sh("ls -a /home/node/.n8n").contains("bk-after"));

    let before = common::container_of(NS, "n8n");
    let r = s.ctl(&[
        "-o",
        "json",
        "restore",
        "--only",
        "volume",
        "--force",
        "--identity",
        id,
    ]);
    printed.push_str(&(r.stdout.clone() + &r.stderr));
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    let r = r.json();
    assert_eq!(r["restored"][0]["component"], "volume:n8n-data", "{r}");
    assert_eq!(r["restored"].as_array().unwrap().len(), 1, "{r}");
    assert_ne!(
        common::container_of(NS, "n8n"),
        before,
        "n8n restarted on its restored files"
    );
    assert_eq!(n8n_sh("cat /home/node/.n8n/bk-canary").trim(), canary);
    assert!(
        !n8n_sh("ls -a /home/node/.n8n").contains("bk-after"),
        "what was written since is gone"
    );
    assert!(
        n8n_sh("cat /home/node/.n8n/config") == config,
        "n8n's config (its encryption key) as it was"
    );
    assert_eq!(n8n_sh(stat), modes, "owners, modes and times kept");
    // The restart changed nothing of n8n's spec: `up` has nothing to do.
    let again = s.ctl(&["-o", "json", "up"]);
    assert_eq!(again.code, 0, "{}", again.stdout);
    assert_eq!(
        again.json()["calls"],
        serde_json::json!({ "create": 0, "update": 0, "remove": 0 }),
        "{}",
        again.stdout
    );
    assert!(modes.contains(" node "), "{modes}");
    // The bucket holds neither the key nor the canary in clear.
    let stored = empty_bucket();
    assert!(stored
        .iter()
        .any(|(k, _)| k.ends_with("volume-n8n-data.tar.age")));
    for (k, body) in &stored {
        for v in [&key, &canary] {
            assert!(
                !body.windows(v.len()).any(|w| w == v.as_bytes()),
                "{k} holds a value in clear"
            );
        }
    }
}
