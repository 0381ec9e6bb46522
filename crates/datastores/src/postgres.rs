//! PostgreSQL (a managed server outside the swarm, or one inside it): one role per consuming
//! service, its database and its grants, made as an administrator that is not a superuser
//! (CREATEROLE and CREATEDB, as DigitalOcean's `doadmin`).
//!
//! - A role or database we make carries the comment `<owner>` (`COMMENT ON ROLE|DATABASE`); a
//!   role of a wanted name without it is somebody else's: refused, never changed. A database a
//!   consumer would own that exists without it is refused too (use it with `privileges:
//!   readwrite` instead, or drop it).
//! - Passwords are sent as SCRAM-SHA-256 verifiers (`CREATE|ALTER ROLE … PASSWORD
//!   'SCRAM-SHA-256$…'`), never in clear; the server stores the verifier as given. Whether a
//!   role's password is current is decided by logging in with it (an administrator that is not
//!   a superuser cannot read `pg_authid`): the SCRAM exchange proves it without sending it.
//! - A database we make is not open to PUBLIC (PostgreSQL grants CONNECT to everyone by
//!   default): only its owner and the logins granted on it connect.
//! - `prune`: our roles no consumer declares any more are removed; a database one owned is
//!   kept (it holds data) and handed to the administrator, and said so — unless the job says
//!   `drop_data` (a drill's scratch platform going away): then our databases no login wants are
//!   dropped first.
//! - A consumer that takes its user name from its env (`{access.<db>.user}`) has two logins:
//!   its role and `<role>_b`, a member of it whose sessions act as it (`ALTER ROLE … SET
//!   role`), so what either makes is the role's. The password's version says which is current
//!   ([`sprocket_desired::provision::alternate_current`]): a rotation sets the new password on
//!   the other one, the running task keeps logging in with its own, and once it is gone the
//!   retirement removes the previous password (`PASSWORD NULL VALID UNTIL '-infinity'`: the
//!   mark of a retired login). Meanwhile the kept one expires in a day whatever happens.

use crate::{JobResult, LoginResult, Outcome, ProvisionError};
use postgres_protocol::escape::{escape_identifier as ident, escape_literal as literal};
use sprocket_desired::provision::{Job, JobLogin};
use sprocket_spec::model::{Privileges, SslMode};
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};
use tokio_postgres::error::SqlState;
use tokio_postgres::Client;

/// How long a server that does not answer yet is waited for.
const CONNECT_WAIT: Duration = Duration::from_secs(60);

/// Where and as whom to connect.
#[derive(Debug, Clone)]
pub struct Target<'a> {
    pub host: &'a str,
    pub port: u16,
    pub user: &'a str,
    pub password: &'a str,
    pub database: &'a str,
    pub sslmode: SslMode,
}

/// Connects (the connection's driver runs on the current tokio runtime until the client is
/// dropped). The password travels only inside the SCRAM exchange.
pub async fn connect(t: &Target<'_>) -> Result<Client, tokio_postgres::Error> {
    let mut cfg = tokio_postgres::Config::new();
    cfg.host(t.host)
        .port(t.port)
        .user(t.user)
        .password(t.password)
        .dbname(t.database)
        .application_name("sprocketctl")
        .connect_timeout(Duration::from_secs(10));
    match t.sslmode {
        SslMode::Disable => {
            cfg.ssl_mode(tokio_postgres::config::SslMode::Disable);
            let (client, conn) = cfg.connect(tokio_postgres::NoTls).await?;
            tokio::spawn(conn);
            Ok(client)
        }
        SslMode::Require => {
            cfg.ssl_mode(tokio_postgres::config::SslMode::Require);
            let (client, conn) = cfg.connect(tls()).await?;
            tokio::spawn(conn);
            Ok(client)
        }
    }
}

/// libpq's `sslmode=require`: encrypted, the server's certificate not checked against a CA
/// (managed servers use their own CA; a later `verify-full` with the CA's file checks it).
fn tls() -> tokio_postgres_rustls::MakeRustlsConnect {
    tokio_postgres_rustls::MakeRustlsConnect::new(crate::tls::unverified())
}

/// A SCRAM-SHA-256 verifier of `password` (fresh salt, 4096 iterations: PostgreSQL's own).
pub fn verifier(password: &str) -> String {
    postgres_protocol::password::scram_sha_256(password.as_bytes())
}

/// Whether an error means the login itself was refused (wrong password, no such role), not
/// that the server could not be reached.
fn refused(e: &tokio_postgres::Error) -> bool {
    matches!(
        e.code(),
        Some(c) if *c == SqlState::INVALID_PASSWORD || *c == SqlState::INVALID_AUTHORIZATION_SPECIFICATION
    )
}

/// The error's own text (the server's message, or the connection's), never a value of ours.
pub fn error_text(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{} ({})", db.message(), db.code().code()),
        None => e.to_string(),
    }
}

fn api(what: impl Into<String>) -> impl FnOnce(tokio_postgres::Error) -> ProvisionError {
    let what = what.into();
    move |e| ProvisionError::Api {
        what,
        error: error_text(&e),
    }
}

/// The administrator's connection, waiting (at most [`CONNECT_WAIT`]) for a server that does
/// not answer yet; a refused login is reported at once.
async fn admin(job: &Job, password: &str, database: &str) -> Result<Client, ProvisionError> {
    let t0 = Instant::now();
    loop {
        let r = connect(&Target {
            host: &job.host,
            port: job.port,
            user: &job.admin_user,
            password,
            database,
            sslmode: job.sslmode.unwrap_or_default(),
        })
        .await;
        match r {
            Ok(c) => return Ok(c),
            Err(e) if refused(&e) => {
                return Err(ProvisionError::Api {
                    what: format!(
                        "log in to {}:{} as `{}`",
                        job.host, job.port, job.admin_user
                    ),
                    error: format!(
                    "{} — the administrator's password is the external's `admin_password` secret",
                    error_text(&e)
                ),
                })
            }
            Err(e) if e.as_db_error().is_some() || t0.elapsed() > CONNECT_WAIT => {
                return Err(ProvisionError::Api {
                    what: format!(
                        "connect to {}:{} (database `{database}`) as `{}`",
                        job.host, job.port, job.admin_user
                    ),
                    error: error_text(&e),
                })
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(500)).await,
        }
    }
}

struct Role {
    ours: bool,
    /// `rolvaliduntil` as text: `None` (no limit), `infinity`, `-infinity` (a retired login
    /// of a two-login consumer) or a time.
    valid_until: Option<String>,
}

impl Role {
    fn retired(&self) -> bool {
        self.valid_until.as_deref() == Some("-infinity")
    }

    /// Its password expires at some point (a login kept for a roll, or retired).
    fn limited(&self) -> bool {
        !matches!(self.valid_until.as_deref(), None | Some("infinity"))
    }
}

/// How long a replaced login keeps its password if its retirement never comes (a crash, a
/// roll that stopped): its consumer's old task is gone long before.
const KEPT_FOR_ROLL: &str = "1 day";

struct Database {
    owner: String,
    ours: bool,
}

/// Makes every login of `job` and, with `prune`, removes ours that no login wants.
pub async fn provision(
    job: &Job,
    read: &dyn Fn(&str) -> Result<String, ProvisionError>,
) -> Result<JobResult, ProvisionError> {
    // Dropping data is a teardown's alone (a drill's scratch platform going away): a job that
    // also makes logins is not one.
    if job.drop_data && (!job.prune || !job.logins.is_empty()) {
        return Err(ProvisionError::Refused(
            "a job that drops databases removes everything of its namespace: it makes no login and prunes".into(),
        ));
    }
    let admin_password = read(&job.admin_password_file)?;
    let admin_db = if job.admin_database.is_empty() {
        "postgres"
    } else {
        job.admin_database.as_str()
    };
    let c = admin(job, &admin_password, admin_db).await?;
    let mut session = Session {
        job,
        roles: roles(&c, &job.owner).await?,
        databases: databases(&c, &job.owner).await?,
        c,
        admin_password,
        made: Vec::new(),
        kept: Vec::new(),
    };
    let mut out = JobResult::default();
    if job.retire {
        for l in &job.logins {
            let password = read(&l.password_file)?;
            session.retire(l, &password, &mut out).await?;
        }
        return Ok(out);
    }
    // Owners first: a reader's grants go to tables its database's owner makes.
    let mut logins: Vec<&JobLogin> = job.logins.iter().collect();
    logins.sort_by_key(|l| l.privileges != Some(Privileges::Owner));
    for l in logins {
        let password = read(&l.password_file)?;
        out.logins.push(session.login(l, &password).await?);
    }
    out.retire = std::mem::take(&mut session.kept);
    if job.prune && job.drop_data {
        let wanted: BTreeSet<&str> = job.logins.iter().map(|l| l.database.as_str()).collect();
        let gone: Vec<String> = session
            .databases
            .iter()
            .filter(|(n, d)| d.ours && !wanted.contains(n.as_str()))
            .map(|(n, _)| n.clone())
            .collect();
        for db in gone {
            // FORCE: its consumers' sessions end with it (they are going away too).
            session
                .c
                .batch_execute(&format!("DROP DATABASE {} WITH (FORCE)", ident(&db)))
                .await
                .map_err(api(format!("drop database `{db}`")))?;
            session.databases.remove(&db);
            out.removed
                .push(format!("database {db} (dropped with its data)"));
        }
    }
    if job.prune {
        let wanted: BTreeSet<String> = job.logins.iter().flat_map(|l| l.names()).collect();
        let gone: Vec<String> = session
            .roles
            .iter()
            .filter(|(n, r)| r.ours && !wanted.contains(n.as_str()))
            .map(|(n, _)| n.clone())
            .collect();
        for name in gone {
            out.removed.extend(session.drop_role(&name).await?);
        }
    }
    out.made = session.made;
    Ok(out)
}

async fn roles(c: &Client, owner: &str) -> Result<BTreeMap<String, Role>, ProvisionError> {
    let rows = c
        .query(
            "SELECT rolname::text, coalesce(shobj_description(oid, 'pg_authid'), ''), rolvaliduntil::text FROM pg_roles",
            &[],
        )
        .await
        .map_err(api("list roles"))?;
    Ok(rows
        .iter()
        .map(|r| {
            (
                r.get(0),
                Role {
                    ours: r.get::<_, String>(1) == owner,
                    valid_until: r.get(2),
                },
            )
        })
        .collect())
}

async fn databases(c: &Client, owner: &str) -> Result<BTreeMap<String, Database>, ProvisionError> {
    let rows = c
        .query(
            "SELECT datname::text, pg_get_userbyid(datdba)::text, coalesce(shobj_description(oid, 'pg_database'), '') FROM pg_database",
            &[],
        )
        .await
        .map_err(api("list databases"))?;
    Ok(rows
        .iter()
        .map(|r| {
            let comment: String = r.get(2);
            (
                r.get(0),
                Database {
                    owner: r.get(1),
                    ours: comment == owner,
                },
            )
        })
        .collect())
}

/// One provisioning's connection and what it learnt of the server.
struct Session<'j> {
    job: &'j Job,
    c: Client,
    admin_password: String,
    roles: BTreeMap<String, Role>,
    databases: BTreeMap<String, Database>,
    /// Databases made (`database NAME`).
    made: Vec<String>,
    /// Replaced logins that keep their password for the consumers' roll (retired after).
    kept: Vec<String>,
}

impl Session<'_> {
    /// One consumer's role, database and grants; then a login with its password proves them.
    async fn login(&mut self, l: &JobLogin, password: &str) -> Result<LoginResult, ProvisionError> {
        let job = self.job;
        let role = ident(&l.user);
        let mut changed = Vec::new();
        let outcome = match self.roles.get(&l.user) {
            Some(r) if !r.ours => {
                return Err(ProvisionError::Refused(format!(
                    "a role `{}` exists in {}:{} and is not sprocketctl's (no `{}` comment): it is never changed; give `{}` another `user:` in its access, or drop that role",
                    l.user, job.host, job.port, job.owner, l.service
                )))
            }
            Some(_) => Outcome::Unchanged,
            None => {
                self.create_role(&l.user, l.current() == l.user, password, None)
                    .await?;
                Outcome::Created
            }
        };
        if !l.alternate.is_empty() {
            self.second_login(l, password).await?;
        }
        let c = &self.c;
        // The administrator acts for the role (a database owned by it, default privileges for the
        // tables it makes): PostgreSQL 15 wants it to be a member; 16 makes the creator one.
        c.batch_execute(&format!("GRANT {role} TO {}", ident(&job.admin_user)))
            .await
            .map_err(api(format!(
                "let `{}` act for `{}`",
                job.admin_user, l.user
            )))?;

        let db = ident(&l.database);
        let privileges = l.privileges.unwrap_or_default();
        let existing = self
            .databases
            .get(&l.database)
            .map(|d| (d.owner.clone(), d.ours));
        match (existing, privileges) {
            (None, Privileges::Owner) => {
                c.batch_execute(&format!("CREATE DATABASE {db} OWNER {role}"))
                    .await
                    .map_err(api(format!("create database `{}`", l.database)))?;
                c.batch_execute(&format!(
                    "COMMENT ON DATABASE {db} IS {}; REVOKE ALL ON DATABASE {db} FROM PUBLIC",
                    literal(&job.owner)
                ))
                .await
                .map_err(api(format!("mark database `{}` as ours", l.database)))?;
                self.databases.insert(
                    l.database.clone(),
                    Database {
                        owner: l.user.clone(),
                        ours: true,
                    },
                );
                self.made.push(format!("database {}", l.database));
                if outcome == Outcome::Unchanged {
                    changed.push("database".into());
                }
            }
            (Some((owner, ours)), Privileges::Owner) if owner != l.user => {
                if !ours {
                    return Err(ProvisionError::Refused(format!(
                        "a database `{}` exists in {}:{} (owner `{owner}`) and is not sprocketctl's: it is never taken over; give `{}` `privileges: readwrite` to use it as it is, or another `database:`",
                        l.database, job.host, job.port, l.service
                    )));
                }
                c.batch_execute(&format!("ALTER DATABASE {db} OWNER TO {role}"))
                    .await
                    .map_err(api(format!("hand database `{}` to `{}`", l.database, l.user)))?;
                if let Some(d) = self.databases.get_mut(&l.database) {
                    d.owner = l.user.clone();
                }
                changed.push("owner".into());
            }
            (Some((_, false)), Privileges::Owner) => {
                // Owned by our role but not marked: a run was cut off between `CREATE DATABASE`
                // (which no transaction can hold) and its mark. Finish it.
                c.batch_execute(&format!(
                    "COMMENT ON DATABASE {db} IS {}; REVOKE ALL ON DATABASE {db} FROM PUBLIC",
                    literal(&job.owner)
                ))
                .await
                .map_err(api(format!("mark database `{}` as ours", l.database)))?;
                if let Some(d) = self.databases.get_mut(&l.database) {
                    d.ours = true;
                }
                changed.push("database".into());
            }
            (Some(_), Privileges::Owner) => {}
            (None, _) => {
                return Err(ProvisionError::Refused(format!(
                    "`{}` reads or writes the database `{}`, which does not exist in {}:{}: a consumer with `privileges: owner` makes it (or make it by hand)",
                    l.service, l.database, job.host, job.port
                )))
            }
            (Some(_), p) => {
                let had = c
                    .query_one(
                        "SELECT has_database_privilege($1, $2, 'CONNECT')",
                        &[&l.user, &l.database],
                    )
                    .await
                    .map_err(api(format!("read `{}`'s grants", l.user)))?
                    .get::<_, bool>(0);
                self.grant(l, p).await?;
                if !had && outcome == Outcome::Unchanged {
                    changed.push("grants".into());
                }
            }
        }

        // The login itself: the password it holds works, or gets the verifier of the one it
        // holds (a two-login consumer's current one also loses any time limit).
        let current = l.current();
        // A login that was kept for a roll or retired (a consumer that had two logins and now
        // has one may be left on either) loses its time limit with its new password.
        let unlimited =
            if l.alternate.is_empty() && !self.roles.get(current).is_some_and(Role::limited) {
                ""
            } else {
                " VALID UNTIL 'infinity'"
            };
        match self.logs_in(l, current, password).await {
            Ok(()) => {
                if self.roles.get(current).is_some_and(Role::limited) {
                    self.alter(current, "VALID UNTIL 'infinity'").await?;
                    changed.push("time limit".into());
                }
            }
            Err(e) if refused(&e) => {
                let set = format!("PASSWORD {}{unlimited}", literal(&verifier(password)));
                self.alter(current, &set).await?;
                changed.push("password".into());
                self.logs_in(l, current, password)
                    .await
                    .map_err(|e| ProvisionError::Api {
                        what: format!("log in as `{current}` to `{}`", l.database),
                        error: format!("{} (after its password was set)", error_text(&e)),
                    })?;
            }
            Err(e) => {
                return Err(ProvisionError::Api {
                    what: format!("log in as `{current}` to `{}`", l.database),
                    error: error_text(&e),
                })
            }
        }
        // The other login (a two-login consumer's, or the second one a consumer had before its
        // env spelt its user) holds the previous password: kept while the consumer's old task
        // may log in with it — its day renewed at each run that keeps it — else removed at once.
        let other = l.other();
        if self
            .roles
            .get(&other)
            .is_some_and(|r| r.ours && !r.retired())
        {
            if l.fresh {
                self.retire_login(&other).await?;
                changed.push(format!(
                    "previous password of {other} removed: no task of the consumer holds it"
                ));
            } else {
                let until: String = self
                    .c
                    .query_one(
                        &format!("SELECT (now() + interval '{KEPT_FOR_ROLL}')::text"),
                        &[],
                    )
                    .await
                    .map_err(api("read the time"))?
                    .get(0);
                self.alter(&other, &format!("VALID UNTIL {}", literal(&until)))
                    .await?;
                changed.push(format!("{other} kept for the roll"));
                self.kept.push(other);
            }
        }
        let outcome = match outcome {
            Outcome::Unchanged if !changed.is_empty() => Outcome::Updated,
            o => o,
        };
        Ok(LoginResult {
            service: l.service.clone(),
            user: current.to_string(),
            outcome,
            changed,
        })
    }

    /// Logs in as `user` (one of `l`'s logins) to its database with `password`.
    async fn logs_in(
        &self,
        l: &JobLogin,
        user: &str,
        password: &str,
    ) -> Result<(), tokio_postgres::Error> {
        let job = self.job;
        let target = Target {
            host: &job.host,
            port: job.port,
            user,
            password,
            database: &l.database,
            sslmode: job.sslmode.unwrap_or_default(),
        };
        connect(&target).await.map(drop)
    }

    async fn alter(&mut self, role: &str, what: &str) -> Result<(), ProvisionError> {
        self.c
            .batch_execute(&format!("ALTER ROLE {} {what}", ident(role)))
            .await
            .map_err(api(format!("change role `{role}`")))?;
        // What the role's time limit is now, for the decisions after this one.
        let valid_until: Option<String> = self
            .c
            .query_one(
                "SELECT rolvaliduntil::text FROM pg_roles WHERE rolname = $1",
                &[&role],
            )
            .await
            .map_err(api(format!("read role `{role}`")))?
            .get(0);
        if let Some(r) = self.roles.get_mut(role) {
            r.valid_until = valid_until;
        }
        Ok(())
    }

    /// A replaced login loses its password for good.
    async fn retire_login(&mut self, role: &str) -> Result<(), ProvisionError> {
        self.alter(role, "PASSWORD NULL VALID UNTIL '-infinity'")
            .await
    }

    /// Makes a role of ours with the login's password (`with_password`), or with none and
    /// retired; `member_of`: a second login, acting as the role it belongs to. One query
    /// string, one implicit transaction: a run cut off here leaves no role without our mark
    /// (which the next run would take for somebody else's).
    async fn create_role(
        &mut self,
        name: &str,
        with_password: bool,
        password: &str,
        member_of: Option<&str>,
    ) -> Result<(), ProvisionError> {
        let role = ident(name);
        let password = if with_password {
            format!("PASSWORD {}", literal(&verifier(password)))
        } else {
            "PASSWORD NULL VALID UNTIL '-infinity'".into()
        };
        let member = member_of
            .map(|m| {
                format!(
                    " IN ROLE {}; ALTER ROLE {role} SET role = {}",
                    ident(m),
                    literal(m)
                )
            })
            .unwrap_or_default();
        let sql = format!(
            "CREATE ROLE {role} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE {password}{member}; COMMENT ON ROLE {role} IS {}",
            literal(&self.job.owner)
        );
        self.c
            .batch_execute(&sql)
            .await
            .map_err(api(format!("create role `{name}`")))?;
        self.roles.insert(
            name.to_string(),
            Role {
                ours: true,
                valid_until: (!with_password).then(|| "-infinity".into()),
            },
        );
        Ok(())
    }

    /// A two-login consumer's second login, `<role>_b`: ours, a member of its role whose
    /// sessions act as it. Made once, checked each run.
    async fn second_login(&mut self, l: &JobLogin, password: &str) -> Result<(), ProvisionError> {
        let job = self.job;
        match self.roles.get(&l.alternate) {
            Some(r) if !r.ours => {
                return Err(ProvisionError::Refused(format!(
                    "a role `{}` exists in {}:{} and is not sprocketctl's (no `{}` comment): `{}` takes its user from `{{access.…user}}`, so it needs that name for its second login; drop that role, or give `{}` another `user:`",
                    l.alternate, job.host, job.port, job.owner, l.service, l.service
                )))
            }
            Some(_) => {
                let (alt, base) = (ident(&l.alternate), ident(&l.user));
                self.c
                    .batch_execute(&format!(
                        "GRANT {base} TO {alt}; ALTER ROLE {alt} SET role = {}",
                        literal(&l.user)
                    ))
                    .await
                    .map_err(api(format!("let `{}` act as `{}`", l.alternate, l.user)))?;
            }
            None => {
                let current = l.current() == l.alternate;
                self.create_role(&l.alternate, current, password, Some(&l.user))
                    .await?;
            }
        }
        // As for the role: the administrator acts for it (a prune's `DROP OWNED BY`).
        self.c
            .batch_execute(&format!(
                "GRANT {} TO {}",
                ident(&l.alternate),
                ident(&job.admin_user)
            ))
            .await
            .map_err(api(format!(
                "let `{}` act for `{}`",
                job.admin_user, l.alternate
            )))
    }

    /// After the roll: a two-login consumer's other login loses the previous password, once
    /// its current one is seen working (a consumer is never left with no login that works).
    async fn retire(
        &mut self,
        l: &JobLogin,
        password: &str,
        out: &mut JobResult,
    ) -> Result<(), ProvisionError> {
        let other = l.other();
        if !self
            .roles
            .get(&other)
            .is_some_and(|r| r.ours && !r.retired())
        {
            return Ok(());
        }
        let current = l.current();
        if let Err(e) = self.logs_in(l, current, password).await {
            return Err(ProvisionError::Refused(format!(
                "`{current}` (for `{}`) does not log in ({}), so `{other}` keeps the previous password; run `sprocketctl up` again",
                l.service,
                error_text(&e)
            )));
        }
        self.retire_login(&other).await?;
        out.removed
            .push(format!("previous password of role {other}"));
        Ok(())
    }

    /// A reader's or writer's grants in a database another role owns: CONNECT, the schema
    /// `public`, its tables and sequences now and those the owner makes later.
    async fn grant(&self, l: &JobLogin, p: Privileges) -> Result<(), ProvisionError> {
        let (job, c) = (self.job, &self.c);
        let (role, db) = (ident(&l.user), ident(&l.database));
        c.batch_execute(&format!("GRANT CONNECT ON DATABASE {db} TO {role}"))
            .await
            .map_err(api(format!(
                "grant `{}` CONNECT on `{}`",
                l.user, l.database
            )))?;
        let inner = admin(job, &self.admin_password, &l.database).await?;
        let owner: String = inner
            .query_one(
                "SELECT pg_get_userbyid(datdba)::text FROM pg_database WHERE datname = current_database()",
                &[],
            )
            .await
            .map_err(api(format!("read `{}`'s owner", l.database)))?
            .get(0);
        let tables = match p {
            Privileges::Read => "SELECT",
            _ => "SELECT, INSERT, UPDATE, DELETE",
        };
        let sequences = match p {
            Privileges::Read => "SELECT",
            _ => "USAGE, SELECT, UPDATE",
        };
        let sql = format!(
            "GRANT USAGE ON SCHEMA public TO {role};
             REVOKE ALL ON ALL TABLES IN SCHEMA public FROM {role};
             GRANT {tables} ON ALL TABLES IN SCHEMA public TO {role};
             GRANT {sequences} ON ALL SEQUENCES IN SCHEMA public TO {role};
             ALTER DEFAULT PRIVILEGES FOR ROLE {owner} IN SCHEMA public REVOKE ALL ON TABLES FROM {role};
             ALTER DEFAULT PRIVILEGES FOR ROLE {owner} IN SCHEMA public GRANT {tables} ON TABLES TO {role};
             ALTER DEFAULT PRIVILEGES FOR ROLE {owner} IN SCHEMA public GRANT {sequences} ON SEQUENCES TO {role};",
            owner = ident(&owner)
        );
        inner.batch_execute(&sql).await.map_err(api(format!(
            "grant `{}` {} in `{}`",
            l.user,
            p.name(),
            l.database
        )))?;
        Ok(())
    }

    /// Removes one of our roles: the databases it owns are kept (they hold data) and handed to the
    /// administrator; its grants and default privileges in our databases go with it.
    async fn drop_role(&self, name: &str) -> Result<Vec<String>, ProvisionError> {
        let (job, c, databases) = (self.job, &self.c, &self.databases);
        let role = ident(name);
        let admin_role = ident(&job.admin_user);
        let mut said = Vec::new();
        for (db, d) in databases.iter().filter(|(_, d)| d.owner == name) {
            c.batch_execute(&format!(
                "ALTER DATABASE {} OWNER TO {admin_role}",
                ident(db)
            ))
            .await
            .map_err(api(format!("hand database `{db}` to `{}`", job.admin_user)))?;
            said.push(format!(
                "database {db} kept (it holds data; owned by {} now{})",
                job.admin_user,
                if d.ours {
                    ", drop it by hand when it is not needed"
                } else {
                    ""
                }
            ));
        }
        // Its objects and grants inside our databases (where a login of ours may have any).
        for (db, _) in databases.iter().filter(|(_, d)| d.ours) {
            let inner = admin(job, &self.admin_password, db).await?;
            inner
                .batch_execute(&format!(
                    "REASSIGN OWNED BY {role} TO {admin_role}; DROP OWNED BY {role}"
                ))
                .await
                .map_err(api(format!("remove `{name}`'s grants in `{db}`")))?;
        }
        c.batch_execute(&format!("DROP ROLE {role}"))
            .await
            .map_err(|e| ProvisionError::Api {
                what: format!("drop role `{name}`"),
                error: format!(
                    "{} — it still holds something in a database sprocketctl did not make: `REASSIGN OWNED BY` / `DROP OWNED BY` there, then run again",
                    error_text(&e)
                ),
            })?;
        said.insert(0, format!("role {name}"));
        Ok(said)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verifiers_are_scram_and_salted() {
        let a = verifier("secret-value");
        let b = verifier("secret-value");
        assert!(a.starts_with("SCRAM-SHA-256$4096:"), "{a}");
        assert_ne!(a, b, "a fresh salt each time");
        assert!(!a.contains("secret-value"));
    }

    #[test]
    fn identifiers_and_literals_are_quoted() {
        assert_eq!(ident("image-generation"), "\"image-generation\"");
        assert_eq!(ident("a\"b"), "\"a\"\"b\"");
        assert_eq!(literal("it's"), "'it''s'");
    }
}
