//! The Sprocket platform spec: one YAML file describing every layer, service, route, secret and
//! environment.
//!
//! Flow: [`load::parse`] (YAML → typed file, unknown keys collected, all with file:line:column)
//! → [`load::resolve`] (one environment through its `extends` chain, every rule checked, all
//! problems at once) → [`model::Platform`]. Pure apart from reading the spec: the config files it
//! names and the home folder come in through [`load::Files`].

pub mod diag;
pub mod load;
pub mod model;
pub mod names;
pub mod raw;
pub mod secrets_from;
pub mod tree;
pub mod values;

pub use diag::{Diagnostic, Pos, Report, Severity, SourceFile};
pub use load::{
    load_file, parse, parse_file, resolve, resolve_as, validate_all, Files, Loaded, Parsed,
};
pub use model::Platform;
