//! RabbitMQ through its management API: one user per consuming service (two that alternate
//! per password version, `<user>` and `<user>_b`, for a consumer that takes its user from
//! `{access.<rabbitmq>.user}`: the replaced one is kept for the roll, then deleted once
//! RabbitMQ holds the current one's password), its vhost and its permissions there, nothing
//! shared and no `guest`.
//!
//! - A user we make carries the tag `<owner>` (a tag RabbitMQ gives no meaning to); a user of a
//!   wanted name without it is somebody else's: refused, never changed.
//! - A vhost we make carries the same tag; an existing vhost without it (say `/`) is used for
//!   grants but never removed.
//! - Passwords are sent as RabbitMQ's own salted SHA-256 hash (`password_hash` with
//!   `rabbit_password_hashing_sha256`), never in clear; whether a user's password is current is
//!   decided by hashing the wanted value with the stored salt.
//! - `prune`: our users no consumer declares any more are removed, with their permissions, and
//!   our vhosts no wanted login uses.

use crate::{JobResult, LoginResult, Outcome, ProvisionError};
use base64::Engine as _;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use sprocket_desired::provision::{Job, JobLogin};
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

/// RabbitMQ's own algorithm name for salted SHA-256 (its default since 3.6).
pub const SHA256: &str = "rabbit_password_hashing_sha256";

/// `base64(salt ‖ sha256(salt ‖ password))`, RabbitMQ's stored form.
pub fn password_hash(salt: [u8; 4], password: &str) -> String {
    let mut h = Sha256::new();
    h.update(salt);
    h.update(password.as_bytes());
    let mut out = salt.to_vec();
    out.extend_from_slice(&h.finalize());
    base64::engine::general_purpose::STANDARD.encode(out)
}

/// Whether `stored` (with `algorithm`) is the hash of `password`.
pub fn hash_matches(stored: &str, algorithm: &str, password: &str) -> bool {
    if algorithm != SHA256 {
        return false;
    }
    let Ok(raw) = base64::engine::general_purpose::STANDARD.decode(stored) else {
        return false;
    };
    if raw.len() != 36 {
        return false;
    }
    let salt: [u8; 4] = raw[..4].try_into().expect("4 bytes");
    password_hash(salt, password) == stored
}

fn salt() -> [u8; 4] {
    use std::io::Read;
    let mut b = [0u8; 4];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut b))
        .expect("/dev/urandom is readable");
    b
}

/// A path segment of the management API (`/` in a vhost name is `%2F`).
fn seg(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Tags arrive as a list (3.9 and later) or as one comma-separated string (earlier).
#[derive(Debug, Deserialize, Default)]
#[serde(untagged)]
enum Tags {
    List(Vec<String>),
    Text(String),
    #[default]
    None,
}

impl Tags {
    fn has(&self, tag: &str) -> bool {
        match self {
            Tags::List(l) => l.iter().any(|t| t == tag),
            Tags::Text(t) => t.split(',').any(|t| t.trim() == tag),
            Tags::None => false,
        }
    }
}

#[derive(Debug, Deserialize)]
struct User {
    name: String,
    #[serde(default)]
    password_hash: String,
    #[serde(default)]
    hashing_algorithm: String,
    #[serde(default)]
    tags: Tags,
}

#[derive(Debug, Deserialize)]
struct Vhost {
    name: String,
    #[serde(default)]
    tags: Tags,
    #[serde(default)]
    metadata: Option<VhostMetadata>,
}

#[derive(Debug, Deserialize)]
struct VhostMetadata {
    #[serde(default)]
    tags: Tags,
}

impl Vhost {
    fn is_ours(&self, owner: &str) -> bool {
        self.tags.has(owner) || self.metadata.as_ref().is_some_and(|m| m.tags.has(owner))
    }
}

#[derive(Debug, Deserialize, PartialEq, Eq, Clone)]
struct Permission {
    user: String,
    vhost: String,
    configure: String,
    write: String,
    read: String,
}

/// The management API with the administrator's login.
struct Api {
    http: reqwest::Client,
    base: String,
    user: String,
    password: String,
}

impl Api {
    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> Result<reqwest::Response, ProvisionError> {
        let what = format!("{method} {path}");
        let mut rq = self
            .http
            .request(method, format!("{}{path}", self.base))
            .basic_auth(&self.user, Some(&self.password));
        if let Some(b) = body {
            rq = rq.json(&b);
        }
        let r = rq.send().await.map_err(|e| ProvisionError::Api {
            what: what.clone(),
            error: e.to_string(),
        })?;
        let status = r.status();
        if status.is_success() {
            return Ok(r);
        }
        let text = r.text().await.unwrap_or_default();
        let error = match status.as_u16() {
            401 => format!(
                "401: the administrator `{}` was refused (its password is the datastore's `admin_password` secret; a node that first started with another password keeps that one)",
                self.user
            ),
            403 => format!(
                "403: `{}` lacks the `administrator` tag RabbitMQ needs for users, vhosts and permissions",
                self.user
            ),
            _ => format!("{status}: {}", text.chars().take(300).collect::<String>()),
        };
        Err(ProvisionError::Api { what, error })
    }

    async fn get<T: for<'de> Deserialize<'de>>(&self, path: &str) -> Result<T, ProvisionError> {
        let r = self.send(reqwest::Method::GET, path, None).await?;
        r.json().await.map_err(|e| ProvisionError::Api {
            what: format!("GET {path}"),
            error: e.to_string(),
        })
    }

    async fn put(&self, path: &str, body: serde_json::Value) -> Result<(), ProvisionError> {
        self.send(reqwest::Method::PUT, path, Some(body))
            .await
            .map(|_| ())
    }

    async fn delete(&self, path: &str) -> Result<(), ProvisionError> {
        self.send(reqwest::Method::DELETE, path, None)
            .await
            .map(|_| ())
    }
}

/// How long the broker may take to answer: the task starts beside a booting RabbitMQ (its
/// own start period is 60 s) or during its rolling restart.
const READY_WITHIN: Duration = Duration::from_secs(120);
/// How often it asks meanwhile.
const RETRY: Duration = Duration::from_millis(250);

/// Whether an error is the broker not answering (yet, or for a moment): a refused or reset
/// connection, a timeout, a 5xx of a booting node. Not a refusal of ours (4xx).
fn transient(e: &ProvisionError) -> bool {
    match e {
        ProvisionError::Api { error, .. } => !error.starts_with('4'),
        _ => false,
    }
}

/// Provisions the job's logins; the whole of it again while the broker does not answer (every
/// step is idempotent), for up to [`READY_WITHIN`].
pub async fn provision(
    job: &Job,
    read: &dyn Fn(&str) -> Result<String, ProvisionError>,
) -> Result<JobResult, ProvisionError> {
    let t0 = Instant::now();
    loop {
        match attempt(job, read).await {
            Err(e) if transient(&e) && t0.elapsed() < READY_WITHIN => {
                // Names and the broker's own words only: never a value.
                eprintln!(
                    "rabbitmq not answering yet ({:.0}s): {e}",
                    t0.elapsed().as_secs_f64()
                );
                tokio::time::sleep(RETRY).await;
            }
            r => return r,
        }
    }
}

async fn attempt(
    job: &Job,
    read: &dyn Fn(&str) -> Result<String, ProvisionError>,
) -> Result<JobResult, ProvisionError> {
    let api = Api {
        http: reqwest::Client::builder()
            .timeout(Duration::from_secs(15))
            .build()
            .expect("an HTTP client"),
        base: format!("http://{}:{}/api", job.host, job.port),
        user: job.admin_user.clone(),
        password: read(&job.admin_password_file)?,
    };
    // The broker may answer AMQP before its management plugin: retry what cannot connect.
    let t0 = Instant::now();
    let users: Vec<User> = loop {
        match api.get("/users").await {
            Ok(u) => break u,
            Err(ProvisionError::Api { error, .. })
                if t0.elapsed() < READY_WITHIN
                    && !error.starts_with(|c: char| c.is_ascii_digit()) =>
            {
                // A refused connection costs nothing: ask often, the consumers wait on this.
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => return Err(e),
        }
    };
    let vhosts: Vec<Vhost> = api.get("/vhosts").await?;
    let perms: Vec<Permission> = api.get("/permissions").await?;
    let owner = job.owner.as_str();
    let mut out = JobResult::default();

    // Refuse before any change: a wanted user (or second login) that exists and is not ours.
    for l in &job.logins {
        for name in [&l.user, &l.alternate] {
            if let Some(u) = users.iter().find(|u| &u.name == name) {
                if !u.tags.has(owner) {
                    return Err(ProvisionError::Refused(format!(
                        "RabbitMQ user `{name}` (for `{}`) exists and was not made by sprocketctl for this namespace (it lacks the tag `{owner}`): it is left as it is; give `{}` another `user:` in its `access`, or remove that user yourself",
                        l.service, l.service
                    )));
                }
            }
        }
    }
    if job.retire {
        retire(&api, job, &users, read, &mut out).await?;
        return Ok(out);
    }
    let mut known_vhosts: BTreeSet<&str> = vhosts.iter().map(|v| v.name.as_str()).collect();
    for l in &job.logins {
        if !known_vhosts.contains(l.vhost.as_str()) {
            api.put(
                &format!("/vhosts/{}", seg(&l.vhost)),
                serde_json::json!({
                    "description": format!("made by sprocketctl for {}", l.service),
                    "tags": owner,
                }),
            )
            .await?;
            out.made.push(format!("vhost {}", l.vhost));
            known_vhosts.insert(&l.vhost);
        }
    }
    for l in &job.logins {
        out.logins
            .push(login(&api, owner, l, &users, &perms, read).await?);
        // A two-login consumer's other login holds the previous password: kept while the
        // consumer's old task may log in with it, else removed at once.
        let other = l.other();
        if users.iter().any(|u| u.name == other && u.tags.has(owner)) {
            let changed = &mut out.logins.last_mut().expect("just pushed").changed;
            if l.fresh {
                api.delete(&format!("/users/{}", seg(&other))).await?;
                changed.push(format!(
                    "previous login {other} removed: no task of the consumer holds it"
                ));
            } else {
                changed.push(format!("{other} kept for the roll"));
                out.retire.push(other);
            }
        }
        if let Some(r) = out.logins.last_mut() {
            if r.outcome == Outcome::Unchanged && !r.changed.is_empty() {
                r.outcome = Outcome::Updated;
            }
        }
    }
    if job.prune {
        let wanted: BTreeSet<String> = job.logins.iter().flat_map(|l| l.names()).collect();
        for u in users
            .iter()
            .filter(|u| u.tags.has(owner) && !wanted.contains(u.name.as_str()))
        {
            api.delete(&format!("/users/{}", seg(&u.name))).await?;
            out.removed.push(format!("user {}", u.name));
        }
        let used: BTreeSet<&str> = job.logins.iter().map(|l| l.vhost.as_str()).collect();
        for v in vhosts
            .iter()
            .filter(|v| v.is_ours(owner) && !used.contains(v.name.as_str()))
        {
            api.delete(&format!("/vhosts/{}", seg(&v.name))).await?;
            out.removed.push(format!("vhost {}", v.name));
        }
    }
    Ok(out)
}

/// After the roll: a two-login consumer's other login (the previous password) is removed,
/// once RabbitMQ is seen holding the current one's password (a consumer is never left with no
/// login that works).
async fn retire(
    api: &Api,
    job: &Job,
    users: &[User],
    read: &dyn Fn(&str) -> Result<String, ProvisionError>,
    out: &mut JobResult,
) -> Result<(), ProvisionError> {
    for l in &job.logins {
        let other = l.other();
        if !users
            .iter()
            .any(|u| u.name == other && u.tags.has(&job.owner))
        {
            continue;
        }
        let password = read(&l.password_file)?;
        let current = l.current();
        let works = users.iter().any(|u| {
            u.name == current && hash_matches(&u.password_hash, &u.hashing_algorithm, &password)
        });
        if !works {
            return Err(ProvisionError::Refused(format!(
                "RabbitMQ user `{current}` (for `{}`) does not hold its current password, so `{other}` is kept; run `sprocketctl up` again",
                l.service
            )));
        }
        api.delete(&format!("/users/{}", seg(&other))).await?;
        out.removed.push(format!("previous login {other}"));
    }
    Ok(())
}

async fn login(
    api: &Api,
    owner: &str,
    l: &JobLogin,
    users: &[User],
    perms: &[Permission],
    read: &dyn Fn(&str) -> Result<String, ProvisionError>,
) -> Result<LoginResult, ProvisionError> {
    let password = read(&l.password_file)?;
    // A two-login consumer's current login (its password's version says which).
    let name = l.current();
    let existing = users.iter().find(|u| u.name == name);
    let mut changed = Vec::new();
    let current =
        existing.is_some_and(|u| hash_matches(&u.password_hash, &u.hashing_algorithm, &password));
    if !current {
        api.put(
            &format!("/users/{}", seg(name)),
            serde_json::json!({
                "password_hash": password_hash(salt(), &password),
                "hashing_algorithm": SHA256,
                "tags": owner,
            }),
        )
        .await?;
        if existing.is_some() {
            changed.push("password".to_string());
        }
    }
    let want = Permission {
        user: name.to_string(),
        vhost: l.vhost.clone(),
        configure: l.configure.clone(),
        write: l.write.clone(),
        read: l.read.clone(),
    };
    let mine: BTreeMap<&str, &Permission> = perms
        .iter()
        .filter(|p| p.user == name)
        .map(|p| (p.vhost.as_str(), p))
        .collect();
    if mine.get(l.vhost.as_str()) != Some(&&want) || !current && existing.is_none() {
        api.put(
            &format!("/permissions/{}/{}", seg(&l.vhost), seg(name)),
            serde_json::json!({
                "configure": want.configure,
                "write": want.write,
                "read": want.read,
            }),
        )
        .await?;
        if existing.is_some() {
            changed.push("permissions".to_string());
        }
    }
    // Only its own vhost: grants elsewhere (an earlier `vhost:`) go.
    for v in mine.keys().filter(|v| **v != l.vhost) {
        api.delete(&format!("/permissions/{}/{}", seg(v), seg(name)))
            .await?;
        changed.push(format!("permissions on {v} removed"));
    }
    let outcome = match (existing, changed.is_empty()) {
        (None, _) => Outcome::Created,
        (Some(_), true) => Outcome::Unchanged,
        (Some(_), false) => Outcome::Updated,
    };
    Ok(LoginResult {
        service: l.service.clone(),
        user: name.to_string(),
        outcome,
        changed,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_is_rabbitmqs_salted_sha256() {
        // RabbitMQ's documented example: salt 908DC60A, password "test12".
        let h = password_hash([0x90, 0x8D, 0xC6, 0x0A], "test12");
        assert_eq!(h, "kI3GCqW5JLMJa4iX1lo7X4D6XbYqlLgxIs30+P6tENUV2POR");
        assert!(hash_matches(&h, SHA256, "test12"));
        assert!(!hash_matches(&h, SHA256, "test13"));
        assert!(!hash_matches(&h, "rabbit_password_hashing_md5", "test12"));
        assert!(!hash_matches("not base64!", SHA256, "test12"));
    }

    #[test]
    fn path_segments_escape_slashes_and_spaces() {
        assert_eq!(seg("/"), "%2F");
        assert_eq!(seg("demo"), "demo");
        assert_eq!(seg("a b/c"), "a%20b%2Fc");
    }

    #[test]
    fn tags_in_both_forms() {
        let l: Tags = serde_json::from_str(r#"["administrator","sprocketctl-x"]"#).unwrap();
        let t: Tags = serde_json::from_str(r#""administrator, sprocketctl-x""#).unwrap();
        assert!(l.has("sprocketctl-x") && t.has("sprocketctl-x"));
        assert!(!l.has("sprocketctl-y") && !t.has("sprocketctl-y"));
    }
}
