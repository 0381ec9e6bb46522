//! `validate`: every environment (or the one given with -e), every rule, every problem at once.

use super::{print_report, Ctx};
use crate::error::CliError;
use crate::exit;
use crate::output::Format;
use sprocket_spec::Report;

#[derive(clap::Args)]
pub struct Args {}

pub fn run(ctx: &Ctx, _: Args) -> Result<i32, CliError> {
    let parsed = sprocket_spec::parse_file(&ctx.cli_file).map_err(CliError::Spec)?;
    let files = sprocket_spec::Files::disk();
    let (report, checked): (Report, Vec<String>) = match &ctx.env {
        Some(env) => match sprocket_spec::resolve(&parsed, Some(env), &files) {
            Ok(l) => (
                Report {
                    source: Some(l.source),
                    diagnostics: l.warnings,
                },
                vec![env.clone()],
            ),
            Err(r) => (r, vec![env.clone()]),
        },
        None => (
            sprocket_spec::validate_all(&parsed, &files),
            sprocket_spec::load::environment_names(&parsed),
        ),
    };
    if report.has_errors() {
        return Err(CliError::Spec(report));
    }
    print_report(ctx, &report);
    if ctx.format == Format::Human {
        println!(
            "{}: valid ({} environment{}: {})",
            ctx.cli_file.display(),
            checked.len(),
            if checked.len() == 1 { "" } else { "s" },
            checked.join(", ")
        );
    }
    Ok(exit::OK)
}
