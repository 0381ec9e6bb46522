//! Raw reads of the Engine API, for the one place bollard's models lose data: the engine writes
//! a container's health check as `Healthcheck`, bollard reads `HealthCheck`, and serde is
//! case-sensitive — so every health check would read back as absent and show as a change on
//! every `plan`. We fetch `/services` as JSON, rename the key, and then use bollard's types.

use serde_json::Value;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[derive(Debug, thiserror::Error)]
pub enum RawError {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("the engine answered {status}: {body}")]
    Status { status: String, body: String },
    #[error("unreadable answer: {0}")]
    Json(#[from] serde_json::Error),
    #[error("DOCKER_HOST `{0}` is neither unix:// nor tcp://")]
    Endpoint(String),
}

/// Docker API `filters` (`{"label": ["k=v"]}`) as a query value, percent-encoded.
pub fn filters_query(filters: &std::collections::HashMap<String, Vec<String>>) -> String {
    serde_json::to_string(filters)
        .unwrap_or_default()
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// `GET path` (e.g. `/v1.41/services`) on `endpoint` (`unix:///…` or `tcp://host:port`), as JSON.
pub async fn get_json(endpoint: &str, path: &str) -> Result<Value, RawError> {
    let request =
        format!("GET {path} HTTP/1.0\r\nHost: docker\r\nAccept: application/json\r\n\r\n");
    let mut response = Vec::new();
    let io = async {
        if let Some(sock) = endpoint.strip_prefix("unix://") {
            let mut s = tokio::net::UnixStream::connect(sock).await?;
            s.write_all(request.as_bytes()).await?;
            s.read_to_end(&mut response).await?;
        } else if let Some(addr) = endpoint
            .strip_prefix("tcp://")
            .or_else(|| endpoint.strip_prefix("http://"))
        {
            let mut s = tokio::net::TcpStream::connect(addr.trim_end_matches('/')).await?;
            s.write_all(request.as_bytes()).await?;
            s.read_to_end(&mut response).await?;
        } else {
            return Err(RawError::Endpoint(endpoint.to_string()));
        }
        Ok(())
    };
    tokio::time::timeout(Duration::from_secs(30), io)
        .await
        .map_err(|_| {
            RawError::Io(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "engine did not answer in 30s",
            ))
        })??;
    let split = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| RawError::Status {
            status: "malformed".into(),
            body: String::new(),
        })?;
    let head = String::from_utf8_lossy(&response[..split]).to_string();
    let body = &response[split + 4..];
    let status = head.lines().next().unwrap_or_default().to_string();
    if !status.contains(" 200") {
        return Err(RawError::Status {
            status,
            body: String::from_utf8_lossy(body).chars().take(300).collect(),
        });
    }
    Ok(serde_json::from_slice(body)?)
}

/// Renames the engine's `Healthcheck` keys to the spelling bollard's models read.
pub fn fix_healthcheck_keys(v: &mut Value) {
    match v {
        Value::Object(m) => {
            if let Some(h) = m.remove("Healthcheck") {
                m.insert("HealthCheck".into(), h);
            }
            m.values_mut().for_each(fix_healthcheck_keys);
        }
        Value::Array(items) => items.iter_mut().for_each(fix_healthcheck_keys),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn renames_nested_healthcheck() {
        let mut v = serde_json::json!([{ "Spec": { "TaskTemplate": { "ContainerSpec": { "Healthcheck": { "Test": ["CMD", "true"] } } } } }]);
        super::fix_healthcheck_keys(&mut v);
        let svc: Vec<bollard::models::Service> = serde_json::from_value(v).unwrap();
        let hc = svc[0]
            .spec
            .as_ref()
            .unwrap()
            .task_template
            .as_ref()
            .unwrap()
            .container_spec
            .as_ref()
            .unwrap()
            .health_check
            .as_ref()
            .unwrap();
        assert_eq!(hc.test.as_deref().unwrap(), ["CMD", "true"]);
    }
}
