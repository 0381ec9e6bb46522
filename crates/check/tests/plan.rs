//! `check`'s plan, derived from the real example spec: every route × host, and for each
//! service what it must reach from its own networks and what it must not.

use sprocket_check::plan::{plan, Expect, UNKNOWN_HOST};
use sprocket_spec::model::Platform;
use std::path::Path;

fn example(env: &str) -> Platform {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/sprocket/sprocket.yaml");
    let parsed = sprocket_spec::parse_file(&path).unwrap();
    sprocket_spec::resolve(&parsed, Some(env), &sprocket_spec::Files::disk())
        .unwrap()
        .platform
}

#[test]
fn the_demo_reaches_what_it_uses_and_nothing_else() {
    let p = example("offline");
    let d = sprocket_desired::state::desired(&p);
    let c = plan(&p, &d);
    let demo = c.reach.iter().find(|r| r.service == "demo").unwrap();
    let reach: Vec<(String, String, Option<u16>)> = demo
        .targets
        .iter()
        .filter(|t| t.expect == Expect::Reachable)
        .map(|t| (t.name.clone(), t.host.clone(), t.port))
        .collect();
    let want = |n: &str, h: &str, p: u16| (n.to_string(), h.to_string(), Some(p));
    assert_eq!(
        reach,
        [
            want("redis", "redis", 6379),
            want("rabbitmq", "rabbitmq", 5672),
            want("vault", "vault", 8200),
            want("postgres", "host.docker.internal", 5433),
            want("s3", "host.docker.internal", 9333),
        ]
    );
    let isolated: Vec<&str> = demo
        .targets
        .iter()
        .filter(|t| t.expect == Expect::Isolated)
        .map(|t| t.name.as_str())
        .collect();
    for s in ["socket-proxy", "vault-agent", "n8n"] {
        assert!(isolated.contains(&s), "{s} in {isolated:?}");
    }
    for s in ["redis", "rabbitmq", "vault", "traefik"] {
        assert!(!isolated.contains(&s), "{s} shares a network with the demo");
    }
    // The probe joins exactly the demo's networks, with its host entries.
    let spec = d.services().find(|s| s.short_name == "demo").unwrap();
    let mut nets: Vec<&str> = spec.networks.iter().map(|n| n.network.as_str()).collect();
    nets.sort();
    assert_eq!(demo.networks, nets);
    assert_eq!(demo.hosts, spec.hosts);
    // Only the edge router and the unseal agent (it watches Vault's tasks) reach the Docker
    // API proxy.
    for r in &c.reach {
        let proxy = r.targets.iter().find(|t| t.name == "socket-proxy");
        match r.service.as_str() {
            "socket-proxy" => assert!(proxy.is_none()),
            "traefik" | "vault-agent" => assert_eq!(proxy.unwrap().expect, Expect::Reachable),
            _ => assert_eq!(
                proxy.map(|t| t.expect),
                Some(Expect::Isolated),
                "{}",
                r.service
            ),
        }
    }
}

#[test]
fn every_route_times_every_host() {
    let p = example("offline");
    let d = sprocket_desired::state::desired(&p);
    let c = plan(&p, &d);
    let want: usize = p
        .services()
        .flat_map(|s| &s.routes)
        .filter(|r| r.internal.is_none())
        .map(|r| r.hosts.len())
        .sum();
    assert!(want > 0);
    assert_eq!(c.routes.len(), want);
    assert!(c.routes.iter().all(|r| !r.tls), "offline serves HTTP");
    assert!(c.routes.iter().all(|r| r.host != UNKNOWN_HOST));
    let prod = example("prod");
    let d = sprocket_desired::state::desired(&prod);
    let c = plan(&prod, &d);
    let web = c.routes.iter().find(|r| r.service == "web").unwrap();
    assert!(web.tls, "production's names go over HTTPS: {web:?}");
    assert_eq!(c.services.len(), d.services().count());
    // Whose failure explains whose: what it uses, and the edge router it is reached through.
    assert_eq!(c.uses["core"], ["redis", "rabbitmq", "vault", "traefik"]);
    assert_eq!(c.uses["traefik"], ["socket-proxy"]);
    assert_eq!(c.uses["redis"], Vec::<String>::new());
}
