//! One deploy: its state in one place ([`Deploy`]) and the loop that carries out the
//! scheduler's decisions. Each turn starts what became ready (concurrently), reads the tasks of
//! what is being watched, and waits 100 ms or for a background step (Vault's, a datastore's
//! provisioning), whichever comes first.

mod finish;

use super::gate::{self, Verdict};
use super::provision::{self as provision_step, ProvisionReport};
use super::report::{
    self, ChangeReason, Failure, LayerReport, Outcome, PathStep, ServiceAction, ServiceReport,
    ServiceState, UpReport,
};
use super::schedule::{Schedule, StepState};
use super::vault::{self as vault_step, VaultDone};
use super::{cleanup, prepare, Options};
use crate::vault_lifecycle::VaultReport;
use sprocket_desired::graph::{self, Step};
use sprocket_desired::plan::{Action, Kind, Observed, Plan};
use sprocket_desired::state::{short_hash, DesiredState, ServiceSpec};
use sprocket_docker::{assess, Engine, EngineError, Refs, TaskInfo, Tracking};
use sprocket_spec::model::Platform;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, Instant};

/// A local engine answers the task reads in about a millisecond: polling at 100 ms costs little
/// and keeps every start within a tenth of a second of its last need turning healthy.
const POLL: Duration = Duration::from_millis(100);

/// One service of the deploy, from the plan to its end.
struct Service<'a> {
    spec: &'a ServiceSpec,
    layer: usize,
    id: Option<String>,
    /// What the plan says (before the Vault step may add a restart).
    planned: ServiceAction,
    /// What was done.
    action: ServiceAction,
    reason: Option<ChangeReason>,
    /// Tasks that existed before we looked (an unchanged service's old failures are history).
    known: HashSet<String>,
    started_at: Option<f64>,
    healthy_at: Option<f64>,
    converged_at: Option<f64>,
    running: usize,
    want: usize,
    /// How it ended badly, when it did.
    ended: Option<ServiceState>,
}

impl Service<'_> {
    fn changed(&self) -> bool {
        self.action != ServiceAction::Unchanged
    }
}

/// What a background step hands back.
enum Background {
    Vault(Box<Result<VaultDone, String>>),
    /// The datastore's service name, and the result.
    Provision(String, Box<Result<ProvisionReport, String>>),
}

type BackgroundFuture<'a> = Pin<Box<dyn Future<Output = Background> + 'a>>;
type BackgroundSet<'a> = futures_util::stream::FuturesUnordered<BackgroundFuture<'a>>;

pub(super) struct Deploy<'a> {
    engine: &'a Engine,
    desired: &'a DesiredState,
    observed: &'a Observed,
    plan: &'a Plan,
    opts: &'a Options,
    deploy_id: String,
    clock: Instant,
    refs: Refs,
    schedule: Schedule,
    services: BTreeMap<String, Service<'a>>,
    /// The Vault step set the versions of Vault-made secrets (keys at hand): only then are
    /// other versions known to be stale.
    vault_current: bool,
    vault_report: Option<VaultReport>,
    /// The layers of a Vault or datastore whose background step failed.
    step_failed: Vec<String>,
    provisioned: Vec<ProvisionReport>,
    /// sprocketctl's own image here, for the one-off provisioning tasks.
    tool_image: &'a str,
    /// The platform deployed (the scheduled backups' runner is made from it at the end).
    platform: &'a Platform,
    /// Datastore (service name) → its running provisioning's cancel flag: set when the
    /// datastore fails, so its task stops waiting for it.
    cancels: BTreeMap<String, std::sync::Arc<std::sync::atomic::AtomicBool>>,
    failures: Vec<Failure>,
}

fn new_deploy_id() -> String {
    let nanos = crate::clock::unix_now().as_nanos();
    short_hash(format!("{nanos}-{}", std::process::id()).as_bytes())
}

impl<'a> Deploy<'a> {
    pub(super) fn new(
        engine: &'a Engine,
        platform: &'a Platform,
        desired: &'a DesiredState,
        observed: &'a Observed,
        plan: &'a Plan,
        opts: &'a Options,
    ) -> Deploy<'a> {
        let mut refs = Refs::default();
        for c in &observed.configs {
            refs.configs.insert(c.name.clone(), c.id.clone());
        }
        // Each secret's newest version the engine holds (until the Vault step says which is
        // current): a version label, else the first found (an operator's manual secret).
        for (logical, s) in observed.newest_secrets() {
            refs.secrets
                .insert(logical.to_string(), (s.name.clone(), s.id.clone()));
        }
        let mut services = BTreeMap::new();
        for (li, (layer, lp)) in desired.layers.iter().zip(&plan.layers).enumerate() {
            for spec in &layer.services {
                let change = lp
                    .changes
                    .iter()
                    .find(|c| c.kind == Kind::Service && c.name == spec.name);
                let planned = match change.map(|c| c.action) {
                    Some(Action::Create) => ServiceAction::Create,
                    Some(_) => ServiceAction::Update,
                    None => ServiceAction::Unchanged,
                };
                let id = observed
                    .services
                    .iter()
                    .find(|o| o.spec.name == spec.name)
                    .map(|o| o.id.clone());
                services.insert(
                    spec.name.clone(),
                    Service {
                        spec,
                        layer: li,
                        id,
                        planned,
                        action: planned,
                        reason: None,
                        known: HashSet::new(),
                        started_at: None,
                        healthy_at: None,
                        converged_at: None,
                        running: 0,
                        want: 0,
                        ended: None,
                    },
                );
            }
        }
        Deploy {
            engine,
            desired,
            observed,
            plan,
            opts,
            deploy_id: new_deploy_id(),
            clock: Instant::now(),
            refs,
            schedule: Schedule::new(graph::graph(platform, desired, opts.vault.is_some())),
            services,
            vault_current: false,
            vault_report: None,
            step_failed: Vec::new(),
            provisioned: Vec::new(),
            tool_image: &platform.environment.tool_image,
            platform,
            cancels: BTreeMap::new(),
            failures: Vec::new(),
        }
    }

    fn now(&self) -> f64 {
        self.clock.elapsed().as_secs_f64()
    }

    fn say(&self, line: impl AsRef<str>) {
        self.opts
            .progress
            .say(format!("[{:5.1}s] {}", self.now(), line.as_ref()));
    }

    pub(super) async fn run(
        mut self,
        secret_lengths: &HashMap<String, (sprocket_spec::model::Alphabet, usize)>,
    ) -> Result<UpReport, EngineError> {
        let (engine, desired, opts) = (self.engine, self.desired, self.opts);
        opts.progress.say(format!(
            "deploy {}: namespace `{}`, environment `{}`: {} to create or update, {} unchanged",
            self.deploy_id,
            desired.namespace,
            desired.environment,
            self.services.values().filter(|s| s.changed()).count(),
            self.services.values().filter(|s| !s.changed()).count(),
        ));
        prepare::prepare(
            engine,
            desired,
            self.plan,
            &mut self.refs,
            secret_lengths,
            opts.progress,
        )
        .await?;
        let mut background = BackgroundSet::new();
        let result = self.drive(&mut background).await;
        // An engine error ends the run, but never a background step half-way: `sys/init` cut
        // off would leave an initialised Vault whose keys nobody holds, a provisioning its task.
        use futures_util::StreamExt;
        while let Some(r) = background.next().await {
            self.background_done(r);
        }
        result?;
        self.finish().await
    }

    /// The loop: start what is ready, look at what is watched, wait. Background steps (futures
    /// borrowing nothing of `self`) are polled all along, also while a turn's engine calls run;
    /// their results are applied between turns, so no engine call is ever cut off half-way.
    async fn drive(&mut self, background: &mut BackgroundSet<'a>) -> Result<(), EngineError> {
        use futures_util::StreamExt;
        let (engine, desired, observed, opts) =
            (self.engine, self.desired, self.observed, self.opts);
        let mut done: Vec<Background> = Vec::new();
        loop {
            for r in done.drain(..) {
                self.background_done(r);
            }
            for step in self.schedule.ready() {
                match &step {
                    Step::Vault => {
                        let v = opts.vault.as_ref().expect("a Vault step only with options");
                        self.say("vault: initialise, unseal, configure");
                        let f = vault_step::run(
                            engine,
                            v,
                            desired,
                            observed,
                            self.refs.clone(),
                            opts.prune,
                            opts.progress,
                        );
                        background.push(Box::pin(
                            async move { Background::Vault(Box::new(f.await)) },
                        ));
                    }
                    Step::Provision(service) => {
                        let pr = desired
                            .provisions
                            .iter()
                            .find(|p| &p.service == service)
                            .expect("a provisioning step only for a desired datastore");
                        self.say(format!(
                            "{}: provision its consumers' logins",
                            pr.step_name()
                        ));
                        let cancel = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
                        self.cancels.insert(service.clone(), cancel.clone());
                        let f = provision_step::run(
                            engine,
                            pr,
                            &desired.namespace,
                            self.tool_image,
                            self.refs.clone(),
                            observed,
                            opts.prune,
                            cancel,
                            opts.progress,
                        );
                        let service = service.clone();
                        background.push(Box::pin(async move {
                            Background::Provision(service, Box::new(f.await))
                        }));
                    }
                    Step::Service(_) => continue,
                }
                self.schedule.start(&step, self.now());
            }
            let turned = {
                let mut turn = std::pin::pin!(self.turn());
                loop {
                    if background.is_empty() {
                        break turn.await;
                    }
                    tokio::select! {
                        r = &mut turn => break r,
                        Some(r) = background.next() => done.push(r),
                    }
                }
            };
            if let Err(e) = turned {
                // The run ends: keep what finished meanwhile, and let running provisionings
                // stop waiting (the caller still awaits each to its end).
                for r in done.drain(..) {
                    self.background_done(r);
                }
                for c in self.cancels.values() {
                    c.store(true, std::sync::atomic::Ordering::Relaxed);
                }
                return Err(e);
            }
            if !done.is_empty() {
                continue;
            }
            if background.is_empty() && self.schedule.settled() && self.converging().is_empty() {
                return Ok(());
            }
            // What this look made healthy may let others start: no need to wait for that.
            if !self.schedule.ready().is_empty() {
                continue;
            }
            if background.is_empty() {
                tokio::time::sleep(POLL).await;
            } else {
                tokio::select! {
                    Some(r) = background.next() => done.push(r),
                    _ = tokio::time::sleep(POLL) => {}
                }
            }
        }
    }

    /// One turn's engine work: start the services that are ready, then look at the watched ones.
    async fn turn(&mut self) -> Result<(), EngineError> {
        let ready: Vec<String> = self
            .schedule
            .ready()
            .into_iter()
            .filter_map(|s| match s {
                Step::Service(n) => Some(n),
                Step::Vault | Step::Provision(_) => None,
            })
            .collect();
        if !ready.is_empty() {
            self.start(&ready).await?;
        }
        self.watch().await
    }

    /// Changed services that run healthy but whose old tasks are not gone yet.
    fn converging(&self) -> Vec<String> {
        self.services
            .iter()
            .filter(|(_, s)| {
                s.changed()
                    && s.healthy_at.is_some()
                    && s.converged_at.is_none()
                    && s.ended.is_none()
            })
            .map(|(n, _)| n.clone())
            .collect()
    }

    /// Starts services whose needs are healthy: creates or updates them (all at once), or, when
    /// unchanged, begins watching their current tasks.
    async fn start(&mut self, names: &[String]) -> Result<(), EngineError> {
        let mut calls = Vec::new();
        for name in names {
            let s = &self.services[name];
            if let Some(lacking) =
                vault_step::lacking_vault_material(self.desired, s.spec, &self.refs)
            {
                // Why Vault's keys were not at hand: the one true cause and its fix.
                let keys_missing = match (&self.vault_report, self.vault_current) {
                    (Some(v), false) => Some(crate::vault_lifecycle::keys_unavailable(v)),
                    _ => None,
                };
                if vault_step::mounts_unseal(s.spec) {
                    // Not a failure: Vault runs; it is only not kept unsealed by the agent.
                    let why = format!(
                        "unseal agent `{}` not deployed: its material is made from Vault's keys: {}",
                        s.spec.short_name,
                        keys_missing.as_deref().unwrap_or("Vault's step did not run")
                    );
                    self.say(format!("{name}: not started: {why}"));
                    if let Some(v) = self.vault_report.as_mut() {
                        v.notes.push(why.clone());
                    }
                    let blocked = self.schedule.skip(&Step::Service(name.clone()), why);
                    self.say_blocked(&blocked);
                } else {
                    // A reader without its token would start and fail at its first read.
                    let why = format!(
                        "`{lacking}` does not exist and could not be made from Vault: {}",
                        keys_missing.as_deref().unwrap_or(
                            "no Vault step ran (Vault has no route here: pass --vault-addr)"
                        )
                    );
                    self.fail(name, why, None, false).await;
                }
                continue;
            }
            let (mut action, mut reason) = (s.planned, None);
            if action == ServiceAction::Unchanged
                && self.vault_current
                && vault_step::mounts_stale_material(
                    self.desired,
                    s.spec,
                    self.observed,
                    &self.refs,
                )
            {
                action = ServiceAction::Update;
                reason = Some(ChangeReason::VaultMaterial);
            }
            calls.push((name.clone(), s.spec, s.id.clone(), action, reason));
        }
        let (engine, refs, deploy_id) = (self.engine, &self.refs, self.deploy_id.as_str());
        let results = futures_util::future::join_all(calls.into_iter().map(
            |(name, spec, id, action, reason)| async move {
                let r = match (action, id) {
                    (ServiceAction::Create, _) | (_, None) => engine
                        .create_service(spec, refs, deploy_id)
                        .await
                        .map(|id| (id, HashSet::new())),
                    (ServiceAction::Update, Some(id)) => engine
                        .update_service(&id, spec, refs, deploy_id)
                        .await
                        .map(|_| (id, HashSet::new())),
                    (ServiceAction::Unchanged, Some(id)) => engine
                        .tasks(&id)
                        .await
                        .map(|t| (id, t.into_iter().map(|t| t.id).collect())),
                };
                (name, action, reason, r)
            },
        ))
        .await;
        let now = self.now();
        for (name, action, reason, r) in results {
            let (id, known) = r?;
            let short = &id[..id.len().min(12)];
            let what = match action {
                ServiceAction::Create => format!("create ({short})"),
                ServiceAction::Update if reason.is_some() => {
                    format!("update ({short}): a Vault-made secret it mounts has a new version")
                }
                ServiceAction::Update => format!("update ({short})"),
                // Said once its tasks have been looked at.
                ServiceAction::Unchanged => String::new(),
            };
            if !what.is_empty() {
                self.say(format!("{name}: {what}"));
            }
            let s = self
                .services
                .get_mut(&name)
                .expect("scheduled services exist");
            s.id = Some(id);
            s.action = action;
            s.reason = reason;
            s.known = known;
            s.started_at = Some(now);
            self.schedule.start(&Step::Service(name), now);
        }
        Ok(())
    }

    /// One look at every service being watched: running until healthy, then (changed ones)
    /// until their old tasks are gone.
    async fn watch(&mut self) -> Result<(), EngineError> {
        let timeout = self.opts.timeout.as_secs_f64();
        let watched: Vec<String> = self
            .services
            .iter()
            .filter(|(n, s)| {
                let running = matches!(
                    self.schedule.state(&Step::Service((*n).clone())),
                    StepState::Running { .. }
                );
                running
                    || (s.changed()
                        && s.healthy_at.is_some()
                        && s.converged_at.is_none()
                        && s.ended.is_none())
            })
            .map(|(n, _)| n.clone())
            .collect();
        let ids: Vec<String> = watched
            .iter()
            .filter_map(|n| self.services[n].id.clone())
            .collect();
        let mut all_tasks = self.engine.tasks_of(&ids).await?;
        for name in watched {
            let s = &self.services[&name];
            let id = s.id.clone().expect("started services have an id");
            let tasks = all_tasks.remove(&id).unwrap_or_default();
            let tracking = if s.changed() {
                Tracking::ThisDeploy(&self.deploy_id)
            } else {
                Tracking::Current(&s.known)
            };
            let a = assess(&s.spec.mode, &tasks, tracking);
            let waited = self.now() - s.started_at.unwrap_or(0.0);
            // Only an update can be rolled back or paused by Swarm.
            let (state, message) = if s.action == ServiceAction::Update {
                let st = self.engine.service_status(&id).await?;
                (st.update_state, st.update_message)
            } else {
                (None, None)
            };
            if s.healthy_at.is_none() {
                let first_look = (s.running, s.want) == (0, 0);
                let quiet = !s.changed() && first_look && a.healthy();
                if (a.running, a.want) != (s.running, s.want) && !quiet {
                    self.say(format!(
                        "{name}: {}/{} running and healthy",
                        a.running, a.want
                    ));
                }
                let now = self.now();
                let s = self.services.get_mut(&name).expect("watched");
                s.running = a.running;
                s.want = a.want;
                match gate::verdict(&a, state.as_deref(), message.as_deref(), waited, timeout) {
                    Verdict::Waiting => continue,
                    Verdict::Healthy => {
                        s.healthy_at = Some(now);
                        if !s.changed() {
                            s.converged_at = Some(now);
                        }
                        let changed = s.changed();
                        self.schedule.healthy(&Step::Service(name.clone()), now);
                        self.say(format!(
                            "{name}: {}",
                            if changed {
                                "healthy"
                            } else {
                                "unchanged, healthy"
                            }
                        ));
                    }
                    Verdict::Failed(reason) => {
                        let task = a.failed.or(a.newest);
                        self.fail(&name, reason, task, false).await;
                        continue;
                    }
                    Verdict::TimedOut(reason) => {
                        self.fail(&name, reason, a.newest, true).await;
                        continue;
                    }
                }
            }
            let s = &self.services[&name];
            if s.changed() && s.converged_at.is_none() {
                let action = s.action;
                match gate::converge_verdict(&a, state.as_deref(), waited, timeout) {
                    Verdict::Healthy => {
                        let now = self.now();
                        self.services.get_mut(&name).expect("watched").converged_at = Some(now);
                        if action == ServiceAction::Update {
                            self.say(format!("{name}: converged (old tasks gone)"));
                        }
                    }
                    Verdict::TimedOut(reason) => {
                        let old = tasks
                            .iter()
                            .rev()
                            .find(|t| {
                                t.deploy_id.as_deref() != Some(&self.deploy_id) && t.is_live()
                            })
                            .cloned();
                        self.fail(&name, reason, old, true).await
                    }
                    Verdict::Failed(reason) => {
                        let task = a.failed.or(a.newest);
                        self.fail(&name, reason, task, false).await
                    }
                    Verdict::Waiting => {}
                }
            }
        }
        Ok(())
    }

    async fn fail(&mut self, name: &str, reason: String, task: Option<TaskInfo>, timed_out: bool) {
        let logs = match &task {
            Some(t) => self.engine.task_logs(&t.id, 20).await,
            None => vec![],
        };
        let now = self.now();
        let s = self.services.get_mut(name).expect("failing services exist");
        s.ended = Some(if timed_out {
            ServiceState::TimedOut
        } else {
            ServiceState::Failed
        });
        let layer = self.desired.layers[s.layer].name.clone();
        let short = s.spec.short_name.clone();
        let verb = if timed_out { "timed out" } else { "failed" };
        self.say(format!("{name}: {verb}: {reason}"));
        self.failures.push(Failure {
            layer,
            service: name.to_string(),
            reason,
            timed_out,
            task,
            logs,
            hint: format!(
                "what needs `{short}` was not started; the rest was deployed. Fix `{short}` and run `sprocketctl up` again (it continues from here). `docker service ps {name} --no-trunc` shows every task."
            ),
        });
        // A provisioning waiting for this datastore to answer stops waiting.
        if let Some(c) = self.cancels.get(name) {
            c.store(true, std::sync::atomic::Ordering::Relaxed);
        }
        let blocked = self
            .schedule
            .fail(&Step::Service(name.to_string()), timed_out, now);
        self.say_blocked(&blocked);
    }

    fn say_blocked(&self, blocked: &[Step]) {
        for b in blocked {
            if let StepState::NotStarted { because } = self.schedule.state(b) {
                self.say(format!("{b}: not started: {because}"));
            }
        }
    }

    fn background_done(&mut self, r: Background) {
        match r {
            Background::Vault(r) => self.vault_done(*r),
            Background::Provision(service, r) => self.provision_done(service, *r),
        }
    }

    fn provision_done(&mut self, service: String, r: Result<ProvisionReport, String>) {
        let now = self.now();
        let step = Step::Provision(service.clone());
        let pr = self
            .desired
            .provisions
            .iter()
            .find(|p| p.service == service)
            .expect("a provisioning step only for a desired datastore");
        match r {
            Ok(report) => {
                if report.ran {
                    self.say(format!(
                        "{}: logins provisioned in {:.1}s",
                        pr.step_name(),
                        report.seconds
                    ));
                }
                self.provisioned.push(report);
                self.schedule.healthy(&step, now);
            }
            Err(_)
                if self
                    .services
                    .get(&service)
                    .is_some_and(|s| s.ended.is_some()) =>
            {
                // Cancelled because its datastore failed: that failure is the one reported.
                self.schedule.fail(&step, false, now);
            }
            Err(reason) => {
                self.say(format!(
                    "{}: provisioning failed: {}",
                    pr.step_name(),
                    reason.lines().next().unwrap_or_default()
                ));
                self.step_failed.push(pr.layer.clone());
                self.failures.push(Failure {
                    layer: pr.layer.clone(),
                    service: pr.datastore.clone(),
                    reason,
                    timed_out: false,
                    task: None,
                    logs: vec![],
                    hint: format!(
                        "what logs in to `{}` was not started; fix the cause and run `sprocketctl up` again (provisioning is idempotent)",
                        pr.datastore
                    ),
                });
                let blocked = self.schedule.fail(&step, false, now);
                self.say_blocked(&blocked);
            }
        }
    }

    fn vault_done(&mut self, r: Result<VaultDone, String>) {
        let now = self.now();
        match r {
            Ok(done) => {
                self.refs.secrets.extend(done.refs.secrets);
                self.vault_current = done.current;
                self.vault_report = Some(done.report);
                self.schedule.healthy(&Step::Vault, now);
                self.say("vault: ready");
            }
            Err(reason) => {
                let service = self
                    .opts
                    .vault
                    .as_ref()
                    .map(|v| v.config.service.clone())
                    .unwrap_or_default();
                let layer = self
                    .desired
                    .layers
                    .iter()
                    .find(|l| l.services.iter().any(|s| s.short_name == service))
                    .map(|l| l.name.clone())
                    .unwrap_or_default();
                // The whole reason (with its fix) is in the report; progress gets its gist.
                self.say(format!(
                    "vault: failed: {}",
                    reason.lines().next().unwrap_or_default()
                ));
                self.step_failed.push(layer.clone());
                self.failures.push(Failure {
                    layer,
                    service,
                    reason,
                    timed_out: false,
                    task: None,
                    logs: vec![],
                    hint: "what needs Vault was not started; fix Vault (`sprocketctl vault status`) and run `sprocketctl up` again".into(),
                });
                let blocked = self.schedule.fail(&Step::Vault, false, now);
                self.say_blocked(&blocked);
            }
        }
    }
}
