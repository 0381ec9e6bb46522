//! Custody of keys and the command line's manners, without a swarm: `vault keygen --force`
//! moves the old identity aside instead of destroying it (F13); a closed stdout ends a command
//! quietly (`sprocketctl render | head`).

use std::path::Path;
use std::process::{Command, Stdio};

fn ctl(home: &Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_sprocketctl"))
        .env("HOME", home)
        .args(args)
        .output()
        .expect("sprocketctl runs")
}

#[test]
fn keygen_force_keeps_the_old_identity() {
    let home = tempfile::tempdir().unwrap();
    let first = ctl(home.path(), &["-o", "json", "vault", "keygen"]);
    assert!(first.status.success());
    let identity = home.path().join(".config/sprocket/identity.txt");
    let old = std::fs::read_to_string(&identity).unwrap();

    let refused = ctl(home.path(), &["vault", "keygen"]);
    assert!(
        !refused.status.success(),
        "an identity is not replaced without --force"
    );
    assert_eq!(std::fs::read_to_string(&identity).unwrap(), old);

    let forced = ctl(home.path(), &["-o", "json", "vault", "keygen", "--force"]);
    assert!(forced.status.success());
    let report: serde_json::Value = serde_json::from_slice(&forced.stdout).unwrap();
    let aside = Path::new(report["replaced"].as_str().expect("where the old one went"));
    assert_eq!(
        std::fs::read_to_string(aside).unwrap(),
        old,
        "moved, not destroyed"
    );
    assert_ne!(std::fs::read_to_string(&identity).unwrap(), old);
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(aside).unwrap().permissions().mode() & 0o777,
        0o600
    );
}

#[test]
fn a_closed_stdout_ends_the_command_quietly() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let spec = repo.join("examples/sprocket/sprocket.yaml");
    let home = tempfile::tempdir().unwrap();
    // A pipe whose reading end is already closed, as after `| head` has exited.
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let out = Command::new(env!("CARGO_BIN_EXE_sprocketctl"))
        .env("HOME", home.path())
        .args(["-f", spec.to_str().unwrap(), "-e", "prod", "render"])
        .stdout(Stdio::from(writer))
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(!stderr.contains("failed printing"), "{stderr}");
    assert_eq!(out.status.code(), Some(141), "{:?}", out.status);
}

/// F24: a huge `--timeout` is refused before anything is read or changed (it used to overflow
/// an `Instant` and panic half-way through a deploy).
#[test]
fn an_out_of_range_timeout_is_refused_up_front() {
    let home = tempfile::tempdir().unwrap();
    let out = ctl(
        home.path(),
        &[
            "-f",
            "/nonexistent/spec.yaml",
            "up",
            "--timeout",
            "18446744073709551615",
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--timeout"), "{stderr}");
    assert!(stderr.contains("0..=86400"), "{stderr}");
}

/// F22: a process that may hold keys writes no core file (its core size limit is 0 from the
/// start of `main`; it also marks itself not dumpable, which the kernel does not show to others).
#[test]
fn sprocketctl_writes_no_core_file() {
    // `validate` of a spec that is a FIFO blocks in `open`, after `main` has set itself up.
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("spec.yaml");
    let status = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(status.success());
    let mut child = Command::new(env!("CARGO_BIN_EXE_sprocketctl"))
        .env("HOME", dir.path())
        .args(["-f", fifo.to_str().unwrap(), "validate"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let limits = format!("/proc/{}/limits", child.id());
    let mut core = String::new();
    for _ in 0..250 {
        std::thread::sleep(std::time::Duration::from_millis(20));
        let l = std::fs::read_to_string(&limits).unwrap_or_default();
        if let Some(line) = l.lines().find(|x| x.starts_with("Max core file size")) {
            core = line.to_string();
            // Both limits: a runner may start us with a soft limit of 0 already (CI does), so
            // the soft one alone does not show that `main` has run.
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.get(4..6) == Some(&["0", "0"][..]) {
                break;
            }
        }
    }
    // Unblock it, and end it.
    let _ = std::fs::write(&fifo, "platform: x\n");
    let _ = child.kill();
    let _ = child.wait();
    let fields: Vec<&str> = core.split_whitespace().collect();
    assert_eq!(fields.get(4..6), Some(&["0", "0"][..]), "{core}");
}

/// F14: `vault recipients` shows how the keyring's recipients differ from the spec's and, only
/// with --confirm, re-encrypts it (the previous file kept); nothing else changes them.
#[test]
fn recipients_change_only_when_confirmed() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    let spec_dir = dir.path().join("spec");
    std::fs::create_dir_all(spec_dir.join("keyrings")).unwrap();
    let status = Command::new("cp")
        .arg("-r")
        .arg(repo.join("examples/sprocket/config"))
        .arg(&spec_dir)
        .status()
        .unwrap();
    assert!(status.success());
    let spec = spec_dir.join("sprocket.yaml");
    std::fs::copy(repo.join("examples/sprocket/sprocket.yaml"), &spec).unwrap();
    // The spec (`local`) encrypts to ~/.config/sprocket/age.pub: this operator's new key.
    assert!(ctl(&home, &["vault", "keygen"]).status.success());
    let mine = home.join(".config/sprocket/identity.txt");
    // The keyring was encrypted to someone else only.
    let other = age::x25519::Identity::generate();
    let other_file = dir.path().join("other.txt");
    std::fs::write(
        &other_file,
        age::secrecy::ExposeSecret::expose_secret(&other.to_string()),
    )
    .unwrap();
    let other_pub = other.to_public().to_string();
    let keyring = spec_dir.join("keyrings/sprocket.age");
    let mut k = sprocket_vault::Keyring {
        format: 1,
        vault: "test".into(),
        created_at: 1,
        shares: 1,
        threshold: 1,
        unseal_keys_b64: vec!["a2V5".into()],
        root_token: "s.test-root".into(),
        admin_token: None,
        recipients: vec![],
    };
    k.save(&keyring, std::slice::from_ref(&other_pub)).unwrap();
    let run = |extra: &[&str]| {
        let mut args = vec!["-f", spec.to_str().unwrap(), "-e", "local", "-o", "json"];
        args.extend_from_slice(&[
            "vault",
            "recipients",
            "--identity",
            other_file.to_str().unwrap(),
        ]);
        args.extend_from_slice(extra);
        let out = ctl(&home, &args);
        assert!(
            out.status.success(),
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()
    };
    let shown = run(&[]);
    assert_eq!(shown["removed"], serde_json::json!([other_pub]));
    assert_eq!(shown["added"].as_array().unwrap().len(), 1);
    assert_eq!(shown["rewritten"], false);
    assert!(
        sprocket_vault::Keyring::open(&keyring, &mine).is_err(),
        "unchanged"
    );

    let done = run(&["--confirm"]);
    assert_eq!(done["rewritten"], true);
    let previous = Path::new(done["previous"].as_str().unwrap());
    assert!(
        sprocket_vault::Keyring::open(previous, &other_file).is_ok(),
        "old copy kept"
    );
    let reopened = sprocket_vault::Keyring::open(&keyring, &mine).unwrap();
    assert_eq!(reopened.unseal_keys_b64, ["a2V5"]);
    assert!(sprocket_vault::Keyring::open(&keyring, &other_file).is_err());
}
