//! The operators' keyring: the unseal keys and the root token `sys/init` returned, encrypted with
//! age to the recipients the spec names (age `x25519` keys and `ssh-ed25519`/`ssh-rsa` keys), as
//! ASCII armour, written atomically (temporary file, fsync, rename, fsync of the folder) with
//! mode 0600. Nothing else holds the keys: the plaintext exists only in memory.
//!
//! Threat model (README): a stolen disk or a leaked backup of the keyring gives ciphertext only;
//! decrypting needs one of the operators' private keys. Root on the machine while an operator
//! runs `vault unseal` can read process memory; that is out of reach of any file format.

use age::armor::{ArmoredReader, ArmoredWriter, Format};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::str::FromStr;

#[derive(Debug, thiserror::Error)]
pub enum KeyringError {
    #[error("no keyring at {path}\n  hint: the keyring is written by `sprocketctl vault init`; restore it from your backup to this path, or set `vault.keyring` in the spec")]
    Missing { path: PathBuf },
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the identity {identity} cannot open the keyring {path}: it was encrypted to other keys\n  hint: use the private key of one of the spec's `vault.recipients` (--identity / SPROCKET_IDENTITY)")]
    WrongIdentity { path: PathBuf, identity: PathBuf },
    #[error("the keyring {path} is damaged: {reason}\n  hint: restore it from your backup; Vault itself is untouched")]
    Corrupt { path: PathBuf, reason: String },
    #[error("recipient #{index} of `vault.recipients` is not an age (age1…) or SSH (ssh-ed25519/ssh-rsa) public key: {reason}")]
    BadRecipient { index: usize, reason: String },
    #[error("cannot use {path} as an identity: {reason}\n  hint: give an age identity file (AGE-SECRET-KEY-1…) or an unencrypted OpenSSH private key")]
    Identity { path: PathBuf, reason: String },
    #[error("no recipients: `vault.recipients` in the spec must name at least one operator key")]
    NoRecipients,
    #[error("the keyring {path} is encrypted to other operators than the spec's `vault.recipients` (added: {}; removed: {}); nothing was written\n  hint: check that change with the operators, then run `sprocketctl vault recipients --confirm` to re-encrypt the keyring to the spec's recipients", list(added), list(removed))]
    RecipientsChanged {
        path: PathBuf,
        added: Vec<String>,
        removed: Vec<String>,
    },
}

fn list(keys: &[String]) -> String {
    if keys.is_empty() {
        "none".into()
    } else {
        keys.join(", ")
    }
}

/// The secrets `sys/init` returned, plus what is needed to use them. `Debug` shows fingerprints,
/// never values.
#[derive(Serialize, Deserialize, Clone)]
pub struct Keyring {
    pub format: u32,
    /// Which Vault this belongs to (namespace and address), for humans.
    pub vault: String,
    /// Unix seconds.
    pub created_at: u64,
    pub shares: u32,
    pub threshold: u32,
    pub unseal_keys_b64: Vec<String>,
    /// Empty once `vault revoke-root` revoked it (`vault generate-root` makes a new one).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub root_token: String,
    /// sprocketctl's scoped admin token (policy `sprocketctl-admin`): what `up` works with
    /// after the bootstrap.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admin_token: Option<String>,
    /// The operators' public keys it is encrypted to (as the spec wrote them). A save to another
    /// set is refused unless confirmed: a changed `vault.recipients` could lock operators out or
    /// let someone in. Empty in keyrings written before it was recorded.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub recipients: Vec<String>,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Keyring {{ vault: {}, {} of {} keys, fingerprint {} }}",
            self.vault,
            self.threshold,
            self.shares,
            self.fingerprint()
        )
    }
}

fn short(bytes: &[u8]) -> String {
    hex::encode(&Sha256::digest(bytes)[..6])
}

impl Keyring {
    /// 12 hex digits that identify the key set without revealing it.
    pub fn fingerprint(&self) -> String {
        short(self.unseal_keys_b64.join(",").as_bytes())
    }

    /// The token to act with: the admin token, else the root token.
    pub fn token(&self) -> &str {
        self.admin_token.as_deref().unwrap_or(&self.root_token)
    }

    /// Fingerprint of the root token alone.
    pub fn root_token_fingerprint(&self) -> String {
        short(self.root_token.as_bytes())
    }

    /// Encrypts to `recipients` and replaces the file at `path` atomically.
    pub fn save(&mut self, path: &Path, recipients: &[String]) -> Result<(), KeyringError> {
        self.check_recipients(path, recipients)?;
        self.save_to(path, recipients)
    }

    /// Saves encrypted to `recipients` whatever it was encrypted to before (the confirmed change
    /// of `vault recipients --confirm`).
    pub fn save_to(&mut self, path: &Path, recipients: &[String]) -> Result<(), KeyringError> {
        let sealed = self.seal(recipients)?;
        write_atomic(path, &sealed).map_err(|e| KeyringError::Io {
            path: path.to_path_buf(),
            source: e,
        })?;
        self.recipients = recipients.to_vec();
        Ok(())
    }

    /// (added, removed) between the recipients it records and `recipients`; both empty when
    /// they are the same set, or when it records none (an older keyring).
    pub fn recipient_change(&self, recipients: &[String]) -> (Vec<String>, Vec<String>) {
        if self.recipients.is_empty() {
            return (vec![], vec![]);
        }
        let key = |r: &String| r.split_whitespace().take(2).collect::<Vec<_>>().join(" ");
        let old: Vec<String> = self.recipients.iter().map(key).collect();
        let new: Vec<String> = recipients.iter().map(key).collect();
        let added = new.iter().filter(|r| !old.contains(r)).cloned().collect();
        let removed = old.iter().filter(|r| !new.contains(r)).cloned().collect();
        (added, removed)
    }

    /// Refuses, before anything is done, when the spec's recipients are not the ones the keyring
    /// is encrypted to.
    pub fn check_recipients(&self, path: &Path, recipients: &[String]) -> Result<(), KeyringError> {
        let (added, removed) = self.recipient_change(recipients);
        if added.is_empty() && removed.is_empty() {
            Ok(())
        } else {
            Err(KeyringError::RecipientsChanged {
                path: path.to_path_buf(),
                added,
                removed,
            })
        }
    }

    /// Encrypts to every recipient, armoured.
    pub fn seal(&self, recipients: &[String]) -> Result<Vec<u8>, KeyringError> {
        // The plaintext records whom it is encrypted to.
        let mut recorded = self.clone();
        recorded.recipients = recipients.to_vec();
        let plain = serde_json::to_vec(&recorded).expect("serialisable");
        seal_bytes(&plain, recipients)
    }
}

/// Encrypts any bytes to every recipient, ASCII-armoured (a keyring, or an answer of Vault that
/// holds keys and could not be read).
pub fn seal_bytes(plain: &[u8], recipients: &[String]) -> Result<Vec<u8>, KeyringError> {
    let parsed = parse_recipients(recipients)?;
    let enc =
        age::Encryptor::with_recipients(parsed.iter().map(|r| r.as_ref() as &dyn age::Recipient))
            .map_err(|e| KeyringError::BadRecipient {
            index: 0,
            reason: e.to_string(),
        })?;
    let mut out = Vec::new();
    let io = |e: std::io::Error| KeyringError::Io {
        path: PathBuf::from("<memory>"),
        source: e,
    };
    let armor = ArmoredWriter::wrap_output(&mut out, Format::AsciiArmor).map_err(io)?;
    let mut w = enc.wrap_output(armor).map_err(io)?;
    w.write_all(plain).map_err(io)?;
    w.finish().and_then(|a| a.finish()).map_err(io)?;
    Ok(out)
}

impl Keyring {
    /// Reads and decrypts the keyring at `path` with the identity file at `identity`.
    pub fn open(path: &Path, identity: &Path) -> Result<Keyring, KeyringError> {
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(KeyringError::Missing {
                    path: path.to_path_buf(),
                })
            }
            Err(e) => {
                return Err(KeyringError::Io {
                    path: path.to_path_buf(),
                    source: e,
                })
            }
        };
        let identities = read_identities(identity)?;
        let corrupt = |reason: String| KeyringError::Corrupt {
            path: path.to_path_buf(),
            reason,
        };
        let dec = age::Decryptor::new(ArmoredReader::new(&bytes[..]))
            .map_err(|e| corrupt(e.to_string()))?;
        let mut reader =
            match dec.decrypt(identities.iter().map(|i| i.as_ref() as &dyn age::Identity)) {
                Ok(r) => r,
                Err(age::DecryptError::NoMatchingKeys) => {
                    return Err(KeyringError::WrongIdentity {
                        path: path.to_path_buf(),
                        identity: identity.to_path_buf(),
                    })
                }
                Err(e) => return Err(corrupt(e.to_string())),
            };
        let mut plain = Vec::new();
        reader
            .read_to_end(&mut plain)
            .map_err(|e| corrupt(e.to_string()))?;
        // serde's message may quote the offending value, which here is a secret: keep only where.
        let k: Keyring = serde_json::from_slice(&plain).map_err(|e| {
            corrupt(format!(
                "it decrypts, but is not a sprocketctl keyring ({:?} error at line {}, column {})",
                e.classify(),
                e.line(),
                e.column()
            ))
        })?;
        if k.unseal_keys_b64.len() < k.threshold as usize
            || (k.root_token.is_empty() && k.admin_token.is_none())
        {
            return Err(corrupt(
                "it holds fewer keys than its threshold, or no token at all".into(),
            ));
        }
        Ok(k)
    }
}

/// Parses the spec's recipients before anything irreversible happens.
pub fn parse_recipients(
    recipients: &[String],
) -> Result<Vec<Box<dyn age::Recipient + Send>>, KeyringError> {
    if recipients.is_empty() {
        return Err(KeyringError::NoRecipients);
    }
    recipients
        .iter()
        .enumerate()
        .map(
            |(i, r)| -> Result<Box<dyn age::Recipient + Send>, KeyringError> {
                let r = r.trim();
                if r.starts_with("age1") {
                    age::x25519::Recipient::from_str(r)
                        .map(|x| Box::new(x) as _)
                        .map_err(|e| KeyringError::BadRecipient {
                            index: i + 1,
                            reason: e.to_string(),
                        })
                } else if r.starts_with("ssh-") {
                    age::ssh::Recipient::from_str(r)
                        .map(|x| Box::new(x) as _)
                        .map_err(|e| KeyringError::BadRecipient {
                            index: i + 1,
                            reason: format!("{e:?}"),
                        })
                } else {
                    Err(KeyringError::BadRecipient {
                        index: i + 1,
                        reason: "it starts with neither `age1` nor `ssh-`".into(),
                    })
                }
            },
        )
        .collect()
}

/// An age identity file, or an (unencrypted) OpenSSH private key.
pub fn read_identities(path: &Path) -> Result<Vec<Box<dyn age::Identity>>, KeyringError> {
    let bytes = std::fs::read(path).map_err(|e| KeyringError::Io {
        path: path.to_path_buf(),
        source: e,
    })?;
    let bad = |reason: String| KeyringError::Identity {
        path: path.to_path_buf(),
        reason,
    };
    if let Ok(f) = age::IdentityFile::from_buffer(&bytes[..]) {
        if let Ok(ids) = f.into_identities() {
            if !ids.is_empty() {
                return Ok(ids
                    .into_iter()
                    .map(|i| i as Box<dyn age::Identity>)
                    .collect());
            }
        }
    }
    match age::ssh::Identity::from_buffer(&bytes[..], Some(path.display().to_string())) {
        Ok(age::ssh::Identity::Unencrypted(k)) => Ok(vec![Box::new(age::ssh::Identity::Unencrypted(k))]),
        Ok(age::ssh::Identity::Encrypted(_)) => Err(bad("the SSH key is passphrase-protected; decrypt a copy (ssh-keygen -p) or use an age identity".into())),
        Ok(age::ssh::Identity::Unsupported(k)) => Err(bad(format!("unsupported SSH key type ({k:?})"))),
        Err(e) => Err(bad(e.to_string())),
    }
}

/// Writes `bytes` to `path` so that a crash leaves either the old file or the new one, never a
/// torn one: temporary file in the same folder (mode 0600), fsync, rename, fsync of the folder.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    // A fresh name each attempt: a file left by a killed run (whose pid a container may reuse)
    // never blocks the next write. `create_new` still refuses to follow anything planted there.
    let (tmp, mut f) = {
        let mut attempt = 0u32;
        loop {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.subsec_nanos())
                .unwrap_or(0);
            let tmp = dir.join(format!(
                ".{}.tmp-{}-{nanos:08x}-{attempt}",
                path.file_name()
                    .map(|f| f.to_string_lossy().to_string())
                    .unwrap_or_default(),
                std::process::id()
            ));
            match std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&tmp)
            {
                Ok(f) => break (tmp, f),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && attempt < 16 => {
                    attempt += 1
                }
                Err(e) => return Err(e),
            }
        }
    };
    let r = f.write_all(bytes).and_then(|_| f.sync_all());
    if let Err(e) = r {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    drop(f);
    std::fs::rename(&tmp, path)?;
    std::fs::File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn keyring() -> Keyring {
        Keyring {
            format: 1,
            vault: "test".into(),
            created_at: 1,
            shares: 5,
            threshold: 3,
            unseal_keys_b64: (0..5).map(|i| format!("key-{i}-secret")).collect(),
            root_token: "s.root-secret".into(),
            admin_token: None,
            recipients: vec![],
        }
    }

    fn identity(dir: &Path, name: &str) -> (PathBuf, String) {
        let id = age::x25519::Identity::generate();
        let path = dir.join(name);
        std::fs::write(
            &path,
            format!(
                "{}\n",
                age::secrecy::ExposeSecret::expose_secret(&id.to_string())
            ),
        )
        .unwrap();
        (path, id.to_public().to_string())
    }

    /// F12: a temp file left by a killed run with the same pid does not block the next write.
    #[test]
    fn a_leftover_temp_file_does_not_block_a_write() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.age");
        let stale = dir
            .path()
            .join(format!(".k.age.tmp-{}", std::process::id()));
        std::fs::write(&stale, b"left by a killed run").unwrap();
        write_atomic(&path, b"new").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"new");
    }

    /// F14: the keyring records whom it is encrypted to; a save to another set is refused
    /// (nothing written) until the change is confirmed with `save_to`.
    #[test]
    fn a_change_of_recipients_is_refused_until_confirmed() {
        let dir = tempfile::tempdir().unwrap();
        let (alice, alice_pub) = identity(dir.path(), "alice");
        let (bob, bob_pub) = identity(dir.path(), "bob");
        let path = dir.path().join("k.age");
        let mut k = keyring();
        k.save(&path, std::slice::from_ref(&alice_pub)).unwrap();
        let opened = Keyring::open(&path, &alice).unwrap();
        assert_eq!(opened.recipients, std::slice::from_ref(&alice_pub));

        let before = std::fs::read(&path).unwrap();
        let mut again = opened.clone();
        let err = again
            .save(&path, std::slice::from_ref(&bob_pub))
            .unwrap_err();
        let msg = err.to_string();
        assert!(
            matches!(err, KeyringError::RecipientsChanged { .. }),
            "{msg}"
        );
        assert!(msg.contains(&format!("added: {bob_pub}")), "{msg}");
        assert!(msg.contains(&format!("removed: {alice_pub}")), "{msg}");
        assert_eq!(std::fs::read(&path).unwrap(), before, "nothing written");
        assert!(Keyring::open(&path, &bob).is_err());

        // The same set in another order, or with another SSH comment, is no change.
        let both = [alice_pub.clone(), bob_pub.clone()];
        again.save_to(&path, &both).unwrap();
        let mut reordered = Keyring::open(&path, &bob).unwrap();
        reordered
            .save(&path, &[bob_pub.clone(), alice_pub])
            .unwrap();
        assert!(Keyring::open(&path, &alice).is_ok() && Keyring::open(&path, &bob).is_ok());
    }

    #[test]
    fn round_trip_only_with_the_right_identity() {
        let dir = tempfile::tempdir().unwrap();
        let (alice, alice_pub) = identity(dir.path(), "alice");
        let (bob, bob_pub) = identity(dir.path(), "bob");
        let (eve, _) = identity(dir.path(), "eve");
        let sealed = keyring().seal(&[alice_pub, bob_pub]).unwrap();
        let text = String::from_utf8(sealed.clone()).unwrap();
        assert!(text.starts_with("-----BEGIN AGE ENCRYPTED FILE-----"));
        assert!(!text.contains("secret"), "ciphertext only");
        let path = dir.path().join("k/keyring.age");
        write_atomic(&path, &sealed).unwrap();
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(
            Keyring::open(&path, &alice).unwrap().root_token,
            "s.root-secret"
        );
        assert_eq!(Keyring::open(&path, &bob).unwrap().unseal_keys_b64.len(), 5);
        assert!(matches!(
            Keyring::open(&path, &eve),
            Err(KeyringError::WrongIdentity { .. })
        ));
        assert!(matches!(
            Keyring::open(&dir.path().join("none"), &alice),
            Err(KeyringError::Missing { .. })
        ));
        let mut damaged = sealed.clone();
        let mid = damaged.len() / 2;
        damaged[mid] = if damaged[mid] == b'A' { b'B' } else { b'A' };
        write_atomic(&path, &damaged).unwrap();
        assert!(matches!(
            Keyring::open(&path, &alice),
            Err(KeyringError::Corrupt { .. })
        ));
        assert!(
            !format!("{:?}", keyring()).contains("secret"),
            "Debug never shows secrets"
        );
    }

    #[test]
    fn a_malformed_keyring_error_never_quotes_its_content() {
        let dir = tempfile::tempdir().unwrap();
        let (alice, alice_pub) = identity(dir.path(), "alice");
        // Valid age, wrong JSON shape: a secret where a number belongs.
        let plain = br#"{"format":"s.root-secret","vault":"x","created_at":1,"shares":5,"threshold":3,"unseal_keys_b64":[],"root_token":"t"}"#;
        let r = parse_recipients(&[alice_pub]).unwrap();
        let enc =
            age::Encryptor::with_recipients(r.iter().map(|x| x.as_ref() as &dyn age::Recipient))
                .unwrap();
        let mut out = Vec::new();
        let mut w = enc.wrap_output(&mut out).unwrap();
        w.write_all(plain).unwrap();
        w.finish().unwrap();
        let path = dir.path().join("k.age");
        write_atomic(&path, &out).unwrap();
        let e = Keyring::open(&path, &alice).unwrap_err().to_string();
        assert!(e.contains("not a sprocketctl keyring"), "{e}");
        assert!(
            !e.contains("root-secret"),
            "the error quotes the secret: {e}"
        );
    }

    #[test]
    fn recipients_are_checked_before_anything_happens() {
        assert!(matches!(
            parse_recipients(&[]),
            Err(KeyringError::NoRecipients)
        ));
        let e = parse_recipients(&["age1notakey".into()]).err().unwrap();
        assert!(e.to_string().contains("recipient #1"), "{e}");
        let e = parse_recipients(&["AAAA".into()]).err().unwrap();
        assert!(e.to_string().contains("neither `age1` nor `ssh-`"), "{e}");
        assert!(parse_recipients(&["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHPgR4/kBV4eM9qk3M/e1dGyLp+4Ue0nOVK6HQTxCOgf ops@example".into()]).is_ok());
    }
}
