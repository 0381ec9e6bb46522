//! Making and naming values without showing them: generated values from the kernel's CSPRNG in
//! one of the spec's alphabets, and keyed fingerprints.
//!
//! A fingerprint is HMAC-SHA256 under the platform's own key (made once, kept in Vault), cut to
//! [`FINGERPRINT_HEX`] hex digits: enough to tell two versions apart, and useless for guessing a
//! weak password without the key (an unkeyed hash of a short password can be brute-forced).

use hmac::{Hmac, Mac};
use sha2::Sha256;
use sprocket_spec::model::Alphabet;

/// Hex digits of a fingerprint.
pub const FINGERPRINT_HEX: usize = 12;
/// Length of the fingerprints' key (hex digits of 32 random bytes).
pub const FINGERPRINT_KEY_LEN: usize = 64;

/// `HMAC-SHA256(key, value)`, first [`FINGERPRINT_HEX`] hex digits.
pub fn fingerprint(key: &[u8], value: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(value);
    let out = hex::encode(mac.finalize().into_bytes());
    out[..FINGERPRINT_HEX].to_string()
}

/// `len` characters of `alphabet`, each equally likely (rejection sampling over the kernel's
/// random bytes). Never a line break, padding or space.
pub fn generate(alphabet: Alphabet, len: usize) -> std::io::Result<String> {
    use std::io::Read;
    let chars = alphabet.chars();
    // The largest multiple of the alphabet's size that fits a byte: bytes above it are
    // rejected, so no character is favoured.
    let limit = (256 / chars.len() * chars.len()) as u16;
    let mut f = std::fs::File::open("/dev/urandom")?;
    let mut out = String::with_capacity(len);
    let mut buf = [0u8; 64];
    while out.len() < len {
        f.read_exact(&mut buf)?;
        for b in buf {
            if out.len() == len {
                break;
            }
            if (b as u16) < limit {
                out.push(chars[b as usize % chars.len()] as char);
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_values_keep_to_their_alphabet_and_length() {
        for (a, len) in [
            (Alphabet::Hex, 64),
            (Alphabet::Base64url, 43),
            (Alphabet::Alphanumeric, 128),
        ] {
            let v = generate(a, len).unwrap();
            assert_eq!(v.len(), len);
            assert!(v.bytes().all(|b| a.chars().contains(&b)), "{a:?}");
            assert_ne!(v, generate(a, len).unwrap(), "two values are never equal");
        }
        // Every character of a small alphabet shows up: no character is left out.
        let v = generate(Alphabet::Hex, 4096).unwrap();
        assert!(Alphabet::Hex
            .chars()
            .iter()
            .all(|c| v.as_bytes().contains(c)));
    }

    #[test]
    fn fingerprints_are_keyed_short_and_stable() {
        let a = fingerprint(b"key-one", b"hunter2");
        assert_eq!(a.len(), FINGERPRINT_HEX);
        assert_eq!(a, fingerprint(b"key-one", b"hunter2"));
        assert_ne!(
            a,
            fingerprint(b"key-two", b"hunter2"),
            "another key, another fingerprint"
        );
        assert_ne!(a, fingerprint(b"key-one", b"hunter3"));
        // RFC 4231 test case 2: HMAC-SHA256("Jefe", "what do ya want for nothing?").
        assert_eq!(
            fingerprint(b"Jefe", b"what do ya want for nothing?"),
            "5bdcc146bf60"
        );
    }
}
