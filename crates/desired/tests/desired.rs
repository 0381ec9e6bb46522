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
            "sprocket_demo_to_rabbitmq",
            "sprocket_demo_to_redis",
            // from its `vault` paths
            "sprocket_demo_to_vault",
            "sprocket_edge_demo"
        ]
    );
    // The environment is backed up: Redis and Vault join a network of their own with the backup
    // task.
    assert_eq!(
        nets_of(&d, "redis"),
        [
            "sprocket_backup_redis",
            "sprocket_demo_to_redis",
            "sprocket_provision_redis"
        ]
    );
    // RabbitMQ's route is gated and its gate does not run offline: not routed here at all.
    // Its provisioning network: the one-off task that makes its consumers' logins joins it.
    assert_eq!(
        nets_of(&d, "rabbitmq"),
        ["sprocket_demo_to_rabbitmq", "sprocket_provision_rabbitmq"]
    );
    assert_eq!(
        nets_of(&d, "traefik"),
        [
            "sprocket_edge_demo",
            // n8n's `/webhook` route (its UI route is gated: not published offline)
            "sprocket_edge_n8n",
            "sprocket_edge_vault",
            // the agent's status page; the agent reaches Traefik on it too (it checks routes)
            "sprocket_edge_vault-agent",
            "sprocket_traefik_to_socket-proxy"
        ]
    );
    assert_eq!(
        nets_of(&d, "socket-proxy"),
        [
            "sprocket_traefik_to_socket-proxy",
            "sprocket_vault-agent_to_socket-proxy"
        ]
    );
    assert_eq!(
        nets_of(&d, "vault-agent"),
        [
            "sprocket_edge_vault-agent",
            "sprocket_vault-agent_to_socket-proxy",
            "sprocket_vault-agent_to_vault"
        ]
    );
    // Each routed service tells Traefik which network reaches it; Traefik has no default.
    let demo = d.services().find(|s| s.short_name == "demo").unwrap();
    assert_eq!(demo.labels["traefik.swarm.network"], "sprocket_edge_demo");
    let traefik = d.services().find(|s| s.short_name == "traefik").unwrap();
    let args = traefik.args.as_ref().unwrap();
    assert!(!args
        .iter()
        .any(|a| a.starts_with("--providers.swarm.network")));
    let agent = d
        .services()
        .find(|s| s.short_name == "vault-agent")
        .unwrap();
    assert_eq!(agent.env["SPROCKET_VAULT_TASKS"], "tasks.sprocket_vault");
    assert_eq!(agent.env["SPROCKET_DOCKER_API"], "tcp://socket-proxy:2375");
    // Secrets sort by name: the demo's token and the backups' (the agent renews both: the
    // environment is backed up), then the unseal material.
    let mounted: Vec<(&str, &str)> = agent
        .secrets
        .iter()
        .map(|s| (s.name.as_str(), s.target.as_str()))
        .collect();
    assert_eq!(
        mounted,
        [
            ("vault-token-demo", "/run/secrets/vault-token-demo"),
            (
                "vault-token-sprocketctl-backup",
                "/run/secrets/vault-token-sprocketctl-backup"
            ),
            ("vault-unseal", "/run/secrets/vault-unseal")
        ]
    );
    assert_eq!(agent.env["SPROCKET_TOKEN_PERIOD"], "86400");
    // A network belongs to the layer of the service it leads to; edge networks to the edge's.
    let data: Vec<&str> = d.layers[1]
        .networks
        .iter()
        .map(|n| n.name.as_str())
        .collect();
    assert_eq!(
        data,
        [
            // Redis's own network with the backup task
            "sprocket_backup_redis",
            "sprocket_demo_to_rabbitmq",
            "sprocket_demo_to_redis",
            // the external PostgreSQL's, with its first consumer (n8n)
            "sprocket_provision_postgres",
            "sprocket_provision_rabbitmq",
            "sprocket_provision_redis"
        ]
    );
    // A secret two layers mount (Redis in `data`, the demo in `platform`) belongs to the first:
    // planned, and a generated value made, once.
    let holders: Vec<&str> = d
        .layers
        .iter()
        .filter(|l| l.secrets.iter().any(|s| s.name == "redis-password"))
        .map(|l| l.name.as_str())
        .collect();
    assert_eq!(holders, ["data"]);
    // Every attachment aliases the service's short name, so apps use `redis`, not `sprocket_redis`.
    assert!(demo.networks.iter().all(|n| n.aliases == ["demo"]));
}

/// The property the README claims, over every pair of production's services: two services share
/// a network exactly when one uses the other, or one is the edge router and the other is routed.
#[test]
fn two_services_share_a_network_only_along_a_used_or_routed_edge() {
    let p = example("prod");
    let d = desired(&p);
    let edge = p.edge().unwrap().name.clone();
    let routed = |s: &str| {
        s != edge
            && p.service(s)
                .unwrap()
                .routes
                .iter()
                .any(|r| r.internal.is_none())
    };
    let uses = |a: &str, b: &str| {
        p.service(a).unwrap().uses.iter().any(|u| u == b)
            || (a == edge && p.docker_api_proxy().is_some_and(|x| x.name == b))
    };
    let services: Vec<&str> = d.services().map(|s| s.short_name.as_str()).collect();
    assert!(services.len() > 20, "{}", services.len());
    let mut pairs = 0;
    for (i, a) in services.iter().enumerate() {
        for b in &services[i + 1..] {
            let (na, nb) = (nets_of(&d, a), nets_of(&d, b));
            let shared: Vec<&String> = nb.iter().filter(|n| na.contains(n)).collect();
            let expected =
                uses(a, b) || uses(b, a) || (*a == edge && routed(b)) || (*b == edge && routed(a));
            assert_eq!(
                !shared.is_empty(),
                expected,
                "{a} and {b} share {shared:?}; expected a shared network: {expected}"
            );
            pairs += usize::from(expected);
            assert!(shared.len() <= 1 + usize::from(uses(a, b) && uses(b, a)));
        }
    }
    assert!(pairs > 40, "{pairs}");
    // web uses only core: it reaches neither Vault, RabbitMQ, Neo4j nor Dgraph.
    for other in ["vault", "rabbitmq", "neo4j", "dgraph-alpha"] {
        let web = nets_of(&d, "web");
        assert!(
            nets_of(&d, other).iter().all(|n| !web.contains(n)),
            "web reaches {other}"
        );
    }
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
    let configs: Vec<(&str, &str)> = vault
        .configs
        .iter()
        .map(|c| (c.name.rsplit_once('-').unwrap().0, c.target.as_str()))
        .collect();
    assert_eq!(
        configs,
        [
            (
                "sprocket_vault-sprocket-listener",
                "/etc/sprocket/vault-listener.hcl"
            ),
            ("sprocket_vault-vault-hcl", "/openbao/config/vault.hcl")
        ]
    );
}

/// Vault's private listener: a Unix socket in a volume of its own, loaded by one more
/// `-config=` after the spec's server command, so sprocketctl never reaches Vault through the
/// router. The public route refuses the unauthenticated key endpoints.
#[test]
fn vault_gets_a_private_socket_and_its_route_refuses_the_key_endpoints() {
    use sprocket_desired::contract::vault_socket;
    let d = desired(&example("offline"));
    let vault = d.services().find(|s| s.short_name == "vault").unwrap();
    assert_eq!(
        vault.command.as_deref().unwrap(),
        ["bao", "server", "-config=/openbao/config/vault.hcl"]
    );
    assert_eq!(
        vault.args.as_deref().unwrap(),
        ["-config=/etc/sprocket/vault-listener.hcl"]
    );
    let socket = vault
        .mounts
        .iter()
        .find(|m| m.target == vault_socket::DIR)
        .unwrap();
    assert_eq!(
        (socket.kind.as_str(), socket.source.as_str()),
        ("volume", "sprocket_vault_socket")
    );
    assert!(vault_socket::listener_hcl().contains("address = \"/run/sprocket-vault/vault.sock\""));
    assert_eq!(
        vault_socket::host_path(Path::new("/var/lib/docker"), "sprocket"),
        Path::new("/var/lib/docker/volumes/sprocket_vault_socket/_data/vault.sock")
    );
    for router in ["vault", "vault-tls"] {
        let rule = &vault.labels[&format!("traefik.http.routers.{router}.rule")];
        for path in traefik::VAULT_PRIVATE_PATHS {
            assert!(rule.contains(&format!("!PathPrefix(`{path}`)")), "{rule}");
        }
    }
    // Nobody else's rule refuses anything.
    let demo = d.services().find(|s| s.short_name == "demo").unwrap();
    assert!(!demo.labels["traefik.http.routers.demo.rule"].contains('!'));
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
                created_at: None,
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
                created_at: None,
            })
            .collect(),
        // Every secret the layers mount, made once (version 1).
        secrets: d
            .layers
            .iter()
            .flat_map(|l| &l.secrets)
            .map(|r| ObservedObject {
                id: format!("{}-v1", r.prefix),
                name: format!("{}-v1", r.prefix),
                labels: r.labels.clone(),
                created_at: None,
            })
            .collect(),
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

    // The scheduled backups' runner is kept by the step that made it, never pruned.
    let mut runner = live.services[0].clone();
    runner.spec.name = "sprocket_backup-schedule".into();
    runner.layer = None;
    runner
        .spec
        .labels
        .insert(sprocket_desired::labels::SCHEDULE.into(), "backup".into());
    live.services.push(runner);
    let p = plan(&d, &live);
    assert_eq!(p.prune.len(), 1, "{:?}", p.prune);
    assert_eq!(p.prune[0].name, "sprocket_grafana");
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
            "sprocket_n8n",
            "sprocket_demo"
        ]
    );
    // The agent's material is made by the Vault step of `up`, so it does not block.
    assert!(p.missing_secrets.is_empty());
    // Production's source and generated secrets live in Vault: the Vault step makes their
    // Docker secrets, so none is "missing", and each has its conventional Vault path.
    let prod_desired = desired(&example("prod"));
    let prod = plan(&prod_desired, &Observed::default());
    assert!(
        prod.missing_secrets.is_empty(),
        "{:?}",
        prod.missing_secrets
    );
    for (name, path) in [
        ("db-password", "sprocket/db-password"),
        ("jwt-secret", "sprocket/jwt-secret"),
    ] {
        let r = prod_desired.secret(name).unwrap();
        let at = r.vault.as_ref().expect("kept in Vault");
        assert_eq!(
            (at.mount.as_str(), at.path.as_str(), at.key.as_str()),
            ("sprocket", path, "value")
        );
        assert!(prod_desired.is_vault_made(name));
        assert!(
            !prod
                .layers
                .iter()
                .flat_map(|l| &l.changes)
                .any(|c| c.name == name),
            "not generated before the Vault step"
        );
    }
}

#[test]
fn an_acme_environment_validates_http_01_on_the_web_entry_point_and_trusts_its_private_ca() {
    let d = desired(&example("acme-test"));
    let tr = d.services().find(|s| s.short_name == "traefik").unwrap();
    let args = tr.args.as_ref().unwrap();
    for want in [
        "--certificatesresolvers.letsencrypt.acme.httpchallenge.entrypoint=web",
        "--certificatesresolvers.letsencrypt.acme.caserver=https://host.docker.internal:14000/dir",
        "--certificatesresolvers.letsencrypt.acme.cacertificates=/run/sprocket/acme-ca.pem",
        "--certificatesresolvers.letsencrypt.acme.storage=/data/acme.json",
        "--entrypoints.web.http.redirections.entrypoint.to=websecure",
    ] {
        assert!(args.contains(&want.to_string()), "{want} in {args:?}");
    }
    // The CA certificate is a Docker config mounted where the argument says; Pebble is on the
    // Docker host, so Traefik gets the host entry that names it.
    let ca = tr
        .configs
        .iter()
        .find(|c| c.target == "/run/sprocket/acme-ca.pem")
        .expect("the CA certificate is mounted");
    let spec = d
        .layers
        .iter()
        .flat_map(|l| &l.configs)
        .find(|c| c.name == ca.name)
        .unwrap();
    assert!(String::from_utf8_lossy(&spec.content).contains("-----BEGIN CERTIFICATE-----"));
    assert_eq!(tr.hosts, ["host-gateway host.docker.internal"]);
    // Every route is HTTPS only, with the resolver; no IP host (the environment cleared them).
    let demo = d.services().find(|s| s.short_name == "demo").unwrap();
    assert_eq!(
        demo.labels["traefik.http.routers.demo.rule"],
        "Host(`demo.sprocket.test`)"
    );
    assert_eq!(
        demo.labels["traefik.http.routers.demo.tls.certresolver"],
        "letsencrypt"
    );
    // Production trusts Let's Encrypt as is: no CA config, no host entry.
    let prod = desired(&example("prod"));
    let tr = prod.services().find(|s| s.short_name == "traefik").unwrap();
    assert!(!tr
        .configs
        .iter()
        .any(|c| c.target == "/run/sprocket/acme-ca.pem"));
    assert!(tr.hosts.is_empty());
}
