//! The secrets' source of truth, read and checked — the first half of the secrets pipeline
//! (source → check → Vault → Docker secrets → services).
//!
//! (Which source an environment reads — `doppler:PROJECT/CONFIG`, `dotenv:PATH`, `env` — is the
//! spec's `sprocket_spec::secrets_from`.)
//! - [`doppler`]: Doppler's download endpoint, as its CLI calls it (ETag, retries, clear
//!   errors that never name the token);
//! - [`dotenv`]: a dotenv file as entries with their line numbers (duplicates are kept, to be
//!   reported with both lines);
//! - [`check`]: what the spec needs against what the source holds — missing keys, duplicates,
//!   line breaks, NUL, surrounding whitespace, values shorter than their rule, keys nobody
//!   claims. Pure: the command reads the source, this decides;
//! - [`sync`]: what to write to Vault (created, changed, unchanged; generated once), decided
//!   against what Vault holds; pure as well;
//! - [`value`]: generated values and keyed fingerprints.
//!
//! Values never leave: findings name keys and places, never values.

pub mod check;
pub mod doppler;
#[cfg(feature = "fake")]
pub mod doppler_fake;
pub mod dotenv;
pub mod sync;
pub mod value;

/// One value as the source holds it: its key, the value, and where it was found (a dotenv
/// file's line; none for the environment or Doppler).
#[derive(Clone, PartialEq, Eq)]
pub struct Entry {
    pub key: String,
    pub value: String,
    pub line: Option<u32>,
}

impl std::fmt::Debug for Entry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the value.
        write!(
            f,
            "Entry {{ key: {}, line: {:?}, {} bytes }}",
            self.key,
            self.line,
            self.value.len()
        )
    }
}
