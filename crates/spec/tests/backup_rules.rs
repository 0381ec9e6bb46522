//! An environment's `backup`: the S3 external and bucket, the daily time, retention; inherited
//! through `extends`. Each rule's code, message and file:line:column.

mod common;

use common::*;

/// BASE with an S3 store and `backup: <backup>` in `local` (and so in `offline`).
fn spec(backup: &str) -> String {
    let text = replace(
        "    tls: { mode: self-signed }\n  offline:",
        &format!("    tls: {{ mode: self-signed }}\n    backup: {backup}\n  offline:"),
    );
    text.replacen(
        "external:\n",
        "external:\n  s3: { kind: s3, endpoint: \"https://s3.example.org\", admin_access_key: token, admin_secret_key: token }\n",
        1,
    )
}

/// Where the value after `key` starts.
fn after(text: &str, key: &str) -> (u32, u32) {
    let (line, column) = at(text, key, 0);
    (line, column + key.len() as u32)
}

#[test]
fn a_backup_with_its_defaults_inherited_by_an_extending_environment() {
    let b = platform(&spec("{ to: s3, bucket: sprocket-backups }"), "offline")
        .environment
        .backup
        .unwrap();
    assert_eq!(
        (b.store.as_str(), b.bucket.as_str()),
        ("s3", "sprocket-backups")
    );
    assert_eq!(b.at_minute, 120);
    assert_eq!((b.keep_daily, b.keep_weekly, b.keep_monthly), (7, 4, 6));
    let b = local_platform(&spec(
        "{ to: s3, bucket: b-1, at: \"23:30\", keep: { daily: 2, weekly: 0, monthly: 12 } }",
    ))
    .environment
    .backup
    .unwrap();
    assert_eq!(b.at_minute, 23 * 60 + 30);
    assert!(b.scheduled, "a daily run unless the spec says `at: off`");
    assert_eq!((b.keep_daily, b.keep_weekly, b.keep_monthly), (2, 0, 12));
    assert!(local_platform(BASE).environment.backup.is_none());
    let b = local_platform(&spec("{ to: s3, bucket: b-1, at: off }"))
        .environment
        .backup
        .unwrap();
    assert!(!b.scheduled, "backups on demand only");
}

#[test]
fn bad_backups_are_refused_where_they_are_written() {
    let text = spec("{ to: postgres, bucket: backups }");
    expect(
        &text,
        "invalid-backup",
        "backup.to `postgres` is a `postgres` external, not `s3`",
        after(&text, "to: "),
    );
    let text = spec("{ to: s4, bucket: backups }");
    expect(
        &text,
        "invalid-backup",
        "backup.to `s4` is not an external",
        after(&text, "to: "),
    );
    let text = spec("{ to: s3, bucket: Backups_1 }");
    expect(
        &text,
        "invalid-bucket",
        "backup.bucket `Backups_1`",
        at(&text, "Backups_1", 0),
    );
    let text = spec("{ to: s3, bucket: backups, at: \"2am\" }");
    expect(
        &text,
        "invalid-backup",
        "backup.at `2am` is not a time of day `HH:MM`",
        at(&text, "\"2am\"", 0),
    );
    let text = spec("{ to: s3, bucket: backups, keep: { daily: 5000 } }");
    expect(
        &text,
        "invalid-backup",
        "backup.keep.daily 5000 is more than 1000",
        at(&text, "5000", 0),
    );
}

#[test]
fn the_backups_token_holder_is_not_a_service_name() {
    let text = replace("      web:\n", "      sprocketctl-backup:\n");
    expect(
        &text,
        "reserved-service-name",
        "service name `sprocketctl-backup` is reserved",
        at(&text, "sprocketctl-backup:", 0),
    );
}

#[test]
fn a_named_volume_marked_as_data_is_kept_and_a_bind_mount_cannot_be() {
    let text = replace(
        "redis: { image: \"redis:7.0-alpine\", ports",
        "redis: { image: \"redis:7.0-alpine\", volumes: [{ volume: redis-data, target: /data, backup: true }, { volume: tmp, target: /tmp }], ports",
    );
    let p = local_platform(&text);
    let backed: Vec<(String, bool)> = p
        .service("redis")
        .unwrap()
        .volumes
        .iter()
        .map(|v| match v {
            sprocket_spec::model::Volume::Named { name, backup, .. } => (name.clone(), *backup),
            sprocket_spec::model::Volume::Bind { .. } => unreachable!(),
        })
        .collect();
    assert_eq!(
        backed,
        [("redis-data".to_string(), true), ("tmp".to_string(), false)]
    );
    let text = replace(
        "redis: { image: \"redis:7.0-alpine\", ports",
        "redis: { image: \"redis:7.0-alpine\", volumes: [{ bind: /srv/redis, target: /data, backup: true }], ports",
    );
    let d = expect(
        &text,
        "backup-bind",
        "bind source `/srv/redis` is a folder of the node",
        at(&text, "{ bind: /srv/redis", 0),
    );
    assert!(d.help.unwrap().contains("named volume"));
}
