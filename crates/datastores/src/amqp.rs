//! Just enough AMQP 0-9-1 to log in and open a vhost, as a RabbitMQ client does: protocol
//! header → `connection.start` → `start-ok` (PLAIN) → `tune` → `tune-ok` → `open` →
//! `open-ok`, then `close`. A refusal comes back as `connection.close` with RabbitMQ's reason
//! (`ACCESS_REFUSED - Login was refused …`, `NOT_ALLOWED - access to vhost …`), which is what
//! the demo and `check`'s probe report; the password is never part of a message.

use std::io::{Read, Write};
use std::net::TcpStream;

const FRAME_END: u8 = 0xCE;

fn shortstr(out: &mut Vec<u8>, s: &str) {
    out.push(s.len().min(255) as u8);
    out.extend_from_slice(&s.as_bytes()[..s.len().min(255)]);
}

fn longstr(out: &mut Vec<u8>, b: &[u8]) {
    out.extend_from_slice(&(b.len() as u32).to_be_bytes());
    out.extend_from_slice(b);
}

fn method(class: u16, id: u16, args: &[u8]) -> Vec<u8> {
    let mut payload = Vec::with_capacity(4 + args.len());
    payload.extend_from_slice(&class.to_be_bytes());
    payload.extend_from_slice(&id.to_be_bytes());
    payload.extend_from_slice(args);
    let mut f = vec![1u8, 0, 0];
    f.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    f.extend_from_slice(&payload);
    f.push(FRAME_END);
    f
}

/// The next method frame on channel 0: (class, method, arguments). Heartbeats are skipped.
fn read_method(s: &mut TcpStream) -> Result<(u16, u16, Vec<u8>), String> {
    loop {
        let mut head = [0u8; 7];
        s.read_exact(&mut head).map_err(|e| match e.kind() {
            std::io::ErrorKind::UnexpectedEof => "the broker closed the connection".to_string(),
            _ => format!("read: {e}"),
        })?;
        let size = u32::from_be_bytes([head[3], head[4], head[5], head[6]]) as usize;
        if size > 1 << 20 {
            return Err(format!("frame of {size} bytes"));
        }
        let mut body = vec![0u8; size + 1];
        s.read_exact(&mut body).map_err(|e| format!("read: {e}"))?;
        if body[size] != FRAME_END {
            return Err("bad frame end".into());
        }
        match head[0] {
            1 if size >= 4 => {
                let class = u16::from_be_bytes([body[0], body[1]]);
                let id = u16::from_be_bytes([body[2], body[3]]);
                return Ok((class, id, body[4..size].to_vec()));
            }
            8 => continue, // heartbeat
            t => return Err(format!("unexpected frame type {t}")),
        }
    }
}

/// `connection.close`'s reply code and text.
fn close_reason(args: &[u8]) -> String {
    if args.len() < 3 {
        return "connection.close".into();
    }
    let code = u16::from_be_bytes([args[0], args[1]]);
    let n = args[2] as usize;
    let text = String::from_utf8_lossy(args.get(3..3 + n).unwrap_or_default());
    format!("{code} {text}")
}

/// Up to `connection.start` (no login).
pub fn hello(s: &mut TcpStream) -> Result<String, String> {
    s.write_all(b"AMQP\x00\x00\x09\x01")
        .map_err(|e| e.to_string())?;
    match read_method(s)? {
        (10, 10, _) => Ok("AMQP connection.start".into()),
        (c, m, _) => Err(format!("expected connection.start, got {c}.{m}")),
    }
}

/// Logs in as `user` and opens `vhost`; `Ok` says so, `Err` carries the broker's reason.
pub fn login(s: &mut TcpStream, user: &str, password: &str, vhost: &str) -> Result<String, String> {
    hello(s)?;
    // client-properties: capabilities.authentication_failure_close, so a refused login is
    // answered with its reason instead of a bare close.
    let mut caps = Vec::new();
    shortstr(&mut caps, "authentication_failure_close");
    caps.extend_from_slice(b"t\x01");
    let mut props = Vec::new();
    shortstr(&mut props, "capabilities");
    props.push(b'F');
    longstr(&mut props, &caps);
    let mut args = Vec::new();
    longstr(&mut args, &props);
    shortstr(&mut args, "PLAIN");
    let mut response = vec![0u8];
    response.extend_from_slice(user.as_bytes());
    response.push(0);
    response.extend_from_slice(password.as_bytes());
    longstr(&mut args, &response);
    shortstr(&mut args, "en_US");
    s.write_all(&method(10, 11, &args))
        .map_err(|e| e.to_string())?;
    let tune = match read_method(s)? {
        (10, 30, a) if a.len() >= 8 => a,
        (10, 50, a) => return Err(format!("login refused: {}", close_reason(&a))),
        (c, m, _) => return Err(format!("expected connection.tune, got {c}.{m}")),
    };
    // tune-ok: the broker's channel-max and frame-max, no heartbeats.
    let mut ok = tune[..6].to_vec();
    ok.extend_from_slice(&[0, 0]);
    s.write_all(&method(10, 31, &ok))
        .map_err(|e| e.to_string())?;
    let mut open = Vec::new();
    shortstr(&mut open, vhost);
    shortstr(&mut open, "");
    open.push(0);
    s.write_all(&method(10, 40, &open))
        .map_err(|e| e.to_string())?;
    let r = match read_method(s)? {
        (10, 41, _) => Ok(format!("logged in as {user} on vhost {vhost}")),
        (10, 50, a) => Err(format!("vhost {vhost} refused: {}", close_reason(&a))),
        (c, m, _) => Err(format!("expected connection.open-ok, got {c}.{m}")),
    };
    if r.is_ok() {
        let mut close = 200u16.to_be_bytes().to_vec();
        shortstr(&mut close, "bye");
        close.extend_from_slice(&[0, 0, 0, 0]);
        let _ = s.write_all(&method(10, 50, &close));
        let _ = read_method(s);
    }
    r
}
