//! PostgreSQL, as a Sprocket app uses it: its own role (`DEMO_PG_USER`), its own database
//! (`DEMO_PG_DATABASE`), the password `up` generated and mounted (`DEMO_PG_PASSWORD_FILE`),
//! TLS as `DEMO_PG_SSLMODE` says (`require` by default). The check writes a row and counts
//! them, so a login that can connect but not write fails too. The client is sprocketctl's own
//! (SCRAM: the password never crosses the wire).

use sprocket_datastores::postgres::{connect, Target};
use sprocket_spec::model::SslMode;

struct Login {
    user: String,
    database: String,
    password: String,
    sslmode: SslMode,
}

fn login() -> Result<Login, String> {
    let var = |k: &str| std::env::var(k).map_err(|_| format!("{k} is not set"));
    let file = var("DEMO_PG_PASSWORD_FILE")?;
    let password = std::fs::read_to_string(&file)
        .map_err(|e| format!("cannot read the PostgreSQL password file {file}: {e}"))?;
    let sslmode = match std::env::var("DEMO_PG_SSLMODE").as_deref() {
        Ok("disable") => SslMode::Disable,
        _ => SslMode::Require,
    };
    Ok(Login {
        user: var("DEMO_PG_USER")?,
        database: var("DEMO_PG_DATABASE")?,
        password: password.trim_end().to_string(),
        sslmode,
    })
}

fn split(target: &str) -> Result<(&str, u16), String> {
    let (host, port) = target.rsplit_once(':').unwrap_or((target, "5432"));
    let port = port
        .parse()
        .map_err(|_| format!("{target}: not host:port"))?;
    Ok((host, port))
}

pub(crate) fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())
}

fn error(e: tokio_postgres::Error) -> String {
    sprocket_datastores::postgres::error_text(&e)
}

/// Connects as its own login to `database` (its own unless given) and runs `f`.
fn with_client<T>(
    target: &str,
    database: Option<&str>,
    f: impl AsyncFnOnce(&Login, &str, tokio_postgres::Client) -> Result<T, String>,
) -> Result<T, String> {
    let l = login()?;
    let (host, port) = split(target)?;
    let database = database.unwrap_or(&l.database).to_string();
    runtime()?.block_on(async {
        let t = Target {
            host,
            port,
            user: &l.user,
            password: &l.password,
            database: &database,
            sslmode: l.sslmode,
        };
        let c = connect(&t).await.map_err(error)?;
        f(&l, &database, c).await
    })
}

/// Its own login on its own database: connect, write a row, count them.
pub fn check(target: &str) -> Result<String, String> {
    with_client(target, None, async |l, database, c| {
        c.batch_execute(
            "CREATE TABLE IF NOT EXISTS demo_visits (at timestamptz NOT NULL DEFAULT now());
             INSERT INTO demo_visits DEFAULT VALUES;",
        )
        .await
        .map_err(error)?;
        let n: i64 = c
            .query_one("SELECT count(*) FROM demo_visits", &[])
            .await
            .map_err(error)?
            .get(0);
        let ssl: bool = c
            .query_one(
                "SELECT coalesce((SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()), false)",
                &[],
            )
            .await
            .map_err(error)?
            .get(0);
        Ok(format!(
            "connected as {} to {database}{}, {n} row(s) written",
            l.user,
            if ssl { " over TLS" } else { "" }
        ))
    })
}

/// Its own login on another database (`/pg?database=X`): for tests that it is refused.
pub fn try_database(target: &str, database: &str) -> Result<String, String> {
    with_client(target, Some(database), async |l, database, _| {
        Ok(format!("connected as {} to {database}", l.user))
    })
}
