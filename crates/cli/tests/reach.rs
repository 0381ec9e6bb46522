//! "A consumer reaches exactly what it uses", proved from inside running tasks on the real swarm
//! (its own namespace): a consumer reaches its provider; two consumers of one provider cannot
//! reach each other; a routed service cannot reach another routed service it does not use; a
//! gated backend cannot be reached around its gate — only through Traefik, where the gate runs.
//! Reachability is an HTTP request from inside the container (`bash`'s `/dev/tcp`) to every
//! address the target's task has, by name and by IP. No engine is a failure, never a skip.

mod common;

use std::path::{Path, PathBuf};

const NS: &str = "sprocket-reach";
const ENV: &str = "reach";
const HTTP: u16 = 19480;

const SPEC: &str = r#"platform: reach
default_environment: reach
middlewares:
  gate: { service: gatekeeper, forward_auth: { address: "http://gatekeeper:8080/healthz" } }
layers:
  infra:
    services:
      traefik:
        role: edge
        image: sprocket-local/traefik:3.7
        health: { cmd: [traefik, healthcheck, --ping], interval: 1s }
      socket-proxy:
        role: docker-api-proxy
        image: sprocket-local/socket-proxy:0.3
        # What the spec switches on no longer decides: the rules are derived from the role.
        env: { SERVICES: 1, TASKS: 1, NETWORKS: 1, NODES: 1, INFO: 1, VERSION: 1, PING: 1, EVENTS: 1, CONTAINERS: 1, POST: 1 }
        volumes: [{ bind: /var/run/docker.sock, target: /var/run/docker.sock, read_only: true }]
      gatekeeper: &demo
        image: sprocket-local/demo:0.1
        health: { cmd: [sprocket-demo, probe], interval: 1s }
        routes: [{ subdomain: fa, port: 8080 }]
  data:
    services:
      provider: { image: sprocket-local/demo:0.1, health: { cmd: [sprocket-demo, probe], interval: 1s } }
  apps:
    services:
      c1: { image: sprocket-local/demo:0.1, uses: [provider] }
      c2: { image: sprocket-local/demo:0.1, uses: [provider] }
      r1: { image: sprocket-local/demo:0.1, routes: [{ subdomain: r1, port: 8080 }] }
      r2: { image: sprocket-local/demo:0.1, routes: [{ subdomain: r2, port: 8080 }] }
      gated: { image: sprocket-local/demo:0.1, routes: [{ subdomain: gated, port: 8080, middlewares: [gate] }] }
      api-reader: { image: sprocket-local/demo:0.1, uses: [socket-proxy] }
environments:
  reach:
    namespace: sprocket-reach
    hostname: localhost
    tls: { mode: none }
    endpoint_mode: dnsrr
    publish_mode: host
    http_port: 19480
"#;

fn docker(args: &[&str]) -> (bool, String) {
    common::docker_status(args)
}

/// The running container of service `svc` (one replica).
fn container(svc: &str) -> String {
    common::container_of(NS, svc)
}

/// Every IP address `svc`'s task has, on any network.
fn addresses(svc: &str) -> Vec<String> {
    let (_, out) = docker(&[
        "inspect",
        "-f",
        "{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}",
        &container(svc),
    ]);
    let ips: Vec<String> = out.split_whitespace().map(str::to_string).collect();
    assert!(!ips.is_empty(), "{svc} has no address");
    ips
}

/// Whether, from inside `from`'s container, `host:8080` answers the demo app's `/healthz` with
/// 200 (within 2 s). An HTTP answer, not a bare TCP connect: an address that is not on any of the
/// container's networks leaves by its default route, and a network in between may accept any
/// connection (this machine's does, answering 426).
fn connects(from: &str, host: &str) -> bool {
    let (_, out) = docker(&[
        "exec",
        &container(from),
        "timeout",
        "2",
        "bash",
        "-c",
        &format!(
            "exec 3<>/dev/tcp/{host}/8080 && printf 'GET /healthz HTTP/1.0\\r\\n\\r\\n' >&3 && head -c 12 <&3"
        ),
    ]);
    out.starts_with("HTTP/1.") && out.contains(" 200")
}

/// `from` reaches `to` by name or by any of its addresses.
fn reaches(from: &str, to: &str) -> bool {
    connects(from, to) || addresses(to).iter().any(|ip| connects(from, ip))
}

/// The status the Docker API proxy answers `method path` with, asked from inside `from`.
fn proxy_status(from: &str, method: &str, path: &str) -> String {
    let (_, out) = docker(&[
        "exec",
        &container(from),
        "timeout",
        "3",
        "bash",
        "-c",
        &format!(
            "exec 3<>/dev/tcp/socket-proxy/2375 && printf '%s HTTP/1.0\\r\\nContent-Length: 0\\r\\n\\r\\n' '{method} {path}' >&3 && head -c 12 <&3"
        ),
    ]);
    out.split_whitespace().nth(1).unwrap_or("none").to_string()
}

fn http_status(host: &str) -> u16 {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", HTTP)).unwrap();
    write!(
        s,
        "GET / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out.split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

fn write_spec(dir: &Path) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let path = dir.join("reach.yaml");
    std::fs::write(&path, SPEC).unwrap();
    path
}

#[test]
fn a_service_reaches_exactly_what_it_uses_from_inside_its_task() {
    common::require_swarm();
    let dir = std::env::temp_dir().join(format!("sprocket-reach-{}", std::process::id()));
    let home = dir.join("home");
    std::fs::create_dir_all(&home).unwrap();
    let spec = write_spec(&dir);
    let ctl = |args: &[&str]| common::sprocketctl(&home, &spec, ENV, args);
    let _ = ctl(&["-q", "down"]);
    let _down = common::OnPanic(|| {
        let _ = ctl(&["-q", "down", "--volumes"]);
    });

    let up = ctl(&["-o", "json", "up", "--timeout", "120"]);
    assert_eq!(up.code, 0, "{}", up.stdout);

    // Positive controls: what is used is reached, by name.
    assert!(connects("c1", "provider"), "c1 reaches what it uses");
    assert!(connects("c2", "provider"), "c2 reaches what it uses");
    // Two consumers of one provider never reach each other.
    assert!(!reaches("c1", "c2"), "c1 reaches c2");
    assert!(!reaches("c2", "c1"), "c2 reaches c1");
    // Routed services do not reach each other, nor what they do not use.
    assert!(!reaches("r1", "r2"), "r1 reaches r2");
    assert!(!reaches("r2", "r1"), "r2 reaches r1");
    assert!(!reaches("r1", "provider"), "r1 reaches provider");
    // The gated backend: not around its gate — neither from another routed service nor from a
    // consumer — and through Traefik only where the gate runs.
    assert!(!reaches("r1", "gated"), "r1 reaches the gated backend");
    assert!(!reaches("c1", "gated"), "c1 reaches the gated backend");
    assert!(!reaches("gatekeeper", "gated"), "the gate's own service");
    // Traefik reaches every routed service (the gated one through its gate): each route answers.
    for host in ["r1.localhost", "r2.localhost", "gated.localhost"] {
        let mut status = 0;
        for _ in 0..50 {
            status = http_status(host);
            if status == 200 {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
        assert_eq!(status, 200, "{host} through Traefik");
    }

    // The Docker API proxy: read-only, whole paths only, whatever its env switches on — no
    // service logs, containers, configs or writes.
    let (_, demo_id) = docker(&["service", "inspect", "-f", "{{.ID}}", &format!("{NS}_r1")]);
    assert_eq!(proxy_status("api-reader", "GET", "/v1.41/services"), "200");
    assert_eq!(proxy_status("api-reader", "GET", "/v1.41/_ping"), "200");
    for (method, path) in [
        ("GET", format!("/v1.41/services/{demo_id}/logs?stdout=1")),
        ("GET", format!("/v1.41/services/{demo_id}%2Flogs")),
        ("GET", "/v1.41/containers/json".to_string()),
        ("GET", "/v1.41/info/../containers/json".to_string()),
        ("GET", "/v1.41/configs".to_string()),
        ("GET", "/v1.41/secrets".to_string()),
        ("GET", "/v1.41/swarm".to_string()),
        ("POST", "/v1.41/services/create".to_string()),
        ("DELETE", format!("/v1.41/services/{demo_id}")),
    ] {
        assert_eq!(
            proxy_status("api-reader", method, &path),
            "403",
            "{method} {path}"
        );
    }

    let down = ctl(&["-q", "down"]);
    assert_eq!(down.code, 0, "{}", down.stderr);
}
