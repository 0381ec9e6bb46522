//! `check`'s one typed report: every finding with its severity, the incidents (roots and what
//! they affect), and the worst severity, which is the exit code.

use crate::roots::{incidents, Incident};
use crate::Severity;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// A service's tasks running against those wanted.
    Replicas,
    /// Its tasks that failed in the last 24 hours.
    Restarts,
    /// A route × host through the edge router.
    Route,
    /// A host no route names, through the edge router.
    UnknownHost,
    /// From a service's own networks: something it uses.
    Reach,
    /// From a service's own networks: something it must not reach.
    Isolation,
    /// From a service's own networks, with its own credentials: a datastore login of its own.
    Login,
    /// Vault initialised and unsealed.
    Vault,
    /// A routed host's certificate.
    Certificate,
    /// Error lines in a service's log in the last 24 hours.
    Errors,
    /// The node's CPU, memory and disk.
    Resources,
    /// Docker's own disk use: images, build cache.
    DockerDisk,
    /// The newest backup's age against the recovery point, a backup that did not complete.
    Backup,
    /// The last drill: when, whether it passed, what it measured.
    Drill,
}

impl Kind {
    /// A finding of this kind, not OK, says its subject cannot serve now: its replicas, its
    /// route, what it reaches, Vault's seal, the edge router not answering an unknown host.
    /// (Past restarts, a broken isolation, a certificate, error counts, resources do not.)
    pub fn fails_its_service(self) -> bool {
        matches!(
            self,
            Kind::Replicas
                | Kind::Route
                | Kind::Reach
                | Kind::Login
                | Kind::Vault
                | Kind::UnknownHost
        )
    }

    /// A finding of this kind is about the node the platform runs on (its CPU, memory, disks),
    /// which other platforms share: not about the platform itself.
    pub fn of_the_node(self) -> bool {
        matches!(self, Kind::Resources | Kind::DockerDisk)
    }

    pub fn name(self) -> &'static str {
        match self {
            Kind::Replicas => "replicas",
            Kind::Restarts => "restarts",
            Kind::Route => "route",
            Kind::UnknownHost => "unknown host",
            Kind::Reach => "reach",
            Kind::Isolation => "isolation",
            Kind::Login => "login",
            Kind::Vault => "vault",
            Kind::Certificate => "certificate",
            Kind::Errors => "errors",
            Kind::Resources => "resources",
            Kind::DockerDisk => "docker disk",
            Kind::Backup => "backup",
            Kind::Drill => "drill",
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    pub kind: Kind,
    /// The service it is about (or the host, for certificates and the unknown host).
    pub subject: String,
    /// What it was probed against: the host of a route, the target of a reach.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    pub severity: Severity,
    pub detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ms: Option<u64>,
    /// The failing service (something the subject uses) that explains this finding.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub explained_by: Option<String>,
}

impl Finding {
    pub fn new(kind: Kind, subject: &str, severity: Severity, detail: impl Into<String>) -> Self {
        Finding {
            kind,
            subject: subject.to_string(),
            target: None,
            severity,
            detail: detail.into(),
            ms: None,
            explained_by: None,
        }
    }

    pub fn target(mut self, t: &str) -> Self {
        self.target = Some(t.to_string());
        self
    }

    pub fn ms(mut self, ms: u64) -> Self {
        self.ms = Some(ms);
        self
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub ok: usize,
    pub info: usize,
    pub warning: usize,
    pub critical: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub namespace: String,
    pub environment: String,
    /// The worst finding's severity (explained ones included: the root is as bad).
    pub worst: Severity,
    pub summary: Summary,
    pub incidents: Vec<Incident>,
    /// Not OK first (worst first), then the rest, each in probe order.
    pub findings: Vec<Finding>,
    pub seconds: f64,
    /// Seconds each family of probes took (they run at once): `routes`, `reach`, …
    pub phases: BTreeMap<String, f64>,
}

/// Whose failure a finding is: the service it says is down or cannot do its work now (its
/// replicas, its route, what it reaches, Vault's seal). Past restarts, a broken isolation, a
/// certificate are reported but fail nothing that uses it.
fn service_of(f: &Finding, services: &BTreeSet<&str>) -> Option<String> {
    match f.kind {
        k if k.fails_its_service() => services
            .contains(f.subject.as_str())
            .then(|| f.subject.clone()),
        _ => None,
    }
}

/// The start of a replicas finding about a service the swarm does not have (yet).
pub const NOT_DEPLOYED: &str = "not deployed";

/// Whether `f` says its service is not deployed (reported, not a failure).
pub fn not_deployed(f: &Finding) -> bool {
    f.kind == Kind::Replicas && f.detail.starts_with(NOT_DEPLOYED)
}

/// What the edge's 404 on a route means when the route's service runs no task: Traefik's swarm
/// provider lists a `dnsrr` service's running tasks, so with none it drops the route (with a VIP
/// the route stays and answers 502/503). Said as such, not as "no router takes this host".
pub const DROPPED_ROUTE: &str =
    "404 from the edge router: it dropped the route, as no task of the service runs";

fn explain_dropped_routes(findings: &mut [Finding]) {
    let stopped: BTreeSet<String> = findings
        .iter()
        .filter(|f| {
            f.kind == Kind::Replicas
                && f.severity == Severity::Critical
                && f.detail.starts_with("0/")
        })
        .map(|f| f.subject.clone())
        .collect();
    for f in findings.iter_mut().filter(|f| {
        f.kind == Kind::Route
            && f.detail.starts_with("404 from the edge router")
            && stopped.contains(&f.subject)
    }) {
        f.detail = DROPPED_ROUTE.into();
    }
}

impl Report {
    /// Judges `findings` together: which failing services are roots, which findings they
    /// explain (a consumer's failed reach to a datastore that is down, its route's 502), the
    /// worst severity.
    pub fn new(
        namespace: &str,
        environment: &str,
        mut findings: Vec<Finding>,
        uses: &BTreeMap<String, Vec<String>>,
        seconds: f64,
    ) -> Report {
        explain_dropped_routes(&mut findings);
        let services: BTreeSet<&str> = uses.keys().map(String::as_str).collect();
        let failing: BTreeSet<String> = findings
            .iter()
            .filter(|f| f.severity >= Severity::Warning)
            .filter_map(|f| service_of(f, &services))
            .collect();
        let incidents = incidents(&failing, uses);
        for f in findings
            .iter_mut()
            .filter(|f| f.severity >= Severity::Warning)
        {
            let Some(s) = service_of(f, &services) else {
                continue;
            };
            // Its root: the incident that explains it (a reach finding: the one of its target).
            f.explained_by = incidents
                .iter()
                .find(|i| {
                    i.explained.contains(&s)
                        && (!matches!(f.kind, Kind::Reach | Kind::Login)
                            || f.target.as_deref() == Some(&i.root))
                })
                .or_else(|| incidents.iter().find(|i| i.explained.contains(&s)))
                .map(|i| i.root.clone());
        }
        let mut summary = Summary::default();
        for f in &findings {
            *match f.severity {
                Severity::Ok => &mut summary.ok,
                Severity::Info => &mut summary.info,
                Severity::Warning => &mut summary.warning,
                Severity::Critical => &mut summary.critical,
            } += 1;
        }
        let worst = findings
            .iter()
            .map(|f| f.severity)
            .max()
            .unwrap_or(Severity::Ok);
        // Worst first; a stable sort keeps probe order within a severity.
        findings.sort_by_key(|f| std::cmp::Reverse(f.severity));
        Report {
            namespace: namespace.to_string(),
            environment: environment.to_string(),
            worst,
            summary,
            incidents,
            findings,
            seconds,
            phases: BTreeMap::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_edge_404_of_a_stopped_service_says_the_route_was_dropped() {
        let uses = [("demo".to_string(), vec![]), ("web".to_string(), vec![])]
            .into_iter()
            .collect();
        let edge_404 = "404 from the edge router: no router takes this host and path";
        let r = Report::new(
            "ns",
            "env",
            vec![
                Finding::new(Kind::Replicas, "demo", Severity::Critical, "0/1 running"),
                Finding::new(Kind::Route, "demo", Severity::Critical, edge_404).target("d"),
                Finding::new(Kind::Route, "web", Severity::Critical, edge_404).target("w"),
            ],
            &uses,
            0.0,
        );
        let detail = |s: &str| {
            r.findings
                .iter()
                .find(|f| f.kind == Kind::Route && f.subject == s)
                .unwrap()
                .detail
                .clone()
        };
        assert_eq!(detail("demo"), DROPPED_ROUTE);
        // A running service's route at the edge's 404 has no router: said as it is.
        assert_eq!(detail("web"), edge_404);
    }

    #[test]
    fn a_consumers_findings_are_explained_by_the_datastore_it_uses() {
        let uses: BTreeMap<String, Vec<String>> = [
            ("redis".to_string(), vec![]),
            ("demo".to_string(), vec!["redis".to_string()]),
            ("web".to_string(), vec![]),
        ]
        .into_iter()
        .collect();
        let findings = vec![
            Finding::new(Kind::Replicas, "web", Severity::Ok, "1/1"),
            Finding::new(Kind::Replicas, "redis", Severity::Critical, "0/1"),
            Finding::new(Kind::Reach, "demo", Severity::Critical, "does not answer")
                .target("redis"),
            Finding::new(Kind::Route, "demo", Severity::Critical, "503").target("demo.localhost"),
        ];
        let r = Report::new("ns", "env", findings, &uses, 0.1);
        assert_eq!(r.worst, Severity::Critical);
        assert_eq!(r.incidents.len(), 1);
        assert_eq!(r.incidents[0].root, "redis");
        assert_eq!(r.incidents[0].explained, ["demo"]);
        let demo: Vec<_> = r.findings.iter().filter(|f| f.subject == "demo").collect();
        assert!(demo
            .iter()
            .all(|f| f.explained_by.as_deref() == Some("redis")));
        assert_eq!(r.findings.last().unwrap().subject, "web", "OK last");
        assert_eq!(
            r.summary,
            Summary {
                ok: 1,
                info: 0,
                warning: 0,
                critical: 3
            }
        );
    }

    #[test]
    fn all_ok_is_ok() {
        let uses = BTreeMap::new();
        let r = Report::new("ns", "env", vec![], &uses, 0.0);
        assert_eq!(r.worst, Severity::Ok);
        assert!(r.incidents.is_empty());
    }
}
