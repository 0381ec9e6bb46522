//! An S3 external as a datastore (its administrator's key, its buckets, whose keys consumers
//! use) and its consumers' `access`: a key pair of their own with `keys: per-service`, the
//! external's with `keys: shared`; each rule's code, message and file:line:column.

mod common;

use common::*;
use sprocket_spec::model::{BucketAccess, DatastoreKind, S3Keys, SecretSource};

const S3: &str = "  postgres: { kind: postgres, host: db.example.org, port: 5432 }\n";

/// BASE with an S3 external (`store` the inside of its block) that `web` uses with `access`.
fn spec(store: &str, access: &str) -> String {
    replace(
        S3,
        &format!("{S3}  s3: {{ kind: s3, endpoint: \"https://nyc3.digitaloceanspaces.com\", {store} }}\n"),
    )
    .replace(
        "  token: { source: generate }\n",
        "  token: { source: generate }\n  s3-key: { source: manual }\n  s3-secret: { source: manual }\n",
    )
    .replace(
        "        uses: [redis, postgres]\n",
        &format!("        uses: [redis, postgres, s3]\n        access: {access}\n"),
    )
}

const STORE: &str =
    "admin_access_key: s3-key, admin_secret_key: s3-secret, buckets: [assets, backups]";

#[test]
fn per_service_keys_are_generated_pairs_mounted_where_the_service_says() {
    let text = spec(
        &format!("{STORE}, keys: per-service, region: nyc3"),
        "{ s3: { buckets: { assets: readwrite, backups: read }, secret_key_file: /app/secret/s3.txt } }",
    );
    let p = local_platform(&text);
    let d = p.externals.iter().find(|e| e.name == "s3").unwrap();
    let d = d.datastore.as_ref().unwrap();
    assert_eq!(
        (d.kind, d.keys, d.region.as_str(), d.buckets.clone()),
        (
            DatastoreKind::S3,
            S3Keys::PerService,
            "nyc3",
            vec!["assets".to_string(), "backups".into()]
        )
    );
    assert_eq!(
        (d.admin_key_secret.as_str(), d.admin_secret.as_str()),
        ("s3-key", "s3-secret")
    );
    let web = p.service("web").unwrap();
    let a = &web.access[0];
    assert_eq!(
        (a.user.as_str(), a.key_secret.as_str(), a.secret.as_str()),
        ("demo-web", "web-s3-access-key", "web-s3-secret-key")
    );
    assert_eq!(
        a.buckets,
        [
            ("assets".to_string(), BucketAccess::Readwrite),
            ("backups".into(), BucketAccess::Read)
        ]
    );
    let mounted = |n: &str, t: &str| web.secrets.iter().any(|m| m.name == n && m.target == t);
    assert!(mounted("web-s3-access-key", "/run/secrets/s3-access-key"));
    assert!(mounted("web-s3-secret-key", "/app/secret/s3.txt"));
    let generated = |n: &str| {
        p.secrets
            .iter()
            .find(|s| s.name == n)
            .map(|s| (s.source, s.length))
    };
    assert_eq!(
        generated("web-s3-access-key"),
        Some((SecretSource::Generate, 20))
    );
    assert_eq!(
        generated("web-s3-secret-key"),
        Some((SecretSource::Generate, 48))
    );
}

#[test]
fn shared_keys_mount_the_externals_key_and_generate_nothing() {
    let p = local_platform(&spec(STORE, "{ s3: { buckets: { assets: read } } }"));
    let web = p.service("web").unwrap();
    let a = &web.access[0];
    assert_eq!(
        (a.key_secret.as_str(), a.secret.as_str()),
        ("s3-key", "s3-secret")
    );
    assert!(web
        .secrets
        .iter()
        .any(|m| m.name == "s3-key" && m.target == "/run/secrets/s3-access-key"));
    assert!(!p.secrets.iter().any(|s| s.name.starts_with("web-s3")));
    let x = p.externals.iter().find(|e| e.name == "s3").unwrap();
    assert_eq!(x.datastore.as_ref().unwrap().region, "us-east-1");
}

#[test]
fn a_bucket_the_store_does_not_declare_is_refused_with_the_nearest() {
    let text = spec(STORE, "{ s3: { buckets: { asset: readwrite } } }");
    let d = expect(
        &text,
        "unknown-bucket",
        "`web` uses bucket `asset`, which `s3` does not declare",
        at(&text, "asset: readwrite", 0),
    );
    assert!(d.help.unwrap().contains("did you mean `assets`?"));
}

#[test]
fn bucket_access_is_read_or_readwrite_and_names_one_bucket_at_least() {
    let text = spec(STORE, "{ s3: { buckets: { assets: write } } }");
    expect(
        &text,
        "invalid-access",
        "`write` is not an access to bucket `assets`",
        at(&text, "write }", 0),
    );
    let text = spec(STORE, "{ s3: {} }");
    expect(
        &text,
        "invalid-access",
        "names no bucket",
        at(&text, "s3: {} }", 0),
    );
}

#[test]
fn bucket_names_follow_s3() {
    let text = spec(
        "admin_access_key: s3-key, admin_secret_key: s3-secret, buckets: [Assets]",
        "{ s3: { buckets: { Assets: read } } }",
    );
    let all = diagnostics(&text);
    expect_in(
        all,
        "invalid-bucket",
        "bucket `Assets` holds `A`",
        at(&text, "Assets]", 0),
    );
}

#[test]
fn half_a_key_and_an_undeclared_secret_are_refused() {
    let text = spec(
        "admin_access_key: s3-key",
        "{ s3: { buckets: { assets: read } } }",
    );
    let all = diagnostics(&text);
    expect_in(
        all,
        "invalid-external",
        "`admin_secret_key` is missing",
        at(&text, "s3-key }", 0),
    );
    let text = spec(
        "admin_access_key: s3-key, admin_secret_key: s3-secrte, buckets: [assets]",
        "{ s3: { buckets: { assets: read } } }",
    );
    let d = expect(
        &text,
        "unknown-secret",
        "the administrator's key `s3-secrte` is not a declared secret",
        at(&text, "s3-secrte", 0),
    );
    assert!(d.help.unwrap().contains("did you mean `s3-secret`?"));
}

#[test]
fn settings_of_other_kinds_are_refused_where_they_are_written() {
    let text = spec(
        &format!("{STORE}, admin_user: doadmin"),
        "{ s3: { buckets: { assets: read } } }",
    );
    expect(
        &text,
        "invalid-external",
        "`admin_user` does not apply to an S3 store",
        at(&text, "doadmin", 0),
    );
    let text = spec(
        STORE,
        "{ s3: { buckets: { assets: read }, password_file: /x } }",
    );
    expect(
        &text,
        "invalid-access",
        "`password_file` does not apply to `s3`",
        at(&text, "/x }", 0),
    );
    let text = replace(
        "  postgres: { kind: postgres, host: db.example.org, port: 5432 }\n",
        "  postgres: { kind: postgres, host: db.example.org, port: 5432, buckets: [a1b] }\n",
    );
    expect(
        &text,
        "invalid-external",
        "`buckets` is an S3 setting",
        at(&text, "a1b", 0),
    );
}

#[test]
fn a_user_name_needs_per_service_keys_and_keys_are_one_of_two() {
    let text = spec(STORE, "{ s3: { buckets: { assets: read }, user: web } }");
    expect(
        &text,
        "invalid-access",
        "`user` in `s3` needs `keys: per-service`",
        at(&text, "web } }", 0),
    );
    let text = spec(
        &format!("{STORE}, keys: iam"),
        "{ s3: { buckets: { assets: read } } }",
    );
    expect(
        &text,
        "invalid-external",
        "keys `iam` is not `shared` or `per-service`",
        at(&text, "iam", 0),
    );
}

#[test]
fn a_bad_endpoint_is_refused() {
    let text = spec(STORE, "{ s3: { buckets: { assets: read } } }").replace(
        "https://nyc3.digitaloceanspaces.com",
        "nyc3.digitaloceanspaces.com/x",
    );
    expect(
        &text,
        "invalid-external",
        "the endpoint `nyc3.digitaloceanspaces.com/x` does not start with",
        at(&text, "s3: { kind", 0),
    );
}
