//! A Redis datastore and its consumers' `access`: an ACL user each (keys and channels under its
//! name unless given), the shared `default` login for the others; each rule's code, message and
//! file:line:column.

mod common;

use common::*;
use sprocket_spec::model::DatastoreKind;

const REDIS: &str =
    "      redis: { image: \"redis:7.0-alpine\", ports: [{ target: 6379, published: 6379 }] }\n";

/// BASE with `redis` a datastore (`datastore` the inside of its block, `args` its args) and
/// `web`'s access.
fn spec(datastore: &str, args: &str, access: &str) -> String {
    replace(
        REDIS,
        &format!(
            "      redis:\n        image: \"redis:7.0-alpine\"\n        args: {args}\n        secrets: [redis-password]\n        volumes: [{{ volume: redis-data, target: /data }}]\n        datastore: {{ {datastore} }}\n"
        ),
    )
    .replace(
        "  token: { source: generate }\n",
        "  token: { source: generate }\n  redis-password: { source: generate }\n",
    )
    .replace(
        "        uses: [redis, postgres]\n",
        &format!("        uses: [redis, postgres]\n        access: {access}\n"),
    )
}

const DATASTORE: &str = "kind: redis, admin_user: default, admin_password: redis-password";
const ARGS: &str = "[sh, -c, 'acl=$(sh /run/sprocket/redis-acl.sh) || exit 1; exec redis-server']";

#[test]
fn a_consumer_gets_an_acl_user_on_its_own_keys_and_channels() {
    let p = local_platform(&spec(DATASTORE, ARGS, "{ redis: {} }"));
    let d = p.service("redis").unwrap().datastore.as_ref().unwrap();
    assert_eq!(
        (d.kind, d.admin_user.as_str(), d.admin_port),
        (DatastoreKind::Redis, "default", 6379)
    );
    let web = p.service("web").unwrap();
    let a = &web.access[0];
    assert_eq!(
        (a.kind, a.user.as_str(), a.secret.as_str()),
        (DatastoreKind::Redis, "web", "web-redis-password")
    );
    assert_eq!(a.keys, ["web:*"]);
    assert_eq!(a.channels, ["web:*"]);
    assert!(web
        .secrets
        .iter()
        .any(|m| m.name == "web-redis-password" && m.target == "/run/secrets/redis-password"));
}

#[test]
fn what_the_consumer_says_wins() {
    let p = local_platform(&spec(
        DATASTORE,
        ARGS,
        "{ redis: { user: webapp, keys: [\"cache:web:*\", \"sessions:*\"], channels: [events], password_file: /app/secret/redis.txt } }",
    ));
    let a = &p.service("web").unwrap().access[0];
    assert_eq!(a.user, "webapp");
    assert_eq!(a.keys, ["cache:web:*", "sessions:*"]);
    assert_eq!(a.channels, ["events"]);
    assert_eq!(a.password_file, "/app/secret/redis.txt");
}

#[test]
fn the_administrator_is_the_default_user() {
    let text = spec(
        "kind: redis, admin_user: admin, admin_password: redis-password",
        ARGS,
        "{ redis: {} }",
    );
    expect(
        &text,
        "invalid-datastore-admin",
        "must be `default`",
        at(&text, "admin, admin_password", 0),
    );
    // and no consumer may be it
    let text = spec(DATASTORE, ARGS, "{ redis: { user: default } }");
    expect(
        &text,
        "access-user-reserved",
        "as `default`, which is the datastore's administrator",
        at(&text, "default }", 0),
    );
}

#[test]
fn fields_of_other_kinds_and_bad_patterns_are_refused_where_written() {
    let text = spec(DATASTORE, ARGS, "{ redis: { vhost: web, database: web } }");
    let all = diagnostics(&text);
    let codes: Vec<_> = all.iter().filter(|d| d.code == "invalid-access").collect();
    assert_eq!(codes.len(), 2, "{all:#?}");
    assert!(codes[0]
        .message
        .contains("`vhost` does not apply to `redis`, a redis datastore"));
    assert_eq!(
        (codes[0].pos.line, codes[0].pos.column),
        at(&text, "web, database", 0)
    );
    assert!(codes[0]
        .help
        .as_deref()
        .unwrap()
        .contains("`keys`, `channels`"));

    let text = spec(DATASTORE, ARGS, "{ redis: { keys: [\"~web:*\"] } }");
    expect(
        &text,
        "invalid-access",
        "starts with Redis's `~`/`&`",
        at(&text, "\"~web", 0),
    );
    let text = spec(DATASTORE, ARGS, "{ redis: { channels: [\"it's\"] } }");
    expect(&text, "invalid-access", "holds `'`", at(&text, "\"it's", 0));
    let text = spec(DATASTORE, ARGS, "{ redis: { keys: [] } }");
    expect(
        &text,
        "invalid-access",
        "`keys` for `redis` is empty",
        at(&text, "redis: { keys", 0),
    );
    let text = spec(DATASTORE, ARGS, "{ redis: { user: \"web app\" } }");
    expect(
        &text,
        "invalid-access",
        "holds a space",
        at(&text, "\"web app\"", 0),
    );

    // Redis's fields on RabbitMQ / PostgreSQL are refused too.
    let text = replace(
        "  postgres: { kind: postgres, host: db.example.org, port: 5432 }\n",
        "  postgres: { kind: postgres, host: db.example.org, port: 5432, admin_user: doadmin, admin_password: token }\n",
    )
    .replace(
        "        uses: [redis, postgres]\n",
        "        uses: [redis, postgres]\n        access: { postgres: { keys: [\"a:*\"] } }\n",
    );
    expect(
        &text,
        "invalid-access",
        "`keys` does not apply to `postgres`",
        at(&text, "\"a:*\"", 0),
    );
}

#[test]
fn a_redis_datastore_must_load_its_acl_users() {
    let text = spec(DATASTORE, "[redis-server]", "{ redis: {} }");
    let d = expect(
        &text,
        "redis-acl-not-loaded",
        "never runs /run/sprocket/redis-acl.sh, which makes its consumers' ACL users (web)",
        at(&text, "redis, admin_user", 0),
    );
    assert!(d
        .help
        .unwrap()
        .contains("acl=$(sh /run/sprocket/redis-acl.sh) || exit 1"));
    // Its users live in an aclfile on its volume: with ACL users and no volume, refused.
    let text = spec(DATASTORE, ARGS, "{ redis: {} }").replace(
        "        volumes: [{ volume: redis-data, target: /data }]\n",
        "",
    );
    let d = expect(
        &text,
        "redis-acl-needs-volume",
        "is a Redis datastore with ACL users (web), but no writable volume for the file that keeps them",
        at(&text, "redis, admin_user", 0),
    );
    assert!(d.help.unwrap().contains("volumes: [{ volume: redis-data"));
    // Without ACL users it needs none.
    let text = spec(DATASTORE, ARGS, "{}").replace(
        "        volumes: [{ volume: redis-data, target: /data }]\n",
        "",
    );
    assert!(!diagnostics(&text)
        .iter()
        .any(|d| d.code == "redis-acl-needs-volume"));
    // PostgreSQL-only settings are no Redis settings.
    let text = spec(
        &format!("{DATASTORE}, sslmode: require"),
        ARGS,
        "{ redis: {} }",
    );
    expect(
        &text,
        "invalid-datastore-field",
        "`sslmode` is a PostgreSQL setting; `redis` is redis",
        at(&text, "require", 0),
    );
}

#[test]
fn two_consumers_never_share_an_acl_user() {
    let text = spec(DATASTORE, ARGS, "{ redis: { user: shared } }");
    let text = text.replace(
        "  apps:\n    services:\n",
        "  apps:\n    services:\n      worker: { image: \"example/w:1\", uses: [redis], access: { redis: { user: shared } } }\n",
    );
    expect(
        &text,
        "duplicate-access-user",
        "both log in to `redis` as `shared`",
        at(&text, "redis: { user: shared } }\n        secrets", 0),
    );
}
