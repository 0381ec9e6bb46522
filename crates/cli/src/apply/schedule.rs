//! The scheduler's decisions, apart from any I/O: given the dependency graph and what has
//! happened so far (started, healthy, failed), which steps may start now, which must wait, and
//! which will never start and why. The executor ([`super::run`]) only carries these out.
//!
//! A step starts as soon as everything it needs is healthy, and not later. A failure stops
//! exactly the steps that need the failed one, directly or not; everything else goes on.

use sprocket_desired::graph::{Graph, NeedKind, Step};
use std::collections::BTreeMap;

/// Where a step stands. Times are seconds since the deploy began.
#[derive(Debug, Clone, PartialEq)]
pub enum StepState {
    /// Some need is not healthy yet.
    Waiting,
    /// Started; its health is being watched.
    Running {
        since: f64,
    },
    Healthy {
        since: f64,
        at: f64,
    },
    Failed {
        since: f64,
        timed_out: bool,
    },
    /// Will not start this run: `because` names the step that failed (or was skipped) upstream.
    NotStarted {
        because: String,
    },
    /// Left out on purpose (e.g. the unseal agent while no keyring can be opened): not a
    /// failure, but what needs it does not start either.
    Skipped {
        why: String,
    },
}

impl StepState {
    pub fn is_healthy(&self) -> bool {
        matches!(self, StepState::Healthy { .. })
    }
}

#[derive(Debug)]
pub struct Schedule {
    graph: Graph,
    states: BTreeMap<Step, StepState>,
}

impl Schedule {
    pub fn new(graph: Graph) -> Schedule {
        let states = graph
            .needs
            .keys()
            .map(|s| (s.clone(), StepState::Waiting))
            .collect();
        Schedule { graph, states }
    }

    pub fn state(&self, step: &Step) -> &StepState {
        self.states.get(step).unwrap_or(&StepState::Waiting)
    }

    /// Steps that may start now: waiting, with every need healthy. The Vault step first (it is
    /// the longest), then services in layer order.
    pub fn ready(&self) -> Vec<Step> {
        let mut out: Vec<Step> = self
            .states
            .iter()
            .filter(|(_, st)| **st == StepState::Waiting)
            .map(|(s, _)| s)
            .filter(|s| self.graph.needs_of(s).iter().all(|n| self.met(n)))
            .cloned()
            .collect();
        out.sort_by_key(|s| match s {
            Step::Vault => (0, String::new()),
            Step::Provision(n) => (0, n.clone()),
            Step::Service(n) => (1 + self.graph.layer.get(n).copied().unwrap_or(0), n.clone()),
        });
        out
    }

    /// Whether a need is met: what it is on is healthy (or, for [`NeedKind::Started`], at least
    /// started).
    fn met(&self, n: &sprocket_desired::graph::Need) -> bool {
        let on = self.state(&n.on);
        on.is_healthy() || (n.kind == NeedKind::Started && matches!(on, StepState::Running { .. }))
    }

    pub fn start(&mut self, step: &Step, at: f64) {
        self.states
            .insert(step.clone(), StepState::Running { since: at });
    }

    pub fn healthy(&mut self, step: &Step, at: f64) {
        let since = self.since(step).unwrap_or(at);
        self.states
            .insert(step.clone(), StepState::Healthy { since, at });
    }

    /// Marks `step` failed; returns the steps that will therefore not start.
    pub fn fail(&mut self, step: &Step, timed_out: bool, at: f64) -> Vec<Step> {
        let since = self.since(step).unwrap_or(at);
        self.states
            .insert(step.clone(), StepState::Failed { since, timed_out });
        let verb = if timed_out { "timed out" } else { "failed" };
        self.block(step, format!("{step} {verb}"))
    }

    /// Leaves `step` out on purpose; returns the steps that will therefore not start.
    pub fn skip(&mut self, step: &Step, why: String) -> Vec<Step> {
        self.states
            .insert(step.clone(), StepState::Skipped { why: why.clone() });
        self.block(step, format!("{step} was not deployed ({why})"))
    }

    fn block(&mut self, step: &Step, because: String) -> Vec<Step> {
        let mut blocked = Vec::new();
        for d in self.graph.dependents(step) {
            if self.state(&d) == &StepState::Waiting {
                self.states.insert(
                    d.clone(),
                    StepState::NotStarted {
                        because: because.clone(),
                    },
                );
                blocked.push(d);
            }
        }
        blocked
    }

    fn since(&self, step: &Step) -> Option<f64> {
        match self.state(step) {
            StepState::Running { since } | StepState::Healthy { since, .. } => Some(*since),
            _ => None,
        }
    }

    /// Nothing waits and nothing runs unsettled: every step is healthy, failed, not started or
    /// skipped.
    pub fn settled(&self) -> bool {
        self.states
            .values()
            .all(|s| !matches!(s, StepState::Waiting | StepState::Running { .. }))
    }

    /// The chain of steps that decided when the last one became healthy: from the last to
    /// finish, back through the need that became healthy last before it started.
    pub fn critical_path(&self) -> Vec<(Step, f64, f64)> {
        let done = |s: &Step| match self.state(s) {
            StepState::Healthy { since, at } => Some((*since, *at)),
            _ => None,
        };
        let mut path = Vec::new();
        let mut cur = self
            .states
            .keys()
            .filter_map(|s| done(s).map(|t| (s.clone(), t)))
            .max_by(|a, b| a.1 .1.total_cmp(&b.1 .1));
        while let Some((step, (since, at))) = cur {
            path.push((step.clone(), since, at));
            // A need on a started step counts by its start, any other by when it turned healthy.
            cur = self
                .graph
                .needs_of(&step)
                .iter()
                .filter_map(|n| {
                    let t = done(&n.on)?;
                    let key = if n.kind == NeedKind::Started {
                        t.0
                    } else {
                        t.1
                    };
                    (key <= since + 1e-9).then(|| (n.on.clone(), t))
                })
                .max_by(|a, b| a.1 .1.total_cmp(&b.1 .1));
        }
        path.reverse();
        path
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sprocket_desired::graph::{Need, NeedKind};

    fn svc(n: &str) -> Step {
        Step::Service(n.into())
    }

    /// traefik, proxy (layer 0); vault (layer 0); redis, rabbitmq (1); agent needs the Vault
    /// step (0); demo uses redis + rabbitmq and reads Vault (2); web uses demo (2).
    fn platform() -> Graph {
        let mut g = Graph::default();
        let need = |on: Step, kind| Need { on, kind };
        for (n, l) in [
            ("traefik", 0),
            ("proxy", 0),
            ("vault", 0),
            ("agent", 0),
            ("redis", 1),
            ("rabbitmq", 1),
            ("demo", 2),
            ("web", 2),
        ] {
            g.layer.insert(n.into(), l);
            g.needs.insert(svc(n), vec![]);
        }
        g.needs.insert(
            Step::Vault,
            vec![need(svc("vault"), NeedKind::VaultService)],
        );
        g.needs
            .insert(svc("agent"), vec![need(Step::Vault, NeedKind::Vault)]);
        g.needs.insert(
            svc("demo"),
            vec![
                need(svc("redis"), NeedKind::Uses),
                need(svc("rabbitmq"), NeedKind::Uses),
                need(Step::Vault, NeedKind::Vault),
            ],
        );
        g.needs
            .insert(svc("web"), vec![need(svc("demo"), NeedKind::Uses)]);
        g
    }

    fn names(steps: &[Step]) -> Vec<String> {
        steps.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn what_needs_nothing_starts_at_once_across_layers() {
        let s = Schedule::new(platform());
        assert_eq!(
            names(&s.ready()),
            ["proxy", "traefik", "vault", "rabbitmq", "redis"]
        );
    }

    #[test]
    fn a_service_starts_when_its_last_need_is_healthy_and_not_before() {
        let mut s = Schedule::new(platform());
        for st in s.ready() {
            s.start(&st, 0.0);
        }
        assert!(s.ready().is_empty(), "everything ready has started");
        s.healthy(&svc("traefik"), 1.0);
        s.healthy(&svc("redis"), 1.5);
        assert!(s.ready().is_empty(), "Vault not up; rabbitmq not healthy");
        s.healthy(&svc("vault"), 2.0);
        assert_eq!(names(&s.ready()), ["vault (init/unseal/configure)"]);
        s.start(&Step::Vault, 2.0);
        s.healthy(&svc("rabbitmq"), 9.0);
        assert!(
            s.ready().is_empty(),
            "demo also reads Vault, still configuring"
        );
        s.healthy(&Step::Vault, 9.5);
        assert_eq!(names(&s.ready()), ["agent", "demo"]);
        s.start(&svc("agent"), 9.5);
        s.start(&svc("demo"), 9.5);
        s.healthy(&svc("demo"), 11.0);
        assert_eq!(names(&s.ready()), ["web"]);
        assert!(!s.settled());
    }

    #[test]
    fn a_failure_stops_what_depends_on_it_and_nothing_else() {
        let mut s = Schedule::new(platform());
        for st in s.ready() {
            s.start(&st, 0.0);
        }
        let blocked = s.fail(&svc("rabbitmq"), false, 4.0);
        assert_eq!(names(&blocked), ["demo", "web"]);
        assert_eq!(
            s.state(&svc("web")),
            &StepState::NotStarted {
                because: "rabbitmq failed".into()
            }
        );
        // The rest goes on: Vault and its agent still start.
        s.healthy(&svc("traefik"), 1.0);
        s.healthy(&svc("vault"), 1.0);
        assert_eq!(names(&s.ready()), ["vault (init/unseal/configure)"]);
        s.start(&Step::Vault, 1.0);
        s.healthy(&Step::Vault, 5.0);
        assert_eq!(names(&s.ready()), ["agent"]);
        s.start(&svc("agent"), 5.0);
        s.healthy(&svc("agent"), 6.0);
        s.healthy(&svc("redis"), 1.0);
        s.healthy(&svc("proxy"), 1.0);
        assert!(s.settled());
    }

    #[test]
    fn a_timeout_and_a_skip_say_why_dependents_did_not_start() {
        let mut s = Schedule::new(platform());
        s.start(&svc("vault"), 0.0);
        s.fail(&svc("vault"), true, 300.0);
        assert_eq!(
            s.state(&svc("agent")),
            &StepState::NotStarted {
                because: "vault timed out".into()
            }
        );
        let mut s = Schedule::new(platform());
        let blocked = s.skip(&svc("demo"), "no keyring".into());
        assert_eq!(names(&blocked), ["web"]);
    }

    #[test]
    fn the_critical_path_is_the_chain_that_decided_the_total() {
        let mut s = Schedule::new(platform());
        for st in s.ready() {
            s.start(&st, 0.0);
        }
        s.healthy(&svc("traefik"), 1.0);
        s.healthy(&svc("proxy"), 0.5);
        s.healthy(&svc("redis"), 1.5);
        s.healthy(&svc("vault"), 2.0);
        s.start(&Step::Vault, 2.0);
        s.healthy(&svc("rabbitmq"), 9.0);
        s.healthy(&Step::Vault, 8.0);
        for st in s.ready() {
            s.start(&st, 9.0);
        }
        s.healthy(&svc("agent"), 10.0);
        s.healthy(&svc("demo"), 10.5);
        s.start(&svc("web"), 10.5);
        s.healthy(&svc("web"), 12.0);
        let path: Vec<String> = s
            .critical_path()
            .iter()
            .map(|(st, _, _)| st.to_string())
            .collect();
        assert_eq!(path, ["rabbitmq", "demo", "web"]);
    }

    /// The demo also logs in to RabbitMQ with a login its provisioning makes; the provisioning
    /// starts beside RabbitMQ's boot.
    fn with_provisioning() -> Graph {
        let mut g = platform();
        let p = Step::Provision("rabbitmq".into());
        g.needs.insert(
            p.clone(),
            vec![Need {
                on: svc("rabbitmq"),
                kind: NeedKind::Started,
            }],
        );
        g.needs.get_mut(&svc("demo")).unwrap().push(Need {
            on: p,
            kind: NeedKind::Provision,
        });
        g
    }

    #[test]
    fn a_provisioning_starts_with_its_datastore_and_its_consumer_waits_for_both() {
        let p = Step::Provision("rabbitmq".into());
        let mut s = Schedule::new(with_provisioning());
        assert!(!s.ready().contains(&p), "not before RabbitMQ starts");
        for st in s.ready() {
            s.start(&st, 0.0);
        }
        assert_eq!(
            s.ready(),
            std::slice::from_ref(&p),
            "RabbitMQ started: provisioning may"
        );
        s.start(&p, 0.1);
        for n in ["vault", "redis", "traefik", "proxy"] {
            s.healthy(&svc(n), 1.0);
        }
        s.start(&Step::Vault, 1.0);
        s.healthy(&Step::Vault, 2.0);
        s.start(&svc("agent"), 2.0);
        s.healthy(&svc("rabbitmq"), 9.0);
        assert!(
            !s.ready().contains(&svc("demo")),
            "its login is not made yet"
        );
        s.healthy(&p, 9.3);
        assert_eq!(s.ready(), [svc("demo")]);
        s.start(&svc("demo"), 9.3);
        s.healthy(&svc("demo"), 11.0);
        s.healthy(&svc("agent"), 3.0);
        s.start(&svc("web"), 11.0);
        s.healthy(&svc("web"), 12.0);
        // The path runs through RabbitMQ (its boot), its provisioning, then the demo.
        let path: Vec<String> = s
            .critical_path()
            .iter()
            .map(|(st, _, _)| st.to_string())
            .collect();
        assert_eq!(
            path,
            ["rabbitmq", "rabbitmq (provision logins)", "demo", "web"]
        );
    }

    #[test]
    fn a_failed_datastore_stops_its_consumers_and_a_failed_provisioning_too() {
        let p = Step::Provision("rabbitmq".into());
        let mut s = Schedule::new(with_provisioning());
        for st in s.ready() {
            s.start(&st, 0.0);
        }
        s.start(&p, 0.1);
        let blocked = s.fail(&p, false, 3.0);
        assert_eq!(names(&blocked), ["demo", "web"]);
        assert_eq!(
            s.state(&svc("demo")),
            &StepState::NotStarted {
                because: "rabbitmq (provision logins) failed".into()
            }
        );
    }
}
