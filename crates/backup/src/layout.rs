//! Where a backup's objects go in the bucket: `<namespace>/<id>/<artefact>.age`, its manifest
//! `<namespace>/<id>/manifest.json` (written last). An id is the backup's start in UTC and a
//! short random tag (`20261203T020000Z-a1b2`): ids sort as their times do, two backups started
//! in the same second do not collide, and the time is read back from the id alone.

/// A backup's id from its start (seconds since the epoch, UTC) and a tag (4 hex digits).
pub fn id(start: i64, tag: u16) -> String {
    let (y, mo, d, h, mi, s) = sprocket_spec::values::utc(start);
    format!("{y:04}{mo:02}{d:02}T{h:02}{mi:02}{s:02}Z-{tag:04x}")
}

/// The start time an id names (`None`: not one of ours).
pub fn time_of(name: &str) -> Option<i64> {
    let (stamp, tag) = name.split_once('-')?;
    if tag.len() != 4 || !tag.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let b = stamp.as_bytes();
    if b.len() != 16 || b[8] != b'T' || b[15] != b'Z' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> { stamp.get(r)?.parse().ok() };
    let (y, mo, d) = (num(0..4)?, num(4..6)?, num(6..8)?);
    let (h, mi, s) = (num(9..11)?, num(11..13)?, num(13..15)?);
    let t = sprocket_spec::values::utc_seconds(y, mo, d, h, mi, s)?;
    // A day that does not exist (Feb 30) reads back as another: refused.
    (id(t, u16::from_str_radix(tag, 16).ok()?) == name).then_some(t)
}

/// The folder of every backup of a namespace.
pub fn namespace_prefix(namespace: &str) -> String {
    format!("{namespace}/")
}

/// An artefact's object: `component` with `:` made `-` (`postgres:app` → `postgres-app`).
pub fn object(namespace: &str, id: &str, component: &str, extension: &str) -> String {
    format!(
        "{namespace}/{id}/{}{extension}.age",
        component.replace(':', "-")
    )
}

pub fn manifest(namespace: &str, id: &str) -> String {
    format!("{namespace}/{id}/manifest.json")
}

/// The folder of a namespace's drill results: beside the backups, never under their prefix
/// (retention sweeps it), and no namespace can be named so (it starts with a letter).
pub fn drills_prefix(namespace: &str) -> String {
    format!("_drills/{namespace}/")
}

/// One drill's result (plain JSON: it holds no value).
pub fn drill(namespace: &str, id: &str) -> String {
    format!("{}{id}.json", drills_prefix(namespace))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_read_back_and_sort_as_their_times() {
        let t = 1_796_263_200; // 2026-12-03T02:00:00Z
        let a = id(t, 0xa1b2);
        assert_eq!(a, "20261203T020000Z-a1b2");
        assert_eq!(time_of(&a), Some(t));
        let later = id(t + 59, 0x0001);
        assert!(later > a);
        for bad in [
            "latest",
            "20261203T020000Z",
            "20261203T020000Z-zz12",
            "20260230T020000Z-0000",
            "20261203T250000Z-0000",
        ] {
            assert_eq!(time_of(bad), None, "{bad}");
        }
        assert_eq!(
            object("sprocket", &a, "postgres:sprocket_core", ".dump"),
            "sprocket/20261203T020000Z-a1b2/postgres-sprocket_core.dump.age"
        );
        assert_eq!(
            manifest("sprocket", &a),
            "sprocket/20261203T020000Z-a1b2/manifest.json"
        );
    }
}
