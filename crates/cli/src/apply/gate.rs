//! The health gate's verdict on one service at one moment, from the pure [`assess`]ment of its
//! tasks and Swarm's update state. No I/O: the executor reads the tasks, this decides.
//!
//! [`assess`]: sprocket_docker::assess

use sprocket_docker::Assessment;

#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// Not there yet; keep watching.
    Waiting,
    /// As many tasks run healthy as the service wants (old ones may still be stopping).
    Healthy,
    /// It will not become healthy by waiting: a task failed, or Swarm rolled the update back.
    Failed(String),
    /// The deadline passed first.
    TimedOut(String),
}

/// Swarm's own view of an update we made: `rollback_*` or `paused` means it gave up on it.
pub fn update_abandoned(update_state: Option<&str>) -> bool {
    update_state.is_some_and(|s| s.starts_with("rollback") || s == "paused")
}

/// A counted task that failed, or an update Swarm gave up on: `when` says at which stage.
fn given_up(
    a: &Assessment,
    update_state: Option<&str>,
    update_message: &str,
    when: &str,
) -> Option<Verdict> {
    if let Some(t) = &a.failed {
        return Some(Verdict::Failed(format!(
            "task {} {}{when}: {}",
            &t.id[..t.id.len().min(12)],
            t.state,
            t.error.clone().or(t.message.clone()).unwrap_or_default()
        )));
    }
    update_abandoned(update_state).then(|| {
        Verdict::Failed(format!(
            "Swarm {} the update{when}: {update_message}",
            update_state.unwrap_or_default()
        ))
    })
}

/// Until healthy: failure first (a failed task is news even past the deadline), then health,
/// then the deadline.
pub fn verdict(
    a: &Assessment,
    update_state: Option<&str>,
    update_message: Option<&str>,
    waited: f64,
    timeout: f64,
) -> Verdict {
    if let Some(failed) = given_up(a, update_state, update_message.unwrap_or_default(), "") {
        return failed;
    }
    if a.healthy() {
        return Verdict::Healthy;
    }
    if waited >= timeout {
        let state = a
            .newest
            .as_ref()
            .map(|t| format!("{} ({})", t.state, t.message.clone().unwrap_or_default()))
            .unwrap_or_else(|| "no task scheduled".into());
        return Verdict::TimedOut(format!(
            "not healthy after {waited:.0}s: {}/{} running; newest task {state}",
            a.running, a.want
        ));
    }
    Verdict::Waiting
}

/// After healthy, for a service this deploy changed: done when no task of an earlier version
/// is left alive — unless a new task failed meanwhile, or Swarm gave up on the update.
pub fn converge_verdict(
    a: &Assessment,
    update_state: Option<&str>,
    waited: f64,
    timeout: f64,
) -> Verdict {
    if let Some(failed) = given_up(a, update_state, "", " after it was healthy") {
        return failed;
    }
    if a.leftover == 0 {
        Verdict::Healthy
    } else if waited >= timeout {
        Verdict::TimedOut(format!(
            "healthy, but {} task(s) of the previous version still running after {waited:.0}s (their stop grace period, or a stop signal the image ignores)",
            a.leftover
        ))
    } else {
        Verdict::Waiting
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sprocket_docker::TaskInfo;

    fn task(state: &str) -> TaskInfo {
        TaskInfo {
            id: "0123456789abcdef".into(),
            slot: Some(1),
            node: None,
            state: state.into(),
            desired_state: "running".into(),
            created_at: String::new(),
            message: Some("started".into()),
            error: Some("exit 3".into()),
            exit_code: Some(3),
            deploy_id: Some("d".into()),
            container_id: None,
            secret_ids: Vec::new(),
        }
    }

    fn a(running: usize, want: usize) -> Assessment {
        Assessment {
            running,
            want,
            failed: None,
            newest: Some(task("starting")),
            leftover: 0,
        }
    }

    #[test]
    fn health_failure_rollback_and_deadline() {
        assert_eq!(verdict(&a(0, 1), None, None, 1.0, 300.0), Verdict::Waiting);
        assert_eq!(verdict(&a(1, 1), None, None, 1.0, 300.0), Verdict::Healthy);
        let t = verdict(&a(0, 1), None, None, 300.0, 300.0);
        assert!(
            matches!(&t, Verdict::TimedOut(m) if m.contains("0/1 running") && m.contains("newest task starting")),
            "{t:?}"
        );
        let mut failed = a(0, 1);
        failed.failed = Some(task("failed"));
        // A failure is reported as such even when the deadline has passed too.
        let f = verdict(&failed, None, None, 999.0, 300.0);
        assert_eq!(
            f,
            Verdict::Failed("task 0123456789ab failed: exit 3".into())
        );
        let r = verdict(
            &a(1, 1),
            Some("rollback_completed"),
            Some("update rolled back due to failure"),
            5.0,
            300.0,
        );
        assert!(matches!(r, Verdict::Failed(m) if m.contains("rollback_completed")));
        assert!(matches!(
            verdict(&a(0, 1), Some("paused"), None, 1.0, 300.0),
            Verdict::Failed(_)
        ));
        assert_eq!(
            verdict(&a(1, 1), Some("updating"), None, 1.0, 300.0),
            Verdict::Healthy
        );
    }

    #[test]
    fn convergence_waits_for_old_tasks_within_the_deadline() {
        let mut x = a(1, 1);
        x.leftover = 1;
        assert_eq!(converge_verdict(&x, None, 3.0, 300.0), Verdict::Waiting);
        assert!(
            matches!(converge_verdict(&x, None, 300.0, 300.0), Verdict::TimedOut(m) if m.contains("1 task(s) of the previous version"))
        );
        // Swarm rolled back while the old task was still stopping: not converged, failed.
        assert!(matches!(
            converge_verdict(&x, Some("rollback_started"), 3.0, 300.0),
            Verdict::Failed(_)
        ));
        x.leftover = 0;
        assert_eq!(converge_verdict(&x, None, 3.0, 300.0), Verdict::Healthy);
        // The new task died after it was healthy: a failure, even with the old one gone.
        x.failed = Some(task("failed"));
        assert!(
            matches!(converge_verdict(&x, None, 3.0, 300.0), Verdict::Failed(m) if m.contains("after it was healthy"))
        );
    }
}
