//! When the scheduled backups run: every day at the environment's `backup.at` (UTC), and once
//! at once when a run was missed (the runner was down at that time) — the next backup is never
//! more than a day late. Pure: the runner supplies the time and the newest backup's start.

const DAY: i64 = 24 * 3600;

/// The first daily time (`at_minute` after 00:00 UTC) strictly after `now` (seconds since the
/// epoch).
pub fn next_after(now: i64, at_minute: u32) -> i64 {
    let at = i64::from(at_minute % (24 * 60)) * 60;
    let today = now.div_euclid(DAY) * DAY + at;
    if today > now {
        today
    } else {
        today + DAY
    }
}

/// The last daily time at or before `now`.
pub fn last_at_or_before(now: i64, at_minute: u32) -> i64 {
    next_after(now, at_minute) - DAY
}

/// Whether a run is owed now: the last scheduled time has passed and no complete backup
/// started since (`newest`: the newest complete backup's start, `None`: there is none).
pub fn missed(now: i64, at_minute: u32, newest: Option<i64>) -> bool {
    newest.is_none_or(|t| t < last_at_or_before(now, at_minute))
}

impl crate::job::Job {
    /// This job as backup `id`, started at `started`: every object under the new id.
    pub fn for_run(&self, id: &str, started: i64) -> crate::job::Job {
        let old = format!("{}/{}/", self.namespace, self.id);
        let new = format!("{}/{id}/", self.namespace);
        let mut job = self.clone();
        job.id = id.to_string();
        job.started = started;
        for item in &mut job.items {
            if let Some(rest) = item.object.strip_prefix(&old) {
                item.object = format!("{new}{rest}");
            }
        }
        job
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // 2026-12-03T00:00:00Z
    const MIDNIGHT: i64 = 1_796_256_000;

    #[test]
    fn the_next_run_is_today_at_the_hour_or_tomorrow() {
        let two = 120;
        assert_eq!(next_after(MIDNIGHT, two), MIDNIGHT + 2 * 3600);
        assert_eq!(next_after(MIDNIGHT + 3600, two), MIDNIGHT + 2 * 3600);
        // At the very second it is the next day's.
        assert_eq!(
            next_after(MIDNIGHT + 2 * 3600, two),
            MIDNIGHT + DAY + 2 * 3600
        );
        assert_eq!(
            next_after(MIDNIGHT + 23 * 3600, two),
            MIDNIGHT + DAY + 2 * 3600
        );
        assert_eq!(next_after(MIDNIGHT - 1, 0), MIDNIGHT);
        assert_eq!(
            last_at_or_before(MIDNIGHT + 3 * 3600, two),
            MIDNIGHT + 2 * 3600
        );
    }

    #[test]
    fn a_missed_run_is_owed_once() {
        let two = 120;
        let now = MIDNIGHT + 5 * 3600; // 05:00, the 02:00 run is past
        assert!(missed(now, two, None), "never backed up");
        assert!(
            missed(now, two, Some(MIDNIGHT - DAY + 2 * 3600)),
            "yesterday's only"
        );
        assert!(
            !missed(now, two, Some(MIDNIGHT + 2 * 3600 + 40)),
            "today's ran"
        );
        assert!(
            !missed(now, two, Some(MIDNIGHT + 4 * 3600)),
            "one by hand since"
        );
        // 01:00: yesterday's 02:00 is the last one owed.
        let early = MIDNIGHT + 3600;
        assert!(!missed(early, two, Some(MIDNIGHT - DAY + 2 * 3600 + 5)));
    }

    #[test]
    fn a_run_puts_every_object_under_its_own_id() {
        let p = crate::example_offline();
        let provisions = sprocket_desired::provision::provisions(&p);
        let items = crate::plan(&p);
        let task = crate::job::task(
            &p,
            &provisions,
            &items,
            "20261203T020000Z-a1b2",
            1,
            "sha",
            true,
        )
        .unwrap();
        let run = task.job.for_run("20261204T020000Z-0c0d", 2);
        assert_eq!(run.id, "20261204T020000Z-0c0d");
        assert_eq!(run.started, 2);
        assert_eq!(run.items.len(), task.job.items.len());
        for (a, b) in task.job.items.iter().zip(&run.items) {
            assert_eq!(
                b.object,
                a.object
                    .replace("20261203T020000Z-a1b2", "20261204T020000Z-0c0d"),
            );
            assert_eq!(a.take, b.take);
        }
    }
}
