//! Desired state, networks, Traefik rules, compose export and plans, from the real example spec.

mod common;

use sprocket_desired::plan::{plan, Action, Kind, Observed, ObservedObject, ObservedService};
use sprocket_desired::state::desired;
use sprocket_desired::{compose, traefik, DesiredState};
use std::path::Path;

use common::example;

fn nets_of(d: &DesiredState, svc: &str) -> Vec<String> {
    d.services()
        .find(|s| s.short_name == svc)
        .unwrap()
        .networks
        .iter()
        .map(|n| n.network.clone())
        .collect()
}

#[test]
fn networks_are_derived_from_uses_and_routes() {
    let d = desired(&example("offline"));
    assert_eq!(
        nets_of(&d, "demo"),
        [
            "sprocket_edge",
            "sprocket_to-rabbitmq",
            "sprocket_to-redis",
            // from its `vault` paths
            "sprocket_to-vault"
        ]
    );
    assert_eq!(nets_of(&d, "redis"), ["sprocket_to-redis"]);
    assert_eq!(
        nets_of(&d, "rabbitmq"),
        ["sprocket_edge", "sprocket_to-rabbitmq"]
    );
    assert_eq!(
        nets_of(&d, "traefik"),
        ["sprocket_docker-api", "sprocket_edge"]
    );
    assert_eq!(
        nets_of(&d, "socket-proxy"),
        ["sprocket_docker-api", "sprocket_to-socket-proxy"]
    );
    assert_eq!(
        nets_of(&d, "vault-agent"),
        ["sprocket_to-socket-proxy", "sprocket_to-vault"]
    );
    let agent = d
        .services()
        .find(|s| s.short_name == "vault-agent")
        .unwrap();
    assert_eq!(agent.env["SPROCKET_VAULT_TASKS"], "tasks.sprocket_vault");
    assert_eq!(agent.env["SPROCKET_DOCKER_API"], "tcp://socket-proxy:2375");
    // Secrets sort by name: the demo's token (the agent renews it), then the unseal material.
    let mounted: Vec<(&str, &str)> = agent
        .secrets
        .iter()
        .map(|s| (s.name.as_str(), s.target.as_str()))
        .collect();
    assert_eq!(
        mounted,
        [
            ("vault-token-demo", "/run/secrets/vault-token-demo"),
            ("vault-unseal", "/run/secrets/vault-unseal")
        ]
    );
    assert_eq!(agent.env["SPROCKET_TOKEN_PERIOD"], "86400");
    // A network belongs to the layer of the service it leads to.
    let data: Vec<&str> = d.layers[1]
        .networks
        .iter()
        .map(|n| n.name.as_str())
        .collect();
    assert_eq!(data, ["sprocket_to-rabbitmq", "sprocket_to-redis"]);
    // Every attachment aliases the service's short name, so apps use `redis`, not `sprocket_redis`.
    let demo = d.services().find(|s| s.short_name == "demo").unwrap();
    assert!(demo.networks.iter().all(|n| n.aliases == ["demo"]));
    // Production: the platform's apps reach what they use across layers.
    let prod = desired(&example("prod"));
    assert!(nets_of(&prod, "core").contains(&"sprocket_to-redis".to_string()));
    assert!(
        nets_of(&prod, "server-analytics-service").contains(&"sprocket_to-influxdb".to_string())
    );
    assert!(
        !nets_of(&prod, "server-analytics-service").contains(&"sprocket_to-redis".to_string()),
        "nothing it does not use"
    );
}

#[test]
fn traefik_rules_come_from_environment_and_route() {
    let local = example("local");
    let demo = local.service("demo").unwrap();
    assert_eq!(
        traefik::rule(&demo.routes[0]),
        "Host(`demo.localhost`) || Host(`192.168.4.39`) || Host(`100.110.185.84`)"
    );
    let prod = example("prod");
    let rabbit = prod.service("rabbitmq").unwrap();
    assert_eq!(
        traefik::rule(&rabbit.routes[0]),
        "Host(`rabbitmq.sprocket.mlesports.gg`)"
    );
    let n8n = prod.service("n8n").unwrap();
    assert_eq!(
        traefik::rule(&n8n.routes[1]),
        "Host(`n8n.sprocket.mlesports.gg`) && PathPrefix(`/webhook`)"
    );

    let d = desired(&prod);
    let core = d.services().find(|s| s.short_name == "core").unwrap();
    assert_eq!(
        core.labels["traefik.http.routers.core.entrypoints"],
        "websecure"
    );
    assert_eq!(
        core.labels["traefik.http.routers.core.tls.certresolver"],
        "letsencrypt"
    );
    assert_eq!(
        core.labels["traefik.http.services.core.loadbalancer.server.port"],
        "3001"
    );
    let dash = d.services().find(|s| s.short_name == "traefik").unwrap();
    assert_eq!(
        dash.labels["traefik.http.routers.traefik.service"],
        "api@internal"
    );
    assert_eq!(
        dash.labels["traefik.http.middlewares.admin-only.forwardauth.address"],
        "https://fa.sprocket.mlesports.gg/login?rule=SprocketAdmin"
    );
    let args = dash.args.as_ref().unwrap();
    assert!(args.contains(&"--providers.swarm.endpoint=tcp://socket-proxy:2375".to_string()));
    assert!(
        args.contains(&"--entrypoints.web.http.redirections.entrypoint.to=websecure".to_string())
    );
    assert!(
        !dash.mounts.iter().any(|m| m.source.contains("docker.sock")),
        "Traefik never mounts the socket"
    );

    let off = desired(&example("offline"));
    let demo = off.services().find(|s| s.short_name == "demo").unwrap();
    assert_eq!(demo.labels["traefik.http.routers.demo.entrypoints"], "web");
    assert_eq!(
        demo.labels["traefik.http.routers.demo-tls.entrypoints"],
        "websecure"
    );
    assert_eq!(demo.labels["traefik.http.routers.demo-tls.tls"], "true");
    assert_eq!(demo.endpoint_mode, "dnsrr");
    let tr = off.services().find(|s| s.short_name == "traefik").unwrap();
    assert!(tr.ports.iter().all(|p| p.mode == "host"));
    assert_eq!(tr.image, "sprocket-local/traefik:3.7");
    // The dashboard's gate does not run offline, so the dashboard is not published at all.
    assert!(!tr
        .labels
        .keys()
        .any(|k| k.starts_with("traefik.http.routers.")));
}

#[test]
fn ownership_labels_and_defaults() {
    let d = desired(&example("offline"));
    for s in d.services() {
        assert_eq!(s.labels["io.sprocket.managed-by"], "sprocketctl");
        assert_eq!(s.labels["io.sprocket.namespace"], "sprocket");
        assert_eq!(s.logging.options["max-size"], "5m");
        assert_eq!(s.logging.options["max-file"], "5");
        assert_eq!(s.labels["io.sprocket.spec-hash"], s.hash());
    }
    let vault = d.services().find(|s| s.short_name == "vault").unwrap();
    assert!(vault.configs[0]
        .name
        .starts_with("sprocket_vault-vault-hcl-"));
}

#[test]
fn desired_state_and_compose_snapshots() {
    let d = desired(&example("offline"));
    let text = serde_json::to_string_pretty(&d).unwrap();
    insta::assert_snapshot!("offline_desired", text);
    let files = compose::compose_files(&d, Path::new("/"));
    assert_eq!(
        files.iter().map(|f| f.layer.as_str()).collect::<Vec<_>>(),
        ["infrastructure", "data", "platform"]
    );
    // The example is read by an absolute path; its config files are named by it.
    let here = |text: &str| text.replace(env!("CARGO_MANIFEST_DIR"), "[crates/desired]");
    insta::assert_snapshot!("offline_compose_infrastructure", here(&files[0].text));
    insta::assert_snapshot!("offline_compose_platform", files[2].text);
}

fn observed_from(d: &DesiredState) -> Observed {
    Observed {
        foreign: vec![],
        services: d
            .services()
            .enumerate()
            .map(|(i, s)| ObservedService {
                id: format!("id{i}"),
                version: 1,
                spec: s.clone(),
                layer: Some(s.layer.clone()),
                updated_at: None,
                update_state: None,
                secret_ids: Default::default(),
            })
            .collect(),
        networks: d
            .layers
            .iter()
            .flat_map(|l| &l.networks)
            .map(|n| ObservedObject {
                id: n.name.clone(),
                name: n.name.clone(),
                labels: n.labels.clone(),
            })
            .collect(),
        configs: d
            .layers
            .iter()
            .flat_map(|l| &l.configs)
            .map(|c| ObservedObject {
                id: c.name.clone(),
                name: c.name.clone(),
                labels: c.labels.clone(),
            })
            .collect(),
        secrets: vec![],
    }
}

#[test]
fn plan_has_no_false_diffs_and_pinpoints_real_ones() {
    let d = desired(&example("offline"));
    let mut live = observed_from(&d);
    assert!(plan(&d, &live).is_empty(false));

    // The engine pinned an image to its digest: not a change.
    let redis = live
        .services
        .iter_mut()
        .find(|s| s.spec.short_name == "redis")
        .unwrap();
    redis.spec.image = format!("{}@sha256:{}", redis.spec.image, "ab".repeat(32));
    assert!(plan(&d, &live).is_empty(false));

    // Someone changed an env var by hand: exactly that field of that service.
    let demo = live
        .services
        .iter_mut()
        .find(|s| s.spec.short_name == "demo")
        .unwrap();
    demo.spec
        .env
        .insert("DEMO_CHECKS".into(), "redis=elsewhere:6379".into());
    let p = plan(&d, &live);
    let changes: Vec<_> = p.layers.iter().flat_map(|l| &l.changes).collect();
    assert_eq!(changes.len(), 1);
    assert_eq!(changes[0].action, Action::Update);
    assert_eq!(changes[0].name, "sprocket_demo");
    assert_eq!(changes[0].fields.len(), 1);
    assert_eq!(changes[0].fields[0].path, "env.DEMO_CHECKS");
    assert_eq!(
        changes[0].fields[0].before.as_ref().unwrap(),
        "redis=elsewhere:6379"
    );

    // An owned service the spec no longer wants is only a prune candidate.
    let mut orphan = live.services[0].clone();
    orphan.spec.name = "sprocket_grafana".into();
    orphan.layer = Some("data".into());
    live.services.push(orphan);
    let p = plan(&d, &live);
    assert_eq!(p.prune.len(), 1);
    assert_eq!(p.prune[0].kind, Kind::Service);
    assert_eq!(p.summary(false).delete, 0);
    assert_eq!(p.summary(true).delete, 1);
}

#[test]
fn from_nothing_everything_is_created_in_layer_order() {
    let d = desired(&example("offline"));
    let p = plan(&d, &Observed::default());
    let first = &p.layers[0].changes;
    assert_eq!(first[0].kind, Kind::Network);
    assert!(first.iter().any(|c| c.kind == Kind::Config));
    let services: Vec<&str> = p
        .layers
        .iter()
        .flat_map(|l| &l.changes)
        .filter(|c| c.kind == Kind::Service)
        .map(|c| c.name.as_str())
        .collect();
    assert_eq!(
        services,
        [
            "sprocket_traefik",
            "sprocket_socket-proxy",
            "sprocket_vault",
            "sprocket_vault-agent",
            "sprocket_redis",
            "sprocket_rabbitmq",
            "sprocket_demo"
        ]
    );
    // The agent's material is made by the Vault step of `up`, so it does not block.
    assert!(p.missing_secrets.is_empty());
    // Production needs Doppler's secrets before its apps can start: the plan says which.
    let prod = plan(&desired(&example("prod")), &Observed::default());
    assert!(prod.missing_secrets.contains(&"db-password".to_string()));
    assert!(
        !prod.missing_secrets.contains(&"jwt-secret".to_string()),
        "generated ones are created"
    );
}
