//! What the desired-state tests share: the real example spec, resolved for one environment.

use sprocket_spec::model::Platform;
use std::path::Path;

pub fn example(env: &str) -> Platform {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/sprocket/sprocket.yaml");
    let parsed = sprocket_spec::parse_file(&path).unwrap();
    sprocket_spec::resolve(&parsed, Some(env), &sprocket_spec::Files::disk())
        .unwrap()
        .platform
}
