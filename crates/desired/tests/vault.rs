//! Vault's declarative configuration and its plan, from the real example spec. Pure: the
//! observed side is built by hand the way the adapter reads it.

mod common;

use sprocket_desired::vault::{
    config, plan, GithubConfig, ObservedMount, ObservedVault, TokenState, VaultAction as A,
    VaultConfig, VaultKind as K, MARKER, MOUNT_DESCRIPTION,
};
use std::path::Path;

fn example(env: &str) -> VaultConfig {
    config(&common::example(env)).expect("the example runs Vault")
}

/// What Vault holds after an apply of `d`: the same objects, read back.
fn applied(d: &VaultConfig) -> ObservedVault {
    let mut o = ObservedVault {
        github_plugin: true,
        ..Default::default()
    };
    for m in &d.mounts {
        o.mounts.insert(
            m.path.clone(),
            ObservedMount {
                kind: m.kind.clone(),
                version: Some(m.version.clone()),
                description: MOUNT_DESCRIPTION.into(),
            },
        );
    }
    o.policies = d.policies.clone();
    o.token_role = Some(d.token_role.clone());
    o.auth.insert(
        "github/".into(),
        ObservedMount {
            kind: "github".into(),
            version: None,
            description: MOUNT_DESCRIPTION.into(),
        },
    );
    o.github = d.github.clone();
    for t in &d.tokens {
        o.tokens.insert(
            t.service.clone(),
            TokenState::Valid {
                accessor: format!("acc-{}", t.service),
                ttl_s: 100,
                policies: vec!["default".into(), t.policy.clone()],
            },
        );
    }
    o
}

#[test]
fn service_policies_are_least_privilege_from_their_paths() {
    let d = example("prod");
    // core reads `platform/core/*` (kv-v2) and `infrastructure/redis` (kv-v2).
    assert_eq!(
        d.policies["svc-core"],
        format!(
            "{MARKER}: service `core`, derived from its `vault` paths\n\
             path \"platform/data/core/*\" {{\n  capabilities = [\"read\"]\n}}\n\
             path \"platform/metadata/core/*\" {{\n  capabilities = [\"read\", \"list\"]\n}}\n\
             path \"infrastructure/data/redis\" {{\n  capabilities = [\"read\"]\n}}\n\
             path \"infrastructure/metadata/redis\" {{\n  capabilities = [\"read\", \"list\"]\n}}\n"
        )
    );
    // Nothing else: no write, no other service's paths.
    assert!(!d.policies["svc-core"].contains("discord-bot"));
    assert!(!d.policies["svc-core"].contains("\"update\""));
    // One token per reader, and the backups' (prod is backed up), against the role that can
    // issue only `svc-*` policies.
    let tokens: Vec<(&str, &str)> = d
        .tokens
        .iter()
        .map(|t| (t.service.as_str(), t.policy.as_str()))
        .collect();
    assert_eq!(
        tokens,
        [
            ("core", "svc-core"),
            ("discord-bot", "svc-discord-bot"),
            ("sprocketctl-backup", "svc-sprocketctl-backup")
        ]
    );
    // The backups' token reads Vault's snapshot and nothing else.
    assert_eq!(
        d.policies["svc-sprocketctl-backup"],
        format!(
            "{MARKER}: backups: Vault's raft snapshot, nothing else\n\
             path \"sys/storage/raft/snapshot\" {{\n  capabilities = [\"read\"]\n}}\n"
        )
    );
    assert_eq!(d.token_role.allowed_policies_glob, ["svc-*"]);
    assert!(d.token_role.orphan && d.token_role.renewable);
    assert_eq!(d.token_role.token_period_s, 24 * 3600);
    // Offline runs only the demo among the readers.
    let off = example("offline");
    let holders: Vec<&str> = off.tokens.iter().map(|t| t.service.as_str()).collect();
    assert_eq!(holders, ["demo", "sprocketctl-backup"]);
    assert!(!off.policies.contains_key("svc-core"));
}

#[test]
fn the_admin_policy_manages_configuration_and_reads_no_secret() {
    let d = example("prod");
    let admin = &d.policies["sprocketctl-admin"];
    for mount in ["platform/", "infrastructure/", "misc/", "secret/"] {
        assert!(
            !admin.contains(&format!("path \"{mount}")),
            "admin reads {mount}"
        );
    }
    assert!(admin.contains("path \"auth/token/create/sprocket-services\""));
    assert!(!admin.contains("path \"auth/token/create\" "));
    assert!(!admin.contains("path \"*\""));
}

#[test]
fn kv_v1_paths_and_globs() {
    // misc is kv (version 1): paths are used as written; a glob may list.
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/sprocket/sprocket.yaml");
    let yaml = std::fs::read_to_string(&path).unwrap().replace(
        "vault: [platform/demo/*]",
        "vault: [misc/shared/*, misc/one]",
    );
    let parsed = sprocket_spec::parse(sprocket_spec::SourceFile {
        path: path.clone(),
        text: yaml.into(),
    })
    .unwrap();
    let p = sprocket_spec::resolve(&parsed, Some("offline"), &sprocket_spec::Files::disk())
        .unwrap()
        .platform;
    let d = config(&p).unwrap();
    let text = &d.policies["svc-demo"];
    assert!(text.contains("path \"misc/shared/*\" {\n  capabilities = [\"read\", \"list\"]"));
    assert!(text.contains("path \"misc/one\" {\n  capabilities = [\"read\"]"));
}

#[test]
fn a_fresh_vault_gets_everything_in_dependency_order() {
    let d = example("prod");
    let o = ObservedVault {
        github_plugin: true,
        ..Default::default()
    };
    let p = plan(&d, &o);
    let kinds: Vec<K> = p.changes.iter().map(|c| c.kind).collect();
    let pos = |k: K| kinds.iter().position(|x| *x == k).unwrap();
    assert!(pos(K::Mount) < pos(K::Policy));
    assert!(pos(K::Policy) < pos(K::TokenRole));
    assert!(pos(K::TokenRole) < pos(K::ServiceToken));
    assert!(pos(K::Auth) < pos(K::GithubConfig));
    assert!(pos(K::GithubConfig) < pos(K::GithubTeam));
    assert!(p.changes.iter().all(|c| c.action == A::Create));
    // the spec's three, and sprocketctl's own for the platform's secrets
    assert_eq!(p.changes.iter().filter(|c| c.kind == K::Mount).count(), 4);
    assert_eq!(
        p.changes.iter().filter(|c| c.kind == K::GithubTeam).count(),
        2
    );
    assert!(p.prune.is_empty());
}

#[test]
fn applied_config_plans_nothing() {
    let d = example("prod");
    let p = plan(&d, &applied(&d));
    assert!(p.changes.is_empty(), "{:?}", p.changes);
    assert!(p.prune.is_empty());
    assert!(p.is_empty(true));
}

#[test]
fn drift_is_planned_and_foreign_objects_are_never_taken_over() {
    let d = example("prod");
    let mut o = applied(&d);
    // A policy someone edited, one we wrote that the spec dropped, one nobody told us about.
    o.policies.insert(
        "svc-core".into(),
        format!("{MARKER}: old\npath \"x\" {{}}\n"),
    );
    o.policies
        .insert("svc-gone".into(), format!("{MARKER}: service `gone`\n"));
    o.policies
        .insert("hand-made".into(), "path \"x\" {}".into());
    // A team policy of the spec that exists but was written by hand.
    o.policies.insert(
        "developers".into(),
        "path \"*\" { capabilities = [\"sudo\"] }".into(),
    );
    // platform/ is kv version 1 here.
    o.mounts.get_mut("platform/").unwrap().version = Some("1".into());
    // core's token expired; discord-bot's lacks its policy; a token of a dropped service.
    o.tokens.insert(
        "core".into(),
        TokenState::Gone {
            accessor: "a".into(),
        },
    );
    o.tokens.insert(
        "discord-bot".into(),
        TokenState::Valid {
            accessor: "b".into(),
            ttl_s: 5,
            policies: vec!["default".into()],
        },
    );
    o.tokens.insert(
        "old-svc".into(),
        TokenState::Valid {
            accessor: "c".into(),
            ttl_s: 5,
            policies: vec![],
        },
    );
    // A team mapping the spec dropped, and one changed.
    let g = o.github.as_mut().unwrap();
    g.teams.insert("interns".into(), "developers".into());
    g.teams
        .insert("developers".into(), "developers,platform-admins".into());
    let p = plan(&d, &o);
    let find = |k: K, n: &str| {
        p.changes
            .iter()
            .find(|c| c.kind == k && c.name == n)
            .unwrap_or_else(|| panic!("no {k} {n} in {:?}", p.changes))
    };
    assert_eq!(find(K::Policy, "svc-core").action, A::Update);
    assert_eq!(find(K::Policy, "developers").action, A::Blocked);
    assert_eq!(find(K::Mount, "platform/").action, A::Blocked);
    assert!(find(K::Mount, "platform/")
        .detail
        .as_ref()
        .unwrap()
        .contains("never changes a mount's type"));
    assert_eq!(find(K::ServiceToken, "core").action, A::Create);
    assert_eq!(find(K::ServiceToken, "discord-bot").action, A::Create);
    assert_eq!(find(K::GithubTeam, "developers").action, A::Update);
    let pruned: Vec<(K, &str)> = p.prune.iter().map(|c| (c.kind, c.name.as_str())).collect();
    assert!(pruned.contains(&(K::Policy, "svc-gone")));
    assert!(pruned.contains(&(K::GithubTeam, "interns")));
    assert!(pruned.contains(&(K::ServiceToken, "old-svc")));
    assert!(!pruned.iter().any(|(_, n)| *n == "hand-made"));
    assert!(p.changes.iter().all(|c| c.name != "hand-made"));
}

#[test]
fn github_without_its_plugin_is_blocked_with_the_fix() {
    let d = example("prod");
    let mut o = applied(&d);
    o.github_plugin = false;
    o.auth.clear();
    o.github = None;
    let p = plan(&d, &o);
    let blocked: Vec<_> = p.blocked().collect();
    assert_eq!(blocked.len(), 1);
    assert_eq!(blocked[0].kind, K::Auth);
    assert!(blocked[0]
        .detail
        .as_ref()
        .unwrap()
        .contains("plugin register"));
    // Blocked items need a person: not "changes" for `plan --detailed-exitcode`.
    assert!(p.is_empty(false));
    // With the plugin, the organisation and each team → policies mapping are written.
    o.github_plugin = true;
    let p = plan(&d, &o);
    assert_eq!(
        d.github,
        Some(GithubConfig {
            organization: "SprocketBot".into(),
            organization_id: None,
            base_url: None,
            teams: [
                ("developers".to_string(), "developers".to_string()),
                ("platform-admins".to_string(), "platform-admins".to_string())
            ]
            .into()
        })
    );
    assert!(p
        .changes
        .iter()
        .any(|c| c.kind == K::GithubConfig && c.action == A::Create));
}

#[test]
fn a_github_method_enabled_by_someone_else_is_left_alone() {
    let d = example("prod");
    let mut o = applied(&d);
    o.auth.get_mut("github/").unwrap().description = "set up by hand".into();
    o.github.as_mut().unwrap().organization = "someone-else".into();
    let p = plan(&d, &o);
    let github: Vec<_> = p
        .changes
        .iter()
        .filter(|c| matches!(c.kind, K::Auth | K::GithubConfig | K::GithubTeam))
        .collect();
    assert_eq!(github.len(), 1, "{github:?}");
    assert_eq!(github[0].action, A::Blocked);
    assert!(p.prune.iter().all(|c| c.kind != K::GithubTeam));
}

#[test]
fn the_admin_token_writes_the_namespaces_secrets_and_each_vault_path_and_no_other_data() {
    // staging's namespace, and one secret moved to a path a service reads.
    let mut p = common::example("staging");
    let jwt = p
        .secrets
        .iter_mut()
        .find(|s| s.name == "jwt-secret")
        .unwrap();
    jwt.vault_path = Some("platform/core/jwt".into());
    let d = config(&p).unwrap();
    assert!(
        d.mounts
            .iter()
            .any(|m| m.path == "sprocket/" && m.kind == "kv" && m.version == "2"),
        "sprocketctl's own KV v2 mount"
    );
    let admin = &d.policies[sprocket_desired::vault::ADMIN_POLICY];
    for (path, caps) in [
        (
            "sprocket/data/sprocket-stg/*",
            "\"create\", \"read\", \"update\"",
        ),
        ("sprocket/metadata/sprocket-stg/*", "\"read\", \"list\""),
        ("platform/data/core/jwt", "\"create\", \"read\", \"update\""),
        ("platform/metadata/core/jwt", "\"read\""),
    ] {
        assert!(
            admin.contains(&format!(
                "path \"{path}\" {{\n  capabilities = [{caps}]\n}}"
            )),
            "{path}: {admin}"
        );
    }
    // No other namespace's secrets, no wildcard over a spec mount's data.
    assert!(!admin.contains("sprocket/data/*\""));
    assert!(!admin.contains("platform/data/*"));
    assert!(!admin.contains("\"sprocket/data/sprocket/"));
}
