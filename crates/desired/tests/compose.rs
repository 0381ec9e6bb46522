//! The compose export is deployable as printed, from any folder: absolute config paths, `$`
//! escaped, ownership labels on configs, and no secret valued — services that mount one from
//! elsewhere are left out, each with its reason in the file's header and in `left_out`; a
//! generated one is an external secret the operator creates first with the printed command.

use serde_json::Value;
use sprocket_desired::compose::{compose_files, ComposeFile};
use sprocket_desired::state::desired;
use sprocket_spec::{parse, resolve, Files, SourceFile};
use std::path::Path;
use std::sync::Arc;

/// Read from the relative path `shop/sprocket.yaml`, as `sprocketctl -f shop/sprocket.yaml`
/// would: its config files are then relative to the current directory.
const SPEC: &str = r#"platform: shop
secrets:
  db-password: { source: doppler, key: DB_PASSWORD }
  session-key: { source: generate, length: 64 }
vault:
  recipients: ["age1qyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqs3290gq"]
  mounts: { apps: kv-v2 }
layers:
  infra:
    services:
      vault:
        role: vault
        image: "openbao/openbao:2.7.2"
        command: [bao, server, -config=/openbao/config/vault.hcl]
        configs: [{ file: config/vault.hcl, target: /openbao/config/vault.hcl }]
      agent: { role: unseal-agent, image: "example/agent:1" }
  apps:
    services:
      web:
        image: "example/web:1"
        env: { GREETING: "pa$$w${HOME}rd", PLAIN: plain }
        configs: [{ file: config/web.json, target: /app/config.json }]
        secrets: [{ name: session-key, mode: 0o440, uid: 1000, gid: 1000 }]
      api: { image: "example/api:1", vault: [apps/api] }
      db: { image: "example/db:1", secrets: [db-password] }
environments:
  local:
    hostname: localhost
"#;

fn export(base: &Path) -> Vec<ComposeFile> {
    let parsed = parse(SourceFile {
        path: "shop/sprocket.yaml".into(),
        text: Arc::from(SPEC),
    })
    .unwrap();
    let read = |p: &Path| -> std::io::Result<Vec<u8>> {
        match p.to_str() {
            Some("shop/config/vault.hcl") => Ok(b"storage \"file\" {}".to_vec()),
            Some("shop/config/web.json") => Ok(b"{}".to_vec()),
            _ => Err(std::io::ErrorKind::NotFound.into()),
        }
    };
    let platform = resolve(&parsed, Some("local"), &Files::new(&read))
        .unwrap()
        .platform;
    compose_files(&desired(&platform), base)
}

fn yaml(f: &ComposeFile) -> Value {
    serde_saphyr::from_str(&f.text).unwrap()
}

#[test]
fn config_paths_are_absolute_and_configs_carry_the_ownership_labels() {
    let files = export(Path::new("/srv/ops"));
    let mut seen = Vec::new();
    let mut derived = Vec::new();
    for f in &files {
        let v = yaml(f);
        for (_, c) in v["configs"].as_object().into_iter().flatten() {
            let file = c["file"].as_str().unwrap();
            // A derived config: written beside the compose file, named relative to it.
            if let Some(name) = file.strip_prefix("./") {
                let (_, content) = f.derived.iter().find(|(n, _)| n == name).unwrap();
                assert!(!content.is_empty());
                derived.push(name.rsplit_once('-').unwrap().0.to_string());
                continue;
            }
            assert!(Path::new(file).is_absolute(), "{file}");
            let labels = &c["labels"];
            assert_eq!(labels["io.sprocket.managed-by"], "sprocketctl", "{c}");
            assert_eq!(labels["io.sprocket.namespace"], "shop", "{c}");
            assert_eq!(labels["io.sprocket.environment"], "local", "{c}");
            assert_eq!(labels["io.sprocket.layer"], f.layer.as_str(), "{c}");
            assert_eq!(labels["com.docker.stack.namespace"], "shop", "{c}");
            assert!(labels["io.sprocket.spec-hash"].is_string(), "{c}");
            seen.push((file.to_string(), labels["io.sprocket.name"].clone()));
        }
    }
    assert_eq!(
        seen,
        [
            (
                "/srv/ops/shop/config/vault.hcl".to_string(),
                Value::from("vault/config/vault.hcl")
            ),
            (
                "/srv/ops/shop/config/web.json".to_string(),
                Value::from("web/config/web.json")
            ),
        ]
    );
    derived.sort();
    assert_eq!(derived, ["shop_vault-sprocket-listener"]);
}

#[test]
fn dollars_are_escaped_for_compose_interpolation() {
    let files = export(Path::new("/srv/ops"));
    let apps = yaml(&files[1]);
    let env = &apps["services"]["web"]["environment"];
    // `docker stack deploy` turns `$$` back into `$`: the container sees the spec's value.
    assert_eq!(env["GREETING"], "pa$$$$w$${HOME}rd");
    assert_eq!(env["PLAIN"], "plain");
}

#[test]
fn services_that_mount_secrets_are_left_out_and_no_secret_is_named() {
    let files = export(Path::new("/srv/ops"));
    let left: Vec<(&str, &str)> = files
        .iter()
        .flat_map(|f| &f.left_out)
        .map(|o| (o.layer.as_str(), o.service.as_str()))
        .collect();
    assert_eq!(left, [("infra", "agent"), ("apps", "api"), ("apps", "db")]);
    let reasons: Vec<&str> = files
        .iter()
        .flat_map(|f| &f.left_out)
        .map(|o| o.reason.as_str())
        .collect();
    assert!(
        reasons[0].starts_with(
            "mounts `vault-token-api` (made from Vault), `vault-unseal` (made from Vault): "
        ),
        "{}",
        reasons[0]
    );
    assert!(
        reasons[1].starts_with("mounts `vault-token-api` (made from Vault): "),
        "{}",
        reasons[1]
    );
    assert!(
        reasons[2].starts_with("mounts `db-password` (from the environment's secrets source): "),
        "{}",
        reasons[2]
    );
    assert!(reasons[2].ends_with(
        "`sprocketctl up` makes it as `shop_<name>-<version>`, a name a compose file cannot know"
    ));

    for f in &files {
        let v = yaml(f);
        // Only generated secrets are named, as the operator's external `-compose` ones.
        for (name, x) in v["secrets"].as_object().into_iter().flatten() {
            assert_eq!(x["name"], format!("shop_{name}-compose"), "{}", f.text);
        }
        let services = v["services"].as_object().unwrap();
        for o in &f.left_out {
            assert!(!services.contains_key(&o.service), "{}", f.text);
            // The header says which service is left out and why.
            assert!(
                f.text
                    .lines()
                    .take_while(|l| l.starts_with('#'))
                    .any(|l| l == format!("#   {}: {}", o.service, o.reason)),
                "{}",
                f.text
            );
        }
        // What a carried service mounts is a generated secret, declared at the top.
        for (name, s) in services {
            for m in s["secrets"].as_array().into_iter().flatten() {
                let source = m["source"].as_str().unwrap();
                assert!(v["secrets"].get(source).is_some(), "{name}: {s}");
            }
        }
        // Outside the header comments, no Vault-made secret is referenced at all.
        let body: Vec<&str> = f.text.lines().filter(|l| !l.starts_with('#')).collect();
        assert!(
            !body
                .iter()
                .any(|l| l.contains("vault-token") || l.contains("vault-unseal")),
            "{}",
            f.text
        );
    }
    let kept: Vec<String> = files
        .iter()
        .flat_map(|f| {
            yaml(f)["services"]
                .as_object()
                .unwrap()
                .keys()
                .cloned()
                .collect::<Vec<_>>()
        })
        .collect();
    assert_eq!(kept, ["vault", "web"]);
}

#[test]
fn a_generated_secret_is_external_and_created_first_never_valued() {
    let files = export(Path::new("/srv/ops"));
    let apps = &files[1];
    assert_eq!(apps.generated, ["shop_session-key-compose"]);
    let v = yaml(apps);
    assert_eq!(
        v["secrets"]["session-key"],
        serde_json::json!({ "external": true, "name": "shop_session-key-compose" })
    );
    assert_eq!(
        v["services"]["web"]["secrets"],
        serde_json::json!([{ "source": "session-key", "target": "/run/secrets/session-key",
                             "mode": 0o440, "uid": "1000", "gid": "1000" }])
    );
    assert!(apps
        .text
        .contains("#   openssl rand -hex 32 | docker secret create shop_session-key-compose -"));
}
