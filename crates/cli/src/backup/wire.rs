//! What the backup and restore tasks both speak: a mounted secret, an HTTP client for the
//! datastores' APIs, libpq's `sslmode` words, and Redis's protocol (RESP) as an administrator.

use serde::{de::DeserializeOwned, Serialize};
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
pub use sprocket_datastores::redis::encode as resp;

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

/// A one-off task's document from its environment variable `var` (`by`: the command that starts
/// the task, for the error).
pub fn job_from_env<T: DeserializeOwned>(var: &str, by: &str) -> Result<T, String> {
    let doc = std::env::var(var)
        .map_err(|_| format!("{var} is not set: this command runs in the task `{by}` starts"))?;
    serde_json::from_str(&doc).map_err(|e| format!("{var} is not a job: {e}"))
}

/// A task's one result line, which the command that started it reads from its log.
pub fn print_result<T: Serialize>(prefix: &str, result: &T) {
    println!(
        "{prefix}{}",
        serde_json::to_string(result).expect("serialisable")
    );
}

/// The result line in a task's log (the last one, if several).
pub fn result_in_logs<T: DeserializeOwned>(logs: &[String], prefix: &str) -> Option<T> {
    logs.iter().rev().find_map(|l| {
        l.split_once(prefix)
            .and_then(|(_, j)| serde_json::from_str(j).ok())
    })
}

/// `program` (`pg_dump`, `pg_restore`, `psql`) against one server as `user`: the password in the
/// child's own environment, never in its arguments (which any process can list) nor in the
/// task's service spec.
pub fn pg(
    program: &str,
    host: &str,
    port: u16,
    user: &str,
    password: &str,
    sslmode: sprocket_spec::model::SslMode,
) -> tokio::process::Command {
    let mut c = tokio::process::Command::new(program);
    c.args([
        "--no-password",
        "--host",
        host,
        "--port",
        &port.to_string(),
        "--username",
        user,
    ])
    .env("PGPASSWORD", password)
    .env("PGSSLMODE", sslmode_word(sslmode))
    .env("PGCONNECT_TIMEOUT", "10")
    .kill_on_drop(true);
    c
}

/// What a PostgreSQL tool's stderr says went wrong, for a report: its last own message (the
/// tool's or the server's `ERROR:` line), never the lines that quote data or statements —
/// `DETAIL:` (`Key (id)=(…)`), `CONTEXT:` (`COPY t, line 1: "…"`), `Command was:`, `LINE n:`
/// and their indented continuations. Reports are printed and a drill's is kept in the bucket.
pub fn pg_message(stderr: &str) -> &str {
    const QUOTING: [&str; 5] = ["DETAIL:", "CONTEXT:", "HINT:", "Command was:", "LINE "];
    stderr
        .lines()
        .rev()
        .map(str::trim_end)
        .filter(|l| !l.is_empty() && !l.starts_with(char::is_whitespace))
        .find(|l| !QUOTING.iter().any(|q| l.starts_with(q)))
        .unwrap_or("no message")
}

/// An object into a temporary file, with its size and SHA-256 counted on the way (`None`: no
/// such object). Only ciphertext is ever downloaded.
pub async fn download(
    store: &sprocket_datastores::s3::Client,
    bucket: &str,
    key: &str,
) -> Result<Option<(tempfile::NamedTempFile, u64, String)>, String> {
    use sha2::Digest;
    use std::io::Write;
    let Some(mut r) = store
        .get_stream(bucket, key)
        .await
        .map_err(|e| e.to_string())?
    else {
        return Ok(None);
    };
    let mut file = tempfile::NamedTempFile::new().map_err(|e| e.to_string())?;
    let mut sha = sha2::Sha256::new();
    let mut bytes = 0u64;
    while let Some(chunk) = r.chunk().await.map_err(|e| e.to_string())? {
        sha.update(&chunk);
        bytes += chunk.len() as u64;
        file.write_all(&chunk).map_err(|e| e.to_string())?;
    }
    file.flush().map_err(|e| e.to_string())?;
    Ok(Some((file, bytes, hex::encode(sha.finalize()))))
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_pg_tools_message_never_quotes_the_data_or_statement() {
        let stderr = "pg_restore: error: could not execute query: ERROR:  duplicate key value violates unique constraint \"t_pkey\"\nDETAIL:  Key (token)=(s3cr3t-value) already exists.\nCONTEXT:  COPY t, line 1: \"1\ts3cr3t-value\"\nCommand was: COPY public.t (id, token) FROM stdin;\n    continued\n";
        let m = super::pg_message(stderr);
        assert!(
            m.starts_with("pg_restore: error: could not execute query"),
            "{m}"
        );
        assert!(!m.contains("s3cr3t"), "{m}");
        assert_eq!(super::pg_message(""), "no message");
        assert_eq!(
            super::pg_message("psql: error: connection to server failed\n"),
            "psql: error: connection to server failed"
        );
    }
}
