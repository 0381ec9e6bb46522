//! What a sync writes to Vault, decided without touching it: each secret the enabled services
//! need, against the version Vault holds now. A value from the source is written when it
//! differs; a generated secret is generated once, when Vault has none, and kept from then on
//! (only `secrets rotate` makes a new one). Every write names the version it replaces
//! (check-and-set), so a concurrent writer is never overwritten.

use crate::value;
use serde::Serialize;
use sprocket_spec::model::Alphabet;
use sprocket_spec::names::VaultPath;

/// Where a secret's next value comes from.
#[derive(Clone)]
pub enum Origin {
    /// The environment's source holds this value (checked).
    Source(String),
    Generate {
        alphabet: Alphabet,
        length: usize,
    },
}

impl std::fmt::Debug for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Origin::Source(_) => write!(f, "Source(<redacted>)"),
            Origin::Generate { alphabet, length } => write!(f, "Generate({alphabet:?}, {length})"),
        }
    }
}

/// One secret to keep in Vault.
#[derive(Debug, Clone)]
pub struct Want {
    pub secret: String,
    pub location: VaultPath,
    pub origin: Origin,
}

/// What Vault holds for it now.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Current {
    /// The current version (0: none); a write names it as check-and-set.
    pub version: u64,
    /// The current version's value; `None` when there is none or it was deleted.
    pub value: Option<String>,
}

impl std::fmt::Debug for Current {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Current {{ version: {}, value: {} }}",
            self.version,
            if self.value.is_some() {
                "<redacted>"
            } else {
                "none"
            }
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Created,
    Changed,
    Unchanged,
}

/// The decision for one secret. `value` is what Vault will hold (the current one when
/// unchanged); `Debug` never shows it.
#[derive(Clone)]
pub struct Step {
    pub secret: String,
    pub location: VaultPath,
    pub outcome: Outcome,
    /// Check-and-set version of the write (unused when unchanged).
    pub cas: u64,
    pub value: String,
}

impl std::fmt::Debug for Step {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Step {{ {}: {:?}, cas {}, value: <redacted> }}",
            self.secret, self.outcome, self.cas
        )
    }
}

/// Decides every secret's step. `current` is looked up by secret name (absent: nothing in
/// Vault). `rotate` names secrets that get a new value even when Vault has one (a generated
/// one regenerated; a source one re-read, which is "unchanged" when the source holds the same).
pub fn plan(
    wants: &[Want],
    current: &dyn Fn(&str) -> Current,
    rotate: &[String],
) -> std::io::Result<Vec<Step>> {
    let mut out = Vec::new();
    for w in wants {
        let now = current(&w.secret);
        let exists = now.value.is_some();
        let new_value = match (&w.origin, &now.value) {
            (Origin::Source(v), Some(old)) if v == old => None,
            (Origin::Source(v), _) => Some(v.clone()),
            (Origin::Generate { .. }, Some(_)) if !rotate.contains(&w.secret) => None,
            (Origin::Generate { alphabet, length }, _) => {
                Some(value::generate(*alphabet, *length)?)
            }
        };
        out.push(match new_value {
            None => Step {
                secret: w.secret.clone(),
                location: w.location.clone(),
                outcome: Outcome::Unchanged,
                cas: now.version,
                value: now.value.unwrap_or_default(),
            },
            Some(value) => Step {
                secret: w.secret.clone(),
                location: w.location.clone(),
                outcome: if exists {
                    Outcome::Changed
                } else {
                    Outcome::Created
                },
                cas: now.version,
                value,
            },
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn want(name: &str, origin: Origin) -> Want {
        Want {
            secret: name.into(),
            location: sprocket_spec::names::secret_vault_path("ns", name, None, None),
            origin,
        }
    }

    fn gen() -> Origin {
        Origin::Generate {
            alphabet: Alphabet::Hex,
            length: 32,
        }
    }

    #[test]
    fn generated_once_then_kept_and_source_values_written_when_they_differ() {
        let wants = vec![
            want("a", gen()),
            want("b", gen()),
            want("c", Origin::Source("same".into())),
            want("d", Origin::Source("new".into())),
            want("e", Origin::Source("first".into())),
        ];
        let vault = |name: &str| match name {
            "b" => Current {
                version: 3,
                value: Some("kept".into()),
            },
            "c" => Current {
                version: 1,
                value: Some("same".into()),
            },
            "d" => Current {
                version: 7,
                value: Some("old".into()),
            },
            // deleted in Vault: version 2 is current, its value gone
            "e" => Current {
                version: 2,
                value: None,
            },
            _ => Current::default(),
        };
        let steps = plan(&wants, &vault, &[]).unwrap();
        let by = |n: &str| steps.iter().find(|s| s.secret == n).unwrap().clone();
        assert_eq!((by("a").outcome, by("a").cas), (Outcome::Created, 0));
        assert_eq!(by("a").value.len(), 32);
        assert_eq!(
            (by("b").outcome, by("b").value.as_str()),
            (Outcome::Unchanged, "kept")
        );
        assert_eq!(by("c").outcome, Outcome::Unchanged);
        assert_eq!(
            (by("d").outcome, by("d").cas, by("d").value.as_str()),
            (Outcome::Changed, 7, "new")
        );
        assert_eq!((by("e").outcome, by("e").cas), (Outcome::Created, 2));
        // Two generated secrets never share a value.
        let twice = plan(
            &[want("x", gen()), want("y", gen())],
            &|_| Current::default(),
            &[],
        )
        .unwrap();
        assert_ne!(twice[0].value, twice[1].value);
    }

    #[test]
    fn rotation_regenerates_and_rereads() {
        let wants = vec![want("a", gen()), want("c", Origin::Source("same".into()))];
        let vault = |name: &str| Current {
            version: 4,
            value: Some(if name == "c" { "same" } else { "old" }.into()),
        };
        let steps = plan(&wants, &vault, &["a".into(), "c".into()]).unwrap();
        assert_eq!((steps[0].outcome, steps[0].cas), (Outcome::Changed, 4));
        assert_ne!(steps[0].value, "old");
        assert_eq!(
            steps[1].outcome,
            Outcome::Unchanged,
            "the source holds the same value"
        );
    }

    #[test]
    fn debug_never_shows_a_value() {
        let s = plan(
            &[want("c", Origin::Source("canary-4711".into()))],
            &|_| Current::default(),
            &[],
        )
        .unwrap();
        let shown = format!(
            "{s:?} {:?} {:?}",
            want("c", Origin::Source("canary-4711".into())),
            Current {
                version: 1,
                value: Some("canary-4711".into())
            }
        );
        assert!(!shown.contains("canary-4711"), "{shown}");
    }
}
