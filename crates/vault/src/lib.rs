//! The Vault (OpenBao) adapter: [`client`] speaks the HTTP API (the same for HashiCorp Vault and
//! OpenBao); [`keyring`] keeps the unseal keys and root token encrypted to the operators' age or
//! SSH keys, on disk only as ciphertext, written atomically.

pub mod client;
pub mod keyring;

pub use client::{SealStatus, VaultClient, VaultError};
pub use keyring::{Keyring, KeyringError};
