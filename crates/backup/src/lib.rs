//! Backups' pure half: what a backup of the platform holds ([`plan`]), where its objects go
//! in the bucket ([`layout`]), its manifest ([`manifest`]: written last, so a half-written
//! backup is never listed as one), which backups a retention policy keeps ([`retention`]), and
//! a drill's result judged against the runbook's recovery targets ([`drill`]), and which backup
//! a `restore` that names none takes ([`choose`]).
//! The dumps, the age encryption to the operators' recipients and the uploads run in the CLI.

pub mod choose;
pub mod drill;
pub mod job;
pub mod layout;
pub mod manifest;
pub mod plan;
pub mod restore;
pub mod retention;
pub mod schedule;
pub mod snapshot;

pub use manifest::{Artefact, Manifest};
pub use plan::{plan, Item, Source};
pub use retention::{keep, Policy};

/// The example platform's `offline` environment, with an operator's key (the example's
/// `file:~/.config/sprocket/age.pub` is not on every machine).
#[cfg(test)]
pub(crate) fn example_offline() -> sprocket_spec::model::Platform {
    example_offline_as(None)
}

/// The example's `offline` environment, or a drill's scratch copy of it.
#[cfg(test)]
pub(crate) fn example_offline_as(
    scratch: Option<&sprocket_spec::model::Scratch>,
) -> sprocket_spec::model::Platform {
    let spec = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../examples/sprocket/sprocket.yaml"
    );
    let parsed = sprocket_spec::parse_file(std::path::Path::new(spec)).expect("the example parses");
    let mut p = sprocket_spec::resolve_as(
        &parsed,
        Some("offline"),
        &sprocket_spec::Files::disk(),
        scratch,
    )
    .expect("the example loads")
    .platform;
    p.vault.as_mut().unwrap().recipients = vec!["age1operator".into()];
    p
}
