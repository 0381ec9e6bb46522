//! An artefact's own key instead of the operator's identity. Every age file is encrypted with a
//! random 16-byte file key, wrapped to each recipient in its header. `restore` unwraps it here,
//! on the operator's machine, with the operator's identity ([`unwrap`]) and hands only that key
//! to the restore task in the swarm ([`Known`]): the task can read the artefacts it restores and
//! nothing else, and the identity never leaves the machine. The header's MAC is checked with the
//! key on both sides, so a wrong or tampered header fails.

use age::secrecy::ExposeSecret;
use age_core::format::{FileKey, Stanza};
use std::sync::Mutex;

/// An identity that unwraps with the operator's identities and keeps the file key it found.
struct Capture<'a> {
    inner: &'a [Box<dyn age::Identity>],
    key: Mutex<Option<[u8; 16]>>,
}

impl age::Identity for Capture<'_> {
    fn unwrap_stanza(&self, stanza: &Stanza) -> Option<Result<FileKey, age::DecryptError>> {
        self.unwrap_stanzas(std::slice::from_ref(stanza))
    }

    fn unwrap_stanzas(&self, stanzas: &[Stanza]) -> Option<Result<FileKey, age::DecryptError>> {
        for i in self.inner {
            if let Some(r) = i.unwrap_stanzas(stanzas) {
                if let Ok(k) = &r {
                    *self.key.lock().expect("not poisoned") = Some(*k.expose_secret());
                }
                return Some(r);
            }
        }
        None
    }
}

/// The file key of the age file that starts with `head` (its header, at least), unwrapped with
/// `identities`; hex.
pub fn unwrap(head: &[u8], identities: &[Box<dyn age::Identity>]) -> Result<String, String> {
    let capture = Capture {
        inner: identities,
        key: Mutex::new(None),
    };
    let dec = age::Decryptor::new(head).map_err(|e| format!("not an age file: {e}"))?;
    match dec.decrypt(std::iter::once(&capture as &dyn age::Identity)) {
        Ok(_) => {}
        Err(age::DecryptError::NoMatchingKeys) => {
            return Err("this identity is not among its recipients".into())
        }
        Err(e) => return Err(format!("its header does not open: {e}")),
    }
    let key = capture
        .key
        .lock()
        .expect("not poisoned")
        .take()
        .ok_or("no file key was unwrapped")?;
    Ok(hex::encode(key))
}

/// The identity of one known file key (the restore task's).
pub struct Known(pub [u8; 16]);

impl Known {
    pub fn from_hex(h: &str) -> Result<Known, String> {
        let b = hex::decode(h.trim()).map_err(|_| "a file key is not hex".to_string())?;
        let k: [u8; 16] = b
            .try_into()
            .map_err(|_| "a file key is not 16 bytes".to_string())?;
        Ok(Known(k))
    }
}

impl age::Identity for Known {
    fn unwrap_stanza(&self, _: &Stanza) -> Option<Result<FileKey, age::DecryptError>> {
        Some(Ok(FileKey::new(Box::new(self.0))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    #[test]
    fn the_file_key_alone_decrypts_its_file_and_no_other() {
        let id = age::x25519::Identity::generate();
        let recipient = id.to_public();
        let seal = |plain: &[u8]| {
            let enc =
                age::Encryptor::with_recipients(std::iter::once(&recipient as &dyn age::Recipient))
                    .unwrap();
            let mut out = Vec::new();
            let mut w = enc.wrap_output(&mut out).unwrap();
            w.write_all(plain).unwrap();
            w.finish().unwrap();
            out
        };
        let a = seal(b"the redis snapshot");
        let b = seal(b"the database dump");
        let ids: Vec<Box<dyn age::Identity>> = vec![Box::new(id)];
        // The header is enough to unwrap the key.
        let key = unwrap(&a[..a.len() - 10], &ids).unwrap();
        let open = |file: &[u8], key: &str| -> Result<Vec<u8>, String> {
            let known = Known::from_hex(key)?;
            let dec = age::Decryptor::new(file).map_err(|e| e.to_string())?;
            let mut r = dec
                .decrypt(std::iter::once(&known as &dyn age::Identity))
                .map_err(|e| e.to_string())?;
            let mut out = Vec::new();
            r.read_to_end(&mut out).map_err(|e| e.to_string())?;
            Ok(out)
        };
        assert_eq!(open(&a, &key).unwrap(), b"the redis snapshot");
        assert!(
            open(&b, &key).is_err(),
            "another artefact's key opens nothing"
        );
        let other = age::x25519::Identity::generate();
        let wrong: Vec<Box<dyn age::Identity>> = vec![Box::new(other)];
        assert!(unwrap(&a, &wrong)
            .unwrap_err()
            .contains("not among its recipients"));
    }
}
