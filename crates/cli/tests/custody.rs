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
    assert!(stderr.contains("1..=86400"), "{stderr}");
}
