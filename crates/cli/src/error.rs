//! One typed error path for every command. Commands return `Result<i32, CliError>`: `Ok` carries
//! the exit code of a command that ran to its end and printed its own report (a deploy that
//! failed and said why exits 5 through `Ok`); `Err` is printed once, by [`report`], human or
//! JSON, which also picks its exit code. The adapters' error types pass through unchanged, so
//! their hints reach the operator as they wrote them.

use crate::commands::{print_report, Ctx};
use crate::exit;
use crate::output::{self, Format};
use crate::vault_lifecycle::LifecycleError;
use serde::Serialize;
use sprocket_docker::EngineError;

#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The spec does not validate: its diagnostics, printed as a located report.
    #[error("the spec is invalid")]
    Spec(sprocket_spec::Report),
    /// Bad arguments, or a spec without what the command needs; nothing was changed.
    #[error("{0}")]
    Invalid(String),
    /// What the platform needs is missing or taken by someone else; nothing was changed.
    #[error("{0}")]
    Blocked(String),
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error(transparent)]
    Lifecycle(#[from] LifecycleError),
    #[error(transparent)]
    Vault(#[from] sprocket_vault::VaultError),
    /// Anything else that stops a command; its text says what to do next.
    #[error("{0}")]
    Failed(String),
}

impl CliError {
    pub fn exit_code(&self) -> i32 {
        match self {
            CliError::Spec(_) | CliError::Invalid(_) => exit::INVALID,
            CliError::Blocked(_) => exit::BLOCKED,
            CliError::Engine(EngineError::Unreachable { .. } | EngineError::NotAManager { .. }) => {
                exit::ENGINE
            }
            CliError::Lifecycle(LifecycleError::Keyring(_) | LifecycleError::NoIdentity { .. }) => {
                exit::INVALID
            }
            _ => exit::ERROR,
        }
    }
}

#[derive(Serialize)]
struct ErrorReport {
    ok: bool,
    error: String,
}

/// Prints `e` once and returns its exit code.
pub fn report(ctx: &Ctx, e: &CliError) -> i32 {
    match e {
        CliError::Spec(r) => print_report(ctx, r),
        _ => match ctx.format {
            Format::Json => output::json(&ErrorReport {
                ok: false,
                error: e.to_string(),
            }),
            Format::Human => eprintln!("error: {e}"),
        },
    }
    e.exit_code()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_kind_of_error_has_its_documented_exit_code() {
        assert_eq!(CliError::Invalid("x".into()).exit_code(), 3);
        assert_eq!(CliError::Blocked("x".into()).exit_code(), 7);
        assert_eq!(CliError::Failed("x".into()).exit_code(), 1);
        let unreachable = EngineError::NotAManager {
            endpoint: "unix:///x".into(),
        };
        assert_eq!(CliError::from(unreachable).exit_code(), 4);
        let io = EngineError::Io {
            action: "read",
            object: "x".into(),
            source: std::io::Error::other("boom"),
        };
        assert_eq!(CliError::from(io).exit_code(), 1);
        let spec = sprocket_spec::Report {
            source: None,
            diagnostics: vec![],
        };
        assert_eq!(CliError::Spec(spec).exit_code(), 3);
    }
}
