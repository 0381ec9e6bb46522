//! `down`: remove the platform, or one layer, in reverse layer order. Only objects carrying our
//! ownership labels for this namespace are touched. Volumes (data) stay unless `--volumes`.

use super::{live, Ctx};
use crate::apply::remove_network_when_free;
use crate::exit;
use crate::output::{self, Format};
use serde::Serialize;
use sprocket_desired::labels as L;
use std::time::{Duration, Instant};

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

pub async fn run(ctx: &Ctx, a: Args) -> i32 {
    let super::Live {
        desired,
        engine,
        observed,
        ..
    } = match live(ctx).await {
        Ok(l) => l,
        Err(code) => return code,
    };
    let ns = desired.namespace.clone();
    let layer_names: Vec<String> = desired.layers.iter().map(|l| l.name.clone()).collect();
    let selected: Vec<String> = match &a.layer {
        Some(l) if !layer_names.contains(l) => {
            return super::fail(
                ctx,
                &format!(
                    "layer `{l}` is not in the spec; layers: {}",
                    layer_names.join(", ")
                ),
                exit::INVALID,
            )
        }
        Some(l) => vec![l.clone()],
        None => layer_names.clone(),
    };
    let started = Instant::now();
    let rank = |l: Option<&str>| {
        l.and_then(|l| layer_names.iter().position(|x| x == l))
            .unwrap_or(usize::MAX)
    };
    if let Some(l) = &a.layer {
        let mine = rank(Some(l));
        let later: Vec<&str> = observed
            .services
            .iter()
            .filter(|s| rank(s.layer.as_deref()) > mine && rank(s.layer.as_deref()) != usize::MAX)
            .map(|s| s.spec.name.as_str())
            .collect();
        if !later.is_empty() {
            return super::fail(ctx, &format!("later layers still run services that may use layer `{l}`: {}. Take them down first (`sprocketctl down --layer <later>`), or run `down` without --layer.", later.join(", ")), exit::INVALID);
        }
    }
    let in_scope = |l: Option<&str>| match l {
        Some(l) => selected.iter().any(|s| s == l),
        None => a.layer.is_none(),
    };
    let p = ctx.progress;
    let mut removed = Vec::new();
    let mut services: Vec<_> = observed
        .services
        .iter()
        .filter(|s| in_scope(s.layer.as_deref()))
        .collect();
    services.sort_by_key(|s| std::cmp::Reverse(rank(s.layer.as_deref())));
    let result = async {
        for s in &services {
            engine.remove_service(&s.id, &s.spec.name).await?;
            p.say(format!("service {}: removed", s.spec.name));
            removed.push(format!("service {}", s.spec.name));
        }
        for n in observed
            .networks
            .iter()
            .filter(|n| in_scope(n.label(L::LAYER)))
        {
            if remove_network_when_free(&engine, &n.id, &n.name).await? {
                p.say(format!("network {}: removed", n.name));
                removed.push(format!("network {}", n.name));
            }
        }
        for c in observed
            .configs
            .iter()
            .filter(|c| in_scope(c.label(L::LAYER)))
        {
            engine.remove_config(&c.id, &c.name).await?;
            removed.push(format!("config {}", c.name));
        }
        if a.volumes {
            // Volumes are freed when the task containers are gone.
            let until = Instant::now() + Duration::from_secs(60);
            while a.layer.is_none() && engine.containers(&ns).await? > 0 && Instant::now() < until {
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            for v in engine.volumes(&ns).await? {
                let layer = engine
                    .docker()
                    .inspect_volume(&v)
                    .await
                    .ok()
                    .and_then(|x| x.labels.get(L::LAYER).cloned());
                if !in_scope(layer.as_deref()) {
                    continue;
                }
                let until = Instant::now() + Duration::from_secs(60);
                loop {
                    match engine.remove_volume(&v).await {
                        Ok(()) => break,
                        Err(e) if e.to_string().contains("in use") && Instant::now() < until => {
                            tokio::time::sleep(Duration::from_millis(250)).await
                        }
                        Err(e) => return Err(e),
                    }
                }
                p.say(format!("volume {v}: removed"));
                removed.push(format!("volume {v}"));
            }
            if a.layer.is_none() {
                for s in &observed.secrets {
                    engine.remove_secret(&s.id, &s.name).await?;
                    removed.push(format!("secret {}", s.name));
                }
            }
        }
        Ok::<(), sprocket_docker::EngineError>(())
    }
    .await;
    if let Err(e) = result {
        return super::fail(
            ctx,
            &format!(
                "{e} (removed so far: {}); run `down` again to continue",
                removed.len()
            ),
            exit::ERROR,
        );
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
    exit::OK
}
