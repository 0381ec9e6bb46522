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
        ..Default::default()
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

/// A consumer that takes its user name from its env: two logins, `pgalt_app` and
/// `pgalt_app_b`, alternating per version of its password. A rotation sets the new password on
/// the login the running task does not use, both work during the roll, the retirement removes
/// the previous one; what the second login makes belongs to the first.
#[tokio::test(flavor = "multi_thread")]
async fn two_logins_alternate_without_a_window() {
    const APP: &str = "pgalt_app";
    const ALT: &str = "pgalt_app_b";
    let admin = server();
    psql(
        "postgres",
        &format!("DROP DATABASE IF EXISTS {APP} WITH (FORCE)"),
    );
    for r in [ALT, APP] {
        psql("postgres", &format!("DROP ROLE IF EXISTS {r}"));
    }
    let f = Files::new();
    let admin_file = f.put("admin", &admin);
    let two = |file: &str, use_alternate: bool, fresh: bool| JobLogin {
        service: "app".into(),
        user: APP.into(),
        password_file: file.into(),
        database: APP.into(),
        privileges: Some(Privileges::Owner),
        alternate: ALT.into(),
        use_alternate,
        fresh,
        ..Default::default()
    };
    // Its own owner mark: its prune must not see the other test's roles.
    let job = |logins: Vec<JobLogin>, prune: bool| Job {
        owner: "sprocketctl-ds-pgalt".into(),
        ..job(&admin_file, logins, prune)
    };
    let run = |l: JobLogin, retire: bool| {
        let mut j = job(vec![l], false);
        j.retire = retire;
        async move {
            provision(&j, &read_secret)
                .await
                .unwrap_or_else(|e| panic!("{e}"))
        }
    };
    let logs_in = |user: &'static str, password: String| async move {
        client(user, &password, APP).await.map(drop)
    };
    let (p1, p2, p3) = (
        "alt-pass-one-1234567890".to_string(),
        "alt-pass-two-1234567890".to_string(),
        "alt-pass-three-123456789".to_string(),
    );

    // Version 1: the role's own login; the second exists with no password.
    let r = run(two(&f.put("v1", &p1), false, true), false).await;
    assert_eq!(r.logins[0].user, APP, "{r:?}");
    assert!(r.retire.is_empty(), "nothing kept: {r:?}");
    logs_in(APP, p1.clone()).await.unwrap();
    assert!(logs_in(ALT, p1.clone()).await.is_err());
    let c = client(APP, &p1, APP).await.unwrap();
    sql(&c, "CREATE TABLE t (n int); INSERT INTO t VALUES (1)")
        .await
        .unwrap();

    // Version 2 (a rotation under a running task): the second login gets the new password,
    // the first keeps the old one for the roll, time-limited.
    let v2 = f.put("v2", &p2);
    let r = run(two(&v2, true, false), false).await;
    assert_eq!(r.logins[0].user, ALT, "{r:?}");
    assert_eq!(
        r.logins[0].changed,
        ["password".to_string(), format!("{APP} kept for the roll")],
        "{r:?}"
    );
    assert_eq!(r.retire, [APP.to_string()]);
    logs_in(APP, p1.clone())
        .await
        .expect("the old task still logs in");
    logs_in(ALT, p2.clone())
        .await
        .expect("the new task logs in");
    assert!(
        psql(
            "postgres",
            &format!("SELECT rolvaliduntil > now() AND rolvaliduntil < now() + interval '2 days' FROM pg_roles WHERE rolname = '{APP}'")
        ) == "t",
        "the kept login expires by itself"
    );
    // The second login acts as the role: its data, its tables, owned by it.
    let c = client(ALT, &p2, APP).await.unwrap();
    sql(&c, "INSERT INTO t VALUES (2); CREATE TABLE u (n int)")
        .await
        .unwrap();
    let row = c
        .query_one(
            "SELECT current_user::text, (SELECT tableowner::text FROM pg_tables WHERE tablename = 'u')",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(
        (row.get::<_, String>(0), row.get::<_, String>(1)),
        (APP.to_string(), APP.to_string())
    );
    // The same job again (a re-run after a crash): still kept, nothing else.
    let r = run(two(&v2, true, false), false).await;
    assert_eq!(r.retire, [APP.to_string()]);
    assert_eq!(r.logins[0].changed, [format!("{APP} kept for the roll")]);

    // Once the old task is gone: the previous password is removed.
    let r = run(two(&v2, true, false), true).await;
    assert_eq!(r.removed, [format!("previous password of role {APP}")]);
    let refused = logs_in(APP, p1.clone()).await.unwrap_err();
    assert!(
        refused.contains("password authentication failed"),
        "{refused}"
    );
    logs_in(ALT, p2.clone()).await.unwrap();
    // Nothing left to retire, nothing to change.
    let r = run(two(&v2, true, false), false).await;
    assert!(
        r.retire.is_empty() && r.logins[0].changed.is_empty(),
        "{r:?}"
    );
    let r = run(two(&v2, true, false), true).await;
    assert!(r.removed.is_empty(), "{r:?}");

    // Version 3: back to the role's own login, which had been retired.
    let v3 = f.put("v3", &p3);
    let r = run(two(&v3, false, false), false).await;
    assert_eq!(r.logins[0].user, APP);
    assert_eq!(r.retire, [ALT.to_string()]);
    logs_in(ALT, p2.clone())
        .await
        .expect("the old task still logs in");
    logs_in(APP, p3.clone()).await.unwrap();
    let r = run(two(&v3, false, false), true).await;
    assert_eq!(r.removed, [format!("previous password of role {ALT}")]);
    assert!(logs_in(ALT, p2.clone()).await.is_err());
    let c = client(APP, &p3, APP).await.unwrap();
    let rows: i64 = c
        .query_one("SELECT count(*) FROM t", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(rows, 2, "one table, whichever login wrote");

    // Version 4 moves to the second login and retires the first; then the consumer spells its
    // user in its env (one login again): the retired role gets the password and loses the limit.
    let r = run(
        two(&f.put("v4", "alt-pass-four-123456789"), true, false),
        false,
    )
    .await;
    assert_eq!(r.retire, [APP.to_string()]);
    let r = run(
        two(&f.put("v4", "alt-pass-four-123456789"), true, false),
        true,
    )
    .await;
    assert_eq!(r.removed, [format!("previous password of role {APP}")]);
    let single = JobLogin {
        alternate: String::new(),
        use_alternate: false,
        ..two(&f.put("v5", "alt-pass-five-123456789"), false, false)
    };
    let r = run(single.clone(), false).await;
    assert_eq!(
        r.logins[0].changed,
        ["password".to_string(), format!("{ALT} kept for the roll")],
        "its former second login is kept for the roll, then retired: {r:?}"
    );
    logs_in(APP, "alt-pass-five-123456789".into())
        .await
        .unwrap();
    logs_in(ALT, "alt-pass-four-123456789".into())
        .await
        .expect("the old task still logs in");
    let r = run(single, true).await;
    assert_eq!(r.removed, [format!("previous password of role {ALT}")]);
    assert!(logs_in(ALT, "alt-pass-four-123456789".into())
        .await
        .is_err());

    // A consumer gone: prune removes both logins, keeps the database.
    let gone = job(Vec::new(), true);
    let r = provision(&gone, &read_secret).await.unwrap();
    assert!(
        r.removed.contains(&format!("role {APP}")) && r.removed.contains(&format!("role {ALT}")),
        "{r:?}"
    );
    psql(
        "postgres",
        &format!("DROP DATABASE IF EXISTS {APP} WITH (FORCE)"),
    );
}
