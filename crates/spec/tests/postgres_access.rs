//! A PostgreSQL external with an administrator, and its consumers' `access`: own role, own
//! database (namespaced names), privileges; each rule's code, message and file:line:column.

mod common;

use common::*;
use sprocket_spec::model::{DatastoreKind, Privileges, SslMode};

const EXTERNAL: &str = "  postgres: { kind: postgres, host: db.example.org, port: 5432 }\n";

/// BASE with the external `postgres` given `admin` (the inside of its map) and `web`'s access.
fn spec(admin: &str, access: &str) -> String {
    replace(
        EXTERNAL,
        &format!("  postgres: {{ kind: postgres, host: db.example.org, port: 5432{admin} }}\n"),
    )
    .replace(
        "  token: { source: generate }\n",
        "  token: { source: generate }\n  db-admin: { source: doppler, key: DB_ADMIN }\n",
    )
    .replace(
        "        uses: [redis, postgres]\n",
        &format!("        uses: [redis, postgres]\n        access: {access}\n"),
    )
}

const ADMIN: &str = ", admin_user: doadmin, admin_password: db-admin";

#[test]
fn a_consumer_gets_its_own_namespaced_role_and_database() {
    let p = platform(&spec(ADMIN, "{ postgres: {} }"), "local");
    let x = p.externals.iter().find(|e| e.name == "postgres").unwrap();
    let d = x
        .datastore
        .as_ref()
        .expect("an external with an administrator");
    assert_eq!(
        (
            d.kind,
            d.admin_user.as_str(),
            d.admin_secret.as_str(),
            d.admin_port,
            d.admin_database.as_str(),
            d.sslmode
        ),
        (
            DatastoreKind::Postgres,
            "doadmin",
            "db-admin",
            5432,
            "postgres",
            SslMode::Require
        )
    );
    let web = p.service("web").unwrap();
    let a = &web.access[0];
    let ns = &p.environment.namespace;
    assert_eq!(a.user, format!("{ns}_web"));
    assert_eq!(a.database, format!("{ns}_web"));
    assert_eq!(a.privileges, Privileges::Owner);
    assert_eq!(a.secret, "web-postgres-password");
    assert!(
        web.secrets
            .iter()
            .any(|m| m.name == "web-postgres-password"
                && m.target == "/run/secrets/postgres-password")
    );
}

#[test]
fn what_the_consumer_says_wins_and_env_learns_the_namespace() {
    let text = spec(
        &format!("{ADMIN}, admin_database: defaultdb, sslmode: disable"),
        "{ postgres: { user: web_rw, database: sprocket_main, privileges: readwrite } }",
    )
    .replace(
        "        uses: [redis, postgres]\n",
        "        uses: [redis, postgres]\n        env: { DB_USER: \"{namespace}_web\" }\n",
    );
    let p = platform(&text, "local");
    let d = p.externals[0].datastore.as_ref().unwrap();
    assert_eq!(
        (d.admin_database.as_str(), d.sslmode),
        ("defaultdb", SslMode::Disable)
    );
    let web = p.service("web").unwrap();
    let a = &web.access[0];
    assert_eq!(
        (a.user.as_str(), a.database.as_str(), a.privileges),
        ("web_rw", "sprocket_main", Privileges::Readwrite)
    );
    assert_eq!(
        web.env["DB_USER"],
        format!("{}_web", p.environment.namespace)
    );
}

#[test]
fn access_to_an_external_without_an_administrator() {
    let text = spec("", "{ postgres: {} }");
    let d = expect(
        &text,
        "access-not-datastore",
        "`web` asks for access to `postgres`, which is not a datastore (an external without `admin_user` and `admin_password`)",
        at(&text, "postgres: {}", 0),
    );
    assert!(d.help.unwrap().contains("admin_user"));
}

#[test]
fn half_an_administrator() {
    let text = spec(", admin_user: doadmin", "{ postgres: {} }");
    expect(
        &text,
        "invalid-external",
        "external `postgres` names half an administrator: `admin_password` is missing",
        at(&text, "doadmin", 0),
    );
}

#[test]
fn the_administrators_password_must_be_a_declared_secret() {
    let text = spec(
        ", admin_user: doadmin, admin_password: db-admn",
        "{ postgres: {} }",
    );
    let d = expect(
        &text,
        "unknown-secret",
        "the administrator's password `db-admn` is not a declared secret",
        at(&text, "db-admn", 0),
    );
    assert!(d.help.unwrap().contains("db-admin"), "a suggestion");
}

#[test]
fn only_postgres_externals_are_provisioned() {
    let text = spec(ADMIN, "{ postgres: {} }").replace("kind: postgres", "kind: http");
    expect(
        &text,
        "invalid-external",
        "sprocketctl provisions logins only in `postgres` externals",
        at(&text, "doadmin", 0),
    );
}

#[test]
fn an_unknown_sslmode() {
    let text = spec(&format!("{ADMIN}, sslmode: verify-ca"), "{ postgres: {} }");
    expect(
        &text,
        "invalid-sslmode",
        "sslmode `verify-ca` is not one sprocketctl speaks",
        at(&text, "verify-ca", 0),
    );
}

#[test]
fn rabbitmq_fields_do_not_apply_to_postgres() {
    let text = spec(ADMIN, "{ postgres: { vhost: web } }");
    expect(
        &text,
        "invalid-access",
        "`vhost` does not apply to `postgres`, a postgres datastore",
        at(&text, "web }", 0),
    );
}

#[test]
fn unknown_privileges() {
    let text = spec(ADMIN, "{ postgres: { privileges: admin } }");
    expect(
        &text,
        "invalid-access",
        "unknown privileges `admin` for `postgres`",
        {
            let (line, col) = at(&text, "privileges: admin", 0);
            (line, col + "privileges: ".len() as u32)
        },
    );
}

#[test]
fn a_reserved_role_name() {
    let text = spec(ADMIN, "{ postgres: { user: pg_web } }");
    expect(
        &text,
        "invalid-access",
        "the user for `postgres` starts with `pg_`, which PostgreSQL reserves",
        at(&text, "pg_web", 0),
    );
    let text = spec(ADMIN, "{ postgres: { user: doadmin } }");
    expect(
        &text,
        "access-user-reserved",
        "`web` would log in to `postgres` as `doadmin`, which is the datastore's administrator",
        at(&text, "doadmin", 1),
    );
}

#[test]
fn a_database_has_one_owner() {
    let text = spec(ADMIN, "{ postgres: { database: shared } }").replace(
        "      web:\n",
        "      worker:\n        image: \"example/worker:1\"\n        uses: [postgres]\n        access: { postgres: { database: shared } }\n      web:\n",
    );
    let all = diagnostics(&text);
    let d = all
        .iter()
        .find(|d| d.code == "duplicate-database-owner")
        .unwrap_or_else(|| panic!("no duplicate-database-owner in {all:?}"));
    assert!(
        d.message
            .contains("both own the database `shared` in `postgres`"),
        "{}",
        d.message
    );
    // A reader of it is fine.
    let text = text.replace(
        "access: { postgres: { database: shared } }\n      web:",
        "access: { postgres: { database: shared, privileges: read } }\n      web:",
    );
    assert!(!diagnostics(&text)
        .iter()
        .any(|d| d.code == "duplicate-database-owner"));
}

#[test]
fn env_values_refer_to_the_externals_address_and_the_hostname() {
    let text = spec(ADMIN, "{ postgres: {} }").replace(
        "        uses: [redis, postgres]\n",
        "        uses: [redis, postgres]\n        env: { DB: \"{external.postgres.host}:{external.postgres.port}\", URL: \"https://n8n.{hostname}/\" }\n",
    );
    let p = platform(&text, "local");
    let web = p.service("web").unwrap();
    assert_eq!(web.env["DB"], "db.example.org:5432");
    assert_eq!(web.env["URL"], "https://n8n.localhost/");
    // A reference to no external is an error at the variable.
    let text = text.replace("{external.postgres.port}", "{external.postgre.port}");
    let d = expect(
        &text,
        "unknown-env-reference",
        "env `DB` refers to `{external.postgre.port}`, which is no external's host, port, endpoint or region",
        at(&text, "DB:", 0),
    );
    assert!(d.help.unwrap().contains("{external.postgres.port}"));
}

#[test]
fn a_consumer_that_takes_its_user_from_the_reference_gets_a_second_login() {
    let text = spec(ADMIN, "{ postgres: {} }").replace(
        "        uses: [redis, postgres]\n",
        "        uses: [redis, postgres]\n        env: { DB_USER: \"{access.postgres.user}\", DB_URL: \"postgres://{access.postgres.user}@{external.postgres.host}/x\" }\n",
    );
    let p = platform(&text, "local");
    let web = p.service("web").unwrap();
    let ns = &p.environment.namespace;
    // Kept as written: which of the two logins it names is chosen when deploying.
    assert_eq!(web.env["DB_USER"], "{access.postgres.user}");
    assert_eq!(
        web.env["DB_URL"],
        "postgres://{access.postgres.user}@db.example.org/x"
    );
    assert_eq!(web.access[0].alternate, Some(format!("{ns}_web_b")));
    // Without the reference, one login.
    let p = platform(&spec(ADMIN, "{ postgres: {} }"), "local");
    assert_eq!(p.service("web").unwrap().access[0].alternate, None);
    // A reference to a datastore it has no access to, or to no field of a login: an error at
    // the variable that names the ones it could use.
    for wrong in [
        "{access.redis.user}",
        "{access.postgres.password}",
        "{access.postgres.user",
    ] {
        let bad = text.replace("\"{access.postgres.user}\"", &format!("\"{wrong}\""));
        let d = expect(
            &bad,
            "unknown-env-reference",
            "which is no user name of its PostgreSQL or RabbitMQ `access`",
            at(&bad, "DB_USER:", 0),
        );
        assert_eq!(
            d.help.as_deref(),
            Some("use {access.postgres.user}"),
            "{wrong}"
        );
    }
    // Another consumer may not take the second login's name.
    let taken = text.replace(
        "environments:\n",
        &format!("      other:\n        image: \"example/other:1\"\n        uses: [postgres]\n        access: {{ postgres: {{ user: {ns}_web_b, privileges: read, database: {ns}_web }} }}\nenvironments:\n"),
    );
    let ds = diagnostics(&taken);
    let d = ds
        .iter()
        .find(|d| d.code == "duplicate-access-user")
        .unwrap_or_else(|| panic!("{ds:?}"));
    assert!(d.message.contains("second login"), "{}", d.message);
}
