//! One file of a running container, through the Engine API's archive endpoint
//! (`GET /containers/{id}/archive?path=…`, which answers a tar of it): how sprocketctl reads
//! a file a service keeps on its volume (Traefik's `acme.json`) without exec, a shell in the
//! image, or a second container.

use crate::{Engine, EngineError};
use bollard::query_parameters as q;
use futures_util::StreamExt;

/// The largest file read this way: 16 MiB (an `acme.json` with hundreds of certificates is
/// well under 1 MiB).
const MAX_BYTES: usize = 16 << 20;

impl Engine {
    /// The content of the file `path` in the container `container` (on the engine we talk to).
    pub async fn container_file(
        &self,
        container: &str,
        path: &str,
    ) -> Result<Vec<u8>, EngineError> {
        let mut s = self.docker.download_from_container(
            container,
            Some(q::DownloadFromContainerOptions { path: path.into() }),
        );
        let mut tar = Vec::new();
        while let Some(chunk) = s.next().await {
            let chunk = chunk.map_err(|source| EngineError::Api {
                action: "read",
                object: format!("{path} in container {container}"),
                source,
            })?;
            tar.extend_from_slice(&chunk);
            if tar.len() > MAX_BYTES + 1024 {
                break;
            }
        }
        first_file(&tar).ok_or_else(|| EngineError::Io {
            action: "read",
            object: format!("{path} in container {container}"),
            source: std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "the engine's archive holds no regular file (or one over 16 MiB)",
            ),
        })
    }
}

/// The first regular file of a tar archive, if it is at most [`MAX_BYTES`].
pub(crate) fn first_file(tar: &[u8]) -> Option<Vec<u8>> {
    let mut at = 0;
    while at + 512 <= tar.len() {
        let h = &tar[at..at + 512];
        if h.iter().all(|b| *b == 0) {
            return None;
        }
        let size = std::str::from_utf8(&h[124..136]).ok()?;
        let size =
            usize::from_str_radix(size.trim_matches(|c: char| c == '\0' || c == ' '), 8).ok()?;
        let start = at + 512;
        // `0` (or NUL, old tars): a regular file; anything else (a PAX header, a directory) is
        // skipped.
        if matches!(h[156], b'0' | 0) {
            return (size <= MAX_BYTES)
                .then(|| tar.get(start..start + size).map(<[u8]>::to_vec))
                .flatten();
        }
        at = start + size.div_ceil(512) * 512;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(name: &str, size: usize, kind: u8) -> Vec<u8> {
        let mut h = vec![0u8; 512];
        h[..name.len()].copy_from_slice(name.as_bytes());
        h[124..135].copy_from_slice(format!("{size:011o}").as_bytes());
        h[156] = kind;
        h
    }

    #[test]
    fn the_file_after_a_pax_header() {
        let mut tar = header("PaxHeaders/acme.json", 20, b'x');
        tar.extend_from_slice(&[b'p'; 20]);
        tar.resize(1024, 0);
        tar.extend(header("acme.json", 5, b'0'));
        tar.extend_from_slice(b"hello");
        tar.resize(2048 + 1024, 0);
        assert_eq!(first_file(&tar), Some(b"hello".to_vec()));
        assert_eq!(first_file(&[0u8; 1024]), None);
        assert_eq!(first_file(&header("dir/", 0, b'5')), None);
    }
}
