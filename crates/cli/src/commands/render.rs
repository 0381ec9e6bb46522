//! `render`: the desired Swarm objects as JSON, or compose files for `docker stack deploy`.

use super::{load, Ctx};
use crate::exit;
use crate::output::{self, Format};
use serde::Serialize;
use std::path::PathBuf;

#[derive(Clone, Copy, clap::ValueEnum)]
pub enum RenderFormat {
    /// The desired state (networks, services, configs, secret references, labels) as JSON.
    Json,
    /// One `docker stack deploy` file per layer, written to --out.
    Compose,
}

#[derive(clap::Args)]
pub struct Args {
    #[arg(long, value_enum, default_value = "json")]
    pub format: RenderFormat,
    /// Folder for compose files (created if missing).
    #[arg(long, default_value = "sprocket-compose")]
    pub out: PathBuf,
}

#[derive(Serialize)]
struct Written {
    namespace: String,
    environment: String,
    files: Vec<PathBuf>,
}

pub fn run(ctx: &Ctx, a: Args) -> i32 {
    let loaded = match load(ctx) {
        Ok(l) => l,
        Err(code) => return code,
    };
    let desired = sprocket_desired::state::desired(&loaded.platform);
    match a.format {
        RenderFormat::Json => output::json(&desired),
        RenderFormat::Compose => {
            if let Err(e) = std::fs::create_dir_all(&a.out) {
                return super::fail(
                    ctx,
                    &format!("cannot create {}: {e}", a.out.display()),
                    exit::INVALID,
                );
            }
            let mut files = Vec::new();
            for (i, (layer, text)) in sprocket_desired::compose::compose_files(&desired)
                .into_iter()
                .enumerate()
            {
                let path = a.out.join(format!("{}-{layer}.yaml", i + 1));
                if let Err(e) = std::fs::write(&path, text) {
                    return super::fail(
                        ctx,
                        &format!("cannot write {}: {e}", path.display()),
                        exit::ERROR,
                    );
                }
                files.push(path);
            }
            let report = Written {
                namespace: desired.namespace.clone(),
                environment: desired.environment.clone(),
                files,
            };
            match ctx.format {
                Format::Json => output::json(&report),
                Format::Human => {
                    for f in &report.files {
                        println!("{}", f.display());
                    }
                    let args: Vec<String> = report
                        .files
                        .iter()
                        .map(|f| format!("-c {}", f.display()))
                        .collect();
                    eprintln!(
                        "deploy with: docker stack deploy --resolve-image never {} {}",
                        args.join(" "),
                        report.namespace
                    );
                }
            }
        }
    }
    exit::OK
}
