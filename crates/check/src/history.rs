//! What the agent remembers between rounds and restarts (a file on its volume): the alerts'
//! tracker, and per service how many rounds it was up, in hourly buckets over 30 days — from
//! which the SLA report computes uptime and error budget over 7 and 30 days.
//!
//! A service is **down** in a round when a critical finding about it says it cannot serve: no
//! replica, its route failing, its reach or login, Vault's seal — explained by a root or not (a
//! consumer whose Redis is down is down for its users too). A warning (slow, a replica of
//! several missing) is degraded: up for the SLA.

use crate::alerts::Tracker;
use crate::report::Report;
use crate::Severity;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// Hours kept: 30 days.
pub const KEEP_HOURS: u64 = 30 * 24;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bucket {
    pub up: u32,
    pub rounds: u32,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct History {
    pub tracker: Tracker,
    /// Rounds ever recorded (across restarts).
    pub rounds: u64,
    /// Seconds between rounds (the latest): a down round stands for this long.
    #[serde(default)]
    pub interval_s: u64,
    /// Service → hour (seconds since the epoch / 3600) → its rounds that hour.
    pub services: BTreeMap<String, BTreeMap<u64, Bucket>>,
    /// Services seen deployed: one that is gone afterwards was removed (alerted), not "not
    /// deployed yet" (the first `up`, while the agent already runs).
    #[serde(default)]
    pub seen: BTreeSet<String>,
    /// Webhook notifications not delivered yet, oldest first: retried every round, kept across
    /// restarts, at most [`OUTBOX`].
    #[serde(default)]
    pub outbox: Vec<serde_json::Value>,
}

/// Undelivered notifications kept: beyond it the oldest are dropped.
pub const OUTBOX: usize = 100;

/// Whether `service` could serve in this round: no critical finding says it cannot. A warning
/// (an answer over 800 ms, one replica of three missing) is degraded, still up.
pub fn is_up(r: &Report, service: &str) -> bool {
    !r.findings.iter().any(|f| {
        f.subject == service && f.severity >= Severity::Critical && f.kind.fails_its_service()
    })
}

impl History {
    /// Records one round of `services` at `now` (seconds) and forgets what is older than 30 days.
    pub fn record(&mut self, r: &Report, services: &[String], now: u64, interval_s: u64) {
        self.rounds += 1;
        self.interval_s = interval_s;
        let hour = now / 3600;
        for s in services {
            let b = self
                .services
                .entry(s.clone())
                .or_default()
                .entry(hour)
                .or_default();
            b.rounds += 1;
            b.up += u32::from(is_up(r, s));
        }
        let oldest = hour.saturating_sub(KEEP_HOURS);
        for hours in self.services.values_mut() {
            hours.retain(|h, _| *h > oldest);
        }
        self.services.retain(|_, h| !h.is_empty());
    }

    /// A service's uptime over the last `days` (of the rounds recorded): `None` without rounds.
    pub fn uptime(&self, service: &str, days: u64, now: u64) -> Option<Uptime> {
        let from = (now / 3600).saturating_sub(days * 24);
        let (up, rounds) = self
            .services
            .get(service)?
            .range(from + 1..)
            .fold((0u64, 0u64), |(u, n), (_, b)| {
                (u + b.up as u64, n + b.rounds as u64)
            });
        (rounds > 0).then(|| Uptime {
            days,
            percent: 100.0 * up as f64 / rounds as f64,
            rounds,
            down_minutes: (rounds - up) as f64 * self.interval_s as f64 / 60.0,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Uptime {
    pub days: u64,
    pub percent: f64,
    pub rounds: u64,
    /// The rounds it was down, times the rounds' interval.
    pub down_minutes: f64,
}

impl Uptime {
    /// The error budget of a target (e.g. 99.9) over the window, in minutes, and what was used
    /// of it: the minutes it was seen down (a young agent has seen little of the window).
    pub fn budget(&self, target: f64) -> (f64, f64) {
        let window = self.days as f64 * 24.0 * 60.0;
        (window * (100.0 - target) / 100.0, self.down_minutes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{Finding, Kind};

    fn report(redis_down: bool) -> Report {
        let uses = [
            ("redis".to_string(), vec![]),
            ("demo".to_string(), vec!["redis".to_string()]),
        ]
        .into_iter()
        .collect();
        let mut f = vec![Finding::new(Kind::Replicas, "demo", Severity::Ok, "1/1")];
        if redis_down {
            f.push(Finding::new(
                Kind::Replicas,
                "redis",
                Severity::Critical,
                "0/1",
            ));
            f.push(
                Finding::new(Kind::Route, "demo", Severity::Critical, "503")
                    .target("demo.localhost"),
            );
        }
        Report::new("ns", "env", f, &uses, 0.0)
    }

    #[test]
    fn uptime_and_budget_over_a_window() {
        let mut h = History::default();
        let services = ["redis".to_string(), "demo".to_string()];
        let t0 = 1_000 * 3600;
        // 1000 rounds, 1 of them with Redis (and so the demo) down.
        for i in 0..1000u64 {
            h.record(&report(i == 500), &services, t0 + i * 30, 30);
        }
        let u = h.uptime("demo", 7, t0 + 1000 * 30).unwrap();
        assert_eq!(u.rounds, 1000);
        assert!((u.percent - 99.9).abs() < 1e-9, "{}", u.percent);
        let (budget, used) = u.budget(99.5);
        assert!(
            (budget - 50.4).abs() < 1e-6,
            "7 days × 0.5 % = 50.4 min: {budget}"
        );
        assert!((used - 0.5).abs() < 1e-9, "one round of 30 s: {used}");
        assert_eq!(h.rounds, 1000);
        assert!(h.uptime("web", 7, t0).is_none());
    }

    #[test]
    fn a_state_file_of_an_older_agent_still_loads() {
        let h: History = serde_json::from_str(
            r#"{"tracker":{"tracks":{}},"rounds":3,"interval_s":30,"services":{}}"#,
        )
        .unwrap();
        assert_eq!(h.rounds, 3);
        assert!(h.seen.is_empty() && h.outbox.is_empty());
    }

    #[test]
    fn thirty_days_are_kept_and_it_survives_a_restart() {
        let mut h = History::default();
        let s = ["demo".to_string()];
        h.record(&report(false), &s, 0, 30);
        h.record(&report(false), &s, 40 * 24 * 3600, 30);
        assert_eq!(
            h.services["demo"].len(),
            1,
            "the bucket 40 days ago is gone"
        );
        let kept: History = serde_json::from_str(&serde_json::to_string(&h).unwrap()).unwrap();
        assert_eq!(kept.rounds, 2);
        assert_eq!(kept.uptime("demo", 30, 40 * 24 * 3600).unwrap().rounds, 1);
    }
}
