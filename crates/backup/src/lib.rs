//! Backups' pure half: what a backup of the platform holds ([`plan`]), where its objects go
//! in the bucket ([`layout`]), its manifest ([`manifest`]: written last, so a half-written
//! backup is never listed as one), and which backups a retention policy keeps ([`retention`]).
//! The dumps, the age encryption to the operators' recipients and the uploads run in the CLI.

pub mod job;
pub mod layout;
pub mod manifest;
pub mod plan;
pub mod restore;
pub mod retention;
pub mod snapshot;

pub use manifest::{Artefact, Manifest};
pub use plan::{plan, Item, Source};
pub use retention::{keep, Policy};

/// The example platform's `offline` environment, with an operator's key (the example's
/// `file:~/.config/sprocket/age.pub` is not on every machine).
#[cfg(test)]
pub(crate) fn example_offline() -> sprocket_spec::model::Platform {
    let spec = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../examples/sprocket/sprocket.yaml"
    );
    let mut p = sprocket_spec::load::load_file(std::path::Path::new(spec), Some("offline"))
        .expect("the example loads")
        .platform;
    p.vault.as_mut().unwrap().recipients = vec!["age1operator".into()];
    p
}
