//! Rules that keep values within what Docker and the file system take: the lengths of derived
//! Docker names, numeric ranges and units, layer names and env keys. One test per rule, in the
//! style of `rules.rs` (code, message, exact file:line:column).

mod common;

use common::*;

/// [`expect_in`] for one of several diagnostics with the same code: the one whose message holds
/// `msg` must be alone and at `pos`.
fn expect_one(text: &str, code: &str, msg: &str, pos: (u32, u32)) {
    let all = diagnostics(text);
    let found: Vec<_> = all
        .iter()
        .filter(|d| d.code == code && d.message.contains(msg))
        .collect();
    assert_eq!(
        found.len(),
        1,
        "want one `{code}` with {msg:?}, got: {all:#?}"
    );
    assert_eq!(
        (found[0].pos.line, found[0].pos.column),
        pos,
        "{}",
        found[0]
    );
    assert!(found[0].help.is_some(), "every error says what to do");
}

/// BASE with `namespace: <n letters>` in `local` (and so `offline`).
fn with_namespace(n: usize) -> String {
    replace(
        "    hostname: localhost",
        &format!("    namespace: {}\n    hostname: localhost", "n".repeat(n)),
    )
}

/// Adds a service (a flow mapping) to the `apps` layer.
fn add_app(text: &str, name: &str, body: &str) -> String {
    text.replacen(
        "  apps:\n    services:\n",
        &format!("  apps:\n    services:\n      {name}: {body}\n"),
        1,
    )
}

#[test]
fn derived_docker_names_fit_swarms_limits() {
    let ns30 = "n".repeat(30);
    // Service `<ns>_<service>`: 31 + 33 = 64 > 63.
    let long = "s".repeat(33);
    let text = add_app(&with_namespace(30), &long, "{ image: \"example/x:1\" }");
    expect(
        &text,
        "name-too-long",
        &format!("service name `{ns30}_{long}` would be 64 characters; Swarm allows at most 63"),
        at(&text, &long, 0),
    );
    // The network of a `uses` edge, `<ns>_<consumer>_to_<provider>`: 5 + 40 + 4 + 20 = 69.
    let (c, p) = ("c".repeat(40), "p".repeat(20));
    let text = add_app(
        &add_app(BASE, &p, "{ image: \"example/x:1\" }"),
        &c,
        &format!("{{ image: \"example/x:1\", uses: [{p}] }}"),
    );
    expect(
        &text,
        "name-too-long",
        &format!("`{c}` uses `{p}`: the network between them (`demo_{c}_to_{p}`) would be 69 characters; Swarm allows at most 63"),
        at(&text, &format!("[{p}]"), 0).map_col(1),
    );
    // A routed service's edge network `<ns>_edge_<service>`: 21 + 5 + 38 = 64.
    let routed = "r".repeat(38);
    let text = add_app(
        &with_namespace(20),
        &routed,
        "{ image: \"example/x:1\", routes: [{ subdomain: long, port: 80 }] }",
    );
    expect(
        &text,
        "name-too-long",
        "its edge network",
        at(&text, "{ subdomain: long", 0),
    );
    // Config `<ns>_<service>-<stem>-<12 hex>`: 5 + 3 + 1 + 45 + 13 = 67 > 64.
    let file = format!("{}.json", "f".repeat(40));
    let text = replace("file: web.json", &format!("file: {file}"));
    expect(
        &text,
        "name-too-long",
        &format!(
            "config name `demo_web-{}-json-<12 hex>` would be 67 characters; Swarm allows at most 64",
            "f".repeat(40)
        ),
        at(&text, &file, 0),
    );
    // Secret `<ns>_<name>-<12 hex>`: 5 + 48 + 13 = 66.
    let secret = "k".repeat(48);
    let text = replace(
        "  token: { source: generate }",
        &format!("  token: {{ source: generate }}\n  {secret}: {{ source: manual }}"),
    );
    expect(
        &text,
        "name-too-long",
        &format!("secret name `demo_{secret}-<12 hex>` would be 66 characters"),
        at(&text, &secret, 0),
    );
}

#[test]
fn vault_made_secret_names_fit_swarms_limits() {
    // A reader's token `<ns>_vault-token-<service>-<12 hex>`: 37 + 12 + 3 + 13 = 65.
    let text = with_vault_config(&|t| {
        t.replacen(
            "    hostname: localhost",
            &format!("    namespace: {}\n    hostname: localhost", "n".repeat(36)),
            1,
        )
    });
    expect(
        &text,
        "name-too-long",
        "`web` reads Vault: its token secret",
        at(&text, "platform/web/*", 0),
    );
    // The unseal agent's `<ns>_vault-unseal-<12 hex>`: 40 + 12 + 13 = 65.
    let text = with_vault_config(&|t| {
        t.replacen(
            "    hostname: localhost",
            &format!("    namespace: {}\n    hostname: localhost", "n".repeat(39)),
            1,
        )
        .replacen(
            "      redis: { image",
            "      vault-agent: { role: unseal-agent, image: \"example/agent:1\" }\n      redis: { image",
            1,
        )
    });
    expect_one(
        &text,
        "name-too-long",
        "the unseal agent's secret",
        at(&text, "vault-agent", 0),
    );
}

/// A backed-up environment's names are checked as a drill makes them (`<ns>-drill`), and the
/// backups' own Vault token secret with them: found by a bench whose 21-letter namespace made
/// `up` fail mid-way (Swarm refused the 65-character secret after Vault issued the token).
#[test]
fn a_backed_up_environments_names_fit_in_its_drill_too() {
    let backed_up = |ns: usize| {
        with_vault_config(&|t| {
            t.replacen(
                "    hostname: localhost",
                &format!("    namespace: {}
    hostname: localhost", "n".repeat(ns)),
                1,
            )
            .replacen(
                "    tls: { mode: self-signed }\n  offline:",
                "    tls: { mode: self-signed }\n    backup: { to: s3, bucket: backups }\n  offline:",
                1,
            )
            .replacen(
                "external:\n",
                "external:\n  s3: { kind: s3, endpoint: \"https://s3.example.org\", admin_access_key: token, admin_secret_key: token }\n",
                1,
            )
            .replacen(
                "      redis: { image",
                "      vault-agent: { role: unseal-agent, image: \"example/agent:1\" }\n      redis: { image",
                1,
            )
        })
    };
    // `<ns>-drill_vault-token-sprocketctl-backup-<12 hex>`: 14 + 6 + 1 + 30 + 13 = 64 fits.
    let text = backed_up(14);
    assert!(text.contains("backup: { to: s3"), "the spec has its backup");
    assert!(diagnostics(&text).is_empty(), "{:#?}", diagnostics(&text));
    // One letter more: 65 in the drill, said at the environment's `backup` as a warning (`up`
    // works; `drill` stops at its start on the same check, as an error there).
    let text = backed_up(15);
    let ns = "n".repeat(15);
    expect_one(
        &text,
        "drill-name-too-long",
        &format!(
            "the backups' Vault token secret `{ns}-drill_vault-token-sprocketctl-backup-<12 hex>` would be 65 characters in `sprocketctl drill`'s scratch namespace `{ns}-drill`; Swarm allows at most 64: a drill of this environment stops before it starts"
        ),
        at(&text, "{ to: s3, bucket: backups }", 0),
    );
    assert!(diagnostics(&text).iter().all(|d| !d.is_error()));
    // 21 letters: 65 in the environment itself — an error (`up` would stop after Vault issued
    // the token), and no second word of it for the drill.
    let text = backed_up(21);
    expect_one(
        &text,
        "name-too-long",
        "the backups' Vault token secret",
        at(&text, "{ to: s3, bucket: backups }", 0),
    );
    assert!(
        !diagnostics(&text)
            .iter()
            .any(|d| d.code == "drill-name-too-long" && d.message.contains("backups' Vault token")),
        "{:#?}",
        diagnostics(&text)
    );
    let ns = "n".repeat(15);
    // Without backups, the same namespace is fine (no drill, no backups' token).
    let plain = with_vault_config(&|t| {
        t.replacen(
            "    hostname: localhost",
            &format!("    namespace: {ns}\n    hostname: localhost"),
            1,
        )
    });
    assert!(diagnostics(&plain).iter().all(|d| !d.is_error()));
}

#[test]
fn replicas_are_bounded() {
    let text = replace(
        "redis: { image",
        "redis: { replicas: 18446744073709551615, image",
    );
    expect(
        &text,
        "invalid-replicas",
        "18446744073709551615 replicas: at most 1000 are accepted",
        at(&text, "18446744073709551615", 0),
    );
    // An environment's override too.
    let text = replace(
        "    endpoint_mode: dnsrr",
        "    endpoint_mode: dnsrr\n    services: { redis: { replicas: 1001 } }",
    );
    expect(
        &text,
        "invalid-replicas",
        "1001 replicas",
        at(&text, "1001", 0),
    );
    let text = replace("redis: { image", "redis: { replicas: 1000, image");
    assert!(diagnostics(&text).iter().all(|d| !d.is_error()));
}

#[test]
fn cpus_are_positive_and_bounded() {
    for bad in ["-3.5", "0", "1e300", "0.0000000001"] {
        let text = replace(
            "redis: { image",
            &format!("redis: {{ resources: {{ reserve_cpus: 1, cpus: {bad} }}, image"),
        );
        expect(
            &text,
            "invalid-cpus",
            "CPUs: give a number above 0 and at most 1000000",
            at(&text, &format!("cpus: {bad}"), 0).map_col(6),
        );
    }
    let text = replace(
        "redis: { image",
        "redis: { resources: { cpus: 0.25, reserve_cpus: 2 }, image",
    );
    assert!(diagnostics(&text).iter().all(|d| !d.is_error()));
}

#[test]
fn memory_takes_one_unit_and_fits_docker() {
    let text = replace(
        "redis: { image",
        "redis: { resources: { reserve_memory: 1bibib }, image",
    );
    expect(
        &text,
        "invalid-memory",
        "`1bibib` is not a memory size",
        at(&text, "1bibib", 0),
    );
    let text = replace(
        "redis: { image",
        "redis: { resources: { memory: 9000000000G }, image",
    );
    expect(
        &text,
        "invalid-memory",
        "`9000000000G` is more memory than Docker can hold",
        at(&text, "9000000000G", 0),
    );
    let text = replace(
        "redis: { image",
        "redis: { resources: { memory: 512MiB, reserve_memory: 1g }, image",
    );
    assert!(diagnostics(&text).iter().all(|d| !d.is_error()));
}

#[test]
fn durations_fit_signed_nanoseconds() {
    let text = replace(
        "redis: { image",
        "redis: { stop_grace_period: 2600000h, image",
    );
    expect(
        &text,
        "invalid-duration",
        "`2600000h` is longer than Docker can hold",
        at(&text, "2600000h", 0),
    );
    let text = replace(
        "redis: { image",
        "redis: { health: { cmd: [redis-cli, ping], timeout: 3000000h }, image",
    );
    expect(
        &text,
        "invalid-duration",
        "`3000000h` is longer",
        at(&text, "3000000h", 0),
    );
}

#[test]
fn health_retries_are_bounded() {
    let text = replace(
        "redis: { image",
        "redis: { health: { cmd: [redis-cli, ping], retries: 18446744073709551615 }, image",
    );
    expect(
        &text,
        "invalid-retries",
        "18446744073709551615 health check retries: at most 1000",
        at(&text, "18446744073709551615", 0),
    );
}

#[test]
fn layer_names_are_object_names() {
    // They become file names under `render --out`.
    let text = replace("  data:\n", "  /../../pwned-by-layer-name:\n");
    expect(
        &text,
        "invalid-layer-name",
        "layer name `/../../pwned-by-layer-name` must be",
        at(&text, "/../../pwned", 0),
    );
}

#[test]
fn env_keys_are_variable_names() {
    let text = replace(
        "        image: \"example/web:1\"\n",
        "        image: \"example/web:1\"\n        env: { LOG_LEVEL: info, \"A=B\": c }\n",
    );
    expect(
        &text,
        "invalid-env-key",
        "environment variable name \"A=B\" must be letters, digits and `_`",
        at(&text, "\"A=B\"", 0),
    );
    // An environment's override too: the empty name the engine would refuse.
    let text = replace(
        "    endpoint_mode: dnsrr",
        "    endpoint_mode: dnsrr\n    services: { web: { env: { \"\": x } } }",
    );
    expect(
        &text,
        "invalid-env-key",
        "environment variable name \"\"",
        at(&text, "\"\": x", 0),
    );
}

/// A long chain of `uses` is checked without recursion (no stack overflow) and without work
/// per pair of services; `scripts/measure-validate` times it.
#[test]
fn a_long_chain_of_uses_validates() {
    let mut text = String::from("platform: chain\nlayers:\n  apps:\n    services:\n      s0: { image: \"example/app:1\" }\n");
    for i in 1..20000 {
        text.push_str(&format!(
            "      s{i}: {{ image: \"example/app:1\", uses: [s{}] }}\n",
            i - 1
        ));
    }
    text.push_str("environments:\n  local: { hostname: localhost }\n");
    let all = diagnostics(&text);
    assert!(all.iter().all(|d| !d.is_error()), "{all:#?}");
}

#[test]
fn a_services_error_budget_for_check() {
    let text = add_app(
        BASE,
        "noisy",
        "{ image: \"example/x:1\", check: { errors_per_day: 500 } }",
    );
    let p = local_platform(&text);
    assert_eq!(p.service("noisy").unwrap().errors_per_day, 500);
    let quiet = p.services().find(|s| s.name != "noisy").unwrap();
    assert_eq!(quiet.errors_per_day, 50, "the runbook's default");
    let text = add_app(
        BASE,
        "noisy",
        "{ image: \"example/x:1\", check: { errors_per_hour: 5 } }",
    );
    expect(
        &text,
        "unknown-key",
        "errors_per_hour",
        at(&text, "errors_per_hour", 0),
    );
}
