//! `secrets check` against a dotenv source, without a swarm: the example's `local` environment
//! reads its secrets from a file here. A clean file passes (exit 0); every fault of the original
//! platform's secrets is reported with its key and line (exit 3), and no value is ever printed.

use std::path::Path;
use std::process::Command;

fn ctl(home: &Path, args: &[&str]) -> (i32, String, String) {
    ctl_with(home, &[], args)
}

fn ctl_with(home: &Path, env: &[(&str, &str)], args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_sprocketctl"))
        .env("HOME", home)
        .env_remove("SPROCKET_SECRETS_FROM")
        .env_remove("DOPPLER_TOKEN")
        .env_remove("DOPPLER_API_HOST")
        .envs(env.iter().copied())
        .args(args)
        .output()
        .expect("sprocketctl runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

#[test]
fn a_dotenv_source_is_checked_key_by_key_and_no_value_is_shown() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let spec = repo.join("examples/sprocket/sprocket.yaml");
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path();
    // Every key the example takes from its source, from the spec itself.
    let loaded = sprocket_spec::load_file(&spec, Some("local")).unwrap();
    let keys: Vec<String> = loaded
        .platform
        .secrets
        .iter()
        .filter(|s| s.source == sprocket_spec::model::SecretSource::Doppler)
        .map(|s| s.key.clone())
        .collect();
    assert!(keys.len() >= 10, "{keys:?}");
    let value = |i: usize| format!("v4lue-{i:02}-0123456789abcdef0123456789");
    let good: String = keys
        .iter()
        .enumerate()
        .map(|(i, k)| format!("{k}={}\n", value(i)))
        .collect();
    let env_file = dir.path().join("secrets.env");
    std::fs::write(&env_file, &good).unwrap();
    let from = format!("dotenv:{}", env_file.display());
    let args = |extra: &[&str]| {
        let mut a = vec![
            "-f",
            spec.to_str().unwrap(),
            "-e",
            "local",
            "-o",
            "json",
            "secrets",
            "check",
        ];
        a.extend_from_slice(extra);
        a.iter().map(|s| s.to_string()).collect::<Vec<_>>()
    };
    let run = |extra: &[&str]| {
        let a = args(extra);
        let a: Vec<&str> = a.iter().map(String::as_str).collect();
        ctl(home, &a)
    };
    let (code, out, err) = run(&["--secrets-from", &from]);
    assert_eq!(code, 0, "{out}{err}");
    let r: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(r["ok"], true, "{r}");
    assert!(r["checked"].as_u64().unwrap() >= 10, "{r}");

    // The faults: a duplicated key, a wrapped value, a padded one, a CRLF line, one missing, a
    // key nobody claims.
    let (dup, wrapped, padded, crlf, missing) = (&keys[0], &keys[1], &keys[2], &keys[3], &keys[4]);
    let mut bad = String::new();
    for (i, k) in keys.iter().enumerate() {
        let line = match k {
            k if k == wrapped => format!("{k}=\"{}\n{}\"\n", &value(i)[..6], &value(i)[6..]),
            k if k == padded => format!("{k}= {} \n", value(i)),
            k if k == crlf => format!("{k}={}\r\n", value(i)),
            k if k == missing => continue,
            k => format!("{k}={}\n", value(i)),
        };
        bad.push_str(&line);
    }
    bad.push_str(&format!("{dup}=another-{}\n", value(0)));
    bad.push_str("NOBODY_USES_THIS=x\n");
    std::fs::write(&env_file, &bad).unwrap();
    let (code, out, err) = run(&["--secrets-from", &from]);
    assert_eq!(code, 3, "{out}{err}");
    let r: serde_json::Value = serde_json::from_str(&out).unwrap();
    let found: Vec<(String, String)> = r["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["code"].as_str().unwrap().into(),
                f["key"].as_str().unwrap().into(),
            )
        })
        .collect();
    for expected in [
        ("duplicate-key", dup),
        ("line-break", wrapped),
        ("surrounding-whitespace", padded),
        ("line-break", crlf),
        ("missing-secret", missing),
        ("unclaimed-key", &"NOBODY_USES_THIS".to_string()),
    ] {
        assert!(
            found.contains(&(expected.0.to_string(), expected.1.clone())),
            "{expected:?} not in {found:?}"
        );
    }
    let dup_lines = r["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["code"] == "duplicate-key")
        .unwrap()["lines"]
        .clone();
    assert_eq!(
        dup_lines.as_array().unwrap().len(),
        2,
        "both places: {dup_lines}"
    );
    // The human report, too, names keys and file:line, never a value.
    let a = args(&["--secrets-from", &from]);
    let mut a: Vec<&str> = a.iter().map(String::as_str).collect();
    a.retain(|x| *x != "-o" && *x != "json");
    let (code, human, _) = ctl(home, &a);
    assert_eq!(code, 3);
    assert!(
        human.contains(&format!("{}:", env_file.display())),
        "{human}"
    );
    for (i, _) in keys.iter().enumerate() {
        assert!(
            !out.contains(&value(i)[6..]) && !human.contains(&value(i)[6..]),
            "a value leaked"
        );
    }

    // The environment's own `secrets_from`, and a source that is not one.
    let (code, out, err) = run(&["--secrets-from", "vault:x"]);
    assert_eq!(code, 3);
    assert!(out.contains("not a secrets source"), "{out}{err}");
    // `local` reads Doppler (`doppler:sprocket/dev`): without a token, a clear error.
    let (code, out, _) = run(&[]);
    assert_eq!(code, 3);
    assert!(
        out.contains("DOPPLER_TOKEN") && out.contains("sprocket/dev"),
        "{out}"
    );

    // Doppler (the test server, proved against the real Doppler CLI in sprocket-secrets'
    // tests), as `local` names it, with the token and API host in the CLI's own variables.
    let rt = tokio::runtime::Runtime::new().unwrap();
    let token = "dp.st.dev.Zq8kY3pR4bC7vN1xW6mT0sH2jL5uA9eD";
    let (host, state) = rt.block_on(sprocket_secrets::doppler_fake::start(
        token, "sprocket", "dev",
    ));
    for (i, k) in keys.iter().enumerate() {
        state.lock().unwrap().secrets.insert(k.clone(), value(i));
    }
    let env = [
        ("DOPPLER_API_HOST", host.as_str()),
        ("DOPPLER_TOKEN", token),
    ];
    let a = args(&[]);
    let a: Vec<&str> = a.iter().map(String::as_str).collect();
    let (code, out, err) = ctl_with(home, &env, &a);
    assert_eq!(code, 0, "{out}{err}");
    let r: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(r["source"], "doppler:sprocket/dev");
    assert_eq!(
        r["warnings"], 0,
        "Doppler's own DOPPLER_* keys are nobody's: {r}"
    );
    // A value with a line break in Doppler is caught the same way.
    state
        .lock()
        .unwrap()
        .secrets
        .insert(keys[0].clone(), "wr4pped\nv4lue".into());
    let (code, out, _) = ctl_with(home, &env, &a);
    assert_eq!(code, 3, "{out}");
    assert!(
        out.contains("line-break") && !out.contains("wr4pped"),
        "{out}"
    );
}
