//! The dependency graph `up` schedules by, from the real example spec.

mod common;

use sprocket_desired::graph::{graph, NeedKind, Step};
use sprocket_desired::state::desired;

use common::example;

fn needs(g: &sprocket_desired::graph::Graph, step: &Step) -> Vec<(String, NeedKind)> {
    g.needs_of(step)
        .iter()
        .map(|n| (n.on.to_string(), n.kind))
        .collect()
}

fn svc(n: &str) -> Step {
    Step::Service(format!("sprocket_{n}"))
}

#[test]
fn a_service_waits_for_what_it_uses_and_for_vault_when_it_mounts_a_vault_made_secret() {
    let p = example("offline");
    let g = graph(&p, &desired(&p), true);
    assert_eq!(
        needs(&g, &svc("demo")),
        [
            ("sprocket_redis".to_string(), NeedKind::Uses),
            ("sprocket_rabbitmq".to_string(), NeedKind::Uses),
            // derived from its `vault:` paths
            ("sprocket_vault".to_string(), NeedKind::Uses),
            ("vault (init/unseal/configure)".to_string(), NeedKind::Vault),
            // its own Redis ACL user, RabbitMQ login, PostgreSQL role and S3 key (`access`)
            (
                "sprocket_redis (provision logins)".to_string(),
                NeedKind::Provision
            ),
            (
                "sprocket_rabbitmq (provision logins)".to_string(),
                NeedKind::Provision
            ),
            (
                "sprocket_postgres (provision logins)".to_string(),
                NeedKind::Provision
            ),
            (
                "sprocket_s3 (provision logins)".to_string(),
                NeedKind::Provision
            ),
        ]
    );
    // The external PostgreSQL's provisioning waits for no service (there is none to start),
    // only for the Vault step that makes the administrator's and the demo's passwords.
    assert_eq!(
        needs(&g, &Step::Provision("sprocket_postgres".into())),
        [("vault (init/unseal/configure)".to_string(), NeedKind::Vault)]
    );
    assert_eq!(
        needs(&g, &Step::Provision("sprocket_rabbitmq".into()))[0],
        ("sprocket_rabbitmq".to_string(), NeedKind::Started)
    );
    // Data services use nothing, but their generated passwords are kept in Vault: they start
    // once the Vault step made their Docker secrets.
    for data in ["rabbitmq", "redis"] {
        assert_eq!(
            needs(&g, &svc(data)),
            [("vault (init/unseal/configure)".to_string(), NeedKind::Vault)],
            "{data}"
        );
    }
    // A routed service does not wait for the edge router; the link is kept for reports.
    assert!(needs(&g, &svc("traefik")).is_empty());
    assert_eq!(g.routed_by["sprocket_demo"], "sprocket_traefik");
    assert!(!g.routed_by.contains_key("sprocket_traefik"));
    // The Vault step runs against the Vault service over its private socket: not the router.
    assert_eq!(
        needs(&g, &Step::Vault),
        [("sprocket_vault".to_string(), NeedKind::VaultService)]
    );
    // The unseal agent mounts material made by the Vault step.
    assert!(needs(&g, &svc("vault-agent"))
        .contains(&("vault (init/unseal/configure)".to_string(), NeedKind::Vault)));
    // Every dependency points at the same or an earlier layer.
    for (step, ns) in &g.needs {
        let Step::Service(s) = step else { continue };
        for n in ns {
            if let Step::Service(on) = &n.on {
                assert!(g.layer[on] <= g.layer[s], "{s} needs {on} of a later layer");
            }
        }
    }
}

#[test]
fn without_a_vault_step_nothing_waits_for_vault() {
    let p = example("offline");
    let d = desired(&p);
    let g = graph(&p, &d, false);
    assert!(!g.needs.contains_key(&Step::Vault));
    assert_eq!(
        needs(&g, &svc("demo")),
        [
            ("sprocket_redis".to_string(), NeedKind::Uses),
            ("sprocket_rabbitmq".to_string(), NeedKind::Uses),
            ("sprocket_vault".to_string(), NeedKind::Uses),
            (
                "sprocket_redis (provision logins)".to_string(),
                NeedKind::Provision
            ),
            (
                "sprocket_rabbitmq (provision logins)".to_string(),
                NeedKind::Provision
            ),
            (
                "sprocket_postgres (provision logins)".to_string(),
                NeedKind::Provision
            ),
            (
                "sprocket_s3 (provision logins)".to_string(),
                NeedKind::Provision
            ),
        ]
    );
    // Without a Vault step an external's provisioning can start at once.
    assert!(needs(&g, &Step::Provision("sprocket_postgres".into())).is_empty());
    // What a failed rabbitmq takes with it: its provisioning and the demo (and nothing of the
    // infrastructure).
    let g = graph(&p, &d, true);
    let mut after = g.dependents(&svc("rabbitmq"));
    after.sort();
    assert_eq!(
        after,
        [svc("demo"), Step::Provision("sprocket_rabbitmq".into())]
    );
    let mut after_vault: Vec<String> = g
        .dependents(&Step::Vault)
        .iter()
        .map(|s| s.to_string())
        .collect();
    after_vault.sort();
    assert_eq!(
        after_vault,
        [
            "sprocket_demo",
            "sprocket_n8n",
            "sprocket_postgres (provision logins)",
            "sprocket_rabbitmq",
            "sprocket_rabbitmq (provision logins)",
            "sprocket_redis",
            "sprocket_redis (provision logins)",
            "sprocket_s3 (provision logins)",
            "sprocket_vault-agent"
        ]
    );
}

#[test]
fn prod_graph_is_acyclic_and_complete() {
    let p = example("prod");
    let d = desired(&p);
    let g = graph(&p, &d, true);
    assert_eq!(
        g.needs
            .keys()
            .filter(|s| matches!(s, Step::Service(_)))
            .count(),
        d.services().count()
    );
    // Walking needs from every step ends (no cycle) within the number of steps.
    for start in g.needs.keys() {
        let mut frontier = vec![(start.clone(), 0)];
        while let Some((s, depth)) = frontier.pop() {
            assert!(depth <= g.needs.len(), "cycle through {s}");
            for n in g.needs_of(&s) {
                frontier.push((n.on.clone(), depth + 1));
            }
        }
    }
}
