//! A dotenv file, read the way `doppler secrets download --format env` writes one and the usual
//! tools read one: `KEY=value`, an optional `export `, `#` comments and blank lines; values bare,
//! `'single-quoted'` (literal) or `"double-quoted"` (`\n`, `\r`, `\t`, `\"`, `\\` escapes; may span
//! lines). Nothing is trimmed from a value — surrounding whitespace, a CR from a CRLF file or a
//! line break is reported by [`crate::check`], not silently repaired (the original platform's
//! secrets came out line-broken exactly that way).

use crate::Entry;

/// A line that is not `KEY=value`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    pub line: u32,
    pub message: String,
}

/// Every entry in file order (duplicates kept), or the lines that do not parse.
pub fn parse(text: &str) -> Result<Vec<Entry>, Vec<ParseError>> {
    let mut entries = Vec::new();
    let mut errors = Vec::new();
    let lines: Vec<&str> = text.split('\n').collect();
    let mut i = 0;
    while i < lines.len() {
        let n = i as u32 + 1;
        let raw = lines[i];
        i += 1;
        let line = raw.trim_start();
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").unwrap_or(line);
        let Some((key, rest)) = line.split_once('=') else {
            errors.push(ParseError {
                line: n,
                message: "not `KEY=value`".into(),
            });
            continue;
        };
        let key = key.trim_end();
        if !valid_key(key) {
            // Not quoted: a line that is not `KEY=value` may be half of a wrapped secret.
            errors.push(ParseError {
                line: n,
                message: "the text before `=` is not a key (letters, digits and `_`, not starting with a digit); a line of a wrapped value?".into(),
            });
            continue;
        }
        let value = match rest.chars().next() {
            Some(q @ ('"' | '\'')) => {
                // Quoted: up to the closing quote, over following lines if need be.
                let mut body = rest[1..].to_string();
                loop {
                    if let Some(end) = closing(&body, q) {
                        let after = body[end + 1..].trim();
                        if !after.is_empty() && !after.starts_with('#') {
                            errors.push(ParseError {
                                line: n,
                                message: "text after the closing quote".into(),
                            });
                        }
                        body.truncate(end);
                        break Some(if q == '"' { unescape(&body) } else { body });
                    }
                    if i >= lines.len() {
                        errors.push(ParseError {
                            line: n,
                            message: format!("the {q} quote opened here is never closed"),
                        });
                        break None;
                    }
                    body.push('\n');
                    body.push_str(lines[i]);
                    i += 1;
                }
            }
            _ => Some(rest.to_string()),
        };
        if let Some(value) = value {
            entries.push(Entry {
                key: key.to_string(),
                value,
                line: Some(n),
            });
        }
    }
    if errors.is_empty() {
        Ok(entries)
    } else {
        Err(errors)
    }
}

/// Secret keys as Doppler names them: environment variable names, the spec's own rule
/// ([`sprocket_spec::names::check_env_key`]).
pub fn valid_key(k: &str) -> bool {
    sprocket_spec::names::check_env_key(k).is_ok()
}

/// The byte index of the quote that closes `body` (a `\"` does not, in double quotes).
fn closing(body: &str, q: char) -> Option<usize> {
    let mut escaped = false;
    for (i, c) in body.char_indices() {
        match c {
            '\\' if q == '"' && !escaped => escaped = true,
            c if c == q && !escaped => return Some(i),
            _ => escaped = false,
        }
    }
    None
}

fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some('t') => out.push('\t'),
            Some(other) => out.push(other),
            None => out.push('\\'),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kv(text: &str) -> Vec<(String, String, u32)> {
        parse(text)
            .unwrap()
            .into_iter()
            .map(|e| (e.key, e.value, e.line.unwrap()))
            .collect()
    }

    #[test]
    fn bare_quoted_exported_and_commented_lines() {
        let got = kv("# a comment\n\nA=plain\nexport B='single $x'\nC=\"dq \\\"x\\\" \\n\"\nD=\n");
        assert_eq!(
            got,
            [
                ("A".into(), "plain".into(), 3),
                ("B".into(), "single $x".into(), 4),
                ("C".into(), "dq \"x\" \n".into(), 5),
                ("D".into(), "".into(), 6),
            ]
        );
    }

    #[test]
    fn nothing_is_repaired_duplicates_are_kept() {
        // A CRLF file leaves a CR in bare values; spaces stay; a quoted value may span lines.
        let got = kv("A=x\r\nB= padded \nA=again\nC=\"two\nlines\"\n");
        assert_eq!(got[0], ("A".into(), "x\r".into(), 1));
        assert_eq!(got[1], ("B".into(), " padded ".into(), 2));
        assert_eq!(got[2], ("A".into(), "again".into(), 3));
        assert_eq!(got[3], ("C".into(), "two\nlines".into(), 4));
    }

    #[test]
    fn bad_lines_are_reported_with_their_numbers() {
        let errs = parse("OK=1\nno equals sign\n1BAD=x\nab+/cd=\nQ=\"never closed\n").unwrap_err();
        let lines: Vec<u32> = errs.iter().map(|e| e.line).collect();
        assert_eq!(lines, [2, 3, 4, 5]);
        // Half of a wrapped base64 value is not quoted back.
        assert!(
            errs.iter().all(|e| !e.message.contains("ab+/cd")),
            "{errs:?}"
        );
        assert!(errs[3].message.contains("never closed"));
    }
}
