//! Before any service starts: the networks, configs and generated secrets the plan creates, for
//! every layer at once (cheap calls, and every service finds what it mounts when it starts).

use crate::output::Progress;
use sprocket_desired::labels as L;
use sprocket_desired::plan::{Kind, Plan};
use sprocket_desired::state::{versioned_secret_name, DesiredState};
use sprocket_docker::{Engine, EngineError, Refs};
use sprocket_secrets::value::generate;
use sprocket_spec::model::{Alphabet, SecretSource};
use std::collections::HashMap;

pub(super) async fn prepare(
    engine: &Engine,
    desired: &DesiredState,
    plan: &Plan,
    refs: &mut Refs,
    secret_lengths: &HashMap<String, (Alphabet, usize)>,
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
                    // Without Vault a generated secret lives only in Docker: version 1, made
                    // once, no fingerprint (its key would be kept in Vault).
                    if s.source != SecretSource::Generate || s.vault.is_some() {
                        continue;
                    }
                    let (alphabet, len) = secret_lengths
                        .get(&s.name)
                        .copied()
                        .unwrap_or((Alphabet::Alphanumeric, 32));
                    let value = generate(alphabet, len).map_err(|source| EngineError::Io {
                        action: "generate secret",
                        object: s.name.clone(),
                        source,
                    })?;
                    let name = versioned_secret_name(&s.prefix, 1);
                    let mut labels = s.labels.clone();
                    labels.insert(L::SECRET_VERSION.into(), "1".into());
                    let id = engine
                        .create_secret(&name, &labels, value.as_bytes())
                        .await?;
                    refs.secrets.insert(s.name.clone(), (name.clone(), id));
                    p.say(format!("  secret {}: generated (version 1)", s.name));
                }
                Kind::Service => {}
            }
        }
    }
    Ok(())
}
