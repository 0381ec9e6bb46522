//! Our normalised [`ServiceSpec`] ⇄ the engine's service spec.
//!
//! `to_engine` sets every field we own explicitly (so the engine has nothing to default
//! differently later); `from_engine` reads back exactly those fields, mapping engine-side
//! representations (network ids, versioned secret names, absent-vs-zero) to ours. The round trip
//! of anything `to_engine` produced is the identity: that is what makes `plan` free of false
//! diffs, and it is tested against a real engine.

use bollard::models::{
    EndpointPortConfig, EndpointSpec, HealthConfig, Limit, Mount, MountType, MountVolumeOptions,
    NetworkAttachmentConfig, ResourceObject, Service, ServiceSpecMode, ServiceSpecModeReplicated,
    ServiceSpecUpdateConfig, TaskSpec, TaskSpecContainerSpec, TaskSpecContainerSpecConfigs,
    TaskSpecContainerSpecFile, TaskSpecContainerSpecFile1, TaskSpecContainerSpecSecrets,
    TaskSpecLogDriver, TaskSpecPlacement, TaskSpecResources, TaskSpecRestartPolicy,
};
use sprocket_desired::labels as L;
use sprocket_desired::state::{
    FileRef, HealthSpec, MountSpec, NetworkAttachment, PublishedPort, RestartSpec, ServiceSpec,
    UpdateSpec,
};
use sprocket_spec::model::{Logging, Mode, Resources};
use std::collections::{BTreeMap, HashMap};

use crate::Refs;

fn nz(v: Option<i64>) -> Option<i64> {
    v.filter(|x| *x != 0)
}

/// Our counts and nanoseconds are `u64`; the engine's are `i64`. Validation bounds every value
/// that comes from the spec (replicas, retries, durations) well inside `i64`, and our own
/// constants are small, so this never saturates; if it did, the largest value is still the
/// nearest one the engine can hold, never a negative that wrapped around.
fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

pub fn to_engine(s: &ServiceSpec, refs: &Refs, deploy_id: &str) -> bollard::models::ServiceSpec {
    let container_labels: HashMap<String, String> = [
        (L::DEPLOY_ID.to_string(), deploy_id.to_string()),
        (
            L::NAMESPACE.to_string(),
            s.labels.get(L::NAMESPACE).cloned().unwrap_or_default(),
        ),
        (L::MANAGED_BY.to_string(), L::MANAGED_BY_VALUE.to_string()),
    ]
    .into();
    let volume_labels: HashMap<String, String> =
        [L::MANAGED_BY, L::NAMESPACE, L::ENVIRONMENT, L::LAYER]
            .iter()
            .filter_map(|k| Some((k.to_string(), s.labels.get(*k)?.clone())))
            .collect();
    let mounts = s
        .mounts
        .iter()
        .map(|m| Mount {
            target: Some(m.target.clone()),
            source: Some(m.source.clone()),
            typ: Some(if m.kind == "bind" {
                MountType::BIND
            } else {
                MountType::VOLUME
            }),
            read_only: Some(m.read_only),
            volume_options: (m.kind == "volume").then(|| MountVolumeOptions {
                labels: Some(volume_labels.clone()),
                ..Default::default()
            }),
            ..Default::default()
        })
        .collect();
    let configs = s
        .configs
        .iter()
        .map(|c| TaskSpecContainerSpecConfigs {
            file: Some(TaskSpecContainerSpecFile1 {
                name: Some(c.target.clone()),
                uid: Some(c.uid.to_string()),
                gid: Some(c.gid.to_string()),
                mode: Some(c.mode),
            }),
            config_id: refs.configs.get(&c.name).cloned(),
            config_name: Some(c.name.clone()),
            ..Default::default()
        })
        .collect();
    let secrets = s
        .secrets
        .iter()
        .map(|c| {
            let (name, id) = refs.secrets.get(&c.name).cloned().unwrap_or_default();
            TaskSpecContainerSpecSecrets {
                file: Some(TaskSpecContainerSpecFile {
                    name: Some(c.target.clone()),
                    uid: Some(c.uid.to_string()),
                    gid: Some(c.gid.to_string()),
                    mode: Some(c.mode),
                }),
                secret_id: Some(id),
                secret_name: Some(name),
            }
        })
        .collect();
    let health = s.health.as_ref().map(|h| HealthConfig {
        test: Some(h.test.clone()),
        interval: Some(to_i64(h.interval_ns)),
        timeout: Some(to_i64(h.timeout_ns)),
        retries: Some(to_i64(h.retries)),
        start_period: Some(to_i64(h.start_period_ns)),
        start_interval: None,
    });
    let container = TaskSpecContainerSpec {
        image: Some(s.image.clone()),
        labels: Some(container_labels),
        command: s.command.clone(),
        args: s.args.clone(),
        hostname: s.hostname.clone(),
        hosts: (!s.hosts.is_empty()).then(|| s.hosts.clone()),
        env: Some(
            s.env_at(|secret| {
                refs.secrets
                    .get(secret)
                    .and_then(|(name, _)| sprocket_desired::state::secret_name_version(name))
            })
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect(),
        ),
        dir: s.workdir.clone(),
        user: s.user.clone(),
        mounts: Some(mounts),
        stop_grace_period: s.stop_grace_period_ns.map(to_i64),
        health_check: health,
        secrets: Some(secrets),
        configs: Some(configs),
        ..Default::default()
    };
    let resources = TaskSpecResources {
        limits: Some(Limit {
            nano_cpus: s.resources.nano_cpus,
            memory_bytes: s.resources.memory_bytes,
            pids: None,
        }),
        reservations: Some(ResourceObject {
            nano_cpus: s.resources.reserve_nano_cpus,
            memory_bytes: s.resources.reserve_memory_bytes,
            generic_resources: None,
        }),
        ..Default::default()
    };
    let task = TaskSpec {
        container_spec: Some(container),
        resources: Some(resources),
        restart_policy: Some(TaskSpecRestartPolicy {
            condition: s.restart.condition.parse().ok(),
            delay: Some(to_i64(s.restart.delay_ns)),
            max_attempts: Some(to_i64(s.restart.max_attempts)),
            window: Some(to_i64(s.restart.window_ns)),
        }),
        placement: Some(TaskSpecPlacement {
            constraints: Some(s.placement.clone()),
            ..Default::default()
        }),
        networks: Some(
            s.networks
                .iter()
                .map(|n| NetworkAttachmentConfig {
                    target: Some(n.network.clone()),
                    aliases: Some(n.aliases.clone()),
                    driver_opts: None,
                })
                .collect(),
        ),
        log_driver: Some(TaskSpecLogDriver {
            name: Some(s.logging.driver.clone()),
            options: Some(s.logging.options.clone().into_iter().collect()),
        }),
        ..Default::default()
    };
    let mode = match s.mode {
        Mode::Replicated(n) => ServiceSpecMode {
            replicated: Some(ServiceSpecModeReplicated {
                replicas: Some(to_i64(n)),
            }),
            ..Default::default()
        },
        Mode::Global => ServiceSpecMode {
            global: Some(HashMap::new()),
            ..Default::default()
        },
    };
    bollard::models::ServiceSpec {
        name: Some(s.name.clone()),
        labels: Some(s.labels.clone().into_iter().collect()),
        task_template: Some(task),
        mode: Some(mode),
        update_config: Some(ServiceSpecUpdateConfig {
            parallelism: Some(to_i64(s.update.parallelism)),
            delay: Some(0),
            failure_action: s.update.failure_action.parse().ok(),
            monitor: Some(to_i64(s.update.monitor_ns)),
            max_failure_ratio: Some(0.0),
            order: s.update.order.parse().ok(),
        }),
        rollback_config: None,
        networks: None,
        endpoint_spec: Some(EndpointSpec {
            mode: s.endpoint_mode.parse().ok(),
            ports: Some(
                s.ports
                    .iter()
                    .map(|p| EndpointPortConfig {
                        name: None,
                        protocol: p.protocol.parse().ok(),
                        target_port: Some(i64::from(p.target)),
                        published_port: Some(i64::from(p.published)),
                        publish_mode: p.mode.parse().ok(),
                    })
                    .collect(),
            ),
        }),
    }
}

/// Reads a live service back into our form. `networks` maps network ids to names (the engine
/// stores attachments by id); `secrets` maps secret ids to their logical names.
pub fn from_engine(
    svc: &Service,
    networks: &HashMap<String, String>,
    secrets: &HashMap<String, String>,
) -> ServiceSpec {
    let spec = svc.spec.clone().unwrap_or_default();
    let task = spec.task_template.clone().unwrap_or_default();
    let c = task.container_spec.clone().unwrap_or_default();
    let labels: BTreeMap<String, String> = spec
        .labels
        .clone()
        .unwrap_or_default()
        .into_iter()
        .collect();
    let env = c
        .env
        .clone()
        .unwrap_or_default()
        .into_iter()
        .map(|kv| match kv.split_once('=') {
            Some((k, v)) => (k.to_string(), v.to_string()),
            None => (kv, String::new()),
        })
        .collect();
    let mut mounts: Vec<MountSpec> = c
        .mounts
        .clone()
        .unwrap_or_default()
        .into_iter()
        .map(|m| MountSpec {
            kind: m
                .typ
                .map(|t| t.to_string())
                .unwrap_or_else(|| "volume".into()),
            source: m.source.unwrap_or_default(),
            target: m.target.unwrap_or_default(),
            read_only: m.read_only.unwrap_or(false),
        })
        .collect();
    mounts.sort();
    let mut configs: Vec<FileRef> = c
        .configs
        .clone()
        .unwrap_or_default()
        .into_iter()
        .map(|x| {
            let f = x.file.unwrap_or_default();
            FileRef {
                name: x.config_name.unwrap_or_default(),
                target: f.name.unwrap_or_default(),
                mode: f.mode.unwrap_or(0o444),
                uid: id_of(f.uid.as_deref()),
                gid: id_of(f.gid.as_deref()),
            }
        })
        .collect();
    configs.sort();
    let mut secret_refs: Vec<FileRef> = c
        .secrets
        .clone()
        .unwrap_or_default()
        .into_iter()
        .map(|x| {
            let f = x.file.unwrap_or_default();
            let logical = x
                .secret_id
                .as_ref()
                .and_then(|id| secrets.get(id).cloned())
                .unwrap_or_else(|| x.secret_name.unwrap_or_default());
            FileRef {
                name: logical,
                target: f.name.unwrap_or_default(),
                mode: f.mode.unwrap_or(0o444),
                uid: id_of(f.uid.as_deref()),
                gid: id_of(f.gid.as_deref()),
            }
        })
        .collect();
    secret_refs.sort();
    let attachments = task
        .networks
        .clone()
        .or(spec.networks.clone())
        .unwrap_or_default();
    let mut nets: Vec<NetworkAttachment> = attachments
        .into_iter()
        .map(|n| {
            let t = n.target.unwrap_or_default();
            NetworkAttachment {
                network: networks.get(&t).cloned().unwrap_or(t),
                aliases: n.aliases.unwrap_or_default(),
            }
        })
        .collect();
    nets.sort();
    let endpoint = spec.endpoint_spec.clone().unwrap_or_default();
    let mut ports: Vec<PublishedPort> = endpoint
        .ports
        .unwrap_or_default()
        .into_iter()
        .map(|p| PublishedPort {
            target: p.target_port.unwrap_or(0) as u16,
            published: p.published_port.unwrap_or(0) as u16,
            protocol: p
                .protocol
                .map(|x| x.to_string())
                .unwrap_or_else(|| "tcp".into()),
            mode: p
                .publish_mode
                .map(|x| x.to_string())
                .unwrap_or_else(|| "ingress".into()),
        })
        .collect();
    ports.sort();
    let mode = match spec.mode.clone().unwrap_or_default() {
        ServiceSpecMode {
            global: Some(_), ..
        } => Mode::Global,
        m => Mode::Replicated(m.replicated.and_then(|r| r.replicas).unwrap_or(1) as u64),
    };
    let health = c.health_check.clone().and_then(|h| {
        let test = h.test.unwrap_or_default();
        if test.is_empty() || test == ["NONE"] {
            return None;
        }
        Some(HealthSpec {
            test,
            interval_ns: h.interval.unwrap_or(0) as u64,
            timeout_ns: h.timeout.unwrap_or(0) as u64,
            retries: h.retries.unwrap_or(0) as u64,
            start_period_ns: h.start_period.unwrap_or(0) as u64,
        })
    });
    let res = task.resources.clone().unwrap_or_default();
    let limits = res.limits.unwrap_or_default();
    let reserve = res.reservations.unwrap_or_default();
    let restart = task.restart_policy.clone().unwrap_or_default();
    let update = spec.update_config.clone().unwrap_or_default();
    let log = task.log_driver.clone().unwrap_or_default();
    ServiceSpec {
        name: spec.name.clone().unwrap_or_default(),
        short_name: labels.get(L::NAME).cloned().unwrap_or_default(),
        layer: labels.get(L::LAYER).cloned().unwrap_or_default(),
        labels,
        image: c.image.clone().unwrap_or_default(),
        command: c.command.clone().filter(|v| !v.is_empty()),
        args: c.args.clone().filter(|v| !v.is_empty()),
        env,
        hostname: c.hostname.clone().filter(|h| !h.is_empty()),
        hosts: c.hosts.clone().unwrap_or_default(),
        user: c.user.clone().filter(|h| !h.is_empty()),
        workdir: c.dir.clone().filter(|h| !h.is_empty()),
        mounts,
        configs,
        secrets: secret_refs,
        networks: nets,
        endpoint_mode: endpoint
            .mode
            .map(|m| m.to_string())
            .filter(|m| !m.is_empty())
            .unwrap_or_else(|| "vip".into()),
        ports,
        mode,
        health,
        resources: Resources {
            nano_cpus: nz(limits.nano_cpus),
            memory_bytes: nz(limits.memory_bytes),
            reserve_nano_cpus: nz(reserve.nano_cpus),
            reserve_memory_bytes: nz(reserve.memory_bytes),
        },
        placement: task
            .placement
            .clone()
            .and_then(|p| p.constraints)
            .unwrap_or_default(),
        logging: Logging {
            driver: log.name.unwrap_or_default(),
            options: log.options.unwrap_or_default().into_iter().collect(),
        },
        restart: RestartSpec {
            condition: restart.condition.map(|x| x.to_string()).unwrap_or_default(),
            delay_ns: restart.delay.unwrap_or(0) as u64,
            max_attempts: restart.max_attempts.unwrap_or(0) as u64,
            window_ns: restart.window.unwrap_or(0) as u64,
        },
        update: UpdateSpec {
            parallelism: update.parallelism.unwrap_or(0) as u64,
            order: update.order.map(|x| x.to_string()).unwrap_or_default(),
            failure_action: update
                .failure_action
                .map(|x| x.to_string())
                .unwrap_or_default(),
            monitor_ns: update.monitor.unwrap_or(0) as u64,
        },
        stop_grace_period_ns: c.stop_grace_period.map(|n| n as u64),
        env_logins: Vec::new(),
    }
}

/// A file reference's uid/gid as Docker stores it (a decimal string; none is root).
fn id_of(s: Option<&str>) -> u32 {
    s.and_then(|x| x.parse().ok()).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    //! The round trip `plan`'s "no false diffs" rests on, in process: every service of the
    //! example platform → the engine's spec → JSON as the engine writes it (`Healthcheck`) →
    //! the raw read's key fix → back into our form, equal to what we started from.

    use super::*;
    use crate::raw::fix_healthcheck_keys;
    use std::path::Path;

    #[test]
    fn counts_and_durations_never_wrap_to_negative() {
        assert_eq!(to_i64(3), 3);
        assert_eq!(to_i64(i64::MAX as u64), i64::MAX);
        assert_eq!(to_i64(u64::MAX), i64::MAX);
    }

    fn roundtrip(env: &str) {
        let path =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/sprocket/sprocket.yaml");
        let loaded = sprocket_spec::load_file(&path, Some(env)).expect("the example loads");
        let desired = sprocket_desired::state::desired(&loaded.platform);
        let mut refs = Refs::default();
        let mut secret_names = HashMap::new();
        let mut network_names = HashMap::new();
        for (i, l) in desired.layers.iter().enumerate() {
            for c in &l.configs {
                refs.configs
                    .insert(c.name.clone(), format!("cfg{i}-{}", c.name.len()));
            }
            for n in &l.networks {
                // The engine stores attachments by id.
                network_names.insert(format!("id-{}", n.name), n.name.clone());
            }
        }
        for (j, s) in desired.services().flat_map(|s| &s.secrets).enumerate() {
            let id = format!("sec{j}");
            refs.secrets
                .insert(s.name.clone(), (format!("ns_{}-abc", s.name), id.clone()));
            secret_names.insert(id, s.name.clone());
        }
        assert!(desired.services().count() > 3);
        for s in desired.services() {
            let mut spec = to_engine(s, &refs, "deploy1");
            if let Some(nets) = spec
                .task_template
                .as_mut()
                .and_then(|t| t.networks.as_mut())
            {
                for n in nets {
                    n.target = n.target.as_ref().map(|t| format!("id-{t}"));
                }
            }
            let svc = Service {
                id: Some("svc".into()),
                spec: Some(spec),
                ..Default::default()
            };
            let mut json = serde_json::to_value(&svc).unwrap();
            let text = json
                .to_string()
                .replace("\"HealthCheck\"", "\"Healthcheck\"");
            json = serde_json::from_str(&text).unwrap();
            fix_healthcheck_keys(&mut json);
            let back: Service = serde_json::from_value(json).unwrap();
            let read = from_engine(&back, &network_names, &secret_names);
            // A login reference reads back as the user it named (these secrets have no
            // version: the login's own), and `plan` takes that for the reference.
            let mut want = s.clone();
            want.env = s.env_at(|_| None);
            want.env_logins = Vec::new();
            assert_eq!(read, want, "{} reads back as it was set", s.name);
            assert!(sprocket_desired::plan::diff_service(s, &read).is_empty());
        }
    }

    #[test]
    fn every_service_reads_back_as_it_was_set() {
        roundtrip("offline");
        roundtrip("prod");
    }
}
