//! The keyring's custody when writing fails, and the one true cause when `up` has no keys:
//! unit tests with real age keyrings in temporary folders (no Vault needed).

use super::*;

/// An age identity file in `dir` and its public key.
fn identity(dir: &Path) -> (PathBuf, String) {
    let id = age::x25519::Identity::generate();
    let path = dir.join("identity.txt");
    let secret = age::secrecy::ExposeSecret::expose_secret(&id.to_string()).to_string();
    std::fs::write(&path, format!("{secret}\n")).unwrap();
    (path, id.to_public().to_string())
}

fn keyring() -> Keyring {
    Keyring {
        format: 1,
        vault: "test".into(),
        created_at: 1,
        shares: 5,
        threshold: 3,
        unseal_keys_b64: (0..5).map(|i| format!("unseal-key-{i}-in-clear")).collect(),
        root_token: "s.root-token-in-clear".into(),
        admin_token: None,
        recipients: vec![],
    }
}

/// A path whose folder cannot be made: it lies under a regular file.
fn unwritable(dir: &Path, name: &str) -> PathBuf {
    let file = dir.join(format!("{name}-is-a-file"));
    std::fs::write(&file, "").unwrap();
    file.join("keyrings").join(format!("{name}.age"))
}

#[test]
fn the_keyring_is_written_where_the_spec_says() {
    let dir = tempfile::tempdir().unwrap();
    let (id, public) = identity(dir.path());
    let sealed = keyring().seal(&[public]).unwrap();
    let path = dir.path().join("keyrings/ns.age");
    let mut printed = Vec::new();
    keep_sealed_keyring(
        &path,
        &dir.path().join("fallback.age"),
        &sealed,
        &mut printed,
    )
    .unwrap();
    assert!(printed.is_empty());
    assert!(!dir.path().join("fallback.age").exists());
    assert_eq!(
        Keyring::open(&path, &id).unwrap().fingerprint(),
        keyring().fingerprint()
    );
}

#[test]
fn an_unwritable_keyring_goes_to_the_fallback_and_the_message_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let (id, public) = identity(dir.path());
    let sealed = keyring().seal(&[public]).unwrap();
    let path = unwritable(dir.path(), "ns");
    let fallback = dir.path().join("fallback.age");
    let mut printed = Vec::new();
    let e = keep_sealed_keyring(&path, &fallback, &sealed, &mut printed).unwrap_err();
    assert!(
        matches!(e, LifecycleError::KeyringWriteFailed { .. }),
        "{e}"
    );
    assert!(
        e.to_string().contains("an encrypted copy was saved to"),
        "{e}"
    );
    assert!(printed.is_empty(), "nothing to print: the copy is on disk");
    assert_eq!(
        Keyring::open(&fallback, &id).unwrap().fingerprint(),
        keyring().fingerprint()
    );
}

#[test]
fn when_no_copy_can_be_written_the_ciphertext_is_printed_and_the_message_tells_the_truth() {
    let dir = tempfile::tempdir().unwrap();
    let (id, public) = identity(dir.path());
    let sealed = keyring().seal(&[public]).unwrap();
    let path = unwritable(dir.path(), "ns");
    let fallback = unwritable(dir.path(), "fallback");
    let mut printed = Vec::new();
    let e = keep_sealed_keyring(&path, &fallback, &sealed, &mut printed).unwrap_err();
    let message = e.to_string();
    assert!(!fallback.exists() && !path.exists());
    assert!(
        !message.contains("was saved"),
        "claims a copy that does not exist: {message}"
    );
    assert!(message.contains("printed on stderr"), "{message}");
    assert!(message.contains(&path.display().to_string()), "{message}");

    // What was printed: instructions, then the armoured block and nothing in clear.
    let printed = String::from_utf8(printed).unwrap();
    assert!(
        printed.contains(&format!("exactly, to {}", path.display())),
        "{printed}"
    );
    let begin = printed
        .find("-----BEGIN AGE ENCRYPTED FILE-----")
        .expect("the armoured keyring is printed");
    let end = printed.find("-----END AGE ENCRYPTED FILE-----").unwrap();
    let k = keyring();
    for secret in k.unseal_keys_b64.iter().chain([&k.root_token]) {
        assert!(!printed.contains(secret.as_str()) && !message.contains(secret.as_str()));
    }
    // Saved as the message says, it is the keyring: it opens with the operator's identity.
    let block = &printed[begin..end + "-----END AGE ENCRYPTED FILE-----".len()];
    let saved = dir.path().join("saved.age");
    std::fs::write(&saved, format!("{block}\n")).unwrap();
    let opened = Keyring::open(&saved, &id).unwrap();
    assert_eq!(opened.fingerprint(), k.fingerprint());
    assert_eq!(opened.root_token, k.root_token);
}

fn vault(keyring: PathBuf, recipients: Vec<String>) -> Vault {
    Vault {
        service: "vault".into(),
        shares: 5,
        threshold: 3,
        keyring,
        recipients,
        mounts: vec![],
        policies: vec![],
        github: None,
        token_period_s: 3600,
        readers: Default::default(),
    }
}

/// The causes `up` can name, by the words that name each. A message names one.
const CAUSES: [(&str, &str); 6] = [
    ("not initialised", "not initialised"),
    ("missing keyring", "no keyring at"),
    ("no identity", "no identity"),
    ("wrong identity", "cannot open the keyring"),
    ("unusable identity file", "as an identity"),
    ("damaged keyring", "is damaged"),
];

/// What `up` says for a Vault in this state whose keyring failed to open with `error`.
fn said(initialized: bool, sealed: bool, error: Option<LifecycleError>) -> String {
    keys_unavailable(&VaultReport {
        initialized,
        sealed,
        keyring_error: error,
        ..Default::default()
    })
}

fn assert_one_cause(message: &str, cause: &str, sealed: bool) {
    let named: Vec<&str> = CAUSES
        .iter()
        .filter(|(_, words)| message.contains(words))
        .map(|(name, _)| *name)
        .collect();
    assert_eq!(
        named,
        [cause],
        "names {named:?}, not just {cause}: {message}"
    );
    assert_eq!(message.contains("sealed"), sealed, "{message}");
    assert!(
        !message.contains('\n') && !message.contains("  "),
        "one line: {message}"
    );
}

#[test]
fn up_names_the_one_true_cause_of_missing_keys() {
    let dir = tempfile::tempdir().unwrap();
    let (alice, alice_pub) = identity(dir.path());
    let eve_dir = dir.path().join("eve");
    std::fs::create_dir(&eve_dir).unwrap();
    let (eve, _) = identity(&eve_dir);
    let not_an_identity = dir.path().join("not-an-identity.txt");
    std::fs::write(&not_an_identity, "hello\n").unwrap();
    let c = VaultClient::new("http://127.0.0.1:1");
    let path = dir.path().join("keyrings/ns.age");
    let v = vault(path.clone(), vec![alice_pub.clone()]);
    let open = |identity: &Path| open_initialised_keyring(&c, &v, Some(identity)).unwrap_err();

    // The checkout that prompted this: an initialised Vault, no keyring, an identity.
    let missing = open(&alice);
    assert!(matches!(
        missing,
        LifecycleError::InitializedWithoutKeyring { .. }
    ));
    assert_one_cause(&said(true, false, Some(missing)), "missing keyring", false);

    keyring().save(&path, &[alice_pub]).unwrap();
    assert!(open_initialised_keyring(&c, &v, Some(&alice)).is_ok());
    assert_one_cause(
        &said(true, false, Some(open(&eve))),
        "wrong identity",
        false,
    );
    assert_one_cause(
        &said(true, false, Some(open(&not_an_identity))),
        "unusable identity file",
        false,
    );
    let no_identity = || LifecycleError::NoIdentity {
        keyring: path.clone(),
    };
    assert_one_cause(
        &said(true, false, Some(no_identity())),
        "no identity",
        false,
    );
    assert_one_cause(&said(true, true, Some(no_identity())), "no identity", true);

    let mut damaged = std::fs::read(&path).unwrap();
    let mid = damaged.len() / 2;
    damaged[mid] = if damaged[mid] == b'A' { b'B' } else { b'A' };
    std::fs::write(&path, &damaged).unwrap();
    assert_one_cause(
        &said(true, false, Some(open(&alice))),
        "damaged keyring",
        false,
    );

    // Not initialised (no recipients yet): that, not a keyring problem.
    assert_one_cause(&said(false, true, None), "not initialised", false);
    // Sealed, and nothing known against the keyring: only that.
    let sealed = said(true, true, None);
    assert!(CAUSES.iter().all(|(_, w)| !sealed.contains(w)), "{sealed}");
    assert!(sealed.contains("sealed"), "{sealed}");
}

/// F12: an answer of `sys/init` that does not read is kept, encrypted to the operators, before
/// the error is reported (it may hold the only copy of the keys); the error quotes none of it.
#[tokio::test]
async fn an_unreadable_init_answer_is_kept_encrypted() {
    use axum::routing::{get, put};
    let answer = r#"{"keys_base64":["a2V5LW9uZQ=="],"root_token":"s.r00t-t0ken-in-the-answer","#;
    let app = axum::Router::new()
        .route(
            "/v1/sys/seal-status",
            get(|| async {
                axum::Json(serde_json::json!({
                    "type": "shamir", "initialized": false, "sealed": true,
                    "t": 0, "n": 0, "progress": 0, "version": "stub"
                }))
            }),
        )
        .route("/v1/sys/init", put(move || async move { answer }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });

    let dir = tempfile::tempdir().unwrap();
    let (id, public) = identity(dir.path());
    let v = vault(dir.path().join("keyrings/ns.age"), vec![public]);
    let c = VaultClient::new(&format!("http://{addr}"));
    let err = init(&c, &v, "ns", Progress { enabled: false })
        .await
        .unwrap_err();
    let msg = err.to_string();
    let LifecycleError::InitAnswerUnreadable { kept, .. } = err else {
        panic!("{msg}");
    };
    assert!(!msg.contains("r00t") && !msg.contains("a2V5"), "{msg}");
    let text = std::fs::read_to_string(&kept).unwrap();
    assert!(text.starts_with("-----BEGIN AGE ENCRYPTED FILE-----"));
    assert!(!text.contains("r00t"));
    // It opens with the operator's key and is the answer as received.
    let identities = age::IdentityFile::from_file(id.display().to_string())
        .unwrap()
        .into_identities()
        .unwrap();
    let armored = age::armor::ArmoredReader::new(text.as_bytes());
    let mut plain = Vec::new();
    {
        use std::io::Read;
        age::Decryptor::new(armored)
            .unwrap()
            .decrypt(identities.iter().map(|i| i.as_ref() as &dyn age::Identity))
            .unwrap()
            .read_to_end(&mut plain)
            .unwrap();
    }
    assert_eq!(plain, answer.as_bytes());
}
