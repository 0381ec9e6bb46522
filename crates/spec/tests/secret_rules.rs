//! The top-level `secrets`: generated values' alphabet, a value's pattern, where Vault keeps each
//! secret (the convention, or a `vault_path` on a `kv-v2` mount of the spec), no two secrets on
//! one Vault path, and a secret from the source only where a Vault runs to keep it. Each rule's
//! code, message and file:line:column.

mod common;

use common::*;

/// The config section with `secrets` replaced by `secrets_yaml` (one line per secret).
fn with_secrets(secrets_yaml: &str) -> String {
    with_vault_config(&|t| t.replacen("  token: { source: generate }\n", secrets_yaml, 1))
}

#[test]
fn a_secret_lives_at_its_conventional_vault_path_unless_the_spec_says_another() {
    let text = with_secrets(
        "  token: { source: generate, alphabet: base64url }\n  api: { source: doppler, key: API_KEY, vault_path: platform/web/api, vault_key: key, pattern: \"[a-z]+\" }\n",
    );
    let p = platform(&text, "local");
    let token = p.secrets.iter().find(|s| s.name == "token").unwrap();
    let loc = token.vault_location("demo");
    assert_eq!(
        (loc.mount.as_str(), loc.path.as_str(), loc.key.as_str()),
        ("sprocket", "demo/token", "value")
    );
    assert_eq!(token.alphabet, sprocket_spec::model::Alphabet::Base64url);
    let api = p.secrets.iter().find(|s| s.name == "api").unwrap();
    let loc = api.vault_location("demo");
    assert_eq!(
        (loc.mount.as_str(), loc.path.as_str(), loc.key.as_str()),
        ("platform", "web/api", "key")
    );
    assert_eq!(api.pattern.as_deref(), Some("[a-z]+"));
}

#[test]
fn unknown_alphabet() {
    let text = with_secrets("  token: { source: generate, alphabet: emoji }\n");
    expect(
        &text,
        "invalid-secret-alphabet",
        "unknown alphabet `emoji`",
        at(&text, "emoji", 0),
    );
}

#[test]
fn pattern_that_is_not_a_regular_expression() {
    let text = with_secrets("  token: { source: doppler, key: TOKEN, pattern: \"[a-z\" }\n");
    expect(
        &text,
        "invalid-secret-pattern",
        "`pattern` is not a regular expression",
        at(&text, "\"[a-z\"", 0),
    );
}

#[test]
fn vault_path_must_be_a_kv2_mount_of_the_spec() {
    // not `mount/path`
    let text = with_secrets("  token: { source: generate, vault_path: nothing }\n");
    expect(
        &text,
        "invalid-secret-vault-path",
        "is not `mount/path`",
        at(&text, "nothing", 0),
    );
    // a mount the spec does not declare
    let text = with_secrets("  token: { source: generate, vault_path: nosuch/web/token }\n");
    expect(
        &text,
        "invalid-secret-vault-path",
        "is not a mount of `vault.mounts`",
        at(&text, "nosuch/web/token", 0),
    );
    // a KV version 1 mount: no versions to roll back to
    let text = with_secrets("  token: { source: generate, vault_path: misc/web/token }\n");
    expect(
        &text,
        "invalid-secret-vault-path",
        "is a `kv` (version 1) mount",
        at(&text, "misc/web/token", 0),
    );
    // sprocketctl's own mount, where the convention already puts it
    let text = with_secrets("  token: { source: generate, vault_path: sprocket/x/token }\n");
    expect(
        &text,
        "invalid-secret-vault-path",
        "sprocketctl's own mount",
        at(&text, "sprocket/x/token", 0),
    );
}

#[test]
fn two_secrets_on_one_vault_path() {
    let text = with_secrets(
        "  token: { source: generate, vault_path: platform/web/shared }\n  other: { source: generate, vault_path: platform/web/shared, vault_key: other }\n",
    );
    expect(
        &text,
        "duplicate-secret-vault-path",
        "secrets `token` and `other` both claim Vault path `platform/web/shared`",
        at(&text, "platform/web/shared", 1),
    );
}

#[test]
fn sprocketctls_own_mount_is_reserved() {
    let text = with_vault_config(&|t| {
        t.replace(
            "mounts: { platform: kv-v2, misc: kv }",
            "mounts: { platform: kv-v2, sprocket: kv-v2 }",
        )
    });
    expect(
        &text,
        "invalid-mount-path",
        "cannot be a mount path",
        at(&text, "sprocket: kv-v2", 0),
    );
}

#[test]
fn a_source_secret_or_the_fingerprint_key_needs_a_vault_to_live_in() {
    // No Vault at all: `web` mounts a secret from the source.
    let text = replace(
        "  token: { source: generate }\n",
        "  token: { source: doppler, key: TOKEN }\n",
    );
    let found: Vec<_> = diagnostics(&text)
        .into_iter()
        .filter(|d| d.code == "secret-without-vault")
        .collect();
    assert_eq!(found.len(), 2, "once per environment: {found:#?}");
    for d in &found {
        assert!(d.message.contains("secret `token` is kept in Vault"), "{d}");
        assert_eq!(
            (d.pos.line, d.pos.column),
            at(&text, "token: { source: doppler", 0)
        );
        assert!(d.help.is_some());
    }
    // A generated one lives in Docker alone there: valid.
    assert!(diagnostics(BASE).iter().all(|d| !d.is_error()));
    // The fingerprints' key is mountable where Vault runs, and only there.
    let mount_key = |t: String| {
        t.replacen(
            "        secrets: [token]\n",
            "        secrets: [token, sprocket-fingerprint-key]\n",
            1,
        )
    };
    let with = with_vault_config(&mount_key);
    assert!(
        diagnostics(&with).iter().all(|d| !d.is_error()),
        "{:#?}",
        diagnostics(&with)
    );
    let without = mount_key(BASE.to_string());
    assert!(diagnostics(&without)
        .iter()
        .any(|d| d.code == "secret-without-vault"));
    // …and never declared.
    let text = with_secrets(
        "  token: { source: generate }\n  sprocket-fingerprint-key: { source: generate }\n",
    );
    expect(
        &text,
        "reserved-secret-name",
        "is reserved",
        at(&text, "sprocket-fingerprint-key: {", 0),
    );
}
