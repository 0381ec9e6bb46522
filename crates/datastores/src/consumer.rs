//! Logging in as a consumer does, with the credentials its own task mounts: what `check`'s
//! probe task does from the consumer's networks to prove each of its logins works (not only
//! that the datastore answers). Each returns what it proved, or the datastore's reason for
//! refusing; a password or key is never part of either.

use crate::postgres::Target;
use crate::s3::Client;
use sprocket_spec::model::SslMode;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

const TIMEOUT: Duration = Duration::from_secs(5);

/// A TCP connection to `target` (`host:port`) with `timeout` on connecting, reading and
/// writing.
pub fn connect(target: &str, timeout: Duration) -> Result<TcpStream, String> {
    use std::net::ToSocketAddrs;
    let addr = target
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {target}: {e}"))?
        .next()
        .ok_or_else(|| format!("{target} resolves to no address"))?;
    let s =
        TcpStream::connect_timeout(&addr, timeout).map_err(|e| format!("connect {addr}: {e}"))?;
    s.set_read_timeout(Some(timeout))
        .map_err(|e| e.to_string())?;
    s.set_write_timeout(Some(timeout))
        .map_err(|e| e.to_string())?;
    Ok(s)
}

/// One RESP command and its reply, trimmed (short replies only: `+OK`, `-ERR …`, a small bulk).
pub fn redis_command(s: &mut TcpStream, cmd: &[&str]) -> Result<String, String> {
    let args: Vec<&[u8]> = cmd.iter().map(|a| a.as_bytes()).collect();
    s.write_all(&crate::redis::encode(&args))
        .map_err(|e| e.to_string())?;
    let mut buf = [0u8; 512];
    let n = s.read(&mut buf).map_err(|e| format!("read: {e}"))?;
    Ok(String::from_utf8_lossy(&buf[..n]).trim().to_string())
}

/// Redis: `AUTH user password`, then `PING`.
pub fn redis(host: &str, port: u16, user: &str, password: &str) -> Result<String, String> {
    let mut s = connect(&format!("{host}:{port}"), TIMEOUT)?;
    let auth = redis_command(&mut s, &["AUTH", user, password])?;
    if auth != "+OK" {
        // Redis's refusals (`-WRONGPASS …`, `-ERR …`) never quote the password.
        return Err(format!(
            "AUTH as {user} refused: {}",
            auth.trim_start_matches('-')
        ));
    }
    match redis_command(&mut s, &["PING"])?.as_str() {
        "+PONG" => Ok(format!("AUTH as {user}, PING answered")),
        other => Err(format!("PING as {user}: {}", other.trim_start_matches('-'))),
    }
}

/// RabbitMQ: AMQP 0-9-1 login as `user`, and its vhost opened.
pub fn rabbitmq(
    host: &str,
    port: u16,
    user: &str,
    password: &str,
    vhost: &str,
) -> Result<String, String> {
    let mut s = connect(&format!("{host}:{port}"), TIMEOUT)?;
    crate::amqp::login(&mut s, user, password, vhost)
}

/// PostgreSQL: connected as `user` to `database` (TLS as `sslmode` says), `SELECT 1` answered.
pub async fn postgres(
    host: &str,
    port: u16,
    user: &str,
    password: &str,
    database: &str,
    sslmode: SslMode,
) -> Result<String, String> {
    let t = Target {
        host,
        port,
        user,
        password,
        database,
        sslmode,
    };
    // tokio-postgres's errors name the user and the database, never the password.
    let c = crate::postgres::connect(&t)
        .await
        .map_err(|e| crate::postgres::error_text(&e))?;
    c.simple_query("SELECT 1")
        .await
        .map_err(|e| crate::postgres::error_text(&e))?;
    Ok(format!(
        "connected as {user} to {database}{}",
        match sslmode {
            SslMode::Disable => "",
            SslMode::Require => " over TLS",
        }
    ))
}

/// S3: a request signed with the key pair is not refused as an unknown key or a bad
/// signature (a key limited to its buckets may be denied the listing and still be right).
pub async fn s3(
    endpoint: &str,
    region: &str,
    access_key: &str,
    secret_key: &str,
) -> Result<String, String> {
    let c = Client::new(endpoint, region, access_key, secret_key).map_err(|e| e.to_string())?;
    match c.key_works().await {
        Ok(true) => Ok("its key pair is accepted".into()),
        // The code only: S3's error bodies can quote the key id and the string signed.
        Ok(false) => Err("its key pair is refused (unknown key or bad signature)".into()),
        Err(e) => Err(e.to_string()),
    }
}
