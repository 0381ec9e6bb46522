//! `check`'s backups, read from the environment's bucket with the store's key from the secrets
//! source: the newest complete backup's age against the recovery point, a later one that did
//! not complete, and the last drill (`sprocketctl drill`): when, whether it passed, what it
//! measured. A drill's scratch copy is not backed up: nothing to say there.

use crate::backup::store;
use sprocket_check::judge::{self, Severity};
use sprocket_check::report::{Finding, Kind};
use sprocket_desired::Observed;
use sprocket_spec::model::Platform;

/// A backup still running is not a failed one: an incomplete backup younger than this is left
/// alone.
const RUNNING_S: i64 = 3600;

pub async fn check(p: &Platform, observed: &Observed) -> Vec<Finding> {
    let Some(b) = p
        .environment
        .backup
        .as_ref()
        .filter(|_| p.environment.scratch_of.is_none())
    else {
        return Vec::new();
    };
    let finding =
        |kind: Kind, sev, d: String| Finding::new(kind, kind.name(), sev, d).target(&b.bucket);
    let store = match store::open(p, None).await {
        Ok(s) => s,
        Err(e) => {
            return vec![finding(
                Kind::Backup,
                Severity::Warning,
                format!("the backups cannot be looked at: {e}"),
            )]
        }
    };
    let mut out = Vec::new();
    match store.backups().await {
        Err(e) => out.push(finding(
            Kind::Backup,
            Severity::Warning,
            format!("the backups cannot be listed: {e}"),
        )),
        Ok(listed) => {
            let newest = listed.iter().find(|l| l.complete);
            let failed_since = listed
                .iter()
                .take_while(|l| !l.complete)
                .any(|l| l.age_s > RUNNING_S);
            let now = crate::clock::unix_now().as_secs() as i64;
            let day_ago = crate::certs::rfc3339(now - 86_400);
            let over_a_day = observed
                .secrets
                .iter()
                .filter_map(|s| s.created_at.as_deref())
                .any(|t| t.get(..19) < day_ago.get(..19));
            let (sev, mut text) = judge::backup(newest.map(|n| n.age_s), failed_since, over_a_day);
            if let Some(n) = newest {
                text.push_str(&format!(" ({}, {} objects)", n.id, n.objects));
            }
            out.push(finding(Kind::Backup, sev, text));
        }
    }
    out.push(match store.last_drill().await {
        Ok(None) => finding(
            Kind::Drill,
            judge::drill(None, false),
            "never drilled: `sprocketctl drill` proves the newest backup restores and measures it"
                .into(),
        ),
        Ok(Some(r)) => {
            let now = crate::clock::unix_now().as_secs() as i64;
            let age = sprocket_backup::layout::time_of(&r.id).map(|t| now - t);
            let mut text = sprocket_backup::drill::summary(&r, now);
            if let Some(c) = &r.failed {
                text.push_str(&format!(" (failed at `{c}`)"));
            }
            finding(Kind::Drill, judge::drill(age, r.ok), text)
        }
        Err(e) => finding(
            Kind::Drill,
            Severity::Warning,
            format!("the drills' results cannot be read: {e}"),
        ),
    });
    out
}
