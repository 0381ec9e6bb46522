//! Which failure explains which: a service that fails while something it uses (directly or
//! not) fails is not a problem of its own. The root — a failing service whose dependencies are
//! all well — is reported once, with everything that uses it; a consumer that fails while all
//! it uses is well is a root of its own. (Gatus has no notion of this: one broken Redis pages
//! for every service behind it.)

use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Incident {
    /// The failing service that explains the others.
    pub root: String,
    /// Every service that uses it, directly or not (failing or not: they are at risk).
    pub affects: Vec<String>,
    /// Those of `affects` that fail too: explained by the root, not reported on their own.
    pub explained: Vec<String>,
}

/// Everything `service` uses, directly or not (cycles are cut).
fn dependencies<'a>(
    service: &'a str,
    uses: &'a BTreeMap<String, Vec<String>>,
) -> BTreeSet<&'a str> {
    let mut seen = BTreeSet::new();
    let mut todo = vec![service];
    while let Some(s) = todo.pop() {
        for u in uses.get(s).into_iter().flatten() {
            if u != service && seen.insert(u.as_str()) {
                todo.push(u);
            }
        }
    }
    seen
}

/// The incidents among `failing` services: one per root, in name order.
pub fn incidents(
    failing: &BTreeSet<String>,
    uses: &BTreeMap<String, Vec<String>>,
) -> Vec<Incident> {
    let deps: BTreeMap<&str, BTreeSet<&str>> = uses
        .keys()
        .chain(failing.iter())
        .map(|s| (s.as_str(), dependencies(s, uses)))
        .collect();
    let is_root = |s: &str| !deps[s].iter().any(|d| failing.contains(*d));
    failing
        .iter()
        .filter(|s| is_root(s))
        .map(|root| {
            let affects: Vec<String> = deps
                .iter()
                .filter(|(_, d)| d.contains(root.as_str()))
                .map(|(s, _)| s.to_string())
                .collect();
            let explained = affects
                .iter()
                .filter(|s| failing.contains(*s))
                .cloned()
                .collect();
            Incident {
                root: root.clone(),
                affects,
                explained,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn graph(edges: &[(&str, &[&str])]) -> BTreeMap<String, Vec<String>> {
        edges
            .iter()
            .map(|(s, u)| (s.to_string(), u.iter().map(|x| x.to_string()).collect()))
            .collect()
    }

    fn set(s: &[&str]) -> BTreeSet<String> {
        s.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn a_failing_datastore_is_the_one_root_of_its_failing_consumers() {
        let g = graph(&[
            ("redis", &[]),
            ("core", &["redis", "rabbitmq"]),
            ("web", &["core"]),
            ("demo", &["redis"]),
            ("rabbitmq", &[]),
        ]);
        let i = incidents(&set(&["redis", "core", "web", "demo"]), &g);
        assert_eq!(
            i,
            vec![Incident {
                root: "redis".into(),
                affects: vec!["core".into(), "demo".into(), "web".into()],
                explained: vec!["core".into(), "demo".into(), "web".into()],
            }]
        );
    }

    #[test]
    fn a_consumer_failing_on_its_own_is_its_own_root() {
        let g = graph(&[("redis", &[]), ("demo", &["redis"]), ("core", &["redis"])]);
        let i = incidents(&set(&["demo"]), &g);
        assert_eq!(i.len(), 1);
        assert_eq!(i[0].root, "demo");
        assert!(i[0].affects.is_empty());
    }

    #[test]
    fn two_roots_share_what_uses_both() {
        let g = graph(&[
            ("redis", &[]),
            ("rabbitmq", &[]),
            ("core", &["redis", "rabbitmq"]),
        ]);
        let i = incidents(&set(&["redis", "rabbitmq", "core"]), &g);
        let roots: Vec<&str> = i.iter().map(|x| x.root.as_str()).collect();
        assert_eq!(roots, ["rabbitmq", "redis"]);
        assert!(i.iter().all(|x| x.explained == ["core"]));
    }

    #[test]
    fn a_cycle_terminates() {
        // `validate` refuses a cycle (`dependency-cycle`); here the walk must only end.
        let g = graph(&[("a", &["b"]), ("b", &["a"])]);
        let _ = incidents(&set(&["a", "b"]), &g);
    }
}
