//! `secrets ls`: every secret the enabled services mount, as the swarm holds it — source, Vault
//! path, the current version and its keyed fingerprint (from the Docker secret's labels, which
//! `up` wrote from Vault), its age, and the version each consumer's *running task* mounts (a
//! service spec can point at a new version while an old task still runs: this shows the truth).
//! Reads the engine only; no Vault access, no value.

use super::{live, Ctx};
use crate::error::CliError;
use crate::exit;
use crate::output::{self, Format};
use serde::Serialize;
use sprocket_desired::labels as L;
use sprocket_desired::plan::ObservedObject;
use sprocket_spec::model::SecretSource;

#[derive(Serialize)]
struct Row {
    secret: String,
    /// `generate`, `vault`, `vault-token`, `fingerprint-key`, `manual`, or the environment's
    /// source (`doppler:sprocket/prd`, `dotenv:…`, `env`) for a secret taken from it.
    source: String,
    /// `mount/path#field` in Vault, for secrets kept there.
    vault_path: Option<String>,
    /// The newest version the swarm holds, and its Docker secret.
    version: Option<u64>,
    docker_secret: Option<String>,
    fingerprint: Option<String>,
    created_at: Option<String>,
    consumers: Vec<Consumer>,
}

#[derive(Serialize)]
struct Consumer {
    service: String,
    /// One per running task: the version its container mounts (`None`: not a versioned one).
    tasks: Vec<TaskVersion>,
}

#[derive(Serialize)]
struct TaskVersion {
    task: String,
    version: Option<u64>,
    docker_secret: Option<String>,
    /// It mounts the newest version.
    current: bool,
}

fn version(o: &ObservedObject) -> Option<u64> {
    o.secret_version()
}

pub async fn run(ctx: &Ctx) -> Result<i32, CliError> {
    let l = live(ctx).await?;
    let (d, observed) = (&l.desired, &l.observed);
    let ids: Vec<String> = observed.services.iter().map(|s| s.id.clone()).collect();
    let tasks = l.engine.tasks_of(&ids).await?;
    let mut rows = Vec::new();
    for r in d.layers.iter().flat_map(|l| &l.secrets) {
        let versions: Vec<&ObservedObject> = observed
            .secrets
            .iter()
            .filter(|o| o.label(L::NAME) == Some(r.name.as_str()))
            .collect();
        let newest = versions.iter().max_by_key(|o| version(o)).copied();
        let mut consumers = Vec::new();
        for s in d
            .services()
            .filter(|s| s.secrets.iter().any(|f| f.name == r.name))
        {
            let Some(o) = observed.services.iter().find(|o| o.spec.name == s.name) else {
                consumers.push(Consumer {
                    service: s.short_name.clone(),
                    tasks: Vec::new(),
                });
                continue;
            };
            let running = tasks
                .get(&o.id)
                .into_iter()
                .flatten()
                .filter(|t| t.desired_state == "running" && t.is_running());
            let mut tv = Vec::new();
            for t in running {
                let mounted = versions
                    .iter()
                    .find(|v| t.secret_ids.contains(&v.id))
                    .copied();
                tv.push(TaskVersion {
                    task: t.id.chars().take(12).collect(),
                    version: mounted.and_then(version),
                    docker_secret: mounted.map(|m| m.name.clone()),
                    current: mounted.is_some() && mounted.map(|m| &m.id) == newest.map(|n| &n.id),
                });
            }
            consumers.push(Consumer {
                service: s.short_name.clone(),
                tasks: tv,
            });
        }
        rows.push(Row {
            secret: r.name.clone(),
            source: match (r.source, &l.loaded.platform.environment.secrets_from) {
                (SecretSource::Doppler, Some(from)) => from.to_string(),
                (other, _) => serde_json::to_value(other)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default(),
            },
            vault_path: r.vault.as_ref().map(|v| v.to_string()),
            version: newest.and_then(version),
            docker_secret: newest.map(|n| n.name.clone()),
            fingerprint: newest
                .and_then(|n| n.label(L::SECRET_FINGERPRINT))
                .map(str::to_string),
            created_at: newest.and_then(|n| n.created_at.clone()),
            consumers,
        });
    }
    match ctx.format {
        Format::Json => output::json(&rows),
        Format::Human => {
            let mut t = comfy_table::Table::new();
            t.load_preset(comfy_table::presets::NOTHING);
            t.set_header([
                "SECRET",
                "SOURCE",
                "VAULT PATH",
                "VERSION",
                "FINGERPRINT",
                "MADE",
                "CONSUMERS (running tasks' version)",
            ]);
            for r in &rows {
                let consumers: Vec<String> = r
                    .consumers
                    .iter()
                    .map(|c| {
                        let vs: Vec<String> = c
                            .tasks
                            .iter()
                            .map(|t| match (t.version, t.current) {
                                (Some(v), true) => format!("v{v}"),
                                (Some(v), false) => format!("v{v} (old)"),
                                (None, _) => t
                                    .docker_secret
                                    .clone()
                                    .unwrap_or_else(|| "not mounted".into()),
                            })
                            .collect();
                        if vs.is_empty() {
                            format!("{}: no running task", c.service)
                        } else {
                            format!("{}: {}", c.service, vs.join(", "))
                        }
                    })
                    .collect();
                t.add_row([
                    r.secret.clone(),
                    r.source.clone(),
                    r.vault_path.clone().unwrap_or_else(|| "—".into()),
                    r.version.map(|v| format!("v{v}")).unwrap_or_else(|| {
                        if r.docker_secret.is_some() {
                            "—".into()
                        } else {
                            "missing".into()
                        }
                    }),
                    r.fingerprint.clone().unwrap_or_else(|| "—".into()),
                    r.created_at
                        .as_deref()
                        .map(|c| c.chars().take(19).collect())
                        .unwrap_or_else(|| "—".into()),
                    consumers.join("; "),
                ]);
            }
            println!("{t}");
        }
    }
    Ok(exit::OK)
}
