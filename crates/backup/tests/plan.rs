//! What a backup of the example platform holds, per environment: derived from the spec.

use sprocket_backup::{plan, Source};
use std::path::Path;

fn example(env: &str) -> sprocket_spec::model::Platform {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/sprocket/sprocket.yaml");
    let parsed = sprocket_spec::parse_file(&path).unwrap();
    sprocket_spec::resolve(&parsed, Some(env), &sprocket_spec::Files::disk())
        .unwrap()
        .platform
}

fn components(env: &str) -> Vec<String> {
    plan(&example(env))
        .into_iter()
        .map(|i| i.component)
        .collect()
}

#[test]
fn vault_first_then_each_datastore_and_each_owned_database() {
    let offline = components("offline");
    assert_eq!(&offline[..2], ["vault", "vault-keyring"], "{offline:?}");
    for want in [
        "redis:redis",
        "rabbitmq:rabbitmq",
        "postgres:sprocket_demo",
        "postgres:sprocket_n8n",
    ] {
        assert!(offline.contains(&want.to_string()), "{want} in {offline:?}");
    }
    // No Let's Encrypt offline: nothing of Traefik's to keep.
    assert!(!offline.contains(&"acme".to_string()), "{offline:?}");
    // Components are unique: they name the objects of one backup.
    let mut unique = offline.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), offline.len());
}

#[test]
fn lets_encrypt_environments_keep_traefiks_acme_storage() {
    let prod = plan(&example("prod"));
    let acme = prod.iter().find(|i| i.component == "acme").unwrap();
    assert_eq!(
        acme.source,
        Source::Acme {
            service: "traefik".into(),
            path: "/data/acme.json".into()
        }
    );
    // prod's databases are those `access` owns (n8n's, `<namespace>_n8n`), on the managed
    // server; the demo does not run there, so its database is not in the backup.
    assert!(prod.iter().any(|i| i.source
        == Source::Postgres {
            datastore: "postgres".into(),
            database: "sprocket_n8n".into()
        }));
    assert!(!prod.iter().any(|i| i.component == "postgres:sprocket_demo"));
}
