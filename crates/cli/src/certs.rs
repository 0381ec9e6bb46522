//! The certificates the edge router serves and keeps, for `status`: every routed host's —
//! issuer, not-after, days left, with the runbook's thresholds (info under 30 days, critical
//! under 7) — without `openssl s_client`. Read two ways:
//!
//! - **served**: a TLS handshake with the edge's HTTPS port on this machine, asking for the host
//!   (SNI), as a browser would; the certificate is read, not trusted (a self-signed or a test
//!   CA's is reported as what it is);
//! - **kept**: the certificates Traefik's `acme.json` holds, read through the Docker API from its
//!   running container (`GET /containers/{id}/archive`). The file holds private keys too: only
//!   the certificates are parsed; nothing of it is printed or kept.
//!
//! In an ACME environment a host served Traefik's own default certificate has none: an error,
//! with the reason from Traefik's log when it has one.

use serde::Serialize;
use sprocket_desired::traefik::ACME_STORAGE;
use std::sync::Arc;
use std::time::Duration;

/// The subject Traefik gives the certificate it serves when it has no other.
pub const TRAEFIK_DEFAULT_CN: &str = "TRAEFIK DEFAULT CERT";

/// What a certificate says, as far as `status` needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leaf {
    pub subject: String,
    pub issuer: String,
    /// Seconds since the Unix epoch.
    pub not_before: i64,
    pub not_after: i64,
    /// Its DNS names (subject alternative names).
    pub names: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Ok,
    /// Under 30 days left.
    Info,
    /// Under 7 days left, or expired.
    Critical,
    /// No certificate of its own for the host, or none could be read.
    Error,
}

/// One line of `status`'s certificates.
#[derive(Debug, Clone, Serialize)]
pub struct CertInfo {
    pub host: String,
    /// `served` (the handshake) or `acme.json` (what Traefik keeps).
    pub source: &'static str,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub issuer: String,
    /// RFC 3339, UTC.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub not_after: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub days_left: Option<i64>,
    pub level: Level,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// The runbook's thresholds (`check`'s, one place).
pub fn level(days_left: i64) -> Level {
    use sprocket_check::Severity;
    match sprocket_check::judge::certificate(days_left) {
        Severity::Critical => Level::Critical,
        Severity::Info | Severity::Warning => Level::Info,
        Severity::Ok => Level::Ok,
    }
}

/// Days left until `not_after` (seconds since the epoch) at `now`, their level, and `expired`
/// once it is past.
fn expiry(not_after: i64, now: i64) -> (i64, Level, Option<String>) {
    let days = (not_after - now).div_euclid(86_400);
    if not_after <= now {
        (days, Level::Critical, Some("expired".into()))
    } else {
        (days, level(days), None)
    }
}

/// `2026-12-03T10:00:00Z` from seconds since the epoch (UTC).
pub fn rfc3339(secs: i64) -> String {
    let (y, m, d, hh, mm, ss) = sprocket_datastores::sigv4::utc(secs);
    format!("{y:04}-{m:02}-{d:02}T{hh:02}:{mm:02}:{ss:02}Z")
}

/// Parses a DER certificate.
pub fn parse_der(der: &[u8]) -> Result<Leaf, String> {
    use x509_cert::der::{oid::AssociatedOid, Decode};
    let c = x509_cert::Certificate::from_der(der).map_err(|e| format!("not a certificate: {e}"))?;
    let tbs = &c.tbs_certificate;
    let not_before = tbs.validity.not_before.to_unix_duration().as_secs() as i64;
    let not_after = tbs.validity.not_after.to_unix_duration().as_secs() as i64;
    let mut names = Vec::new();
    for ext in tbs.extensions.iter().flatten() {
        if ext.extn_id == x509_cert::ext::pkix::SubjectAltName::OID {
            if let Ok(san) =
                x509_cert::ext::pkix::SubjectAltName::from_der(ext.extn_value.as_bytes())
            {
                for n in san.0 {
                    if let x509_cert::ext::pkix::name::GeneralName::DnsName(d) = n {
                        names.push(d.to_string());
                    }
                }
            }
        }
    }
    Ok(Leaf {
        subject: tbs.subject.to_string(),
        issuer: tbs.issuer.to_string(),
        not_before,
        not_after,
        names,
    })
}

/// The first certificate of a PEM chain.
pub fn parse_pem(pem: &str) -> Result<Leaf, String> {
    use base64::Engine;
    let body: String = pem
        .split("-----BEGIN CERTIFICATE-----")
        .nth(1)
        .and_then(|rest| rest.split("-----END CERTIFICATE-----").next())
        .ok_or("no PEM certificate")?
        .split_whitespace()
        .collect();
    let der = base64::engine::general_purpose::STANDARD
        .decode(body)
        .map_err(|e| format!("PEM: {e}"))?;
    parse_der(&der)
}

/// The certificates of Traefik's `acme.json` (every resolver), by their domains. Its
/// `certificate` fields are base64 of a PEM chain; keys are never looked at.
pub fn acme_certificates(json: &[u8]) -> Result<Vec<(Vec<String>, Leaf)>, String> {
    use base64::Engine;
    let v: serde_json::Value =
        serde_json::from_slice(json).map_err(|e| format!("acme.json is not JSON: {e}"))?;
    let mut out = Vec::new();
    for resolver in v.as_object().into_iter().flat_map(|o| o.values()) {
        for c in resolver["Certificates"].as_array().into_iter().flatten() {
            let mut domains: Vec<String> = c["domain"]["main"]
                .as_str()
                .map(String::from)
                .into_iter()
                .collect();
            domains.extend(
                c["domain"]["sans"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|s| s.as_str().map(String::from)),
            );
            let Some(b64) = c["certificate"].as_str() else {
                continue;
            };
            let pem = base64::engine::general_purpose::STANDARD
                .decode(b64)
                .map_err(|e| format!("a certificate of acme.json: {e}"))?;
            out.push((domains, parse_pem(&String::from_utf8_lossy(&pem))?));
        }
    }
    Ok(out)
}

/// The certificate the edge at `addr` serves for `host` (SNI), read, not trusted.
pub fn served(addr: &str, host: &str) -> Result<Leaf, String> {
    use std::io::{Read, Write};
    let config = sprocket_datastores::tls::unverified();
    let name = rustls::pki_types::ServerName::try_from(host.to_string())
        .map_err(|e| format!("{host}: {e}"))?;
    let mut conn =
        rustls::ClientConnection::new(Arc::new(config), name).map_err(|e| e.to_string())?;
    let sock: std::net::SocketAddr = addr.parse().map_err(|e| format!("{addr}: {e}"))?;
    let mut tcp = std::net::TcpStream::connect_timeout(&sock, Duration::from_secs(3))
        .map_err(|e| format!("cannot connect to {addr}: {e}"))?;
    tcp.set_read_timeout(Some(Duration::from_secs(5)))
        .map_err(|e| e.to_string())?;
    while conn.is_handshaking() {
        conn.complete_io(&mut tcp)
            .map_err(|e| format!("TLS with {addr} for {host}: {e}"))?;
    }
    let der = conn
        .peer_certificates()
        .and_then(|c| c.first())
        .ok_or_else(|| format!("{addr} sent no certificate for {host}"))?
        .to_vec();
    // Close politely; what the server answers does not matter.
    conn.send_close_notify();
    let _ = conn.complete_io(&mut tcp);
    let _ = tcp.flush();
    let _ = tcp.read(&mut [0u8; 1]);
    parse_der(&der)
}

/// How `status` judges a routed host from what is served for it (`now`: seconds since the
/// epoch). In an ACME environment Traefik's default certificate means it has none for the
/// host (`reason`: the last line of Traefik's log about it, if any).
pub fn assess(
    host: &str,
    served: Result<Leaf, String>,
    acme: bool,
    now: i64,
    reason: Option<String>,
) -> CertInfo {
    let mut info = CertInfo {
        host: host.to_string(),
        source: "served",
        issuer: String::new(),
        not_after: String::new(),
        days_left: None,
        level: Level::Error,
        note: None,
    };
    let leaf = match served {
        Ok(l) => l,
        Err(e) => {
            info.note = Some(e);
            return info;
        }
    };
    info.issuer = leaf.issuer.clone();
    info.not_after = rfc3339(leaf.not_after);
    let (days, level, expired) = expiry(leaf.not_after, now);
    info.days_left = Some(days);
    let default = leaf.subject.contains(TRAEFIK_DEFAULT_CN);
    info.level = match (default, acme) {
        (true, true) => {
            info.note = Some(match reason {
                Some(r) => format!("Traefik serves its default certificate: none obtained for this host ({r})"),
                None => "Traefik serves its default certificate: none obtained for this host yet (a new route takes seconds; see Traefik's log)".into(),
            });
            Level::Error
        }
        (true, false) => {
            info.note = Some("Traefik's self-signed default (this environment's TLS)".into());
            level
        }
        (false, _) => {
            info.note = expired;
            level
        }
    };
    info
}

/// Every routed host's served certificate, then (ACME) what `acme.json` keeps: what `status`
/// lists. Empty where the environment has no TLS. The edge is reached on this machine's
/// HTTPS port, as `status`'s curl lines do.
pub async fn gather(
    engine: &sprocket_docker::Engine,
    p: &sprocket_spec::model::Platform,
    observed: &sprocket_desired::plan::Observed,
) -> Vec<CertInfo> {
    let env = &p.environment;
    if !env.tls.enabled() {
        return Vec::new();
    }
    let acme = env.tls.acme();
    let hosts = crate::certs::routed_hosts(p);
    let addr = format!("127.0.0.1:{}", env.https_port);
    let mut served_leaves = Vec::new();
    for h in &hosts {
        let (addr, host) = (addr.clone(), h.clone());
        let r = tokio::task::spawn_blocking(move || served(&addr, &host))
            .await
            .unwrap_or_else(|e| Err(e.to_string()));
        served_leaves.push((h.clone(), r));
    }
    // The edge's running task: its log (why a certificate is missing) and its acme.json.
    let task = edge_task(engine, p, observed).await;
    let defaulted = |r: &Result<Leaf, String>| {
        r.as_ref()
            .is_ok_and(|l| l.subject.contains(TRAEFIK_DEFAULT_CN))
    };
    let log = match &task {
        Some(t) if acme && served_leaves.iter().any(|(_, r)| defaulted(r)) => {
            engine.task_logs(&t.id, 400).await
        }
        _ => Vec::new(),
    };
    let now = crate::clock::unix_now().as_secs() as i64;
    let mut out: Vec<CertInfo> = served_leaves
        .into_iter()
        .map(|(h, r)| {
            let reason = log
                .iter()
                .rev()
                .find(|l| l.contains(h.as_str()) && (l.contains("acme") || l.contains("ACME")))
                .map(|l| l.chars().take(300).collect());
            assess(&h, r, acme, now, reason)
        })
        .collect();
    if !acme {
        return out;
    }
    let kept = kept_in(engine, task.as_ref()).await;
    match kept {
        Ok(certs) => out.extend(certs.into_iter().map(|(domains, leaf)| {
            let (days, level, note) = expiry(leaf.not_after, now);
            CertInfo {
                host: domains.join(","),
                source: "acme.json",
                issuer: leaf.issuer,
                not_after: rfc3339(leaf.not_after),
                days_left: Some(days),
                level,
                note,
            }
        })),
        Err(e) => out.push(CertInfo {
            host: String::new(),
            source: "acme.json",
            issuer: String::new(),
            not_after: String::new(),
            days_left: None,
            level: Level::Error,
            note: Some(format!("cannot read {ACME_STORAGE}: {e}")),
        }),
    }
    out
}

/// Every host a route of the platform answers on, once each, sorted.
pub fn routed_hosts(p: &sprocket_spec::model::Platform) -> Vec<String> {
    let mut hosts: Vec<String> = p
        .services()
        .flat_map(|s| &s.routes)
        .flat_map(|r| r.hosts.iter().cloned())
        .collect();
    hosts.sort();
    hosts.dedup();
    hosts
}

/// The edge router's running task on this engine, if any.
pub async fn edge_task(
    engine: &sprocket_docker::Engine,
    p: &sprocket_spec::model::Platform,
    observed: &sprocket_desired::plan::Observed,
) -> Option<sprocket_docker::TaskInfo> {
    role_task(engine, p, observed, sprocket_spec::model::Role::Edge).await
}

/// The running task of the service with `role` (the edge router, the agent).
pub async fn role_task(
    engine: &sprocket_docker::Engine,
    p: &sprocket_spec::model::Platform,
    observed: &sprocket_desired::plan::Observed,
    role: sprocket_spec::model::Role,
) -> Option<sprocket_docker::TaskInfo> {
    let edge = p.services().find(|s| s.role == Some(role))?;
    let name = sprocket_desired::state::service_name(&p.environment.namespace, &edge.name);
    let o = observed.services.iter().find(|o| o.spec.name == name)?;
    engine
        .tasks(&o.id)
        .await
        .ok()?
        .into_iter()
        .find(|t| t.state == "running" && t.desired_state == "running")
}

/// The certificates Traefik's `acme.json` keeps, by their domains.
pub async fn kept(
    engine: &sprocket_docker::Engine,
    p: &sprocket_spec::model::Platform,
    observed: &sprocket_desired::plan::Observed,
) -> Result<Vec<(Vec<String>, Leaf)>, String> {
    kept_in(engine, edge_task(engine, p, observed).await.as_ref()).await
}

pub async fn kept_in(
    engine: &sprocket_docker::Engine,
    task: Option<&sprocket_docker::TaskInfo>,
) -> Result<Vec<(Vec<String>, Leaf)>, String> {
    let c = task
        .and_then(|t| t.container_id.clone())
        .ok_or("Traefik has no running task on this engine")?;
    let bytes = engine
        .container_file(&c, ACME_STORAGE)
        .await
        .map_err(|e| e.to_string())?;
    acme_certificates(&bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds_are_the_runbooks() {
        assert_eq!(level(90), Level::Ok);
        assert_eq!(level(30), Level::Ok);
        assert_eq!(level(29), Level::Info);
        assert_eq!(level(7), Level::Info);
        assert_eq!(level(6), Level::Critical);
        assert_eq!(level(-1), Level::Critical);
    }

    #[test]
    fn dates_are_utc_rfc3339() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_796_301_296), "2026-12-03T12:34:56Z");
    }

    fn leaf(subject: &str, not_after: i64) -> Leaf {
        Leaf {
            subject: subject.into(),
            issuer: "CN=Pebble Intermediate CA 1".into(),
            not_before: not_after - 90 * 86_400,
            not_after,
            names: vec![],
        }
    }

    #[test]
    fn a_default_certificate_is_an_error_only_where_acme_should_have_made_one() {
        let now = 1_000_000_000;
        let year = now + 365 * 86_400;
        let a = assess(
            "demo.x",
            Ok(leaf("CN=TRAEFIK DEFAULT CERT", year)),
            true,
            now,
            Some("urn:ietf:params:acme:error:rateLimited".into()),
        );
        assert_eq!(a.level, Level::Error);
        assert!(a.note.unwrap().contains("rateLimited"));
        let s = assess(
            "demo.localhost",
            Ok(leaf("CN=TRAEFIK DEFAULT CERT", year)),
            false,
            now,
            None,
        );
        assert_eq!(s.level, Level::Ok);
        let soon = assess(
            "demo.x",
            Ok(leaf("CN=demo.x", now + 5 * 86_400)),
            true,
            now,
            None,
        );
        assert_eq!((soon.level, soon.days_left), (Level::Critical, Some(5)));
        let gone = assess("demo.x", Ok(leaf("CN=demo.x", now - 10)), true, now, None);
        assert_eq!(
            (gone.level, gone.note.as_deref()),
            (Level::Critical, Some("expired"))
        );
        let down = assess("demo.x", Err("cannot connect".into()), true, now, None);
        assert_eq!(down.level, Level::Error);
    }

    #[test]
    fn a_real_certificate_reads_back() {
        // The Pebble API certificate this repository ships (scripts/lib/pebble).
        let pem = include_str!("../../../scripts/lib/pebble/api-cert.pem");
        let l = parse_pem(pem).unwrap();
        assert_eq!(l.subject, "CN=host.docker.internal");
        assert!(l.issuer.contains("Pebble API test CA"), "{}", l.issuer);
        assert_eq!(rfc3339(l.not_after), "2036-11-30T13:18:14Z");
        assert_eq!(l.names, ["host.docker.internal", "localhost"]);
        assert!(parse_pem("no certificate").is_err());
    }
}
