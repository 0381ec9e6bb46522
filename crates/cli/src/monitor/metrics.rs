//! The watch's metrics on the agent's `/metrics`: each finding of the last round, rounds,
//! alerts firing, failed notifications, and the scheduled backups' age and last outcome.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use sprocket_check::backups::RunnerStatus;
use sprocket_check::Severity;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CheckLabels {
    pub kind: String,
    pub subject: String,
    pub target: String,
}

/// The watch's metrics, registered in the agent's registry.
#[derive(Clone)]
pub struct WatchMetrics {
    /// 0 ok, 1 info, 2 warning, 3 critical, per finding of the last round.
    pub status: Family<CheckLabels, Gauge>,
    pub rounds: Counter,
    pub firing: Gauge,
    pub notifications_failed: Counter,
    /// The newest complete backup's age, as the scheduled runner last said (-1: none yet).
    pub backup_age: Gauge,
    /// Whether the runner's last run completed (1), failed (0); -1 before its first.
    pub backup_last_ok: Gauge,
}

impl WatchMetrics {
    pub fn register(r: &mut Registry) -> WatchMetrics {
        let m = WatchMetrics {
            status: Family::default(),
            rounds: Counter::default(),
            firing: Gauge::default(),
            notifications_failed: Counter::default(),
            backup_age: Gauge::default(),
            backup_last_ok: Gauge::default(),
        };
        m.backup_age.set(-1);
        m.backup_last_ok.set(-1);
        r.register(
            "check_status",
            "Each check of the last round: 0 ok, 1 info, 2 warning, 3 critical",
            m.status.clone(),
        );
        r.register("check_rounds", "Rounds of checks", m.rounds.clone());
        r.register("alerts_firing", "Alerts firing now", m.firing.clone());
        r.register(
            "alert_notifications_failed",
            "Webhook or Alertmanager posts that failed",
            m.notifications_failed.clone(),
        );
        r.register(
            "backup_age_seconds",
            "Age of the newest complete backup, as the scheduled backups' runner last listed or took it (-1: none)",
            m.backup_age.clone(),
        );
        r.register(
            "backup_last_run_ok",
            "Whether the runner's last scheduled backup completed: 1 yes, 0 no, -1 none run yet",
            m.backup_last_ok.clone(),
        );
        m
    }

    /// The backup gauges from what the runner said.
    pub(super) fn backups(&self, s: &RunnerStatus, now: i64) {
        self.backup_age
            .set(s.newest_complete.map_or(-1, |t| (now - t).max(0)));
        self.backup_last_ok
            .set(s.last.as_ref().map_or(-1, |l| i64::from(l.ok)));
    }
}

pub(super) fn level(s: Severity) -> i64 {
    match s {
        Severity::Ok => 0,
        Severity::Info => 1,
        Severity::Warning => 2,
        Severity::Critical => 3,
    }
}
