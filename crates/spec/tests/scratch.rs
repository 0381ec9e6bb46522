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
    // Restores read the backups of the environment copied: the same store.
    assert_eq!(e.backup, prod.environment.backup);
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
        "    namespace: sprocket-staging\n",
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
