//! Alerts from successive `check` reports, as the agent raises them: a problem fires after
//! `fail_after` consecutive rounds (3 by default, as Gatus does) and resolves after
//! `resolve_after` rounds without it (2). One alert per **root**: a failing service whose
//! dependencies are well is one alert naming everything that uses it, and the services it
//! explains raise none of their own; it resolves with the root. Problems that are not a
//! service's (a certificate, the node's resources, error counts, a broken isolation) are one
//! alert each. Pure: the agent keeps the tracker on its volume and sends the events.

use crate::report::{Finding, Report};
use crate::Severity;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Policy {
    pub fail_after: u32,
    pub resolve_after: u32,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            fail_after: 3,
            resolve_after: 2,
        }
    }
}

/// One alert, as sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Alert {
    /// Stable across rounds: `service:redis`, `certificate:demo.example.com`, …
    pub key: String,
    pub severity: Severity,
    pub summary: String,
    /// The failing service (service alerts).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub root: Option<String>,
    /// What uses the root, directly or not.
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub affects: Vec<String>,
    /// Seconds since the epoch: the first round it was seen failing.
    pub since: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "lowercase")]
pub enum Event {
    Firing(Alert),
    /// `at`: when it was judged resolved.
    Resolved {
        alert: Alert,
        at: u64,
    },
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Track {
    failing: u32,
    passing: u32,
    firing: bool,
    alert: Option<Alert>,
}

/// What the rounds so far say: kept between rounds (and restarts).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Tracker {
    tracks: BTreeMap<String, Track>,
}

/// The problems one report shows, one per alert key.
pub fn problems(r: &Report, now: u64) -> BTreeMap<String, Alert> {
    let mut out = BTreeMap::new();
    for i in &r.incidents {
        let of_root: Vec<&Finding> = r
            .findings
            .iter()
            .filter(|f| {
                f.severity >= Severity::Warning
                    && (f.subject == i.root || f.explained_by.as_deref() == Some(&i.root))
            })
            .collect();
        let severity = of_root
            .iter()
            .map(|f| f.severity)
            .max()
            .unwrap_or(Severity::Warning);
        let summary = of_root
            .iter()
            .find(|f| f.subject == i.root)
            .map(|f| format!("{} {}: {}", i.root, f.kind.name(), f.detail))
            .unwrap_or_else(|| format!("{} fails", i.root));
        out.insert(
            format!("service:{}", i.root),
            Alert {
                key: format!("service:{}", i.root),
                severity,
                summary,
                root: Some(i.root.clone()),
                affects: i.affects.clone(),
                since: now,
            },
        );
    }
    for f in r.findings.iter().filter(|f| f.severity > Severity::Ok) {
        if f.kind.fails_its_service() {
            continue; // a service's failure: its root's alert above
        }
        let key = match &f.target {
            Some(t) => format!("{}:{}/{t}", f.kind.name().replace(' ', "-"), f.subject),
            None => format!("{}:{}", f.kind.name().replace(' ', "-"), f.subject),
        };
        out.insert(
            key.clone(),
            Alert {
                key,
                severity: f.severity,
                summary: format!("{} {}: {}", f.subject, f.kind.name(), f.detail),
                root: None,
                affects: Vec::new(),
                since: now,
            },
        );
    }
    out
}

impl Tracker {
    /// Takes one round's report; returns the alerts that start firing and those resolved.
    pub fn observe(&mut self, r: &Report, now: u64, policy: Policy) -> Vec<Event> {
        let seen = problems(r, now);
        let mut events = Vec::new();
        for (key, alert) in &seen {
            let t = self.tracks.entry(key.clone()).or_default();
            t.failing += 1;
            t.passing = 0;
            match &mut t.alert {
                // The first sighting stays `since`; the rest follows the latest round.
                Some(a) => {
                    a.severity = alert.severity;
                    a.summary = alert.summary.clone();
                    a.affects = alert.affects.clone();
                }
                None => t.alert = Some(alert.clone()),
            }
            if !t.firing && t.failing >= policy.fail_after {
                t.firing = true;
                events.push(Event::Firing(t.alert.clone().expect("set above")));
            }
        }
        let gone: Vec<String> = self
            .tracks
            .keys()
            .filter(|k| !seen.contains_key(*k))
            .cloned()
            .collect();
        for key in gone {
            let t = self.tracks.get_mut(&key).expect("listed");
            t.passing += 1;
            t.failing = 0;
            if !t.firing {
                self.tracks.remove(&key);
            } else if t.passing >= policy.resolve_after {
                let alert = t.alert.clone().expect("a firing track has its alert");
                self.tracks.remove(&key);
                events.push(Event::Resolved { alert, at: now });
            }
        }
        events
    }

    /// The alerts firing now (what Alertmanager is told every round).
    pub fn firing(&self) -> Vec<&Alert> {
        self.tracks
            .values()
            .filter(|t| t.firing)
            .filter_map(|t| t.alert.as_ref())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{Finding, Kind};

    fn uses() -> BTreeMap<String, Vec<String>> {
        [
            ("redis", vec![]),
            ("demo", vec!["redis"]),
            ("core", vec!["redis"]),
            ("web", vec!["core"]),
        ]
        .into_iter()
        .map(|(s, u)| (s.to_string(), u.into_iter().map(str::to_string).collect()))
        .collect()
    }

    fn report(redis_down: bool, demo_down: bool) -> Report {
        let mut f = vec![Finding::new(Kind::Replicas, "web", Severity::Ok, "1/1")];
        if redis_down {
            f.push(Finding::new(
                Kind::Replicas,
                "redis",
                Severity::Critical,
                "0/1 running",
            ));
            f.push(Finding::new(Kind::Reach, "core", Severity::Critical, "no").target("redis"));
        }
        if demo_down {
            f.push(
                Finding::new(Kind::Route, "demo", Severity::Critical, "503")
                    .target("demo.localhost"),
            );
        }
        Report::new("ns", "env", f, &uses(), 0.0)
    }

    #[test]
    fn one_alert_for_the_root_after_three_rounds_resolved_after_two() {
        let mut t = Tracker::default();
        let p = Policy::default();
        assert!(t.observe(&report(true, true), 1, p).is_empty());
        assert!(t.observe(&report(true, true), 2, p).is_empty());
        let fired = t.observe(&report(true, true), 3, p);
        assert_eq!(fired.len(), 1, "{fired:?}");
        let Event::Firing(a) = &fired[0] else {
            panic!()
        };
        assert_eq!(a.key, "service:redis");
        assert_eq!(a.severity, Severity::Critical);
        assert_eq!(a.affects, ["core", "demo", "web"]);
        assert_eq!(a.since, 1);
        assert!(a.summary.contains("0/1 running"), "{}", a.summary);
        assert!(
            t.observe(&report(true, true), 4, p).is_empty(),
            "fired once"
        );
        assert!(t.observe(&report(false, false), 5, p).is_empty());
        let resolved = t.observe(&report(false, false), 6, p);
        assert!(
            matches!(&resolved[..], [Event::Resolved { alert, at: 6 }] if alert.key == "service:redis")
        );
        assert!(t.firing().is_empty());
    }

    #[test]
    fn a_flap_shorter_than_the_threshold_never_fires() {
        let mut t = Tracker::default();
        let p = Policy::default();
        for round in 0..10 {
            assert!(t
                .observe(&report(round % 3 != 2, false), round, p)
                .is_empty());
        }
    }

    #[test]
    fn a_consumer_that_fails_on_its_own_alerts_on_its_own_after_its_root_resolved() {
        let mut t = Tracker::default();
        let p = Policy {
            fail_after: 1,
            resolve_after: 1,
        };
        let e = t.observe(&report(true, true), 1, p);
        assert_eq!(e.len(), 1, "the demo is explained by redis: {e:?}");
        let e = t.observe(&report(false, true), 2, p);
        let keys: Vec<String> = e
            .iter()
            .map(|e| match e {
                Event::Firing(a) => format!("firing {}", a.key),
                Event::Resolved { alert, .. } => format!("resolved {}", alert.key),
            })
            .collect();
        assert_eq!(keys, ["firing service:demo", "resolved service:redis"]);
    }

    #[test]
    fn the_tracker_survives_a_restart() {
        let mut t = Tracker::default();
        let p = Policy::default();
        t.observe(&report(true, false), 1, p);
        t.observe(&report(true, false), 2, p);
        let kept = serde_json::to_string(&t).unwrap();
        let mut t: Tracker = serde_json::from_str(&kept).unwrap();
        assert_eq!(t.observe(&report(true, false), 3, p).len(), 1);
    }
}
