//! The PostgreSQL adapter against the real PostgreSQL 15 (`scripts/lib/postgres.sh`, started
//! here if it is not running), without a swarm: the job the provisioning task runs, called
//! directly, as the administrator `doadmin` (CREATEROLE, CREATEDB, not a superuser) over TLS.
//!
//! - an owner, a writer and a reader on one database: the owner's tables, present and future,
//!   are readable by both and writable by the writer only; nobody else may connect;
//! - a changed password is set (as a SCRAM verifier) and the old one stops working;
//! - a role or a database of a wanted name that is not ours is refused, never changed;
//! - `prune` removes our roles no login wants, keeps their database (handed to the
//!   administrator) and never touches a role made by hand;
//! - `prune` with `drop_data` (a drill's teardown) drops our database and roles, and nothing else.

use sprocket_datastores::postgres::{connect, Target};
use sprocket_datastores::{provision, read_secret, Outcome, ProvisionError};
use sprocket_desired::provision::{Job, JobLogin};
use sprocket_spec::model::{DatastoreKind, Privileges, SslMode};
use std::path::{Path, PathBuf};
use std::process::Command;

const OWNER: &str = "sprocketctl-ds-pgtest";
const DB: &str = "pgtest_app";
const ROLES: [&str; 5] = [
    "pgtest_owner",
    "pgtest_writer",
    "pgtest_reader",
    "pgtest_handmade",
    "pgtest_other",
];

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Starts the local server if needed; the administrator's password.
fn server() -> String {
    let out = Command::new("bash")
        .args([
            "-c",
            "source scripts/lib/postgres.sh && pg_ensure >&2 && pg_admin_password",
        ])
        .current_dir(repo())
        .output()
        .expect("bash runs");
    assert!(
        out.status.success(),
        "the local PostgreSQL does not start: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// `psql` as the server's superuser, for checks and hand-made objects.
fn psql(db: &str, sql: &str) -> String {
    let out = Command::new("runuser")
        .args([
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
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "psql {sql}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn clean() {
    for db in [DB, "pgtest_foreign"] {
        psql(
            "postgres",
            &format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"),
        );
    }
    for r in ROLES {
        psql("postgres", &format!("DROP ROLE IF EXISTS {r}"));
    }
}

struct Files(PathBuf);

impl Files {
    fn new() -> Files {
        let d = std::env::temp_dir().join(format!("sprocket-pgtest-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        Files(d)
    }

    fn put(&self, name: &str, value: &str) -> String {
        let p = self.0.join(name);
        std::fs::write(&p, value).unwrap();
        p.display().to_string()
    }
}

impl Drop for Files {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn login(user: &str, file: &str, p: Privileges) -> JobLogin {
    JobLogin {
        service: user.trim_start_matches("pgtest_").into(),
        user: user.into(),
        password_file: file.into(),
        vhost: String::new(),
        configure: String::new(),
        write: String::new(),
        read: String::new(),
        database: DB.into(),
        privileges: Some(p),
        buckets: Vec::new(),
        key_file: String::new(),
        fresh: false,
    }
}

fn job(admin_file: &str, logins: Vec<JobLogin>, prune: bool) -> Job {
    Job {
        kind: DatastoreKind::Postgres,
        host: "127.0.0.1".into(),
        port: 5433,
        admin_user: "doadmin".into(),
        admin_password_file: admin_file.into(),
        admin_database: "defaultdb".into(),
        sslmode: Some(SslMode::Require),
        endpoint: String::new(),
        region: String::new(),
        admin_key_file: String::new(),
        buckets: Vec::new(),
        owner: OWNER.into(),
        logins,
        prune,
        drop_data: false,
        retire: false,
    }
}

async fn client(user: &str, password: &str, db: &str) -> Result<tokio_postgres::Client, String> {
    connect(&Target {
        host: "127.0.0.1",
        port: 5433,
        user,
        password,
        database: db,
        sslmode: SslMode::Require,
    })
    .await
    .map_err(|e| {
        e.as_db_error()
            .map(|d| d.message().to_string())
            .unwrap_or(e.to_string())
    })
}

async fn sql(c: &tokio_postgres::Client, q: &str) -> Result<(), String> {
    c.batch_execute(q).await.map_err(|e| {
        e.as_db_error()
            .map(|d| d.message().to_string())
            .unwrap_or(e.to_string())
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn roles_databases_grants_passwords_ownership_and_prune() {
    let admin = server();
    clean();
    let f = Files::new();
    let admin_file = f.put("admin", &admin);
    let (po, pw, pr) = (
        "owner-pass-1234567890",
        "writer-pass-1234567890",
        "reader-pass-1234567890",
    );
    let logins = vec![
        // Owners are made first whatever the order: the readers' grants need the database.
        login("pgtest_reader", &f.put("reader", pr), Privileges::Read),
        login("pgtest_writer", &f.put("writer", pw), Privileges::Readwrite),
        login("pgtest_owner", &f.put("owner", po), Privileges::Owner),
    ];
    let r = provision(&job(&admin_file, logins.clone(), false), &read_secret)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        r.logins.iter().all(|l| l.outcome == Outcome::Created),
        "{r:?}"
    );
    assert_eq!(r.made, [format!("database {DB}")]);
    // Stored as SCRAM verifiers; the database is ours, owned by its owner, closed to PUBLIC.
    for role in ["pgtest_owner", "pgtest_writer", "pgtest_reader"] {
        assert!(psql(
            "postgres",
            &format!("SELECT rolpassword FROM pg_authid WHERE rolname = '{role}'")
        )
        .starts_with("SCRAM-SHA-256$4096:"));
    }
    assert_eq!(
        psql("postgres", &format!("SELECT pg_get_userbyid(datdba), shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = '{DB}'")),
        format!("pgtest_owner|{OWNER}")
    );
    psql(
        "postgres",
        "CREATE ROLE pgtest_other LOGIN PASSWORD 'other-pass-123'",
    );
    let refused = client("pgtest_other", "other-pass-123", DB).await.err();
    assert!(
        refused
            .as_deref()
            .is_some_and(|e| e.contains("permission denied")),
        "{refused:?}"
    );

    // The owner makes a table; the writer writes it, the reader reads it and cannot write.
    let owner = client("pgtest_owner", po, DB).await.unwrap();
    sql(&owner, "CREATE TABLE t (v int); INSERT INTO t VALUES (1)")
        .await
        .unwrap();
    let writer = client("pgtest_writer", pw, DB).await.unwrap();
    sql(&writer, "INSERT INTO t VALUES (2)").await.unwrap();
    let reader = client("pgtest_reader", pr, DB).await.unwrap();
    let n: i64 = reader
        .query_one("SELECT count(*) FROM t", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 2);
    let denied = sql(&reader, "INSERT INTO t VALUES (3)").await.unwrap_err();
    assert!(denied.contains("permission denied"), "{denied}");
    // Nobody may create in the owner's schema but the owner.
    let denied = sql(&writer, "CREATE TABLE w (v int)").await.unwrap_err();
    assert!(denied.contains("permission denied"), "{denied}");

    // A second run: nothing changes. Then the writer's password changes: set, and the old one
    // stops working.
    let again = provision(&job(&admin_file, logins.clone(), false), &read_secret)
        .await
        .unwrap();
    assert!(
        again.logins.iter().all(|l| l.outcome == Outcome::Unchanged),
        "{again:?}"
    );
    // A run cut off between `CREATE DATABASE` and its mark (no transaction holds both): the
    // next run finishes it — marked, closed to PUBLIC again.
    psql("postgres", &format!("COMMENT ON DATABASE {DB} IS NULL"));
    psql(
        "postgres",
        &format!("GRANT CONNECT ON DATABASE {DB} TO PUBLIC"),
    );
    let mut changed = logins.clone();
    changed[1].password_file = f.put("writer", "writer-pass-NEW-0987654321");
    let rot = provision(&job(&admin_file, changed.clone(), false), &read_secret)
        .await
        .unwrap();
    let o = rot
        .logins
        .iter()
        .find(|l| l.user == "pgtest_owner")
        .unwrap();
    assert_eq!(o.changed, ["database"], "{rot:?}");
    assert_eq!(
        psql("postgres", &format!("SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = '{DB}'")),
        OWNER
    );
    assert!(client("pgtest_other", "other-pass-123", DB).await.is_err());
    let w = rot
        .logins
        .iter()
        .find(|l| l.user == "pgtest_writer")
        .unwrap();
    assert_eq!(
        (w.outcome, w.changed.as_slice()),
        (Outcome::Updated, &["password".to_string()][..])
    );
    assert!(client("pgtest_writer", pw, DB).await.is_err());
    // A table the owner makes later: the default privileges reach it.
    sql(&owner, "CREATE TABLE later (v int)").await.unwrap();
    let writer = client("pgtest_writer", "writer-pass-NEW-0987654321", DB)
        .await
        .unwrap();
    sql(&writer, "INSERT INTO later VALUES (1)").await.unwrap();
    drop((owner, writer, reader));

    // Somebody else's role of a wanted name, and somebody else's database an owner would
    // take: refused with the reason, left as they were.
    psql("postgres", "CREATE ROLE pgtest_handmade LOGIN");
    let mut foreign = changed.clone();
    foreign.push(login(
        "pgtest_handmade",
        &f.put("hm", "x-pass-1234567890"),
        Privileges::Read,
    ));
    let e = provision(&job(&admin_file, foreign, false), &read_secret)
        .await
        .unwrap_err();
    assert!(
        matches!(&e, ProvisionError::Refused(m) if m.contains("a role `pgtest_handmade` exists") && m.contains("is not sprocketctl's")),
        "{e}"
    );
    assert_eq!(
        psql(
            "postgres",
            "SELECT coalesce(rolpassword, 'none') FROM pg_authid WHERE rolname = 'pgtest_handmade'"
        ),
        "none",
        "the hand-made role was not changed"
    );
    psql("postgres", "CREATE DATABASE pgtest_foreign");
    let mut takes = changed.clone();
    takes[2].database = "pgtest_foreign".into();
    let e = provision(&job(&admin_file, takes, false), &read_secret)
        .await
        .unwrap_err();
    assert!(
        matches!(&e, ProvisionError::Refused(m) if m.contains("a database `pgtest_foreign` exists") && m.contains("never taken over")),
        "{e}"
    );

    // Prune with only the reader left: the owner's and the writer's roles go, the database
    // stays (data) and is handed to the administrator; hand-made roles stay.
    let only_reader = vec![changed[0].clone()];
    let pruned = provision(&job(&admin_file, only_reader, true), &read_secret)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        pruned.removed.contains(&"role pgtest_owner".to_string()),
        "{pruned:?}"
    );
    assert!(
        pruned.removed.contains(&"role pgtest_writer".to_string()),
        "{pruned:?}"
    );
    assert!(
        pruned
            .removed
            .iter()
            .any(|r| r.starts_with(&format!("database {DB} kept"))),
        "{pruned:?}"
    );
    let roles = psql(
        "postgres",
        "SELECT string_agg(rolname, ',' ORDER BY rolname) FROM pg_roles WHERE rolname LIKE 'pgtest_%'",
    );
    assert_eq!(roles, "pgtest_handmade,pgtest_other,pgtest_reader");
    assert_eq!(
        psql(
            "postgres",
            &format!("SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = '{DB}'")
        ),
        "doadmin"
    );
    assert_eq!(psql(DB, "SELECT count(*) FROM t"), "2", "the data is kept");

    // A teardown (no login, prune, drop_data): our database goes with its data — a consumer's
    // open session is ended with it — our last role too; what we did not make stays. (A
    // session left by a role pruned above is ended first, as the superuser: an administrator
    // that is not one may end only the sessions of roles it is a member of.)
    psql(
        "postgres",
        &format!("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = '{DB}' AND usename IS NULL"),
    );
    let reader = client("pgtest_reader", pr, DB).await.unwrap();
    let mut teardown = job(&admin_file, Vec::new(), true);
    teardown.drop_data = true;
    let gone = provision(&teardown, &read_secret)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        gone.removed
            .contains(&format!("database {DB} (dropped with its data)")),
        "{gone:?}"
    );
    assert_eq!(
        psql(
            "postgres",
            &format!("SELECT count(*) FROM pg_database WHERE datname = '{DB}'")
        ),
        "0"
    );
    let roles = psql(
        "postgres",
        "SELECT string_agg(rolname, ',' ORDER BY rolname) FROM pg_roles WHERE rolname LIKE 'pgtest_%'",
    );
    assert_eq!(roles, "pgtest_handmade,pgtest_other");
    assert!(
        reader.simple_query("SELECT 1").await.is_err(),
        "its session ended"
    );
    clean();
}
