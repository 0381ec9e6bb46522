//! The desired state as `docker stack deploy` compose files, one per layer, for operators who
//! want to see or hand-deploy what sprocketctl would do, and for the benchmark baseline.
//!
//! Deploy every layer into one stack named after the namespace
//! (`docker stack deploy -c infrastructure.yaml -c data.yaml -c platform.yaml <namespace>`, or
//! one file at a time): service, network and volume names then match sprocketctl's exactly.
//! Secrets are declared `external` under their name prefix; their values never appear here.

use crate::state::{DesiredLayer, DesiredState, ServiceSpec};
use serde_json::{json, Map, Value};
use sprocket_spec::model::Mode;

/// `(layer name, compose YAML)` for every layer.
pub fn compose_files(d: &DesiredState) -> Vec<(String, String)> {
    d.layers
        .iter()
        .map(|l| {
            let v = layer(d, l);
            let text = serde_saphyr::to_string(&v).expect("compose serialises");
            (
                l.name.clone(),
                format!(
                    "# sprocketctl render --format compose: layer `{}` of namespace `{}`, environment `{}`.\n# Deploy with: docker stack deploy --resolve-image never -c <this file> {}\n{text}",
                    l.name, d.namespace, d.environment, d.namespace
                ),
            )
        })
        .collect()
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

fn layer(d: &DesiredState, l: &DesiredLayer) -> Value {
    let ns = d.namespace.as_str();
    let mut services = Map::new();
    let mut networks = Map::new();
    let mut volumes = Map::new();
    let mut configs = Map::new();
    let mut secrets = Map::new();
    for s in &l.services {
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
        for c in &s.configs {
            let spec = l.configs.iter().find(|x| x.name == c.name);
            configs.insert(
                short(&c.name, ns),
                json!({ "name": c.name, "file": spec.map(|x| x.source.clone()).unwrap_or_default() }),
            );
        }
        for sec in &s.secrets {
            secrets.insert(
                sec.name.clone(),
                json!({ "external": true, "name": format!("{ns}_{}", sec.name) }),
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
        m.insert("environment".into(), json!(s.env));
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
            .map(|c| json!({ "source": c.name, "target": c.target, "mode": c.mode }))
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
