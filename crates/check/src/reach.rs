//! What a probe task reports and how it is judged. The task (`sprocketctl probe`) joins exactly
//! one service's networks, with its host entries, and for each target resolves the name and,
//! with a port, opens a TCP connection — from the consumer's side, not from the host, which
//! sees everything.

use crate::plan::{Expect, Login, Target};
use crate::report::{Finding, Kind};
use crate::Severity;
use serde::{Deserialize, Serialize};

/// The variable the probe task reads its targets from (names and ports: nothing secret).
pub const PROBE_ENV: &str = "SPROCKET_PROBE";
/// The one line of its log the result is read from.
pub const RESULT_PREFIX: &str = "sprocket-probe-result: ";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outcome {
    pub name: String,
    pub resolved: bool,
    /// With a port and a resolved name: whether a connection was accepted.
    pub connected: Option<bool>,
    pub ms: u64,
    pub error: Option<String>,
}

/// What the probe task is given (in [`PROBE_ENV`]): names, ports and file paths, nothing
/// secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Input {
    pub targets: Vec<Target>,
    #[serde(default)]
    pub logins: Vec<Login>,
}

/// How one login went: what it proved, or the datastore's reason (never a credential).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoginOutcome {
    pub datastore: String,
    pub ok: bool,
    pub detail: String,
    pub ms: u64,
}

/// What the probe task prints on its result line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Output {
    pub targets: Vec<Outcome>,
    #[serde(default)]
    pub logins: Vec<LoginOutcome>,
}

/// One finding per login of `service`: `None` when the probe gave no result for it.
pub fn judge_login(service: &str, l: &Login, o: Option<&LoginOutcome>) -> Finding {
    let f =
        |sev, detail: String| Finding::new(Kind::Login, service, sev, detail).target(&l.datastore);
    match o {
        None => f(Severity::Critical, "the probe task gave no result".into()),
        Some(o) if o.ok => f(Severity::Ok, o.detail.clone()).ms(o.ms),
        Some(o) => f(
            Severity::Critical,
            format!("its own login `{}` fails: {}", l.user, o.detail),
        )
        .ms(o.ms),
    }
}

/// The last result line of a probe task's log.
pub fn from_logs(lines: &[String]) -> Option<Output> {
    lines.iter().rev().find_map(|l| {
        let i = l.find(RESULT_PREFIX)?;
        serde_json::from_str(&l[i + RESULT_PREFIX.len()..]).ok()
    })
}

/// One finding per target of `service`'s probe: `None` when the probe gave no result for it.
pub fn judge(service: &str, t: &Target, o: Option<&Outcome>) -> Finding {
    let addr = match t.port {
        Some(p) => format!("{}:{p}", t.host),
        None => t.host.clone(),
    };
    let (kind, target) = match t.expect {
        Expect::Reachable => (Kind::Reach, t.name.as_str()),
        Expect::Isolated => (Kind::Isolation, t.name.as_str()),
    };
    let f = |sev, detail: String| Finding::new(kind, service, sev, detail).target(target);
    let Some(o) = o else {
        return f(Severity::Critical, "the probe task gave no result".into());
    };
    let why = o.error.as_deref().unwrap_or("no answer");
    match t.expect {
        Expect::Reachable if !o.resolved => f(
            Severity::Critical,
            format!("`{}` does not resolve on {service}'s networks ({why})", t.host),
        ),
        Expect::Reachable if o.connected == Some(false) => {
            f(Severity::Critical, format!("{addr} resolves, but {why}"))
        }
        Expect::Reachable => f(
            Severity::Ok,
            match t.port {
                Some(_) => format!("{addr} accepts connections"),
                None => format!("{addr} resolves"),
            },
        )
        .ms(o.ms),
        Expect::Isolated if o.resolved => f(
            Severity::Critical,
            format!(
                "`{}` resolves on {service}'s networks although {service} does not use it: isolation broken (a network attached by hand?)",
                t.host
            ),
        ),
        Expect::Isolated => f(Severity::Ok, format!("`{}` does not resolve", t.host)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(expect: Expect, port: Option<u16>) -> Target {
        Target {
            name: "redis".into(),
            host: "redis".into(),
            port,
            expect,
        }
    }

    fn outcome(resolved: bool, connected: Option<bool>) -> Outcome {
        Outcome {
            name: "redis".into(),
            resolved,
            connected,
            ms: 2,
            error: (!resolved || connected == Some(false)).then(|| "connection refused".into()),
        }
    }

    #[test]
    fn a_used_service_must_resolve_and_accept() {
        let t = target(Expect::Reachable, Some(6379));
        let ok = judge("demo", &t, Some(&outcome(true, Some(true))));
        assert_eq!((ok.kind, ok.severity), (Kind::Reach, Severity::Ok));
        assert_eq!(ok.detail, "redis:6379 accepts connections");
        let refused = judge("demo", &t, Some(&outcome(true, Some(false))));
        assert_eq!(refused.severity, Severity::Critical);
        assert!(
            refused.detail.contains("connection refused"),
            "{}",
            refused.detail
        );
        let gone = judge("demo", &t, Some(&outcome(false, None)));
        assert_eq!(gone.severity, Severity::Critical);
        assert_eq!(judge("demo", &t, None).severity, Severity::Critical);
    }

    #[test]
    fn a_login_of_its_own_must_work_and_says_whose_failed() {
        let l = Login {
            datastore: "rabbitmq".into(),
            kind: sprocket_spec::model::DatastoreKind::Rabbitmq,
            host: "rabbitmq".into(),
            port: 5672,
            user: "demo".into(),
            password_file: "/run/secrets/rabbitmq-password".into(),
            key_file: None,
            scope: Some("demo".into()),
            sslmode: None,
            endpoint: None,
            region: None,
            alternate: Some("demo_b".into()),
        };
        // Its password's odd versions are `demo`'s, its even ones `demo_b`'s.
        assert_eq!(l.clone().as_mounted(Some(3)).user, "demo");
        assert_eq!(l.clone().as_mounted(Some(4)).user, "demo_b");
        assert_eq!(l.clone().as_mounted(None).user, "demo");
        let l = l.as_mounted(Some(1));
        let out = |ok, detail: &str| LoginOutcome {
            datastore: "rabbitmq".into(),
            ok,
            detail: detail.into(),
            ms: 3,
        };
        let ok = judge_login(
            "demo",
            &l,
            Some(&out(true, "logged in as demo on vhost demo")),
        );
        assert_eq!((ok.kind, ok.severity), (Kind::Login, Severity::Ok));
        assert_eq!(ok.target.as_deref(), Some("rabbitmq"));
        let refused = judge_login(
            "demo",
            &l,
            Some(&out(false, "login refused: 403 ACCESS_REFUSED")),
        );
        assert_eq!(refused.severity, Severity::Critical);
        assert_eq!(
            refused.detail,
            "its own login `demo` fails: login refused: 403 ACCESS_REFUSED"
        );
        assert!(Kind::Login.fails_its_service());
        assert_eq!(judge_login("demo", &l, None).severity, Severity::Critical);
    }

    #[test]
    fn an_unused_service_must_not_even_resolve() {
        let t = target(Expect::Isolated, None);
        let ok = judge("web", &t, Some(&outcome(false, None)));
        assert_eq!((ok.kind, ok.severity), (Kind::Isolation, Severity::Ok));
        let broken = judge("web", &t, Some(&outcome(true, None)));
        assert_eq!(broken.severity, Severity::Critical);
        assert!(broken.detail.contains("isolation broken"));
    }

    #[test]
    fn the_result_line_is_read_from_the_log() {
        let line = format!(
            "noise\n{RESULT_PREFIX}{}",
            serde_json::to_string(&Output {
                targets: vec![outcome(true, Some(true))],
                logins: Vec::new(),
            })
            .unwrap()
        );
        let lines: Vec<String> = line.lines().map(str::to_string).collect();
        assert_eq!(from_logs(&lines).unwrap().targets[0].name, "redis");
        assert!(from_logs(&["nothing".into()]).is_none());
    }
}
