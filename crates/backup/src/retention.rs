//! Which backups a retention policy keeps — restic's `forget --keep-daily/--keep-weekly/
//! --keep-monthly` rule, which operators know: walking from the newest, a backup is kept when it
//! is the newest of a day (week, month) not yet counted, until each count is used up. The newest
//! backup is always kept, whatever the policy. Only complete backups (with a manifest) count;
//! a half-written one is never a reason to delete a complete one. And after a rebuild (the live
//! volumes younger than a backup), the newest backup from before it is kept whatever the
//! policy: backups of the new, still empty platform never push the last one of the lost out.

use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Policy {
    pub daily: u32,
    pub weekly: u32,
    pub monthly: u32,
}

impl Default for Policy {
    /// The runbook's: a week of dailies, a month of weeklies, half a year of monthlies.
    fn default() -> Policy {
        Policy {
            daily: 7,
            weekly: 4,
            monthly: 6,
        }
    }
}

/// Days since the epoch → (year, month).
fn year_month(days: i64) -> (i64, i64) {
    let (y, m, ..) = sprocket_spec::values::utc(days * 86_400);
    (y, m)
}

/// The backups (id, time in seconds since the epoch) `policy` keeps.
pub fn keep(backups: &[(String, i64)], policy: Policy) -> BTreeSet<String> {
    let mut newest_first: Vec<&(String, i64)> = backups.iter().collect();
    newest_first.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| b.0.cmp(&a.0)));
    let mut kept = BTreeSet::new();
    if let Some((id, _)) = newest_first.first() {
        kept.insert(id.clone());
    }
    // Each count with the calendar bucket it counts: a day, an ISO week (they start on Monday;
    // 1970-01-01 was a Thursday), a month.
    let day = |t: i64| t.div_euclid(86_400);
    let bucket = |unit: u8, t: i64| match unit {
        0 => (day(t), 0),
        1 => ((day(t) + 3).div_euclid(7), 0),
        _ => year_month(day(t)),
    };
    for (unit, count) in [(0u8, policy.daily), (1, policy.weekly), (2, policy.monthly)] {
        let mut seen = BTreeSet::new();
        for (id, t) in &newest_first {
            if seen.len() as u32 >= count {
                break;
            }
            if seen.insert(bucket(unit, *t)) {
                kept.insert(id.clone());
            }
        }
    }
    kept
}

/// What retention removes from a namespace's objects (`key`, as listed) after backup `current`
/// completed: every object of a complete backup (one with a manifest) that `policy` does not
/// keep, and of an incomplete one started more than [`LONGEST_RUN_S`] before `current` (a run
/// that was killed; a later one, or one that overlaps — the schedule's beside an operator's —
/// may be running now). Returns the backups removed and their keys. Objects that are not a
/// backup's are never touched.
/// The longest a backup runs (the scheduled runner gives up after it): an incomplete backup
/// that started longer before another is dead, not running.
pub const LONGEST_RUN_S: i64 = 3 * 3600;

pub fn sweep(
    namespace: &str,
    keys: &[String],
    current: &str,
    policy: Policy,
    volumes_made: Option<i64>,
) -> (Vec<String>, Vec<String>) {
    use std::collections::BTreeMap;
    let prefix = crate::layout::namespace_prefix(namespace);
    let mut by_id: BTreeMap<&str, (bool, Vec<&String>)> = BTreeMap::new();
    for k in keys {
        let Some((id, rest)) = k.strip_prefix(&prefix).and_then(|r| r.split_once('/')) else {
            continue;
        };
        if crate::layout::time_of(id).is_none() {
            continue;
        }
        let e = by_id.entry(id).or_default();
        e.0 |= rest == "manifest.json";
        e.1.push(k);
    }
    let complete: Vec<(String, i64)> = by_id
        .iter()
        .filter(|(_, (done, _))| *done)
        .filter_map(|(id, _)| Some((id.to_string(), crate::layout::time_of(id)?)))
        .collect();
    let mut kept = keep(&complete, policy);
    if let Some(made) = volumes_made {
        if let Some((id, _)) = complete
            .iter()
            .filter(|(_, t)| *t < made)
            .max_by_key(|(id, t)| (*t, id.clone()))
        {
            kept.insert(id.clone());
        }
    }
    let mut removed = Vec::new();
    let mut doomed = Vec::new();
    for (id, (done, objects)) in &by_id {
        let goes = if *done {
            !kept.contains(*id) && *id != current
        } else {
            match (crate::layout::time_of(id), crate::layout::time_of(current)) {
                (Some(t), Some(c)) => t < c - LONGEST_RUN_S,
                _ => false,
            }
        };
        if goes {
            removed.push(id.to_string());
            // The manifest first: a backup half-removed is never listed as complete.
            let mut objects = objects.clone();
            objects.sort_by_key(|k| !k.ends_with("/manifest.json"));
            doomed.extend(objects.into_iter().cloned());
        }
    }
    (removed, doomed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sweep_removes_what_the_policy_drops_and_killed_runs_but_nothing_else() {
        let id = |d: i64| crate::layout::id(T0 - d * DAY, 0);
        let mut keys = Vec::new();
        for d in 0..10 {
            keys.push(format!("sprocket/{}/vault.snap.age", id(d)));
            keys.push(format!("sprocket/{}/manifest.json", id(d)));
        }
        // A killed run three days ago (no manifest), one newer than the current (running).
        let killed = crate::layout::id(T0 - 3 * DAY + 60, 1);
        keys.push(format!("sprocket/{killed}/redis-redis.rdb.age"));
        let running = crate::layout::id(T0 + 60, 2);
        keys.push(format!("sprocket/{running}/vault.snap.age"));
        // One that started a minute before the current and runs beside it (an operator's
        // backup and the schedule's): not dead, kept.
        let beside = crate::layout::id(T0 - 60, 3);
        keys.push(format!("sprocket/{beside}/vault.snap.age"));
        // Not ours: another namespace, a file by hand.
        keys.push(format!("sprocket-staging/{}/manifest.json", id(9)));
        keys.push("sprocket/README.txt".into());
        let policy = Policy {
            daily: 3,
            weekly: 0,
            monthly: 0,
        };
        let (removed, doomed) = sweep("sprocket", &keys, &id(0), policy, None);
        let mut want: Vec<String> = (3..10).map(id).collect();
        want.push(killed.clone());
        want.sort();
        assert_eq!(removed, want);
        assert_eq!(doomed.len(), 7 * 2 + 1);
        assert!(doomed[0].ends_with("/manifest.json"), "manifest first");
        assert!(!doomed.iter().any(|k| k.contains(&running)
            || k.contains(&beside)
            || k.starts_with("sprocket-staging")));
        assert!(!doomed.contains(&"sprocket/README.txt".to_string()));
    }

    const DAY: i64 = 86_400;
    /// 2026-12-03 (a Thursday) 02:00 UTC.
    const T0: i64 = 1_796_263_200;

    fn ids(kept: &BTreeSet<String>) -> Vec<&str> {
        kept.iter().map(String::as_str).collect()
    }

    #[test]
    fn a_daily_backup_over_a_year_keeps_7_days_4_weeks_6_months() {
        // One backup a day at 02:00 for 365 days, newest T0; ids sort by time.
        let backups: Vec<(String, i64)> = (0..365)
            .map(|d| (format!("b{:03}", 364 - d), T0 - d * DAY))
            .collect();
        let kept = keep(&backups, Policy::default());
        // 7 dailies (days 0..6), the newest of each of 4 weeks (this week's is day 0 —
        // Thursday — then the Sundays before it), the newest of each of 6 months (this
        // month's is day 0, then the last day of each month before: Nov 30, Oct 31, Sep 30,
        // Aug 31, Jul 31).
        let days_back: Vec<i64> = backups
            .iter()
            .filter(|(id, _)| kept.contains(id))
            .map(|(_, t)| (T0 - t) / DAY)
            .collect();
        assert_eq!(
            days_back,
            [0, 1, 2, 3, 4, 5, 6, 11, 18, 33, 64, 94, 125],
            "{:?}",
            ids(&kept)
        );
    }

    #[test]
    fn the_newest_is_kept_whatever_the_policy_and_nothing_else_with_zero() {
        let backups = vec![("a".to_string(), T0 - DAY), ("b".to_string(), T0)];
        let none = Policy {
            daily: 0,
            weekly: 0,
            monthly: 0,
        };
        assert_eq!(ids(&keep(&backups, none)), ["b"]);
        assert!(keep(&[], Policy::default()).is_empty());
    }

    #[test]
    fn several_backups_a_day_keep_the_days_newest() {
        let backups = vec![
            ("morning".to_string(), T0),
            ("evening".to_string(), T0 + 12 * 3600),
            ("yesterday".to_string(), T0 - DAY),
        ];
        let p = Policy {
            daily: 2,
            weekly: 0,
            monthly: 0,
        };
        assert_eq!(ids(&keep(&backups, p)), ["evening", "yesterday"]);
    }

    #[test]
    fn months_are_calendar_months() {
        // 2026-11-30 and 2026-12-01 are one day apart but in two months.
        let nov30 = T0 - 3 * DAY;
        let dec01 = T0 - 2 * DAY;
        assert_eq!(year_month(nov30 / DAY), (2026, 11));
        assert_eq!(year_month(dec01 / DAY), (2026, 12));
        assert_eq!(year_month(0), (1970, 1));
        assert_eq!(year_month(-1), (1969, 12));
    }

    #[test]
    fn after_a_rebuild_the_last_backup_from_before_it_stays() {
        let id = |secs: i64, tag: u16| crate::layout::id(secs, tag);
        let made = T0 - 3600;
        let (old, good, empty) = (id(T0 - DAY, 1), id(T0 - 4 * 3600, 2), id(T0, 3));
        let keys: Vec<String> = [&old, &good, &empty]
            .iter()
            .map(|i| format!("sprocket/{i}/manifest.json"))
            .collect();
        let one_a_day = Policy {
            daily: 1,
            weekly: 0,
            monthly: 0,
        };
        // Without knowing of the rebuild, a second backup of the day pushes the first out.
        let (removed, _) = sweep("sprocket", &keys, &empty, one_a_day, None);
        assert_eq!(removed, [old.clone(), good.clone()]);
        // The volumes were made after `good`: it is the lost platform's last, and stays.
        let (removed, _) = sweep("sprocket", &keys, &empty, one_a_day, Some(made));
        assert_eq!(removed, std::slice::from_ref(&old));
        // Volumes older than every backup (no rebuild since): the policy alone.
        let (removed, _) = sweep("sprocket", &keys, &empty, one_a_day, Some(T0 - 2 * DAY));
        assert_eq!(removed, [old, good]);
    }
}
