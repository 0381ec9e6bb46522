//! The Docker Engine API adapter. Everything sprocketctl does to a swarm goes through
//! [`Engine`]: it reads what we own (by ownership labels) into the same normalised
//! [`ServiceSpec`] the desired state uses, applies single steps, and follows tasks.
//!
//! Every mutating call is counted ([`Calls`]), so "a no-op `up` makes zero update calls" is a
//! number we print and test, not a promise.

mod archive;
mod convert;
mod job;
mod raw;
pub mod tasks;

use bollard::models::{ConfigSpec as BConfigSpec, NetworkCreateRequest, SecretSpec, TaskState};
use bollard::query_parameters as q;
use bollard::Docker;
use futures_util::StreamExt;
use serde::Serialize;
use sprocket_desired::labels as L;
use sprocket_desired::plan::{ForeignObject, Kind, Observed, ObservedObject, ObservedService};
use sprocket_desired::state::{ConfigSpec, NetworkSpec, ServiceSpec};
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

pub use convert::{from_engine, to_engine};
pub use job::{Ensured, JobEnd, JobMount, JobSpec};
pub use raw::filters_query;
pub use tasks::{assess, Assessment, TaskInfo, Tracking};

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("no Docker engine answers at {endpoint}: {source}\n  hint: start dockerd (or run scripts/local-up, which starts one), or point DOCKER_HOST at an engine")]
    Unreachable {
        endpoint: String,
        #[source]
        source: bollard::errors::Error,
    },
    #[error("the engine at {endpoint} is not a swarm manager\n  hint: run `docker swarm init --advertise-addr 127.0.0.1` (single node) or point DOCKER_HOST at a manager")]
    NotAManager { endpoint: String },
    #[error("list {object}: {source}")]
    Raw {
        object: String,
        #[source]
        source: raw::RawError,
    },
    #[error("{action} {object}: {source}")]
    Io {
        action: &'static str,
        object: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{action} {object}: {source}")]
    Api {
        action: &'static str,
        object: String,
        #[source]
        source: bollard::errors::Error,
    },
}

impl EngineError {
    /// The engine's answer, when it gave one: HTTP status and message.
    fn response(&self) -> Option<(u16, &str)> {
        match self {
            EngineError::Api {
                source:
                    bollard::errors::Error::DockerResponseServerError {
                        status_code,
                        message,
                    },
                ..
            } => Some((*status_code, message.as_str())),
            _ => None,
        }
    }

    /// The object does not exist: 404, or — removing a network that went away between our
    /// read and our call — a 500 whose text is the only signal ("network … not found").
    pub fn is_not_found(&self) -> bool {
        match self.response() {
            Some((404, _)) => true,
            Some((500, m)) => m.ends_with(" not found"),
            _ => false,
        }
    }

    /// An object of that name exists already (409).
    pub fn is_conflict(&self) -> bool {
        matches!(self.response(), Some((409, _)))
    }

    /// The object is still used (a network with attached tasks, a volume of a container that is
    /// stopping): it can go once they are gone. The swarm answers a gRPC `FailedPrecondition`
    /// as 400; the local engine answers 409 or 403 ("active endpoints").
    pub fn is_in_use(&self) -> bool {
        match self.response() {
            Some((409 | 403, _)) => true,
            Some((400, m)) => m.contains("code = FailedPrecondition"),
            _ => false,
        }
    }

    /// Someone updated the service between our read and our write (the swarm answers a gRPC
    /// `Unknown` with this text as 500: the text is its only signal).
    pub fn is_out_of_sequence(&self) -> bool {
        matches!(self.response(), Some((_, m)) if m.contains("update out of sequence"))
    }

    fn api(
        action: &'static str,
        object: impl Into<String>,
    ) -> impl FnOnce(bollard::errors::Error) -> EngineError {
        let object = object.into();
        move |source| EngineError::Api {
            action,
            object,
            source,
        }
    }
}

/// Mutating calls made through this engine handle.
#[derive(Debug, Default)]
pub struct Calls {
    pub create: AtomicUsize,
    pub update: AtomicUsize,
    pub remove: AtomicUsize,
}

#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq, Eq)]
pub struct CallCounts {
    pub create: usize,
    pub update: usize,
    pub remove: usize,
}

impl Calls {
    pub fn snapshot(&self) -> CallCounts {
        CallCounts {
            create: self.create.load(Ordering::Relaxed),
            update: self.update.load(Ordering::Relaxed),
            remove: self.remove.load(Ordering::Relaxed),
        }
    }
}

#[derive(Clone)]
pub struct Engine {
    docker: Docker,
    pub endpoint: String,
    /// The engine's root folder on its machine (`/var/lib/docker`): local volumes live under it.
    pub root_dir: std::path::PathBuf,
    /// This engine's node in the swarm: its local volumes are the ones it lists.
    pub node_id: String,
    pub calls: Arc<Calls>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ServiceStatus {
    pub update_state: Option<String>,
    pub update_message: Option<String>,
}

fn owned_filter(ns: &str) -> HashMap<String, Vec<String>> {
    HashMap::from([(
        "label".to_string(),
        vec![
            format!("{}={}", L::MANAGED_BY, L::MANAGED_BY_VALUE),
            format!("{}={ns}", L::NAMESPACE),
        ],
    )])
}

fn labels_of(h: Option<&HashMap<String, String>>) -> BTreeMap<String, String> {
    h.map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
        .unwrap_or_default()
}

impl Engine {
    /// Connects to `DOCKER_HOST` (or the default socket), negotiates the API version (the
    /// Debian engine speaks 1.41) and checks that it is a swarm manager.
    pub async fn connect() -> Result<Engine, EngineError> {
        let endpoint =
            std::env::var("DOCKER_HOST").unwrap_or_else(|_| "unix:///var/run/docker.sock".into());
        let unreachable = |source| EngineError::Unreachable {
            endpoint: endpoint.clone(),
            source,
        };
        let docker = Docker::connect_with_defaults().map_err(unreachable)?;
        let docker = tokio::time::timeout(Duration::from_secs(10), docker.negotiate_version())
            .await
            .map_err(|_| EngineError::Unreachable {
                endpoint: endpoint.clone(),
                source: bollard::errors::Error::RequestTimeoutError,
            })?
            .map_err(unreachable)?;
        let info = docker
            .info()
            .await
            .map_err(|source| EngineError::Unreachable {
                endpoint: endpoint.clone(),
                source,
            })?;
        let node_id = info
            .swarm
            .as_ref()
            .and_then(|s| s.node_id.clone())
            .unwrap_or_default();
        let manager = info
            .swarm
            .and_then(|s| s.control_available)
            .unwrap_or(false);
        if !manager {
            return Err(EngineError::NotAManager { endpoint });
        }
        let root_dir = info
            .docker_root_dir
            .unwrap_or_else(|| "/var/lib/docker".into())
            .into();
        Ok(Engine {
            docker,
            endpoint,
            root_dir,
            node_id,
            calls: Arc::new(Calls::default()),
        })
    }

    /// Everything of namespace `ns` that carries our ownership labels; and, as `foreign`, the
    /// networks, configs and services under the namespace's name prefix that do not (the plan
    /// refuses to create over them). Each kind is listed once and split by its labels.
    pub async fn observe(&self, ns: &str) -> Result<Observed, EngineError> {
        let prefix = format!("{ns}_");
        let by_name = HashMap::from([("name".to_string(), vec![prefix.clone()])]);
        let ours = |labels: Option<&HashMap<String, String>>| {
            labels.is_some_and(|l| {
                l.get(L::MANAGED_BY).map(String::as_str) == Some(L::MANAGED_BY_VALUE)
                    && l.get(L::NAMESPACE).map(String::as_str) == Some(ns)
            })
        };
        let mut out = Observed::default();
        // Ours, or foreign when the name is one of the namespace's; anything else is not looked at.
        let mut sort = |kind: Kind,
                        id: Option<String>,
                        name: Option<String>,
                        labels: Option<&HashMap<String, String>>|
         -> Option<ObservedObject> {
            let object = ObservedObject {
                id: id.unwrap_or_default(),
                name: name.unwrap_or_default(),
                labels: labels_of(labels),
                created_at: None,
            };
            if ours(labels) {
                return Some(object);
            }
            if object.name.starts_with(&prefix) {
                out.foreign.push(ForeignObject {
                    kind,
                    id: object.id,
                    name: object.name,
                    labels: object.labels,
                });
            }
            None
        };

        // Every network: attachments are stored by id, read back by name.
        let all_networks = self
            .docker
            .list_networks(None::<q::ListNetworksOptions>)
            .await
            .map_err(EngineError::api("list", "networks"))?;
        let net_names: HashMap<String, String> = all_networks
            .iter()
            .filter_map(|n| Some((n.id.clone()?, n.name.clone()?)))
            .collect();
        let networks: Vec<ObservedObject> = all_networks
            .into_iter()
            .filter_map(|n| sort(Kind::Network, n.id, n.name, n.labels.as_ref()))
            .collect();
        let configs: Vec<ObservedObject> = self
            .docker
            .list_configs(Some(q::ListConfigsOptions {
                filters: Some(by_name.clone()),
            }))
            .await
            .map_err(EngineError::api("list", "configs"))?
            .into_iter()
            .filter_map(|c| {
                let spec = c.spec.unwrap_or_default();
                sort(Kind::Config, c.id, spec.name, spec.labels.as_ref())
            })
            .collect();
        let mut services = Vec::new();
        for s in self.list_services(&by_name).await? {
            let spec = s.spec.as_ref();
            let labels = spec.and_then(|x| x.labels.as_ref());
            if sort(
                Kind::Service,
                s.id.clone(),
                spec.and_then(|x| x.name.clone()),
                labels,
            )
            .is_some()
            {
                services.push(s);
            }
        }
        // Secrets: only ours. Ours are named with a fingerprint, so a foreign one never takes
        // a name we are about to create.
        let secrets = self
            .docker
            .list_secrets(Some(q::ListSecretsOptions {
                filters: Some(owned_filter(ns)),
            }))
            .await
            .map_err(EngineError::api("list", "secrets"))?;
        let secret_names: HashMap<String, String> = secrets
            .iter()
            .filter_map(|s| {
                let spec = s.spec.as_ref()?;
                let logical = spec.labels.as_ref()?.get(L::NAME)?.clone();
                Some((s.id.clone()?, logical))
            })
            .collect();
        out.networks = networks;
        out.configs = configs;
        for s in secrets {
            let spec = s.spec.unwrap_or_default();
            out.secrets.push(ObservedObject {
                id: s.id.unwrap_or_default(),
                name: spec.name.unwrap_or_default(),
                labels: labels_of(spec.labels.as_ref()),
                created_at: s.created_at.map(|d| d.to_string()),
            });
        }
        for s in services {
            let spec = from_engine(&s, &net_names, &secret_names);
            let secret_ids = s
                .spec
                .as_ref()
                .and_then(|x| x.task_template.as_ref())
                .and_then(|t| t.container_spec.as_ref())
                .and_then(|c| c.secrets.as_ref())
                .into_iter()
                .flatten()
                .filter_map(|r| {
                    let id = r.secret_id.clone()?;
                    Some((secret_names.get(&id)?.clone(), id))
                })
                .collect();
            out.services.push(ObservedService {
                secret_ids,
                id: s.id.clone().unwrap_or_default(),
                version: s.version.as_ref().and_then(|v| v.index).unwrap_or(0),
                layer: spec.labels.get(L::LAYER).cloned(),
                spec,
                updated_at: s.updated_at.as_ref().map(|d| d.to_string()),
                update_state: s
                    .update_status
                    .as_ref()
                    .and_then(|u| u.state.map(|x| x.to_string())),
            });
        }
        out.services.sort_by(|a, b| a.spec.name.cmp(&b.spec.name));
        Ok(out)
    }

    /// `GET /services` read raw (see `raw`): bollard would drop every health check.
    async fn list_services(
        &self,
        filters: &HashMap<String, Vec<String>>,
    ) -> Result<Vec<bollard::models::Service>, EngineError> {
        let v = self.docker.client_version();
        let query = raw::filters_query(filters);
        let path = format!(
            "/v{}.{}/services?filters={query}",
            v.major_version, v.minor_version
        );
        let mut json =
            raw::get_json(&self.endpoint, &path)
                .await
                .map_err(|e| EngineError::Raw {
                    object: "services".into(),
                    source: e,
                })?;
        raw::fix_healthcheck_keys(&mut json);
        serde_json::from_value(json).map_err(|e| EngineError::Raw {
            object: "services".into(),
            source: raw::RawError::Json(e),
        })
    }

    pub async fn create_network(&self, n: &NetworkSpec) -> Result<String, EngineError> {
        self.calls.create.fetch_add(1, Ordering::Relaxed);
        let r = self
            .docker
            .create_network(NetworkCreateRequest {
                name: n.name.clone(),
                driver: Some("overlay".into()),
                attachable: Some(false),
                labels: Some(n.labels.clone().into_iter().collect()),
                ..Default::default()
            })
            .await
            .map_err(EngineError::api("create network", &n.name))?;
        Ok(r.id)
    }

    pub async fn create_config(&self, c: &ConfigSpec) -> Result<String, EngineError> {
        self.calls.create.fetch_add(1, Ordering::Relaxed);
        let r = self
            .docker
            .create_config(BConfigSpec {
                name: Some(c.name.clone()),
                labels: Some(c.labels.clone().into_iter().collect()),
                data: Some(base64(&c.content)),
                ..Default::default()
            })
            .await
            .map_err(EngineError::api("create config", &c.name))?;
        Ok(r.id)
    }

    /// Creates a secret. The value goes only into the request body; it is never logged.
    pub async fn create_secret(
        &self,
        name: &str,
        labels: &BTreeMap<String, String>,
        value: &[u8],
    ) -> Result<String, EngineError> {
        self.calls.create.fetch_add(1, Ordering::Relaxed);
        let r = self
            .docker
            .create_secret(SecretSpec {
                name: Some(name.to_string()),
                labels: Some(labels.clone().into_iter().collect()),
                data: Some(base64(value)),
                ..Default::default()
            })
            .await
            .map_err(EngineError::api("create secret", name))?;
        Ok(r.id)
    }

    /// Creates a service; its tasks carry `deploy_id`.
    pub async fn create_service(
        &self,
        s: &ServiceSpec,
        refs: &Refs,
        deploy_id: &str,
    ) -> Result<String, EngineError> {
        self.calls.create.fetch_add(1, Ordering::Relaxed);
        let spec = to_engine(s, refs, deploy_id);
        let r = self
            .docker
            .create_service(spec, None)
            .await
            .map_err(EngineError::api("create service", &s.name))?;
        Ok(r.id.unwrap_or_default())
    }

    /// Replaces a service's spec (the API replaces the whole spec) at its current version,
    /// retrying when someone else updated it in between.
    pub async fn update_service(
        &self,
        id: &str,
        s: &ServiceSpec,
        refs: &Refs,
        deploy_id: &str,
    ) -> Result<(), EngineError> {
        self.replace_spec(id, &s.name, to_engine(s, refs, deploy_id))
            .await
    }

    /// Replaces service `id`'s whole spec with `spec` at its current version, retrying when
    /// someone else updated it in between (the engine answers "out of sequence").
    pub(crate) async fn replace_spec(
        &self,
        id: &str,
        name: &str,
        spec: bollard::models::ServiceSpec,
    ) -> Result<(), EngineError> {
        for attempt in 0..5 {
            let current = self
                .docker
                .inspect_service(id, None::<q::InspectServiceOptions>)
                .await
                .map_err(EngineError::api("inspect service", name))?;
            let version = current.version.and_then(|v| v.index).unwrap_or(0);
            self.calls.update.fetch_add(1, Ordering::Relaxed);
            let r = self
                .docker
                .update_service(
                    id,
                    spec.clone(),
                    q::UpdateServiceOptions {
                        version: version as i32,
                        registry_auth_from: "spec".into(),
                        rollback: None,
                    },
                    None,
                )
                .await;
            match r.map_err(EngineError::api("update service", name)) {
                Ok(_) => return Ok(()),
                Err(e) if e.is_out_of_sequence() && attempt < 4 => continue,
                Err(e) => return Err(e),
            }
        }
        unreachable!("the loop returns")
    }

    /// Starts service `name` again on a new task with the same spec (`docker service update
    /// --force`): its files changed under it (a restored volume).
    pub async fn restart_service(&self, name: &str) -> Result<(), EngineError> {
        // Read raw, as every service is (bollard's inspect drops the health check, which the
        // update would then remove).
        let f = HashMap::from([("name".to_string(), vec![name.to_string()])]);
        let found = self
            .list_services(&f)
            .await?
            .into_iter()
            .find(|s| s.spec.as_ref().and_then(|x| x.name.as_deref()) == Some(name));
        let Some(current) = found else {
            // Gone: the engine's own words for it.
            self.docker
                .inspect_service(name, None::<q::InspectServiceOptions>)
                .await
                .map_err(EngineError::api("inspect service", name))?;
            return Ok(());
        };
        let id = current.id.clone().unwrap_or_else(|| name.to_string());
        let mut spec = current.spec.unwrap_or_default();
        if let Some(t) = spec.task_template.as_mut() {
            t.force_update = Some(t.force_update.unwrap_or(0) + 1);
        }
        self.replace_spec(&id, name, spec).await
    }

    pub async fn remove_service(&self, id: &str, name: &str) -> Result<(), EngineError> {
        self.calls.remove.fetch_add(1, Ordering::Relaxed);
        self.docker
            .delete_service(id)
            .await
            .map_err(EngineError::api("remove service", name))
    }

    pub async fn remove_network(&self, id: &str, name: &str) -> Result<(), EngineError> {
        self.calls.remove.fetch_add(1, Ordering::Relaxed);
        self.docker
            .remove_network(id)
            .await
            .map_err(EngineError::api("remove network", name))
    }

    pub async fn remove_config(&self, id: &str, name: &str) -> Result<(), EngineError> {
        self.calls.remove.fetch_add(1, Ordering::Relaxed);
        self.docker
            .delete_config(id)
            .await
            .map_err(EngineError::api("remove config", name))
    }

    pub async fn remove_secret(&self, id: &str, name: &str) -> Result<(), EngineError> {
        self.calls.remove.fetch_add(1, Ordering::Relaxed);
        self.docker
            .delete_secret(id)
            .await
            .map_err(EngineError::api("remove secret", name))
    }

    /// Named volumes of the namespace (created by tasks, labelled through their mounts), with
    /// the layer each belongs to.
    pub async fn volumes(&self, ns: &str) -> Result<Vec<Volume>, EngineError> {
        let r = self
            .docker
            .list_volumes(Some(q::ListVolumesOptions {
                filters: Some(owned_filter(ns)),
            }))
            .await
            .map_err(EngineError::api("list", "volumes"))?;
        Ok(r.volumes
            .unwrap_or_default()
            .into_iter()
            .map(|v| Volume {
                layer: v.labels.get(L::LAYER).cloned(),
                name: v.name,
                created_at: v.created_at,
            })
            .collect())
    }

    pub async fn remove_volume(&self, name: &str) -> Result<(), EngineError> {
        self.calls.remove.fetch_add(1, Ordering::Relaxed);
        self.docker
            .remove_volume(name, None::<q::RemoveVolumeOptions>)
            .await
            .map_err(EngineError::api("remove volume", name))
    }

    /// Containers of the namespace still present on this node (tasks shut down asynchronously
    /// after a service is removed).
    pub async fn containers(&self, ns: &str) -> Result<usize, EngineError> {
        let f = HashMap::from([("label".to_string(), vec![format!("{}={ns}", L::NAMESPACE)])]);
        let r = self
            .docker
            .list_containers(Some(q::ListContainersOptions {
                all: true,
                filters: Some(f),
                ..Default::default()
            }))
            .await
            .map_err(EngineError::api("list", "containers"))?;
        Ok(r.len())
    }

    /// Names of the networks this engine lists under `prefix`. A removed overlay network stays
    /// listed (its local copy) until the last container on this node leaves it; creating a
    /// service on it meanwhile fails with "not found".
    pub async fn network_names(&self, prefix: &str) -> Result<Vec<String>, EngineError> {
        let f = HashMap::from([("name".to_string(), vec![prefix.to_string()])]);
        Ok(self
            .docker
            .list_networks(Some(q::ListNetworksOptions { filters: Some(f) }))
            .await
            .map_err(EngineError::api("list", "networks"))?
            .into_iter()
            .filter_map(|n| n.name)
            .collect())
    }

    pub async fn tasks(&self, service_id: &str) -> Result<Vec<TaskInfo>, EngineError> {
        Ok(self
            .tasks_of(&[service_id.to_string()])
            .await?
            .remove(service_id)
            .unwrap_or_default())
    }

    /// The tasks of several services in one call (the gate reads them ten times a second: one
    /// call instead of one per service keeps the engine's CPU for the services that boot).
    pub async fn tasks_of(
        &self,
        service_ids: &[String],
    ) -> Result<HashMap<String, Vec<TaskInfo>>, EngineError> {
        let mut out: HashMap<String, Vec<TaskInfo>> = HashMap::new();
        if service_ids.is_empty() {
            return Ok(out);
        }
        let f = HashMap::from([("service".to_string(), service_ids.to_vec())]);
        let tasks = match self
            .docker
            .list_tasks(Some(q::ListTasksOptions { filters: Some(f) }))
            .await
            .map_err(EngineError::api("list tasks of", service_ids.join(",")))
        {
            Ok(t) => t,
            // One of them is gone (removed by someone else meanwhile): the engine refuses the
            // whole filter. Ask one by one; a gone service has no tasks.
            Err(e) if e.is_not_found() && service_ids.len() > 1 => {
                let mut all = Vec::new();
                for id in service_ids {
                    let f = HashMap::from([("service".to_string(), vec![id.clone()])]);
                    match self
                        .docker
                        .list_tasks(Some(q::ListTasksOptions { filters: Some(f) }))
                        .await
                        .map_err(EngineError::api("list tasks of", id))
                    {
                        Ok(t) => all.extend(t),
                        Err(e) if e.is_not_found() => {}
                        Err(e) => return Err(e),
                    }
                }
                all
            }
            Err(e) => return Err(e),
        };
        for t in tasks {
            let service = t.service_id.clone().unwrap_or_default();
            out.entry(service).or_default().push({
                let status = t.status.unwrap_or_default();
                TaskInfo {
                    id: t.id.unwrap_or_default(),
                    slot: t.slot,
                    node: t.node_id,
                    state: status.state.map(|s| s.to_string()).unwrap_or_default(),
                    desired_state: t
                        .desired_state
                        .map(|s: TaskState| s.to_string())
                        .unwrap_or_default(),
                    created_at: t
                        .created_at
                        .as_ref()
                        .map(|d| d.to_string())
                        .unwrap_or_default(),
                    message: status.message,
                    error: status.err,
                    exit_code: status.container_status.as_ref().and_then(|c| c.exit_code),
                    deploy_id: t
                        .spec
                        .as_ref()
                        .and_then(|s| s.container_spec.as_ref())
                        .and_then(|c| c.labels.as_ref())
                        .and_then(|l| l.get(L::DEPLOY_ID).cloned()),
                    secret_ids: t
                        .spec
                        .and_then(|s| s.container_spec)
                        .and_then(|c| c.secrets)
                        .unwrap_or_default()
                        .into_iter()
                        .filter_map(|r| r.secret_id)
                        .collect(),
                    container_id: status.container_status.and_then(|c| c.container_id),
                }
            });
        }
        // Oldest first, as the engine's own listing is not ordered: "newest" means something.
        for ts in out.values_mut() {
            ts.sort_by_key(|t| tasks::time_key(&t.created_at));
        }
        Ok(out)
    }

    pub async fn service_status(&self, id: &str) -> Result<ServiceStatus, EngineError> {
        let s = self
            .docker
            .inspect_service(id, None::<q::InspectServiceOptions>)
            .await
            .map_err(EngineError::api("inspect service", id))?;
        Ok(ServiceStatus {
            update_state: s
                .update_status
                .as_ref()
                .and_then(|u| u.state.map(|x| x.to_string())),
            update_message: s.update_status.and_then(|u| u.message),
        })
    }

    /// The last `tail` log lines of a task (stdout and stderr).
    pub async fn task_logs(&self, task_id: &str, tail: usize) -> Vec<String> {
        let opts = q::LogsOptions {
            stdout: true,
            stderr: true,
            tail: tail.to_string(),
            ..Default::default()
        };
        let mut s = self.docker.task_logs(task_id, Some(opts));
        let mut lines = Vec::new();
        let read = async {
            while let Some(Ok(chunk)) = s.next().await {
                for l in chunk.to_string().lines() {
                    lines.push(l.to_string());
                }
            }
        };
        let _ = tokio::time::timeout(Duration::from_secs(5), read).await;
        let n = lines.len();
        lines.split_off(n.saturating_sub(tail))
    }

    /// Feeds `each` every log line a service's tasks wrote since `since` (seconds since the
    /// epoch), stdout and stderr, for at most `limit`: `Ok(false)` when the limit cut it short.
    pub async fn service_log_lines(
        &self,
        service_id: &str,
        since: i64,
        limit: Duration,
        mut each: impl FnMut(&str) + Send,
    ) -> Result<bool, EngineError> {
        let opts = q::LogsOptions {
            stdout: true,
            stderr: true,
            since: i32::try_from(since).unwrap_or(i32::MAX),
            tail: "all".into(),
            ..Default::default()
        };
        let mut s = self.docker.service_logs(service_id, Some(opts));
        let read = async {
            while let Some(chunk) = s.next().await {
                let chunk = chunk.map_err(EngineError::api("read the log of", service_id))?;
                for l in chunk.to_string().lines() {
                    each(l);
                }
            }
            Ok::<(), EngineError>(())
        };
        match tokio::time::timeout(limit, read).await {
            Ok(r) => r.map(|()| true),
            Err(_) => Ok(false),
        }
    }

    /// `GET /system/df` as this engine writes it (API 1.41: `Images`, `BuildCache`, …; bollard's
    /// model is of a newer shape and reads it as empty).
    pub async fn disk_usage(&self) -> Result<serde_json::Value, EngineError> {
        let v = self.docker.client_version();
        let path = format!("/v{}.{}/system/df", v.major_version, v.minor_version);
        raw::get_json(&self.endpoint, &path)
            .await
            .map_err(|e| EngineError::Raw {
                object: "disk usage".into(),
                source: e,
            })
    }

    /// The addresses the swarm's nodes are reached at (each node's own, and a manager's
    /// advertised one): where a public host name of this platform must point.
    pub async fn node_addresses(&self) -> Result<Vec<std::net::IpAddr>, EngineError> {
        let nodes = self
            .docker
            .list_nodes(None::<q::ListNodesOptions>)
            .await
            .map_err(EngineError::api("list", "nodes"))?;
        let mut out: Vec<std::net::IpAddr> = nodes
            .iter()
            .flat_map(|n| {
                let own = n.status.as_ref().and_then(|s| s.addr.clone());
                let advertised = n
                    .manager_status
                    .as_ref()
                    .and_then(|m| m.addr.as_deref())
                    .and_then(|a| a.rsplit_once(':').map(|(h, _)| h.to_string()));
                own.into_iter().chain(advertised)
            })
            .filter_map(|a| a.trim_matches(['[', ']']).parse().ok())
            .collect();
        out.sort();
        out.dedup();
        Ok(out)
    }

    /// Nodes that are ready and active (for global services' expected task count).
    pub async fn ready_nodes(&self) -> Result<usize, EngineError> {
        let nodes = self
            .docker
            .list_nodes(None::<q::ListNodesOptions>)
            .await
            .map_err(EngineError::api("list", "nodes"))?;
        Ok(nodes
            .iter()
            .filter(|n| {
                n.status
                    .as_ref()
                    .and_then(|s| s.state)
                    .map(|s| s.to_string())
                    == Some("ready".into())
                    && n.spec
                        .as_ref()
                        .and_then(|s| s.availability)
                        .map(|a| a.to_string())
                        == Some("active".into())
            })
            .count())
    }
}

/// A named volume we own.
#[derive(Debug, Clone)]
pub struct Volume {
    pub name: String,
    pub layer: Option<String>,
    /// When the engine made it (RFC 3339, as the engine writes it).
    pub created_at: Option<String>,
}

/// Engine ids of the configs and secrets a service mounts.
#[derive(Debug, Default, Clone)]
pub struct Refs {
    /// config name → id
    pub configs: HashMap<String, String>,
    /// logical secret name → (docker name, id)
    pub secrets: HashMap<String, (String, String)>,
}

fn base64(data: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(data)
}
