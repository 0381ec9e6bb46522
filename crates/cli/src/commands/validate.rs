//! `validate`: every environment (or the one given with -e), every rule, every problem at once.

use super::{print_report, Ctx};
use crate::exit;
use crate::output::Format;
use sprocket_spec::Report;

#[derive(clap::Args)]
pub struct Args {}

pub fn run(ctx: &Ctx, _: Args) -> i32 {
    let parsed = match sprocket_spec::parse_file(&ctx.cli_file) {
        Ok(p) => p,
        Err(r) => {
            print_report(ctx, &r);
            return exit::INVALID;
        }
    };
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
    print_report(ctx, &report);
    if report.has_errors() {
        return exit::INVALID;
    }
    if ctx.format == Format::Human {
        println!(
            "{}: valid ({} environment{}: {})",
            ctx.cli_file.display(),
            checked.len(),
            if checked.len() == 1 { "" } else { "s" },
            checked.join(", ")
        );
    }
    exit::OK
}
