//! The desired state as `docker stack deploy` compose files, one per layer, for operators who
//! want to see or hand-deploy what sprocketctl would do, and for the benchmark baseline.
//!
//! Deploy every layer into one stack named after the namespace
//! (`docker stack deploy -c 1-infrastructure.yaml -c 2-data.yaml -c 3-platform.yaml <namespace>`,
//! or one file at a time, from any folder): service, network, volume and config names then match
//! sprocketctl's exactly, and configs carry the same ownership labels as networks.
//!
//! What a compose file cannot carry is left out, and each file says so in its header: secrets
//! whose value comes from elsewhere. `sprocketctl up` makes those — from Vault (the unseal
//! material, service tokens), from Doppler, or from an operator's value — under a versioned name
//! (`<ns>_<name>-<fingerprint>`) that only exists once `up` has run, so a service that mounts one
//! is left out with its reason (see [`LeftOut`]). A *generated* secret needs no source: the file
//! names it as an external secret `<ns>_<name>-compose`, which the operator creates first with a
//! random value (the header and [`ComposeFile::generated`] give the command; no value is ever
//! written here).
//!
//! Two more things make the files deployable as written: config `file:` paths are absolute
//! (`docker stack deploy` resolves relative ones against the compose file's folder, not the
//! current directory), and every `$` in a value is written `$$` (compose interpolates `$VAR`).
//! Configs sprocketctl derives (Vault's private listener, the Docker API proxy's rules) have no
//! file in the spec's folder: they are returned beside the text ([`ComposeFile::derived`]) to be
//! written next to the compose file, which names them relative to its folder.

use crate::state::{DesiredLayer, DesiredState, SecretRef, ServiceSpec};
use serde::Serialize;
use serde_json::{json, Map, Value};
use sprocket_spec::model::{Mode, SecretSource};
use std::path::Path;

/// One layer as a compose file.
#[derive(Debug, Clone)]
pub struct ComposeFile {
    pub layer: String,
    pub text: String,
    /// The layer's services that the file does not carry, and why.
    pub left_out: Vec<LeftOut>,
    /// Generated secrets the file names as external (`<ns>_<name>-compose`): create each, with
    /// a random value, before deploying.
    pub generated: Vec<String>,
    /// Configs sprocketctl derives (Vault's private listener, the Docker API proxy's rules):
    /// (file name, content), to be written beside the compose file, which names them relative
    /// to its own folder.
    pub derived: Vec<(String, Vec<u8>)>,
}

/// A service the compose export leaves out.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct LeftOut {
    /// The service's short name (as in the spec).
    pub service: String,
    pub layer: String,
    pub reason: String,
}

/// Every layer as a compose file. `base` is the folder that relative config paths are relative
/// to: the current directory of the command that read the spec.
pub fn compose_files(d: &DesiredState, base: &Path) -> Vec<ComposeFile> {
    d.layers
        .iter()
        .map(|l| {
            let left_out = left_out(d, l);
            let generated = generated(d, l, &left_out);
            let mut v = layer(d, l, base, &left_out);
            escape_interpolation(&mut v);
            let text = serde_saphyr::to_string(&v).expect("compose serialises");
            let mut header = format!(
                "# sprocketctl render --format compose: layer `{}` of namespace `{}`, environment `{}`.\n# Deploy with: docker stack deploy --resolve-image never -c <this file> {}\n",
                l.name, d.namespace, d.environment, d.namespace
            );
            if !generated.is_empty() {
                header.push_str("# Create these generated secrets first, each with a random value (never written here):\n");
                for name in &generated {
                    header.push_str(&format!("#   {}\n", create_command(name)));
                }
            }
            if !left_out.is_empty() {
                header.push_str("# Left out: services that mount Docker secrets from elsewhere, which only `sprocketctl up`\n# makes (under versioned names); deploy the platform with `sprocketctl up` to run them.\n");
                for o in &left_out {
                    header.push_str(&format!("#   {}: {}\n", o.service, one_line(&o.reason)));
                }
            }
            let kept = |c: &str| {
                l.services.iter().any(|s| {
                    !left_out.iter().any(|o| o.service == s.short_name)
                        && s.configs.iter().any(|r| r.name == c)
                })
            };
            let derived = l
                .configs
                .iter()
                .filter(|c| c.source.is_none() && kept(&c.name))
                .map(|c| (c.name.clone(), c.content.clone()))
                .collect();
            ComposeFile {
                layer: l.name.clone(),
                text: format!("{header}{text}"),
                left_out,
                generated,
                derived,
            }
        })
        .collect()
}

/// The Docker name a compose file gives a generated secret (created by the operator, not `up`).
fn compose_secret_name(ns: &str, name: &str) -> String {
    format!("{ns}_{name}-compose")
}

/// A shell command that creates the generated secret `docker_name` with 64 random hex digits
/// (256 bits), the value never shown.
pub fn create_command(docker_name: &str) -> String {
    format!("openssl rand -hex 32 | docker secret create {docker_name} -")
}

/// The Docker names of the generated secrets the layer's carried services mount.
fn generated(d: &DesiredState, l: &DesiredLayer, left_out: &[LeftOut]) -> Vec<String> {
    let mut names: Vec<String> = l
        .services
        .iter()
        .filter(|s| !left_out.iter().any(|o| o.service == s.short_name))
        .flat_map(|s| &s.secrets)
        .map(|m| compose_secret_name(&d.namespace, &m.name))
        .collect();
    names.sort();
    names.dedup();
    names
}

/// The layer's services that mount a secret, with the secrets and where their values come from.
fn left_out(d: &DesiredState, l: &DesiredLayer) -> Vec<LeftOut> {
    let refs: Vec<&SecretRef> = d.layers.iter().flat_map(|l| &l.secrets).collect();
    let sourced = |name: &str| {
        refs.iter().find(|r| r.name == name).map(|r| r.source) != Some(SecretSource::Generate)
    };
    l.services
        .iter()
        .filter(|s| s.secrets.iter().any(|m| sourced(&m.name)))
        .map(|s| {
            let mounts: Vec<String> = s
                .secrets
                .iter()
                .filter(|m| sourced(&m.name))
                .map(|m| {
                    let source = refs.iter().find(|r| r.name == m.name).map(|r| r.source);
                    format!("`{}` ({})", m.name, origin(&m.name, source))
                })
                .collect();
            let (it, names) = if mounts.len() == 1 {
                ("it", "a name")
            } else {
                ("them", "names")
            };
            LeftOut {
                service: s.short_name.clone(),
                layer: l.name.clone(),
                reason: format!(
                    "mounts {}: `sprocketctl up` makes {it} as `{}_<name>-<version>`, {names} a compose file cannot know",
                    mounts.join(", "),
                    d.namespace
                ),
            }
        })
        .collect()
}

fn origin(name: &str, source: Option<SecretSource>) -> &'static str {
    if sprocket_spec::names::is_reserved_secret(name) {
        return "made from Vault";
    }
    match source {
        Some(SecretSource::Doppler) => "from the environment's secrets source",
        Some(SecretSource::Generate) => "generated",
        Some(SecretSource::Vault | SecretSource::VaultToken | SecretSource::FingerprintKey) => {
            "made from Vault"
        }
        Some(SecretSource::Manual) | None => "set by an operator",
    }
}

/// Newlines cannot end a YAML comment early: spec text in a reason stays on its line.
fn one_line(s: &str) -> String {
    s.replace(['\n', '\r'], " ")
}

/// Compose interpolates `$VAR` and `${VAR}` in every value; `$$` is a literal `$`.
fn escape_interpolation(v: &mut Value) {
    match v {
        Value::String(s) if s.contains('$') => *s = s.replace('$', "$$"),
        Value::Array(a) => a.iter_mut().for_each(escape_interpolation),
        Value::Object(m) => m.values_mut().for_each(escape_interpolation),
        _ => {}
    }
}

fn short(full: &str, ns: &str) -> String {
    full.strip_prefix(&format!("{ns}_"))
        .unwrap_or(full)
        .to_string()
}

fn dur(ns: u64) -> String {
    if ns.is_multiple_of(1_000_000_000) {
        format!("{}s", ns / 1_000_000_000)
    } else {
        format!("{}ms", ns / 1_000_000)
    }
}

fn layer(d: &DesiredState, l: &DesiredLayer, base: &Path, left_out: &[LeftOut]) -> Value {
    let ns = d.namespace.as_str();
    let mut services = Map::new();
    let mut networks = Map::new();
    let mut volumes = Map::new();
    let mut configs = Map::new();
    let mut secrets = Map::new();
    let carried = l
        .services
        .iter()
        .filter(|s| !left_out.iter().any(|o| o.service == s.short_name));
    for s in carried {
        services.insert(s.short_name.clone(), service(ns, s));
        for n in &s.networks {
            networks.insert(
                short(&n.network, ns),
                json!({ "name": n.network, "driver": "overlay", "labels": network_labels(d, &n.network) }),
            );
        }
        for m in s.mounts.iter().filter(|m| m.kind == "volume") {
            volumes.insert(short(&m.source, ns), json!({ "name": m.source }));
        }
        for m in &s.secrets {
            secrets.insert(
                m.name.clone(),
                json!({ "external": true, "name": compose_secret_name(ns, &m.name) }),
            );
        }
        for c in &s.configs {
            let Some(spec) = l.configs.iter().find(|x| x.name == c.name) else {
                continue;
            };
            let file = match &spec.source {
                Some(path) => base.join(path).display().to_string(),
                None => format!("./{}", c.name),
            };
            configs.insert(
                short(&c.name, ns),
                json!({
                    "name": c.name,
                    "file": file,
                    "labels": spec.labels,
                }),
            );
        }
    }
    let mut top = Map::new();
    top.insert("version".into(), json!("3.9"));
    top.insert("services".into(), Value::Object(services));
    for (k, v) in [
        ("networks", networks),
        ("volumes", volumes),
        ("configs", configs),
        ("secrets", secrets),
    ] {
        if !v.is_empty() {
            top.insert(k.into(), Value::Object(v));
        }
    }
    Value::Object(top)
}

fn network_labels(d: &DesiredState, name: &str) -> Value {
    d.layers
        .iter()
        .flat_map(|l| &l.networks)
        .find(|n| n.name == name)
        .map(|n| json!(n.labels))
        .unwrap_or_else(|| json!({}))
}

fn service(ns: &str, s: &ServiceSpec) -> Value {
    let mut m = Map::new();
    m.insert("image".into(), json!(s.image));
    if let Some(c) = &s.command {
        m.insert("entrypoint".into(), json!(c));
    }
    if let Some(a) = &s.args {
        m.insert("command".into(), json!(a));
    }
    if !s.env.is_empty() {
        // Its secrets have no version here: a login reference names the login's own user.
        m.insert("environment".into(), json!(s.env_at(|_| None)));
    }
    for (k, v) in [
        ("hostname", &s.hostname),
        ("user", &s.user),
        ("working_dir", &s.workdir),
    ] {
        if let Some(v) = v {
            m.insert(k.into(), json!(v));
        }
    }
    if !s.hosts.is_empty() {
        // The Engine API's `IP NAME`; compose writes `NAME:IP`.
        let hosts: Vec<String> = s
            .hosts
            .iter()
            .filter_map(|h| h.split_once(' ').map(|(ip, name)| format!("{name}:{ip}")))
            .collect();
        m.insert("extra_hosts".into(), json!(hosts));
    }
    if !s.mounts.is_empty() {
        let mounts: Vec<Value> = s
            .mounts
            .iter()
            .map(|x| {
                let source = if x.kind == "volume" { short(&x.source, ns) } else { x.source.clone() };
                json!({ "type": x.kind, "source": source, "target": x.target, "read_only": x.read_only })
            })
            .collect();
        m.insert("volumes".into(), json!(mounts));
    }
    if !s.configs.is_empty() {
        let c: Vec<Value> = s
            .configs
            .iter()
            .map(|c| json!({ "source": short(&c.name, ns), "target": c.target, "mode": c.mode }))
            .collect();
        m.insert("configs".into(), json!(c));
    }
    if !s.secrets.is_empty() {
        let c: Vec<Value> = s
            .secrets
            .iter()
            .map(|m| {
                json!({ "source": m.name, "target": m.target, "mode": m.mode,
                        "uid": m.uid.to_string(), "gid": m.gid.to_string() })
            })
            .collect();
        m.insert("secrets".into(), json!(c));
    }
    if !s.networks.is_empty() {
        let mut n = Map::new();
        for a in &s.networks {
            n.insert(short(&a.network, ns), json!({ "aliases": a.aliases }));
        }
        m.insert("networks".into(), Value::Object(n));
    }
    if !s.ports.is_empty() {
        let p: Vec<Value> = s
            .ports
            .iter()
            .map(|p| json!({ "target": p.target, "published": p.published, "protocol": p.protocol, "mode": p.mode }))
            .collect();
        m.insert("ports".into(), json!(p));
    }
    if let Some(h) = &s.health {
        m.insert(
            "healthcheck".into(),
            json!({ "test": h.test, "interval": dur(h.interval_ns), "timeout": dur(h.timeout_ns), "retries": h.retries, "start_period": dur(h.start_period_ns) }),
        );
    }
    m.insert(
        "logging".into(),
        json!({ "driver": s.logging.driver, "options": s.logging.options }),
    );
    if let Some(g) = s.stop_grace_period_ns {
        m.insert("stop_grace_period".into(), json!(dur(g)));
    }
    let mut deploy = Map::new();
    match s.mode {
        Mode::Replicated(n) => {
            deploy.insert("mode".into(), json!("replicated"));
            deploy.insert("replicas".into(), json!(n));
        }
        Mode::Global => {
            deploy.insert("mode".into(), json!("global"));
        }
    }
    deploy.insert("endpoint_mode".into(), json!(s.endpoint_mode));
    deploy.insert("labels".into(), json!(s.labels));
    let mut limits = Map::new();
    let mut reservations = Map::new();
    if let Some(c) = s.resources.nano_cpus {
        limits.insert("cpus".into(), json!(format!("{}", c as f64 / 1e9)));
    }
    if let Some(b) = s.resources.memory_bytes {
        limits.insert("memory".into(), json!(b.to_string()));
    }
    if let Some(c) = s.resources.reserve_nano_cpus {
        reservations.insert("cpus".into(), json!(format!("{}", c as f64 / 1e9)));
    }
    if let Some(b) = s.resources.reserve_memory_bytes {
        reservations.insert("memory".into(), json!(b.to_string()));
    }
    if !limits.is_empty() || !reservations.is_empty() {
        deploy.insert(
            "resources".into(),
            json!({ "limits": limits, "reservations": reservations }),
        );
    }
    if !s.placement.is_empty() {
        deploy.insert("placement".into(), json!({ "constraints": s.placement }));
    }
    deploy.insert(
        "restart_policy".into(),
        json!({ "condition": s.restart.condition, "delay": dur(s.restart.delay_ns) }),
    );
    deploy.insert(
        "update_config".into(),
        json!({ "parallelism": s.update.parallelism, "order": s.update.order, "failure_action": s.update.failure_action, "monitor": dur(s.update.monitor_ns) }),
    );
    m.insert("deploy".into(), Value::Object(deploy));
    Value::Object(m)
}
