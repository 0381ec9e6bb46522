//! Which login each consumer has, from the real example spec: own logins from `access`, the
//! shared Redis login for the apps that take no user name.

mod common;

use common::example;
use sprocket_desired::logins::logins;

fn of<'a>(all: &'a [sprocket_desired::logins::LoginInfo], ds: &str, who: &str) -> &'a str {
    all.iter()
        .find(|l| l.datastore == ds && l.consumer == who)
        .map(|l| l.login.as_str())
        .unwrap_or_else(|| panic!("no {who} on {ds}: {all:#?}"))
}

#[test]
fn each_consumer_is_told_which_login_it_has() {
    let all = logins(&example("offline"));
    assert_eq!(of(&all, "redis", "demo"), "ACL user demo (~demo:* &demo:*)");
    // Both take their user from `{access.…user}`: two logins each, alternating per rotation.
    assert_eq!(
        of(&all, "rabbitmq", "demo"),
        "demo@demo, alternating with demo_b"
    );
    assert_eq!(
        of(&all, "postgres", "n8n"),
        "sprocket_n8n@sprocket_n8n (owner, alternating with sprocket_n8n_b)"
    );
    assert!(
        all.iter().filter(|l| l.own).count() == all.len(),
        "{all:#?}"
    );

    // Production: the Sprocket apps read only /app/secret/redis-password.txt — the shared
    // login; those that use RabbitMQ or PostgreSQL without `access` have none of their own.
    let prod = logins(&example("prod"));
    assert_eq!(
        of(&prod, "redis", "core"),
        "the shared `default` login (it mounts `redis-password`)"
    );
    let core_pg = prod
        .iter()
        .find(|l| l.datastore == "postgres" && l.consumer == "core")
        .unwrap();
    assert!(!core_pg.own);
    assert!(core_pg.login.starts_with("none of its own"), "{core_pg:?}");
}
