//! One module per command: parse its arguments, call the library, print the report.

pub mod down;
pub mod plan;
pub mod probe;
pub mod provision;
pub mod render;
pub mod secrets;
pub mod secrets_ls;
pub mod secrets_rotate;
pub mod status;
pub mod up;
pub mod validate;
pub mod vault;

use crate::error::CliError;
use crate::output::{self, Format, Progress};
use crate::{Cli, Command};
use serde::Serialize;
use sprocket_desired::{DesiredState, Observed};
use sprocket_docker::Engine;
use sprocket_spec::{Loaded, Report};
use std::io::IsTerminal;

/// What every command gets: the global options, resolved once.
pub struct Ctx {
    pub cli_file: std::path::PathBuf,
    pub env: Option<String>,
    pub format: Format,
    pub progress: Progress,
    /// A drill's scratch copy of the environment, when `drill` runs this command.
    pub scratch: Option<sprocket_spec::model::Scratch>,
}

impl Ctx {
    /// `sprocketctl -o json ARGS` as a child process on the same spec, environment (and
    /// drill's scratch copy), quiet when this run is, its progress on our stderr: what runs
    /// another command in its own process, with its own lock and report (`restore` runs `up`,
    /// `drill` runs them all). Its exit code and its JSON report (`null` when it printed none).
    pub fn run_json(&self, args: &[&str]) -> (i32, serde_json::Value) {
        let exe = std::env::current_exe().unwrap_or_else(|_| "sprocketctl".into());
        let mut cmd = std::process::Command::new(exe);
        cmd.arg("-f").arg(&self.cli_file);
        if let Some(e) = &self.env {
            cmd.args(["-e", e]);
        }
        if let Some(s) = &self.scratch {
            cmd.arg("--scratch")
                .arg(serde_json::to_string(s).expect("serialisable"));
            // A Vault address the operator set is the live platform's: the scratch copy's
            // Vault is reached through its own namespace, never through that one.
            cmd.env_remove("SPROCKET_VAULT_ADDR")
                .env_remove("VAULT_ADDR");
        }
        if !self.progress.enabled {
            cmd.arg("-q");
        }
        cmd.args(["-o", "json"]).args(args);
        cmd.stderr(std::process::Stdio::inherit());
        match cmd.output() {
            Ok(out) => (
                out.status.code().unwrap_or(crate::exit::ERROR),
                serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null),
            ),
            Err(e) => (
                crate::exit::ERROR,
                serde_json::json!({ "error": format!("cannot run sprocketctl: {e}") }),
            ),
        }
    }
}

pub async fn run(cli: Cli) -> i32 {
    let ctx = Ctx {
        cli_file: cli.file.clone(),
        env: cli.env.clone(),
        format: cli.output,
        progress: Progress {
            enabled: !cli.quiet,
        },
        scratch: cli.scratch.clone(),
    };
    let result = match cli.command {
        Command::Validate(a) => validate::run(&ctx, a),
        Command::Render(a) => render::run(&ctx, a),
        Command::Plan(a) => plan::run(&ctx, a).await,
        Command::Up(a) => up::run(&ctx, a).await,
        Command::Status(a) => status::run(&ctx, a).await,
        Command::Check(a) => crate::check::run(&ctx, a).await,
        Command::Down(a) => down::run(&ctx, a).await,
        Command::Vault(a) => vault::run(&ctx, a).await,
        Command::Secrets(a) => secrets::run(&ctx, a).await,
        Command::Backup(a) => crate::backup::run(&ctx, a).await,
        Command::BackupTask(a) => Ok(crate::backup::take::run(a).await),
        Command::Restore(a) => crate::backup::restore::run(&ctx, a).await,
        Command::Drill(a) => crate::backup::drill::run(&ctx, a).await,
        Command::RestoreTask(a) => Ok(crate::backup::put::run(a).await),
        Command::Agent(a) => Ok(crate::agent::run(a).await),
        Command::Provision(a) => Ok(provision::run(a).await),
        Command::Probe(a) => Ok(probe::run(a).await),
    };
    // The one place an error is printed and its exit code chosen.
    result.unwrap_or_else(|e| crate::error::report(&ctx, &e))
}

#[derive(Serialize)]
struct DiagnosticsReport<'a> {
    ok: bool,
    diagnostics: &'a [sprocket_spec::Diagnostic],
}

/// Prints a spec report (errors and warnings), human or JSON.
pub fn print_report(ctx: &Ctx, report: &Report) {
    match ctx.format {
        Format::Json => output::json(&DiagnosticsReport {
            ok: !report.has_errors(),
            diagnostics: &report.diagnostics,
        }),
        Format::Human => {
            let color = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
            eprint!("{}", report.render_fancy(color));
            let errors = report.errors().count();
            let warnings = report.diagnostics.len() - errors;
            if errors > 0 {
                eprintln!("{errors} error(s), {warnings} warning(s): nothing was changed.");
            }
        }
    }
}

/// Loads the spec for the chosen environment (its warnings printed), or its diagnostics.
pub fn load(ctx: &Ctx) -> Result<Loaded, CliError> {
    let parsed = sprocket_spec::parse_file(&ctx.cli_file).map_err(CliError::Spec)?;
    let l = sprocket_spec::resolve_as(
        &parsed,
        ctx.env.as_deref(),
        &sprocket_spec::Files::disk(),
        ctx.scratch.as_ref(),
    )
    .map_err(CliError::Spec)?;
    if !l.warnings.is_empty() && ctx.format == Format::Human {
        print_report(
            ctx,
            &Report {
                source: Some(l.source.clone()),
                diagnostics: l.warnings.clone(),
            },
        );
    }
    Ok(l)
}

pub async fn connect() -> Result<Engine, CliError> {
    Ok(Engine::connect().await?)
}

/// `1.5s`, `250ms`.
pub fn secs(d: std::time::Duration) -> String {
    if d.as_secs_f64() >= 1.0 {
        format!("{:.1}s", d.as_secs_f64())
    } else {
        format!("{}ms", d.as_millis())
    }
}

/// How a command reaches Vault and opens its keyring (`up`, `plan`, `status`, `vault …`).
#[derive(clap::Args, Clone, Default)]
pub struct VaultAccess {
    /// Private key that opens the Vault keyring: an age identity file or an unencrypted OpenSSH
    /// private key (default ~/.config/sprocket/identity.txt).
    #[arg(long, env = "SPROCKET_IDENTITY", global = true)]
    pub identity: Option<std::path::PathBuf>,
    /// Reach Vault at this URL instead of its private socket on this machine (e.g.
    /// http://10.0.0.5:8200).
    /// (Not `VAULT_ADDR`: that may point at another Vault, which must never see our tokens.)
    #[arg(long, env = "SPROCKET_VAULT_ADDR", global = true)]
    pub vault_addr: Option<String>,
}

/// The spec resolved, its desired state, the engine, and what the engine holds of the namespace:
/// where every command that looks at the swarm starts.
pub struct Live {
    pub loaded: Loaded,
    pub desired: DesiredState,
    pub engine: Engine,
    pub observed: Observed,
    /// Held by commands that change the platform, from before they observe it to their end.
    pub lock: Option<crate::lock::NamespaceLock>,
}

pub async fn live(ctx: &Ctx) -> Result<Live, CliError> {
    live_as(ctx, None).await
}

/// [`live`] for a command that changes the platform: the namespace's lock is taken before the
/// swarm is observed, so no other run changes it between the plan and its end.
pub async fn live_changing(ctx: &Ctx, command: &str) -> Result<Live, CliError> {
    live_as(ctx, Some(command)).await
}

async fn live_as(ctx: &Ctx, changing: Option<&str>) -> Result<Live, CliError> {
    let loaded = load(ctx)?;
    let desired = sprocket_desired::state::desired(&loaded.platform);
    let lock = match changing {
        Some(command) => {
            Some(crate::lock::acquire(&desired.namespace, command, LOCK_WAIT, ctx.progress).await?)
        }
        None => None,
    };
    let engine = connect().await?;
    let observed = engine.observe(&desired.namespace).await?;
    Ok(Live {
        loaded,
        desired,
        engine,
        observed,
        lock,
    })
}

/// How long a changing command waits for another one on the same namespace.
pub const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(120);
