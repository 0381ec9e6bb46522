//! `render --format gatus`: one Gatus endpoint per route × host of the environment, grouped by
//! layer, with the runbook's conditions; the example's committed gatus.yaml is the render of
//! `prod` (so it never goes stale as services are renamed, as the hand-kept one did).

mod common;

use std::path::Path;

fn endpoints(text: &str) -> Vec<serde_json::Value> {
    let v: serde_json::Value = serde_saphyr::from_str(text).unwrap();
    v["endpoints"].as_array().unwrap().clone()
}

#[test]
fn the_committed_gatus_yaml_is_the_render_of_prod() {
    let (text, count) = sprocket_desired::gatus::gatus(&common::example("prod"));
    let committed = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/sprocket/config/gatus.yaml"),
    )
    .unwrap();
    assert_eq!(
        committed, text,
        "examples/sprocket/config/gatus.yaml is stale: run `sprocketctl -f examples/sprocket/sprocket.yaml -e prod render --format gatus --out examples/sprocket/config`"
    );
    assert_eq!(endpoints(&text).len(), count);
}

#[test]
fn one_endpoint_per_route_and_host_with_the_runbooks_conditions() {
    let p = common::example("prod");
    let (text, _) = sprocket_desired::gatus::gatus(&p);
    assert!(text.starts_with(sprocket_desired::gatus::HEADER));
    let all = endpoints(&text);
    let find = |name: &str| {
        all.iter()
            .find(|e| e["name"] == name)
            .unwrap_or_else(|| panic!("no endpoint {name}: {text}"))
            .clone()
    };
    let web = find("web sprocket.mlesports.gg");
    assert_eq!(web["group"], "platform");
    assert_eq!(web["url"], "https://sprocket.mlesports.gg/");
    assert_eq!(
        web["conditions"],
        serde_json::json!([
            "[STATUS] < 500",
            "[STATUS] != 404",
            "[RESPONSE_TIME] < 2000",
            "[CERTIFICATE_EXPIRATION] > 168h"
        ])
    );
    // Two routes on one host: the path tells them apart.
    assert_eq!(
        find("n8n n8n.sprocket.mlesports.gg/webhook")["url"],
        "https://n8n.sprocket.mlesports.gg/webhook"
    );
    assert_eq!(find("n8n n8n.sprocket.mlesports.gg")["group"], "data");
    // Traefik's dashboard (an internal service) is not an endpoint; a disabled service has none.
    assert!(!text.contains("traefik.sprocket"), "{text}");
    assert!(!text.contains("demo."), "{text}");
    // Gatus's history on its volume.
    assert!(text.contains("storage:\n  type: sqlite\n  path: /data/data.db\n"));

    // Without ACME, plain HTTP on the environment's port, every host (IPs too), no
    // certificate condition.
    let (offline, _) = sprocket_desired::gatus::gatus(&common::example("offline"));
    let demo: Vec<_> = endpoints(&offline)
        .into_iter()
        .filter(|e| e["name"].as_str().unwrap().starts_with("demo "))
        .collect();
    let urls: Vec<&str> = demo.iter().map(|e| e["url"].as_str().unwrap()).collect();
    assert_eq!(
        urls,
        [
            "http://demo.localhost/",
            "http://192.168.4.39/",
            "http://100.110.185.84/"
        ]
    );
    assert!(demo
        .iter()
        .all(|e| e["conditions"].as_array().unwrap().len() == 3));
}
