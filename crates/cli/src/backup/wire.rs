//! What the backup and restore tasks both speak: a mounted secret, an HTTP client for the
//! datastores' APIs, libpq's `sslmode` words, and Redis's protocol (RESP) as an administrator.

use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

pub type Conn = BufReader<tokio::net::TcpStream>;

/// A mounted secret's value (trimmed; an empty or missing one is an error naming the file).
pub fn read(path: &str) -> Result<String, String> {
    sprocket_datastores::read_secret(path).map_err(|e| e.to_string())
}

/// An HTTP client whose timeouts are per read, not per body: artefacts have any size.
pub fn http() -> Result<reqwest::Client, String> {
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(10))
        .read_timeout(Duration::from_secs(120))
        .build()
        .map_err(|e| e.to_string())
}

pub fn sslmode_word(m: sprocket_spec::model::SslMode) -> &'static str {
    match m {
        sprocket_spec::model::SslMode::Disable => "disable",
        sprocket_spec::model::SslMode::Require => "require",
    }
}

/// A command as RESP: an array of bulk strings.
pub fn resp(args: &[&[u8]]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// One command and its answer: a status or error line as it is, a bulk reply's body.
pub async fn ask(c: &mut Conn, at: &str, args: &[&[u8]]) -> Result<String, String> {
    c.get_mut()
        .write_all(&resp(args))
        .await
        .map_err(|e| format!("Redis at {at}: {e}"))?;
    let mut line = String::new();
    c.read_line(&mut line)
        .await
        .map_err(|e| format!("Redis at {at}: {e}"))?;
    let line = line.trim_end().to_string();
    if let Some(n) = line.strip_prefix('$').and_then(|n| n.parse::<usize>().ok()) {
        let mut body = vec![0u8; n + 2];
        c.read_exact(&mut body)
            .await
            .map_err(|e| format!("Redis at {at}: {e}"))?;
        body.truncate(n);
        return Ok(String::from_utf8_lossy(&body).into_owned());
    }
    Ok(line)
}

/// A connection to Redis, logged in with its password (its `default` user).
pub async fn redis_login(host: &str, port: u16, password: &str) -> Result<Conn, String> {
    let at = format!("{host}:{port}");
    let s = tokio::time::timeout(
        Duration::from_secs(10),
        tokio::net::TcpStream::connect((host, port)),
    )
    .await
    .map_err(|_| format!("Redis at {at} does not answer in 10 s"))?
    .map_err(|e| format!("Redis at {at}: {e}"))?;
    let mut c = BufReader::new(s);
    let auth = ask(&mut c, &at, &[b"AUTH", password.as_bytes()]).await?;
    if auth != "+OK" {
        return Err(format!(
            "Redis at {at} refuses its password: {}",
            auth.trim_start_matches('-')
        ));
    }
    Ok(c)
}
