//! The Vault step of `up`: initialise and unseal Vault, apply its declarative configuration
//! (mounts, policies, auth, the services' tokens as Docker secrets), and make the unseal agent's
//! material from the keyring. It runs as soon as the Vault service is up, beside the data
//! services that do not need it; what mounts a Vault-made secret waits for it.
//!
//! It works on its own copy of the secret references and hands back the new ones, so the
//! executor keeps starting other services while it runs.

use super::VaultStep;
use crate::output::Progress;
use crate::vault_lifecycle::VaultReport;
use sprocket_desired::plan::Observed;
use sprocket_desired::state::{DesiredState, ServiceSpec, UNSEAL_SECRET};
use sprocket_docker::{Engine, Refs};

/// What the Vault step leaves behind.
pub(super) struct VaultDone {
    pub report: VaultReport,
    /// The references with every Vault-made secret's current version.
    pub refs: Refs,
    /// The keys were at hand and Vault unsealed: the current versions of Vault-made secrets are
    /// known, so any other version is stale.
    pub current: bool,
}

pub(super) fn mounts_unseal(s: &ServiceSpec) -> bool {
    s.secrets.iter().any(|f| f.name == UNSEAL_SECRET)
}

/// The first secret made from Vault that `s` mounts and that does not exist (yet).
pub(super) fn lacking_vault_material<'s>(
    d: &DesiredState,
    s: &'s ServiceSpec,
    refs: &Refs,
) -> Option<&'s str> {
    s.secrets
        .iter()
        .find(|f| d.is_vault_made(&f.name) && !refs.secrets.contains_key(&f.name))
        .map(|f| f.name.as_str())
}

/// Mounts a Vault-made secret in a version other than the current one.
pub(super) fn mounts_stale_material(
    d: &DesiredState,
    s: &ServiceSpec,
    observed: &Observed,
    refs: &Refs,
) -> bool {
    let Some(o) = observed.services.iter().find(|o| o.spec.name == s.name) else {
        return false;
    };
    s.secrets
        .iter()
        .filter(|f| d.is_vault_made(&f.name))
        .any(
            |f| match (o.secret_ids.get(&f.name), refs.secrets.get(&f.name)) {
                (Some(live), Some((_, current))) => live != current,
                (None, Some(_)) => true,
                _ => false,
            },
        )
}

pub(super) async fn run(
    engine: &Engine,
    step: &VaultStep,
    desired: &DesiredState,
    observed: &Observed,
    mut refs: Refs,
    prune: bool,
    p: Progress,
) -> Result<VaultDone, String> {
    let ns = desired.namespace.as_str();
    let agent = desired.services().find(|s| mounts_unseal(s));
    let (mut v, mut keys) = crate::vault_lifecycle::ensure(
        &step.client,
        &step.config,
        ns,
        step.identity.as_deref(),
        agent.is_some() || desired.vault.is_some(),
        p,
    )
    .await
    .map_err(|e| e.to_string())?;
    // The declarative configuration: mounts, policies, auth, the services' tokens.
    match (&desired.vault, keys.as_mut()) {
        (Some(d), Some(k)) if !v.sealed => {
            let c = &step.client;
            let session = crate::vault_config::session(c, &step.config, k, true, p).await?;
            let (o, current) = crate::vault_config::observe(c, &session.token, &observed.secrets)
                .await
                .map_err(|e| e.to_string())?;
            for (svc, s) in current {
                refs.secrets.insert(
                    sprocket_desired::state::token_secret(&svc),
                    (s.name.clone(), s.id.clone()),
                );
            }
            let vp = sprocket_desired::vault::plan(d, &o);
            let applied = crate::vault_config::apply(
                c,
                &session.token,
                d,
                &vp,
                prune,
                desired,
                engine,
                &observed.secrets,
                &mut refs,
                p,
            )
            .await?;
            if applied.changes.is_empty() && applied.blocked.is_empty() {
                p.say("vault: configuration as the spec wants it");
            }
            v.config = Some(applied);
            // The platform's secrets: source → Vault → Docker secrets.
            let synced = crate::secrets_sync::sync(
                c.with_token(&session.token),
                ns,
                &step.secrets,
                &step.rotate,
                p,
            )
            .await
            .map_err(|e| e.to_string())?;
            super::secrets::from_vault(engine, desired, observed, &synced, &mut refs, p).await?;
            v.secrets = Some(synced.secrets);
        }
        (Some(_), _) => {
            let missing: Vec<&str> = desired
                .services()
                .filter(|s| {
                    lacking_vault_material(desired, s, &refs).is_some() && !mounts_unseal(s)
                })
                .map(|s| s.short_name.as_str())
                .collect();
            if !missing.is_empty() {
                return Err(format!(
                    "the Vault tokens or secrets {} mount cannot be made from Vault: {}",
                    missing.join(", "),
                    crate::vault_lifecycle::keys_unavailable(&v)
                ));
            }
            if v.initialized {
                v.notes.push(format!(
                    "configuration and secrets not synced: {}",
                    crate::vault_lifecycle::keys_unavailable(&v)
                ));
            }
        }
        _ => {}
    }
    let current = keys.is_some() && !v.sealed;
    if let (Some(_), Some(k)) = (agent, keys) {
        let material = crate::agent::UnsealMaterial {
            keys: k
                .unseal_keys_b64
                .iter()
                .take(k.threshold as usize)
                .cloned()
                .collect(),
            fingerprint: k.fingerprint(),
        };
        let secret = desired
            .layers
            .iter()
            .flat_map(|l| &l.secrets)
            .find(|s| s.name == UNSEAL_SECRET)
            .expect("desired state declares it");
        let name = format!("{}-{}", secret.prefix, material.fingerprint);
        if let Some(existing) = observed.secrets.iter().find(|s| s.name == name) {
            refs.secrets
                .insert(UNSEAL_SECRET.into(), (name, existing.id.clone()));
        } else {
            let value = serde_json::to_vec(&material).expect("serialisable");
            let id = engine
                .create_secret(&name, &secret.labels, &value)
                .await
                .map_err(|e| e.to_string())?;
            refs.secrets.insert(UNSEAL_SECRET.into(), (name, id));
            p.say(format!(
                "  secret {UNSEAL_SECRET}: made from the keyring (fingerprint {})",
                material.fingerprint
            ));
        }
    }
    for n in &v.notes {
        p.say(format!("vault: {n}"));
    }
    Ok(VaultDone {
        report: v,
        refs,
        current,
    })
}
