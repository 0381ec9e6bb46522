//! What a Vault (OpenBao) raft snapshot must hold to be restorable: it is a gzipped tar of
//! `meta.json`, `state.bin`, `SHA256SUMS` (their checksums) and `SHA256SUMS.sealed` (the same,
//! sealed with Vault's keyring, which only that Vault can check). A backup's `verify` reads the
//! members as a stream and judges them here: every member present, and each file's SHA-256 the
//! one `SHA256SUMS` says.

use std::collections::BTreeMap;

/// The members a snapshot has.
pub const MEMBERS: [&str; 4] = ["meta.json", "state.bin", "SHA256SUMS", "SHA256SUMS.sealed"];

/// Judges a snapshot from its members' SHA-256 (hex, by name) and the text of its `SHA256SUMS`.
pub fn check(sums: Option<&str>, got: &BTreeMap<String, String>) -> Result<(), String> {
    let missing: Vec<&str> = MEMBERS
        .iter()
        .copied()
        .filter(|m| !got.contains_key(*m))
        .collect();
    if !missing.is_empty() {
        return Err(format!(
            "it is not a whole Vault snapshot: {} missing",
            missing.join(", ")
        ));
    }
    let sums = sums.ok_or("it has no SHA256SUMS")?;
    let mut listed = 0;
    for line in sums.lines().filter(|l| !l.trim().is_empty()) {
        let mut parts = line.split_whitespace();
        let (Some(sum), Some(name)) = (parts.next(), parts.next()) else {
            return Err(format!(
                "its SHA256SUMS has a line that is not `<sum> <file>`: {line}"
            ));
        };
        let name = name.trim_start_matches('*');
        match got.get(name) {
            Some(s) if s.eq_ignore_ascii_case(sum) => listed += 1,
            Some(_) => return Err(format!("its {name} does not match its SHA256SUMS")),
            None => {
                return Err(format!(
                    "its SHA256SUMS lists {name}, which it does not hold"
                ))
            }
        }
    }
    if listed == 0 {
        return Err("its SHA256SUMS lists nothing".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn members(state: &str) -> BTreeMap<String, String> {
        MEMBERS
            .iter()
            .map(|m| {
                (
                    m.to_string(),
                    if *m == "state.bin" { state } else { "00" }.to_string(),
                )
            })
            .collect()
    }

    #[test]
    fn a_whole_snapshot_passes_and_a_changed_or_partial_one_does_not() {
        let sums = "00  meta.json\nab12  state.bin\n";
        assert_eq!(check(Some(sums), &members("AB12")), Ok(()));
        let e = check(Some(sums), &members("ffff")).unwrap_err();
        assert!(e.contains("state.bin does not match"), "{e}");
        let mut partial = members("ab12");
        partial.remove("SHA256SUMS.sealed");
        assert!(check(Some(sums), &partial)
            .unwrap_err()
            .contains("SHA256SUMS.sealed missing"));
        assert!(check(Some("00  other.bin\n"), &members("ab12"))
            .unwrap_err()
            .contains("other.bin"));
        assert!(check(Some("\n"), &members("ab12")).is_err());
    }
}
