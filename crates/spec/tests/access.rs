//! The rules that keep a harmless-looking spec change from smuggling access: reserved secret
//! names, config files from outside the spec's folder, Traefik rule and label injection through
//! route paths, middleware names and `internal`, and routes on Vault's hosts. One test per rule,
//! in the style of `rules.rs` (code, message, exact file:line:column).

mod common;

use common::*;

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
