//! `sprocketctl`: parse the command line, run one command, print its report, exit with its
//! documented code. Each command lives in `commands/`; the deploy executor in `apply`.

mod agent;
mod apply;
mod backup;
mod cert_budget;
mod certs;
mod check;
mod clock;
mod commands;
mod error;
mod exit;
mod exposition;
mod lock;
mod monitor;
mod output;
mod preflight;
mod secret_source;
mod secrets_sync;
mod vault_config;
mod vault_lifecycle;

use clap::{Parser, Subcommand};
use std::path::PathBuf;

#[derive(Parser)]
#[command(
    name = "sprocketctl",
    version,
    about = "Declare, deploy and operate the Sprocket platform on Docker Swarm from one spec file",
    after_help = "Exit codes: 0 ok · 1 unexpected error · 2 plan has changes (--detailed-exitcode) · 3 invalid spec or arguments · 4 engine unreachable / not a swarm manager · 5 deploy failed (a task failed or Swarm rolled back) · 6 deploy timed out · 7 blocked: secrets missing · 8 check: a warning · 9 check: something critical"
)]
pub struct Cli {
    /// The platform spec.
    #[arg(
        short = 'f',
        long = "file",
        global = true,
        default_value = "sprocket.yaml",
        env = "SPROCKET_FILE"
    )]
    pub file: PathBuf,
    /// The environment (default: the spec's `default_environment`).
    #[arg(short = 'e', long = "env", global = true, env = "SPROCKET_ENV")]
    pub env: Option<String>,
    /// Output format.
    #[arg(
        short = 'o',
        long = "output",
        global = true,
        value_enum,
        default_value = "human"
    )]
    pub output: output::Format,
    /// No progress lines on stderr.
    #[arg(short = 'q', long, global = true)]
    pub quiet: bool,
    /// Run on a drill's scratch copy of the environment (JSON of `model::Scratch`): what
    /// `drill` passes the commands it runs.
    #[arg(long, global = true, hide = true, value_parser = parse_scratch)]
    pub scratch: Option<sprocket_spec::model::Scratch>,
    #[command(subcommand)]
    pub command: Command,
}

fn parse_scratch(s: &str) -> Result<sprocket_spec::model::Scratch, String> {
    serde_json::from_str(s).map_err(|e| format!("not a drill's scratch platform: {e}"))
}

#[derive(Subcommand)]
pub enum Command {
    /// Check the spec and its environments; report every problem at once with file:line:column.
    Validate(commands::validate::Args),
    /// Print the desired Swarm objects, or write compose files (one per layer) or a Gatus
    /// configuration.
    Render(commands::render::Args),
    /// Show what `up` would change, object by object and field by field.
    Plan(commands::plan::Args),
    /// Deploy: each service as soon as what it needs is healthy, gated on its new tasks; returns
    /// once converged and the edge router serves the routes of what changed.
    Up(commands::up::Args),
    /// Layers and services as they run: replicas, image, last update, health.
    Status(commands::status::Args),
    /// The runbook's checklists in one command: replicas and restarts, every route × host,
    /// what each service reaches from its own networks (and what it must not), its datastore
    /// logins with its own credentials, Vault, certificates, error lines, the node. Exit 0 ok,
    /// 8 warning, 9 critical.
    Check(check::Args),
    /// Remove the platform (or one layer) in reverse order; volumes are kept unless --volumes.
    Down(commands::down::Args),
    /// Vault's keys: keygen, init (keys encrypted to the operators), unseal, status, root token,
    /// keyring recipients.
    Vault(commands::vault::Args),
    /// The secrets' source of truth: check it against the spec (nothing written).
    Secrets(commands::secrets::Args),
    /// Back the platform up now (Vault, its keyring, Redis, RabbitMQ's definitions, every
    /// provisioned database), encrypted to the operators, to the environment's bucket; `ls`
    /// lists the backups, `verify` checks one with an operator's identity.
    Backup(backup::Args),
    /// Put a backup back (the newest complete one, or --from ID): Vault's data with its original
    /// keys and keyring, the datastores' data, then `up` onto the restored secrets; decrypted
    /// with an operator's identity; data that is there is replaced only with --force.
    Restore(backup::restore::Args),
    /// Prove a backup restores, and measure it: rebuild the platform in a scratch namespace,
    /// restore the newest backup (or --from ID) into it, check it, take it down; report the
    /// recovery time per component and in total and the recovery point against the runbook's
    /// targets, and keep the result for `check`.
    Drill(backup::drill::Args),
    /// The unseal agent: keeps every Vault task unsealed (runs as a layer-1 service).
    Agent(agent::Args),
    /// Make the datastore logins of a provisioning job (runs in the one-off task `up` starts).
    #[command(hide = true)]
    Provision(commands::provision::Args),
    /// Resolve and connect to a check's targets (runs in the short-lived task `check` starts).
    #[command(hide = true)]
    Probe(commands::probe::Args),
    /// Take a backup's artefacts (runs in the one-off task `backup` starts).
    #[command(hide = true, name = "backup-task")]
    BackupTask(backup::take::Args),
    /// Put a backup's artefacts back (runs in the one-off task `restore` starts).
    #[command(hide = true, name = "restore-task")]
    RestoreTask(backup::put::Args),
}

fn main() {
    no_core_dumps();
    quiet_on_closed_stdout();
    let cli = Cli::parse();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let code = rt.block_on(commands::run(cli));
    std::process::exit(code);
}

/// `sprocketctl render | head`: when the reader of stdout or stderr goes away, the command ends
/// quietly with 141 (128 + SIGPIPE, what a shell reports for other Unix tools), instead of
/// panicking with "failed printing to stdout". SIGPIPE itself stays ignored (Rust's default), so
/// a closed pipe can never kill the process between two steps of a Vault operation.
fn quiet_on_closed_stdout() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let payload = info.payload();
        let msg = payload
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| payload.downcast_ref::<&str>().copied())
            .unwrap_or("");
        if msg.starts_with("failed printing to std") && msg.contains("Broken pipe") {
            std::process::exit(141);
        }
        default(info)
    }));
}

/// This process may hold unseal keys and tokens in memory (`vault`, `up`, the agent): a crash
/// must not write them to disk in a core file (systemd-coredump, apport), nor may another process
/// of the same user read them through `ptrace` or `/proc/<pid>/mem`. Best effort: a failure
/// leaves the defaults, and nothing else depends on it.
fn no_core_dumps() {
    // SAFETY: plain syscalls on this process, with valid arguments; no memory is shared.
    unsafe {
        let none = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        libc::setrlimit(libc::RLIMIT_CORE, &none);
        libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0);
    }
}
