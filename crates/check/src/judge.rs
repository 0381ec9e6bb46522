//! The runbook's thresholds, as the one place `check` and the agent judge a finding.

use serde::{Deserialize, Serialize};

/// How bad a finding is. Ordered: the worst finding sets `check`'s exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Ok,
    /// Worth knowing, nothing to do yet (a certificate under 30 days, resources over 70 %).
    Info,
    /// Degraded: a replica missing, slow answers, restarts, resources over 85 %.
    Warning,
    /// Down or about to be: no replica, a route that fails, a datastore unreachable, an
    /// isolation broken, a certificate under 7 days.
    Critical,
}

impl Severity {
    pub fn name(self) -> &'static str {
        match self {
            Severity::Ok => "ok",
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Critical => "critical",
        }
    }
}

/// Replicas running against those wanted: none is critical, some missing a warning.
pub fn replicas(running: usize, desired: usize) -> Severity {
    if running >= desired {
        Severity::Ok
    } else if running == 0 {
        Severity::Critical
    } else {
        Severity::Warning
    }
}

/// The runbook: fewer than 3 restarts per service per day is normal.
pub const RESTARTS_PER_DAY: usize = 3;

pub fn restarts(in_24h: usize) -> Severity {
    if in_24h >= RESTARTS_PER_DAY {
        Severity::Warning
    } else {
        Severity::Ok
    }
}

/// The runbook's response times: p95 under 500 ms is the target, over 800 ms a warning, over
/// 2 s critical. One probe is one sample, so it is judged against the bands, not the target.
pub const LATENCY_WARNING_MS: u64 = 800;
pub const LATENCY_CRITICAL_MS: u64 = 2000;

pub fn latency(ms: u64) -> Severity {
    if ms > LATENCY_CRITICAL_MS {
        Severity::Critical
    } else if ms > LATENCY_WARNING_MS {
        Severity::Warning
    } else {
        Severity::Ok
    }
}

/// What answered a route's probe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// An HTTP status; `edge_404`: the edge router's own "404 page not found" (no router took
    /// the request), not the app's.
    Status { code: u16, edge_404: bool },
    /// No HTTP answer at all (refused, reset, timed out, TLS failed).
    Failed(String),
}

/// A route answers when the service behind it answers anything but a server error: a 401,
/// 403 or a redirect to a login is a gated route working; 502/503/504 is the edge router
/// saying the service behind it is down; its own 404 means no router took the host.
pub fn route(answer: &Answer, ms: u64) -> (Severity, String) {
    match answer {
        Answer::Failed(e) => (Severity::Critical, format!("no answer: {e}")),
        Answer::Status {
            code: 404,
            edge_404: true,
        } => (
            Severity::Critical,
            "404 from the edge router: no router takes this host and path".into(),
        ),
        Answer::Status { code, .. } if *code >= 500 => {
            let why = match code {
                502 => " (the edge router cannot reach the service)",
                503 => " (no healthy task behind the route)",
                504 => " (the service did not answer in time)",
                _ => "",
            };
            (Severity::Critical, format!("{code}{why}"))
        }
        Answer::Status { code, .. } => {
            let s = latency(ms);
            let detail = match s {
                Severity::Ok => format!("{code} in {ms} ms"),
                _ => format!(
                    "{code} in {ms} ms (over {} ms)",
                    if s == Severity::Critical {
                        LATENCY_CRITICAL_MS
                    } else {
                        LATENCY_WARNING_MS
                    }
                ),
            };
            (s, detail)
        }
    }
}

/// An unknown host must get the edge router's 404: anything else means a catch-all router
/// serves hosts the spec does not name.
pub fn unknown_host(answer: &Answer) -> (Severity, String) {
    match answer {
        Answer::Status {
            code: 404,
            edge_404: true,
        } => (Severity::Ok, "404 from the edge router".into()),
        Answer::Status { code, .. } => (
            Severity::Warning,
            format!("{code}: a router answers hosts the spec does not name (a catch-all rule?)"),
        ),
        Answer::Failed(e) => (
            Severity::Critical,
            format!("the edge router does not answer: {e}"),
        ),
    }
}

/// Bands of a resource's use, in percent: over `info`, `warning`, `critical`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bands {
    pub info: u8,
    pub warning: u8,
    pub critical: u8,
}

/// The runbook's CPU and memory bands: 70 / 85 / 90 %.
pub const CPU_MEMORY: Bands = Bands {
    info: 70,
    warning: 85,
    critical: 90,
};
/// The runbook's disk bands: 60 / 80 / 90 %.
pub const DISK: Bands = Bands {
    info: 60,
    warning: 80,
    critical: 90,
};

pub fn usage(percent: f64, b: Bands) -> Severity {
    if percent > b.critical as f64 {
        Severity::Critical
    } else if percent > b.warning as f64 {
        Severity::Warning
    } else if percent > b.info as f64 {
        Severity::Info
    } else {
        Severity::Ok
    }
}

/// A certificate's days left: under 7 (or expired) critical, under 30 info.
pub fn certificate(days_left: i64) -> Severity {
    if days_left < 7 {
        Severity::Critical
    } else if days_left < 30 {
        Severity::Info
    } else {
        Severity::Ok
    }
}

/// The newest backup, against the runbook's recovery point (24 h, plus 2 h for the daily run
/// itself): late a warning, two missed critical. None yet is only worth knowing while the
/// platform is younger than a day.
pub fn backup(
    newest_complete_age_s: Option<i64>,
    failed_since: bool,
    platform_over_a_day: bool,
) -> (Severity, String) {
    const DAY: i64 = 86_400;
    const GRACE: i64 = 2 * 3600;
    let hours = |s: i64| s / 3600;
    let (sev, mut text) = match newest_complete_age_s {
        Some(a) if a > 2 * DAY + GRACE => (
            Severity::Critical,
            format!(
                "the newest backup is {} h old: two daily backups missed (recovery point 24 h)",
                hours(a)
            ),
        ),
        Some(a) if a > DAY + GRACE => (
            Severity::Warning,
            format!(
                "the newest backup is {} h old: over the runbook's 24 h recovery point",
                hours(a)
            ),
        ),
        Some(a) => (
            Severity::Ok,
            format!(
                "the newest backup is {} h {} min old",
                hours(a),
                (a % 3600) / 60
            ),
        ),
        None if platform_over_a_day => (
            Severity::Warning,
            "no complete backup, and the platform is over a day old: `sprocketctl backup`".into(),
        ),
        None => (
            Severity::Info,
            "no backup yet: take one with `sprocketctl backup`".into(),
        ),
    };
    if failed_since {
        text.push_str("; a later backup did not complete (`sprocketctl backup ls`)");
        return (sev.max(Severity::Warning), text);
    }
    (sev, text)
}

/// The last drill: a failed one or none in a quarter (the runbook's rhythm) a warning, none
/// at all only worth knowing.
pub fn drill(age_s: Option<i64>, ok: bool) -> Severity {
    match age_s {
        None => Severity::Info,
        Some(_) if !ok => Severity::Warning,
        Some(a) if a > 92 * 86_400 => Severity::Warning,
        Some(_) => Severity::Ok,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replicas_missing_all_is_critical_some_is_a_warning() {
        assert_eq!(replicas(2, 2), Severity::Ok);
        assert_eq!(replicas(1, 2), Severity::Warning);
        assert_eq!(replicas(0, 2), Severity::Critical);
        assert_eq!(replicas(0, 0), Severity::Ok);
    }

    #[test]
    fn latency_bands_are_the_runbooks() {
        assert_eq!(latency(499), Severity::Ok);
        assert_eq!(latency(800), Severity::Ok);
        assert_eq!(latency(801), Severity::Warning);
        assert_eq!(latency(2000), Severity::Warning);
        assert_eq!(latency(2001), Severity::Critical);
    }

    #[test]
    fn a_route_is_judged_by_who_answered() {
        let s = |code, edge_404| Answer::Status { code, edge_404 };
        assert_eq!(route(&s(200, false), 12).0, Severity::Ok);
        assert_eq!(route(&s(401, false), 12).0, Severity::Ok, "gated");
        assert_eq!(route(&s(302, false), 12).0, Severity::Ok, "to a login");
        assert_eq!(route(&s(404, false), 12).0, Severity::Ok, "the app's 404");
        assert_eq!(route(&s(404, true), 12).0, Severity::Critical);
        let (sev, why) = route(&s(502, false), 3);
        assert_eq!(sev, Severity::Critical);
        assert!(why.contains("cannot reach"), "{why}");
        assert_eq!(route(&s(200, false), 900).0, Severity::Warning);
        assert_eq!(
            route(&s(200, false), 2500).1,
            "200 in 2500 ms (over 2000 ms)"
        );
        assert_eq!(
            route(&Answer::Failed("refused".into()), 1).0,
            Severity::Critical
        );
    }

    #[test]
    fn an_unknown_host_must_get_the_edges_404() {
        let s = |code, edge_404| Answer::Status { code, edge_404 };
        assert_eq!(unknown_host(&s(404, true)).0, Severity::Ok);
        assert_eq!(unknown_host(&s(200, false)).0, Severity::Warning);
        assert_eq!(unknown_host(&s(404, false)).0, Severity::Warning);
    }

    #[test]
    fn usage_bands() {
        assert_eq!(usage(69.9, CPU_MEMORY), Severity::Ok);
        assert_eq!(usage(70.1, CPU_MEMORY), Severity::Info);
        assert_eq!(usage(86.0, CPU_MEMORY), Severity::Warning);
        assert_eq!(usage(90.5, CPU_MEMORY), Severity::Critical);
        assert_eq!(usage(61.0, DISK), Severity::Info);
        assert_eq!(usage(81.0, DISK), Severity::Warning);
    }

    #[test]
    fn certificates_and_restarts() {
        assert_eq!(certificate(6), Severity::Critical);
        assert_eq!(certificate(-1), Severity::Critical);
        assert_eq!(certificate(29), Severity::Info);
        assert_eq!(certificate(30), Severity::Ok);
        assert_eq!(restarts(2), Severity::Ok);
        assert_eq!(restarts(3), Severity::Warning);
    }

    #[test]
    fn backups_are_judged_by_the_recovery_point() {
        let h = 3600;
        assert_eq!(backup(Some(3 * h), false, true).0, Severity::Ok);
        assert_eq!(
            backup(Some(25 * h), false, true).0,
            Severity::Ok,
            "the daily's own run"
        );
        assert_eq!(backup(Some(27 * h), false, true).0, Severity::Warning);
        assert_eq!(backup(Some(51 * h), false, true).0, Severity::Critical);
        assert_eq!(backup(None, false, false).0, Severity::Info);
        assert_eq!(backup(None, false, true).0, Severity::Warning);
        let (sev, text) = backup(Some(h), true, false);
        assert_eq!(sev, Severity::Warning);
        assert!(text.contains("did not complete"), "{text}");
        assert_eq!(backup(Some(51 * h), true, true).0, Severity::Critical);
    }

    #[test]
    fn drills_failed_or_older_than_a_quarter_are_warnings() {
        assert_eq!(drill(None, false), Severity::Info);
        assert_eq!(drill(Some(9 * 86_400), true), Severity::Ok);
        assert_eq!(drill(Some(9 * 86_400), false), Severity::Warning);
        assert_eq!(drill(Some(100 * 86_400), true), Severity::Warning);
    }
}
