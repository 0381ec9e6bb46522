//! A drill's scratch copy of an environment (`model::Scratch`): the same spec in another
//! namespace, and everything derived from the namespace follows it.

use sprocket_spec::model::{Mode, Scratch, Tls};
use std::path::{Path, PathBuf};

fn example() -> sprocket_spec::Parsed {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/sprocket/sprocket.yaml");
    sprocket_spec::parse_file(&path).expect("the example parses")
}

fn scratch(namespace: &str) -> Scratch {
    Scratch {
        namespace: namespace.into(),
        http_port: 18080,
        https_port: 18443,
        keyring: PathBuf::from("/tmp/drill/keyring.age"),
    }
}

#[test]
fn a_scratch_copy_of_production_moves_every_namespaced_name_and_spends_no_acme_limit() {
    let parsed = example();
    let files = sprocket_spec::Files::disk();
    let prod = sprocket_spec::resolve(&parsed, Some("prod"), &files)
        .unwrap()
        .platform;
    let sc = scratch("sprocket-drill");
    let copy = sprocket_spec::resolve_as(&parsed, Some("prod"), &files, Some(&sc))
        .unwrap()
        .platform;
    let e = &copy.environment;
    assert_eq!(e.namespace, "sprocket-drill");
    assert_eq!(e.scratch_of.as_deref(), Some("sprocket"));
    assert_eq!((e.http_port, e.https_port), (18080, 18443));
    assert!(prod.environment.tls.acme());
    assert_eq!(e.tls, Tls::SelfSigned, "a drill never asks Let's Encrypt");
    assert!(e.alerts.is_none(), "a drill pages nobody");
    // Restores read the backups of the environment copied: the same store; the copy takes
    // no scheduled backup of its own.
    let (b, live) = (
        e.backup.clone().unwrap(),
        prod.environment.backup.clone().unwrap(),
    );
    assert!(live.scheduled && !b.scheduled);
    assert_eq!((&b.store, &b.bucket), (&live.store, &live.bucket));
    assert_eq!(copy.vault.as_ref().unwrap().keyring, sc.keyring);
    assert_ne!(prod.vault.as_ref().unwrap().keyring, sc.keyring);
    // `{namespace}` in values follows (n8n's database and user on the shared PostgreSQL).
    let n8n = |p: &sprocket_spec::Platform| {
        p.services()
            .find(|s| s.name == "n8n")
            .unwrap()
            .env
            .get("DB_POSTGRESDB_DATABASE")
            .cloned()
            .unwrap()
    };
    assert_eq!(n8n(&prod), "sprocket_n8n");
    assert_eq!(n8n(&copy), "sprocket-drill_n8n");
    // So do the databases and roles `up` provisions.
    let dbs = |p: &sprocket_spec::Platform| -> Vec<String> {
        p.services()
            .flat_map(|s| &s.access)
            .map(|a| a.database.clone())
            .filter(|d| !d.is_empty())
            .collect()
    };
    assert!(
        dbs(&copy).iter().all(|d| d.starts_with("sprocket-drill_")),
        "{:?}",
        dbs(&copy)
    );
    // Apps run nothing and publish nothing; the platform's own services and datastores run.
    let replicas = |name: &str| {
        copy.services()
            .find(|s| s.name == name)
            .map(|s| s.mode.clone())
            .unwrap()
    };
    for app in ["core", "discord-bot", "web", "n8n", "gatus"] {
        assert_eq!(replicas(app), Mode::Replicated(0), "{app}");
    }
    for kept in ["traefik", "vault", "vault-agent", "redis", "rabbitmq"] {
        assert_ne!(replicas(kept), Mode::Replicated(0), "{kept}");
    }
    assert!(copy
        .services()
        .filter(|s| s.role.is_none() && s.datastore.is_none())
        .all(|s| s.ports.is_empty()));
    // Its namespace is `<namespace>-drill`, nothing else.
    for wrong in ["sprocket", "sprocket-other", "Bad_NS"] {
        let err = sprocket_spec::resolve_as(&parsed, Some("prod"), &files, Some(&scratch(wrong)))
            .unwrap_err();
        assert!(
            err.diagnostics
                .iter()
                .any(|d| d.code == "invalid-namespace"),
            "{wrong}: {err:?}"
        );
    }
    // Nor one an environment of the spec uses.
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/sprocket/sprocket.yaml");
    let text = std::fs::read_to_string(&path).unwrap().replace(
        "    namespace: sprocket-stg\n",
        "    namespace: sprocket-drill\n",
    );
    let taken = sprocket_spec::parse(sprocket_spec::SourceFile {
        path,
        text: text.into(),
    })
    .unwrap();
    let err = sprocket_spec::resolve_as(&taken, Some("prod"), &files, Some(&sc)).unwrap_err();
    assert!(
        err.diagnostics
            .iter()
            .any(|d| d.code == "invalid-namespace" && d.message.contains("environment `staging`")),
        "{err:?}"
    );
}

/// The example's text with `edits` (from → to) applied.
fn example_edited(edits: &[(&str, &str)]) -> sprocket_spec::Parsed {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/sprocket/sprocket.yaml");
    let mut text = std::fs::read_to_string(&path).unwrap();
    for (from, to) in edits {
        assert!(text.contains(from), "the example holds {from:?}");
        text = text.replacen(from, to, 1);
    }
    sprocket_spec::parse(sprocket_spec::SourceFile {
        path,
        text: text.into(),
    })
    .unwrap()
}

#[test]
fn a_scratch_copy_reaches_none_of_the_live_platforms_data() {
    let files = sprocket_spec::Files::disk();
    // The demo reads a database the live platform shares (not named after the namespace).
    let parsed = example_edited(&[(
        "          postgres: {}\n",
        "          postgres: { database: leaderboard, privileges: read }\n",
    )]);
    let live = sprocket_spec::resolve(&parsed, Some("offline"), &files)
        .unwrap()
        .platform;
    check_copy(&parsed, &live, &files);
}

fn check_copy(
    parsed: &sprocket_spec::Parsed,
    live: &sprocket_spec::Platform,
    files: &sprocket_spec::Files,
) {
    let demo =
        |p: &sprocket_spec::Platform| p.services().find(|s| s.name == "demo").cloned().unwrap();
    let live_demo = demo(live);
    assert!(live_demo.access.iter().any(|a| a.database == "leaderboard"));
    assert!(live_demo.access.iter().any(|a| !a.buckets.is_empty()));
    let copy = sprocket_spec::resolve_as(
        parsed,
        Some("offline"),
        files,
        Some(&scratch("sprocket-drill")),
    )
    .unwrap()
    .platform;
    let d = demo(&copy);
    // No login of the copy is granted anything in the shared database or the live buckets,
    // and their credentials are not mounted; its own database, Redis and RabbitMQ stay.
    assert!(
        d.access
            .iter()
            .all(|a| a.database.is_empty() || a.database.starts_with("sprocket-drill_")),
        "{:?}",
        d.access
    );
    assert!(
        d.access.iter().all(|a| a.buckets.is_empty()),
        "{:?}",
        d.access
    );
    let kinds: Vec<String> = d.access.iter().map(|a| format!("{:?}", a.kind)).collect();
    assert!(
        kinds.iter().any(|k| k == "Redis") && kinds.iter().any(|k| k == "Rabbitmq"),
        "{kinds:?}"
    );
    let left: Vec<&String> = live_demo
        .access
        .iter()
        .filter(|a| !a.buckets.is_empty())
        .flat_map(|a| [&a.secret, &a.key_secret])
        .collect();
    assert!(!left.is_empty());
    for n in left {
        assert!(
            !d.secrets.iter().any(|m| &m.name == n),
            "{n} is not mounted in the copy"
        );
    }
}

#[test]
fn a_drill_is_refused_where_its_copy_would_share_data_or_a_namespace() {
    let files = sprocket_spec::Files::disk();
    // Redis on a host folder: its copy would run on the live Redis's files.
    let parsed = example_edited(&[(
        "volumes: [{ volume: redis-data, target: /data }]",
        "volumes: [{ bind: /srv/sprocket/redis, target: /data }]",
    )]);
    assert!(sprocket_spec::resolve(&parsed, Some("offline"), &files).is_ok());
    let err = sprocket_spec::resolve_as(
        &parsed,
        Some("offline"),
        &files,
        Some(&scratch("sprocket-drill")),
    )
    .unwrap_err();
    assert!(
        err.diagnostics
            .iter()
            .any(|d| d.code == "scratch-shares-data"
                && d.message.contains("`redis`")
                && d.message.contains("/srv/sprocket/redis")),
        "{err:?}"
    );
    // Read-only, it may (beside the volume Redis keeps its data and users in).
    let parsed = example_edited(&[(
        "volumes: [{ volume: redis-data, target: /data }]",
        "volumes: [{ volume: redis-data, target: /data }, { bind: /srv/sprocket/redis, target: /seed, read_only: true }]",
    )]);
    assert!(sprocket_spec::resolve_as(
        &parsed,
        Some("offline"),
        &files,
        Some(&scratch("sprocket-drill"))
    )
    .is_ok());
    // The platform's name is the namespace of environments that set none: a drill of
    // `sprocket-stg` must not take `sprocket-stg-drill` when the platform is named so.
    let parsed = example_edited(&[("platform: sprocket\n", "platform: sprocket-stg-drill\n")]);
    let err = sprocket_spec::resolve_as(
        &parsed,
        Some("staging"),
        &files,
        Some(&scratch("sprocket-stg-drill")),
    )
    .unwrap_err();
    assert!(
        err.diagnostics
            .iter()
            .any(|d| d.code == "invalid-namespace" && d.message.contains("platform's name")),
        "{err:?}"
    );
}
