//! The Vault (OpenBao) adapter: [`client`] speaks the HTTP API (the same for HashiCorp Vault and
//! OpenBao) and makes the calls about the server itself (seal, init, unseal, health); [`api`]
//! makes the calls that read or change what Vault holds, one typed method each (mounts, auth
//! methods, policies, the token role, tokens, GitHub auth, generate-root), [`kv`] the KV v2 documents the secrets pipeline writes (check-and-set); [`keyring`] keeps the
//! unseal keys and root token encrypted to the operators' age or SSH keys, on disk only as
//! ciphertext, written atomically.

pub mod api;
pub mod client;
pub mod keyring;
pub mod kv;

pub use api::Authed;
pub use client::{Health, Role, SealStatus, VaultClient, VaultError};
pub use keyring::{Keyring, KeyringError};
