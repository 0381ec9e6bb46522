//! Vault's declarative configuration on the real swarm with real OpenBao: `up` mounts the
//! engines, writes the team and derived service policies and the token role, issues every
//! reading service a periodic token as a Docker secret, and works with a scoped admin token.
//! From inside their containers, services read their own paths and are denied each other's;
//! the agent keeps their tokens alive past their period (a token nobody renews expires); a
//! second `up` changes nothing; `plan` shows Vault changes; a revoked token is reissued; the root
//! token is revoked and regenerated from the unseal keys. No token appears in any output, log or
//! inspect.

mod common;

use common::Run;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::time::Duration;

const NS: &str = "sprocket-vcfg";
const PORT: u16 = 19180;
const ENV: &str = "e2e-vcfg";

struct Env {
    dir: PathBuf,
    home: PathBuf,
    spec: PathBuf,
    printed: std::cell::RefCell<String>,
}

/// A failed test takes its stack down (what it leaves running would slow the tests after it).
impl Drop for Env {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let _ = self.ctl(&["-q", "down", "--volumes"]);
        }
    }
}

impl Env {
    fn new() -> Env {
        let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let dir = std::env::temp_dir().join(format!("sprocket-vcfg-e2e-{}", std::process::id()));
        let home = dir.join("home");
        std::fs::create_dir_all(dir.join("config")).unwrap();
        std::fs::create_dir_all(&home).unwrap();
        for e in std::fs::read_dir(repo.join("examples/sprocket/config")).unwrap() {
            let e = e.unwrap();
            std::fs::copy(e.path(), dir.join("config").join(e.file_name())).unwrap();
        }
        let spec = dir.join("sprocket.yaml");
        let env = Env {
            dir,
            home,
            spec,
            printed: Default::default(),
        };
        env.write_spec("");
        common::seed_externals(&env.dir.join(".secrets/offline.env"));
        // The offline environment reads its secrets from a dotenv file beside the spec.
        assert_eq!(env.ctl(&["-q", "secrets", "init-dotenv"]).code, 0);
        env
    }

    /// The example, plus a second reader (`demo-2`, path `platform/other/*`) and an environment
    /// with 20 s token periods (the tokens are issued in the Vault step, before the agent that
    /// renews them runs: with another test's stack booting beside this one the agent took 10 s to
    /// start, and a 6 s token had lapsed by then). `demo_extra` is appended to the demo's `vault` paths.
    fn write_spec(&self, demo_extra: &str) {
        let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let example =
            std::fs::read_to_string(repo.join("examples/sprocket/sprocket.yaml")).unwrap();
        let example = example.replace(
            "vault: [platform/demo/*]",
            &format!("vault: [platform/demo/*{demo_extra}]"),
        );
        let second = "      demo-2:\n        image: ghcr.io/sprocketbot/sprocketctl-demo:0.1.0\n        health: { cmd: [sprocket-demo, probe], interval: 1s }\n        vault: [platform/other/*]\n\nenvironments:";
        let example = example.replacen("\nenvironments:", &format!("\n{second}"), 1);
        let env = format!(
            "\n  {ENV}:\n    extends: offline\n    namespace: {NS}\n    http_port: {PORT}\n    https_port: 19543\n    vault: {{ recipients: [\"file:~/.config/sprocket/age.pub\"], token_period: 20s }}\n    disable: {{ n8n: \"not under test\" }}\n"
        );
        std::fs::write(&self.spec, format!("{}\n{env}", example.trim_end())).unwrap();
    }

    fn ctl(&self, args: &[&str]) -> Run {
        let r = common::sprocketctl(&self.home, &self.spec, ENV, args);
        self.printed
            .borrow_mut()
            .push_str(&format!("{}\n{}\n", r.stdout, r.stderr));
        r
    }

    fn keyring(&self) -> sprocket_vault::Keyring {
        sprocket_vault::Keyring::open(
            &self.dir.join(format!("keyrings/{NS}.age")),
            &self.home.join(".config/sprocket/identity.txt"),
        )
        .unwrap()
    }
}

fn docker(args: &[&str]) -> String {
    common::docker_any(args)
}

/// Vault's HTTP API through Traefik.
async fn api(
    method: reqwest::Method,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (u16, Value) {
    common::vault_api(PORT, method, path, token, body).await
}

/// The accessor of a live token (fails the test if the token does not work).
async fn accessor_of(token: &str) -> String {
    let (s, v) = api(
        reqwest::Method::GET,
        "auth/token/lookup-self",
        Some(token),
        None,
    )
    .await;
    assert_eq!(s, 200, "the token works");
    v["data"]["accessor"].as_str().unwrap().to_string()
}

/// Revokes the token behind `accessor`, as an operator would by hand.
async fn revoke(root: &str, accessor: &str) {
    let (s, _) = api(
        reqwest::Method::POST,
        "auth/token/revoke-accessor",
        Some(root),
        Some(json!({ "accessor": accessor })),
    )
    .await;
    assert_eq!(s, 204);
}

fn container(service: &str) -> String {
    for _ in 0..100 {
        let id = docker(&[
            "ps",
            "-q",
            "--filter",
            &format!("label=com.docker.swarm.service.name={NS}_{service}"),
        ]);
        if let Some(first) = id.lines().next().filter(|l| !l.is_empty()) {
            return first.to_string();
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    panic!("no running container of {service}")
}

/// From inside the service's container, with its own token file and `VAULT_ADDR`: the HTTP
/// status line of a GET of `path` (plain bash, no curl in the image).
fn read_from_inside(service: &str, path: &str) -> String {
    let script = format!(
        "set -e; h=${{VAULT_ADDR#http://}}; exec 3<>/dev/tcp/${{h%:*}}/${{h##*:}}; \
         printf 'GET /v1/{path} HTTP/1.0\\r\\nX-Vault-Token: %s\\r\\n\\r\\n' \"$(cat $VAULT_TOKEN_FILE)\" >&3; cat <&3"
    );
    docker(&["exec", &container(service), "bash", "-c", &script])
}

fn token_inside(service: &str) -> String {
    docker(&[
        "exec",
        &container(service),
        "cat",
        "/run/secrets/vault-token",
    ])
    .trim()
    .to_string()
}

/// The Vault changes a `plan -o json` lists, without the blocked ones (GitHub here).
fn planned(plan: &Run) -> Vec<Value> {
    plan.json()["vault"]["plan"]["changes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["action"] != "blocked")
        .cloned()
        .collect()
}

fn changes(r: &Value) -> Vec<String> {
    r["vault"]["config"]["changes"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|c| format!("{} {} {}", c["action"], c["kind"], c["name"]).replace('"', ""))
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread")]
async fn vault_is_configured_from_the_spec_and_services_get_least_privilege_tokens() {
    common::require_swarm();
    let env = Env::new();
    let _ = env.ctl(&["-q", "down", "--volumes"]);
    assert_eq!(env.ctl(&["-q", "vault", "keygen"]).code, 0);

    // 1. From nothing: Vault initialised, then configured, before the layers that read it.
    let up = env.ctl(&["-o", "json", "up", "--timeout", "180"]);
    assert_eq!(up.code, 0, "{}", up.stdout);
    let r = up.json();
    let done = changes(&r);
    for want in [
        "create mount infrastructure/",
        "create mount platform/",
        "create mount misc/",
        "create policy developers",
        "create policy platform-admins",
        "create policy svc-demo",
        "create policy svc-demo-2",
        "create token-role sprocket-services",
        "create service-token demo",
        "create service-token demo-2",
    ] {
        assert!(done.iter().any(|d| d == want), "{want} missing: {done:?}");
    }
    // OpenBao 2.x has no GitHub plugin: said plainly, not silently skipped.
    let blocked = &r["vault"]["config"]["blocked"];
    assert_eq!(blocked[0]["kind"], "auth", "{r}");
    assert!(blocked[0]["detail"]
        .as_str()
        .unwrap()
        .contains("no `github` auth plugin"));

    // The keyring now holds a scoped admin token beside the root token.
    let k = env.keyring();
    let admin = k.admin_token.clone().expect("admin token in the keyring");
    let (s, v) = api(
        reqwest::Method::GET,
        "auth/token/lookup-self",
        Some(&admin),
        None,
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(
        v["data"]["policies"],
        json!(["default", "sprocketctl-admin"])
    );
    assert_eq!(v["data"]["orphan"], true, "revoking root does not take it");
    // …which manages configuration and reads no secret of the spec's mounts.
    let root = k.root_token.clone();
    let (s, _) = api(
        reqwest::Method::POST,
        "platform/data/demo/db",
        Some(&root),
        Some(json!({ "data": { "password": "p-demo" } })),
    )
    .await;
    assert_eq!(s, 200);
    let (s, _) = api(
        reqwest::Method::POST,
        "platform/data/other/db",
        Some(&root),
        Some(json!({ "data": { "password": "p-other" } })),
    )
    .await;
    assert_eq!(s, 200);
    let (s, _) = api(
        reqwest::Method::GET,
        "platform/data/demo/db",
        Some(&admin),
        None,
    )
    .await;
    assert_eq!(s, 403, "the admin token reads no secret data");
    // …but the platform's own secrets, in its namespace under `sprocket/`, and nothing beside.
    let (s, _) = api(
        reqwest::Method::GET,
        &format!("sprocket/data/{NS}/redis-password"),
        Some(&admin),
        None,
    )
    .await;
    assert_eq!(s, 200, "the admin token reads the namespace's secrets");
    let (s, _) = api(
        reqwest::Method::GET,
        "sprocket/data/another-namespace/redis-password",
        Some(&admin),
        None,
    )
    .await;
    assert_eq!(s, 403, "and only its own namespace's");

    // 2. Least privilege, from inside the containers, with the derived VAULT_ADDR and token.
    let own = read_from_inside("demo", "platform/data/demo/db");
    assert!(own.starts_with("HTTP/1.0 200"), "{own}");
    assert!(own.contains("p-demo"));
    let other = read_from_inside("demo", "platform/data/other/db");
    assert!(other.starts_with("HTTP/1.0 403"), "{other}");
    let own2 = read_from_inside("demo-2", "platform/data/other/db");
    assert!(own2.starts_with("HTTP/1.0 200"), "{own2}");
    let other2 = read_from_inside("demo-2", "platform/data/demo/db");
    assert!(other2.starts_with("HTTP/1.0 403"), "{other2}");

    // 3. The agent renews the tokens: after more than a 20 s period they live on, while a token
    //    from the same role that nobody renews has expired.
    let demo_token = token_inside("demo");
    let (s, v) = api(
        reqwest::Method::POST,
        "auth/token/create/sprocket-services",
        Some(&admin),
        Some(json!({ "policies": ["svc-demo"] })),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let control = v["auth"]["client_token"].as_str().unwrap().to_string();
    tokio::time::sleep(Duration::from_secs(24)).await;
    let (s, _) = api(
        reqwest::Method::GET,
        "auth/token/lookup-self",
        Some(&control),
        None,
    )
    .await;
    assert_eq!(s, 403, "an unrenewed token expires after its period");
    let (s, v) = api(
        reqwest::Method::GET,
        "auth/token/lookup-self",
        Some(&demo_token),
        None,
    )
    .await;
    assert_eq!(s, 200, "the agent kept the demo's token alive");
    assert!(v["data"]["ttl"].as_u64().unwrap() > 0);
    let agent = container("vault-agent");
    let metrics = docker(&[
        "exec",
        &agent,
        "curl",
        "-s",
        "http://127.0.0.1:9090/metrics",
    ]);
    let renewals: f64 = metrics
        .lines()
        .find(|l| l.starts_with("sprocket_agent_token_renewals_total"))
        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        .unwrap_or_else(|| panic!("no renewal metric:\n{metrics}"));
    assert!(renewals >= 8.0, "2 tokens × ≥ 4 renewals: {metrics}");

    // 4. Re-applying changes nothing: no engine call, no Vault change.
    let again = env.ctl(&["-o", "json", "up"]);
    assert_eq!(again.code, 0, "{}", again.stdout);
    let r = again.json();
    assert_eq!(r["calls"]["create"], 0, "{r}");
    assert_eq!(r["calls"]["update"], 0, "{r}");
    assert!(changes(&r).is_empty(), "{:?}", changes(&r));
    let plan = env.ctl(&["-o", "json", "plan", "--detailed-exitcode"]);
    assert_eq!(plan.code, 0, "{}", plan.stdout);

    // 5. A new path for the demo: plan shows the policy change; up makes it without restarting
    //    anything (policies are looked up by name), and the demo reads the new path.
    env.write_spec(", misc/shared");
    let plan = env.ctl(&["-o", "json", "plan", "--detailed-exitcode"]);
    assert_eq!(plan.code, 2, "{}", plan.stdout);
    let vp = planned(&plan);
    assert_eq!(vp.len(), 1, "{vp:?}");
    assert_eq!(
        (vp[0]["kind"].as_str(), vp[0]["name"].as_str()),
        (Some("policy"), Some("svc-demo"))
    );
    assert_eq!(vp[0]["action"], "update");
    let human = env.ctl(&["plan"]);
    assert!(
        human.stdout.contains("~ policy svc-demo"),
        "{}",
        human.stdout
    );
    let (s, _) = api(
        reqwest::Method::POST,
        "misc/shared",
        Some(&root),
        Some(json!({ "flag": "on" })),
    )
    .await;
    assert_eq!(s, 204);
    let up = env.ctl(&["-o", "json", "up"]);
    assert_eq!(up.code, 0, "{}", up.stdout);
    let r = up.json();
    assert_eq!(changes(&r), ["update policy svc-demo"]);
    assert_eq!(r["calls"]["update"], 0, "no service restarted: {r}");
    let shared = read_from_inside("demo", "misc/shared");
    assert!(
        shared.starts_with("HTTP/1.0 200") && shared.contains("\"on\""),
        "{shared}"
    );

    // 6. A revoked token is reissued: plan says so, up makes a new secret and restarts the demo
    //    (and the agent, which renews it) with it; the old secret goes.
    let accessor = accessor_of(&demo_token).await;
    revoke(&root, &accessor).await;
    let plan = env.ctl(&["-o", "json", "plan"]);
    let vp = planned(&plan);
    assert_eq!(vp[0]["kind"], "service-token", "{vp:?}");
    assert_eq!(vp[0]["name"], "demo");
    let up = env.ctl(&["-o", "json", "up"]);
    assert_eq!(up.code, 0, "{}", up.stdout);
    let r = up.json();
    assert_eq!(changes(&r), ["create service-token demo"]);
    assert_eq!(r["calls"]["update"], 2, "demo and the agent: {r}");
    let new_token = token_inside("demo");
    assert!(new_token != demo_token, "a new token (never printed)");
    let own = read_from_inside("demo", "platform/data/demo/db");
    assert!(own.starts_with("HTTP/1.0 200"), "{own}");
    let settle = env.ctl(&["-o", "json", "up"]);
    assert_eq!(settle.code, 0);
    let secrets = docker(&["secret", "ls", "--format", "{{.Name}}"]);
    let demo_secrets = secrets
        .lines()
        // `<ns>_vault-token-demo-<12 hex>`: the demo's, not another service's whose name
        // starts with `demo-` (a hash may start with any digit).
        .filter(|l| {
            l.strip_prefix(&format!("{NS}_vault-token-demo-"))
                .is_some_and(|h| h.len() == 12 && h.chars().all(|c| c.is_ascii_hexdigit()))
        })
        .count();
    assert_eq!(
        demo_secrets, 1,
        "the replaced token's secret is gone: {secrets}"
    );

    // 6b. A run interrupted between issuing a token and restarting its service (here: a valid
    //     token secret made by hand, the one the demo mounts revoked): the next `up` sees the
    //     demo on a version that is not the current one and restarts it (and the agent) with
    //     the current one — no Vault change needed — and the stale secret goes.
    let (s, v) = api(
        reqwest::Method::POST,
        "auth/token/create/sprocket-services",
        Some(&admin),
        Some(json!({ "policies": ["svc-demo"] })),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let (fresh, fresh_acc) = (
        v["auth"]["client_token"].as_str().unwrap().to_string(),
        v["auth"]["accessor"].as_str().unwrap().to_string(),
    );
    let file = env.dir.join("fresh-token");
    std::fs::write(&file, &fresh).unwrap();
    let name = format!("{NS}_vault-token-demo-interrupted");
    let made = docker(&[
        "secret",
        "create",
        "--label",
        "io.sprocket.managed-by=sprocketctl",
        "--label",
        &format!("io.sprocket.namespace={NS}"),
        "--label",
        "io.sprocket.name=vault-token-demo",
        "--label",
        &format!("io.sprocket.vault-accessor={fresh_acc}"),
        &name,
        file.to_str().unwrap(),
    ]);
    std::fs::remove_file(&file).unwrap();
    assert!(!made.contains("Error"), "{made}");
    let mounted_acc = accessor_of(&new_token).await;
    revoke(&root, &mounted_acc).await;
    let healed = env.ctl(&["-o", "json", "up"]);
    assert_eq!(healed.code, 0, "{}", healed.stdout);
    let r = healed.json();
    assert!(changes(&r).is_empty(), "no Vault change: {:?}", changes(&r));
    assert_eq!(r["calls"]["update"], 2, "demo and the agent: {r}");
    assert_eq!(token_inside("demo"), fresh);
    let own = read_from_inside("demo", "platform/data/demo/db");
    assert!(own.starts_with("HTTP/1.0 200"), "{own}");
    let settle = env.ctl(&["-o", "json", "up"]);
    assert_eq!(settle.code, 0);
    assert_eq!(settle.json()["calls"]["update"], 0);

    // 7. Root token hygiene: revoke it; up keeps working with the admin token; a new root token
    //    comes from the unseal keys.
    let revoke = env.ctl(&["-o", "json", "vault", "revoke-root"]);
    assert_eq!(revoke.code, 0, "{}", revoke.stderr);
    let (s, _) = api(
        reqwest::Method::GET,
        "auth/token/lookup-self",
        Some(&root),
        None,
    )
    .await;
    assert_eq!(s, 403, "the old root token is revoked");
    assert!(env.keyring().root_token.is_empty());
    let up = env.ctl(&["-o", "json", "up"]);
    assert_eq!(up.code, 0, "{}", up.stdout);
    assert!(changes(&up.json()).is_empty());
    let generate = env.ctl(&["-o", "json", "vault", "generate-root"]);
    assert_eq!(generate.code, 0, "{}", generate.stderr);
    assert_eq!(generate.json()["action"], "generated");
    let new_root = env.keyring().root_token;
    assert!(!new_root.is_empty() && new_root != root);
    let (s, v) = api(
        reqwest::Method::GET,
        "auth/token/lookup-self",
        Some(&new_root),
        None,
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(v["data"]["policies"], json!(["root"]));

    // 8. A reader the spec drops: with --prune its service goes, its token is revoked, its
    //    policy and its secret are removed; without --prune they stay, and plan says so.
    let demo2_accessor = accessor_of(&token_inside("demo-2")).await;
    let text = std::fs::read_to_string(&env.spec).unwrap();
    std::fs::write(
        &env.spec,
        text.replace(
            "      demo-2:\n        image: ghcr.io/sprocketbot/sprocketctl-demo:0.1.0\n        health: { cmd: [sprocket-demo, probe], interval: 1s }\n        vault: [platform/other/*]\n",
            "",
        ),
    )
    .unwrap();
    let plan = env.ctl(&["plan"]);
    assert!(
        plan.stdout.contains("- policy svc-demo-2")
            && plan.stdout.contains("- service token demo-2"),
        "{}",
        plan.stdout
    );
    let pruned = env.ctl(&["-o", "json", "up", "--prune"]);
    assert_eq!(pruned.code, 0, "{}", pruned.stdout);
    let r = pruned.json();
    let done = changes(&r);
    assert!(
        done.contains(&"delete policy svc-demo-2".to_string()),
        "{done:?}"
    );
    assert!(
        done.contains(&"delete service-token demo-2".to_string()),
        "{done:?}"
    );
    let (s, _) = api(
        reqwest::Method::POST,
        "auth/token/lookup-accessor",
        Some(&new_root),
        Some(json!({ "accessor": demo2_accessor })),
    )
    .await;
    assert_eq!(s, 400, "demo-2's token is revoked");
    let removed = r["removed"].to_string();
    assert!(
        removed.contains(&format!("service {NS}_demo-2")),
        "{removed}"
    );
    assert!(
        removed.contains(&format!("secret {NS}_vault-token-demo-2-")),
        "{removed}"
    );

    // 9. No token in any output, in the agent's logs, or in any service's inspect.
    let mut seen = env.printed.borrow().clone();
    seen.push_str(&docker(&["service", "logs", &format!("{NS}_vault-agent")]));
    for s in ["vault", "vault-agent", "demo"] {
        seen.push_str(&docker(&["service", "inspect", &format!("{NS}_{s}")]));
    }
    for (what, secret) in [
        ("root token", &root),
        ("new root token", &new_root),
        ("admin token", &admin),
        ("demo token", &demo_token),
        ("reissued demo token", &new_token),
        ("hand-made demo token", &fresh),
    ] {
        assert!(!seen.contains(secret.as_str()), "the {what} leaked");
    }

    let down = env.ctl(&["-q", "down", "--volumes"]);
    assert_eq!(down.code, 0);
    let _ = std::fs::remove_dir_all(&env.dir);
}
