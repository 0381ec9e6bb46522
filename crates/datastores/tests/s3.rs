//! The S3 adapter against a real SeaweedFS (`scripts/lib/seaweedfs.sh`, started here if it is
//! not running), without a swarm, as its administrator — every request signed with
//! `sigv4.rs` and verified by the server:
//!
//! - buckets: made once, then reported as already ours;
//! - a user with a key pair we chose and a policy on one bucket: reads and writes there, is
//!   refused (AccessDenied) on another bucket; a read-only user cannot write;
//! - a wrong secret is refused (SignatureDoesNotMatch); the owner tag reads back;
//! - removing the user (policy, keys, user) refuses its key at once, and a new user of the same
//!   name does not inherit the old policy.

use sprocket_datastores::s3::{policy, BucketAccess, Client, OWNER_TAG};
use std::path::{Path, PathBuf};
use std::process::Command;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Starts the local SeaweedFS if needed: its endpoint and the administrator's key pair.
fn server() -> (String, String, String) {
    let out = Command::new("bash")
        .args([
            "-c",
            "source scripts/lib/engine.sh && source scripts/lib/seaweedfs.sh && s3_ensure >&2 \
             && echo \"http://$(s3_endpoint_host):$(s3_port)\" && s3_admin_access_key && echo \
             && s3_admin_secret_key",
        ])
        .current_dir(repo())
        .output()
        .expect("bash runs");
    assert!(
        out.status.success(),
        "the local SeaweedFS does not start: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let mut lines = text.lines().map(str::trim).filter(|l| !l.is_empty());
    let (e, a, s) = (lines.next(), lines.next(), lines.next());
    (
        e.expect("endpoint").to_string(),
        a.expect("access key").to_string(),
        s.expect("secret key").to_string(),
    )
}

const OWNER: &str = "sprocketctl-s3test";

#[tokio::test]
async fn buckets_users_and_keys_on_a_real_seaweedfs() {
    let (endpoint, ak, sk) = server();
    let admin = Client::new(&endpoint, "us-east-1", &ak, &sk).unwrap();
    // A clean slate: what an earlier run left.
    for user in ["s3test-rw", "s3test-ro"] {
        if admin.user_tags(user).await.unwrap().is_some() {
            admin.delete_user(user, "sprocket").await.unwrap();
        }
    }

    // Buckets: made once, then already ours.
    for b in ["s3test-a", "s3test-b"] {
        let _ = admin.create_bucket(b).await.unwrap();
        assert!(
            !admin.create_bucket(b).await.unwrap(),
            "{b} is already ours"
        );
    }
    assert!(admin
        .list_buckets()
        .await
        .unwrap()
        .contains(&"s3test-a".to_string()));

    // A read-write user on bucket a, a read-only one on a, with keys we chose.
    let (rw_key, rw_secret) = (
        "S3TESTRWKEY000000001",
        "s3test-rw-secret-0123456789abcdefghij",
    );
    let (ro_key, ro_secret) = (
        "S3TESTROKEY000000001",
        "s3test-ro-secret-0123456789abcdefghij",
    );
    for (user, key, secret, access) in [
        ("s3test-rw", rw_key, rw_secret, BucketAccess::Readwrite),
        ("s3test-ro", ro_key, ro_secret, BucketAccess::Read),
    ] {
        admin.create_user(user, OWNER).await.unwrap();
        admin
            .put_user_policy(user, "sprocket", &policy(&[("s3test-a".into(), access)]))
            .await
            .unwrap();
        admin.create_access_key(user, key, secret).await.unwrap();
        assert_eq!(admin.list_access_keys(user).await.unwrap(), [key]);
        assert_eq!(
            admin.user_tags(user).await.unwrap().unwrap(),
            [(OWNER_TAG.to_string(), OWNER.to_string())]
        );
    }
    assert!(admin
        .list_users()
        .await
        .unwrap()
        .contains(&"s3test-rw".to_string()));

    let rw = Client::new(&endpoint, "us-east-1", rw_key, rw_secret).unwrap();
    let put = rw
        .put_object("s3test-a", "dir/hello.txt", b"hello".to_vec())
        .await
        .unwrap();
    assert_eq!(put.status, 200, "{put:?}");
    let got = rw.get_object("s3test-a", "dir/hello.txt").await.unwrap();
    assert_eq!((got.status, got.body.as_str()), (200, "hello"));
    let other = rw.put_object("s3test-b", "x", b"x".to_vec()).await.unwrap();
    assert_eq!(
        (other.status, other.code()),
        (403, Some("AccessDenied")),
        "{other:?}"
    );

    let ro = Client::new(&endpoint, "us-east-1", ro_key, ro_secret).unwrap();
    let got = ro.get_object("s3test-a", "dir/hello.txt").await.unwrap();
    assert_eq!((got.status, got.body.as_str()), (200, "hello"));
    let put = ro
        .put_object("s3test-a", "nope", b"x".to_vec())
        .await
        .unwrap();
    assert_eq!(
        (put.status, put.code()),
        (403, Some("AccessDenied")),
        "{put:?}"
    );

    let wrong = Client::new(&endpoint, "us-east-1", rw_key, "not-the-secret-0000000000").unwrap();
    let r = wrong.get_object("s3test-a", "dir/hello.txt").await.unwrap();
    assert_eq!(
        (r.status, r.code()),
        (403, Some("SignatureDoesNotMatch")),
        "{r:?}"
    );

    // Removed: its key is refused at once; a new user of that name starts with no access.
    admin.delete_user("s3test-rw", "sprocket").await.unwrap();
    let r = rw.get_object("s3test-a", "dir/hello.txt").await.unwrap();
    assert_eq!(
        (r.status, r.code()),
        (403, Some("InvalidAccessKeyId")),
        "{r:?}"
    );
    admin.create_user("s3test-rw", OWNER).await.unwrap();
    admin
        .create_access_key("s3test-rw", rw_key, rw_secret)
        .await
        .unwrap();
    let r = rw.get_object("s3test-a", "dir/hello.txt").await.unwrap();
    assert_eq!(r.status, 403, "no inherited policy: {r:?}");
    admin.delete_user("s3test-rw", "sprocket").await.unwrap();
    admin.delete_user("s3test-ro", "sprocket").await.unwrap();
    assert_eq!(admin.user_tags("s3test-ro").await.unwrap(), None);
}

/// The provisioning job (what `sprocketctl provision` runs for an S3 external) against the real
/// store: buckets and users made once, then nothing; a new secret replaces the key (the old one
/// is refused); a changed bucket list changes the policy; a foreign user of a wanted name is
/// refused and left as it was; `--prune` removes our user and never the foreign one or a bucket.
#[tokio::test]
async fn the_provisioning_job_on_a_real_seaweedfs() {
    use sprocket_datastores::{s3, Outcome};
    use sprocket_desired::provision::{DatastoreKind, Job, JobLogin};
    use sprocket_spec::model::BucketAccess as Access;
    let (endpoint, ak, sk) = server();
    let admin = Client::new(&endpoint, "us-east-1", &ak, &sk).unwrap();
    let owner = "sprocketctl-s3jobtest";
    for user in ["s3job-app", "s3job-foreign"] {
        if admin.user_tags(user).await.unwrap().is_some() {
            admin.delete_user(user, s3::POLICY_NAME).await.unwrap();
        }
    }
    let files: std::collections::BTreeMap<&str, String> = [
        ("/admin/key", ak.clone()),
        ("/admin/secret", sk.clone()),
        ("/app/key", "S3JOBAPPKEY000000001".to_string()),
        (
            "/app/secret",
            "s3job-app-secret-one-0123456789abcdef".to_string(),
        ),
    ]
    .into_iter()
    .collect();
    let mut job = Job {
        kind: DatastoreKind::S3,
        host: String::new(),
        port: 0,
        admin_user: String::new(),
        admin_password_file: "/admin/secret".into(),
        admin_database: String::new(),
        sslmode: None,
        endpoint: endpoint.clone(),
        region: "us-east-1".into(),
        admin_key_file: "/admin/key".into(),
        buckets: vec!["s3job-assets".into(), "s3job-public".into()],
        owner: owner.into(),
        logins: vec![JobLogin {
            service: "app".into(),
            user: "s3job-app".into(),
            password_file: "/app/secret".into(),
            vhost: String::new(),
            configure: String::new(),
            write: String::new(),
            read: String::new(),
            database: String::new(),
            privileges: None,
            buckets: vec![
                ("s3job-assets".into(), Access::Readwrite),
                ("s3job-public".into(), Access::Read),
            ],
            key_file: "/app/key".into(),
            ..Default::default()
        }],
        prune: false,
        drop_data: false,
        retire: false,
    };
    let run = |job: Job, files: std::collections::BTreeMap<&'static str, String>| async move {
        let read = move |p: &str| {
            files
                .get(p)
                .cloned()
                .ok_or(sprocket_datastores::ProvisionError::Secret {
                    path: p.into(),
                    error: "not mounted".into(),
                })
        };
        s3::provision(&job, &read).await
    };
    // The app's client with the key pair the files hold.
    let app_client = |f: &std::collections::BTreeMap<&'static str, String>| {
        Client::new(&endpoint, "us-east-1", &f["/app/key"], &f["/app/secret"]).unwrap()
    };
    let first = run(job.clone(), files.clone()).await.unwrap();
    assert_eq!(first.logins[0].outcome, Outcome::Created, "{first:?}");
    let app = app_client(&files);
    let put = app
        .put_object("s3job-assets", "a.txt", b"a".to_vec())
        .await
        .unwrap();
    assert_eq!(put.status, 200, "{put:?}");
    let put = app
        .put_object("s3job-public", "a.txt", b"a".to_vec())
        .await
        .unwrap();
    assert_eq!(
        (put.status, put.code()),
        (403, Some("AccessDenied")),
        "read only: {put:?}"
    );

    // Again: nothing changes.
    let again = run(job.clone(), files.clone()).await.unwrap();
    assert_eq!(
        (
            again.logins[0].outcome,
            again.made.clone(),
            again.logins[0].changed.clone()
        ),
        (
            Outcome::Unchanged,
            Vec::<String>::new(),
            Vec::<String>::new()
        ),
        "{again:?}"
    );

    // A rotated secret: the key is replaced; the old secret is refused, the new one works.
    let mut rotated = files.clone();
    rotated.insert(
        "/app/secret",
        "s3job-app-secret-two-0123456789abcdef".into(),
    );
    let r = run(job.clone(), rotated.clone()).await.unwrap();
    assert_eq!(
        (r.logins[0].outcome, r.logins[0].changed.clone()),
        (Outcome::Updated, vec!["key".to_string()])
    );
    let old = app.get_object("s3job-assets", "a.txt").await.unwrap();
    assert_eq!(
        (old.status, old.code()),
        (403, Some("SignatureDoesNotMatch")),
        "{old:?}"
    );
    let new = app_client(&rotated);
    let got = new.get_object("s3job-assets", "a.txt").await.unwrap();
    assert_eq!((got.status, got.body.as_str()), (200, "a"));

    // Its buckets change: the policy follows (now it may write the public one too).
    job.logins[0].buckets[1].1 = Access::Readwrite;
    let r = run(job.clone(), rotated.clone()).await.unwrap();
    assert_eq!(r.logins[0].changed, ["buckets"], "{r:?}");
    let put = new
        .put_object("s3job-public", "b.txt", b"b".to_vec())
        .await
        .unwrap();
    assert_eq!(put.status, 200, "{put:?}");

    // A rotated key pair (a new id and a new secret, as `secrets rotate` makes): the new key is
    // added and the previous one kept — the consumer's running task still signs with it during
    // its roll — until the retire job, after the roll, removes it.
    let mut paired = rotated.clone();
    paired.insert("/app/key", "S3JOBAPPKEYTWO0000001".into());
    paired.insert(
        "/app/secret",
        "s3job-app-secret-three-0123456789abcdef".into(),
    );
    let r = run(job.clone(), paired.clone()).await.unwrap();
    assert_eq!(
        (r.logins[0].changed.clone(), r.retire.clone()),
        (
            vec!["key".to_string(), "previous key kept for the roll".into()],
            vec!["s3job-app".to_string()]
        ),
        "{r:?}"
    );
    let newer = app_client(&paired);
    for (who, c) in [("the previous key", &new), ("the new key", &newer)] {
        let got = c.get_object("s3job-assets", "a.txt").await.unwrap();
        assert_eq!(
            (got.status, got.body.as_str()),
            (200, "a"),
            "{who} during the roll"
        );
    }
    let mut retire = job.clone();
    retire.retire = true;
    retire.buckets.clear();
    let r = run(retire.clone(), paired.clone()).await.unwrap();
    assert_eq!(r.removed, ["previous key of user s3job-app"], "{r:?}");
    let old = new.get_object("s3job-assets", "a.txt").await.unwrap();
    assert_eq!(
        (old.status, old.code()),
        (403, Some("InvalidAccessKeyId")),
        "the previous key after the roll: {old:?}"
    );
    let got = newer.get_object("s3job-assets", "a.txt").await.unwrap();
    assert_eq!((got.status, got.body.as_str()), (200, "a"));
    let r = run(retire.clone(), paired.clone()).await.unwrap();
    assert!(r.removed.is_empty(), "retired once: {r:?}");
    // A retire whose current key does not work keeps every key (never leaves none that works).
    let mut broken = paired.clone();
    broken.insert("/app/key", "S3JOBAPPKEYNOTTHERE01".into());
    let e = run(retire, broken).await.unwrap_err().to_string();
    assert!(e.contains("previous key is kept"), "{e}");
    let got = newer.get_object("s3job-assets", "a.txt").await.unwrap();
    assert_eq!(got.status, 200, "the working key stays");
    // A rotated pair for a consumer with no task yet (its service is made by this deploy):
    // nothing signs with the previous key, so it goes with the provisioning — no retire step.
    let mut fresh = paired.clone();
    fresh.insert("/app/key", "S3JOBAPPKEYFOUR000001".into());
    fresh.insert(
        "/app/secret",
        "s3job-app-secret-four-0123456789abcdef".into(),
    );
    let r = run(job.clone().mark_fresh(|_| false), fresh.clone())
        .await
        .unwrap();
    assert_eq!(
        (r.logins[0].changed.clone(), r.retire.clone()),
        (
            vec![
                "key".to_string(),
                "previous key removed: no task of the consumer holds it".into()
            ],
            Vec::<String>::new()
        ),
        "{r:?}"
    );
    let old = newer.get_object("s3job-assets", "a.txt").await.unwrap();
    assert_eq!(
        (old.status, old.code()),
        (403, Some("InvalidAccessKeyId")),
        "the previous key at once: {old:?}"
    );
    let newest = app_client(&fresh);
    let got = newest.get_object("s3job-assets", "a.txt").await.unwrap();
    assert_eq!((got.status, got.body.as_str()), (200, "a"));
    let (rotated, new) = (fresh, newest);

    // A user of a wanted name that is not ours: refused, and left as it was.
    admin
        .create_user("s3job-foreign", "somebody-else")
        .await
        .unwrap();
    let mut foreign = job.clone();
    foreign.logins[0].user = "s3job-foreign".into();
    let e = run(foreign, rotated.clone()).await.unwrap_err().to_string();
    assert!(e.contains("s3job-foreign") && e.contains("not ours"), "{e}");
    assert_eq!(
        admin
            .get_user_policy("s3job-foreign", s3::POLICY_NAME)
            .await
            .unwrap(),
        None
    );

    // Its consumer goes; --prune removes our user, never the foreign one or a bucket.
    job.logins.clear();
    job.prune = true;
    let r = run(job.clone(), rotated.clone()).await.unwrap();
    assert_eq!(r.removed, ["user s3job-app"], "{r:?}");
    assert_eq!(admin.user_tags("s3job-app").await.unwrap(), None);
    assert!(admin.user_tags("s3job-foreign").await.unwrap().is_some());
    let gone = new.get_object("s3job-assets", "a.txt").await.unwrap();
    assert_eq!(
        (gone.status, gone.code()),
        (403, Some("InvalidAccessKeyId")),
        "{gone:?}"
    );
    let buckets = admin.list_buckets().await.unwrap();
    assert!(buckets.contains(&"s3job-assets".to_string()), "{buckets:?}");
    admin
        .delete_user("s3job-foreign", s3::POLICY_NAME)
        .await
        .unwrap();
}
