//! An environment's `alerts`: a webhook (and its body's format) and/or an Alertmanager, how
//! many rounds fire and resolve an alert, how often the agent checks; inherited through
//! `extends`. Each rule's code, message and file:line:column.

mod common;

use common::*;
use sprocket_spec::model::AlertFormat;

/// BASE with `alerts: <alerts>` in `local` (and so in `offline`, which extends it).
fn spec(alerts: &str) -> String {
    replace(
        "    tls: { mode: self-signed }\n  offline:",
        &format!("    tls: {{ mode: self-signed }}\n    alerts: {alerts}\n  offline:"),
    )
}

#[test]
fn alerts_with_their_defaults_inherited_by_an_extending_environment() {
    let text = spec("{ webhook: \"https://hooks.example.org/T0/B0\", format: slack }");
    let a = platform(&text, "offline").environment.alerts.unwrap();
    assert_eq!(
        a.webhook.as_deref(),
        Some("https://hooks.example.org/T0/B0")
    );
    assert_eq!(a.format, AlertFormat::Slack);
    assert_eq!((a.fail_after, a.resolve_after, a.interval_s), (3, 2, 30));
    assert_eq!(a.alertmanager, None);
    let text = spec("{ alertmanager: \"http://alertmanager:9093\", fail_after: 1, resolve_after: 5, interval: 2m }");
    let a = local_platform(&text).environment.alerts.unwrap();
    assert_eq!((a.fail_after, a.resolve_after, a.interval_s), (1, 5, 120));
    assert!(local_platform(BASE).environment.alerts.is_none());
}

#[test]
fn bad_alerts_are_refused_where_they_are_written() {
    let text = spec("{ format: discord }");
    expect(
        &text,
        "alerts-without-destination",
        "`alerts` names neither a `webhook` nor an `alertmanager`",
        at(&text, "{ format: discord }", 0),
    );
    let text = spec("{ webhook: \"hooks.example.org/x\" }");
    expect(
        &text,
        "invalid-alerts",
        "alerts.webhook `hooks.example.org/x` is not an http(s) URL",
        at(&text, "\"hooks.example.org/x\"", 0),
    );
    let text = spec("{ alertmanager: \"http://am:9093\", fail_after: 0 }");
    expect(
        &text,
        "invalid-alerts",
        "alerts.fail_after 0 is not 1 to 100 rounds",
        {
            let (line, column) = at(&text, "fail_after: 0", 0);
            (line, column + "fail_after: ".len() as u32)
        },
    );
    let text = spec("{ alertmanager: \"http://am:9093\", interval: 2h }");
    expect(
        &text,
        "invalid-alerts",
        "alerts.interval `2h` is not 1s to 1h",
        at(&text, "2h", 0),
    );
    let text = spec("{ alertmanager: \"http://am:9093\", format: slack }");
    expect(
        &text,
        "invalid-alerts",
        "alerts.format is the webhook's body, but there is no `webhook`",
        at(&text, "slack", 0),
    );
    let text = spec("{ alertmanager: \"https://ops:hunter2@am.example.org\" }");
    let d = expect(
        &text,
        "invalid-alerts",
        "alerts.alertmanager carries a user and password in its URL",
        at(&text, "\"https://ops:hunter2@", 0),
    );
    assert!(!d.message.contains("hunter2"), "the error never repeats it");
    let text = spec("{ webhook: \"http://x:1/\", format: teams }");
    let d = diagnostics(&text);
    assert!(
        d.iter()
            .any(|d| d.code == "invalid-alerts" && d.message.contains("teams")),
        "{d:#?}"
    );
}

#[test]
fn a_webhook_that_is_a_credential_comes_from_a_secret_mounted_into_the_agent() {
    let with_agent = |alerts: &str| {
        format!(
            "{}\nvault:\n  shares: 1\n  threshold: 1\n  recipients: [\"age1qyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqs3290gq\"]\n",
            spec(alerts)
                .replace(
                    "      proxy: { role: docker-api-proxy",
                    "      bao: { role: vault, image: \"openbao/openbao:2.7.2\", command: [bao, server] }\n      agent: { role: unseal-agent, image: \"example/sprocketctl:1\" }\n      proxy: { role: docker-api-proxy",
                )
                .replace(
                    "  token: { source: generate }",
                    "  token: { source: generate }\n  slack-hook: { source: doppler, key: SLACK_WEBHOOK }",
                )
        )
    };
    let text = with_agent("{ webhook_secret: slack-hook, format: slack }");
    let p = local_platform(&text);
    let a = p.environment.alerts.as_ref().unwrap();
    assert_eq!(a.webhook_secret.as_deref(), Some("slack-hook"));
    assert_eq!(a.webhook, None);
    let agent = p.service("agent").unwrap();
    let m = agent
        .secrets
        .iter()
        .find(|m| m.name == "slack-hook")
        .unwrap();
    assert_eq!(m.target, "/run/secrets/alerts-webhook");
    assert!(p
        .service("web")
        .unwrap()
        .secrets
        .iter()
        .all(|m| m.name != "slack-hook"));
    let text = with_agent("{ webhook_secret: slack-hok }");
    expect(
        &text,
        "undeclared-secret",
        "alerts.webhook_secret `slack-hok` is not declared",
        at(&text, "slack-hok }", 0),
    );
    let text = with_agent("{ webhook: \"http://x:1/\", webhook_secret: slack-hook }");
    expect(
        &text,
        "invalid-alerts",
        "alerts has both `webhook` and `webhook_secret`",
        at(&text, "slack-hook }", 0),
    );
}

/// BASE with Vault and an unseal agent whose routes are `routes`.
fn with_agent(routes: &str) -> String {
    with_vault(VAULT).replacen(
        "      redis: { image",
        &format!("      agent: {{ role: unseal-agent, image: \"example/sprocketctl:1\", routes: {routes} }}\n      redis: {{ image"),
        1,
    )
}

#[test]
fn a_route_of_the_agent_is_its_status_page_and_makes_it_watch() {
    // No `alerts`: the agent watches anyway (for its page), with the default rounds, and keeps
    // its history on its volume; its route forwards to the status page's port.
    let p = local_platform(&with_agent("[{ subdomain: health }]"));
    assert!(p.environment.alerts.is_none());
    let agent = p.service("agent").unwrap();
    assert_eq!(
        agent.routes[0].port,
        Some(sprocket_spec::model::Alerts::STATUS_PORT)
    );
    assert_eq!(agent.routes[0].hosts, ["health.localhost"]);
    assert!(
        agent.uses.contains(&"traefik".to_string()),
        "{:?}",
        agent.uses
    );
    assert!(agent.volumes.iter().any(|v| matches!(
        v,
        sprocket_spec::model::Volume::Named { target, .. } if target == sprocket_spec::model::Alerts::STATE_DIR
    )));
    // Without a route or alerts, it only unseals.
    let text = with_vault(VAULT).replacen(
        "      redis: { image",
        "      agent: { role: unseal-agent, image: \"example/sprocketctl:1\" }\n      redis: { image",
        1,
    );
    let agent = local_platform(&text).service("agent").unwrap().clone();
    assert!(!agent.uses.contains(&"traefik".to_string()));
    assert!(agent.volumes.is_empty());
}

#[test]
fn a_route_of_the_agent_to_another_port_is_refused() {
    let text = with_agent("[{ subdomain: health, port: 9090 }]");
    expect(
        &text,
        "agent-route-port",
        "route `agent` of the unseal agent `agent` forwards to port 9090; the agent serves only its status page to routes, on port 8080",
        {
            let (line, column) = at(&text, "port: 9090", 0);
            (line, column + "port: ".len() as u32)
        },
    );
}
