//! A foreign object with one of our names (a config left by `docker stack deploy` of something
//! else, or made by hand) is found by `plan` and refused by `up` before any change: never the
//! engine's raw 409 halfway through a deploy, and never adopted. On the real swarm; its own
//! namespace. No engine is a failure, never a skip.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

const NS: &str = "sprocket-foreign";
const ENV: &str = "foreign";

fn docker(args: &[&str]) -> (bool, String) {
    common::docker_status(args)
}

fn spec(dir: &Path) -> PathBuf {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let example = std::fs::read_to_string(repo.join("examples/sprocket/sprocket.yaml")).unwrap();
    let env = format!(
        "\n  {ENV}:\n    extends: offline\n    namespace: {NS}\n    http_port: 19380\n    https_port: 19743\n    disable: {{ vault: \"not needed here\", n8n: \"not under test\" }}\n"
    );
    // Config files are read relative to the spec.
    let _ = std::fs::create_dir_all(dir);
    let status = Command::new("cp")
        .arg("-r")
        .arg(repo.join("examples/sprocket/config"))
        .arg(dir)
        .status()
        .unwrap();
    assert!(status.success());
    let path = dir.join("sprocket.yaml");
    let example: String = example
        .lines()
        .filter(|l| !l.contains("vault: [platform/demo/") && !l.ends_with("# kept in Vault"))
        .collect::<Vec<_>>()
        .join("\n");
    std::fs::write(&path, format!("{}\n{env}", example.trim_end())).unwrap();
    common::seed_externals(&dir.join(".secrets/offline.env"));
    path
}

#[test]
fn a_foreign_object_with_our_name_blocks_the_plan_before_any_change() {
    common::require_swarm();
    let dir = std::env::temp_dir().join(format!("sprocket-foreign-{}", std::process::id()));
    let home = dir.join("home");
    std::fs::create_dir_all(&home).unwrap();
    let spec = spec(&dir);
    let ctl = |args: &[&str]| common::sprocketctl(&home, &spec, ENV, args);

    // The name `up` would give RabbitMQ's config (content-addressed), made by someone else,
    // with the label `docker stack deploy` puts on what it makes.
    let rendered = ctl(&["-o", "json", "render"]).json();
    let config = rendered["layers"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|l| l["configs"].as_array().unwrap())
        .map(|c| c["name"].as_str().unwrap().to_string())
        .find(|n| n.contains("rabbitmq"))
        .expect("rabbitmq has a config");
    let _ = docker(&["config", "rm", &config]);
    let file = dir.join("foreign.conf");
    std::fs::write(&file, "not ours\n").unwrap();
    let (ok, out) = docker(&[
        "config",
        "create",
        "--label",
        &format!("com.docker.stack.namespace={NS}"),
        &config,
        file.to_str().unwrap(),
    ]);
    assert!(ok, "{out}");

    let plan = ctl(&["plan"]);
    assert_eq!(plan.code, 7, "plan is blocked: {}", plan.stdout);
    assert!(
        plan.stdout
            .contains(&format!("blocked: config {config} exists but is not ours"))
            && plan.stdout.contains("docker stack deploy")
            && plan.stdout.contains(&format!("docker config rm {config}")),
        "{}",
        plan.stdout
    );
    let json = ctl(&["-o", "json", "plan"]).json();
    assert_eq!(json["plan"]["conflicts"][0]["name"], config);

    let up = ctl(&["up", "--timeout", "30"]);
    assert_eq!(up.code, 7, "up is refused");
    assert!(
        up.stderr.contains("not ours") && up.stderr.contains("Nothing was changed"),
        "{}",
        up.stderr
    );
    assert!(!up.stderr.contains("409"), "no raw engine error");
    // Nothing was made, and the foreign config is untouched.
    let (_, services) = docker(&[
        "service",
        "ls",
        "-q",
        "--filter",
        &format!("label=io.sprocket.namespace={NS}"),
    ]);
    assert!(services.is_empty(), "no service was created: {services}");
    let (_, networks) = docker(&[
        "network",
        "ls",
        "-q",
        "--filter",
        &format!("label=io.sprocket.namespace={NS}"),
    ]);
    assert!(networks.is_empty(), "no network was created: {networks}");
    let (_, content) = docker(&[
        "config",
        "inspect",
        "--format",
        "{{json .Spec.Labels}}",
        &config,
    ]);
    assert!(content.contains("com.docker.stack.namespace"), "{content}");

    let (ok, out) = docker(&["config", "rm", &config]);
    assert!(ok, "{out}");
    let _ = std::fs::remove_dir_all(&dir);
}
