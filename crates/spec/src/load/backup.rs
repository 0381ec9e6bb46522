//! An environment's `backup`: the S3 external and bucket backups go to, when the daily one runs,
//! what retention keeps. The external must be an S3 store with an administrator's key (the
//! backup writes with it); the bucket must be a name S3 accepts.

use super::{pos, Resolver};
use crate::model::{self, DatastoreKind, External};
use crate::raw::{self, S};

impl Resolver<'_> {
    fn keep(&mut self, v: Option<&S<u64>>, what: &str, default: u32) -> u32 {
        match v {
            None => default,
            Some(n) if n.value <= 1000 => n.value as u32,
            Some(n) => {
                self.err(
                    "invalid-backup",
                    pos(n),
                    format!("backup.keep.{what} {} is more than 1000", n.value),
                )
                .help = Some(format!(
                    "how many {what} backups retention keeps (the newest is always kept); the default is {default}"
                ));
                default
            }
        }
    }

    pub(super) fn backup(
        &mut self,
        b: Option<&S<raw::Backup>>,
        externals: &[External],
    ) -> Option<model::Backup> {
        let b = &b?.value;
        let store = &b.to;
        let s3: Vec<&str> = externals
            .iter()
            .filter(|e| e.kind == "s3")
            .map(|e| e.name.as_str())
            .collect();
        match externals.iter().find(|e| e.name == store.value) {
            None => {
                self.err(
                    "invalid-backup",
                    pos(store),
                    format!("backup.to `{}` is not an external", store.value),
                )
                .help = Some(format!(
                    "name an external of `kind: s3` (the store backups go to){}",
                    if s3.is_empty() {
                        String::from("; the spec declares none")
                    } else {
                        format!(": {}", s3.join(", "))
                    }
                ));
            }
            Some(e) if e.datastore.as_ref().map(|d| d.kind) != Some(DatastoreKind::S3) => {
                self.err(
                    "invalid-backup",
                    pos(store),
                    if e.kind == "s3" {
                        format!("backup.to `{}` has no administrator's key", store.value)
                    } else {
                        format!(
                            "backup.to `{}` is a `{}` external, not `s3`",
                            store.value, e.kind
                        )
                    },
                )
                .help = Some(
                    "backups are written with the S3 external's administrator's key: give it `admin_access_key` and `admin_secret_key`".into(),
                );
            }
            Some(_) => {}
        }
        if let Err(why) = super::s3::bucket_name(&b.bucket.value) {
            self.err(
                "invalid-bucket",
                pos(&b.bucket),
                format!("backup.bucket `{}` {why}", b.bucket.value),
            )
            .help = Some("S3 bucket names: 3 to 63 lowercase letters, digits, `-` and `.`".into());
        }
        let (at_minute, scheduled) = match &b.at {
            None => (model::Backup::AT_MINUTE, true),
            Some(at) if at.value == "off" => (model::Backup::AT_MINUTE, false),
            Some(at) => match hh_mm(&at.value) {
                Some(m) => (m, true),
                None => {
                    self.err(
                        "invalid-backup",
                        pos(at),
                        format!("backup.at `{}` is not a time of day `HH:MM`", at.value),
                    )
                    .help = Some(
                        "when the daily backup runs, in UTC, e.g. `02:00` (the default), or `off`: no scheduled backup (only `sprocketctl backup`)".into(),
                    );
                    (model::Backup::AT_MINUTE, true)
                }
            },
        };
        let (daily, weekly, monthly) = model::Backup::KEEP;
        let keep = b.keep.as_ref().map(|k| &k.value);
        let keep_daily = self.keep(keep.and_then(|k| k.daily.as_ref()), "daily", daily);
        let keep_weekly = self.keep(keep.and_then(|k| k.weekly.as_ref()), "weekly", weekly);
        let keep_monthly = self.keep(keep.and_then(|k| k.monthly.as_ref()), "monthly", monthly);
        Some(model::Backup {
            store: store.value.clone(),
            bucket: b.bucket.value.clone(),
            at_minute,
            scheduled,
            keep_daily,
            keep_weekly,
            keep_monthly,
        })
    }
}

/// `HH:MM` (24-hour) as minutes after midnight.
fn hh_mm(s: &str) -> Option<u32> {
    let (h, m) = s.split_once(':')?;
    if h.len() != 2 || m.len() != 2 {
        return None;
    }
    let (h, m): (u32, u32) = (h.parse().ok()?, m.parse().ok()?);
    (h < 24 && m < 60).then_some(h * 60 + m)
}

#[cfg(test)]
mod tests {
    #[test]
    fn times_of_day() {
        assert_eq!(super::hh_mm("02:00"), Some(120));
        assert_eq!(super::hh_mm("23:59"), Some(1439));
        for bad in ["24:00", "2:00", "02:60", "0200", "ab:cd"] {
            assert_eq!(super::hh_mm(bad), None, "{bad}");
        }
    }
}
