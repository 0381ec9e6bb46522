//! `sprocketctl probe`: what runs inside the short-lived task `check` starts on exactly one
//! service's networks. For each target of `SPROCKET_PROBE` it resolves the name (the swarm's
//! DNS, as the service would) and, with a port, opens a TCP connection; then it prints one
//! result line (`sprocket-probe-result: […]`) that `check` reads from the task's log.

use crate::exit;
use sprocket_check::plan::{Expect, Target};
use sprocket_check::reach::{Outcome, PROBE_ENV, RESULT_PREFIX};
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

pub async fn run(_: Args) -> i32 {
    let targets: Vec<Target> = match std::env::var(PROBE_ENV)
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
    let all = futures_util::future::join_all(targets.into_iter().map(probe)).await;
    println!(
        "{RESULT_PREFIX}{}",
        serde_json::to_string(&all).expect("serialisable")
    );
    exit::OK
}
