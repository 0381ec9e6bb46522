//! What the spec needs from the source against what the source holds. Findings name keys and
//! places — a dotenv file's lines — and never a value.

use crate::Entry;
use serde::Serialize;
use sprocket_spec::names::edit_distance;

/// A secret the enabled services need from the source.
#[derive(Debug, Clone)]
pub struct Wanted {
    /// The spec's name for it.
    pub secret: String,
    /// Its key in the source.
    pub key: String,
    /// The shortest value accepted (0: any non-empty value).
    pub min_length: usize,
    /// A regular expression the whole value must match (validated by the spec's loader).
    pub pattern: Option<String>,
}

impl Wanted {
    /// What the spec asks of `s`'s value in the source.
    pub fn of(s: &sprocket_spec::model::Secret) -> Wanted {
        Wanted {
            secret: s.name.clone(),
            key: s.key.clone(),
            min_length: s.min_length,
            pattern: s.pattern.clone(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub severity: Severity,
    pub code: &'static str,
    pub key: String,
    /// The spec's secret, when one claims the key.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    /// Where in the source (a dotenv file's lines).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub lines: Vec<u32>,
    pub message: String,
}

/// Keys Doppler adds to every config's download; nobody claims them and nobody needs to.
const SOURCE_OWN: [&str; 3] = ["DOPPLER_PROJECT", "DOPPLER_CONFIG", "DOPPLER_ENVIRONMENT"];

/// Checks `entries` (from `origin`, for messages) against `wanted`; `claimed` are the keys of
/// every secret the spec declares from the source, needed here or not (not "unclaimed").
pub fn check(
    wanted: &[Wanted],
    claimed: &[String],
    entries: &[Entry],
    origin: &str,
) -> Vec<Finding> {
    let mut out = Vec::new();
    let lines_of = |key: &str| -> Vec<u32> {
        entries
            .iter()
            .filter(|e| e.key == key)
            .filter_map(|e| e.line)
            .collect()
    };
    for w in wanted {
        let found: Vec<&Entry> = entries.iter().filter(|e| e.key == w.key).collect();
        let finding = |code, message: String| Finding {
            severity: Severity::Error,
            code,
            key: w.key.clone(),
            secret: Some(w.secret.clone()),
            lines: lines_of(&w.key),
            message,
        };
        let Some(last) = found.last() else {
            out.push(finding(
                "missing-secret",
                format!("`{}` (secret `{}`) is not in {origin}", w.key, w.secret),
            ));
            continue;
        };
        if found.len() > 1 {
            out.push(finding(
                "duplicate-key",
                format!(
                    "`{}` is set {} times in {origin}: keep one",
                    w.key,
                    found.len()
                ),
            ));
        }
        let v = &last.value;
        let problem = if v.is_empty() {
            Some(("empty-value", "is empty".to_string()))
        } else if v.contains(['\n', '\r']) {
            Some((
                "line-break",
                "holds a line break (CR or LF): a wrapped or CRLF value would reach the service broken".into(),
            ))
        } else if v.contains('\0') {
            Some(("nul-byte", "holds a NUL byte".into()))
        } else if v.trim() != v {
            Some((
                "surrounding-whitespace",
                "starts or ends with whitespace, which the service would read as part of it".into(),
            ))
        } else if v.chars().count() < w.min_length {
            Some((
                "too-short",
                format!(
                    "is {} characters; the spec asks for at least {}",
                    v.chars().count(),
                    w.min_length
                ),
            ))
        } else {
            w.pattern
                .as_ref()
                .filter(|p| !regex::Regex::new(&format!("^(?:{p})$")).is_ok_and(|r| r.is_match(v)))
                .map(|p| {
                    (
                        "pattern-mismatch",
                        format!("does not match the spec's pattern `{p}`"),
                    )
                })
        };
        if let Some((code, what)) = problem {
            out.push(finding(
                code,
                format!("`{}` (secret `{}`) in {origin} {what}", w.key, w.secret),
            ));
        }
    }
    // Keys nobody claims: a typo on one side, or a leftover.
    let mut seen: Vec<&str> = Vec::new();
    for e in entries {
        if seen.contains(&e.key.as_str())
            || SOURCE_OWN.contains(&e.key.as_str())
            || claimed.iter().any(|k| k == &e.key)
            || wanted.iter().any(|w| w.key == e.key)
        {
            continue;
        }
        seen.push(&e.key);
        let lines = lines_of(&e.key);
        let near = claimed
            .iter()
            .find(|k| k.eq_ignore_ascii_case(&e.key) || edit_distance(k, &e.key) <= 2)
            .map(|k| format!(" (did you mean `{k}`?)"))
            .unwrap_or_default();
        out.push(Finding {
            severity: Severity::Warning,
            code: "unclaimed-key",
            key: e.key.clone(),
            secret: None,
            lines,
            message: format!(
                "`{}` in {origin} is claimed by no secret of the spec{near}",
                e.key
            ),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(key: &str, value: &str, line: u32) -> Entry {
        Entry {
            key: key.into(),
            value: value.into(),
            line: Some(line),
        }
    }

    fn wanted(secret: &str, key: &str, min: usize) -> Wanted {
        Wanted {
            secret: secret.into(),
            key: key.into(),
            min_length: min,
            pattern: None,
        }
    }

    #[test]
    fn a_value_off_its_pattern_is_an_error_that_shows_the_pattern_not_the_value() {
        let mut w = wanted("jwt-secret", "JWT_SECRET", 0);
        w.pattern = Some("[A-Za-z0-9_-]{16,}".into());
        let bad = [entry("JWT_SECRET", "malformed/jwt+value", 3)];
        let f = check(std::slice::from_ref(&w), &[], &bad, "secrets.env");
        assert_eq!(codes(&f), [("pattern-mismatch", "JWT_SECRET")]);
        assert!(f[0].message.contains("[A-Za-z0-9_-]{16,}"));
        assert!(!f[0].message.contains("malformed/jwt+value"));
        // The pattern is anchored: a good value with a tail is refused, a good one passes.
        let tail = [entry("JWT_SECRET", "abcdefghijklmnop q", 3)];
        assert_eq!(check(std::slice::from_ref(&w), &[], &tail, "x").len(), 1);
        let good = [entry("JWT_SECRET", "abcdefghijklmnop_-42", 3)];
        assert!(check(&[w], &[], &good, "x").is_empty());
    }

    fn codes(f: &[Finding]) -> Vec<(&str, &str)> {
        f.iter().map(|x| (x.code, x.key.as_str())).collect()
    }

    #[test]
    fn every_fault_of_the_original_is_found_and_no_value_is_shown() {
        let secret_values = [
            "s3cr3t-one",
            "tw0\np4rts",
            " p4dded",
            "sh0rtv4l",
            "dup-a-v4l",
            "dup-b-v4l",
        ];
        let entries = [
            entry("JWT_SECRET", secret_values[0], 1),
            entry("INFLUX_TOKEN", secret_values[1], 2),
            entry("FA_SECRET", secret_values[2], 4),
            entry("DB_PASSWORD", secret_values[3], 5),
            entry("REDIS_PASSWORD", secret_values[4], 6),
            entry("REDIS_PASSWORD", secret_values[5], 9),
            entry("DOPPLER_CONFIG", "prd", 10),
            entry("STEAM_API_KY", "x", 11),
            entry("EMPTY", "", 12),
        ];
        let want = [
            wanted("jwt-secret", "JWT_SECRET", 8),
            wanted("influx-token", "INFLUX_TOKEN", 0),
            wanted("fa-secret", "FA_SECRET", 0),
            wanted("db-password", "DB_PASSWORD", 16),
            wanted("redis-password", "REDIS_PASSWORD", 0),
            wanted("steam-api-key", "STEAM_API_KEY", 0),
            wanted("empty", "EMPTY", 0),
        ];
        let claimed: Vec<String> = want.iter().map(|w| w.key.clone()).collect();
        let f = check(&want, &claimed, &entries, "secrets.env");
        assert_eq!(
            codes(&f),
            [
                ("line-break", "INFLUX_TOKEN"),
                ("surrounding-whitespace", "FA_SECRET"),
                ("too-short", "DB_PASSWORD"),
                ("duplicate-key", "REDIS_PASSWORD"),
                ("missing-secret", "STEAM_API_KEY"),
                ("empty-value", "EMPTY"),
                ("unclaimed-key", "STEAM_API_KY"),
            ]
        );
        let dup = f.iter().find(|x| x.code == "duplicate-key").unwrap();
        assert_eq!(dup.lines, [6, 9], "both places");
        assert!(f
            .last()
            .unwrap()
            .message
            .contains("did you mean `STEAM_API_KEY`"));
        assert!(f
            .iter()
            .all(|x| x.severity == Severity::Error || x.code == "unclaimed-key"));
        let all = format!("{f:?}");
        for v in secret_values {
            assert!(!all.contains(v), "a value leaked: {v:?}");
        }
    }

    #[test]
    fn a_clean_source_has_nothing_to_say() {
        let entries = [entry("A_KEY", "value-long-enough", 1)];
        let f = check(
            &[wanted("a", "A_KEY", 8)],
            &["A_KEY".into()],
            &entries,
            "env",
        );
        assert!(f.is_empty(), "{f:?}");
    }
}
