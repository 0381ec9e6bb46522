//! Before `up` lets Traefik ask Let's Encrypt for certificates: every host that has none yet
//! must resolve to this swarm, and port 80 there must answer (Let's Encrypt validates HTTP-01
//! on it) — otherwise the order fails and spends the CA's budget (5 failed validations per name
//! per hour, 50 new certificates per registered domain per week): the original team burnt its
//! limits exactly so. A host that does not pass refuses the deploy (exit 3) with the reason,
//! before anything changes; what cannot be checked from here is said plainly and does not
//! refuse. Only for Let's Encrypt (production and staging): a private ACME server (`ca_server`)
//! has no such budget.

use serde::Serialize;
use std::net::IpAddr;

/// What the pre-flight found for one host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "verdict", rename_all = "kebab-case")]
pub enum Verdict {
    /// `acme.json` holds a certificate for it: nothing will be asked.
    HasCertificate,
    /// It resolves to this swarm (and port 80 answered there, or could not be checked: `note`).
    Ready {
        address: IpAddr,
        #[serde(skip_serializing_if = "Option::is_none")]
        note: Option<String>,
    },
    /// The order would fail: why, and what to do.
    Refused { reason: String },
}

#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    pub host: String,
    #[serde(flatten)]
    pub verdict: Verdict,
}

/// Whether the environment asks a CA with a budget: Let's Encrypt, production or staging
/// (`ca_server` naming another CA opts out).
pub fn applies(tls: &sprocket_spec::model::Tls) -> bool {
    sprocket_desired::traefik::acme_directory(tls).is_some_and(|(_, le)| le)
}

/// Judges one host (pure): `kept` — acme.json has its certificate; `resolved` — its
/// addresses or why it has none; `swarm` — this swarm's addresses (nodes and the
/// environment's `server_ip`); `port80` — whether port 80 answered at the address it
/// resolves to (`None`: not checked, with the reason in `unchecked`).
pub fn judge(
    kept: bool,
    resolved: Result<Vec<IpAddr>, String>,
    swarm: &[IpAddr],
    port80: Option<Result<(), String>>,
    unchecked: &str,
) -> Verdict {
    if kept {
        return Verdict::HasCertificate;
    }
    let addrs = match resolved {
        Ok(a) if !a.is_empty() => a,
        Ok(_) | Err(_) => {
            return Verdict::Refused {
                reason: "it does not resolve: point its DNS record at this swarm first (Let's Encrypt validates it over HTTP on port 80)".into(),
            }
        }
    };
    let Some(address) = addrs.iter().copied().find(|a| swarm.contains(a)) else {
        let list: Vec<String> = addrs.iter().map(IpAddr::to_string).collect();
        let ours: Vec<String> = swarm.iter().map(IpAddr::to_string).collect();
        return Verdict::Refused {
            reason: format!(
                "it resolves to {} — not this swarm ({}): fix its DNS record, or give the environment the public `server_ip` it points at (a node behind NAT)",
                list.join(", "),
                if ours.is_empty() { "no address known".into() } else { ours.join(", ") }
            ),
        };
    };
    match port80 {
        Some(Err(e)) => Verdict::Refused {
            reason: format!("port 80 of {address} does not answer ({e}): open it to the internet for Let's Encrypt's HTTP-01 validation"),
        },
        Some(Ok(())) => Verdict::Ready { address, note: None },
        None => Verdict::Ready {
            address,
            note: Some(unchecked.to_string()),
        },
    }
}

/// Whether `address`:`port` answers HTTP for `host` (any status): the challenge path of a token
/// nobody asked for, which Traefik answers 404.
pub fn port80(address: IpAddr, port: u16, host: &str) -> Result<(), String> {
    use std::io::{Read, Write};
    let sock = std::net::SocketAddr::new(address, port);
    let mut s = std::net::TcpStream::connect_timeout(&sock, std::time::Duration::from_secs(3))
        .map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(std::time::Duration::from_secs(3)))
        .map_err(|e| e.to_string())?;
    write!(
        s,
        "GET /.well-known/acme-challenge/sprocketctl-preflight HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .map_err(|e| e.to_string())?;
    let mut head = [0u8; 12];
    s.read_exact(&mut head).map_err(|e| e.to_string())?;
    if head.starts_with(b"HTTP/1.") {
        Ok(())
    } else {
        Err("what answers is not HTTP".into())
    }
}

/// The pre-flight of an `up`: every ACME host's finding (empty where it does not apply).
pub async fn run(
    engine: &sprocket_docker::Engine,
    p: &sprocket_spec::model::Platform,
    observed: &sprocket_desired::plan::Observed,
) -> Vec<Finding> {
    let env = &p.environment;
    if !applies(&env.tls) {
        return Vec::new();
    }
    let hosts = crate::certs::routed_hosts(p);
    // What acme.json already holds (nothing on a first deploy).
    let task = crate::certs::edge_task(engine, p, observed).await;
    let kept: Vec<String> = crate::certs::kept_in(engine, task.as_ref())
        .await
        .map(|c| c.into_iter().flat_map(|(domains, _)| domains).collect())
        .unwrap_or_default();
    let mut swarm = engine.node_addresses().await.unwrap_or_default();
    swarm.extend(env.server_ip);
    let traefik_runs = task.is_some();
    let mut out = Vec::new();
    for host in hosts {
        let h = host.clone();
        let resolved = tokio::task::spawn_blocking(move || {
            std::net::ToSocketAddrs::to_socket_addrs(&(h.as_str(), 80))
                .map(|a| a.map(|s| s.ip()).collect::<Vec<_>>())
                .map_err(|e| e.to_string())
        })
        .await
        .unwrap_or_else(|e| Err(e.to_string()));
        let at = resolved
            .as_ref()
            .ok()
            .and_then(|a| a.iter().copied().find(|a| swarm.contains(a)));
        let probe = match (at, traefik_runs) {
            (Some(address), true) => {
                let (h, port) = (host.clone(), env.http_port);
                Some(
                    tokio::task::spawn_blocking(move || port80(address, port, &h))
                        .await
                        .unwrap_or_else(|e| Err(e.to_string())),
                )
            }
            _ => None,
        };
        let verdict = judge(
            kept.contains(&host),
            resolved,
            &swarm,
            probe,
            "port 80 not checked: Traefik does not run yet (it answers the validation once deployed)",
        );
        out.push(Finding { host, verdict });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn a_host_that_would_fail_validation_is_refused_with_the_reason() {
        let swarm = [ip("203.0.113.10")];
        let none = || "not checked";
        assert_eq!(
            judge(true, Err("x".into()), &swarm, None, none()),
            Verdict::HasCertificate
        );
        let Verdict::Refused { reason } =
            judge(false, Err("no such host".into()), &swarm, None, none())
        else {
            panic!()
        };
        assert!(reason.contains("does not resolve"), "{reason}");
        let Verdict::Refused { reason } =
            judge(false, Ok(vec![ip("198.51.100.7")]), &swarm, None, none())
        else {
            panic!()
        };
        assert!(
            reason.contains("198.51.100.7") && reason.contains("203.0.113.10"),
            "{reason}"
        );
        let Verdict::Refused { reason } = judge(
            false,
            Ok(vec![ip("203.0.113.10")]),
            &swarm,
            Some(Err("connection refused".into())),
            none(),
        ) else {
            panic!()
        };
        assert!(reason.contains("port 80"), "{reason}");
        assert_eq!(
            judge(
                false,
                Ok(vec![ip("203.0.113.10")]),
                &swarm,
                Some(Ok(())),
                none()
            ),
            Verdict::Ready {
                address: ip("203.0.113.10"),
                note: None
            }
        );
        assert!(matches!(
            judge(false, Ok(vec![ip("203.0.113.10")]), &swarm, None, none()),
            Verdict::Ready { note: Some(_), .. }
        ));
    }

    #[test]
    fn only_lets_encrypt_has_a_budget() {
        use sprocket_spec::model::Tls;
        let le = |ca: Option<&str>| Tls::LetsEncrypt {
            email: "a@b.c".into(),
            ca_server: ca.map(String::from),
            ca_certificate: None,
            certificates_duration: None,
        };
        assert!(applies(&le(None)));
        assert!(applies(&le(Some(
            "https://acme-v02.api.letsencrypt.org/directory"
        ))));
        assert!(!applies(&le(Some(
            "https://host.docker.internal:14000/dir"
        ))));
        assert!(applies(&Tls::LetsEncryptStaging {
            email: "a@b.c".into()
        }));
        assert!(!applies(&Tls::SelfSigned));
    }
}
