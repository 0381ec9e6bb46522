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
        ("s3test-rw", rw_key, rw_secret, BucketAccess::ReadWrite),
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
