//! A backup's manifest: what it holds, how big, its checksums, where it came from. Written last,
//! after every artefact is in the bucket: a backup without one is incomplete (an interrupted or
//! failed run) and is never listed, restored or counted by retention as a backup.
//!
//! It holds names, sizes and checksums of ciphertexts — nothing secret — so it is stored in
//! clear, and `backup ls` needs no identity.

use serde::{Deserialize, Serialize};

/// The manifest's format: bumped when a reader of the older one could misread the newer.
pub const FORMAT: u32 = 1;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub format: u32,
    pub id: String,
    pub namespace: String,
    pub environment: String,
    /// RFC 3339, UTC.
    pub started_at: String,
    pub finished_at: String,
    /// SHA-256 of the spec file the backup was taken under.
    pub spec_sha256: String,
    /// The age recipients (their public keys) every artefact is encrypted to.
    pub recipients: Vec<String>,
    pub artefacts: Vec<Artefact>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Artefact {
    /// What it restores: `vault`, `vault-keyring`, `redis`, `rabbitmq`, `postgres:<database>`,
    /// `volume:<name>`, `acme`.
    pub component: String,
    /// Its object's key in the bucket.
    pub object: String,
    /// The object's size and SHA-256 (of the encrypted bytes, as stored).
    pub bytes: u64,
    pub sha256: String,
    /// How long taking it took.
    pub seconds: f64,
}

impl Manifest {
    /// The artefact of `component`.
    pub fn artefact(&self, component: &str) -> Option<&Artefact> {
        self.artefacts.iter().find(|a| a.component == component)
    }

    /// Total stored bytes.
    pub fn bytes(&self) -> u64 {
        self.artefacts.iter().map(|a| a.bytes).sum()
    }
}

/// Why an object does not match its manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mismatch {
    Missing,
    Size { want: u64, got: u64 },
    Checksum,
}

impl std::fmt::Display for Mismatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Mismatch::Missing => write!(f, "its object is missing from the bucket"),
            Mismatch::Size { want, got } => {
                write!(f, "its object has {got} bytes, the manifest says {want}")
            }
            Mismatch::Checksum => write!(
                f,
                "its object's SHA-256 differs from the manifest's: it was changed after the backup"
            ),
        }
    }
}

/// Judges a downloaded object (`None`: not in the bucket) against its artefact.
pub fn verify(a: &Artefact, got: Option<(u64, &str)>) -> Result<(), Mismatch> {
    match got {
        None => Err(Mismatch::Missing),
        Some((bytes, _)) if bytes != a.bytes => Err(Mismatch::Size {
            want: a.bytes,
            got: bytes,
        }),
        Some((_, sha)) if !sha.eq_ignore_ascii_case(&a.sha256) => Err(Mismatch::Checksum),
        Some(_) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest() -> Manifest {
        Manifest {
            format: FORMAT,
            id: "20261203T020000Z-a1b2".into(),
            namespace: "sprocket".into(),
            environment: "prod".into(),
            started_at: "2026-12-03T02:00:00Z".into(),
            finished_at: "2026-12-03T02:01:10Z".into(),
            spec_sha256: "00".repeat(32),
            recipients: vec!["age1…".into()],
            artefacts: vec![Artefact {
                component: "postgres:sprocket_core".into(),
                object: "sprocket/20261203T020000Z-a1b2/postgres-sprocket_core.dump.age".into(),
                bytes: 10,
                sha256: "ab".repeat(32),
                seconds: 1.5,
            }],
        }
    }

    #[test]
    fn round_trips_and_judges_objects() {
        let m = manifest();
        let back: Manifest = serde_json::from_str(&serde_json::to_string(&m).unwrap()).unwrap();
        assert_eq!(back, m);
        let a = m.artefact("postgres:sprocket_core").unwrap();
        assert_eq!(verify(a, Some((10, &"AB".repeat(32)))), Ok(()));
        assert_eq!(verify(a, None), Err(Mismatch::Missing));
        assert_eq!(
            verify(a, Some((11, &"ab".repeat(32)))),
            Err(Mismatch::Size { want: 10, got: 11 })
        );
        let tampered = verify(a, Some((10, &"cd".repeat(32)))).unwrap_err();
        assert!(tampered.to_string().contains("changed after the backup"));
        assert_eq!(m.bytes(), 10);
    }
}
