//! The valid base spec the rule tests mutate, and the assertions they share: each rule's test
//! asserts its code, its message and the exact file:line:column it points at.
#![allow(dead_code)] // each test file uses some of these

use sprocket_spec::{parse, validate_all, Diagnostic, Files, SourceFile};
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub const BASE: &str = r#"platform: demo
default_environment: local
external:
  postgres: { kind: postgres, host: db.example.org, port: 5432 }
secrets:
  token: { source: generate }
middlewares:
  admin: { service: auth, forward_auth: { address: "https://auth.{hostname}/check" } }
layers:
  infra:
    services:
      traefik: { role: edge, image: "traefik:v3.7" }
      proxy: { role: docker-api-proxy, image: "tecnativa/docker-socket-proxy:0.3.0" }
      auth: { image: "example/auth:1", routes: [{ subdomain: auth, port: 3000 }] }
  data:
    services:
      redis: { image: "redis:7.0-alpine", ports: [{ target: 6379, published: 6379 }] }
  apps:
    services:
      web:
        image: "example/web:1"
        uses: [redis, postgres]
        secrets: [token]
        configs: [{ file: web.json, target: /app/config.json }]
        routes:
          - { port: 3000, ip_access: true }
          - { subdomain: admin, port: 3000, middlewares: [admin] }
environments:
  local:
    hostname: localhost
    server_ip: 192.168.1.10
    tls: { mode: self-signed }
  offline:
    extends: local
    endpoint_mode: dnsrr
    publish_mode: host
    disable: { auth: "no image here" }
"#;

/// The validated platform of `text` in environment `env` (panics on any diagnostic).
pub fn platform(text: &str, env: &str) -> sprocket_spec::model::Platform {
    let parsed = sprocket_spec::parse(source(text)).unwrap();
    sprocket_spec::resolve(&parsed, Some(env), &Files::new(&files))
        .unwrap_or_else(|e| panic!("{e:?}"))
        .platform
}

/// Serves every `*.json` file (`{}`), nothing else.
/// [`platform`] in the base's `local` environment.
pub fn local_platform(text: &str) -> sprocket_spec::model::Platform {
    platform(text, "local")
}

pub fn files(p: &Path) -> std::io::Result<Vec<u8>> {
    if p.extension().is_some_and(|n| n == "json") {
        Ok(b"{}".to_vec())
    } else {
        Err(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            "No such file or directory",
        ))
    }
}

pub fn source(text: &str) -> SourceFile {
    SourceFile {
        path: PathBuf::from("spec.yaml"),
        text: Arc::from(text),
    }
}

/// Every diagnostic of every environment.
pub fn diagnostics(text: &str) -> Vec<Diagnostic> {
    diagnostics_with(text, &Files::new(&files))
}

/// Every diagnostic of every environment, the files served by `with`.
pub fn diagnostics_with(text: &str, with: &Files) -> Vec<Diagnostic> {
    match parse(source(text)) {
        Err(r) => r.diagnostics,
        Ok(p) => validate_all(&p, with).diagnostics,
    }
}

pub fn replace(from: &str, to: &str) -> String {
    assert!(BASE.contains(from), "fixture lacks {from:?}");
    BASE.replacen(from, to, 1)
}

/// 1-based line and column of the `nth` occurrence of `needle` in `text`.
pub fn at(text: &str, needle: &str, nth: usize) -> (u32, u32) {
    let off = text
        .match_indices(needle)
        .nth(nth)
        .unwrap_or_else(|| panic!("no {needle:?}"))
        .0;
    let before = &text[..off];
    let line = before.matches('\n').count() as u32 + 1;
    let col = (off - before.rfind('\n').map(|i| i + 1).unwrap_or(0)) as u32 + 1;
    (line, col)
}

/// Asserts exactly one diagnostic with `code`, containing `msg`, at `pos`.
pub fn expect(text: &str, code: &str, msg: &str, pos: (u32, u32)) -> Diagnostic {
    expect_in(diagnostics(text), code, msg, pos)
}

/// [`expect`] on the diagnostics of a validation done otherwise.
pub fn expect_in(all: Vec<Diagnostic>, code: &str, msg: &str, pos: (u32, u32)) -> Diagnostic {
    let found: Vec<&Diagnostic> = all.iter().filter(|d| d.code == code).collect();
    assert_eq!(found.len(), 1, "want one `{code}`, got: {all:#?}");
    let d = found[0].clone();
    assert!(
        d.message.contains(msg),
        "message {:?} lacks {msg:?}",
        d.message
    );
    assert_eq!((d.pos.line, d.pos.column), pos, "{d}");
    assert!(d.help.is_some(), "every error says what to do: {d}");
    d
}
pub const VAULT: &str = "vault:\n  shares: 5\n  threshold: 3\n  recipients: [\"age1qyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqs3290gq\"]\n";

pub fn with_vault(section: &str) -> String {
    replace(
        "      redis: { image",
        "      vault: { role: vault, image: \"openbao/openbao:2.7.2\", command: [bao, server] }\n      redis: { image",
    )
    .replacen("layers:\n", &format!("{section}layers:\n"), 1)
}

/// A Vault section with mounts, a team policy and GitHub teams; `web` reads `platform/web/*`.
pub fn with_vault_config(edit: &dyn Fn(String) -> String) -> String {
    let section = format!(
        "{VAULT}  mounts: {{ platform: kv-v2, misc: kv }}\n  policies:\n    devs: [{{ path: \"platform/data/*\", capabilities: [read, list] }}]\n  github: {{ organization: acme, teams: {{ devs: [devs] }} }}\n  token_period: 1h\n"
    );
    let text = with_vault(&section).replacen(
        "        uses: [redis, postgres]\n",
        "        uses: [redis, postgres]\n        vault: [platform/web/*]\n",
        1,
    );
    edit(text)
}

/// A position moved along its line (the column of a value after its key, of a quote before it).
pub trait MapCol {
    fn map_col(self, add: i32) -> Self;
}
impl MapCol for (u32, u32) {
    fn map_col(self, add: i32) -> Self {
        (self.0, self.1.checked_add_signed(add).expect("on the line"))
    }
}
