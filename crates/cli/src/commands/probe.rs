//! `sprocketctl probe`: what runs inside the short-lived task `check` starts on exactly one
//! service's networks. For each target of `SPROCKET_PROBE` it resolves the name (the swarm's
//! DNS, as the service would) and, with a port, opens a TCP connection; for each of the
//! service's own datastore logins it logs in with the files the service mounts (this task mounts
//! the same secrets). Then it prints one result line (`sprocket-probe-result: {…}`, outcomes and
//! reasons, never a credential) that `check` reads from the task's log.

use crate::exit;
use sprocket_check::plan::{Expect, Login, Target};
use sprocket_check::reach::{Input, LoginOutcome, Outcome, Output, PROBE_ENV, RESULT_PREFIX};
use sprocket_datastores::consumer;
use sprocket_spec::model::DatastoreKind;
use std::time::{Duration, Instant};

#[derive(clap::Args)]
pub struct Args {}

/// Per target: resolving and connecting each get this long.
const STEP: Duration = Duration::from_secs(3);

async fn probe(t: Target) -> Outcome {
    let start = Instant::now();
    let mut out = Outcome {
        name: t.name.clone(),
        resolved: false,
        connected: None,
        ms: 0,
        error: None,
    };
    let addrs = tokio::time::timeout(
        STEP,
        tokio::net::lookup_host((t.host.as_str(), t.port.unwrap_or(0))),
    )
    .await;
    let addrs: Vec<std::net::SocketAddr> = match addrs {
        Ok(Ok(a)) => a.collect(),
        Ok(Err(e)) => {
            out.error = Some(format!("does not resolve: {e}"));
            Vec::new()
        }
        Err(_) => {
            out.error = Some(format!("resolving took over {}s", STEP.as_secs()));
            Vec::new()
        }
    };
    out.resolved = !addrs.is_empty();
    // Whether it is reachable only matters where it should be: an isolated name that resolves
    // is already the finding.
    if let (true, Some(_), Expect::Reachable) = (out.resolved, t.port, t.expect) {
        let c = tokio::time::timeout(STEP, tokio::net::TcpStream::connect(&addrs[..])).await;
        out.connected = Some(matches!(c, Ok(Ok(_))));
        out.error = match c {
            Ok(Ok(_)) => None,
            Ok(Err(e)) => Some(e.to_string()),
            Err(_) => Some(format!("no answer within {}s", STEP.as_secs())),
        };
    }
    out.ms = start.elapsed().as_millis() as u64;
    out
}

/// One login with the files the consumer's task mounts (this task mounts the same secrets).
async fn login(l: Login) -> LoginOutcome {
    let start = Instant::now();
    let read = |f: &str| sprocket_datastores::read_secret(f).map_err(|e| e.to_string());
    let result = async {
        let password = read(&l.password_file)?;
        match l.kind {
            DatastoreKind::Redis => {
                let (host, user) = (l.host.clone(), l.user.clone());
                tokio::task::spawn_blocking(move || {
                    consumer::redis(&host, l.port, &user, &password)
                })
                .await
                .map_err(|e| e.to_string())?
            }
            DatastoreKind::Rabbitmq => {
                let (host, user) = (l.host.clone(), l.user.clone());
                let vhost = l.scope.clone().unwrap_or_else(|| "/".into());
                tokio::task::spawn_blocking(move || {
                    consumer::rabbitmq(&host, l.port, &user, &password, &vhost)
                })
                .await
                .map_err(|e| e.to_string())?
            }
            DatastoreKind::Postgres => {
                consumer::postgres(
                    &l.host,
                    l.port,
                    &l.user,
                    &password,
                    l.scope.as_deref().unwrap_or("postgres"),
                    l.sslmode.unwrap_or_default(),
                )
                .await
            }
            DatastoreKind::S3 => {
                let key = read(l.key_file.as_deref().unwrap_or_default())?;
                consumer::s3(
                    l.endpoint.as_deref().unwrap_or_default(),
                    l.region.as_deref().unwrap_or("us-east-1"),
                    &key,
                    &password,
                )
                .await
            }
        }
    };
    let result = match tokio::time::timeout(STEP * 4, result).await {
        Ok(r) => r,
        Err(_) => Err(format!("no answer within {}s", (STEP * 4).as_secs())),
    };
    LoginOutcome {
        datastore: l.datastore.clone(),
        ok: result.is_ok(),
        detail: result.unwrap_or_else(|e| e),
        ms: start.elapsed().as_millis() as u64,
    }
}

pub async fn run(_: Args) -> i32 {
    let input: Input = match std::env::var(PROBE_ENV)
        .map_err(|_| {
            format!("{PROBE_ENV} is not set: this command runs in the task `check` starts")
        })
        .and_then(|j| serde_json::from_str(&j).map_err(|e| format!("{PROBE_ENV}: {e}")))
    {
        Ok(t) => t,
        Err(e) => {
            eprintln!("{e}");
            return exit::INVALID;
        }
    };
    let (targets, logins) = tokio::join!(
        futures_util::future::join_all(input.targets.into_iter().map(probe)),
        futures_util::future::join_all(input.logins.into_iter().map(login)),
    );
    println!(
        "{RESULT_PREFIX}{}",
        serde_json::to_string(&Output { targets, logins }).expect("serialisable")
    );
    exit::OK
}
