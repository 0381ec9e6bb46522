//! Doppler, read as its CLI reads it: one `GET /v3/configs/config/secrets/download` with
//! `project`, `config`, `format=json` and `include_dynamic_secrets=true`, `Authorization: Bearer
//! <token>`; the answer is a flat `{"NAME": "value"}`. With the `ETag` of the last answer in
//! `If-None-Match`, Doppler answers 304 when nothing changed. 429 and 5xx are retried five times
//! from 0.5 s, doubling, as the CLI does; 401, 403 and 404 are clear errors that name the project
//! and config — never the token. The token comes from `DOPPLER_TOKEN` and the API host from
//! `DOPPLER_API_HOST` (default `https://api.doppler.com`): the Doppler CLI's own variables.

use crate::Entry;
use std::time::Duration;

pub const DEFAULT_API_HOST: &str = "https://api.doppler.com";

#[derive(Debug, thiserror::Error)]
pub enum DopplerError {
    #[error(
        "no Doppler token: set DOPPLER_TOKEN to a service token of `{project}/{config}` (dp.st.…)"
    )]
    NoToken { project: String, config: String },
    #[error("Doppler refused the token for `{project}/{config}` ({status}): {message}\n  hint: DOPPLER_TOKEN must be a valid token with access to that project and config")]
    Refused {
        project: String,
        config: String,
        status: u16,
        message: String,
    },
    #[error("Doppler has no config `{project}/{config}` ({message})\n  hint: check the environment's `secrets_from` (doppler:PROJECT/CONFIG)")]
    NotFound {
        project: String,
        config: String,
        message: String,
    },
    #[error("cannot reach Doppler at {host}: {reason}")]
    Unreachable { host: String, reason: String },
    #[error(
        "Doppler answered {status} for `{project}/{config}` after {attempts} attempt(s): {message}"
    )]
    Status {
        project: String,
        config: String,
        status: u16,
        attempts: u32,
        message: String,
    },
    #[error(
        "Doppler's answer for `{project}/{config}` is not a flat JSON object of strings ({reason})"
    )]
    Malformed {
        project: String,
        config: String,
        reason: String,
    },
}

/// What a download gave.
#[derive(Debug)]
pub enum Download {
    /// The config's secrets, and the `ETag` to send next time.
    Fresh {
        entries: Vec<Entry>,
        etag: Option<String>,
    },
    /// Unchanged since the `ETag` sent (304).
    NotModified,
}

pub struct Doppler {
    api_host: String,
    token: String,
    http: reqwest::Client,
    /// The first retry's wait (doubling after).
    backoff: Duration,
}

impl Doppler {
    pub fn new(api_host: &str, token: &str) -> Doppler {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(30))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("an HTTP client");
        Doppler {
            api_host: api_host.trim_end_matches('/').to_string(),
            token: token.to_string(),
            http,
            backoff: Duration::from_millis(500),
        }
    }

    /// From `DOPPLER_TOKEN` and `DOPPLER_API_HOST`, as the Doppler CLI reads them.
    pub fn from_env(project: &str, config: &str) -> Result<Doppler, DopplerError> {
        let token = std::env::var("DOPPLER_TOKEN")
            .ok()
            .filter(|t| !t.trim().is_empty())
            .ok_or_else(|| DopplerError::NoToken {
                project: project.into(),
                config: config.into(),
            })?;
        let host = std::env::var("DOPPLER_API_HOST")
            .ok()
            .filter(|h| !h.trim().is_empty())
            .unwrap_or_else(|| DEFAULT_API_HOST.into());
        Ok(Doppler::new(&host, token.trim()))
    }

    /// Shorter waits between retries (tests).
    pub fn with_backoff(mut self, first: Duration) -> Doppler {
        self.backoff = first;
        self
    }

    pub async fn download(
        &self,
        project: &str,
        config: &str,
        etag: Option<&str>,
    ) -> Result<Download, DopplerError> {
        let mut url = reqwest::Url::parse(&format!(
            "{}/v3/configs/config/secrets/download",
            self.api_host
        ))
        .map_err(|e| DopplerError::Unreachable {
            host: self.api_host.clone(),
            reason: format!("not a URL: {e}"),
        })?;
        url.query_pairs_mut()
            .append_pair("project", project)
            .append_pair("config", config)
            .append_pair("format", "json")
            .append_pair("include_dynamic_secrets", "true");
        let mut wait = self.backoff;
        let mut attempts = 0;
        loop {
            attempts += 1;
            let mut req = self
                .http
                .get(url.clone())
                .bearer_auth(&self.token)
                .header(reqwest::header::ACCEPT, "application/json");
            if let Some(tag) = etag {
                req = req.header(reqwest::header::IF_NONE_MATCH, tag);
            }
            let resp = match req.send().await {
                Ok(r) => r,
                Err(e) => {
                    return Err(DopplerError::Unreachable {
                        host: self.api_host.clone(),
                        reason: e.without_url().to_string(),
                    })
                }
            };
            let status = resp.status().as_u16();
            let tag = resp
                .headers()
                .get(reqwest::header::ETAG)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            let body = resp.bytes().await.map_err(|e| DopplerError::Unreachable {
                host: self.api_host.clone(),
                reason: e.without_url().to_string(),
            })?;
            let (p, c) = (project.to_string(), config.to_string());
            match status {
                200 => {
                    return parse(&body, project, config)
                        .map(|entries| Download::Fresh { entries, etag: tag })
                }
                304 => return Ok(Download::NotModified),
                401 | 403 => {
                    return Err(DopplerError::Refused {
                        project: p,
                        config: c,
                        status,
                        message: messages(&body),
                    })
                }
                404 => {
                    return Err(DopplerError::NotFound {
                        project: p,
                        config: c,
                        message: messages(&body),
                    })
                }
                429 | 500..=599 if attempts <= 5 => {
                    tokio::time::sleep(wait).await;
                    wait *= 2;
                }
                _ => {
                    return Err(DopplerError::Status {
                        project: p,
                        config: c,
                        status,
                        attempts,
                        message: messages(&body),
                    })
                }
            }
        }
    }
}

/// `{"NAME":"value",…}` → entries in the answer's order (Doppler sorts them by name).
fn parse(body: &[u8], project: &str, config: &str) -> Result<Vec<Entry>, DopplerError> {
    let malformed = |reason: String| DopplerError::Malformed {
        project: project.into(),
        config: config.into(),
        reason,
    };
    // serde_json's error quotes nothing past its position; only the class and place are kept.
    let map: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(body).map_err(|e| {
            malformed(format!(
                "{:?} at line {} column {}",
                e.classify(),
                e.line(),
                e.column()
            ))
        })?;
    map.into_iter()
        .map(|(key, v)| match v {
            serde_json::Value::String(value) => Ok(Entry {
                key,
                value,
                line: None,
            }),
            _ => Err(malformed(format!("`{key}` is not a string"))),
        })
        .collect()
}

/// Doppler's `{"messages":[…],"success":false}`, joined; at most 200 characters of anything else.
fn messages(body: &[u8]) -> String {
    serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| {
            v["messages"].as_array().map(|m| {
                m.iter()
                    .filter_map(|x| x.as_str())
                    .collect::<Vec<_>>()
                    .join("; ")
            })
        })
        .unwrap_or_else(|| String::from_utf8_lossy(body).chars().take(200).collect())
}
