//! `datastore:` and `access:`: a consumer names the datastore it uses and gets its own login, a
//! derived generated password (a secret like any other, mounted where it says) and the grants
//! it asked for. Each rule's code, message and file:line:column.

mod common;

use common::*;
use sprocket_spec::model::DatastoreKind;

/// BASE with a RabbitMQ datastore in `data` and `web` using it with `access`.
fn spec(datastore: &str, access: &str) -> String {
    replace(
        "      redis: { image: \"redis:7.0-alpine\", ports: [{ target: 6379, published: 6379 }] }\n",
        &format!(
            "      redis: {{ image: \"redis:7.0-alpine\", ports: [{{ target: 6379, published: 6379 }}] }}\n      mq:\n        image: \"rabbitmq:3.10-management\"\n        secrets: [mq-admin]\n        datastore: {datastore}\n"
        ),
    )
    .replace("  token: { source: generate }\n", "  token: { source: generate }\n  mq-admin: { source: generate }\n")
    .replace(
        "        uses: [redis, postgres]\n",
        &format!("        uses: [redis, postgres, mq]\n        access: {access}\n"),
    )
}

const DS: &str = "{ kind: rabbitmq, admin_user: admin, admin_password: mq-admin }";

#[test]
fn a_consumer_gets_its_own_login_a_generated_password_and_its_mount() {
    let p = local_platform(&spec(DS, "{ mq: {} }"));
    let mq = p.service("mq").unwrap();
    let d = mq.datastore.as_ref().unwrap();
    assert_eq!(
        (
            d.kind,
            d.admin_user.as_str(),
            d.admin_secret.as_str(),
            d.admin_port
        ),
        (DatastoreKind::Rabbitmq, "admin", "mq-admin", 15672)
    );
    let web = p.service("web").unwrap();
    assert_eq!(web.access.len(), 1);
    let a = &web.access[0];
    assert_eq!(
        (
            a.user.as_str(),
            a.vhost.as_str(),
            a.configure.as_str(),
            a.write.as_str(),
            a.read.as_str()
        ),
        ("web", "web", ".*", ".*", ".*")
    );
    assert_eq!(a.secret, "web-mq-password");
    assert_eq!(a.password_file, "/run/secrets/mq-password");
    let m = web
        .secrets
        .iter()
        .find(|m| m.name == "web-mq-password")
        .unwrap();
    assert_eq!(m.target, "/run/secrets/mq-password");
    let s = p
        .secrets
        .iter()
        .find(|s| s.name == "web-mq-password")
        .unwrap();
    assert_eq!(s.source, sprocket_spec::model::SecretSource::Generate);
    assert_eq!(s.alphabet, sprocket_spec::model::Alphabet::Alphanumeric);
    assert!(s.length >= 32);
}

#[test]
fn what_the_consumer_says_wins() {
    let p = local_platform(&spec(
        DS,
        "{ mq: { user: web-app, vhost: sprocket, configure: \"^web\\\\.\", write: \"^web\\\\.\", read: \".*\", password_file: /app/secret/mq.txt } }",
    ));
    let a = &p.service("web").unwrap().access[0];
    assert_eq!(
        (
            a.user.as_str(),
            a.vhost.as_str(),
            a.configure.as_str(),
            a.password_file.as_str()
        ),
        ("web-app", "sprocket", "^web\\.", "/app/secret/mq.txt")
    );
}

#[test]
fn access_to_something_not_used() {
    let text =
        spec(DS, "{ mq: {} }").replace("uses: [redis, postgres, mq]", "uses: [redis, postgres]");
    expect(
        &text,
        "access-without-uses",
        "`web` asks for access to `mq`, which it does not use",
        at(&text, "mq: {}", 0),
    );
}

#[test]
fn access_to_a_service_that_is_no_datastore() {
    let text = spec(DS, "{ redis: {} }");
    expect(
        &text,
        "access-not-datastore",
        "`web` asks for access to `redis`, which is not a datastore",
        at(&text, "redis: {}", 0),
    );
}

#[test]
fn unknown_datastore_kind() {
    let text = spec(
        "{ kind: mongodb, admin_user: admin, admin_password: mq-admin }",
        "{ mq: {} }",
    );
    expect(
        &text,
        "invalid-datastore-kind",
        "unknown datastore kind `mongodb`",
        at(&text, "mongodb", 0),
    );
}

#[test]
fn the_admin_password_must_be_a_secret_the_datastore_mounts() {
    let text = spec(
        "{ kind: rabbitmq, admin_user: admin, admin_password: token }",
        "{ mq: {} }",
    );
    expect(
        &text,
        "datastore-admin-secret-not-mounted",
        "the administrator's password `token` is not a secret `mq` mounts",
        at(&text, "token }", 0),
    );
}

#[test]
fn a_pattern_that_is_no_regular_expression() {
    let text = spec(DS, "{ mq: { write: \"[web\" } }");
    expect(
        &text,
        "invalid-access-pattern",
        "the `write` pattern for `mq` is not a regular expression",
        at(&text, "\"[web\"", 0),
    );
}

#[test]
fn a_user_name_with_a_space() {
    let text = spec(DS, "{ mq: { user: \"web app\" } }");
    expect(
        &text,
        "invalid-access",
        "the user for `mq` holds a space",
        at(&text, "\"web app\"", 0),
    );
}

#[test]
fn a_declared_secret_cannot_take_the_derived_name() {
    let text = spec(DS, "{ mq: {} }").replace(
        "  mq-admin: { source: generate }\n",
        "  mq-admin: { source: generate }\n  web-mq-password: { source: generate }\n",
    );
    expect(
        &text,
        "access-secret-declared",
        "secret `web-mq-password` is the password `up` generates for `web`'s access to `mq`",
        at(&text, "web-mq-password", 0),
    );
}

#[test]
fn two_consumers_cannot_share_a_login() {
    let text = spec(DS, "{ mq: { user: shared } }").replace(
        "      web:\n",
        "      worker:\n        image: \"example/worker:1\"\n        uses: [mq]\n        access: { mq: { user: shared } }\n      web:\n",
    );
    let all = diagnostics(&text);
    let d = all
        .iter()
        .find(|d| d.code == "duplicate-access-user")
        .unwrap_or_else(|| panic!("no duplicate-access-user in {all:?}"));
    assert!(
        d.message.contains("log in to `mq` as `shared`"),
        "{}",
        d.message
    );
}

#[test]
fn a_consumer_cannot_log_in_as_the_administrator_or_guest() {
    let text = spec(DS, "{ mq: { user: admin } }");
    expect(
        &text,
        "access-user-reserved",
        "`web` would log in to `mq` as `admin`, which is the datastore's administrator",
        at(&text, "admin }", 1),
    );
    let text = spec(DS, "{ mq: { user: guest } }");
    expect(
        &text,
        "access-user-reserved",
        "as `guest`, which is RabbitMQ's well-known guest account",
        at(&text, "guest }", 0),
    );
}

#[test]
fn derived_names_stay_within_swarms_limits() {
    // `<ns>_<service>-<datastore>-password-<version>` for a long service name.
    // 36 characters: a valid secret name (48 at most), but `demo_…-v<12 hex>` is 66 > 64.
    let long = "a-service-with-a-rather-long-name-xy";
    assert_eq!(long.len(), 36);
    let text = spec(DS, "{ mq: {} }").replace("      web:\n", &format!("      {long}:\n"));
    let all = diagnostics(&text);
    let d = all
        .iter()
        .find(|d| d.code == "name-too-long" && d.message.contains("its password's secret"))
        .unwrap_or_else(|| panic!("no name-too-long for the derived secret in {all:?}"));
    assert!(
        d.message.contains(&format!("{long}-mq-password")),
        "{}",
        d.message
    );
}
