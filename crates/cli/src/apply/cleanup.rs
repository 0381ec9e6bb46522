//! Removing what we own and no longer need: after a successful `up` (stale config versions,
//! replaced Vault-made secrets, and with `--prune` what the spec dropped), and `down`'s
//! teardown. Only objects carrying our ownership labels are ever passed in here.

use crate::output::Progress;
use sprocket_desired::labels as L;
use sprocket_desired::plan::{Kind, Observed, Plan};
use sprocket_desired::state::DesiredState;
use sprocket_docker::{Engine, EngineError, Refs};
use std::collections::HashSet;
use std::time::{Duration, Instant};

/// Removes config versions we own that no service uses any more (configs are immutable, so every
/// change leaves the old version behind). A config is still used when the spec wants it, or when
/// a service the spec dropped still runs (not pruned): those are never touched, so a no-op `up`
/// makes no call at all.
pub(super) async fn stale_configs(
    engine: &Engine,
    desired: &DesiredState,
    observed: &Observed,
    pruned: bool,
) -> Vec<String> {
    let used = configs_in_use(desired, observed, pruned);
    let mut removed = Vec::new();
    // A provisioning's markers are not mounted: the provisioning step keeps and removes them,
    // but for a datastore no longer wanted here, only `--prune` does (with its logins' owner).
    let stale_marker = |ds: &str| pruned && !desired.provisions.iter().any(|p| p.datastore == ds);
    for c in observed.configs.iter().filter(|c| {
        c.label(sprocket_desired::provision::PROVISIONED)
            .is_none_or(stale_marker)
    }) {
        if !used.contains(c.name.as_str()) && engine.remove_config(&c.id, &c.name).await.is_ok() {
            removed.push(format!("config {}", c.name));
        }
    }
    removed
}

/// Config names still in use: wanted by the spec, or mounted by an owned service that the spec
/// dropped but that still runs (without `--prune`).
fn configs_in_use<'a>(
    desired: &'a DesiredState,
    observed: &'a Observed,
    pruned: bool,
) -> HashSet<&'a str> {
    let mut used: HashSet<&str> = desired
        .layers
        .iter()
        .flat_map(|l| l.configs.iter().map(|c| c.name.as_str()))
        .collect();
    if !pruned {
        let wanted: HashSet<&str> = desired.services().map(|s| s.name.as_str()).collect();
        for s in observed
            .services
            .iter()
            .filter(|s| !wanted.contains(s.spec.name.as_str()))
        {
            used.extend(s.spec.configs.iter().map(|c| c.name.as_str()));
        }
    }
    used
}

/// Removes versions of Vault-made secrets (unseal material, service tokens, the spec's secrets
/// kept in Vault) that a newer one replaced, and with `--prune` every owned secret no enabled
/// service mounts any more (a dropped service's token, a secret the spec dropped). One still
/// mounted by a task that is shutting down is refused by the engine and goes on the next run.
pub(super) async fn replaced_material(
    engine: &Engine,
    desired: &DesiredState,
    observed: &Observed,
    refs: &Refs,
    refs_current: bool,
    prune: bool,
) -> Vec<String> {
    let wanted: HashSet<&str> = desired
        .layers
        .iter()
        .flat_map(|l| l.secrets.iter().map(|s| s.name.as_str()))
        .collect();
    let mut removed = Vec::new();
    for s in &observed.secrets {
        let Some(logical) = s.label(L::NAME) else {
            continue;
        };
        let replaced = desired.is_vault_made(logical)
            && refs_current
            && refs
                .secrets
                .get(logical)
                .is_some_and(|(current, _)| current != &s.name);
        let dropped = prune && !wanted.contains(logical);
        if (replaced || dropped) && engine.remove_secret(&s.id, &s.name).await.is_ok() {
            removed.push(format!("secret {}", s.name));
        }
    }
    removed
}

/// `--prune`: owned services the spec no longer wants, then their networks.
pub(super) async fn prune(
    engine: &Engine,
    plan: &Plan,
    p: Progress,
) -> Result<Vec<String>, EngineError> {
    let mut removed = Vec::new();
    for c in plan.prune.iter().filter(|c| c.kind == Kind::Service) {
        engine
            .remove_service(c.id.as_deref().unwrap_or(&c.name), &c.name)
            .await?;
        p.say(format!("  service {}: removed (--prune)", c.name));
        removed.push(format!("service {}", c.name));
    }
    for c in plan.prune.iter().filter(|c| c.kind == Kind::Network) {
        let id = c.id.as_deref().unwrap_or(&c.name);
        if remove_network_when_free(engine, id, &c.name).await? {
            p.say(format!("  network {}: removed (--prune)", c.name));
            removed.push(format!("network {}", c.name));
        }
    }
    Ok(removed)
}

/// Networks and volumes can only go once the tasks using them are gone, which Swarm does
/// asynchronously: retry while the engine says "in use", for up to a minute. `Ok(false)` when
/// the object is already gone.
async fn remove_when_free<F, Fut>(mut remove: F) -> Result<bool, EngineError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<(), EngineError>>,
{
    let until = Instant::now() + Duration::from_secs(60);
    loop {
        match remove().await {
            Ok(()) => return Ok(true),
            Err(e) if e.is_not_found() => return Ok(false),
            Err(e) if e.is_in_use() && Instant::now() < until => {
                tokio::time::sleep(Duration::from_millis(250)).await
            }
            Err(e) => return Err(e),
        }
    }
}

async fn remove_network_when_free(
    engine: &Engine,
    id: &str,
    name: &str,
) -> Result<bool, EngineError> {
    remove_when_free(|| engine.remove_network(id, name)).await
}

/// Waits (up to a minute) until the removed networks leave this node's list: Swarm removes a
/// network at once, but its local copy lingers until the containers on it have stopped, and an
/// `up` meanwhile would take it for present and fail to create services on it. `down` is done
/// when what it removed is gone.
async fn wait_networks_released(
    engine: &Engine,
    namespace: &str,
    removed: &[String],
    p: Progress,
) -> Result<(), EngineError> {
    let until = Instant::now() + Duration::from_secs(60);
    let mut said = false;
    loop {
        let listed = engine.network_names(&format!("{namespace}_")).await?;
        let lingering = removed.iter().filter(|n| listed.contains(n)).count();
        if lingering == 0 || Instant::now() >= until {
            return Ok(());
        }
        if !said {
            p.say(format!(
                "waiting for {lingering} network(s) to be released as their tasks stop"
            ));
            said = true;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// What `down` takes away: services of the layers in scope (later layers first), their
/// networks and configs, and with `volumes` their named volumes (and, for the whole platform,
/// every secret we made).
pub struct Teardown<'a> {
    pub namespace: &'a str,
    /// Layer names in spec order.
    pub layers: &'a [String],
    /// One layer, or all of them.
    pub only: Option<&'a str>,
    pub volumes: bool,
}

impl Teardown<'_> {
    fn rank(&self, l: Option<&str>) -> usize {
        l.and_then(|l| self.layers.iter().position(|x| x == l))
            .unwrap_or(usize::MAX)
    }

    fn in_scope(&self, l: Option<&str>) -> bool {
        match (l, self.only) {
            (Some(l), Some(only)) => l == only,
            (Some(l), None) => self.layers.iter().any(|x| x == l),
            (None, only) => only.is_none(),
        }
    }

    /// Services of later layers that still run and may use the selected layer.
    pub fn blockers<'o>(&self, observed: &'o Observed) -> Vec<&'o str> {
        let Some(only) = self.only else {
            return vec![];
        };
        let mine = self.rank(Some(only));
        observed
            .services
            .iter()
            .filter(|s| {
                let r = self.rank(s.layer.as_deref());
                r > mine && r != usize::MAX
            })
            .map(|s| s.spec.name.as_str())
            .collect()
    }

    /// Removes, appending what went to `removed` as it goes (so a failure still says how far it
    /// got).
    pub async fn run(
        &self,
        engine: &Engine,
        observed: &Observed,
        removed: &mut Vec<String>,
        p: Progress,
    ) -> Result<(), EngineError> {
        let mut services: Vec<_> = observed
            .services
            .iter()
            .filter(|s| self.in_scope(s.layer.as_deref()))
            .collect();
        services.sort_by_key(|s| std::cmp::Reverse(self.rank(s.layer.as_deref())));
        for s in &services {
            engine.remove_service(&s.id, &s.spec.name).await?;
            p.say(format!("service {}: removed", s.spec.name));
            removed.push(format!("service {}", s.spec.name));
        }
        let mut gone = Vec::new();
        for n in observed
            .networks
            .iter()
            .filter(|n| self.in_scope(n.label(L::LAYER)))
        {
            if remove_network_when_free(engine, &n.id, &n.name).await? {
                p.say(format!("network {}: removed", n.name));
                removed.push(format!("network {}", n.name));
                gone.push(n.name.clone());
            }
        }
        wait_networks_released(engine, self.namespace, &gone, p).await?;
        for c in observed
            .configs
            .iter()
            .filter(|c| self.in_scope(c.label(L::LAYER)))
        {
            engine.remove_config(&c.id, &c.name).await?;
            removed.push(format!("config {}", c.name));
        }
        if !self.volumes {
            return Ok(());
        }
        // Volumes are freed when the task containers are gone.
        let until = Instant::now() + Duration::from_secs(60);
        while self.only.is_none()
            && engine.containers(self.namespace).await? > 0
            && Instant::now() < until
        {
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        for v in engine.volumes(self.namespace).await? {
            if !self.in_scope(v.layer.as_deref()) {
                continue;
            }
            if remove_when_free(|| engine.remove_volume(&v.name)).await? {
                p.say(format!("volume {}: removed", v.name));
                removed.push(format!("volume {}", v.name));
            }
        }
        if self.only.is_none() {
            for s in &observed.secrets {
                engine.remove_secret(&s.id, &s.name).await?;
                removed.push(format!("secret {}", s.name));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn down_of_one_layer_touches_only_that_layer_and_never_unlabelled_objects() {
        let layers = [
            "infrastructure".to_string(),
            "data".into(),
            "platform".into(),
        ];
        let t = Teardown {
            namespace: "ns",
            layers: &layers,
            only: Some("data"),
            volumes: false,
        };
        assert!(t.in_scope(Some("data")));
        assert!(!t.in_scope(Some("platform")));
        assert!(
            !t.in_scope(None),
            "an object without a layer label only goes with all"
        );
        let all = Teardown { only: None, ..t };
        assert!(all.in_scope(Some("platform")) && all.in_scope(None));
        assert!(!all.in_scope(Some("a-layer-the-spec-dropped")));
        // Later layers go first.
        assert!(all.rank(Some("platform")) > all.rank(Some("data")));
        assert_eq!(all.rank(None), usize::MAX);
    }
}
