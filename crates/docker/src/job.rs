//! One-off tasks: a Swarm service in `replicated-job` mode that runs once to completion, whose
//! result is read from its log and which is removed afterwards, whatever happened. `up` runs
//! the provisioning of datastore logins so, inside the swarm on the datastore's network.

use crate::{Engine, EngineError};
use bollard::models::{
    Limit, NetworkAttachmentConfig, ServiceSpecMode, ServiceSpecModeReplicatedJob, TaskSpec,
    TaskSpecContainerSpec, TaskSpecContainerSpecFile, TaskSpecContainerSpecSecrets,
    TaskSpecResources, TaskSpecRestartPolicy, TaskSpecRestartPolicyConditionEnum,
};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// What a one-off task runs with. Secrets are mounted by their ids (values never pass here).
#[derive(Debug, Clone)]
pub struct JobSpec {
    pub name: String,
    pub image: String,
    pub args: Vec<String>,
    /// `KEY=value` (never a secret's value: those are in `secrets`).
    pub env: Vec<String>,
    pub networks: Vec<String>,
    /// Extra `/etc/hosts` lines, `IP NAME` (`host-gateway host.docker.internal`).
    pub hosts: Vec<String>,
    /// (Docker secret name, id, file in the container).
    pub secrets: Vec<(String, String, String)>,
    pub labels: BTreeMap<String, String>,
    pub memory_bytes: Option<i64>,
    /// Named volumes it mounts: the caller pins the task to their node (`constraints`).
    pub mounts: Vec<JobMount>,
    /// Placement constraints (`node.id==…`).
    pub constraints: Vec<String>,
}

/// A named volume a one-off task mounts.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct JobMount {
    pub volume: String,
    /// Where the task sees it.
    pub target: String,
    pub read_only: bool,
    /// The labels a missing volume is made with (the ones a service's mount gives it); `None`:
    /// the caller saw it on the node, and a task's copy of an image folder is never put in it.
    pub labels: Option<BTreeMap<String, String>>,
}

/// How a one-off task ended.
#[derive(Debug, Clone)]
pub struct JobEnd {
    /// `complete`, `failed`, `rejected` … or `timed-out`.
    pub state: String,
    pub exit_code: Option<i64>,
    /// The engine's reason when the task did not run to its end (`task: non-zero exit (1)`,
    /// `No such image`).
    pub error: Option<String>,
    /// Its log (stdout and stderr), oldest first.
    pub logs: Vec<String>,
    pub seconds: f64,
}

impl JobEnd {
    pub fn succeeded(&self) -> bool {
        self.state == "complete" && self.exit_code.unwrap_or(0) == 0
    }

    /// Its container never ran: the engine failed to start it (dockerd 20.10, several tasks
    /// with secrets starting at once: `starting container failed: unable to remount dir as
    /// readonly: … device or resource busy`). Nothing of the job happened.
    pub fn never_started(&self) -> bool {
        self.state != "complete"
            && self
                .error
                .as_deref()
                .is_some_and(|e| e.contains("starting container failed"))
    }
}

/// How often a one-off task whose container never started is made again.
const START_ATTEMPTS: usize = 3;

impl Engine {
    /// Runs `job` once and removes it. An engine error while creating it is returned; once it
    /// exists, it is removed on every path (also on a timeout, or when `cancel` is set: what it
    /// works against failed meanwhile).
    pub async fn run_job(
        &self,
        job: &JobSpec,
        timeout: Duration,
        cancel: &AtomicBool,
    ) -> Result<JobEnd, EngineError> {
        let t0 = Instant::now();
        // A task the engine could not start ran nothing: made again, within the same time.
        let mut attempt = 1;
        loop {
            let left = timeout.saturating_sub(t0.elapsed());
            let mut end = self.run_job_once(job, left, cancel).await?;
            end.seconds = t0.elapsed().as_secs_f64();
            if !end.never_started() || attempt == START_ATTEMPTS || left.is_zero() {
                return Ok(end);
            }
            attempt += 1;
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    async fn run_job_once(
        &self,
        job: &JobSpec,
        timeout: Duration,
        cancel: &AtomicBool,
    ) -> Result<JobEnd, EngineError> {
        let t0 = Instant::now();
        let spec = service_spec(
            job,
            TaskSpecRestartPolicyConditionEnum::NONE,
            ServiceSpecMode {
                replicated_job: Some(ServiceSpecModeReplicatedJob {
                    max_concurrent: Some(1),
                    total_completions: Some(1),
                }),
                ..Default::default()
            },
        );
        self.calls.create.fetch_add(1, Ordering::Relaxed);
        let id = self
            .docker
            .create_service(spec, None)
            .await
            .map_err(EngineError::api("create one-off service", &job.name))?
            .id
            .unwrap_or_default();
        let end = self.follow_job(&id, timeout, cancel).await;
        // The ended task's container stays behind on dockerd 20.10 when its job service is
        // removed (seen: exited `…_provision-…` containers piling up): remove it ourselves. A
        // container on another node is not reachable through this engine; it goes with that
        // node's task cleanup.
        let container = self
            .tasks(&id)
            .await
            .ok()
            .and_then(|ts| ts.into_iter().rev().find_map(|t| t.container_id));
        let removed = self.remove_service(&id, &job.name).await;
        if let Some(c) = container {
            self.calls.remove.fetch_add(1, Ordering::Relaxed);
            let _ = self
                .docker
                .remove_container(
                    &c,
                    Some(bollard::query_parameters::RemoveContainerOptions {
                        force: true,
                        ..Default::default()
                    }),
                )
                .await;
        }
        let mut end = end?;
        removed?;
        end.seconds = t0.elapsed().as_secs_f64();
        Ok(end)
    }

    async fn follow_job(
        &self,
        id: &str,
        timeout: Duration,
        cancel: &AtomicBool,
    ) -> Result<JobEnd, EngineError> {
        let deadline = Instant::now() + timeout;
        loop {
            let tasks = self.tasks(id).await?;
            let done = tasks.iter().rev().find(|t| {
                matches!(
                    t.state.as_str(),
                    "complete" | "failed" | "rejected" | "orphaned" | "shutdown"
                )
            });
            if let Some(t) = done {
                let logs = self.task_logs(&t.id, 200).await;
                return Ok(JobEnd {
                    state: t.state.clone(),
                    exit_code: t.exit_code,
                    error: t.error.clone(),
                    logs,
                    seconds: 0.0,
                });
            }
            let cancelled = cancel.load(Ordering::Relaxed);
            if cancelled || Instant::now() >= deadline {
                let logs = match tasks.last() {
                    Some(t) => self.task_logs(&t.id, 200).await,
                    None => Vec::new(),
                };
                return Ok(JobEnd {
                    state: if cancelled { "cancelled" } else { "timed-out" }.into(),
                    exit_code: None,
                    error: tasks
                        .last()
                        .and_then(|t| t.error.clone().or(t.message.clone())),
                    logs,
                    seconds: 0.0,
                });
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// What [`Engine::ensure_daemon`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ensured {
    Created,
    Updated,
    Unchanged,
}

impl Engine {
    /// Keeps `job` running as a long-lived service of one task, started again (after a pause)
    /// when it stops — a scheduled runner, made with the one-off tasks' machinery. `current`:
    /// the live one's id and its `label`'s value; it is replaced only when that differs from
    /// `job`'s (no call at all when it is the same).
    pub async fn ensure_daemon(
        &self,
        job: &JobSpec,
        label: &str,
        current: Option<(&str, Option<&str>)>,
    ) -> Result<Ensured, EngineError> {
        let spec = service_spec(
            job,
            TaskSpecRestartPolicyConditionEnum::ANY,
            ServiceSpecMode {
                replicated: Some(bollard::models::ServiceSpecModeReplicated { replicas: Some(1) }),
                ..Default::default()
            },
        );
        let Some((id, live)) = current else {
            self.calls.create.fetch_add(1, Ordering::Relaxed);
            self.docker
                .create_service(spec, None)
                .await
                .map_err(EngineError::api("create service", &job.name))?;
            return Ok(Ensured::Created);
        };
        if live.is_some() && live == job.labels.get(label).map(String::as_str) {
            return Ok(Ensured::Unchanged);
        }
        self.replace_spec(id, &job.name, spec).await?;
        Ok(Ensured::Updated)
    }
}

/// The service of a task `job` describes: its container, secrets by id, networks, the engine's
/// own log driver, a memory limit; `restart` and `mode` as its kind needs.
fn service_spec(
    job: &JobSpec,
    restart: TaskSpecRestartPolicyConditionEnum,
    mode: ServiceSpecMode,
) -> bollard::models::ServiceSpec {
    let container = TaskSpecContainerSpec {
        image: Some(job.image.clone()),
        args: Some(job.args.clone()),
        env: Some(job.env.clone()),
        hosts: (!job.hosts.is_empty()).then(|| job.hosts.clone()),
        mounts: (!job.mounts.is_empty()).then(|| {
            job.mounts
                .iter()
                .map(|m| bollard::models::Mount {
                    target: Some(m.target.clone()),
                    source: Some(m.volume.clone()),
                    typ: Some(bollard::models::MountType::VOLUME),
                    read_only: Some(m.read_only),
                    volume_options: Some(bollard::models::MountVolumeOptions {
                        no_copy: Some(true),
                        labels: m.labels.as_ref().map(|l| l.clone().into_iter().collect()),
                        ..Default::default()
                    }),
                    ..Default::default()
                })
                .collect()
        }),
        labels: Some(job.labels.clone().into_iter().collect()),
        secrets: Some(
            job.secrets
                .iter()
                .map(|(name, id, file)| TaskSpecContainerSpecSecrets {
                    file: Some(TaskSpecContainerSpecFile {
                        name: Some(file.clone()),
                        uid: Some("0".into()),
                        gid: Some("0".into()),
                        mode: Some(0o400),
                    }),
                    secret_id: Some(id.clone()),
                    secret_name: Some(name.clone()),
                })
                .collect(),
        ),
        ..Default::default()
    };
    bollard::models::ServiceSpec {
        name: Some(job.name.clone()),
        labels: Some(job.labels.clone().into_iter().collect()),
        task_template: Some(TaskSpec {
            container_spec: Some(container),
            placement: (!job.constraints.is_empty()).then(|| bollard::models::TaskSpecPlacement {
                constraints: Some(job.constraints.clone()),
                ..Default::default()
            }),
            restart_policy: Some(TaskSpecRestartPolicy {
                condition: Some(restart),
                // A long-lived one that stops is started again after a pause, not in a loop.
                delay: (restart != TaskSpecRestartPolicyConditionEnum::NONE)
                    .then_some(30_000_000_000),
                ..Default::default()
            }),
            resources: Some(TaskSpecResources {
                limits: Some(Limit {
                    memory_bytes: job.memory_bytes,
                    ..Default::default()
                }),
                ..Default::default()
            }),
            // Its result is read back from its log: the engine's own log driver, whatever
            // the node's default is.
            log_driver: Some(bollard::models::TaskSpecLogDriver {
                name: Some("json-file".into()),
                options: None,
            }),
            networks: Some(
                job.networks
                    .iter()
                    .map(|n| NetworkAttachmentConfig {
                        target: Some(n.clone()),
                        ..Default::default()
                    })
                    .collect(),
            ),
            ..Default::default()
        }),
        mode: Some(mode),
        // Nothing is published; a name that resolves to its task's address (the runner's
        // status port) works also where the node has no IPVS for virtual IPs.
        endpoint_spec: Some(bollard::models::EndpointSpec {
            mode: Some(bollard::models::EndpointSpecModeEnum::DNSRR),
            ..Default::default()
        }),
        ..Default::default()
    }
}
