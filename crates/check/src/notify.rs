//! What an alert looks like where it is sent: a JSON webhook (ours, or Slack- or
//! Discord-compatible bodies), or Alertmanager's `POST /api/v2/alerts` (so its receivers,
//! routing and silences apply). Pure: the agent posts them.

use crate::alerts::{Alert, Event};
use serde_json::{json, Value};

/// The webhook's body (the spec's `alerts.format`): our JSON
/// (`{status, key, severity, summary, root, affects, since, resolved_at, namespace,
/// environment}`), Slack's `{text}` or Discord's `{content}`.
pub use sprocket_spec::model::AlertFormat as Format;

/// Where the platform is: every body names it.
pub struct Origin<'a> {
    pub namespace: &'a str,
    pub environment: &'a str,
}

fn line(e: &Event, o: &Origin) -> String {
    let (status, a) = match e {
        Event::Firing(a) => ("FIRING", a),
        Event::Resolved { alert, .. } => ("RESOLVED", alert),
    };
    let mut s = format!(
        "[{status}] {} {}: {}",
        a.severity.name().to_uppercase(),
        o.environment,
        a.summary
    );
    if !a.affects.is_empty() {
        s.push_str(&format!(" — affects {}", a.affects.join(", ")));
    }
    s.push_str(&format!(" (namespace {})", o.namespace));
    s
}

/// The webhook's body for one event.
pub fn webhook(e: &Event, format: Format, o: &Origin) -> Value {
    match format {
        Format::Slack => json!({ "text": line(e, o) }),
        Format::Discord => json!({ "content": line(e, o) }),
        Format::Json => {
            let (status, a, at) = match e {
                Event::Firing(a) => ("firing", a, None),
                Event::Resolved { alert, at } => ("resolved", alert, Some(*at)),
            };
            json!({
                "status": status,
                "key": a.key,
                "severity": a.severity,
                "summary": a.summary,
                "root": a.root,
                "affects": a.affects,
                "since": a.since,
                "resolved_at": at,
                "namespace": o.namespace,
                "environment": o.environment,
            })
        }
    }
}

/// Alertmanager's alerts: every firing one each round, ending at `firing_until` unless repeated
/// (so alerts of an agent that stopped end by themselves), and a resolved one with its end.
/// `time`: RFC 3339 of epoch seconds.
pub fn alertmanager(
    firing: &[&Alert],
    resolved: &[(Alert, u64)],
    o: &Origin,
    firing_until: u64,
    time: impl Fn(u64) -> String,
) -> Value {
    let one = |a: &Alert, end: u64| {
        let mut v = json!({
            "labels": {
                "alertname": "SprocketCheck",
                "key": a.key,
                "severity": a.severity,
                "namespace": o.namespace,
                "environment": o.environment,
            },
            "annotations": {
                "summary": a.summary,
                "affects": a.affects.join(", "),
            },
            "startsAt": time(a.since),
        });
        if let Some(root) = &a.root {
            v["labels"]["service"] = json!(root);
        }
        v["endsAt"] = json!(time(end));
        v
    };
    Value::Array(
        firing
            .iter()
            .map(|a| one(a, firing_until))
            .chain(resolved.iter().map(|(a, at)| one(a, *at)))
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Severity;

    fn alert() -> Alert {
        Alert {
            key: "service:redis".into(),
            severity: Severity::Critical,
            summary: "redis replicas: 0/1 running".into(),
            root: Some("redis".into()),
            affects: vec!["demo".into()],
            since: 100,
        }
    }

    const O: Origin = Origin {
        namespace: "sprocket",
        environment: "prod",
    };

    #[test]
    fn webhook_bodies() {
        let f = Event::Firing(alert());
        let j = webhook(&f, Format::Json, &O);
        assert_eq!(j["status"], "firing");
        assert_eq!(j["root"], "redis");
        assert_eq!(j["affects"], json!(["demo"]));
        assert_eq!(j["severity"], "critical");
        let s = webhook(&f, Format::Slack, &O);
        assert_eq!(
            s["text"],
            "[FIRING] CRITICAL prod: redis replicas: 0/1 running — affects demo (namespace sprocket)"
        );
        let r = Event::Resolved {
            alert: alert(),
            at: 160,
        };
        assert!(webhook(&r, Format::Discord, &O)["content"]
            .as_str()
            .unwrap()
            .starts_with("[RESOLVED]"));
        assert_eq!(webhook(&r, Format::Json, &O)["resolved_at"], 160);
    }

    #[test]
    fn alertmanager_gets_labels_and_an_end_for_resolved_ones() {
        let a = alert();
        let v = alertmanager(&[&a], &[(alert(), 160)], &O, 190, |t| format!("t{t}"));
        assert_eq!(v[0]["labels"]["alertname"], "SprocketCheck");
        assert_eq!(v[0]["labels"]["service"], "redis");
        assert_eq!(v[0]["startsAt"], "t100");
        assert_eq!(v[0]["endsAt"], "t190", "firing: ends unless repeated");
        assert_eq!(v[1]["endsAt"], "t160");
    }
}
