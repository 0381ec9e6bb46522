//! The Redis check: `AUTH` as `DEMO_REDIS_USER` (its own ACL user) with the password in
//! `DEMO_REDIS_PASSWORD_FILE`, or with the password alone (the shared `default` login) when no
//! user is set; then `PING`, and with a user of its own a write and read-back of a key under its
//! prefix (`<user>:check`), so the check proves what the login may do, not only that it exists.

use sprocket_datastores::consumer::redis_command as reply;
use std::net::TcpStream;

/// Logs in as configured. Redis's error replies never quote the password.
fn login(s: &mut TcpStream) -> Result<Option<String>, String> {
    let Ok(file) = std::env::var("DEMO_REDIS_PASSWORD_FILE") else {
        return Ok(None);
    };
    let password = std::fs::read_to_string(&file)
        .map_err(|e| format!("cannot read the Redis password file {file}: {e}"))?;
    let user = std::env::var("DEMO_REDIS_USER")
        .ok()
        .filter(|u| !u.is_empty());
    let r = match &user {
        Some(u) => reply(s, &["AUTH", u, password.trim_end()])?,
        None => reply(s, &["AUTH", password.trim_end()])?,
    };
    if r != "+OK" {
        return Err(format!(
            "AUTH as {} refused: {r:?}",
            user.as_deref().unwrap_or("default")
        ));
    }
    Ok(user)
}

pub fn check(mut s: TcpStream) -> Result<String, String> {
    let user = login(&mut s)?;
    let r = reply(&mut s, &["PING"])?;
    if r != "+PONG" {
        return Err(format!("unexpected reply {r:?}"));
    }
    let Some(user) = user else {
        return Ok("PONG (shared login)".into());
    };
    let key = format!("{user}:check");
    let stamp = format!(
        "{}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis())
            .unwrap_or_default()
    );
    let r = reply(&mut s, &["SET", &key, &stamp])?;
    if r != "+OK" {
        return Err(format!("SET {key} refused: {r:?}"));
    }
    let r = reply(&mut s, &["GET", &key])?;
    if !r.ends_with(&stamp) {
        return Err(format!("GET {key} gave {r:?}"));
    }
    Ok(format!("PONG; wrote and read {key} as {user}"))
}

/// A write of another key with its own login (`/redis?key=K`): refused unless its ACL allows it.
pub fn try_key(s: TcpStream, key: &str) -> Result<String, String> {
    let mut s = s;
    login(&mut s)?;
    let r = reply(&mut s, &["SET", key, "1"])?;
    if r == "+OK" {
        Ok(format!("SET {key}: OK"))
    } else {
        Err(format!("SET {key}: {r}"))
    }
}
