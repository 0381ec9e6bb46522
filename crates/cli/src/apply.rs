//! The executor: runs a plan through the Docker adapter, layer by layer, and gates each layer on
//! the health of *this deploy's* tasks before the next one starts.
//!
//! Honest by construction: every task we start carries the deploy id; a layer is done when, for
//! every changed service, as many tasks *of this deploy* run (and pass their health checks —
//! Swarm reports `running` only after the first healthy check) as the service wants. Replica
//! counts are not trusted (an old task keeps N/N). Unchanged services are gated on their current
//! tasks, so a re-run after a failure never walks past a broken service. A failed or rejected
//! task, a Swarm rollback, or the deadline ends the deploy; later layers are not touched.

use crate::output::Progress;
use serde::Serialize;
use sprocket_desired::labels as L;
use sprocket_desired::plan::{self, Action, Kind, Plan};
use sprocket_desired::state::{
    is_vault_material, short_hash, DesiredLayer, DesiredState, ServiceSpec, UNSEAL_SECRET,
};
use sprocket_docker::{CallCounts, Engine, EngineError, Refs, TaskInfo};
use sprocket_spec::model::{Mode, SecretSource};
use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

pub struct Options {
    /// Per-layer deadline.
    pub timeout: Duration,
    pub prune: bool,
    pub progress: Progress,
    /// Vault to initialise/unseal once the layer holding it is healthy.
    pub vault: Option<VaultStep>,
}

pub struct VaultStep {
    pub client: sprocket_vault::VaultClient,
    pub config: sprocket_spec::model::Vault,
    pub identity: Option<std::path::PathBuf>,
}

#[derive(Debug, Serialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    Deployed,
    Failed,
    TimedOut,
}

#[derive(Debug, Serialize)]
pub struct UpReport {
    pub outcome: Outcome,
    pub namespace: String,
    pub environment: String,
    pub deploy_id: String,
    pub seconds: f64,
    /// Mutating engine calls this run made.
    pub calls: CallCounts,
    pub layers: Vec<LayerReport>,
    pub failure: Option<Failure>,
    /// Objects removed: stale config versions, and with `--prune` what the spec dropped.
    pub removed: Vec<String>,
    /// Vault after the layer that holds it: initialised, unsealed, what was done.
    pub vault: Option<crate::vault_lifecycle::VaultReport>,
}

#[derive(Debug, Serialize)]
pub struct LayerReport {
    pub name: String,
    /// `deployed`, `failed`, `timed-out` or `not-started`.
    pub status: String,
    pub seconds: f64,
    pub services: Vec<ServiceReport>,
    pub disabled: Vec<sprocket_spec::model::Disabled>,
}

#[derive(Debug, Serialize, Clone)]
pub struct ServiceReport {
    pub name: String,
    /// `create`, `update` or `unchanged`.
    pub action: String,
    pub running: usize,
    pub desired: usize,
    /// Seconds from the layer's start until the service was healthy.
    pub healthy_after: Option<f64>,
}

#[derive(Debug, Serialize)]
pub struct Failure {
    pub layer: String,
    pub service: String,
    pub reason: String,
    pub task: Option<TaskInfo>,
    pub logs: Vec<String>,
    pub hint: String,
}

fn new_deploy_id() -> String {
    let nanos = crate::clock::unix_now().as_nanos();
    short_hash(format!("{nanos}-{}", std::process::id()).as_bytes())
}

/// A random alphanumeric secret from the kernel's CSPRNG.
fn random_secret(len: usize) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut f = std::fs::File::open("/dev/urandom")?;
    let mut out = Vec::with_capacity(len);
    let mut buf = [0u8; 64];
    while out.len() < len {
        f.read_exact(&mut buf)?;
        // Rejection sampling keeps every character equally likely.
        out.extend(
            buf.iter()
                .filter(|b| **b < 248)
                .map(|b| ALPHABET[(*b % 62) as usize])
                .take(len - out.len()),
        );
    }
    Ok(out)
}

pub async fn up(
    engine: &Engine,
    desired: &DesiredState,
    observed: plan::Observed,
    mut plan: Plan,
    secret_lengths: &HashMap<String, usize>,
    opts: &Options,
) -> Result<UpReport, EngineError> {
    let started = Instant::now();
    let deploy_id = new_deploy_id();
    let ns = desired.namespace.as_str();
    let mut refs = Refs::default();
    for c in &observed.configs {
        refs.configs.insert(c.name.clone(), c.id.clone());
    }
    for s in &observed.secrets {
        if let Some(logical) = s.label(L::NAME) {
            refs.secrets
                .entry(logical.to_string())
                .or_insert((s.name.clone(), s.id.clone()));
        }
    }
    let ids: HashMap<String, String> = observed
        .services
        .iter()
        .map(|s| (s.spec.name.clone(), s.id.clone()))
        .collect();
    let mut report = UpReport {
        outcome: Outcome::Deployed,
        namespace: ns.to_string(),
        environment: desired.environment.clone(),
        deploy_id: deploy_id.clone(),
        seconds: 0.0,
        calls: CallCounts::default(),
        layers: Vec::new(),
        failure: None,
        removed: Vec::new(),
        vault: None,
    };
    let p = opts.progress;
    p.say(format!(
        "deploy {deploy_id}: namespace `{ns}`, environment `{}`",
        desired.environment
    ));
    let mut ids = ids;
    // Whether the Vault step set the versions of Vault-made secrets (keys at hand): only then
    // are other versions known to be stale.
    let mut vault_refs_current = false;
    for (li, layer) in desired.layers.iter().enumerate() {
        if report.failure.is_some() {
            report.layers.push(LayerReport {
                name: layer.name.clone(),
                status: "not-started".into(),
                seconds: 0.0,
                services: vec![],
                disabled: layer.disabled.clone(),
            });
            continue;
        }
        let layer_start = Instant::now();
        let lp = plan.layers[li].clone();
        let lp = &lp;
        let n_changed = lp
            .changes
            .iter()
            .filter(|c| c.kind == Kind::Service)
            .count();
        p.say(format!(
            "layer {}: {} service(s) to create or update, {} unchanged",
            layer.name,
            n_changed,
            lp.unchanged.len()
        ));
        prepare_layer(engine, layer, lp, &mut refs, secret_lengths, p).await?;

        // Services of a layer start together; one that mounts material made from Vault (the
        // unseal agent) waits for it: it exists once Vault's keys are at hand (after this
        // layer's gate and the Vault step).
        let mut now = Vec::new();
        let mut later = Vec::new();
        for c in lp.changes.iter().filter(|c| c.kind == Kind::Service) {
            let spec = layer
                .services
                .iter()
                .find(|s| s.name == c.name)
                .expect("plan follows desired");
            let action = if c.action == Action::Create {
                "create"
            } else {
                "update"
            };
            if lacks_vault_material(spec, &refs) {
                later.push((spec, c.id.clone(), action));
            } else {
                now.push((spec, c.id.clone(), action));
            }
        }
        let mut actions: HashMap<String, &'static str> = HashMap::new();
        let mut tracked = HashSet::new();
        start(
            engine,
            &now,
            &refs,
            &deploy_id,
            &mut ids,
            &mut actions,
            &mut tracked,
            p,
        )
        .await?;
        let gated: Vec<&ServiceSpec> = layer
            .services
            .iter()
            .filter(|s| {
                ids.contains_key(&s.name) && !later.iter().any(|(x, _, _)| x.name == s.name)
            })
            .collect();
        let deadline = layer_start + opts.timeout;
        let mut outcome = gate(
            engine,
            &layer.name,
            &gated,
            &ids,
            &tracked,
            &deploy_id,
            deadline,
            layer_start,
            p,
        )
        .await?;

        // Vault is initialised and unsealed before any later layer starts.
        if let (Ok(_), Some(step)) = (&outcome, &opts.vault) {
            if layer
                .services
                .iter()
                .any(|s| s.short_name == step.config.service)
            {
                let agent = layer.services.iter().find(|s| mounts_unseal(s));
                match vault_step(
                    engine,
                    step,
                    desired,
                    layer,
                    agent,
                    &observed,
                    &mut refs,
                    &mut later,
                    opts.prune,
                    p,
                )
                .await
                {
                    Ok((v, current)) => {
                        report.vault = Some(v);
                        vault_refs_current = current;
                        // Services of later layers restart with the current versions of their
                        // tokens (reissued now, or left behind by an interrupted run).
                        if current {
                            for (lj, l) in desired.layers.iter().enumerate().skip(li + 1) {
                                for s in l.services.iter() {
                                    if mounts_stale_material(s, &observed, &refs) {
                                        force_update(&mut plan.layers[lj], s, &observed);
                                    }
                                }
                            }
                        }
                    }
                    Err(e) => {
                        outcome = Err((
                            outcome.unwrap_or_default(),
                            Failure {
                                layer: layer.name.clone(),
                                service: step.config.service.clone(),
                                reason: e,
                                task: None,
                                logs: vec![],
                                hint: "later layers were not started; fix Vault (`sprocketctl vault status`) and run `sprocketctl up` again".into(),
                            },
                            false,
                        ))
                    }
                }
            }
        }
        if let (Ok(done), false) = (&outcome, later.is_empty()) {
            let mut done = done.clone();
            start(
                engine,
                &later,
                &refs,
                &deploy_id,
                &mut ids,
                &mut actions,
                &mut tracked,
                p,
            )
            .await?;
            let specs: Vec<&ServiceSpec> = later.iter().map(|(s, _, _)| *s).collect();
            let deadline = Instant::now() + opts.timeout;
            outcome = match gate(
                engine,
                &layer.name,
                &specs,
                &ids,
                &tracked,
                &deploy_id,
                deadline,
                layer_start,
                p,
            )
            .await?
            {
                Ok(more) => {
                    done.extend(more);
                    Ok(done)
                }
                Err((more, f, t)) => {
                    done.extend(more);
                    Err((done, f, t))
                }
            };
        }
        let (services, failure, status) = match outcome {
            Ok(services) => (services, None, "deployed"),
            Err((services, failure, timed_out)) => (
                services,
                Some(failure),
                if timed_out { "timed-out" } else { "failed" },
            ),
        };
        let services = services
            .into_iter()
            .map(|mut s| {
                s.action = actions
                    .get(&s.name)
                    .copied()
                    .unwrap_or("unchanged")
                    .to_string();
                s
            })
            .collect();
        let secs = layer_start.elapsed().as_secs_f64();
        match &failure {
            None => p.say(format!("layer {}: healthy after {:.1}s", layer.name, secs)),
            Some(f) => p.say(format!(
                "layer {}: {status} at {}: {}",
                layer.name, f.service, f.reason
            )),
        }
        if let Some(f) = failure {
            report.outcome = if status == "timed-out" {
                Outcome::TimedOut
            } else {
                Outcome::Failed
            };
            report.failure = Some(f);
        }
        report.layers.push(LayerReport {
            name: layer.name.clone(),
            status: status.into(),
            seconds: secs,
            services,
            disabled: layer.disabled.clone(),
        });
    }

    if report.failure.is_none() {
        if opts.prune {
            report.removed.extend(prune(engine, &plan, p).await?);
        }
        report
            .removed
            .extend(collect_stale_configs(engine, desired, &observed, opts.prune).await);
        report.removed.extend(
            collect_replaced_material(
                engine,
                desired,
                &observed,
                &refs,
                vault_refs_current,
                opts.prune,
            )
            .await,
        );
    }
    report.seconds = started.elapsed().as_secs_f64();
    report.calls = engine.calls.snapshot();
    Ok(report)
}

fn mounts_unseal(s: &ServiceSpec) -> bool {
    s.secrets.iter().any(|f| f.name == UNSEAL_SECRET)
}

/// Mounts a secret made from Vault that does not exist yet.
fn lacks_vault_material(s: &ServiceSpec, refs: &Refs) -> bool {
    s.secrets
        .iter()
        .any(|f| is_vault_material(&f.name) && !refs.secrets.contains_key(&f.name))
}

/// Mounts a Vault-made secret in a version other than the current one.
fn mounts_stale_material(s: &ServiceSpec, observed: &plan::Observed, refs: &Refs) -> bool {
    let Some(o) = observed.services.iter().find(|o| o.spec.name == s.name) else {
        return false;
    };
    s.secrets
        .iter()
        .filter(|f| is_vault_material(&f.name))
        .any(
            |f| match (o.secret_ids.get(&f.name), refs.secrets.get(&f.name)) {
                (Some(live), Some((_, current))) => live != current,
                (None, Some(_)) => true,
                _ => false,
            },
        )
}

/// Adds an update of `s` to its layer's plan (its Vault token was reissued), unless the plan
/// already creates or updates it.
fn force_update(lp: &mut plan::LayerPlan, s: &ServiceSpec, observed: &plan::Observed) {
    if lp
        .changes
        .iter()
        .any(|c| c.kind == Kind::Service && c.name == s.name)
    {
        return;
    }
    let Some(o) = observed.services.iter().find(|o| o.spec.name == s.name) else {
        return;
    };
    lp.unchanged.retain(|u| u != &s.name);
    lp.changes.push(plan::Change {
        kind: Kind::Service,
        name: s.name.clone(),
        action: Action::Update,
        fields: vec![plan::FieldDiff {
            path: "secrets (vault token)".into(),
            before: None,
            after: Some(serde_json::Value::String("reissued".into())),
        }],
        id: Some(o.id.clone()),
    });
}

/// Creates or updates services concurrently; their tasks carry the deploy id.
#[allow(clippy::too_many_arguments)]
async fn start(
    engine: &Engine,
    changes: &[(&ServiceSpec, Option<String>, &'static str)],
    refs: &Refs,
    deploy_id: &str,
    ids: &mut HashMap<String, String>,
    actions: &mut HashMap<String, &'static str>,
    tracked: &mut HashSet<String>,
    p: Progress,
) -> Result<(), EngineError> {
    let calls = changes.iter().map(|(spec, id, action)| async move {
        let r = match id {
            None => engine.create_service(spec, refs, deploy_id).await,
            Some(id) => engine
                .update_service(id, spec, refs, deploy_id)
                .await
                .map(|_| id.clone()),
        };
        (spec.name.clone(), *action, r)
    });
    for (name, action, r) in futures_util::future::join_all(calls).await {
        let id = r?;
        p.say(format!("  {name}: {action} ({})", &id[..id.len().min(12)]));
        tracked.insert(name.clone());
        actions.insert(name.clone(), action);
        ids.insert(name, id);
    }
    Ok(())
}

/// Initialise/unseal Vault; then make sure the unseal agent's material is a Docker secret made
/// from the current keys, queueing the agent for (re)deploy when it is new or changed.
#[allow(clippy::too_many_arguments)]
async fn vault_step<'a>(
    engine: &Engine,
    step: &VaultStep,
    desired: &DesiredState,
    layer: &'a DesiredLayer,
    agent: Option<&'a ServiceSpec>,
    observed: &plan::Observed,
    refs: &mut Refs,
    later: &mut Vec<(&'a ServiceSpec, Option<String>, &'static str)>,
    prune: bool,
    p: Progress,
) -> Result<(crate::vault_lifecycle::VaultReport, bool), String> {
    let ns = desired.namespace.as_str();
    let (mut v, mut keys) = crate::vault_lifecycle::ensure(
        &step.client,
        &step.config,
        ns,
        step.identity.as_deref(),
        agent.is_some() || desired.vault.is_some(),
        p,
    )
    .await
    .map_err(|e| e.to_string())?;
    // The declarative configuration: mounts, policies, auth, the services' tokens.
    match (&desired.vault, keys.as_mut()) {
        (Some(d), Some(k)) if !v.sealed => {
            let c = &step.client;
            let session = crate::vault_config::session(c, &step.config, k, true, p).await?;
            let (o, current) = crate::vault_config::observe(c, &session.token, &observed.secrets)
                .await
                .map_err(|e| e.to_string())?;
            for (svc, s) in current {
                refs.secrets.insert(
                    sprocket_desired::state::token_secret(&svc),
                    (s.name.clone(), s.id.clone()),
                );
            }
            let vp = sprocket_desired::vault::plan(d, &o);
            let applied = crate::vault_config::apply(
                c,
                &session.token,
                d,
                &vp,
                prune,
                desired,
                engine,
                &observed.secrets,
                refs,
                p,
            )
            .await?;
            if applied.changes.is_empty() && applied.blocked.is_empty() {
                p.say("vault: configuration as the spec wants it");
            }
            v.config = Some(applied);
        }
        (Some(_), _) => {
            let missing: Vec<&str> = desired
                .services()
                .filter(|s| lacks_vault_material(s, refs) && !mounts_unseal(s))
                .map(|s| s.short_name.as_str())
                .collect();
            if !missing.is_empty() {
                return Err(format!(
                    "Vault tokens for {} cannot be issued: {}",
                    missing.join(", "),
                    if v.sealed {
                        "Vault is sealed"
                    } else {
                        "the keyring could not be opened (no identity: pass --identity or SPROCKET_IDENTITY)"
                    }
                ));
            }
            if v.initialized {
                v.notes.push(
                    "configuration not checked: the keyring could not be opened (no identity)"
                        .into(),
                );
            }
        }
        _ => {}
    }
    let current = keys.is_some() && !v.sealed;
    if let Some(agent) = agent {
        match keys {
            Some(k) => {
                let material = crate::agent::UnsealMaterial {
                    keys: k
                        .unseal_keys_b64
                        .iter()
                        .take(k.threshold as usize)
                        .cloned()
                        .collect(),
                    fingerprint: k.fingerprint(),
                };
                let secret = layer
                    .secrets
                    .iter()
                    .find(|s| s.name == UNSEAL_SECRET)
                    .expect("desired state declares it");
                let name = format!("{}-{}", secret.prefix, material.fingerprint);
                if let Some(existing) = observed.secrets.iter().find(|s| s.name == name) {
                    refs.secrets
                        .insert(UNSEAL_SECRET.into(), (name, existing.id.clone()));
                } else {
                    let value = serde_json::to_vec(&material).expect("serialisable");
                    let id = engine
                        .create_secret(&name, &secret.labels, &value)
                        .await
                        .map_err(|e| e.to_string())?;
                    refs.secrets.insert(UNSEAL_SECRET.into(), (name, id));
                    p.say(format!(
                        "  secret {UNSEAL_SECRET}: made from the keyring (fingerprint {})",
                        material.fingerprint
                    ));
                }
            }
            None if later.iter().any(|(s, _, _)| s.name == agent.name) => {
                later.retain(|(s, _, _)| s.name != agent.name);
                v.notes.push(format!("unseal agent `{}` not deployed: its material is made from the keyring, which needs an identity (`--identity`) or a fresh `vault init`", agent.short_name));
            }
            None => {}
        }
    }
    // With the keys at hand, every Vault-made secret's current version is known: a service of
    // this layer that mounts another (the agent: new material, a reissued token) restarts now.
    if current {
        for s in &layer.services {
            if mounts_stale_material(s, observed, refs) {
                queue_later(later, s, observed);
            }
        }
    }
    for n in &v.notes {
        p.say(format!("vault: {n}"));
    }
    Ok((v, current))
}

/// Queues `s` to be (re)deployed after the Vault step, once.
fn queue_later<'a>(
    later: &mut Vec<(&'a ServiceSpec, Option<String>, &'static str)>,
    s: &'a ServiceSpec,
    observed: &plan::Observed,
) {
    if later.iter().any(|(x, _, _)| x.name == s.name) {
        return;
    }
    let id = observed
        .services
        .iter()
        .find(|o| o.spec.name == s.name)
        .map(|o| o.id.clone());
    let action = if id.is_some() { "update" } else { "create" };
    later.push((s, id, action));
}

/// Networks, configs and generated secrets of a layer, before its services.
async fn prepare_layer(
    engine: &Engine,
    layer: &DesiredLayer,
    lp: &plan::LayerPlan,
    refs: &mut Refs,
    secret_lengths: &HashMap<String, usize>,
    p: Progress,
) -> Result<(), EngineError> {
    for c in &lp.changes {
        match c.kind {
            Kind::Network => {
                let n = layer
                    .networks
                    .iter()
                    .find(|n| n.name == c.name)
                    .expect("plan follows desired");
                engine.create_network(n).await?;
                p.say(format!("  network {}: created", n.name));
            }
            Kind::Config => {
                let cfg = layer
                    .configs
                    .iter()
                    .find(|x| x.name == c.name)
                    .expect("plan follows desired");
                let id = engine.create_config(cfg).await?;
                refs.configs.insert(cfg.name.clone(), id);
                p.say(format!("  config {}: created", cfg.name));
            }
            Kind::Secret => {
                let s = layer
                    .secrets
                    .iter()
                    .find(|x| x.name == c.name)
                    .expect("plan follows desired");
                if s.source != SecretSource::Generate {
                    continue;
                }
                let len = secret_lengths.get(&s.name).copied().unwrap_or(32);
                let value = random_secret(len).map_err(|source| EngineError::Io {
                    action: "generate secret",
                    object: s.name.clone(),
                    source,
                })?;
                let fingerprint = short_hash(&value);
                let name = format!("{}-{fingerprint}", s.prefix);
                let id = engine.create_secret(&name, &s.labels, &value).await?;
                refs.secrets.insert(s.name.clone(), (name.clone(), id));
                p.say(format!(
                    "  secret {}: generated (fingerprint {fingerprint})",
                    s.name
                ));
            }
            Kind::Service => {}
        }
    }
    Ok(())
}

fn expected(spec: &ServiceSpec, tasks: &[&TaskInfo]) -> usize {
    match spec.mode {
        Mode::Replicated(n) => n as usize,
        // One per eligible node: the scheduler's own count of tasks it wants running.
        Mode::Global => tasks
            .iter()
            .filter(|t| t.desired_state == "running")
            .count()
            .max(1),
    }
}

type GateResult = Result<Vec<ServiceReport>, (Vec<ServiceReport>, Failure, bool)>;

#[allow(clippy::too_many_arguments)]
async fn gate(
    engine: &Engine,
    layer: &str,
    services: &[&ServiceSpec],
    ids: &HashMap<String, String>,
    tracked: &HashSet<String>,
    deploy_id: &str,
    deadline: Instant,
    layer_start: Instant,
    p: Progress,
) -> Result<GateResult, EngineError> {
    // Tasks that existed before: an old failure of an unchanged service is history, not news.
    let mut known: HashMap<&str, HashSet<String>> = HashMap::new();
    for s in services {
        if !tracked.contains(&s.name) {
            let tasks = engine.tasks(&ids[&s.name]).await?;
            known.insert(&s.name, tasks.into_iter().map(|t| t.id).collect());
        }
    }
    let mut reports: Vec<ServiceReport> = services
        .iter()
        .map(|s| ServiceReport {
            name: s.name.clone(),
            action: String::new(),
            running: 0,
            desired: 0,
            healthy_after: None,
        })
        .collect();
    loop {
        let mut pending = 0;
        let mut lagging: Option<(usize, Vec<TaskInfo>)> = None;
        for (i, s) in services.iter().enumerate() {
            if reports[i].healthy_after.is_some() {
                continue;
            }
            let id = &ids[&s.name];
            let tasks = engine.tasks(id).await?;
            let is_tracked = tracked.contains(&s.name);
            let relevant: Vec<&TaskInfo> = if is_tracked {
                tasks
                    .iter()
                    .filter(|t| t.deploy_id.as_deref() == Some(deploy_id))
                    .collect()
            } else {
                tasks
                    .iter()
                    .filter(|t| t.desired_state == "running")
                    .collect()
            };
            let failed = if is_tracked {
                relevant.iter().find(|t| t.has_failed()).copied()
            } else {
                tasks.iter().find(|t| {
                    t.has_failed()
                        && !known
                            .get(s.name.as_str())
                            .is_some_and(|k| k.contains(&t.id))
                })
            };
            if let Some(t) = failed {
                let logs = engine.task_logs(&t.id, 20).await;
                let reason = format!(
                    "task {} {}: {}",
                    &t.id[..t.id.len().min(12)],
                    t.state,
                    t.error.clone().or(t.message.clone()).unwrap_or_default()
                );
                return Ok(Err((
                    reports,
                    failure(layer, s, reason, Some(t.clone()), logs),
                    false,
                )));
            }
            if is_tracked {
                let st = engine.service_status(id).await?;
                if let Some(state) = st.update_state.as_deref() {
                    if state.starts_with("rollback") || state == "paused" {
                        let reason = format!(
                            "Swarm {state} the update: {}",
                            st.update_message.unwrap_or_default()
                        );
                        let logs = match relevant.last() {
                            Some(t) => engine.task_logs(&t.id, 20).await,
                            None => vec![],
                        };
                        return Ok(Err((
                            reports,
                            failure(
                                layer,
                                s,
                                reason,
                                relevant.last().map(|t| (*t).clone()),
                                logs,
                            ),
                            false,
                        )));
                    }
                }
            }
            let want = expected(s, &relevant);
            let running = relevant
                .iter()
                .filter(|t| t.is_running() && t.desired_state == "running")
                .count();
            if running != reports[i].running || reports[i].desired != want {
                p.say(format!(
                    "  {}: {running}/{want} running and healthy ({:.1}s)",
                    s.name,
                    layer_start.elapsed().as_secs_f64()
                ));
            }
            reports[i].running = running;
            reports[i].desired = want;
            if running >= want {
                reports[i].healthy_after = Some(layer_start.elapsed().as_secs_f64());
            } else {
                pending += 1;
                lagging = Some((i, tasks));
            }
        }
        if pending == 0 {
            return Ok(Ok(reports));
        }
        if Instant::now() >= deadline {
            let (i, tasks) = lagging.expect("pending > 0");
            let s = services[i];
            let newest = tasks
                .iter()
                .rev()
                .find(|t| !tracked.contains(&s.name) || t.deploy_id.as_deref() == Some(deploy_id))
                .cloned();
            let logs = match &newest {
                Some(t) => engine.task_logs(&t.id, 20).await,
                None => vec![],
            };
            let state = newest
                .as_ref()
                .map(|t| format!("{} ({})", t.state, t.message.clone().unwrap_or_default()))
                .unwrap_or_else(|| "no task scheduled".into());
            let reason = format!(
                "not healthy after {:.0}s: {}/{} running; newest task {state}",
                layer_start.elapsed().as_secs_f64(),
                reports[i].running,
                reports[i].desired
            );
            return Ok(Err((
                reports,
                failure(layer, s, reason, newest, logs),
                true,
            )));
        }
        // A local engine answers these reads in about a millisecond: polling at 100 ms costs
        // little and keeps the gate within a tenth of a second of the truth.
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn failure(
    layer: &str,
    s: &ServiceSpec,
    reason: String,
    task: Option<TaskInfo>,
    logs: Vec<String>,
) -> Failure {
    Failure {
        layer: layer.to_string(),
        service: s.name.clone(),
        reason,
        task,
        logs,
        hint: format!(
            "earlier layers are untouched and later ones were not started; fix `{}` and run `sprocketctl up` again (it continues from here). `docker service ps {} --no-trunc` shows every task.",
            s.short_name, s.name
        ),
    }
}

/// Removes config versions we own that no service uses any more (configs are immutable, so every
/// change leaves the old version behind). A config is still used when the spec wants it, or when
/// a service the spec dropped still runs (not pruned): those are never touched, so a no-op `up`
/// makes no call at all.
async fn collect_stale_configs(
    engine: &Engine,
    desired: &DesiredState,
    observed: &plan::Observed,
    pruned: bool,
) -> Vec<String> {
    let mut used: HashSet<&str> = desired
        .layers
        .iter()
        .flat_map(|l| l.configs.iter().map(|c| c.name.as_str()))
        .collect();
    if !pruned {
        let wanted: HashSet<&str> = desired.services().map(|s| s.name.as_str()).collect();
        for s in observed
            .services
            .iter()
            .filter(|s| !wanted.contains(s.spec.name.as_str()))
        {
            used.extend(s.spec.configs.iter().map(|c| c.name.as_str()));
        }
    }
    let mut removed = Vec::new();
    for c in &observed.configs {
        if !used.contains(c.name.as_str()) && engine.remove_config(&c.id, &c.name).await.is_ok() {
            removed.push(format!("config {}", c.name));
        }
    }
    removed
}

/// Removes versions of Vault-made secrets (unseal material, service tokens) that a newer one
/// replaced, and with `--prune` those the spec no longer wants (a dropped service's token). One
/// still mounted by a task that is shutting down is refused by the engine and goes on the next
/// run.
async fn collect_replaced_material(
    engine: &Engine,
    desired: &DesiredState,
    observed: &plan::Observed,
    refs: &Refs,
    refs_current: bool,
    prune: bool,
) -> Vec<String> {
    let wanted: HashSet<&str> = desired
        .layers
        .iter()
        .flat_map(|l| l.secrets.iter().map(|s| s.name.as_str()))
        .collect();
    let mut removed = Vec::new();
    for s in &observed.secrets {
        let Some(logical) = s.label(L::NAME).filter(|n| is_vault_material(n)) else {
            continue;
        };
        let replaced = refs_current
            && refs
                .secrets
                .get(logical)
                .is_some_and(|(current, _)| current != &s.name);
        let dropped = prune && !wanted.contains(logical);
        if (replaced || dropped) && engine.remove_secret(&s.id, &s.name).await.is_ok() {
            removed.push(format!("secret {}", s.name));
        }
    }
    removed
}

/// `--prune`: owned services the spec no longer wants, then their networks.
async fn prune(engine: &Engine, plan: &Plan, p: Progress) -> Result<Vec<String>, EngineError> {
    let mut removed = Vec::new();
    for c in plan.prune.iter().filter(|c| c.kind == Kind::Service) {
        engine
            .remove_service(c.id.as_deref().unwrap_or(&c.name), &c.name)
            .await?;
        p.say(format!("  service {}: removed (--prune)", c.name));
        removed.push(format!("service {}", c.name));
    }
    for c in plan.prune.iter().filter(|c| c.kind == Kind::Network) {
        let id = c.id.as_deref().unwrap_or(&c.name);
        if remove_network_when_free(engine, id, &c.name).await? {
            p.say(format!("  network {}: removed (--prune)", c.name));
            removed.push(format!("network {}", c.name));
        }
    }
    Ok(removed)
}

/// Networks can only go once the tasks attached to them are gone, which Swarm does
/// asynchronously; retry for a while.
pub async fn remove_network_when_free(
    engine: &Engine,
    id: &str,
    name: &str,
) -> Result<bool, EngineError> {
    let until = Instant::now() + Duration::from_secs(60);
    loop {
        match engine.remove_network(id, name).await {
            Ok(()) => return Ok(true),
            Err(e) => {
                let msg = e.to_string();
                if msg.contains("No such network") || msg.contains("not found") {
                    return Ok(false);
                }
                let busy = msg.contains("in use") || msg.contains("active endpoints");
                if !busy || Instant::now() >= until {
                    return Err(e);
                }
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        }
    }
}
