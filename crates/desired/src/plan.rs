//! Desired vs observed → the plan: per layer, what to create, update (field by field) and, with
//! `--prune`, delete. Pure; the Docker adapter supplies [`Observed`] in the same normalised form
//! as the desired state, so a diff only shows what we would really change.

use crate::labels as L;
use crate::state::{DesiredState, ServiceSpec};
use serde::Serialize;
use serde_json::Value;
use sprocket_spec::model::SecretSource;
use std::collections::BTreeMap;

/// What the swarm holds of this namespace (objects carrying our ownership labels only).
#[derive(Debug, Clone, Default, Serialize)]
pub struct Observed {
    pub services: Vec<ObservedService>,
    pub networks: Vec<ObservedObject>,
    pub configs: Vec<ObservedObject>,
    pub secrets: Vec<ObservedObject>,
    /// Networks, configs and services of the namespace's name prefix that do **not** carry our
    /// ownership labels (made by `docker stack deploy` of something else, or by hand). Never
    /// changed; a desired object of the same name blocks the plan.
    pub foreign: Vec<ForeignObject>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ForeignObject {
    pub kind: Kind,
    pub id: String,
    pub name: String,
    pub labels: BTreeMap<String, String>,
}

/// A desired object whose name is taken by one we do not own: `up` refuses before any change.
#[derive(Debug, Clone, Serialize)]
pub struct Conflict {
    pub kind: Kind,
    pub name: String,
    /// Who seems to own it, from its labels.
    pub owner: String,
    /// What to do about it.
    pub fix: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct ObservedService {
    pub id: String,
    pub version: u64,
    pub spec: ServiceSpec,
    pub layer: Option<String>,
    pub updated_at: Option<String>,
    /// Swarm's update status (`updating`, `completed`, `rollback_completed`, `paused` …).
    pub update_state: Option<String>,
    /// Logical secret name → id of the Docker secret version it mounts (not part of the diff:
    /// versions of Vault-made secrets are compared by the Vault step).
    #[serde(skip)]
    pub secret_ids: BTreeMap<String, String>,
}

impl ObservedService {
    /// Kept by a step of a run, not by the spec: a check's probe task, the scheduled backups'
    /// runner. Never an orphan the plan prunes.
    pub fn kept_by_a_step(&self) -> bool {
        self.spec.labels.contains_key(crate::labels::CHECK)
            || self.spec.labels.contains_key(crate::labels::SCHEDULE)
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct ObservedObject {
    pub id: String,
    pub name: String,
    pub labels: BTreeMap<String, String>,
    /// When the engine made it (secrets only: their age).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created_at: Option<String>,
}

impl Observed {
    /// Each secret's newest Docker secret, by its logical name (`io.sprocket.name`): the highest
    /// version label, else the first found (an operator's manual secret has none).
    pub fn newest_secrets(&self) -> std::collections::HashMap<&str, &ObservedObject> {
        let version = |s: &ObservedObject| s.secret_version().unwrap_or(0);
        let mut newest: std::collections::HashMap<&str, &ObservedObject> = Default::default();
        for s in &self.secrets {
            if let Some(logical) = s.label(L::NAME) {
                let e = newest.entry(logical).or_insert(s);
                if version(s) > version(e) {
                    *e = s;
                }
            }
        }
        newest
    }
}

impl ObservedObject {
    pub fn label(&self, k: &str) -> Option<&str> {
        self.labels.get(k).map(String::as_str)
    }

    /// A secret's version label (`None`: not a versioned one, e.g. an operator's).
    pub fn secret_version(&self) -> Option<u64> {
        self.label(L::SECRET_VERSION).and_then(|v| v.parse().ok())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Network,
    Config,
    Secret,
    Service,
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Kind::Network => "network",
            Kind::Config => "config",
            Kind::Secret => "secret",
            Kind::Service => "service",
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Create,
    Update,
    Delete,
}

#[derive(Debug, Clone, Serialize)]
pub struct Change {
    pub kind: Kind,
    pub name: String,
    pub action: Action,
    /// Field-level differences of an update: `before` is live, `after` is desired.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<FieldDiff>,
    /// The engine's id of the object, for updates and deletes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct FieldDiff {
    pub path: String,
    pub before: Option<Value>,
    pub after: Option<Value>,
}

#[derive(Debug, Clone, Serialize)]
pub struct LayerPlan {
    pub name: String,
    pub changes: Vec<Change>,
    /// Services already as desired.
    pub unchanged: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    pub namespace: String,
    pub environment: String,
    pub layers: Vec<LayerPlan>,
    /// Objects we own that the spec no longer wants here: deleted only with `--prune`.
    pub prune: Vec<Change>,
    /// Secrets that must exist before the services using them can start, but whose values
    /// sprocketctl cannot make (their source is Doppler or an operator).
    pub missing_secrets: Vec<String>,
    /// Objects the plan would create whose names are taken by objects we do not own.
    pub conflicts: Vec<Conflict>,
}

#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq, Eq)]
pub struct Summary {
    pub create: usize,
    pub update: usize,
    pub delete: usize,
}

impl Plan {
    pub fn summary(&self, prune: bool) -> Summary {
        let mut s = Summary::default();
        let extra = if prune { self.prune.iter() } else { [].iter() };
        for c in self.layers.iter().flat_map(|l| &l.changes).chain(extra) {
            match c.action {
                Action::Create => s.create += 1,
                Action::Update => s.update += 1,
                Action::Delete => s.delete += 1,
            }
        }
        s
    }

    pub fn is_empty(&self, prune: bool) -> bool {
        self.summary(prune) == Summary::default()
    }
}

/// Computes the plan. Engine rewrites are not changes: an image the engine pinned to a digest
/// compares equal to its tag, and fields we do not set are not compared at all.
pub fn plan(desired: &DesiredState, observed: &Observed) -> Plan {
    let mut layers = Vec::new();
    for layer in &desired.layers {
        let mut changes = Vec::new();
        let mut unchanged = Vec::new();
        for n in &layer.networks {
            if !observed.networks.iter().any(|o| o.name == n.name) {
                changes.push(create(Kind::Network, &n.name));
            }
        }
        for c in &layer.configs {
            if !observed.configs.iter().any(|o| o.name == c.name) {
                changes.push(create(Kind::Config, &c.name));
            }
        }
        for s in &layer.secrets {
            let exists = observed
                .secrets
                .iter()
                .any(|o| o.label(L::NAME) == Some(&s.name) && o.name.starts_with(&s.prefix));
            // Generated here only without Vault; with Vault, the Vault step makes it from there.
            if !exists && s.source == SecretSource::Generate && s.vault.is_none() {
                changes.push(create(Kind::Secret, &s.name));
            }
        }
        for s in &layer.services {
            match observed.services.iter().find(|o| o.spec.name == s.name) {
                None => changes.push(create(Kind::Service, &s.name)),
                Some(o) => {
                    let fields = diff_service(s, &o.spec);
                    if fields.is_empty() {
                        unchanged.push(s.name.clone());
                    } else {
                        changes.push(Change {
                            kind: Kind::Service,
                            name: s.name.clone(),
                            action: Action::Update,
                            fields,
                            id: Some(o.id.clone()),
                        });
                    }
                }
            }
        }
        layers.push(LayerPlan {
            name: layer.name.clone(),
            changes,
            unchanged,
        });
    }

    // Owned objects the spec does not want (removed from the spec, or disabled here).
    let mut prune = Vec::new();
    let wanted_services: Vec<&str> = desired.services().map(|s| s.name.as_str()).collect();
    let layer_rank = |l: Option<&str>| {
        l.and_then(|l| desired.layers.iter().position(|x| x.name == l))
            .unwrap_or(usize::MAX)
    };
    let mut orphans: Vec<&ObservedService> = observed
        .services
        .iter()
        .filter(|o| !wanted_services.contains(&o.spec.name.as_str()))
        .filter(|o| !o.kept_by_a_step())
        .collect();
    // Later layers first: consumers go before what they use.
    orphans.sort_by_key(|o| std::cmp::Reverse(layer_rank(o.layer.as_deref())));
    for o in orphans {
        prune.push(Change {
            kind: Kind::Service,
            name: o.spec.name.clone(),
            action: Action::Delete,
            fields: vec![],
            id: Some(o.id.clone()),
        });
    }
    let wanted_networks: Vec<&str> = desired
        .layers
        .iter()
        .flat_map(|l| l.networks.iter().map(|n| n.name.as_str()))
        .collect();
    for n in &observed.networks {
        if !wanted_networks.contains(&n.name.as_str()) {
            prune.push(Change {
                kind: Kind::Network,
                name: n.name.clone(),
                action: Action::Delete,
                fields: vec![],
                id: Some(n.id.clone()),
            });
        }
    }

    let mut missing_secrets: Vec<String> = desired
        .layers
        .iter()
        .flat_map(|l| &l.secrets)
        // Generated ones are made by `up`; Vault-made ones (the unseal agent's, the tokens, the
        // spec's secrets on a platform with Vault) by the Vault step of `up`.
        .filter(|s| !s.made_at_vault_step() && s.source != SecretSource::Generate)
        .filter(|s| {
            !observed
                .secrets
                .iter()
                .any(|o| o.label(L::NAME) == Some(&s.name) && o.name.starts_with(&s.prefix))
        })
        .map(|s| s.name.clone())
        .collect();
    missing_secrets.sort();
    missing_secrets.dedup();

    let conflicts = layers
        .iter()
        .flat_map(|l| &l.changes)
        .filter(|c| c.action == Action::Create)
        .filter_map(|c| {
            let f = observed
                .foreign
                .iter()
                .find(|f| f.kind == c.kind && f.name == c.name)?;
            Some(conflict(f))
        })
        .collect();

    Plan {
        namespace: desired.namespace.clone(),
        environment: desired.environment.clone(),
        layers,
        prune,
        missing_secrets,
        conflicts,
    }
}

fn conflict(f: &ForeignObject) -> Conflict {
    let owner = if let Some(ns) = f.labels.get(L::NAMESPACE) {
        format!("sprocketctl for namespace `{ns}`, or a copy of its labels")
    } else if let Some(stack) = f.labels.get(L::STACK_NAMESPACE) {
        format!("`docker stack deploy` of stack `{stack}` (it carries no io.sprocket labels)")
    } else if f.labels.is_empty() {
        "someone else: it carries no labels at all (made by hand?)".into()
    } else {
        format!(
            "someone else (labels: {})",
            f.labels.keys().cloned().collect::<Vec<_>>().join(", ")
        )
    };
    Conflict {
        kind: f.kind,
        name: f.name.clone(),
        owner,
        fix: format!(
            "sprocketctl never adopts what it did not make: remove it (`docker {} rm {}`, once nothing uses it), or deploy to another namespace",
            f.kind, f.name
        ),
    }
}

fn create(kind: Kind, name: &str) -> Change {
    Change {
        kind,
        name: name.to_string(),
        action: Action::Create,
        fields: vec![],
        id: None,
    }
}

/// Field-by-field differences between a desired service and the live one.
pub fn diff_service(desired: &ServiceSpec, live: &ServiceSpec) -> Vec<FieldDiff> {
    let mut live = live.clone();
    // A login reference in the env runs as either of its two users (by its password's version).
    for (k, v) in live.env.iter_mut() {
        if desired.env.get(k) != Some(v) && desired.env_agrees(k, v) {
            *v = desired.env[k].clone();
        }
    }
    // The engine pins `name:tag` to `name:tag@sha256:…` when it resolves an image.
    if !desired.image.contains('@') {
        if let Some((img, _digest)) = live.image.split_once('@') {
            live.image = img.to_string();
        }
    }
    let mut d = flatten(&serde_json::to_value(desired).expect("serialisable"));
    let mut l = flatten(&serde_json::to_value(&live).expect("serialisable"));
    // Derived from everything else; an older sprocketctl may have hashed differently.
    let hash_key = format!("labels.{}", L::SPEC_HASH);
    d.remove(&hash_key);
    l.remove(&hash_key);
    let mut keys: Vec<&String> = d.keys().chain(l.keys()).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .filter(|k| d.get(*k) != l.get(*k))
        .map(|k| FieldDiff {
            path: k.clone(),
            before: l.get(k).cloned(),
            after: d.get(k).cloned(),
        })
        .collect()
}

/// Flattens JSON into `a.b[0].c → scalar`; arrays of scalars stay whole (`args` reads better as
/// one value); nulls are dropped (absent and null are the same to us).
fn flatten(v: &Value) -> BTreeMap<String, Value> {
    fn walk(prefix: &str, v: &Value, out: &mut BTreeMap<String, Value>) {
        match v {
            Value::Object(m) => {
                for (k, v) in m {
                    let p = if prefix.is_empty() {
                        k.clone()
                    } else {
                        format!("{prefix}.{k}")
                    };
                    walk(&p, v, out);
                }
            }
            Value::Array(items) if items.iter().any(|i| i.is_object() || i.is_array()) => {
                for (i, item) in items.iter().enumerate() {
                    walk(&format!("{prefix}[{i}]"), item, out);
                }
            }
            Value::Null => {}
            Value::Array(items) if items.is_empty() => {}
            other => {
                out.insert(prefix.to_string(), other.clone());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk("", v, &mut out);
    out
}
