//! Error lines in a service's log: which lines count, how a repeated message is recognised
//! across its varying parts, and the judgment against the service's daily budget (the runbook:
//! fewer than 50 a day is healthy).

use crate::report::{Finding, Kind};
use crate::Severity;
use std::collections::HashMap;

pub use sprocket_spec::model::DEFAULT_ERRORS_PER_DAY as ERRORS_PER_DAY;

/// Markers of an error line in the formats the platform's services write: logfmt and JSON
/// levels (Traefik, Go, pino's numeric 50/60), bracketed levels (RabbitMQ, Python), a
/// level word as a field, Go panics and Python tracebacks. Matched on the lower-cased line.
const MARKERS: &[&str] = &[
    "level=error",
    "level=fatal",
    "level=panic",
    "\"level\":\"error\"",
    "\"level\":\"fatal\"",
    "\"level\":50",
    "\"level\":60",
    "\"severity\":\"error\"",
    "[error]",
    "[fatal]",
    "[critical]",
    " error ",
    " error:",
    " fatal ",
    " fatal:",
    "panic:",
    "traceback (most recent call last)",
];

/// Whether a log line reports an error.
pub fn is_error(line: &str) -> bool {
    let l = format!(" {} ", line.to_ascii_lowercase());
    MARKERS.iter().any(|m| l.contains(m))
}

/// The line with every long token that mixes letters and digits (a key, a token, a hash: what
/// a careless app may log) replaced by `<redacted>`: an example line `check` shows never
/// carries one.
pub fn redact(line: &str) -> String {
    tokens(&credentials(line))
}

/// Words after which a log line's value is a credential.
const CREDENTIAL_WORDS: &[&str] = &[
    "password",
    "passwd",
    "pwd",
    "secret",
    "token",
    "apikey",
    "api_key",
    "api-key",
    "authorization",
    "auth",
    "key",
];

/// `password=…`, `"token":"…"`, `secret: …` and the user:password of a URL, replaced.
fn credentials(line: &str) -> String {
    let lower = line.to_ascii_lowercase();
    let b = line.as_bytes();
    let mut cut: Vec<(usize, usize)> = Vec::new();
    for w in CREDENTIAL_WORDS {
        let mut from = 0;
        while let Some(i) = lower[from..].find(w) {
            let mut j = from + i + w.len();
            from = j;
            // the word, then optional quote, then `=` or `:`, then optional spaces and quote
            if j < b.len() && (b[j] == b'"' || b[j] == b'\'') {
                j += 1;
            }
            if j >= b.len() || !(b[j] == b'=' || b[j] == b':') {
                continue;
            }
            j += 1;
            while j < b.len() && (b[j] == b' ' || b[j] == b'"' || b[j] == b'\'') {
                j += 1;
            }
            let start = j;
            while j < b.len() && !matches!(b[j], b' ' | b'"' | b'\'' | b',' | b'&' | b'}' | b';') {
                j += 1;
            }
            if j > start {
                cut.push((start, j));
            }
        }
    }
    // scheme://user:password@host
    let mut from = 0;
    while let Some(i) = line[from..].find("://") {
        let start = from + i + 3;
        let end = line[start..]
            .find(|c: char| c == '/' || c.is_whitespace())
            .map_or(line.len(), |e| start + e);
        if let Some(at) = line[start..end].rfind('@') {
            cut.push((start, start + at));
        }
        from = start;
    }
    cut.sort();
    let mut out = String::with_capacity(line.len());
    let mut pos = 0;
    for (s, e) in cut {
        if s < pos {
            continue;
        }
        out.push_str(&line[pos..s]);
        out.push_str("<redacted>");
        pos = e;
    }
    out.push_str(&line[pos..]);
    out
}

/// Long tokens that mix letters and digits (a key, a hash).
fn tokens(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut token = String::new();
    let flush = |t: &mut String, out: &mut String| {
        let secretish = t.len() >= 20
            && t.chars().any(|c| c.is_ascii_digit())
            && t.chars().any(|c| c.is_ascii_alphabetic());
        out.push_str(if secretish { "<redacted>" } else { t });
        t.clear();
    };
    for c in line.chars() {
        if c.is_ascii_alphanumeric() || "+/_-.".contains(c) {
            token.push(c);
        } else {
            flush(&mut token, &mut out);
            out.push(c);
        }
    }
    flush(&mut token, &mut out);
    out
}

/// The line with what varies between repetitions (timestamps, numbers, ids, addresses) folded,
/// so the same message counts as one: digits and hex runs become `#`, at most 160 characters.
pub fn shape(line: &str) -> String {
    let mut out = String::new();
    let mut in_num = false;
    for c in line.trim().chars() {
        if c.is_ascii_digit() {
            if !in_num {
                out.push('#');
            }
            in_num = true;
            continue;
        }
        if in_num && c.is_ascii_hexdigit() {
            continue;
        }
        in_num = false;
        out.push(c);
        if out.chars().count() >= 160 {
            break;
        }
    }
    out
}

/// A service's error lines, counted as its log streams by.
#[derive(Debug, Default)]
pub struct Tally {
    pub lines: u64,
    pub errors: u64,
    shapes: HashMap<String, (u64, String)>,
}

impl Tally {
    pub fn add(&mut self, line: &str) {
        self.lines += 1;
        if !is_error(line) {
            return;
        }
        self.errors += 1;
        // A bounded map: a log of only distinct errors does not grow it without end.
        if self.shapes.len() < 10_000 || self.shapes.contains_key(&shape(line)) {
            let e = self
                .shapes
                .entry(shape(line))
                .or_insert_with(|| (0, redact(line).chars().take(200).collect()));
            e.0 += 1;
        }
    }

    /// The most repeated error and how often (an example line as written, not its shape).
    pub fn top(&self) -> Option<(u64, &str)> {
        self.shapes
            .values()
            .max_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)))
            .map(|(n, l)| (*n, l.as_str()))
    }

    /// The finding for `service` against its daily budget.
    pub fn judge(&self, service: &str, budget: u64) -> Finding {
        // The budget is what is healthy (the runbook: under 50): reaching it warns; a budget of
        // 0 warns on the first error.
        let sev = if self.errors > 0 && self.errors >= budget {
            Severity::Warning
        } else {
            Severity::Ok
        };
        let mut detail = format!(
            "{} error line(s) in 24 h (budget {budget}) of {} line(s)",
            self.errors, self.lines
        );
        if let Some((n, l)) = self.top() {
            detail.push_str(&format!("; most repeated ({n}×): {l}"));
        }
        Finding::new(Kind::Errors, service, sev, detail)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_lines_in_the_platforms_formats() {
        for l in [
            r#"time="2026-12-03T10:00:00Z" level=error msg="backend not found""#,
            r#"{"level":"error","msg":"boom"}"#,
            r#"{"level":50,"time":1,"msg":"db down"}"#,
            "2026-12-03 10:00:00.123 [error] <0.123.0> closing AMQP connection",
            "ERROR: relation \"users\" does not exist",
            "Error: connect ECONNREFUSED 10.0.0.5:6379",
            "panic: runtime error: index out of range",
            "Traceback (most recent call last):",
        ] {
            assert!(is_error(l), "{l}");
        }
        for l in [
            r#"time="…" level=info msg="Configuration loaded""#,
            "1:M 03 Dec 2026 10:00:00.000 * Ready to accept connections",
            "errors_total 0",
            "no errors found",
            r#"{"level":30,"msg":"ok"}"#,
        ] {
            assert!(!is_error(l), "{l}");
        }
    }

    #[test]
    fn an_example_line_carries_no_token() {
        assert_eq!(
            redact("auth failed for key=sk_live_4eC39HqLyjWDarjtT1zdp7dc (user 42)"),
            "auth failed for key=<redacted> (user 42)"
        );
        assert_eq!(
            redact("Error: connect ECONNREFUSED 10.0.0.5:6379"),
            "Error: connect ECONNREFUSED 10.0.0.5:6379"
        );
        assert_eq!(
            redact("amqp://admin:S3cretPass@rabbitmq:5672/ refused"),
            "amqp://<redacted>@rabbitmq:5672/ refused"
        );
        assert_eq!(
            redact("login failed password=Hunter2x! user=bob"),
            "login failed password=<redacted> user=bob"
        );
        assert_eq!(
            redact(r#"{"level":"error","token":"abcdEFGH1234","msg":"x"}"#),
            r#"{"level":"error","token":"<redacted>","msg":"x"}"#
        );
        assert_eq!(redact("keys: 3 monkeys"), "keys: 3 monkeys");
    }

    #[test]
    fn the_same_message_with_other_numbers_is_one() {
        assert_eq!(
            shape("2026-12-03T10:00:01Z error: connect 10.0.0.5:6379 refused (id 4f3a9c)"),
            shape("2026-12-03T11:22:33Z error: connect 10.0.0.7:6379 refused (id 0b2c11)")
        );
        let mut t = Tally::default();
        for i in 0..60 {
            t.add(&format!("Error: connect ECONNREFUSED 10.0.0.{i}:6379"));
        }
        t.add("Error: something else");
        t.add("all good");
        assert_eq!((t.lines, t.errors), (62, 61));
        let (n, example) = t.top().unwrap();
        assert_eq!(n, 60);
        assert!(example.starts_with("Error: connect ECONNREFUSED"));
        let f = t.judge("core", ERRORS_PER_DAY);
        assert_eq!(f.severity, Severity::Warning);
        assert!(
            f.detail.contains("61 error line(s) in 24 h (budget 50)"),
            "{}",
            f.detail
        );
        assert_eq!(t.judge("core", 100).severity, Severity::Ok);
    }
}
