//! The rules that keep a harmless-looking spec change from smuggling access: reserved secret
//! names, config files from outside the spec's folder, Traefik rule and label injection through
//! route paths, middleware names and `internal`, and routes on Vault's hosts. One test per rule,
//! in the style of `rules.rs` (code, message, exact file:line:column).

mod common;

use common::*;
use sprocket_spec::{parse, resolve, validate_all, Files};
use std::path::{Path, PathBuf};

#[test]
fn vault_made_secret_names_are_reserved() {
    let text = replace(
        "  token: { source: generate }",
        "  token: { source: generate }\n  vault-unseal: { source: manual }",
    );
    expect(
        &text,
        "reserved-secret-name",
        "secret name `vault-unseal` is reserved",
        at(&text, "vault-unseal", 0),
    );
    let text = replace(
        "  token: { source: generate }",
        "  vault-token-web: { source: manual }\n  token: { source: generate }",
    );
    expect(
        &text,
        "reserved-secret-name",
        "secret name `vault-token-web` is reserved",
        at(&text, "vault-token-web", 0),
    );
    // Only these: a name that merely starts alike is an ordinary secret.
    let text = replace(
        "  token: { source: generate }",
        "  token: { source: generate }\n  vault-tokens: { source: manual }",
    );
    assert!(diagnostics(&text).iter().all(|d| !d.is_error()));
}

#[test]
fn a_service_may_not_mount_a_vault_made_secret() {
    // Declared or not, by name or with a target: the mount itself is refused.
    let text = replace("secrets: [token]", "secrets: [token, vault-unseal]");
    let all = diagnostics(&text);
    assert!(
        all.iter().all(|d| d.code != "undeclared-secret"),
        "{all:#?}"
    );
    expect_in(
        all,
        "reserved-secret-mount",
        "`web` mounts `vault-unseal`, a secret only `up` makes",
        at(&text, "vault-unseal", 0),
    );
    let text = replace(
        "secrets: [token]",
        "secrets: [token, { name: vault-token-auth, target: /run/secrets/t }]",
    );
    expect(
        &text,
        "reserved-secret-mount",
        "`web` mounts `vault-token-auth`",
        at(&text, "{ name: vault-token-auth", 0),
    );
}

#[test]
fn config_files_stay_inside_the_spec_folder() {
    let text = replace("file: web.json", "file: /etc/shadow.json");
    expect(
        &text,
        "config-file-outside-spec",
        "config file `/etc/shadow.json` is an absolute path",
        at(&text, "/etc/shadow.json", 0),
    );
    let text = replace("file: web.json", "file: conf/../../etc/passwd.json");
    expect(
        &text,
        "config-file-outside-spec",
        "config file `conf/../../etc/passwd.json` climbs out of the spec's folder with `..`",
        at(&text, "conf/../..", 0),
    );
    // `..` that stays inside is fine.
    let text = replace("file: web.json", "file: conf/../web.json");
    assert!(diagnostics(&text).iter().all(|d| !d.is_error()));
    // A symlink out of the folder, as `canonicalize` reports it.
    let canonical = |p: &Path| -> std::io::Result<PathBuf> {
        Ok(match p.to_str() {
            Some("./web.json") => PathBuf::from("/etc/shadow"),
            Some(".") => PathBuf::from("/srv/spec"),
            _ => Path::new("/srv/spec").join(p),
        })
    };
    let symlinked = Files {
        canonicalize: &canonical,
        ..Files::new(&files)
    };
    expect_in(
        diagnostics_with(BASE, &symlinked),
        "config-file-outside-spec",
        "config file `web.json` is really `/etc/shadow` (through a symlink), outside the spec's folder `/srv/spec`",
        at(BASE, "web.json", 0),
    );
}

/// The same on a real disk: a spec folder with a symlink to a file beside it.
#[test]
fn a_config_symlinked_out_of_the_spec_folder_is_refused_on_disk() {
    let root = std::env::temp_dir().join(format!("sprocket-symlink-{}", std::process::id()));
    let spec_dir = root.join("spec");
    std::fs::create_dir_all(spec_dir.join("conf")).unwrap();
    std::fs::write(root.join("outside.json"), b"{\"secret\": 1}").unwrap();
    std::fs::write(spec_dir.join("conf/real.json"), b"{}").unwrap();
    std::os::unix::fs::symlink("../outside.json", spec_dir.join("web.json")).unwrap();
    // A symlink that stays inside is fine.
    std::os::unix::fs::symlink("conf/real.json", spec_dir.join("inside.json")).unwrap();
    let spec = spec_dir.join("sprocket.yaml");
    let validate = |text: &str| {
        std::fs::write(&spec, text).unwrap();
        let p = sprocket_spec::parse_file(&spec).unwrap();
        validate_all(&p, &Files::disk()).diagnostics
    };
    let refused = validate(BASE);
    let inside = validate(&replace("file: web.json", "file: inside.json"));
    std::fs::remove_dir_all(&root).unwrap();
    let d = expect_in(
        refused,
        "config-file-outside-spec",
        "config file `web.json` is really",
        at(BASE, "web.json", 0),
    );
    assert!(d.message.contains("outside.json"), "{d}");
    assert!(inside.iter().all(|d| !d.is_error()), "{inside:#?}");
}

#[test]
fn config_file_larger_than_swarm_takes() {
    let big = |p: &Path| -> std::io::Result<Vec<u8>> {
        match p.file_name().and_then(|n| n.to_str()) {
            Some("big.json") => Ok(vec![b' '; 500 * 1024 + 1]),
            Some("edge.json") => Ok(vec![b' '; 500 * 1024]),
            _ => files(p),
        }
    };
    let text = replace("file: web.json", "file: big.json");
    expect_in(
        diagnostics_with(&text, &Files::new(&big)),
        "config-file-too-large",
        "config file `big.json` is 512001 bytes; Swarm takes configs of at most 512000 bytes",
        at(&text, "big.json", 0),
    );
    let text = replace("file: web.json", "file: edge.json");
    assert!(diagnostics_with(&text, &Files::new(&big))
        .iter()
        .all(|d| !d.is_error()));
}

#[test]
fn route_path_is_a_plain_url_path() {
    // The review's catch-all: it would have matched every host, Vault's included.
    let text = replace(
        "{ port: 3000, ip_access: true }",
        "{ port: 3000, ip_access: true, path: \"/x`)||Host(`vault.localhost`)||PathPrefix(`/\" }",
    );
    let d = expect(
        &text,
        "invalid-path",
        "contains '`': only letters, digits and `._~/-` are allowed",
        at(&text, "\"/x`", 0),
    );
    assert!(d.help.unwrap().contains("written into the Traefik rule"));
    for bad in ["/a!b", "/a%2e", "/a&&b", "/a(b)"] {
        let text = replace(
            "{ port: 3000, ip_access: true }",
            &format!("{{ port: 3000, ip_access: true, path: \"{bad}\" }}"),
        );
        expect(&text, "invalid-path", bad, at(&text, bad, 0).map_col(-1));
    }
    let text = replace(
        "{ port: 3000, ip_access: true }",
        "{ port: 3000, ip_access: true, path: /api/v1.2/~me_x-y }",
    );
    assert!(diagnostics(&text).iter().all(|d| !d.is_error()));
}

#[test]
fn middleware_names_are_object_names() {
    // A `,` would add a reference to another provider's middleware, a `.` nest label keys.
    for bad in ["x,noauth@file", "y.headers.customrequestheaders.x-admin"] {
        let text = replace(
            "  admin: { service: auth",
            &format!("  \"{bad}\": {{ redirect_https: true }}\n  admin: {{ service: auth"),
        );
        expect(
            &text,
            "invalid-middleware-name",
            &format!("middleware name `{bad}` must be"),
            at(&text, bad, 0).map_col(-1),
        );
    }
}

/// A service in `apps` whose only route is gated by `admin`.
fn with_board(route: &str) -> String {
    replace(
        "  apps:\n    services:\n",
        "  apps:\n    services:\n      board: { image: \"example/board:1\", routes: [{ subdomain: board, port: 8080, middlewares: [admin] }] }\n",
    )
    .replacen(
        "{ subdomain: admin, port: 3000, middlewares: [admin] }",
        route,
        1,
    )
}

#[test]
fn internal_names_the_dashboard_or_a_service_never_a_provider() {
    let text = with_board("{ subdomain: b2, internal: board@swarm }");
    let d = expect(
        &text,
        "invalid-internal",
        "`internal: board@swarm` is neither `api@internal` nor a service of the spec",
        at(&text, "board@swarm", 0),
    );
    assert!(d.help.unwrap().contains("did you mean `board`?"));
    let text = with_board("{ subdomain: b2, internal: redis }");
    expect(
        &text,
        "invalid-internal",
        "`internal: redis` names a service with no route to a `port`",
        at(&text, "internal: redis", 0).map_col(10),
    );
}

#[test]
fn internal_to_a_service_keeps_its_gate() {
    let text = with_board("{ subdomain: b2, internal: board }");
    expect(
        &text,
        "internal-without-gate",
        "route `web-2` forwards to `board` without `admin`, which `board`'s own route passes through",
        at(&text, "internal: board", 0).map_col(10),
    );
    // Through the same gate it shares the backend, rendered as that route's Traefik service
    // (its router); where the gate does not run, neither route is published.
    let text = with_board("{ subdomain: b2, internal: board, middlewares: [admin] }").replacen(
        "board, port: 8080,",
        "board, name: board-ui, port: 8080,",
        1,
    );
    assert!(diagnostics(&text).iter().all(|d| !d.is_error()));
    let p = parse(common::source(&text)).unwrap();
    let local = resolve(&p, Some("local"), &Files::new(&files))
        .unwrap()
        .platform;
    let web = local.service("web").unwrap();
    assert_eq!(
        (web.routes[1].internal.as_deref(), web.routes[1].port),
        (Some("board-ui"), None)
    );
    let offline = resolve(&p, Some("offline"), &Files::new(&files))
        .unwrap()
        .platform;
    assert_eq!(
        offline.service("web").unwrap().dropped_routes[0].service,
        "web-2"
    );
}

#[test]
fn the_dashboard_is_never_served_without_a_gate() {
    let text = replace(
        "traefik: { role: edge, image: \"traefik:v3.7\" }",
        "traefik: { role: edge, image: \"traefik:v3.7\", routes: [{ subdomain: traefik, internal: api@internal }] }",
    );
    expect(
        &text,
        "ungated-dashboard",
        "route `traefik` serves Traefik's dashboard (`api@internal`) without a gate",
        at(&text, "api@internal", 0),
    );
    // A middleware that is no gate does not count.
    let text = replace(
        "middlewares:\n",
        "middlewares:\n  https: { redirect_https: true }\n",
    )
    .replacen(
        "traefik: { role: edge, image: \"traefik:v3.7\" }",
        "traefik: { role: edge, image: \"traefik:v3.7\", routes: [{ subdomain: traefik, internal: api@internal, middlewares: [https] }] }",
        1,
    );
    expect(
        &text,
        "ungated-dashboard",
        "without a gate",
        at(&text, "api@internal", 0),
    );
    let text = replace(
        "traefik: { role: edge, image: \"traefik:v3.7\" }",
        "traefik: { role: edge, image: \"traefik:v3.7\", routes: [{ subdomain: traefik, internal: api@internal, middlewares: [admin] }] }",
    );
    assert!(diagnostics(&text).iter().all(|d| !d.is_error()));
}

#[test]
fn no_other_route_on_vaults_hosts() {
    let vault_routed = |other_route: &str| {
        with_vault(VAULT)
            .replacen(
                "image: \"openbao/openbao:2.7.2\", command: [bao, server] }",
                "image: \"openbao/openbao:2.7.2\", command: [bao, server], routes: [{ subdomain: vault, port: 8200 }] }",
                1,
            )
            .replacen(
                "{ subdomain: admin, port: 3000, middlewares: [admin] }",
                other_route,
                1,
            )
    };
    // A longer path would win in Traefik and take the unseal keys and tokens sent to Vault.
    let text = vault_routed("{ subdomain: VAULT, port: 3000, path: /v1/sys/unseal }");
    let d = expect(
        &text,
        "route-on-vault-host",
        "route `web-2` of `web` answers on `vault.localhost`, a host of the Vault service `vault`",
        at(&text, "{ subdomain: VAULT", 0),
    );
    assert_eq!(
        d.related.unwrap().pos.line,
        at(&text, "{ subdomain: vault, port: 8200 }", 0).0
    );
    let text = vault_routed("{ host: vault.localhost, port: 3000 }");
    expect(
        &text,
        "route-on-vault-host",
        "answers on `vault.localhost`",
        at(&text, "{ host: vault.localhost", 0),
    );
    let text = vault_routed("{ subdomain: vaults, port: 3000 }");
    assert!(diagnostics(&text).iter().all(|d| !d.is_error()));
}

/// Vault's private listener is one more `-config=` after the server's own arguments: a Vault
/// service that names none would start as `bao -config=…` and never serve.
#[test]
fn vault_without_its_server_command() {
    let text = with_vault(VAULT).replace(", command: [bao, server] }", " }");
    expect(
        &text,
        "vault-without-command",
        "`vault` has role `vault` but says neither `command` nor `args` for its server",
        at(&text, "vault: { role", 0),
    );
}

/// Where an environment's secret values come from is one of the three sources, said exactly.
#[test]
fn secrets_from_names_a_real_source() {
    let text = replace(
        "    hostname: localhost\n",
        "    hostname: localhost\n    secrets_from: \"vault:platform\"\n",
    );
    expect(
        &text,
        "invalid-secrets-from",
        "`vault:platform` is not a secrets source: use `doppler:PROJECT/CONFIG`, `dotenv:PATH` or `env`",
        at(&text, "\"vault:platform\"", 0),
    );
    let text = replace(
        "    hostname: localhost\n",
        "    hostname: localhost\n    secrets_from: doppler:sprocket\n",
    );
    expect(
        &text,
        "invalid-secrets-from",
        "must be `doppler:PROJECT/CONFIG`",
        at(&text, "doppler:sprocket", 0),
    );
    // A good one resolves, a dotenv path relative to the spec's folder.
    let text = replace(
        "    hostname: localhost\n",
        "    hostname: localhost\n    secrets_from: dotenv:secrets/local.env\n",
    );
    assert!(
        diagnostics(&text)
            .iter()
            .all(|d| d.code != "invalid-secrets-from"),
        "{:?}",
        diagnostics(&text)
    );
}

/// A secret written into `env` is refused: it belongs under `secrets:`, mounted as a file.
#[test]
fn a_literal_secret_in_env_is_refused() {
    let text = replace(
        "        uses: [redis, postgres]\n",
        "        uses: [redis, postgres]\n        env: { DB_PASSWORD: hunter2, DB_PASSWORD_FILE: /run/secrets/token, LOG_LEVEL: debug }\n",
    );
    expect(
        &text,
        "secret-in-env",
        "`DB_PASSWORD` looks like a secret written into the environment",
        at(&text, "DB_PASSWORD: hunter2", 0),
    );
    assert_eq!(
        diagnostics(&text)
            .iter()
            .filter(|d| d.code == "secret-in-env")
            .count(),
        1,
        "the file path and the log level are fine"
    );
}
