//! Rules that keep values within what Docker and the file system take: the lengths of derived
//! Docker names, numeric ranges and units, layer names and env keys. One test per rule, in the
//! style of `rules.rs` (code, message, exact file:line:column).

mod common;

use common::*;

/// A long chain of `uses` is checked without recursion (no stack overflow) and without work
/// per pair of services; `scripts/measure-validate` times it.
#[test]
fn a_long_chain_of_uses_validates() {
    let mut text = String::from("platform: chain\nlayers:\n  apps:\n    services:\n      s0: { image: \"example/app:1\" }\n");
    for i in 1..20000 {
        text.push_str(&format!(
            "      s{i}: {{ image: \"example/app:1\", uses: [s{}] }}\n",
            i - 1
        ));
    }
    text.push_str("environments:\n  local: { hostname: localhost }\n");
    let all = diagnostics(&text);
    assert!(all.iter().all(|d| !d.is_error()), "{all:#?}");
}
