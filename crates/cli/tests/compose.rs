//! The compose export deploys as printed, from another folder, on the real swarm: the offline
//! environment with Vault disabled (as `scripts/bench` compares it), its spec read by a relative
//! path, is rendered into one folder; then, from a different folder, the `docker stack deploy`
//! command that `render` printed is run as is. It must succeed and create every service of the
//! stack, with its configs (absolute `file:` paths, ownership labels), its generated secrets
//! (created first with the commands `render` printed) and an env value holding `$` intact. The stack is removed afterwards and the test waits until its objects are gone.
//!
//! Its own namespace and ports, so it runs beside the other end-to-end tests. No engine is a
//! failure, never a skip. The services are only created, not awaited: whether their tasks run
//! depends on the locally built images, not on the export.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const NS: &str = "sprocket-compose-e2e";
const ENV: &str = "compose-e2e";
/// Written into an env value of the demo: compose would interpolate it unless escaped.
const DOLLAR: &str = "pa$$w${HOME}rd$";

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// `docker ARGS…` run from `cwd`: (success, stdout, stderr).
fn docker_in(cwd: &Path, args: &[&str]) -> (bool, String, String) {
    let out = Command::new("docker")
        .current_dir(cwd)
        .args(args)
        .output()
        .expect("docker CLI runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).trim().to_string(),
        String::from_utf8_lossy(&out.stderr).trim().to_string(),
    )
}

fn docker(args: &[&str]) -> String {
    let (ok, out, err) = docker_in(Path::new("."), args);
    assert!(ok, "docker {args:?}: {err}");
    out
}

/// Names of the stack's objects of one kind (`service`, `network`, `config`, `volume`), sorted.
fn stack_objects(kind: &str) -> Vec<String> {
    let mut v: Vec<String> = docker(&[
        kind,
        "ls",
        "--filter",
        &format!("label=com.docker.stack.namespace={NS}"),
        "--format",
        "{{.Name}}",
    ])
    .lines()
    .map(str::to_string)
    .collect();
    v.sort();
    v
}

/// Removes the stack and waits until none of its objects is left (`docker stack rm` returns
/// before configs and networks still in use are gone). Also run before the test, for what an
/// interrupted run left behind.
fn remove_stack() {
    let _ = docker_in(Path::new("."), &["stack", "rm", NS]);
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let left: Vec<String> = ["service", "network", "config"]
            .iter()
            .flat_map(|k| stack_objects(k))
            .collect();
        let volumes = stack_objects("volume");
        if left.is_empty() {
            // The generated secrets the test created for the stack.
            let (_, secrets, _) = docker_in(
                Path::new("."),
                &["secret", "ls", "-q", "--filter", &format!("name={NS}_")],
            );
            for id in secrets.split_whitespace() {
                let _ = docker_in(Path::new("."), &["secret", "rm", id]);
            }
            // Volumes outlive the stack by design; the tasks that made them are gone now.
            for v in &volumes {
                let _ = docker_in(Path::new("."), &["volume", "rm", v]);
            }
            if stack_objects("volume").is_empty() {
                return;
            }
        }
        assert!(
            Instant::now() < deadline,
            "stack {NS} still has {left:?} {volumes:?} two minutes after `docker stack rm`"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// Removes the stack and the test's folder when the test ends, passed or not.
struct Cleanup(PathBuf);

impl Drop for Cleanup {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
        remove_stack();
    }
}

/// The example platform with Vault disabled, as `scripts/bench` builds it (the demo reads no
/// Vault path and mounts no secret kept in Vault), and an env value with `$` in it.
fn write_spec(dir: &Path) {
    let example = std::fs::read_to_string(repo().join("examples/sprocket/sprocket.yaml")).unwrap();
    let text: String = example
        .lines()
        .filter(|l| {
            !l.starts_with("        vault: [platform/demo/") && !l.ends_with("# kept in Vault")
        })
        .map(|l| format!("{l}\n"))
        .collect();
    assert_ne!(text, example, "the example's demo reads Vault paths");
    assert!(
        text.trim_end().rsplit("\n\n").next().unwrap().contains("    extends: "),
        "the test environment is appended to `environments:`, which must stay the example's last section"
    );
    let env = format!(
        "\n  {ENV}:\n    extends: offline\n    namespace: {NS}\n    http_port: 19280\n    https_port: 19643\n    disable: {{ vault: \"compose export test: stack deploy cannot initialise Vault\", n8n: \"not under test\" }}\n    services: {{ demo: {{ env: {{ E2E_DOLLAR: '{DOLLAR}' }} }} }}\n"
    );
    std::fs::write(
        dir.join("sprocket.yaml"),
        format!("{}\n{env}", text.trim_end()),
    )
    .unwrap();
    common::seed_externals(&dir.join(".secrets/offline.env"));
    let config = dir.join("config");
    std::fs::create_dir_all(&config).unwrap();
    for e in std::fs::read_dir(repo().join("examples/sprocket/config")).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), config.join(e.file_name())).unwrap();
    }
}

#[test]
fn compose_export_deploys_as_printed_from_another_folder() {
    common::require_swarm();
    let work = std::env::temp_dir().join(format!("sprocket-compose-e2e-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&work);
    let (spec_dir, elsewhere, home) =
        (work.join("spec"), work.join("elsewhere"), work.join("home"));
    for d in [&spec_dir, &elsewhere, &home] {
        std::fs::create_dir_all(d).unwrap();
    }
    write_spec(&spec_dir);
    remove_stack();
    let cleanup = Cleanup(work.clone());

    // Render from the spec's folder, with the spec and --out given relative to it.
    let r = common::sprocketctl_in(
        &spec_dir,
        &home,
        Path::new("sprocket.yaml"),
        ENV,
        &["render", "--format", "compose", "--out", "compose"],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        !r.stderr.contains("left out"),
        "nothing mounts a secret here, so nothing is left out:\n{}",
        r.stderr
    );
    let printed = r
        .stderr
        .lines()
        .find_map(|l| l.strip_prefix("deploy with: "))
        .unwrap_or_else(|| panic!("render prints the deploy command:\n{}", r.stderr));
    let words: Vec<&str> = printed.split_whitespace().collect();
    assert_eq!(words[..2], ["docker", "stack"], "{printed}");
    assert_eq!(words.last(), Some(&NS), "{printed}");
    assert_eq!(
        words.iter().filter(|w| **w == "-c").count(),
        3,
        "one file per layer: {printed}"
    );

    // The generated secrets first, with the commands `render` printed (random values).
    let creates: Vec<&str> = r
        .stderr
        .lines()
        .map(str::trim_start)
        .filter(|l| l.starts_with("openssl rand -hex 32 | docker secret create "))
        .collect();
    assert_eq!(
        creates.len(),
        7,
        "Redis's password (mounted by Redis and the demo: made once), RabbitMQ's admin's, the demo's own Redis, RabbitMQ and PostgreSQL logins' and its S3 key's two halves: {}",
        r.stderr
    );
    // The login itself is not something a compose file can make: the export says so.
    assert!(
        r.stderr
            .contains("not made by the compose files: the datastore logins of `access` (ACL user demo (~demo:* &demo:*) on redis, demo@demo, alternating with demo_b on rabbitmq, sprocket-compose-e2e_demo@sprocket-compose-e2e_demo (owner, alternating with sprocket-compose-e2e_demo_b) on postgres, sprocket-compose-e2e-demo (sprocket-main readwrite, sprocket-replays-main read) on s3)"),
        "{}",
        r.stderr
    );
    for c in &creates {
        let status = Command::new("sh")
            .current_dir(&elsewhere)
            .args(["-c", c])
            .status()
            .unwrap();
        assert!(status.success(), "{c}");
    }

    // Deploy exactly as printed, from another folder.
    let (ok, out, err) = docker_in(&elsewhere, &words[1..]);
    assert!(
        ok,
        "`{printed}` run from {}: {out}\n{err}",
        elsewhere.display()
    );

    // Every service of the environment is created, with its config and its env as written.
    let desired = common::sprocketctl(
        &home,
        &spec_dir.join("sprocket.yaml"),
        ENV,
        &["-o", "json", "render"],
    )
    .json();
    let mut expected: Vec<String> = desired["layers"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|l| l["services"].as_array().unwrap())
        .map(|s| s["name"].as_str().unwrap().to_string())
        .collect();
    expected.sort();
    let mut offline_without_vault: Vec<String> =
        ["traefik", "socket-proxy", "redis", "rabbitmq", "demo"]
            .iter()
            .map(|s| format!("{NS}_{s}"))
            .collect();
    offline_without_vault.sort();
    assert_eq!(expected, offline_without_vault);
    assert_eq!(stack_objects("service"), expected);

    // Configs: the spec names them relative to its folder; the export gave their absolute
    // paths, and they carry sprocketctl's ownership labels.
    let mut want_configs: Vec<String> = desired["layers"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|l| l["configs"].as_array().unwrap())
        .map(|c| c["name"].as_str().unwrap().to_string())
        .collect();
    want_configs.sort();
    assert!(
        !want_configs.is_empty(),
        "the export is tested with configs"
    );
    assert_eq!(stack_objects("config"), want_configs);
    for c in &want_configs {
        let labels = docker(&["config", "inspect", c, "--format", "{{json .Spec.Labels}}"]);
        let labels: serde_json::Value = serde_json::from_str(&labels).unwrap();
        assert_eq!(
            labels["io.sprocket.managed-by"], "sprocketctl",
            "{c}: {labels}"
        );
        assert_eq!(labels["io.sprocket.namespace"], NS, "{c}: {labels}");
        assert_eq!(labels["io.sprocket.environment"], ENV, "{c}: {labels}");
    }

    let env = docker(&[
        "service",
        "inspect",
        &format!("{NS}_demo"),
        "--format",
        "{{json .Spec.TaskTemplate.ContainerSpec.Env}}",
    ]);
    let env: Vec<String> = serde_json::from_str(&env).unwrap();
    assert!(
        env.contains(&format!("E2E_DOLLAR={DOLLAR}")),
        "the env value reaches the service unchanged: {env:?}"
    );

    drop(cleanup);
    for kind in ["service", "network", "config", "volume"] {
        assert!(
            stack_objects(kind).is_empty(),
            "{kind}s of {NS} left behind"
        );
    }
}
