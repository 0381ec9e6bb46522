//! Tasks as the health gate and `status` see them, and the one pure decision both make from
//! them: how many tasks run healthy, how many the service wants, whether one failed, and how many
//! tasks of an earlier version still run. Pure, so it is tested without a swarm.

use serde::Serialize;
use sprocket_spec::model::Mode;
use std::collections::HashSet;

/// One task of a service, as `up` follows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TaskInfo {
    pub id: String,
    pub slot: Option<i64>,
    pub node: Option<String>,
    /// `new` … `running`, `complete`, `failed`, `rejected`, `shutdown`.
    pub state: String,
    pub desired_state: String,
    /// When Swarm created it (RFC 3339 as the engine writes it: the fraction's trailing zeros
    /// dropped, so order by [`time_key`], not by the text).
    pub created_at: String,
    pub message: Option<String>,
    pub error: Option<String>,
    pub exit_code: Option<i64>,
    pub deploy_id: Option<String>,
    pub container_id: Option<String>,
    /// Ids of the Docker secrets its container mounts (the versions it really has).
    pub secret_ids: Vec<String>,
}

impl TaskInfo {
    /// Swarm reports a task with a health check as `running` only once it is healthy.
    pub fn is_running(&self) -> bool {
        self.state == "running"
    }
    /// A task that ended badly: it will never become healthy.
    pub fn has_failed(&self) -> bool {
        matches!(self.state.as_str(), "failed" | "rejected" | "orphaned")
            || (self.state == "complete" && self.desired_state == "running")
    }
    /// Failed for a reason of the engine's, not of the service's: the container never started
    /// because a mount was busy (dockerd 20.10 sometimes cannot remount a fresh secrets/configs
    /// tmpfs read-only: "device or resource busy"), or its overlay network's sandbox could not
    /// be joined (a VXLAN interface of a just-removed network still there: "network sandbox
    /// join failed: … file exists"). Swarm starts another task after its restart delay; waiting
    /// for that one, within the deadline, is the honest verdict.
    pub fn failed_transiently(&self) -> bool {
        self.has_failed()
            && self.error.as_deref().is_some_and(|e| {
                e.contains("device or resource busy") || e.contains("network sandbox join failed")
            })
    }
    /// A task whose container may still run (or is about to): not yet at a final state.
    pub fn is_live(&self) -> bool {
        !matches!(
            self.state.as_str(),
            "complete" | "shutdown" | "failed" | "rejected" | "remove" | "orphaned"
        )
    }
}

/// A key that orders the engine's timestamps in time: `…:05Z`, `…:05.17Z` and `…:05.171Z` are
/// compared as seconds and nanoseconds, not as text.
pub fn time_key(ts: &str) -> (String, u32) {
    let ts = ts.trim_end_matches('Z');
    match ts.split_once('.') {
        Some((secs, frac)) => {
            let digits: String = frac
                .chars()
                .take_while(char::is_ascii_digit)
                .take(9)
                .collect();
            (
                secs.to_string(),
                format!("{digits:0<9}").parse().unwrap_or(0),
            )
        }
        None => (ts.to_string(), 0),
    }
}

/// Which of a service's tasks count.
#[derive(Debug, Clone, Copy)]
pub enum Tracking<'a> {
    /// The service was created or updated by this deploy: only tasks carrying its deploy id
    /// count, and any other task still alive is an old one that must go.
    ThisDeploy(&'a str),
    /// The service was left as it is: its current tasks count, and a failure among the tasks
    /// in `known` (seen before this run looked) is history, not news.
    Current(&'a HashSet<String>),
}

/// What the tasks of one service say, at one moment.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Assessment {
    /// Counted tasks that run (and pass their health check).
    pub running: usize,
    /// Tasks the service wants: its replicas, or one per eligible node for a global service.
    pub want: usize,
    /// A counted task that ended badly: the service will not become healthy by waiting.
    pub failed: Option<TaskInfo>,
    /// The newest counted task (for a timeout's message).
    pub newest: Option<TaskInfo>,
    /// Tasks of an earlier version that are still alive (they make `docker service ls` show
    /// `2/1`); always 0 with [`Tracking::Current`].
    pub leftover: usize,
}

impl Assessment {
    /// As many tasks running as wanted. A service scaled to no replica on purpose (an app of
    /// a drill's scratch copy) is healthy with none; a global one always wants at least one.
    pub fn healthy(&self) -> bool {
        self.running >= self.want
    }
    /// Healthy, and nothing of an earlier version left running.
    pub fn converged(&self) -> bool {
        self.healthy() && self.leftover == 0
    }
}

/// The gate's and `status`'s reading of a service's tasks.
pub fn assess(mode: &Mode, tasks: &[TaskInfo], tracking: Tracking) -> Assessment {
    let (counted, failed, leftover): (Vec<&TaskInfo>, Option<&TaskInfo>, usize) = match tracking {
        Tracking::ThisDeploy(id) => {
            let ours: Vec<&TaskInfo> = tasks
                .iter()
                .filter(|t| t.deploy_id.as_deref() == Some(id))
                .collect();
            let failed = ours
                .iter()
                .find(|t| t.has_failed() && !t.failed_transiently())
                .copied();
            let leftover = tasks
                .iter()
                .filter(|t| t.deploy_id.as_deref() != Some(id) && t.is_live())
                .count();
            (ours, failed, leftover)
        }
        Tracking::Current(known) => {
            let current: Vec<&TaskInfo> = tasks
                .iter()
                .filter(|t| t.desired_state == "running")
                .collect();
            let failed = tasks
                .iter()
                .find(|t| t.has_failed() && !t.failed_transiently() && !known.contains(&t.id));
            (current, failed, 0)
        }
    };
    let want = match mode {
        Mode::Replicated(n) => *n as usize,
        // One per eligible node: the scheduler's own count of tasks it wants running.
        Mode::Global => counted
            .iter()
            .filter(|t| t.desired_state == "running")
            .count()
            .max(1),
    };
    let running = counted
        .iter()
        .filter(|t| t.is_running() && t.desired_state == "running")
        .count();
    Assessment {
        running,
        want,
        failed: failed.cloned(),
        newest: counted.last().map(|t| (*t).clone()),
        leftover,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_service_scaled_to_no_replica_is_healthy_with_none() {
        let a = assess(&Mode::Replicated(0), &[], Tracking::ThisDeploy("d1"));
        assert!(a.healthy() && a.converged(), "{a:?}");
        let a = assess(&Mode::Replicated(1), &[], Tracking::ThisDeploy("d1"));
        assert!(!a.healthy());
        let a = assess(&Mode::Global, &[], Tracking::ThisDeploy("d1"));
        assert!(
            !a.healthy(),
            "a global service wants one per node, at least one"
        );
    }

    fn task(id: &str, state: &str, desired: &str, deploy: Option<&str>) -> TaskInfo {
        TaskInfo {
            id: id.into(),
            slot: Some(1),
            node: None,
            state: state.into(),
            desired_state: desired.into(),
            created_at: String::new(),
            message: None,
            error: None,
            exit_code: None,
            deploy_id: deploy.map(Into::into),
            container_id: None,
            secret_ids: Vec::new(),
        }
    }

    /// The engine's busy-mount and network-sandbox failures are not the service's: the gate
    /// waits for Swarm's next task (within the deadline); any other failure stops it at once.
    #[test]
    fn a_busy_mount_is_waited_out_other_failures_are_not() {
        let mut busy = task("a", "failed", "shutdown", Some("d1"));
        busy.error = Some("starting container failed: unable to remount dir as readonly: mount tmpfs:/var/lib/docker/containers/x/mounts/secrets, flags: 0x21, data: uid=0,gid=0: device or resource busy".into());
        let next = task("b", "starting", "running", Some("d1"));
        let a = assess(
            &Mode::Replicated(1),
            &[busy.clone(), next],
            Tracking::ThisDeploy("d1"),
        );
        assert!(a.failed.is_none(), "{a:?}");
        assert!(!a.healthy());
        // The same for an overlay network's sandbox the engine could not join (seen rejected).
        let mut vxlan = task("c", "rejected", "shutdown", Some("d1"));
        vxlan.error = Some("network sandbox join failed: subnet sandbox join failed for \"10.1.13.0/24\": error creating vxlan interface: file exists".into());
        let a = assess(
            &Mode::Replicated(1),
            &[vxlan, task("d", "starting", "running", Some("d1"))],
            Tracking::ThisDeploy("d1"),
        );
        assert!(a.failed.is_none(), "{a:?}");
        let mut real = busy;
        real.error =
            Some("starting container failed: exec: \"bao\": executable file not found".into());
        let a = assess(&Mode::Replicated(1), &[real], Tracking::ThisDeploy("d1"));
        assert!(a.failed.is_some());
    }

    #[test]
    fn an_old_task_keeps_a_service_unconverged_until_it_stops() {
        // start-first update: the new task is healthy, the old one is told to shut down but
        // still runs (`docker service ls` shows 2/1).
        let mut tasks = vec![
            task("old", "running", "shutdown", Some("d1")),
            task("new", "running", "running", Some("d2")),
        ];
        let a = assess(&Mode::Replicated(1), &tasks, Tracking::ThisDeploy("d2"));
        assert!(a.healthy());
        assert_eq!(a.leftover, 1);
        assert!(!a.converged());
        tasks[0].state = "shutdown".into();
        let a = assess(&Mode::Replicated(1), &tasks, Tracking::ThisDeploy("d2"));
        assert!(a.converged());
    }

    #[test]
    fn an_old_tasks_count_or_health_is_never_this_deploys() {
        // The old task runs healthy (N/N), the new one is still starting: not healthy yet.
        let tasks = vec![
            task("old", "running", "running", Some("d1")),
            task("new", "starting", "running", Some("d2")),
        ];
        let a = assess(&Mode::Replicated(1), &tasks, Tracking::ThisDeploy("d2"));
        assert_eq!((a.running, a.want), (0, 1));
        assert!(!a.healthy());
        assert_eq!(a.newest.unwrap().id, "new");
    }

    #[test]
    fn a_failed_task_of_this_deploy_is_a_failure_an_old_one_is_not() {
        let tasks = vec![
            task("old", "failed", "shutdown", Some("d1")),
            task("new", "failed", "shutdown", Some("d2")),
        ];
        let a = assess(&Mode::Replicated(1), &tasks, Tracking::ThisDeploy("d2"));
        assert_eq!(a.failed.unwrap().id, "new");
        let a = assess(
            &Mode::Replicated(1),
            &tasks[..1],
            Tracking::ThisDeploy("d2"),
        );
        assert!(a.failed.is_none());
    }

    #[test]
    fn an_unchanged_service_ignores_failures_seen_before_the_run() {
        let known: HashSet<String> = ["t1".to_string()].into();
        let mut tasks = vec![
            task("t1", "failed", "shutdown", None),
            task("t2", "running", "running", None),
        ];
        let a = assess(&Mode::Replicated(1), &tasks, Tracking::Current(&known));
        assert!(a.failed.is_none() && a.converged());
        tasks.push(task("t3", "rejected", "shutdown", None));
        let a = assess(&Mode::Replicated(1), &tasks, Tracking::Current(&known));
        assert_eq!(a.failed.unwrap().id, "t3");
    }

    #[test]
    fn a_global_service_wants_one_task_per_node_the_scheduler_placed() {
        let tasks = vec![
            task("a", "running", "running", Some("d")),
            task("b", "starting", "running", Some("d")),
        ];
        let a = assess(&Mode::Global, &tasks, Tracking::ThisDeploy("d"));
        assert_eq!((a.running, a.want), (1, 2));
        let a = assess(&Mode::Global, &[], Tracking::ThisDeploy("d"));
        assert_eq!((a.running, a.want), (0, 1));
        assert!(!a.healthy());
    }

    #[test]
    fn engine_timestamps_order_in_time_not_as_text() {
        let mut v = [
            "2026-12-02T14:27:05.4Z",
            "2026-12-02T14:27:05Z",
            "2026-12-02T14:27:05.171Z",
            "2026-12-02T14:27:05.17Z",
        ];
        v.sort_by_key(|t| time_key(t));
        assert_eq!(
            v,
            [
                "2026-12-02T14:27:05Z",
                "2026-12-02T14:27:05.17Z",
                "2026-12-02T14:27:05.171Z",
                "2026-12-02T14:27:05.4Z"
            ]
        );
    }

    #[test]
    fn a_task_that_exits_while_it_should_run_has_failed() {
        let t = task("x", "complete", "running", Some("d"));
        assert!(t.has_failed() && !t.is_live());
        let t = task("x", "complete", "shutdown", Some("d"));
        assert!(!t.has_failed());
    }
}
