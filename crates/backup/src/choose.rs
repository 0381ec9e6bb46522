//! Which backup `restore` takes when none is named: the newest complete one — unless that one
//! may hold a rebuilt, still empty platform. After a disaster the platform is brought up again
//! from nothing (`up` makes new, empty volumes and starts the scheduled backups' runner, which
//! takes a missed run an hour later); a backup taken of it before the restore is the newest, and
//! restoring it would put back nothing. Pure: the ids and when the live volumes were made.

use crate::layout::time_of;

/// How long after the live volumes were made a backup may be of the still empty platform: the
/// runner's first run comes an hour after it starts, or at the daily time.
pub const REBUILD_WINDOW_S: i64 = 24 * 3600;

/// Why the newest backup is not taken without being named.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ambiguous {
    /// The newest complete backup, taken after the live volumes were made.
    pub newest: String,
    /// Seconds from the volumes being made to that backup's start.
    pub after_made_s: i64,
    /// The newest complete backup from before they were made.
    pub before: String,
}

/// `complete`: the complete backups' ids, newest first. `volumes_made`: the earliest creation
/// time of the platform's live volumes (seconds, UTC; `None`: none is there, so no backup can be
/// of them). The newest backup is ambiguous when it started after every live volume was made,
/// less than [`REBUILD_WINDOW_S`] after, and an older backup from before them is there: a
/// rebuild happened, and the newest may be of the new, still empty platform.
pub fn ambiguous(complete: &[&str], volumes_made: Option<i64>) -> Option<Ambiguous> {
    let made = volumes_made?;
    let newest = *complete.first()?;
    let at = time_of(newest)?;
    if at < made || at - made >= REBUILD_WINDOW_S {
        return None;
    }
    let before = complete
        .iter()
        .find(|id| time_of(id).is_some_and(|t| t < made))?;
    Some(Ambiguous {
        newest: newest.to_string(),
        after_made_s: at - made,
        before: before.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layout::id;

    #[test]
    fn the_newest_backup_after_a_rebuild_is_not_taken_unnamed() {
        let day = 86_400;
        let made = 100 * day;
        let before = id(made - 3 * 3600, 0xa);
        let older = id(made - day, 0xb);
        // Rebuilt at `made`; the runner's missed run an hour later is the newest backup.
        let empty = id(made + 3600, 0xc);
        let got = ambiguous(&[&empty, &before, &older], Some(made)).unwrap();
        assert_eq!(
            got,
            Ambiguous {
                newest: empty.clone(),
                after_made_s: 3600,
                before: before.clone()
            }
        );
        // No backup from before the volumes: nothing to confuse it with (a first platform).
        assert_eq!(ambiguous(&[&empty], Some(made)), None);
        // A day on, the newest is of the platform as it runs now: taken.
        let later = id(made + day, 0xd);
        assert_eq!(ambiguous(&[&later, &empty, &before], Some(made)), None);
        // The newest is from before the volumes (no backup since the rebuild): taken.
        assert_eq!(ambiguous(&[&before, &older], Some(made)), None);
        // No live volume (all removed, or none backed up): restore makes them; taken.
        assert_eq!(ambiguous(&[&empty, &before], None), None);
        assert_eq!(ambiguous(&[], Some(made)), None);
    }
}
