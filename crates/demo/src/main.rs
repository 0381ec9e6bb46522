//! `sprocket-demo`: a tiny HTTP service that stands in for the Sprocket apps where their
//! private images cannot be had. On every request to `/` it connects to each dependency named in
//! `DEMO_CHECKS` (`name=host:port,…`) and speaks its protocol for real — Redis: `AUTH` as
//! `DEMO_REDIS_USER` (or the shared login) with the password in `DEMO_REDIS_PASSWORD_FILE`,
//! `PING`, and a write and read of a key under its prefix (see `redis.rs`);
//! RabbitMQ: the AMQP 0-9-1 handshake, logging in as `DEMO_AMQP_USER` on `DEMO_AMQP_VHOST` with
//! the password in `DEMO_AMQP_PASSWORD_FILE` when set (else up to `connection.start`);
//! PostgreSQL: its own role and database (`DEMO_PG_*`, see `pg.rs`), writing a row; S3
//! (`s3=<endpoint>`): an object written into and read back from its bucket with its own key
//! (`DEMO_S3_*`, see `s3.rs`) — and answers JSON with the
//! outcome (200 when every check passes, 503 otherwise). `/healthz` answers 200 while the
//! process serves; `sprocket-demo probe` calls it (the container health check: no curl needed).
//! `/fingerprints` answers, for every secret file under `DEMO_SECRETS_DIR` (default
//! `/run/secrets`), its keyed fingerprint — HMAC-SHA256 under the platform's key in
//! `DEMO_FINGERPRINT_KEY_FILE`, 12 hex digits, as `sprocketctl secrets ls` shows it — so a test
//! sees which version of each secret the running task really holds. Never a value.
//!
//! An app refuses a credential that is no longer good (a revoked key): the demo stands in for
//! that with `DEMO_REFUSE_PREFIX` — while a secret file's value starts with it, `/healthz`
//! answers 503, so its health check fails (how a rotation that its consumer refuses is tested).
//!
//! The standard library, an HMAC and sprocketctl's own PostgreSQL and S3 clients; it runs in the
//! locally built Debian image.

use sprocket_datastores::amqp;
mod pg;
mod redis;
mod s3;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

const TIMEOUT: Duration = Duration::from_secs(2);

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let listen = std::env::var("DEMO_LISTEN").unwrap_or_else(|_| "0.0.0.0:8080".into());
    match args.get(1).map(String::as_str) {
        Some("probe") => {
            let port = listen.rsplit(':').next().unwrap_or("8080");
            std::process::exit(if probe(&format!("127.0.0.1:{port}")) {
                0
            } else {
                1
            });
        }
        Some("--help") | Some("-h") => {
            println!("sprocket-demo [probe]\n  serves http on DEMO_LISTEN (default 0.0.0.0:8080): / runs DEMO_CHECKS (name=host:port,...), /healthz is liveness\n  probe: exit 0 when /healthz answers 200");
        }
        _ => serve(&listen),
    }
}

fn serve(listen: &str) {
    let listener = TcpListener::bind(listen).unwrap_or_else(|e| {
        eprintln!("sprocket-demo: cannot listen on {listen}: {e}");
        std::process::exit(1);
    });
    eprintln!("sprocket-demo: listening on {listen}");
    for conn in listener.incoming().flatten() {
        std::thread::spawn(move || handle(conn));
    }
}

fn handle(mut conn: TcpStream) {
    let _ = conn.set_read_timeout(Some(TIMEOUT));
    let mut reader = BufReader::new(match conn.try_clone() {
        Ok(c) => c,
        Err(_) => return,
    });
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).is_err() {
        return;
    }
    // Drain the headers.
    let mut line = String::new();
    while reader.read_line(&mut line).map(|n| n > 2).unwrap_or(false) {
        line.clear();
    }
    let path = request_line.split_whitespace().nth(1).unwrap_or("/");
    let (status, body) = match path {
        "/healthz" => match refused_secret() {
            None => ("200 OK", "{\"status\":\"ok\"}".to_string()),
            Some(name) => (
                "503 Service Unavailable",
                format!("{{\"status\":\"refused\",\"secret\":\"{}\"}}", esc(&name)),
            ),
        },
        p if p == "/amqp" || p.starts_with("/amqp?") => {
            // Another login than its own, for tests: `?vhost=X` (its own user on vhost X) or
            // `?guest` (RabbitMQ's well-known guest/guest). Never a password of the platform's.
            let query = p.split_once('?').map(|(_, q)| q).unwrap_or("");
            match amqp_try(query) {
                Ok(d) => (
                    "200 OK",
                    format!("{{\"ok\":true,\"detail\":\"{}\"}}", esc(&d)),
                ),
                Err(e) => (
                    "200 OK",
                    format!("{{\"ok\":false,\"detail\":\"{}\"}}", esc(&e)),
                ),
            }
        }
        p if p.starts_with("/pg?database=") => {
            // Its own login on another database: refused unless it was granted.
            let database = &p["/pg?database=".len()..];
            let result =
                target_of(&["postgres", "pg"]).and_then(|t| pg::try_database(&t, database));
            let (ok, d) = match result {
                Ok(d) => (true, d),
                Err(e) => (false, e),
            };
            (
                "200 OK",
                format!("{{\"ok\":{ok},\"detail\":\"{}\"}}", esc(&d)),
            )
        }
        p if p.starts_with("/redis?key=") => {
            // A key outside its prefix: refused by Redis unless its ACL allows it.
            let key = &p["/redis?key=".len()..];
            let result = target_of(&["redis"])
                .and_then(|t| connect(&t))
                .and_then(|s| redis::try_key(s, key));
            let (ok, d) = match result {
                Ok(d) => (true, d),
                Err(e) => (false, e),
            };
            (
                "200 OK",
                format!("{{\"ok\":{ok},\"detail\":\"{}\"}}", esc(&d)),
            )
        }
        p if p.starts_with("/s3?bucket=") => {
            // A write into another bucket: refused unless its key may write there.
            let bucket = &p["/s3?bucket=".len()..];
            let result = target_of(&["s3"]).and_then(|t| s3::write(&t, bucket, false));
            let (ok, d) = match result {
                Ok(d) => (true, d),
                Err(e) => (false, e),
            };
            (
                "200 OK",
                format!("{{\"ok\":{ok},\"detail\":\"{}\"}}", esc(&d)),
            )
        }
        "/fingerprints" => match fingerprints() {
            Ok(body) => ("200 OK", body),
            Err(e) => (
                "503 Service Unavailable",
                format!("{{\"error\":\"{}\"}}", esc(&e)),
            ),
        },
        "/" => {
            let checks = run_checks(&std::env::var("DEMO_CHECKS").unwrap_or_default());
            let all_ok = checks.iter().all(|c| c.ok);
            let items: Vec<String> = checks.iter().map(Check::json).collect();
            let host = std::env::var("HOSTNAME").unwrap_or_default();
            (
                if all_ok {
                    "200 OK"
                } else {
                    "503 Service Unavailable"
                },
                format!(
                    "{{\"app\":\"sprocket-demo\",\"host\":\"{}\",\"ok\":{all_ok},\"checks\":[{}]}}",
                    esc(&host),
                    items.join(",")
                ),
            )
        }
        _ => ("404 Not Found", "{\"error\":\"not found\"}".to_string()),
    };
    let _ = write!(
        conn,
        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
}

fn probe(addr: &str) -> bool {
    let Ok(mut s) = TcpStream::connect_timeout(&addr.parse().expect("an address"), TIMEOUT) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(TIMEOUT));
    if s.write_all(b"GET /healthz HTTP/1.1\r\nHost: probe\r\nConnection: close\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out.starts_with("HTTP/1.1 200")
}

struct Check {
    name: String,
    target: String,
    ok: bool,
    detail: String,
    millis: u128,
}

impl Check {
    fn json(&self) -> String {
        format!(
            "{{\"name\":\"{}\",\"target\":\"{}\",\"ok\":{},\"detail\":\"{}\",\"ms\":{}}}",
            esc(&self.name),
            esc(&self.target),
            self.ok,
            esc(&self.detail),
            self.millis
        )
    }
}

fn esc(s: &str) -> String {
    s.chars()
        .flat_map(|c| match c {
            '"' => vec!['\\', '"'],
            '\\' => vec!['\\', '\\'],
            c if c.is_control() => vec![' '],
            c => vec![c],
        })
        .collect()
}

fn run_checks(spec: &str) -> Vec<Check> {
    spec.split(',')
        .filter(|s| !s.trim().is_empty())
        .map(|item| {
            let (name, target) = item.split_once('=').unwrap_or((item, item));
            let start = Instant::now();
            let result = check(name.trim(), target.trim());
            Check {
                name: name.trim().to_string(),
                target: target.trim().to_string(),
                ok: result.is_ok(),
                detail: result.unwrap_or_else(|e| e),
                millis: start.elapsed().as_millis(),
            }
        })
        .collect()
}

fn connect(target: &str) -> Result<TcpStream, String> {
    sprocket_datastores::consumer::connect(target, TIMEOUT)
}

fn check(name: &str, target: &str) -> Result<String, String> {
    if name.contains("postgres") || name == "pg" {
        return pg::check(target);
    }
    if name.contains("s3") {
        return s3::check(target);
    }
    let mut s = connect(target)?;
    if name.contains("redis") {
        redis::check(s)
    } else if name.contains("rabbit") || name.contains("amqp") {
        match std::env::var("DEMO_AMQP_USER") {
            // Its own login: user, vhost and the password the platform mounted for it.
            Ok(user) => {
                let vhost = std::env::var("DEMO_AMQP_VHOST").unwrap_or_else(|_| "/".into());
                let file = std::env::var("DEMO_AMQP_PASSWORD_FILE")
                    .map_err(|_| "DEMO_AMQP_PASSWORD_FILE is not set".to_string())?;
                let password = std::fs::read_to_string(&file)
                    .map_err(|e| format!("cannot read the AMQP password file {file}: {e}"))?;
                amqp::login(&mut s, &user, password.trim_end(), &vhost)
            }
            Err(_) => amqp::hello(&mut s),
        }
    } else {
        Ok("tcp connect".into())
    }
}

/// The target of the first check in `DEMO_CHECKS` whose name contains one of `names`.
fn target_of(names: &[&str]) -> Result<String, String> {
    std::env::var("DEMO_CHECKS")
        .unwrap_or_default()
        .split(',')
        .filter_map(|i| i.split_once('='))
        .find(|(n, _)| names.iter().any(|x| n.contains(x)))
        .map(|(_, t)| t.trim().to_string())
        .ok_or_else(|| format!("no {} in DEMO_CHECKS", names[0]))
}

/// A login other than the configured one (`/amqp?vhost=X`, `/amqp?guest`).
fn amqp_try(query: &str) -> Result<String, String> {
    let target = target_of(&["rabbit", "amqp"])?;
    let mut s = connect(&target)?;
    if query == "guest" {
        return amqp::login(&mut s, "guest", "guest", "/");
    }
    let vhost = query
        .strip_prefix("vhost=")
        .ok_or("ask `?vhost=NAME` or `?guest`")?;
    let user = std::env::var("DEMO_AMQP_USER").map_err(|_| "DEMO_AMQP_USER is not set")?;
    let file = std::env::var("DEMO_AMQP_PASSWORD_FILE")
        .map_err(|_| "DEMO_AMQP_PASSWORD_FILE is not set".to_string())?;
    let password = std::fs::read_to_string(&file).map_err(|e| format!("{file}: {e}"))?;
    amqp::login(&mut s, &user, password.trim_end(), vhost)
}

/// `{"name": "<12 hex>", …}` for every file in the secrets folder but the key itself and the
/// Vault token (not a secret of the spec's).
fn fingerprints() -> Result<String, String> {
    use hmac::{Hmac, Mac};
    let key_file = std::env::var("DEMO_FINGERPRINT_KEY_FILE")
        .map_err(|_| "DEMO_FINGERPRINT_KEY_FILE is not set".to_string())?;
    let key = std::fs::read(&key_file).map_err(|e| format!("cannot read {key_file}: {e}"))?;
    let dir = std::env::var("DEMO_SECRETS_DIR").unwrap_or_else(|_| "/run/secrets".into());
    let mut names: Vec<(String, std::path::PathBuf)> = std::fs::read_dir(&dir)
        .map_err(|e| format!("cannot list {dir}: {e}"))?
        .flatten()
        .map(|e| (e.file_name().to_string_lossy().to_string(), e.path()))
        .filter(|(_, p)| p.is_file() && p.to_string_lossy() != key_file)
        .filter(|(n, _)| n != "vault-token")
        .collect();
    names.sort();
    let mut items = Vec::new();
    for (name, path) in names {
        let value = std::fs::read(&path).map_err(|e| format!("cannot read {name}: {e}"))?;
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(&key).expect("any key length");
        mac.update(&value);
        let hex: String = mac
            .finalize()
            .into_bytes()
            .iter()
            .take(6)
            .map(|b| format!("{b:02x}"))
            .collect();
        items.push(format!("\"{}\":\"{hex}\"", esc(&name)));
    }
    Ok(format!("{{{}}}", items.join(",")))
}

/// The first secret file whose value starts with `DEMO_REFUSE_PREFIX`, if any.
fn refused_secret() -> Option<String> {
    let prefix = std::env::var("DEMO_REFUSE_PREFIX")
        .ok()
        .filter(|p| !p.is_empty())?;
    let dir = std::env::var("DEMO_SECRETS_DIR").unwrap_or_else(|_| "/run/secrets".into());
    std::fs::read_dir(dir)
        .ok()?
        .flatten()
        .find(|e| std::fs::read(e.path()).is_ok_and(|v| v.starts_with(prefix.as_bytes())))
        .map(|e| e.file_name().to_string_lossy().to_string())
}
