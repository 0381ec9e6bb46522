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
