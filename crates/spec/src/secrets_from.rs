//! Which source an environment's secret values come from (`secrets_from`, `SPROCKET_SECRETS_FROM`,
//! `--secrets-from`): part of the spec's syntax, so the loader validates it; `sprocket-secrets`
//! reads the source.

use std::path::PathBuf;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretsFrom {
    /// A Doppler project's config (token from `DOPPLER_TOKEN`, API host from `DOPPLER_API_HOST`).
    Doppler { project: String, config: String },
    /// A dotenv file (relative paths: to the spec's folder).
    Dotenv(PathBuf),
    /// The process environment of the command.
    Env,
}

/// As written in the spec (`doppler:sprocket/prd`).
impl serde::Serialize for SecretsFrom {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl std::fmt::Display for SecretsFrom {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SecretsFrom::Doppler { project, config } => write!(f, "doppler:{project}/{config}"),
            SecretsFrom::Dotenv(p) => write!(f, "dotenv:{}", p.display()),
            SecretsFrom::Env => write!(f, "env"),
        }
    }
}

/// Doppler's project and config names: letters, digits, `-` and `_` (its dashboard's rule).
fn doppler_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// `doppler:PROJECT/CONFIG`, `dotenv:PATH` or `env`.
pub fn parse(s: &str) -> Result<SecretsFrom, String> {
    let s = s.trim();
    if s == "env" {
        return Ok(SecretsFrom::Env);
    }
    if let Some(path) = s.strip_prefix("dotenv:") {
        if path.is_empty() {
            return Err("`dotenv:` needs a file path, e.g. `dotenv:secrets.env`".into());
        }
        return Ok(SecretsFrom::Dotenv(PathBuf::from(path)));
    }
    if let Some(rest) = s.strip_prefix("doppler:") {
        return match rest.split_once('/') {
            Some((project, config)) if doppler_name(project) && doppler_name(config) => {
                Ok(SecretsFrom::Doppler {
                    project: project.into(),
                    config: config.into(),
                })
            }
            _ => Err(format!(
                "`doppler:{rest}` must be `doppler:PROJECT/CONFIG` (letters, digits, `-`, `_`), e.g. `doppler:sprocket/prd`"
            )),
        };
    }
    Err(format!(
        "`{s}` is not a secrets source: use `doppler:PROJECT/CONFIG`, `dotenv:PATH` or `env`"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_three_sources_and_their_mistakes() {
        assert_eq!(parse("env"), Ok(SecretsFrom::Env));
        assert_eq!(
            parse("dotenv:.secrets/offline.env"),
            Ok(SecretsFrom::Dotenv(".secrets/offline.env".into()))
        );
        assert_eq!(
            parse("doppler:sprocket/prd"),
            Ok(SecretsFrom::Doppler {
                project: "sprocket".into(),
                config: "prd".into()
            })
        );
        assert_eq!(
            parse("doppler:sprocket/prd").unwrap().to_string(),
            "doppler:sprocket/prd"
        );
        for bad in [
            "",
            "vault",
            "dotenv:",
            "doppler:sprocket",
            "doppler:a/b/c",
            "doppler:/prd",
            "doppler:a b/c",
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }
}
