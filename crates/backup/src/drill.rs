//! A drill's result (`sprocketctl drill`): the platform rebuilt from a backup in a scratch
//! namespace, restored, checked and taken down, each step and each component timed — and
//! judged against the runbook's recovery targets. Kept in the bucket ([`crate::layout::drill`])
//! so `check` can say when the last drill ran and what it measured.

use serde::{Deserialize, Serialize};

/// The runbook's targets, in seconds: Vault back within 30 minutes, a database within 2 hours,
/// the whole platform within 6 hours, and no more than 24 hours of data lost.
pub const VAULT_RTO_S: f64 = 30.0 * 60.0;
pub const DATABASE_RTO_S: f64 = 2.0 * 3600.0;
pub const FULL_RTO_S: f64 = 6.0 * 3600.0;
pub const RPO_S: f64 = 24.0 * 3600.0;

/// The version of [`Record`]'s format.
pub const FORMAT: u32 = 1;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Record {
    pub format: u32,
    /// When it started (a backup-style id: its time in UTC and a tag).
    pub id: String,
    /// The namespace drilled, and the scratch namespace it was rebuilt in.
    pub namespace: String,
    pub scratch: String,
    /// The backup restored, and its age when the drill started (the recovery point).
    pub backup: String,
    pub rpo_s: f64,
    /// Rebuild (`up` of an empty platform) plus restore, to the platform serving again.
    pub rto_s: f64,
    pub steps: Vec<Step>,
    pub components: Vec<Component>,
    pub targets: Vec<Target>,
    /// Every step passed and every target was met.
    pub ok: bool,
    /// What failed: a step or a component (`redis:redis`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The drill from its start to the scratch platform gone.
    pub seconds: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Step {
    /// `rebuild`, `restore`, `verify`, `teardown`.
    pub name: String,
    pub seconds: f64,
    pub ok: bool,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub detail: String,
}

/// One restored component: how long its restore took and what it holds after.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Component {
    pub component: String,
    pub seconds: f64,
    pub holds: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Target {
    pub what: String,
    pub target_s: f64,
    pub measured_s: f64,
    pub met: bool,
}

/// The runbook's targets against what a drill measured: Vault (its restore, after the rebuild
/// that starts it), each database (the slowest), the whole platform, the recovery point.
pub fn targets(rebuild_s: f64, components: &[Component], rto_s: f64, rpo_s: f64) -> Vec<Target> {
    let target = |what: &str, target_s: f64, measured_s: f64| Target {
        what: what.into(),
        target_s,
        measured_s,
        met: measured_s <= target_s,
    };
    let mut out = Vec::new();
    if let Some(v) = components.iter().find(|c| c.component == "vault") {
        out.push(target("vault", VAULT_RTO_S, rebuild_s + v.seconds));
    }
    if let Some(slowest) = components
        .iter()
        .filter(|c| c.component.starts_with("postgres:"))
        .map(|c| c.seconds)
        .reduce(f64::max)
    {
        out.push(target("database", DATABASE_RTO_S, slowest));
    }
    out.push(target("full rebuild", FULL_RTO_S, rto_s));
    out.push(target("recovery point", RPO_S, rpo_s));
    out
}

/// `9 days ago, RTO 6 min 12 s`: the age of a drill and what it measured, for `check`.
pub fn summary(r: &Record, now: i64) -> String {
    let age = now - crate::layout::time_of(&r.id).unwrap_or(now);
    format!(
        "last drill {} ago{}, RTO {}, RPO {}",
        span(age as f64),
        if r.ok { "" } else { " FAILED" },
        span(r.rto_s),
        span(r.rpo_s)
    )
}

/// `6 min 12 s`, `2 h 5 min`, `3 days`.
pub fn span(s: f64) -> String {
    let s = s.max(0.0).round() as i64;
    match s {
        0..=59 => format!("{s} s"),
        60..=3599 => format!("{} min {} s", s / 60, s % 60),
        3600..=172_799 => format!("{} h {} min", s / 3600, (s % 3600) / 60),
        _ => format!("{} days", s / 86_400),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(component: &str, seconds: f64) -> Component {
        Component {
            component: component.into(),
            seconds,
            holds: String::new(),
        }
    }

    #[test]
    fn targets_are_the_runbooks_and_vault_counts_from_the_rebuild() {
        let cs = [
            c("vault", 5.5),
            c("postgres:a", 2.0),
            c("postgres:b", 7.0),
            c("redis:redis", 1.0),
        ];
        let t = targets(30.0, &cs, 70.0, 3600.0);
        let by = |w: &str| t.iter().find(|x| x.what == w).unwrap().clone();
        assert_eq!(by("vault").measured_s, 35.5);
        assert_eq!(by("database").measured_s, 7.0, "the slowest database");
        assert!(t.iter().all(|x| x.met));
        // A backup two days old misses the recovery point; nothing else is judged by it.
        let t = targets(30.0, &cs, 70.0, 2.0 * 86_400.0);
        assert!(!by_in(&t, "recovery point").met);
        assert!(by_in(&t, "full rebuild").met);
        // Without Vault or a database in the backup, those targets are not claimed.
        let t = targets(30.0, &[c("redis:redis", 1.0)], 40.0, 10.0);
        assert_eq!(
            t.iter().map(|x| x.what.as_str()).collect::<Vec<_>>(),
            ["full rebuild", "recovery point"]
        );
    }

    fn by_in(t: &[Target], w: &str) -> Target {
        t.iter().find(|x| x.what == w).unwrap().clone()
    }

    #[test]
    fn spans_and_the_summary_check_shows() {
        assert_eq!(span(42.4), "42 s");
        assert_eq!(span(372.0), "6 min 12 s");
        assert_eq!(span(7500.0), "2 h 5 min");
        assert_eq!(span(9.0 * 86_400.0 + 5.0), "9 days");
        let start = 1_796_263_200;
        let r = Record {
            format: FORMAT,
            id: crate::layout::id(start, 1),
            namespace: "sprocket".into(),
            scratch: "sprocket-drill".into(),
            backup: "b".into(),
            rpo_s: 3600.0,
            rto_s: 372.0,
            steps: Vec::new(),
            components: Vec::new(),
            targets: Vec::new(),
            ok: true,
            failed: None,
            error: None,
            seconds: 400.0,
        };
        assert_eq!(
            summary(&r, start + 9 * 86_400),
            "last drill 9 days ago, RTO 6 min 12 s, RPO 1 h 0 min"
        );
        let back: Record = serde_json::from_str(&serde_json::to_string(&r).unwrap()).unwrap();
        assert_eq!(back, r);
    }
}
