//! `sprocketctl agent`: the unseal agent. A layer-1 swarm service (or a process on a host) that
//! keeps every Vault task unsealed, so nobody ever thinks about unsealing.
//!
//! - **Custody.** Its unseal material is a Docker secret (encrypted in the swarm's raft store,
//!   mounted in memory at `/run/secrets/vault-unseal`), made by `vault init` / `up` from the
//!   operators' keyring. It is read once at start and never logged.
//! - **Finding Vault.** `tasks.<vault service>` resolves (swarm DNS, on the network the agent
//!   shares with Vault) to every Vault task — every replica of a raft cluster included.
//! - **Speed.** Docker `start` events of Vault's containers (read through the read-only socket
//!   proxy) switch the agent into a 20 ms sweep for 30 s, so a restarted task is unsealed within
//!   tens of milliseconds of its listener answering; a `sys/seal-status` sweep every
//!   `--poll-seconds` is the safety net when events are missed.
//! - **Events out.** Every unseal is a log line, a metric (`/metrics`: time-to-unseal histogram,
//!   unseals, failures) and, with `--webhook`, a POST.
//! - **Service tokens.** Every service that reads Vault holds a periodic token (a Docker secret
//!   the agent mounts too); the agent renews each at a third of its period, so no token lapses
//!   while Vault is up (the original needed a manual "refresh vault tokens" script). Renewals
//!   and failures are metrics; token values are never logged.

use axum::{routing::get, Router};
use futures_util::StreamExt;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use serde::{Deserialize, Serialize};
use sprocket_desired::contract::{agent_env, DEFAULT_VAULT_PORT, TOKEN_SECRET_PREFIX};
use sprocket_vault::{VaultClient, VaultError};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Notify;

#[derive(clap::Args)]
pub struct Args {
    /// DNS name that resolves to every Vault task (`tasks.<namespace>_vault`).
    #[arg(long, env = agent_env::VAULT_TASKS)]
    pub vault_tasks: Option<String>,
    /// Vault's listener port.
    #[arg(long, env = agent_env::VAULT_PORT, default_value_t = DEFAULT_VAULT_PORT)]
    pub vault_port: u16,
    /// The Vault service whose container starts trigger a fast sweep.
    #[arg(long, env = agent_env::VAULT_SERVICE)]
    pub vault_service: Option<String>,
    /// The unseal material (a Docker secret).
    #[arg(
        long,
        env = agent_env::UNSEAL_FILE,
        default_value = "/run/secrets/vault-unseal"
    )]
    pub unseal_file: std::path::PathBuf,
    /// Docker API for events (the read-only socket proxy), e.g. tcp://socket-proxy:2375.
    #[arg(long, env = agent_env::DOCKER_API)]
    pub docker_api: Option<String>,
    /// Health and metrics listener.
    #[arg(long, env = "SPROCKET_AGENT_LISTEN", default_value = "0.0.0.0:9090")]
    pub listen: SocketAddr,
    /// POST a JSON event here on every unseal (and failure).
    #[arg(long, env = "SPROCKET_UNSEAL_WEBHOOK")]
    pub webhook: Option<String>,
    /// Safety-net sweep period.
    #[arg(long, env = "SPROCKET_AGENT_POLL_SECONDS", default_value_t = 2)]
    pub poll_seconds: u64,
    /// Period of the services' Vault tokens in seconds: with it, the agent renews every
    /// `vault-token-*` file in --token-dir at a third of the period.
    #[arg(long, env = agent_env::TOKEN_PERIOD)]
    pub token_period: Option<u64>,
    /// Where the services' tokens are mounted (Docker secrets `vault-token-<service>`).
    #[arg(long, env = agent_env::TOKEN_DIR, default_value = "/run/secrets")]
    pub token_dir: std::path::PathBuf,
    /// Health probe: exit 0 when the agent on --listen is healthy (the container's health check).
    #[arg(long)]
    pub probe: bool,
    /// What to watch and where to send alerts (JSON, derived by `up` from the environment's
    /// `alerts`).
    #[arg(long, env = agent_env::MONITOR, hide = true)]
    pub monitor: Option<String>,
}

/// What the unseal secret holds.
#[derive(Deserialize, Serialize)]
pub struct UnsealMaterial {
    pub keys: Vec<String>,
    pub fingerprint: String,
}

impl std::fmt::Debug for UnsealMaterial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "UnsealMaterial {{ {} keys, fingerprint {} }}",
            self.keys.len(),
            self.fingerprint
        )
    }
}

struct Metrics {
    registry: Registry,
    time_to_unseal: Histogram,
    unseals: Counter,
    failures: Counter,
    /// Attempts cut off because the task stopped answering (it was being restarted).
    interrupted: Counter,
    sweeps: Counter,
    renewals: Counter,
    renewal_failures: Counter,
    watch: crate::monitor::WatchMetrics,
}

impl Metrics {
    fn new() -> Metrics {
        let mut registry = Registry::with_prefix("sprocket_agent");
        let time_to_unseal = Histogram::new([0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 1.0, 2.0, 5.0]);
        let (unseals, failures, sweeps) =
            (Counter::default(), Counter::default(), Counter::default());
        registry.register(
            "time_to_unseal_seconds",
            "From a sealed Vault's listener answering to unsealed",
            time_to_unseal.clone(),
        );
        registry.register("unseals", "Vault tasks unsealed", unseals.clone());
        registry.register(
            "unseal_failures",
            "Unseal attempts that Vault refused or that left it sealed",
            failures.clone(),
        );
        let interrupted = Counter::default();
        registry.register(
            "unseal_interrupted",
            "Unseal attempts cut off because the Vault task stopped answering (retried on the next sweep)",
            interrupted.clone(),
        );
        registry.register(
            "sweeps",
            "Seal-status sweeps over the Vault tasks",
            sweeps.clone(),
        );
        let (renewals, renewal_failures) = (Counter::default(), Counter::default());
        registry.register(
            "token_renewals",
            "Service Vault tokens renewed",
            renewals.clone(),
        );
        registry.register(
            "token_renewal_failures",
            "Service Vault token renewals that failed",
            renewal_failures.clone(),
        );
        let watch = crate::monitor::WatchMetrics::register(&mut registry);
        Metrics {
            watch,
            registry,
            time_to_unseal,
            unseals,
            failures,
            interrupted,
            sweeps,
            renewals,
            renewal_failures,
        }
    }
}

struct State {
    metrics: Metrics,
    /// Unix millis of the last completed sweep (health).
    last_sweep: AtomicU64,
    poll: Duration,
}

fn now_millis() -> u64 {
    crate::clock::unix_now().as_millis() as u64
}

pub async fn run(a: Args) -> i32 {
    if a.probe {
        return probe(a.listen).await;
    }
    let Some(tasks) = a.vault_tasks.clone() else {
        eprintln!("agent: --vault-tasks (SPROCKET_VAULT_TASKS) is required: the DNS name of every Vault task, e.g. tasks.sprocket_vault");
        return crate::exit::INVALID;
    };
    let material: UnsealMaterial = match std::fs::read(&a.unseal_file)
        .map_err(|e| e.to_string())
        .and_then(|b| {
            // serde's message can quote the offending value (key material): class and
            // position only.
            serde_json::from_slice(&b).map_err(|e| {
                format!(
                    "not the expected JSON ({:?} error at line {} column {})",
                    e.classify(),
                    e.line(),
                    e.column()
                )
            })
        }) {
        Ok(m) => m,
        Err(e) => {
            eprintln!(
                "agent: cannot read the unseal material at {}: {e}",
                a.unseal_file.display()
            );
            return crate::exit::INVALID;
        }
    };
    println!(
        "agent: watching {tasks}:{} with unseal material {} ({} keys)",
        a.vault_port,
        material.fingerprint,
        material.keys.len()
    );
    let listener = match tokio::net::TcpListener::bind(a.listen).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("agent: cannot listen on {}: {e}", a.listen);
            return crate::exit::ERROR;
        }
    };
    // As PID 1 nothing terminates us on SIGTERM by default: stop at once when Swarm asks.
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("agent: cannot handle SIGTERM: {e}");
            return crate::exit::ERROR;
        }
    };
    let shutdown = async move {
        term.recv().await;
        println!("agent: stopping (SIGTERM)");
    };
    let monitor = match a.monitor.as_deref().map(serde_json::from_str) {
        None => None,
        Some(Ok(m)) => Some(m),
        Some(Err(e)) => {
            eprintln!(
                "agent: {} is not a monitor document: {e}",
                agent_env::MONITOR
            );
            return crate::exit::INVALID;
        }
    };
    let service = a.vault_service.clone();
    let agent = Agent {
        monitor,
        tasks,
        port: a.vault_port,
        material,
        webhook: a.webhook.clone(),
        poll: Duration::from_secs(a.poll_seconds.max(1)),
        renew: a
            .token_period
            .zip(service.clone())
            .map(|(period, service)| Renew {
                addr: format!("http://{service}:{}", a.vault_port),
                dir: a.token_dir.clone(),
                period: Duration::from_secs(period),
            }),
        events: a.docker_api.clone().zip(service),
        status_address: a.listen.ip(),
    };
    serve(agent, listener, shutdown).await
}

/// What the agent does, resolved from its flags: the parts [`serve`] runs.
pub struct Agent {
    /// DNS name resolving to every Vault task.
    pub tasks: String,
    pub port: u16,
    pub material: UnsealMaterial,
    pub webhook: Option<String>,
    /// The safety-net sweep's period.
    pub poll: Duration,
    pub renew: Option<Renew>,
    /// (Docker API, Vault's service name): follow Vault's container starts.
    pub events: Option<(String, String)>,
    /// What to watch and where to send alerts (`crate::monitor`).
    pub monitor: Option<sprocket_desired::checks::Monitor>,
    /// The address the status page listens on (its port is the monitor's `status_port`).
    pub status_address: IpAddr,
}

/// Renewing the services' tokens.
pub struct Renew {
    pub addr: String,
    pub dir: std::path::PathBuf,
    pub period: Duration,
}

/// Serves `/healthz` and `/metrics` on `listener` and keeps every Vault task unsealed until
/// `shutdown` completes; then returns the exit code. Apart from `run` so that it runs in
/// process, against a stub Vault, in the tests.
pub async fn serve(
    agent: Agent,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()>,
) -> i32 {
    let state = Arc::new(State {
        metrics: Metrics::new(),
        last_sweep: AtomicU64::new(now_millis()),
        poll: agent.poll,
    });
    let wake = Arc::new(Notify::new());

    let app_state = state.clone();
    let app = Router::new()
        .route(
            "/healthz",
            get({
                let s = app_state.clone();
                move || async move {
                    let age = now_millis().saturating_sub(s.last_sweep.load(Ordering::Relaxed));
                    if age < 3 * s.poll.as_millis() as u64 + 5000 {
                        (axum::http::StatusCode::OK, "ok\n")
                    } else {
                        (
                            axum::http::StatusCode::SERVICE_UNAVAILABLE,
                            "sweeps stalled\n",
                        )
                    }
                }
            }),
        )
        .route(
            "/metrics",
            get({
                let s = app_state.clone();
                move |headers: axum::http::HeaderMap| async move {
                    let mut out = String::new();
                    let _ = encode(&mut out, &s.metrics.registry);
                    let accept = headers
                        .get(axum::http::header::ACCEPT)
                        .and_then(|v| v.to_str().ok());
                    if crate::exposition::wants_openmetrics(accept) {
                        (
                            [(
                                axum::http::header::CONTENT_TYPE,
                                crate::exposition::OPENMETRICS,
                            )],
                            out,
                        )
                    } else {
                        (
                            [(axum::http::header::CONTENT_TYPE, crate::exposition::TEXT)],
                            crate::exposition::classic(&out),
                        )
                    }
                }
            }),
        );
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    let mut background = vec![server];
    if let Some(r) = agent.renew {
        background.push(tokio::spawn(renew_tokens(
            r.addr,
            r.dir,
            r.period,
            state.clone(),
        )));
    }
    if let Some(m) = agent.monitor {
        let api = agent.events.as_ref().map(|(api, _)| api.clone());
        let page = crate::monitor::Page::new(&m);
        if let Some(port) = m.status_port {
            match tokio::net::TcpListener::bind((agent.status_address, port)).await {
                Ok(l) => {
                    background.push(tokio::spawn(crate::monitor::serve_status(l, page.clone())))
                }
                Err(e) => eprintln!(
                    "agent: cannot serve the status page on port {port}: {e} (the watch goes on)"
                ),
            }
        }
        background.push(tokio::spawn(crate::monitor::watch(
            m,
            api,
            state.metrics.watch.clone(),
            page,
        )));
    }
    if let Some((api, service)) = agent.events {
        background.push(tokio::spawn(watch_events(api, service, wake.clone())));
    }

    // No ambient proxy: the unseal keys go to Vault's tasks and nowhere else.
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .no_proxy()
        .build()
        .expect("http client");
    // Per task address: when its listener was first seen answering while sealed.
    let mut answering_since: HashMap<IpAddr, Instant> = HashMap::new();
    let mut fast_until = Instant::now();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        sweep(
            &agent.tasks,
            agent.port,
            &agent.material,
            &state,
            &mut answering_since,
            agent.webhook.as_deref(),
            &http,
        )
        .await;
        state.last_sweep.store(now_millis(), Ordering::Relaxed);
        let pause = if Instant::now() < fast_until {
            Duration::from_millis(20)
        } else {
            state.poll
        };
        tokio::select! {
            _ = tokio::time::sleep(pause) => {}
            _ = wake.notified() => { fast_until = Instant::now() + Duration::from_secs(30); }
            _ = &mut shutdown => {
                for task in background {
                    task.abort();
                }
                return crate::exit::OK;
            }
        }
    }
}

async fn sweep(
    tasks: &str,
    port: u16,
    material: &UnsealMaterial,
    state: &State,
    answering_since: &mut HashMap<IpAddr, Instant>,
    webhook: Option<&str>,
    http: &reqwest::Client,
) {
    state.metrics.sweeps.inc();
    let addrs: Vec<IpAddr> = match tokio::net::lookup_host((tasks, port)).await {
        Ok(it) => it.map(|s| s.ip()).collect(),
        Err(_) => return, // no task yet
    };
    answering_since.retain(|ip, _| addrs.contains(ip));
    let checks = addrs.iter().map(|ip| async move {
        let c =
            VaultClient::with_timeout(&format!("http://{ip}:{port}"), Duration::from_millis(800));
        (*ip, c.seal_status().await.ok(), c)
    });
    for (ip, status, client) in futures_util::future::join_all(checks).await {
        let Some(status) = status else { continue };
        if !status.initialized || !status.sealed {
            answering_since.remove(&ip);
            continue;
        }
        let since = *answering_since.entry(ip).or_insert_with(Instant::now);
        let mut result = Ok(status);
        for key in &material.keys {
            match &result {
                Ok(s) if !s.sealed => break,
                Ok(_) => result = client.unseal(key).await,
                Err(_) => break,
            }
        }
        match result {
            Ok(s) if !s.sealed => {
                let secs = since.elapsed().as_secs_f64();
                state.metrics.time_to_unseal.observe(secs);
                state.metrics.unseals.inc();
                answering_since.remove(&ip);
                println!(
                    "agent: unsealed vault task {ip} in {secs:.3}s (version {})",
                    s.version
                );
                notify(http, webhook, "unsealed", ip, secs, None).await;
            }
            // The task went away (or did not answer in time) between two keys: nobody refused
            // anything; the next sweep finds it sealed again (its time to unseal still counts
            // from when it first answered) or gone.
            Err(VaultError::Unreachable { reason, .. }) => {
                state.metrics.interrupted.inc();
                println!(
                    "agent: vault task {ip} stopped answering while being unsealed ({reason}); trying again"
                );
            }
            failed => {
                let reason = match failed {
                    Ok(s) => format!("still sealed after every key ({}/{}): the unseal material does not match this Vault", s.progress, s.t),
                    Err(e) => e.to_string(),
                };
                state.metrics.failures.inc();
                println!("agent: unsealing vault task {ip} failed: {reason}");
                notify(http, webhook, "unseal_failed", ip, 0.0, Some(&reason)).await;
            }
        }
    }
}

/// Renews every service token in `dir` at a third of `period` (sooner after a failure).
async fn renew_tokens(addr: String, dir: std::path::PathBuf, period: Duration, state: Arc<State>) {
    let every = (period / 3).max(Duration::from_secs(1));
    let client = VaultClient::with_timeout(&addr, Duration::from_secs(5));
    println!(
        "agent: renewing service tokens in {} every {:.0}s through {addr}",
        dir.display(),
        every.as_secs_f64()
    );
    loop {
        let mut files: Vec<(String, std::path::PathBuf)> = std::fs::read_dir(&dir)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| {
                let name = e.file_name().to_string_lossy().to_string();
                name.strip_prefix(TOKEN_SECRET_PREFIX)
                    .map(|svc| (svc.to_string(), e.path()))
            })
            .collect();
        files.sort();
        let mut failed = false;
        let mut renewed = Vec::new();
        for (svc, path) in files {
            let token = match std::fs::read_to_string(&path) {
                Ok(t) => t.trim().to_string(),
                Err(e) => {
                    println!("agent: cannot read the token of {svc}: {e}");
                    continue;
                }
            };
            match client.with_token(&token).renew_self().await {
                Ok(()) => {
                    state.metrics.renewals.inc();
                    renewed.push(svc);
                }
                Err(e) => {
                    failed = true;
                    state.metrics.renewal_failures.inc();
                    // Vault's error text, never the token.
                    println!("agent: renewing the token of {svc} failed: {e}");
                }
            }
        }
        if !renewed.is_empty() {
            println!("agent: renewed tokens of {}", renewed.join(", "));
        }
        let pause = if failed {
            every.min(Duration::from_secs(2))
        } else {
            every
        };
        tokio::time::sleep(pause).await;
    }
}

async fn notify(
    http: &reqwest::Client,
    webhook: Option<&str>,
    event: &str,
    ip: IpAddr,
    secs: f64,
    error: Option<&str>,
) {
    let Some(url) = webhook else { return };
    let body = serde_json::json!({ "event": event, "vault_task": ip.to_string(), "seconds": secs, "error": error });
    if let Err(e) = http.post(url).json(&body).send().await {
        // A webhook URL is a credential (Slack, Discord): only its host is shown.
        println!(
            "agent: webhook to {} failed: {}",
            redacted_url(url),
            e.without_url()
        );
    }
}

/// `https://hooks.slack.com/…`: the scheme and host of a URL, never its path or query.
/// A URL as logs and errors may show it: scheme, host and port — never a user, password or
/// path (a webhook's path is often its credential).
pub(crate) fn redacted_url(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(u) => format!(
            "{}://{}{}/…",
            u.scheme(),
            u.host_str().unwrap_or("?"),
            u.port().map(|p| format!(":{p}")).unwrap_or_default()
        ),
        Err(_) => "<unparsable URL>".into(),
    }
}

/// Docker `start` events of the Vault service's containers, through the socket proxy.
/// Reconnects with `since` so no event is lost across a proxy restart.
async fn watch_events(api: String, service: String, wake: Arc<Notify>) {
    use bollard::query_parameters::EventsOptions;
    let mut since = (now_millis() / 1000).to_string();
    loop {
        let docker = match bollard::Docker::connect_with_http(
            &crate::monitor::http_base(&api),
            30,
            bollard::API_DEFAULT_VERSION,
        )
        .map(|d| d.with_timeout(Duration::from_secs(3600)))
        {
            Ok(d) => match d.negotiate_version().await {
                Ok(d) => d,
                Err(_) => {
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            },
            Err(_) => {
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        let filters = HashMap::from([
            ("type".to_string(), vec!["container".to_string()]),
            ("event".to_string(), vec!["start".to_string()]),
            (
                "label".to_string(),
                vec![format!("com.docker.swarm.service.name={service}")],
            ),
        ]);
        let mut events = docker.events(Some(EventsOptions {
            since: Some(since.clone()),
            until: None,
            filters: Some(filters),
        }));
        while let Some(ev) = events.next().await {
            match ev {
                Ok(e) => {
                    if let Some(t) = e.time {
                        since = t.to_string();
                    }
                    wake.notify_one();
                }
                Err(_) => break,
            }
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

async fn probe(listen: SocketAddr) -> i32 {
    let port = listen.port();
    let r = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("http client")
        .get(format!("http://127.0.0.1:{port}/healthz"))
        .timeout(Duration::from_secs(2))
        .send()
        .await;
    match r {
        Ok(resp) if resp.status().is_success() => crate::exit::OK,
        _ => crate::exit::ERROR,
    }
}

#[cfg(test)]
mod tests {
    //! The agent in process against a stub Vault that speaks `sys/seal-status` and
    //! `sys/unseal` as OpenBao does (threshold 2): sealed at first, unsealed by the agent's first
    //! sweep with the material's keys in order, counted in `/metrics`, healthy on `/healthz`, and
    //! stopped by its shutdown future.

    use super::*;
    use axum::routing::put;
    use std::sync::Mutex;

    #[derive(Default)]
    struct Stub {
        sealed: bool,
        keys: Vec<String>,
    }

    fn status(s: &Stub) -> serde_json::Value {
        serde_json::json!({
            "type": "shamir", "initialized": true, "sealed": s.sealed,
            "t": 2, "n": 3, "progress": s.keys.len() % 2, "version": "stub"
        })
    }

    async fn stub_vault() -> (u16, Arc<Mutex<Stub>>) {
        let stub = Arc::new(Mutex::new(Stub {
            sealed: true,
            keys: vec![],
        }));
        let (a, b) = (stub.clone(), stub.clone());
        let app = Router::new()
            .route(
                "/v1/sys/seal-status",
                get(move || async move { axum::Json(status(&a.lock().unwrap())) }),
            )
            .route(
                "/v1/sys/unseal",
                put(
                    move |axum::Json(body): axum::Json<serde_json::Value>| async move {
                        let mut s = b.lock().unwrap();
                        s.keys
                            .push(body["key"].as_str().unwrap_or_default().to_string());
                        if s.keys.len() >= 2 {
                            s.sealed = false;
                        }
                        axum::Json(status(&s))
                    },
                ),
            );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move { axum::serve(listener, app).await });
        (port, stub)
    }

    #[test]
    fn a_webhook_url_is_shown_by_its_host_only() {
        let url = "https://hooks.slack.com/services/T000/B000/XXXXsecretXXXX?token=abc";
        let shown = redacted_url(url);
        assert_eq!(shown, "https://hooks.slack.com/…");
        assert!(!shown.contains("secret") && !shown.contains("abc"));
        assert_eq!(redacted_url("not a url secret"), "<unparsable URL>");
    }

    #[tokio::test]
    async fn unseals_a_sealed_vault_counts_it_and_stops_on_request() {
        let (port, stub) = stub_vault().await;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let agent_addr = listener.local_addr().unwrap();
        let agent = Agent {
            monitor: None,
            tasks: "127.0.0.1".into(),
            port,
            material: UnsealMaterial {
                keys: vec!["key-one".into(), "key-two".into()],
                fingerprint: "f".into(),
            },
            webhook: None,
            poll: Duration::from_secs(1),
            renew: None,
            events: None,
            status_address: std::net::Ipv4Addr::LOCALHOST.into(),
        };
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let running = tokio::spawn(serve(agent, listener, async {
            let _ = stopped.await;
        }));
        let until = Instant::now() + Duration::from_secs(5);
        while stub.lock().unwrap().sealed {
            assert!(Instant::now() < until, "the agent did not unseal the stub");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(stub.lock().unwrap().keys, ["key-one", "key-two"]);

        let http = reqwest::Client::new();
        let metrics = http
            .get(format!("http://{agent_addr}/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(
            metrics.contains("sprocket_agent_unseals_total 1"),
            "{metrics}"
        );
        assert!(!metrics.contains("key-one"), "no key in the metrics");
        let health = http
            .get(format!("http://{agent_addr}/healthz"))
            .send()
            .await
            .unwrap();
        assert_eq!(health.status().as_u16(), 200);

        // Unsealed: the next sweeps leave it alone.
        tokio::time::sleep(Duration::from_millis(1200)).await;
        assert_eq!(stub.lock().unwrap().keys.len(), 2);

        stop.send(()).unwrap();
        let code = tokio::time::timeout(Duration::from_secs(3), running)
            .await
            .expect("serve returns once asked to stop")
            .unwrap();
        assert_eq!(code, crate::exit::OK);
    }
}
