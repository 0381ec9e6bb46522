//! `down`: remove the platform, or one layer, in reverse layer order. Only objects carrying our
//! ownership labels for this namespace are touched. Volumes (data) stay unless `--volumes`.

use super::Ctx;
use crate::apply::Teardown;
use crate::error::CliError;
use crate::exit;
use crate::output::{self, Format};
use serde::Serialize;
use std::time::Instant;

#[derive(clap::Args)]
pub struct Args {
    /// Only this layer (later layers must already be down).
    #[arg(long)]
    pub layer: Option<String>,
    /// Also remove the layer's named volumes (their data is lost), and with every layer, the
    /// generated secrets.
    #[arg(long)]
    pub volumes: bool,
}

#[derive(Serialize)]
struct DownReport {
    namespace: String,
    removed: Vec<String>,
    seconds: f64,
}

pub async fn run(ctx: &Ctx, a: Args) -> Result<i32, CliError> {
    let super::Live {
        desired,
        engine,
        observed,
        lock: _lock,
        ..
    } = super::live_changing(ctx, "down").await?;
    let ns = desired.namespace.clone();
    let layer_names: Vec<String> = desired.layers.iter().map(|l| l.name.clone()).collect();
    if let Some(l) = a.layer.as_ref().filter(|l| !layer_names.contains(l)) {
        return Err(CliError::Invalid(format!(
            "layer `{l}` is not in the spec; layers: {}",
            layer_names.join(", ")
        )));
    }
    let started = Instant::now();
    let teardown = Teardown {
        namespace: &ns,
        layers: &layer_names,
        only: a.layer.as_deref(),
        volumes: a.volumes,
    };
    let later = teardown.blockers(&observed);
    if let (Some(l), false) = (&a.layer, later.is_empty()) {
        return Err(CliError::Invalid(format!("later layers still run services that may use layer `{l}`: {}. Take them down first (`sprocketctl down --layer <later>`), or run `down` without --layer.", later.join(", "))));
    }
    let mut removed = Vec::new();
    let result = teardown
        .run(&engine, &observed, &mut removed, ctx.progress)
        .await;
    if let Err(e) = result {
        return Err(CliError::Failed(format!(
            "{e} (removed so far: {}); run `down` again to continue",
            removed.len()
        )));
    }
    let report = DownReport {
        namespace: ns,
        removed,
        seconds: started.elapsed().as_secs_f64(),
    };
    match ctx.format {
        Format::Json => output::json(&report),
        Format::Human => println!(
            "removed {} object(s) of `{}` in {:.1}s",
            report.removed.len(),
            report.namespace,
            report.seconds
        ),
    }
    Ok(exit::OK)
}
