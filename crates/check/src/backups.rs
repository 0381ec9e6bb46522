//! The scheduled backups as the agent sees them: the runner (`<namespace>_backup-schedule`)
//! says what it knows of itself on its status port — times and outcomes, never a value — and
//! the agent judges it every round like `check` judges the bucket: the newest complete backup's
//! age against the runbook's 24 h recovery point, a scheduled run that failed. The agent reads
//! no bucket: the runner, which must list it anyway to make up a missed run, does.

use crate::judge::{self, Severity};
use serde::{Deserialize, Serialize};

/// What the runner answers on `GET /` of its status port.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunnerStatus {
    /// When it started (seconds since the epoch, UTC).
    pub began: i64,
    /// The daily time, minutes after 00:00 UTC.
    pub at_minute: u32,
    /// The start of the newest complete backup in the bucket, as last listed or taken.
    pub newest_complete: Option<i64>,
    /// When it takes the next one.
    pub next_at: Option<i64>,
    /// The start of the backup it is taking now.
    pub running: Option<i64>,
    /// Its last run's outcome.
    pub last: Option<LastRun>,
    /// Why the bucket could not be listed the last time it tried.
    pub listing_error: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LastRun {
    pub id: String,
    pub started: i64,
    pub ended: i64,
    pub ok: bool,
    /// The component that failed.
    pub failed: Option<String>,
    /// Why (the task's own words: they never hold a value).
    pub error: Option<String>,
}

/// `2026-12-04 02:00 UTC`.
fn at(t: i64) -> String {
    let (y, mo, d, h, mi, _) = sprocket_spec::values::utc(t);
    format!("{y:04}-{mo:02}-{d:02} {h:02}:{mi:02} UTC")
}

/// The runner's state at `now`, judged: late (over a day and its grace: warning; two days:
/// critical) or a failed run since the newest backup (warning) is an alert; no backup yet from
/// a runner younger than a day is not (its first daily time has not come).
pub fn judge(s: &RunnerStatus, now: i64) -> (Severity, String) {
    // A failed run since the newest complete backup (a later success makes it history).
    let failed = s
        .last
        .as_ref()
        .filter(|l| !l.ok && s.newest_complete.is_none_or(|n| n < l.started));
    let age = s.newest_complete.map(|t| (now - t).max(0));
    let (mut sev, mut text) = judge::backup(age, false, now - s.began > 86_400);
    if sev == Severity::Info {
        sev = Severity::Ok;
    }
    if let Some(l) = failed {
        sev = sev.max(Severity::Warning);
        text.push_str(&format!(
            "; the scheduled backup {} failed{}: {}",
            l.id,
            l.failed
                .as_deref()
                .map(|c| format!(" at `{c}`"))
                .unwrap_or_default(),
            l.error.as_deref().unwrap_or("no reason given")
        ));
    }
    if let Some(e) = &s.listing_error {
        sev = sev.max(Severity::Warning);
        text.push_str(&format!("; the runner cannot list the bucket: {e}"));
    }
    match (s.running, s.next_at) {
        (Some(r), _) => text.push_str(&format!("; one is being taken since {}", at(r))),
        (None, Some(n)) => text.push_str(&format!("; next at {}", at(n))),
        (None, None) => {}
    }
    (sev, text)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_796_263_200; // 2026-12-03T02:00:00Z
    const H: i64 = 3600;

    fn runner(newest: Option<i64>) -> RunnerStatus {
        RunnerStatus {
            began: NOW - 3 * 86_400,
            at_minute: 120,
            newest_complete: newest,
            next_at: Some(NOW + 24 * H),
            ..Default::default()
        }
    }

    #[test]
    fn a_fresh_backup_is_ok_a_late_one_warns_then_is_critical() {
        let (sev, text) = judge(&runner(Some(NOW - 2 * H)), NOW);
        assert_eq!(sev, Severity::Ok, "{text}");
        assert!(text.contains("2 h 0 min old"), "{text}");
        assert!(text.ends_with("next at 2026-12-04 02:00 UTC"), "{text}");
        assert_eq!(judge(&runner(Some(NOW - 27 * H)), NOW).0, Severity::Warning);
        assert_eq!(
            judge(&runner(Some(NOW - 51 * H)), NOW).0,
            Severity::Critical
        );
        // None at all from a runner up for days: late.
        assert_eq!(judge(&runner(None), NOW).0, Severity::Warning);
    }

    #[test]
    fn no_backup_yet_from_a_new_runner_is_no_alert() {
        let mut s = runner(None);
        s.began = NOW - H;
        let (sev, text) = judge(&s, NOW);
        assert_eq!(sev, Severity::Ok, "{text}");
        assert!(text.starts_with("no backup yet"), "{text}");
    }

    #[test]
    fn a_failed_run_or_an_unlisted_bucket_is_said_and_warns() {
        let mut s = runner(Some(NOW - 26 * H));
        s.last = Some(LastRun {
            id: "20261203T000000Z-a1b2".into(),
            started: NOW - 2 * H,
            ended: NOW - 2 * H + 30,
            ok: false,
            failed: Some("postgres:sprocket_core".into()),
            error: Some("connection refused".into()),
        });
        let (sev, text) = judge(&s, NOW);
        assert_eq!(sev, Severity::Warning);
        assert!(
            text.contains("the scheduled backup 20261203T000000Z-a1b2 failed at `postgres:sprocket_core`: connection refused"),
            "{text}"
        );
        // The operator's `backup` after it: the failure is history.
        s.newest_complete = Some(NOW - H);
        assert_eq!(judge(&s, NOW).0, Severity::Ok);
        let mut s = runner(Some(NOW - 2 * H));
        s.listing_error = Some("403 Forbidden".into());
        s.running = Some(NOW - 60);
        let (sev, text) = judge(&s, NOW);
        assert_eq!(sev, Severity::Warning);
        assert!(
            text.contains("cannot list the bucket: 403 Forbidden"),
            "{text}"
        );
        assert!(
            text.ends_with("being taken since 2026-12-03 01:59 UTC"),
            "{text}"
        );
    }
}
