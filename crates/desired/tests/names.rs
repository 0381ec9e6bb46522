//! The names `desired` derives are the ones validation measures against Docker's limits
//! (`sprocket_spec::names`, `crates/spec/src/load/limits.rs`): same config stem, same version
//! length, and every example environment within the limits.

mod common;

use sprocket_desired::state::{desired, short_hash};
use sprocket_spec::names::{
    config_stem, MAX_CONFIG_NAME, MAX_NETWORK_NAME, MAX_SECRET_NAME, MAX_SERVICE_NAME, VERSION_HEX,
};

#[test]
fn derived_names_follow_the_formats_validation_measures() {
    assert_eq!(short_hash(b"any content").len(), VERSION_HEX);
    for env in ["prod", "staging", "local", "offline"] {
        let p = common::example(env);
        let ns = &p.environment.namespace;
        let d = desired(&p);
        for s in d.services() {
            assert!(s.name.len() <= MAX_SERVICE_NAME, "{}", s.name);
            assert_eq!(s.name, format!("{ns}_{}", s.short_name));
        }
        for l in &d.layers {
            for n in &l.networks {
                assert!(n.name.len() <= MAX_NETWORK_NAME, "{}", n.name);
            }
            for s in &l.secrets {
                // Every Docker secret made for it is `<prefix>-<version>`.
                assert!(
                    s.prefix.len() + 1 + VERSION_HEX <= MAX_SECRET_NAME,
                    "{}",
                    s.prefix
                );
            }
        }
        let configs: Vec<&str> = d
            .layers
            .iter()
            .flat_map(|l| &l.configs)
            .map(|c| c.name.as_str())
            .collect();
        for s in p.services() {
            for c in &s.configs {
                let stem = format!("{ns}_{}-{}-", s.name, config_stem(&c.file));
                let name = configs
                    .iter()
                    .find(|n| n.starts_with(&stem))
                    .unwrap_or_else(|| panic!("no config named {stem}…: {configs:?}"));
                assert_eq!(name.len(), stem.len() + VERSION_HEX, "{name}");
                assert!(name.len() <= MAX_CONFIG_NAME, "{name}");
            }
        }
    }
}
