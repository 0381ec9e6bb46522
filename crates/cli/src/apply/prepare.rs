//! Before any service starts: the networks, configs and generated secrets the plan creates, for
//! every layer at once (cheap calls, and every service finds what it mounts when it starts).

use crate::output::Progress;
use sprocket_desired::plan::{Kind, Plan};
use sprocket_desired::state::{short_hash, DesiredState};
use sprocket_docker::{Engine, EngineError, Refs};
use sprocket_spec::model::SecretSource;
use std::collections::HashMap;

pub(super) async fn prepare(
    engine: &Engine,
    desired: &DesiredState,
    plan: &Plan,
    refs: &mut Refs,
    secret_lengths: &HashMap<String, usize>,
    p: Progress,
) -> Result<(), EngineError> {
    for (layer, lp) in desired.layers.iter().zip(&plan.layers) {
        for c in &lp.changes {
            match c.kind {
                Kind::Network => {
                    let n = layer
                        .networks
                        .iter()
                        .find(|n| n.name == c.name)
                        .expect("plan follows desired");
                    engine.create_network(n).await?;
                    p.say(format!("  network {}: created", n.name));
                }
                Kind::Config => {
                    let cfg = layer
                        .configs
                        .iter()
                        .find(|x| x.name == c.name)
                        .expect("plan follows desired");
                    let id = engine.create_config(cfg).await?;
                    refs.configs.insert(cfg.name.clone(), id);
                    p.say(format!("  config {}: created", cfg.name));
                }
                Kind::Secret => {
                    let s = layer
                        .secrets
                        .iter()
                        .find(|x| x.name == c.name)
                        .expect("plan follows desired");
                    if s.source != SecretSource::Generate {
                        continue;
                    }
                    let len = secret_lengths.get(&s.name).copied().unwrap_or(32);
                    let value = random_secret(len).map_err(|source| EngineError::Io {
                        action: "generate secret",
                        object: s.name.clone(),
                        source,
                    })?;
                    let fingerprint = short_hash(&value);
                    let name = format!("{}-{fingerprint}", s.prefix);
                    let id = engine.create_secret(&name, &s.labels, &value).await?;
                    refs.secrets.insert(s.name.clone(), (name.clone(), id));
                    p.say(format!(
                        "  secret {}: generated (fingerprint {fingerprint})",
                        s.name
                    ));
                }
                Kind::Service => {}
            }
        }
    }
    Ok(())
}

/// A random alphanumeric secret from the kernel's CSPRNG.
fn random_secret(len: usize) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut f = std::fs::File::open("/dev/urandom")?;
    let mut out = Vec::with_capacity(len);
    let mut buf = [0u8; 64];
    while out.len() < len {
        f.read_exact(&mut buf)?;
        // Rejection sampling keeps every character equally likely.
        out.extend(
            buf.iter()
                .filter(|b| **b < 248)
                .map(|b| ALPHABET[(*b % 62) as usize])
                .take(len - out.len()),
        );
    }
    Ok(out)
}
