//! TLS from a real ACME server: the example's `acme-test` environment (offline, `tls: {
//! mode: letsencrypt, ca_server, ca_certificate }`) on the real swarm with a real Pebble
//! (Let's Encrypt's test CA, `scripts/lib/pebble.sh`) outside the swarm, as Let's Encrypt is:
//!
//! - `up` deploys; Traefik gets a certificate for every routed host through HTTP-01 (Pebble
//!   fetches the challenge from Traefik's HTTP port), trusting Pebble's API through the CA
//!   certificate the spec names (a Docker config), and serves it: curl verifies the chain
//!   against Pebble's *issuing* root (another CA than its API's) for each host;
//! - HTTP answers with a permanent redirect to HTTPS (the challenge path is not redirected);
//! - `plan` names the certificates `up` will make Traefik request (every host before, none
//!   after);
//! - `status` lists each host's served certificate and the ones `acme.json` keeps (issuer,
//!   not-after as openssl reads it, days left, level);
//! - a second `up` makes no call; `acme.json` (mode 0600) survives a restart of Traefik and a
//!   `down` without `--volumes` (the same certificate is served after each, nothing is
//!   requested again);
//! - renewal: with 90-second certificates and `certificates_duration: 1`, Traefik replaces the
//!   served certificate by itself.
//!
//! This test's Pebble has its own ports and state (the quick start's uses 14000 and port 80).

mod common;

use common::{docker_status, OnPanic, Scratch};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const NS: &str = "sprocket-acme";
const ENV: &str = "e2e-acme";
const HTTP_PORT: u16 = 17580;
const HTTPS_PORT: u16 = 17943;
const PEBBLE_PORT: u16 = 14100;
const BUCKET: &str = "sprocket-acme-backups";

/// A Pebble of a test's own: its state folder, its ACME port (the management and DNS ports
/// follow it), the HTTP port it validates on, and how long its certificates last (`None`: its
/// default, 5 years).
struct Pebble {
    state: &'static str,
    port: u16,
    http_port: u16,
    cert_seconds: Option<u64>,
}

const PEBBLE: Pebble = Pebble {
    state: "/var/lib/sprocket-pebble-e2e",
    port: PEBBLE_PORT,
    http_port: HTTP_PORT,
    cert_seconds: None,
};

/// Starts (or confirms) the test's Pebble: the path of the root that issues its certificates
/// (new on every Pebble start).
fn pebble(dir: &Path, pb: &Pebble) -> PathBuf {
    let root = dir.join("issuing-root.pem");
    let out = Command::new("bash")
        .args([
            "-c",
            &format!(
                "source scripts/lib/pebble.sh && pebble_ensure && pebble_root_pem {}",
                root.display()
            ),
        ])
        .env("SPROCKET_PEBBLE_DIR", pb.state)
        .env("SPROCKET_PEBBLE_PORT", pb.port.to_string())
        .env("SPROCKET_PEBBLE_MGMT_PORT", (pb.port + 1000).to_string())
        .env(
            "SPROCKET_PEBBLE_DNS_PORT",
            (pb.port - 6000 + 53).to_string(),
        )
        .env(
            "SPROCKET_PEBBLE_DNS_MGMT_PORT",
            (pb.port - 6000 + 55).to_string(),
        )
        .env("SPROCKET_PEBBLE_HTTP_PORT", pb.http_port.to_string())
        .env(
            "SPROCKET_PEBBLE_CERT_SECONDS",
            pb.cert_seconds.map(|s| s.to_string()).unwrap_or_default(),
        )
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
        .output()
        .expect("bash runs");
    assert!(
        out.status.success(),
        "Pebble (scripts/lib/pebble.sh) does not start: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    root
}

/// `curl --cacert <root>` of `https://<host>/` through this environment's HTTPS port: the
/// status, or curl's error.
fn https(root: &Path, host: &str) -> Result<u16, String> {
    https_on(root, host, HTTPS_PORT)
}

fn https_on(root: &Path, host: &str, port: u16) -> Result<u16, String> {
    let out = Command::new("curl")
        .args([
            "-sS",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "--max-time",
            "5",
            "--cacert",
            &root.display().to_string(),
            "--resolve",
            &format!("{host}:{port}:127.0.0.1"),
            &format!("https://{host}:{port}/"),
        ])
        .output()
        .expect("curl runs");
    let code = String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .unwrap_or(0);
    if out.status.success() {
        Ok(code)
    } else {
        Err(String::from_utf8_lossy(&out.stderr).trim().to_string())
    }
}

/// Waits (at most 60 s) until `host` answers 200 over verified HTTPS again.
fn answers_again(root: &Path, host: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while https(root, host) != Ok(200) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// The served certificate's issuer, serial and not-after (`openssl s_client`).
fn served(host: &str) -> String {
    served_on(host, HTTPS_PORT)
}

fn served_on(host: &str, port: u16) -> String {
    let out = Command::new("bash")
        .args([
            "-c",
            &format!(
                "openssl s_client -connect 127.0.0.1:{port} -servername {host} </dev/null 2>/dev/null \
                 | openssl x509 -noout -issuer -serial -enddate"
            ),
        ])
        .output()
        .expect("openssl runs");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[test]
fn certificates_from_a_real_acme_server_through_http_01() {
    common::require_swarm();
    let s = Scratch::new(
        "acme",
        ENV,
        &format!(
            "\n  {ENV}:\n    extends: acme-test\n    namespace: {NS}\n    http_port: {HTTP_PORT}\n    https_port: {HTTPS_PORT}\n    secrets_from: dotenv:secrets.env\n    tls: {{ mode: letsencrypt, email: ops@sprocket.test, ca_server: \"https://host.docker.internal:{PEBBLE_PORT}/dir\", ca_certificate: config/pebble-api-ca.pem }}\n    disable: {{ n8n: \"not under test\" }}\n    backup: {{ to: s3, bucket: {BUCKET}, at: off, keep: {{ daily: 1, weekly: 0, monthly: 0 }} }}\n"
        ),
    );
    let root = pebble(&s.dir, &PEBBLE);
    common::empty_bucket(BUCKET, &format!("{NS}/"));
    let _ = s.ctl(&["-q", "down", "--volumes"]);
    assert_eq!(s.ctl(&["-q", "vault", "keygen"]).code, 0);
    assert_eq!(s.ctl(&["-q", "secrets", "init-dotenv"]).code, 0);
    let traefik_log = || docker_status(&["service", "logs", "--raw", &format!("{NS}_traefik")]).1;
    let _log_on_panic = OnPanic(|| eprintln!("Traefik's log:\n{}", traefik_log()));

    // 0. plan names the certificates up will make Traefik request: every routed host.
    let plan = s.ctl(&["-o", "json", "plan"]);
    let wanted: Vec<String> = plan.json()["certificates"]
        .as_array()
        .unwrap_or_else(|| panic!("no certificates in {}", plan.stdout))
        .iter()
        .map(|c| c["host"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        wanted,
        [
            "demo.sprocket.test",
            "health.sprocket.test",
            "vault.sprocket.test"
        ]
    );

    // 1. up: every routed host gets a certificate Pebble issued, served on HTTPS.
    let t0 = Instant::now();
    let up = s.ctl(&["-o", "json", "up", "--timeout", "180"]);
    assert_eq!(up.code, 0, "{}", up.stdout);
    let up_done = t0.elapsed();
    // (health: the agent's status page)
    let hosts = [
        "demo.sprocket.test",
        "health.sprocket.test",
        "vault.sprocket.test",
    ];
    for host in hosts {
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut last = https(&root, host);
        while !matches!(last, Ok(200 | 204 | 307 | 404)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(500));
            last = https(&root, host);
        }
        assert!(
            last.is_ok(),
            "{host}: no certificate chaining to Pebble's issuing root within 60 s: {last:?}"
        );
        let cert = served(host);
        assert!(cert.contains("Pebble Intermediate CA"), "{host}: {cert}");
    }
    eprintln!(
        "up returned after {:.1}s; every host served a Pebble certificate {:.1}s after up started",
        up_done.as_secs_f64(),
        t0.elapsed().as_secs_f64()
    );
    let demo = https(&root, "demo.sprocket.test");
    assert_eq!(demo, Ok(200), "the demo answers on HTTPS");

    // 1b. `status` lists each host's served certificate and what acme.json keeps: Pebble's
    //     intermediate as issuer, its not-after (Pebble's default validity: 5 years), no error.
    let status = s.ctl(&["-o", "json", "status"]);
    let certs = status.json()["certificates"].clone();
    let list = certs
        .as_array()
        .unwrap_or_else(|| panic!("no certificates: {}", status.stdout));
    for host in hosts {
        for source in ["served", "acme.json"] {
            let c = list
                .iter()
                .find(|c| {
                    c["source"] == source
                        && c["host"].as_str().unwrap().split(',').any(|h| h == host)
                })
                .unwrap_or_else(|| panic!("{host} {source} in {certs:#}"));
            assert_eq!(c["level"], "ok", "{c}");
            assert!(
                c["issuer"]
                    .as_str()
                    .unwrap()
                    .contains("Pebble Intermediate CA"),
                "{c}"
            );
            let days = c["days_left"].as_i64().unwrap();
            assert!((1820..=1827).contains(&days), "{c}");
        }
    }
    // The served certificate's not-after is the one openssl reads.
    let served_line = served("demo.sprocket.test");
    let c = list
        .iter()
        .find(|c| c["source"] == "served" && c["host"] == "demo.sprocket.test")
        .unwrap();
    let not_after = c["not_after"].as_str().unwrap();
    let out = Command::new("date")
        .args(["-u", "-d", not_after, "+notAfter=%b %e %H:%M:%S %Y GMT"])
        .output()
        .unwrap();
    let want = String::from_utf8_lossy(&out.stdout)
        .trim()
        .replace("  ", " ");
    assert!(
        served_line.replace("  ", " ").contains(&want),
        "status says {not_after}, openssl: {served_line}"
    );

    // With them in acme.json, plan names none.
    let plan = s.ctl(&["-o", "json", "plan"]);
    assert!(plan.json().get("certificates").is_none(), "{}", plan.stdout);

    // 2. HTTP redirects to HTTPS, permanently.
    let (code, _) = common::http_get(HTTP_PORT, "demo.sprocket.test", "/");
    assert!(code == 301 || code == 308, "HTTP answers {code}");

    // 3. a second up makes no call; a restart of Traefik keeps acme.json (the same certificate).
    let again = s.ctl(&["-o", "json", "up"]);
    assert_eq!(again.code, 0, "{}", again.stdout);
    assert_eq!(
        again.json()["calls"],
        serde_json::json!({ "create": 0, "update": 0, "remove": 0 })
    );
    let before = served("demo.sprocket.test");
    let (ok, out) = docker_status(&[
        "service",
        "update",
        "--force",
        "--quiet",
        &format!("{NS}_traefik"),
    ]);
    assert!(ok, "{out}");
    answers_again(&root, "demo.sprocket.test");
    assert_eq!(
        served("demo.sprocket.test"),
        before,
        "after a restart Traefik serves the certificate acme.json kept"
    );
    // acme.json is 0600 (Traefik refuses another mode), and `down` without `--volumes` keeps
    // it: the next `up` serves the same certificate, asking the CA nothing.
    let traefik = common::container_of(NS, "traefik");
    let listing = Command::new("bash")
        .args([
            "-c",
            &format!("docker cp {traefik}:/data/acme.json - | tar -tvf -"),
        ])
        .output()
        .expect("docker cp runs");
    let listing = String::from_utf8_lossy(&listing.stdout);
    assert!(
        listing.starts_with("-rw-------"),
        "acme.json mode: {listing}"
    );
    assert_eq!(s.ctl(&["-q", "down"]).code, 0);
    let up = s.ctl(&["-q", "up", "--timeout", "180"]);
    assert_eq!(up.code, 0, "{}", up.stderr);
    answers_again(&root, "demo.sprocket.test");
    assert_eq!(
        served("demo.sprocket.test"),
        before,
        "after down and up Traefik serves the certificate its volume kept"
    );

    // 5. A backup holds acme.json. Traefik's volume lost: Traefik asks the CA again (another
    // certificate); `restore --only acme` refuses to replace it, with --force puts the backup's
    // back and restarts Traefik, which serves the backed-up certificate again.
    let b = s.ctl(&["-o", "json", "backup"]);
    assert_eq!(b.code, 0, "{}{}", b.stdout, b.stderr);
    assert!(
        b.json()["artefacts"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["component"] == "acme" && a["bytes"].as_u64().unwrap() > 1000),
        "{}",
        b.stdout
    );
    assert_eq!(s.ctl(&["-q", "down"]).code, 0);
    let volume = format!("{NS}_traefik-data");
    let mut gone = (false, String::new());
    for _ in 0..40 {
        gone = docker_status(&["volume", "rm", &volume]);
        if gone.0 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
    assert!(gone.0, "{volume}: {}", gone.1);
    let up = s.ctl(&["-q", "up", "--timeout", "180"]);
    assert_eq!(up.code, 0, "{}", up.stderr);
    answers_again(&root, "demo.sprocket.test");
    let reissued = served("demo.sprocket.test");
    assert_ne!(reissued, before, "a new certificate from the CA");
    let identity = s.home.join(".config/sprocket/identity.txt");
    let id = identity.to_str().unwrap();
    let held = s.ctl(&["-o", "json", "restore", "--only", "acme", "--identity", id]);
    assert_eq!(held.code, 7, "{}{}", held.stdout, held.stderr);
    assert_eq!(held.json()["held"][0][0], "acme", "{}", held.stdout);
    let back = s.ctl(&[
        "-o",
        "json",
        "restore",
        "--only",
        "acme",
        "--force",
        "--identity",
        id,
    ]);
    assert_eq!(back.code, 0, "{}{}", back.stdout, back.stderr);
    assert_eq!(
        back.json()["restored"][0]["component"],
        "acme",
        "{}",
        back.stdout
    );
    answers_again(&root, "demo.sprocket.test");
    assert_eq!(
        served("demo.sprocket.test"),
        before,
        "after the restore Traefik serves the backed-up certificate"
    );
    let again = s.ctl(&["-o", "json", "up"]);
    assert_eq!(again.code, 0, "{}", again.stdout);
    assert_eq!(
        again.json()["calls"],
        serde_json::json!({ "create": 0, "update": 0, "remove": 0 }),
        "Traefik's restart changed nothing of its spec"
    );
    drop(s);
    common::empty_bucket(BUCKET, &format!("{NS}/"));
}

/// Let's Encrypt's budget: an environment whose hosts do not resolve (`.invalid` never does)
/// is refused before anything changes — exit 3, each host named with the reason.
#[test]
fn the_lets_encrypt_pre_flight_refuses_hosts_that_would_fail_validation() {
    common::require_swarm();
    let ns = "sprocket-preflight";
    let s = Scratch::new(
        "preflight",
        "e2e-preflight",
        &format!(
            "\n  e2e-preflight:\n    extends: offline\n    namespace: {ns}\n    hostname: sprocket-preflight.invalid\n    server_ip: none\n    tailscale_ip: none\n    http_port: 17680\n    https_port: 17643\n    secrets_from: dotenv:secrets.env\n    tls: {{ mode: letsencrypt-staging, email: ops@sprocket.test }}\n"
        ),
    );
    assert_eq!(s.ctl(&["-q", "vault", "keygen"]).code, 0);
    assert_eq!(s.ctl(&["-q", "secrets", "init-dotenv"]).code, 0);
    let up = s.ctl(&["up"]);
    assert_eq!(up.code, 3, "{}\n{}", up.stdout, up.stderr);
    for host in [
        "demo.sprocket-preflight.invalid",
        "vault.sprocket-preflight.invalid",
    ] {
        assert!(
            up.stderr.contains(&format!("{host}: it does not resolve")),
            "{host} named: {}",
            up.stderr
        );
    }
    assert!(up.stderr.contains("Nothing was changed"), "{}", up.stderr);
    let (_, services) = docker_status(&[
        "service",
        "ls",
        "-q",
        "--filter",
        &format!("label=io.sprocket.namespace={ns}"),
    ]);
    assert!(services.trim().is_empty(), "nothing deployed: {services}");
}

/// Renewal with no command of ours: Pebble issues 90-second certificates, the environment says
/// how long its CA's certificates last (`certificates_duration: 1` hour, the shortest Traefik
/// knows: it then renews what expires within 20 minutes, checking every minute), and the
/// served certificate is replaced by a newer one by itself.
#[test]
fn traefik_renews_short_lived_certificates_by_itself() {
    common::require_swarm();
    let (ns, http, https_port) = ("sprocket-renew", 18780, 19043);
    let pb = Pebble {
        state: "/var/lib/sprocket-pebble-renew",
        port: 14200,
        http_port: http,
        cert_seconds: Some(90),
    };
    let s = Scratch::new(
        "renew",
        "e2e-renew",
        &format!(
            "\n  e2e-renew:\n    extends: acme-test\n    namespace: {ns}\n    http_port: {http}\n    https_port: {https_port}\n    secrets_from: dotenv:secrets.env\n    tls: {{ mode: letsencrypt, email: ops@sprocket.test, ca_server: \"https://host.docker.internal:{}/dir\", ca_certificate: config/pebble-api-ca.pem, certificates_duration: 1 }}\n    disable: {{ n8n: \"not under test\" }}\n",
            pb.port
        ),
    );
    let root = pebble(&s.dir, &pb);
    assert_eq!(s.ctl(&["-q", "vault", "keygen"]).code, 0);
    assert_eq!(s.ctl(&["-q", "secrets", "init-dotenv"]).code, 0);
    let up = s.ctl(&["-q", "up", "--timeout", "180"]);
    assert_eq!(up.code, 0, "{}", up.stderr);
    let host = "demo.sprocket.test";
    let wait = |what: &str, secs: u64, done: &dyn Fn(&str) -> bool| -> String {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let cert = served_on(host, https_port);
            if https_on(&root, host, https_port) == Ok(200) && done(&cert) {
                return cert;
            }
            assert!(
                Instant::now() < deadline,
                "{what} within {secs} s; served: {cert}"
            );
            std::thread::sleep(Duration::from_secs(1));
        }
    };
    let first = wait("a Pebble certificate", 60, &|c| {
        c.contains("Pebble Intermediate CA")
    });
    let t0 = Instant::now();
    let renewed = wait("a renewed certificate", 150, &|c| {
        c.contains("Pebble Intermediate CA") && c != first
    });
    eprintln!(
        "renewed {:.0}s after the first was served:\n{first}\n→\n{renewed}",
        t0.elapsed().as_secs_f64()
    );
    let serial = |c: &str| {
        c.lines()
            .find(|l| l.starts_with("serial="))
            .map(String::from)
    };
    assert_ne!(serial(&first), serial(&renewed));
    drop(s);
}
