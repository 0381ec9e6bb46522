//! One test per validation rule: each asserts the rule's code, its message and the exact
//! file:line:column it points at. A valid base spec is mutated by text replacement.
//! The base spec and the assertions live in `common`; the rules that keep a spec from
//! smuggling access are in `access.rs`, Docker's limits and value ranges in `limits.rs`.

mod common;

use common::*;
use sprocket_spec::{parse, resolve, validate_all, Files};
use std::path::{Path, PathBuf};

#[test]
fn base_is_valid_in_every_environment() {
    let all = diagnostics(BASE);
    assert!(all.iter().all(|d| !d.is_error()), "{all:#?}");
}

#[test]
fn unknown_keys_are_all_reported_with_their_place() {
    let text = replace("      redis: { image", "      redis: { imagee: x, image").replacen(
        "    hostname: localhost",
        "    hostnme: x\n    hostname: localhost",
        1,
    );
    let all = diagnostics(&text);
    let unknown: Vec<_> = all.iter().filter(|d| d.code == "unknown-key").collect();
    assert_eq!(unknown.len(), 2, "{all:#?}");
    assert!(unknown
        .iter()
        .any(|d| d.message.contains("`imagee`")
            && (d.pos.line, d.pos.column) == at(&text, "imagee", 0)));
    assert!(unknown.iter().any(|d| d.message.contains("`hostnme`")
        && (d.pos.line, d.pos.column) == at(&text, "hostnme", 0)));
}

#[test]
fn yaml_type_error_has_location() {
    let text = replace("port: 5432", "port: [1]");
    let d = expect(&text, "yaml", "", at(&text, "[1]", 0));
    assert!(
        !d.message.contains("line "),
        "location printed once: {}",
        d.message
    );
}

#[test]
fn duplicate_service_across_layers() {
    let text = replace(
        "  apps:\n    services:\n",
        "  apps:\n    services:\n      redis: { image: \"redis:7\" }\n",
    );
    let d = expect(
        &text,
        "duplicate-service",
        "`redis` is defined twice",
        at(&text, "redis: { image: \"redis:7\" }", 0),
    );
    assert_eq!(
        d.related.unwrap().pos.line,
        at(&text, "redis: { image: \"redis:7.0", 0).0
    );
}

#[test]
fn duplicate_router_name() {
    let text = replace(
        "{ subdomain: admin, port: 3000,",
        "{ name: auth, subdomain: admin, port: 3000,",
    );
    expect(
        &text,
        "duplicate-router",
        "router name `auth` is used twice",
        at(&text, "{ name: auth", 0),
    );
}

#[test]
fn two_routes_on_one_host_and_path() {
    let text = replace(
        "{ subdomain: admin, port: 3000,",
        "{ subdomain: auth, port: 3000,",
    );
    let d = expect(
        &text,
        "route-collision",
        "both claim host `auth.localhost` with path `/`",
        at(&text, "{ subdomain: auth, port: 3000,", 0),
    );
    assert_eq!(
        d.related.unwrap().pos.line,
        at(&text, "{ subdomain: auth, port: 3000 }", 0).0
    );
}

#[test]
fn two_ip_access_routes_collide_on_the_ip_unless_paths_differ() {
    let text = replace(
        "routes: [{ subdomain: auth, port: 3000 }]",
        "routes: [{ subdomain: auth, port: 3000, ip_access: true }]",
    );
    let d = expect(
        &text,
        "route-collision",
        "host `192.168.1.10` with path `/`",
        at(&text, "{ port: 3000, ip_access: true }", 0),
    );
    assert!(d.help.unwrap().contains("its own `path`"));
    let fixed = replace(
        "routes: [{ subdomain: auth, port: 3000 }]",
        "routes: [{ subdomain: auth, port: 3000, ip_access: true, path: /auth }]",
    );
    assert!(diagnostics(&fixed)
        .iter()
        .all(|d| d.code != "route-collision"));
}

#[test]
fn dependency_on_undefined_service() {
    let text = replace("uses: [redis, postgres]", "uses: [rediss, postgres]");
    let d = expect(
        &text,
        "unknown-dependency",
        "uses `rediss`, which is neither",
        at(&text, "rediss", 0),
    );
    assert_eq!(d.help.as_deref(), Some("did you mean `redis`?"));
}

#[test]
fn dependency_cycle() {
    let text = replace("      redis: { image: \"redis:7.0-alpine\",", "      cache: { image: \"redis:7\", uses: [redis] }\n      redis: { uses: [cache], image: \"redis:7.0-alpine\",");
    expect(
        &text,
        "dependency-cycle",
        "cache → redis → cache",
        at(&text, "[cache]", 0).map_col(1),
    );
}

#[test]
fn dependency_on_a_later_layer() {
    let text = replace(
        "      redis: { image: \"redis:7.0-alpine\",",
        "      redis: { uses: [web], image: \"redis:7.0-alpine\",",
    );
    expect(
        &text,
        "dependency-on-later-layer",
        "in the later layer `apps`",
        at(&text, "web]", 0),
    );
}

#[test]
fn published_port_clash_with_the_edge_router() {
    let text = replace("published: 6379", "published: 80");
    expect(
        &text,
        "port-clash",
        "both publish tcp port 80",
        at(&text, "{ target: 6379", 0),
    );
}

#[test]
fn malformed_image_reference() {
    let text = replace("\"example/web:1\"", "\"Example/web:1\"");
    expect(
        &text,
        "invalid-image",
        "uppercase",
        at(&text, "\"Example", 0),
    );
}

#[test]
fn invalid_host_and_ip() {
    let text = replace("hostname: localhost", "hostname: bad_host.example");
    expect(
        &text,
        "invalid-host",
        "contains `_`",
        at(&text, "bad_host", 0),
    );
    let text = replace("server_ip: 192.168.1.10", "server_ip: 192.168.1.300");
    expect(
        &text,
        "invalid-ip",
        "`192.168.1.300` is not an IPv4",
        at(&text, "192.168.1.300", 0),
    );
}

#[test]
fn undeclared_secret_reference() {
    let text = replace("secrets: [token]", "secrets: [tokn]");
    let d = expect(
        &text,
        "undeclared-secret",
        "references secret `tokn`",
        at(&text, "tokn", 0),
    );
    assert!(d.help.unwrap().contains("did you mean `token`?"));
}

#[test]
fn lets_encrypt_on_localhost_or_an_ip() {
    let text = replace(
        "tls: { mode: self-signed }",
        "tls: { mode: letsencrypt, email: a@b.org }",
    );
    let all = diagnostics(&text);
    let acme: Vec<_> = all
        .iter()
        .filter(|d| d.code == "acme-on-local-host")
        .collect();
    assert!(
        acme.iter().any(|d| d.message.contains("`localhost`")
            && (d.pos.line, d.pos.column) == at(&text, "letsencrypt", 0)),
        "{all:#?}"
    );
    assert!(
        acme.iter().any(|d| d.message.contains("`192.168.1.10`")
            && (d.pos.line, d.pos.column) == at(&text, "{ port: 3000, ip_access: true }", 0)),
        "{all:#?}"
    );
}

#[test]
fn extends_cycle_and_unknown_parent() {
    let text = replace(
        "  local:\n    hostname",
        "  local:\n    extends: offline\n    hostname",
    );
    expect(
        &text,
        "extends-cycle",
        "local → offline → local",
        at(&text, "local\n    endpoint", 0),
    );
    let text = replace("extends: local", "extends: lcoal");
    let d = expect(
        &text,
        "unknown-parent",
        "extends `lcoal`, which is not defined",
        at(&text, "lcoal", 0),
    );
    assert_eq!(d.help.as_deref(), Some("did you mean `local`?"));
}

#[test]
fn a_service_may_not_use_one_its_environment_disables() {
    let text = replace(
        "disable: { auth: \"no image here\" }",
        "disable: { redis: \"no image here\" }",
    );
    expect(
        &text,
        "disabled-dependency",
        "uses `redis`, which this environment disables (no image here)",
        at(&text, "redis, postgres", 0),
    );
}

#[test]
fn missing_config_file() {
    let text = replace("file: web.json", "file: web.jsn");
    expect(
        &text,
        "missing-config-file",
        "cannot read config file",
        at(&text, "web.jsn", 0),
    );
}

#[test]
fn gated_route_is_dropped_where_its_gate_does_not_run() {
    let p = parse(source(BASE)).unwrap();
    let offline = resolve(&p, Some("offline"), &Files::new(&files))
        .unwrap()
        .platform;
    let web = offline.service("web").unwrap();
    assert_eq!(web.routes.len(), 1);
    assert_eq!(web.dropped_routes[0].service, "web-2");
    assert!(web.dropped_routes[0]
        .reason
        .contains("needs `auth`, which does not run here (no image here)"));
    let local = resolve(&p, Some("local"), &Files::new(&files))
        .unwrap()
        .platform;
    assert_eq!(local.service("web").unwrap().routes.len(), 2);
}

#[test]
fn every_problem_is_reported_at_once() {
    let text = replace("uses: [redis, postgres]", "uses: [rediss, postgres]")
        .replacen("secrets: [token]", "secrets: [tokn]", 1)
        .replacen("\"example/web:1\"", "\"Example/web:1\"", 1)
        .replacen(
            "    hostname: localhost",
            "    hostnme: x\n    hostname: localhost",
            1,
        );
    let codes: Vec<&str> = diagnostics(&text).iter().map(|d| d.code).collect();
    for c in [
        "unknown-dependency",
        "undeclared-secret",
        "invalid-image",
        "unknown-key",
    ] {
        assert!(codes.contains(&c), "{c} missing from {codes:?}");
    }
}

#[test]
fn environment_overlays_and_ip_rules() {
    let p = parse(source(BASE)).unwrap();
    let off = resolve(&p, Some("offline"), &Files::new(&files))
        .unwrap()
        .platform;
    assert_eq!(off.environment.chain, ["offline", "local"]);
    assert_eq!(off.environment.hostname, "localhost");
    assert_eq!(
        off.environment.endpoint_mode,
        sprocket_spec::model::EndpointMode::Dnsrr
    );
    assert_eq!(off.layers[0].disabled[0].service, "auth");
    assert_eq!(
        off.service("web").unwrap().routes[0].hosts,
        ["localhost", "192.168.1.10"]
    );
    let err = resolve(&p, Some("nope"), &Files::new(&files)).unwrap_err();
    assert!(err.diagnostics[0].message.contains("`nope` is not defined"));
    assert!(err.diagnostics[0]
        .help
        .as_ref()
        .unwrap()
        .contains("local, offline"));
}

#[test]
fn the_example_spec_is_valid_in_every_environment() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/sprocket/sprocket.yaml");
    let p = sprocket_spec::parse_file(&path).unwrap();
    let report = validate_all(&p, &Files::disk());
    // The only acceptable warning: a developer's own Vault key file that `vault keygen` makes.
    assert!(
        report
            .diagnostics
            .iter()
            .all(|d| d.code == "missing-recipients-file"),
        "{report}"
    );
    let lines = p.source.text.lines().count();
    assert!(
        lines < 600,
        "the whole platform fits in under 600 lines; it is {lines}"
    );
    let offline = resolve(&p, Some("offline"), &Files::disk())
        .unwrap()
        .platform;
    let running: Vec<&str> = offline.services().map(|s| s.name.as_str()).collect();
    // The agent's uses are derived: Vault, the Docker API proxy, and the edge router (it
    // watches the routes through it, for its status page).
    assert_eq!(
        offline.service("vault-agent").unwrap().uses,
        ["socket-proxy", "traefik", "vault"]
    );
    assert_eq!(
        running,
        [
            "traefik",
            "socket-proxy",
            "vault",
            "vault-agent",
            "redis",
            "rabbitmq",
            "n8n",
            "demo"
        ]
    );
}

#[test]
fn vault_section_resolves_per_environment() {
    let p = parse(source(&with_vault(VAULT))).unwrap();
    let v = resolve(&p, Some("local"), &Files::new(&files))
        .unwrap()
        .platform
        .vault
        .unwrap();
    assert_eq!((v.service.as_str(), v.shares, v.threshold), ("vault", 5, 3));
    assert!(
        v.keyring.ends_with("keyrings/demo.age"),
        "{}",
        v.keyring.display()
    );
    // Where Vault does not run, there is nothing to initialise.
    let text = with_vault(VAULT).replacen(
        "disable: { auth: \"no image here\" }",
        "disable: { auth: \"no image here\", vault: off }",
        1,
    );
    let p = parse(source(&text)).unwrap();
    assert!(resolve(&p, Some("offline"), &Files::new(&files))
        .unwrap()
        .platform
        .vault
        .is_none());
}

/// `file:~/…` recipients are read from the home folder the caller hands in, never from the
/// process's own `HOME`.
#[test]
fn recipients_file_under_home_comes_from_the_injected_home() {
    const KEY: &str = "age1qyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqs3290gq";
    let text = with_vault(&VAULT.replace(KEY, "file:~/.config/sprocket/age.pub"));
    let p = parse(source(&text)).unwrap();
    let read = |f: &Path| {
        if f == Path::new("/home/op/.config/sprocket/age.pub") {
            Ok(format!("# mine\n{KEY}\n").into_bytes())
        } else {
            files(f)
        }
    };
    let with_home = Files {
        home: Some(PathBuf::from("/home/op")),
        ..Files::new(&read)
    };
    let v = resolve(&p, Some("local"), &with_home)
        .unwrap()
        .platform
        .vault
        .unwrap();
    assert_eq!(v.recipients, [KEY]);
    // Another home: the file is not there, a warning says where it was looked for.
    let elsewhere = Files {
        home: Some(PathBuf::from("/home/other")),
        ..Files::new(&read)
    };
    let loaded = resolve(&p, Some("local"), &elsewhere).unwrap();
    assert!(loaded.platform.vault.unwrap().recipients.is_empty());
    assert!(
        loaded
            .warnings
            .iter()
            .any(|d| d.code == "missing-recipients-file"
                && d.message.contains("/home/other/.config/sprocket/age.pub")),
        "{:?}",
        loaded.warnings
    );
}

#[test]
fn vault_rules() {
    let text = replace("layers:\n", &format!("{VAULT}layers:\n"));
    expect(
        &text,
        "vault-without-service",
        "no service with `role: vault`",
        at(&text, "shares", 0),
    );
    let text = with_vault(&VAULT.replace("threshold: 3", "threshold: 7"));
    expect(
        &text,
        "invalid-vault-threshold",
        "threshold 7 must be between 1 and the number of shares (5)",
        at(&text, "7", 0),
    );
    let text = with_vault(&VAULT.replace("\"age1", "\"ecdsa-sha2 age1"));
    let all = diagnostics(&text);
    assert!(
        all.iter()
            .any(|d| d.code == "invalid-recipient" && d.message.contains("not an age")),
        "{all:#?}"
    );
    let text = with_vault(&VAULT.replace(
        "recipients: [\"age1qyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqs3290gq\"]",
        "recipients: []",
    ));
    expect(
        &text,
        "no-vault-recipients",
        "nobody could open the keyring",
        at(&text, "shares", 0),
    );
}

#[test]
fn vault_configuration_resolves_and_derives_the_readers() {
    let text = with_vault_config(&|t| t);
    assert!(
        diagnostics(&text).iter().all(|d| !d.is_error()),
        "{:#?}",
        diagnostics(&text)
    );
    let p = parse(source(&text)).unwrap();
    let platform = resolve(&p, Some("local"), &Files::new(&files))
        .unwrap()
        .platform;
    let v = platform.vault.as_ref().unwrap();
    assert_eq!(v.readers["web"], ["platform/web/*"]);
    assert_eq!(v.token_period_s, 3600);
    assert_eq!(v.mounts.len(), 2);
    assert_eq!(v.github.as_ref().unwrap().teams["devs"], ["devs"]);
    // Reading Vault means talking to it: the dependency (and so the network) is derived.
    assert!(platform
        .service("web")
        .unwrap()
        .uses
        .contains(&"vault".to_string()));
}

#[test]
fn vault_configuration_rules() {
    let text = with_vault_config(&|t| t.replace("[read, list] }]", "[read, lst] }]"));
    expect(
        &text,
        "invalid-capability",
        "`lst` is not a Vault capability",
        at(&text, "lst", 0),
    );
    let text = with_vault_config(&|t| t.replace("devs: [devs]", "devs: [devs, admins]"));
    expect(
        &text,
        "unknown-policy",
        "GitHub team `devs` gets policy `admins`, which `vault.policies` does not declare",
        at(&text, "admins", 0),
    );
    let text = with_vault_config(&|t| t.replace("vault: [platform/web/*]", "vault: [secret/web]"));
    expect(
        &text,
        "unknown-vault-mount",
        "`secret/web` is under `secret/`, which `vault.mounts` does not declare",
        at(&text, "secret/web", 0),
    );
    let text =
        with_vault_config(&|t| t.replace("vault: [platform/web/*]", "vault: [platform/*/x]"));
    expect(
        &text,
        "invalid-vault-path",
        "`*` may only end a Vault path",
        at(&text, "platform/*/x", 0),
    );
    let text = with_vault_config(&|t| {
        t.replace(
            "auth: { image: \"example/auth:1\",",
            "auth: { image: \"example/auth:1\", vault: [platform/auth],",
        )
    });
    expect(
        &text,
        "vault-reader-too-early",
        "`auth` (layer `infra`) reads Vault, which runs in the same or a later layer `data`: readers go in a layer after Vault's, so the order of layers says Vault comes first",
        at(&text, "platform/auth", 0),
    );
    let text = with_vault_config(&|t| t.replace("misc: kv }", "misc: kv-v3 }"));
    expect(
        &text,
        "invalid-mount-type",
        "mount `misc`: unknown type `kv-v3`",
        at(&text, "kv-v3", 0),
    );
    let text = with_vault_config(&|t| t.replace("    devs: [{", "    svc-x: [{"));
    expect(
        &text,
        "invalid-policy-name",
        "`svc-x` cannot name a team policy",
        at(&text, "svc-x", 0),
    );
    // Vault lowercases policy names and team keys: capitals would never settle.
    let text = with_vault_config(&|t| {
        t.replace("    devs: [{", "    Devs: [{")
            .replace("devs: [devs]", "devs: [Devs]")
    });
    expect(
        &text,
        "invalid-policy-name",
        "`Devs` cannot name a team policy",
        at(&text, "Devs", 0),
    );
    let text =
        with_vault_config(&|t| t.replace("teams: { devs: [devs] }", "teams: { Dev-Team: [devs] }"));
    expect(
        &text,
        "invalid-team",
        "`Dev-Team` is not a GitHub team slug",
        at(&text, "Dev-Team", 0),
    );
    let text = with_vault_config(&|t| t.replace("token_period: 1h", "token_period: 1s"));
    expect(
        &text,
        "invalid-token-period",
        "at least 3s",
        at(&text, "1s", 0),
    );
    // A reader needs Vault to run where it runs.
    let text = with_vault_config(&|t| {
        t.replace(
            "disable: { auth: \"no image here\" }",
            "disable: { auth: \"no image here\", vault: off }",
        )
    });
    let all = diagnostics(&text);
    assert!(
        all.iter().any(|d| d.code == "disabled-dependency"
            && d.message
                .contains("`web` reads Vault paths, but this environment disables `vault`")),
        "{all:#?}"
    );
}
