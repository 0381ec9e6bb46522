//! Docker secrets made from Vault: after the Vault step's sync, each secret the enabled services
//! mount gets a Docker secret for its current version, `<ns>_<name>-v<version>`, labelled with
//! the version and the keyed fingerprint. Its consumers are then repointed by the executor (a
//! mounted version other than the current one is stale) and the old version is removed once
//! they converged ([`super::cleanup::replaced_material`]).

use crate::output::Progress;
use crate::secrets_sync::SyncReport;
use sprocket_desired::labels as L;
use sprocket_desired::plan::Observed;
use sprocket_desired::state::versioned_secret_name;
use sprocket_desired::DesiredState;
use sprocket_docker::{Engine, Refs};

/// Makes (or finds) the Docker secret of every synced secret's current version and points
/// `refs` at it. A Docker secret with the version's name but another fingerprint holds a value
/// Vault no longer has (Vault was reset, or restored from a backup): it is replaced when nothing
/// mounts it; while something does, the current value takes the version's name with its
/// fingerprint's first digits (`…-v3-r1a2b3c`), its consumers move to it, and the stale one goes
/// once they did ([`super::cleanup::replaced_material`]).
pub(super) async fn from_vault(
    engine: &Engine,
    desired: &DesiredState,
    observed: &Observed,
    synced: &SyncReport,
    refs: &mut Refs,
    p: Progress,
) -> Result<(), String> {
    for s in &synced.secrets {
        // The fingerprints' key has a Docker secret only where a service mounts it.
        let Some(r) = desired.secret(&s.secret) else {
            continue;
        };
        let version = s.version.to_string();
        // Ours already, under whichever name.
        if let Some(o) = observed.secrets.iter().find(|o| {
            o.label(L::NAME) == Some(s.secret.as_str())
                && o.label(L::SECRET_VERSION) == Some(version.as_str())
                && o.label(L::SECRET_FINGERPRINT) == Some(s.fingerprint.as_str())
                && o.name.starts_with(&r.prefix)
        }) {
            refs.secrets
                .insert(s.secret.clone(), (o.name.clone(), o.id.clone()));
            continue;
        }
        let mut name = versioned_secret_name(&r.prefix, s.version);
        if let Some(o) = observed.secrets.iter().find(|o| o.name == name) {
            if let Err(e) = engine.remove_secret(&o.id, &o.name).await {
                let beside = format!("{name}-r{}", &s.fingerprint[..s.fingerprint.len().min(7)]);
                if beside.len() > sprocket_spec::names::MAX_SECRET_NAME {
                    return Err(format!(
                        "Docker secret {name} holds another value than version {} of `{}` in Vault (was Vault's data reset?), and cannot be replaced: {e}\n  hint: stop the services that mount it, or remove it (`docker secret rm {name}`), and run `up` again",
                        s.version, s.secret
                    ));
                }
                p.say(format!(
                    "  secret {}: version {} in Vault is another value than Docker secret {name} (Vault was reset or restored); made beside it",
                    s.secret, s.version
                ));
                name = beside;
            }
        }
        let mut labels = r.labels.clone();
        labels.insert(L::SECRET_VERSION.into(), s.version.to_string());
        labels.insert(L::SECRET_FINGERPRINT.into(), s.fingerprint.clone());
        let id = engine
            .create_secret(&name, &labels, s.value.as_bytes())
            .await
            .map_err(|e| e.to_string())?;
        p.say(format!(
            "  secret {}: version {} made from Vault (fingerprint {})",
            s.secret, s.version, s.fingerprint
        ));
        refs.secrets.insert(s.secret.clone(), (name, id));
    }
    Ok(())
}
