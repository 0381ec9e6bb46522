//! `render`: the desired Swarm objects as JSON, or compose files for `docker stack deploy`.
//!
//! The compose files are written so that the printed `docker stack deploy` command works from
//! any folder; the services they cannot carry are named on stderr (and in `left_out` with
//! `-o json`), each with its reason.

use super::{load, Ctx};
use crate::error::CliError;
use crate::exit;
use crate::output::{self, Format};
use serde::Serialize;
use sprocket_desired::compose::{compose_files, LeftOut};
use std::path::PathBuf;

#[derive(Clone, Copy, clap::ValueEnum)]
pub enum RenderFormat {
    /// The desired state (networks, services, configs, secret references, labels) as JSON.
    Json,
    /// One `docker stack deploy` file per layer, written to --out.
    Compose,
    /// A Gatus configuration (one endpoint per route × host, grouped by layer), written to
    /// --out as gatus.yaml.
    Gatus,
}

#[derive(clap::Args)]
pub struct Args {
    #[arg(long, value_enum, default_value = "json")]
    pub format: RenderFormat,
    /// Folder for compose files or gatus.yaml (created if missing).
    #[arg(long, default_value = "sprocket-compose")]
    pub out: PathBuf,
}

#[derive(Serialize)]
struct Written {
    namespace: String,
    environment: String,
    files: Vec<PathBuf>,
    /// Services the compose files do not carry (they mount secrets only `up` makes), and why.
    left_out: Vec<LeftOut>,
    /// Generated secrets to create (random values) before deploying: their Docker names.
    create_secrets: Vec<String>,
    /// Datastore logins the compose files cannot make (`access`): `user@vhost on datastore`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    not_provisioned: Vec<String>,
}

pub fn run(ctx: &Ctx, a: Args) -> Result<i32, CliError> {
    let loaded = load(ctx)?;
    let desired = sprocket_desired::state::desired(&loaded.platform);
    if !matches!(a.format, RenderFormat::Json) {
        std::fs::create_dir_all(&a.out)
            .map_err(|e| CliError::Invalid(format!("cannot create {}: {e}", a.out.display())))?;
    }
    match a.format {
        RenderFormat::Json => output::json(&desired),
        RenderFormat::Gatus => {
            let path = a.out.join("gatus.yaml");
            let (text, endpoints) = sprocket_desired::gatus::gatus(&loaded.platform);
            std::fs::write(&path, &text)
                .map_err(|e| CliError::Failed(format!("cannot write {}: {e}", path.display())))?;
            match ctx.format {
                Format::Json => output::json(&serde_json::json!({
                    "namespace": desired.namespace,
                    "environment": desired.environment,
                    "files": [path],
                    "endpoints": endpoints,
                })),
                Format::Human => {
                    println!("{}", path.display());
                    eprintln!(
                        "{endpoints} endpoint(s), one per route × host of `{}`; mount it as Gatus's /config/config.yaml",
                        desired.environment
                    );
                }
            }
        }
        RenderFormat::Compose => {
            // Config paths in the spec are relative to where it was read from; the files must
            // work from any folder, so they get absolute paths.
            let cwd = std::env::current_dir()
                .map_err(|e| CliError::Failed(format!("cannot read the current directory: {e}")))?;
            let mut files = Vec::new();
            let mut left_out = Vec::new();
            let mut create_secrets = Vec::new();
            for (i, file) in compose_files(&desired, &cwd).into_iter().enumerate() {
                let path = a.out.join(format!("{}-{}.yaml", i + 1, file.layer));
                let write = |path: &std::path::Path, bytes: &[u8]| {
                    std::fs::write(path, bytes).map_err(|e| {
                        CliError::Failed(format!("cannot write {}: {e}", path.display()))
                    })
                };
                write(&path, file.text.as_bytes())?;
                files.push(path);
                // Derived configs, beside the file that names them relative to its folder.
                for (name, content) in &file.derived {
                    write(&a.out.join(name), content)?;
                }
                left_out.extend(file.left_out);
                create_secrets.extend(file.generated);
            }
            // A secret two layers mount is created once.
            create_secrets.sort();
            create_secrets.dedup();
            let report = Written {
                namespace: desired.namespace.clone(),
                environment: desired.environment.clone(),
                files,
                left_out,
                create_secrets,
                not_provisioned: desired
                    .provisions
                    .iter()
                    .flat_map(|p| {
                        p.logins
                            .iter()
                            .map(move |l| format!("{} on {}", p.describe(l), p.datastore))
                    })
                    .collect(),
            };
            match ctx.format {
                Format::Json => output::json(&report),
                Format::Human => {
                    for f in &report.files {
                        println!("{}", f.display());
                    }
                    if !report.create_secrets.is_empty() {
                        eprintln!(
                            "create the generated secrets first (random values, never shown):"
                        );
                        for name in &report.create_secrets {
                            eprintln!("  {}", sprocket_desired::compose::create_command(name));
                        }
                    }
                    for o in &report.left_out {
                        eprintln!(
                            "left out of the compose files: {} ({}): {}",
                            o.service, o.layer, o.reason
                        );
                    }
                    if !report.not_provisioned.is_empty() {
                        eprintln!(
                            "not made by the compose files: the datastore logins of `access` ({}); `docker stack deploy` cannot provision them — `sprocketctl up` does, or make them by hand with the passwords of the secrets above",
                            report.not_provisioned.join(", ")
                        );
                    }
                    let args: Vec<String> = report
                        .files
                        .iter()
                        .map(|f| format!("-c {}", cwd.join(f).display()))
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
    Ok(exit::OK)
}
