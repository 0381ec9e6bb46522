//! The Sprocket platform spec: one YAML file describing every layer, service, route, secret and
//! environment.
//!
//! Flow: [`load::parse`] (YAML → typed file, unknown keys collected, all with file:line:column)
//! → [`load::resolve`] (one environment through its `extends` chain, every rule checked, all
//! problems at once) → [`model::Platform`]. Pure apart from reading the spec and its config files.

pub mod diag;
pub mod load;
pub mod model;
pub mod raw;
pub mod tree;
pub mod values;

pub use diag::{Diagnostic, Pos, Report, Severity, SourceFile};
pub use load::{load_file, parse, parse_file, resolve, validate_all, Loaded, Parsed};
pub use model::Platform;
