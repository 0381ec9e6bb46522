//! Redis (a datastore in the swarm): each consumer with `access` gets an ACL user of its own,
//! made at run time as the administrator (`default`) with `ACL SETUSER` and kept in Redis's
//! `aclfile` on its volume (`ACL SAVE`), so a restart keeps every user and a change of users or
//! passwords restarts nothing.
//!
//! - Passwords travel as their SHA-256 only (`#<hex>`: Redis stores and compares hashes);
//!   whether a user's password is current is decided by comparing the hash of the wanted value
//!   with the ones Redis lists.
//! - A user holds several passwords: a rotation **adds** the new one and keeps the previous
//!   while the consumer rolls (its running task keeps authenticating), and the retirement after
//!   the roll removes the previous (`ACL SETUSER <user> <#<hex>`), once the current one is
//!   there. A consumer with no task yet keeps nothing.
//! - A user we make carries the owner mark as a rule Redis keeps with it: read access to the
//!   one key named after the owner (`%R~sprocketctl-<namespace>`, a key nobody writes). A user
//!   of a wanted name without it is somebody else's: refused, never changed; `prune` removes
//!   only ours that no consumer declares any more.
//! - The connection and the administrator's `AUTH` are retried while Redis boots or loads its
//!   data (the task starts as soon as Redis's task does), or rolls onto a new administrator's
//!   password.

use crate::{JobResult, LoginResult, Outcome, ProvisionError};
use sha2::{Digest, Sha256};
use sprocket_desired::provision::{Job, JobLogin};
use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// How long a Redis that does not answer yet (booting, loading its data) is waited for.
const READY_WITHIN: Duration = Duration::from_secs(90);

/// The commands every ACL user gets (as [`sprocket_desired::redis_acl::COMMANDS`] says).
use sprocket_desired::redis_acl::COMMANDS;

/// A command as RESP: an array of bulk strings (what every client of ours sends Redis).
pub fn encode(args: &[&[u8]]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// One RESP reply.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    Simple(String),
    Error(String),
    Int(i64),
    Bulk(Option<String>),
    Array(Option<Vec<Reply>>),
}

/// A connection speaking RESP 2.
pub struct Conn {
    r: BufReader<TcpStream>,
}

fn io(what: &str) -> impl FnOnce(std::io::Error) -> ProvisionError + '_ {
    move |e| ProvisionError::Api {
        what: what.to_string(),
        error: e.to_string(),
    }
}

impl Conn {
    pub async fn connect(host: &str, port: u16) -> Result<Conn, ProvisionError> {
        let s = tokio::time::timeout(Duration::from_secs(5), TcpStream::connect((host, port)))
            .await
            .map_err(|_| ProvisionError::Api {
                what: format!("connect to {host}:{port}"),
                error: "no answer within 5s".into(),
            })?
            .map_err(io("connect to Redis"))?;
        Ok(Conn {
            r: BufReader::new(s),
        })
    }

    /// Sends one command and reads its reply. Arguments travel as bulk strings.
    pub async fn cmd(&mut self, args: &[&str]) -> Result<Reply, ProvisionError> {
        let bytes: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
        let req = encode(&bytes);
        self.r
            .get_mut()
            .write_all(&req)
            .await
            .map_err(io("send to Redis"))?;
        tokio::time::timeout(Duration::from_secs(15), read(&mut self.r))
            .await
            .map_err(|_| ProvisionError::Api {
                what: format!("Redis `{}`", args.first().unwrap_or(&"")),
                error: "no answer within 15s".into(),
            })?
    }

    /// A command that must answer `+OK` (or anything but an error).
    async fn ok(&mut self, args: &[&str], what: &str) -> Result<Reply, ProvisionError> {
        match self.cmd(args).await? {
            Reply::Error(e) => Err(ProvisionError::Api {
                what: what.to_string(),
                error: e,
            }),
            r => Ok(r),
        }
    }
}

fn read(
    r: &mut BufReader<TcpStream>,
) -> Pin<Box<dyn Future<Output = Result<Reply, ProvisionError>> + Send + '_>> {
    Box::pin(async move {
        let mut line = String::new();
        let n = r
            .read_line(&mut line)
            .await
            .map_err(io("read from Redis"))?;
        if n == 0 {
            return Err(ProvisionError::Api {
                what: "read from Redis".into(),
                error: "the connection was closed".into(),
            });
        }
        let line = line.trim_end_matches("\r\n");
        let (tag, rest) = line.split_at(1.min(line.len()));
        let num = |s: &str| -> Result<i64, ProvisionError> {
            s.parse().map_err(|_| ProvisionError::Api {
                what: "read from Redis".into(),
                error: format!("not RESP: {tag}{s}"),
            })
        };
        Ok(match tag {
            "+" => Reply::Simple(rest.to_string()),
            "-" => Reply::Error(rest.to_string()),
            ":" => Reply::Int(num(rest)?),
            "$" => match num(rest)? {
                n if n < 0 => Reply::Bulk(None),
                n => {
                    let mut buf = vec![0u8; n as usize + 2];
                    r.read_exact(&mut buf)
                        .await
                        .map_err(io("read from Redis"))?;
                    buf.truncate(n as usize);
                    Reply::Bulk(Some(String::from_utf8_lossy(&buf).into_owned()))
                }
            },
            "*" => match num(rest)? {
                n if n < 0 => Reply::Array(None),
                n => {
                    let mut items = Vec::with_capacity(n as usize);
                    for _ in 0..n {
                        items.push(read(r).await?);
                    }
                    Reply::Array(Some(items))
                }
            },
            _ => {
                return Err(ProvisionError::Api {
                    what: "read from Redis".into(),
                    error: "not a RESP reply".into(),
                })
            }
        })
    })
}

/// SHA-256 of a password, as Redis keeps it (`#<hex>` without the `#`).
pub fn hash(password: &str) -> String {
    hex::encode(Sha256::digest(password.as_bytes()))
}

/// One user as `ACL LIST` prints it: its password hashes and the rest of its rules.
#[derive(Debug, Clone, PartialEq, Eq)]
struct User {
    hashes: Vec<String>,
    /// Its rules but the passwords, in Redis's own order and words.
    rules: String,
}

/// `user <name> on #h1 #h2 ~k &c +@all …` → name and user.
fn parse_acl_line(line: &str) -> Option<(String, User)> {
    let mut words = line.split_whitespace();
    if words.next()? != "user" {
        return None;
    }
    let name = words.next()?.to_string();
    let (mut hashes, mut rules) = (Vec::new(), Vec::new());
    for w in words {
        match w.strip_prefix('#') {
            Some(h) => hashes.push(h.to_string()),
            None => rules.push(w),
        }
    }
    Some((
        name,
        User {
            hashes,
            rules: rules.join(" "),
        },
    ))
}

async fn users(c: &mut Conn) -> Result<BTreeMap<String, User>, ProvisionError> {
    match c.ok(&["ACL", "LIST"], "list Redis's ACL users").await? {
        Reply::Array(Some(lines)) => Ok(lines
            .iter()
            .filter_map(|l| match l {
                Reply::Bulk(Some(s)) | Reply::Simple(s) => parse_acl_line(s),
                _ => None,
            })
            .collect()),
        other => Err(ProvisionError::Api {
            what: "list Redis's ACL users".into(),
            error: format!("unexpected reply {other:?}"),
        }),
    }
}

/// Connects and authenticates as the administrator, waiting while Redis boots.
async fn admin(job: &Job, password: &str) -> Result<Conn, ProvisionError> {
    let t0 = Instant::now();
    loop {
        let attempt = async {
            let mut c = Conn::connect(&job.host, job.port).await?;
            match c.cmd(&["AUTH", &job.admin_user, password]).await? {
                Reply::Error(e) if e.starts_with("WRONGPASS") => {
                    Err(ProvisionError::Refused(format!(
                        "Redis at {}:{} refuses its administrator `{}` ({}): the datastore's `admin_password` secret is what it starts with",
                        job.host,
                        job.port,
                        job.admin_user,
                        e.split(" - ").next().unwrap_or("WRONGPASS")
                    )))
                }
                Reply::Error(e) => Err(ProvisionError::Api {
                    what: "authenticate to Redis".into(),
                    error: e,
                }),
                _ => Ok(c),
            }
        };
        match attempt.await {
            // LOADING, a refused connection: Redis is on its way. A refused password too, for a
            // while: when Redis itself rolls (its administrator's password rotated), its old
            // task may answer until the new one, which holds the new password, replaced it.
            Err(ProvisionError::Api { .. } | ProvisionError::Refused(_))
                if t0.elapsed() < READY_WITHIN =>
            {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            r => return r,
        }
    }
}

/// The owner mark among a user's rules (see the module's doc).
fn mark(owner: &str) -> String {
    format!("%R~{owner}")
}

impl User {
    fn is_ours(&self, owner: &str) -> bool {
        let mark = mark(owner);
        self.rules.split_whitespace().any(|r| r == mark)
    }
}

/// The rules of a login after its passwords: `~keys &channels +commands` and the owner mark.
fn rules_of(l: &JobLogin, owner: &str) -> Vec<String> {
    sprocket_desired::redis_acl::patterns(&l.keys, &l.channels)
        .into_iter()
        .chain([mark(owner)])
        .chain(COMMANDS.split_whitespace().map(String::from))
        .collect()
}

/// Makes every login of `job` (or, `retire`, removes the passwords kept for the roll) and, with
/// `prune`, removes the users no login wants; then saves the users to Redis's aclfile.
pub async fn provision(
    job: &Job,
    read: &dyn Fn(&str) -> Result<String, ProvisionError>,
) -> Result<JobResult, ProvisionError> {
    let admin_password = read(&job.admin_password_file)?;
    let mut c = admin(job, &admin_password).await?;
    let before = users(&mut c).await?;
    // Refuse before any change: a wanted user that exists and is not ours.
    for l in &job.logins {
        if before.get(&l.user).is_some_and(|u| !u.is_ours(&job.owner)) {
            return Err(ProvisionError::Refused(format!(
                "Redis ACL user `{}` (for `{}`) exists and was not made by sprocketctl for this namespace (it lacks the rule `{}`): it is left as it is; give `{}` another `user:` in its `access`, or remove that user yourself",
                l.user,
                l.service,
                mark(&job.owner),
                l.service
            )));
        }
    }
    let mut out = JobResult::default();
    for l in &job.logins {
        let want = hash(&read(&l.password_file)?);
        let existing = before.get(&l.user);
        let others: Vec<&String> = existing
            .map(|u| u.hashes.iter().filter(|h| **h != want).collect())
            .unwrap_or_default();
        if job.retire {
            // Only once the current password is there: a consumer never loses the one it uses.
            if existing.is_some_and(|u| u.is_ours(&job.owner) && u.hashes.contains(&want))
                && !others.is_empty()
            {
                let mut args = vec!["ACL".to_string(), "SETUSER".into(), l.user.clone()];
                args.extend(others.iter().map(|h| format!("!{h}")));
                let args: Vec<&str> = args.iter().map(String::as_str).collect();
                c.ok(&args, &format!("retire `{}`'s previous password", l.user))
                    .await?;
                out.removed
                    .push(format!("previous password of ACL user {}", l.user));
            }
            continue;
        }
        // Its rules from nothing (`reset`), its passwords: the current one, and the ones a
        // running task may still use (none for a consumer with no task).
        let keep: Vec<&String> = if l.fresh { Vec::new() } else { others.clone() };
        let mut args = vec![
            "ACL".to_string(),
            "SETUSER".into(),
            l.user.clone(),
            "reset".into(),
            "on".into(),
            format!("#{want}"),
        ];
        args.extend(keep.iter().map(|h| format!("#{h}")));
        args.extend(rules_of(l, &job.owner));
        let argv: Vec<&str> = args.iter().map(String::as_str).collect();
        c.ok(&argv, &format!("set ACL user `{}`", l.user)).await?;
        let mut changed = Vec::new();
        let outcome = match existing {
            None => Outcome::Created,
            Some(u) => {
                if !u.hashes.contains(&want) {
                    changed.push("password".to_string());
                }
                if l.fresh && !others.is_empty() {
                    changed
                        .push("previous password removed: no task of the consumer holds it".into());
                }
                if !keep.is_empty() {
                    changed.push("previous password kept for the roll".into());
                    out.retire.push(l.user.clone());
                }
                Outcome::Unchanged
            }
        };
        out.logins.push(LoginResult {
            service: l.service.clone(),
            user: l.user.clone(),
            outcome,
            changed,
        });
    }
    // Rules changed by hand or by the spec show as a changed line.
    let after = users(&mut c).await?;
    for r in out.logins.iter_mut() {
        if let (Some(b), Some(a)) = (before.get(&r.user), after.get(&r.user)) {
            if b.rules != a.rules {
                r.changed.push("rules".into());
            }
        }
        if r.outcome == Outcome::Unchanged && !r.changed.is_empty() {
            r.outcome = Outcome::Updated;
        }
    }
    if job.prune && !job.retire {
        let wanted: BTreeSet<&str> = job.logins.iter().map(|l| l.user.as_str()).collect();
        for name in after.iter().filter_map(|(n, u)| {
            (u.is_ours(&job.owner) && *n != job.admin_user && !wanted.contains(n.as_str()))
                .then_some(n)
        }) {
            c.ok(
                &["ACL", "DELUSER", name],
                &format!("remove ACL user `{name}`"),
            )
            .await?;
            out.removed.push(format!("ACL user {name}"));
        }
    }
    c.ok(&["ACL", "SAVE"], "save the ACL users to Redis's aclfile")
        .await?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn acl_lines_split_into_hashes_and_rules() {
        let (name, u) = parse_acl_line(
            "user demo on sanitize-payload #aa #bb ~demo:* &demo:* +@all -@admin -@dangerous",
        )
        .unwrap();
        assert_eq!(name, "demo");
        assert_eq!(u.hashes, ["aa", "bb"]);
        assert_eq!(
            u.rules,
            "on sanitize-payload ~demo:* &demo:* +@all -@admin -@dangerous"
        );
        assert!(parse_acl_line("not a user").is_none());
    }

    #[test]
    fn our_users_carry_the_owner_mark_among_their_rules() {
        let (_, ours) = parse_acl_line(
            "user demo on #aa ~demo:* %R~sprocketctl-ns &demo:* +@all -@admin -@dangerous",
        )
        .unwrap();
        assert!(ours.is_ours("sprocketctl-ns"));
        assert!(!ours.is_ours("sprocketctl-other"));
        let (_, theirs) = parse_acl_line("user ops on nopass ~ops:* +@all").unwrap();
        assert!(!theirs.is_ours("sprocketctl-ns"));
        let l = JobLogin {
            keys: vec!["demo:*".into()],
            channels: vec!["demo:*".into()],
            ..Default::default()
        };
        assert_eq!(
            rules_of(&l, "sprocketctl-ns").join(" "),
            "~demo:* &demo:* %R~sprocketctl-ns +@all -@admin -@dangerous"
        );
    }

    #[test]
    fn hashes_are_redis_sha256_hex() {
        assert_eq!(
            hash("foobar"),
            "c3ab8ff13720e8ad9047dd39466b3c8974e592c2fa383d4a3960714caef0c4f2"
        );
    }
}
