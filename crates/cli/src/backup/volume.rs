//! Data volumes in a backup: the files of a volume mounted into the backup task, as a tar
//! stream (modes, owners and times kept; links kept as links, never followed), and back into
//! the volume mounted into the restore task. Blocking file work, on a blocking thread; the
//! bytes pass through channels so that nothing is held whole in memory.

use std::io::{Read, Write};
use std::path::Path;
use tokio::sync::mpsc;

/// Writes the tar of `dir` into `tx`, in chunks. Run on a blocking thread. Fails when the
/// receiver is gone (the upload stopped) or a file cannot be read.
pub fn pack(dir: &str, tx: mpsc::Sender<Vec<u8>>) -> Result<(), String> {
    let out = std::io::BufWriter::with_capacity(256 << 10, Chunks(tx));
    let mut b = tar::Builder::new(out);
    b.follow_symlinks(false);
    b.mode(tar::HeaderMode::Complete);
    b.append_dir_all(".", dir)
        .map_err(|e| format!("reading volume folder {dir}: {}", chain(&e)))?;
    let out = b.into_inner().map_err(|e| e.to_string())?;
    out.into_inner()
        .map_err(|e| e.into_error().to_string())?
        .flush()
        .map_err(|e| e.to_string())
}

struct Chunks(mpsc::Sender<Vec<u8>>);

impl Write for Chunks {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.blocking_send(buf.to_vec()).map_err(|_| {
            std::io::Error::new(std::io::ErrorKind::BrokenPipe, "the upload stopped")
        })?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A blocking reader over the restore's plaintext chunks.
pub struct Plain {
    rx: mpsc::Receiver<Result<Vec<u8>, String>>,
    chunk: Vec<u8>,
    at: usize,
}

impl Plain {
    pub fn new(rx: mpsc::Receiver<Result<Vec<u8>, String>>) -> Plain {
        Plain {
            rx,
            chunk: Vec::new(),
            at: 0,
        }
    }
}

impl Read for Plain {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.at == self.chunk.len() {
            match self.rx.blocking_recv() {
                None => return Ok(0),
                Some(Ok(c)) => {
                    self.chunk = c;
                    self.at = 0;
                }
                Some(Err(e)) => return Err(std::io::Error::other(e)),
            }
        }
        let n = buf.len().min(self.chunk.len() - self.at);
        buf[..n].copy_from_slice(&self.chunk[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

/// What the folder holds (`None`: nothing): its files and their bytes.
pub fn holding(dir: &str) -> Result<Option<String>, String> {
    fn walk(p: &Path, files: &mut u64, bytes: &mut u64) -> std::io::Result<()> {
        for e in std::fs::read_dir(p)? {
            let e = e?;
            let t = e.file_type()?;
            if t.is_dir() {
                walk(&e.path(), files, bytes)?;
            } else {
                *files += 1;
                *bytes += e.metadata()?.len();
            }
        }
        Ok(())
    }
    let (mut files, mut bytes) = (0, 0);
    walk(Path::new(dir), &mut files, &mut bytes)
        .map_err(|e| format!("reading volume folder {dir}: {e}"))?;
    Ok((files > 0).then(|| format!("{files} files, {}", super::human_bytes(bytes))))
}

/// Empties `dir` (the mount point stays) and unpacks the tar read from `from` into it, with the
/// files' modes, owners and times. Entries that would land outside `dir` are refused by the tar
/// reader. Run on a blocking thread.
pub fn unpack(dir: &str, from: impl Read) -> Result<(), String> {
    for e in std::fs::read_dir(dir).map_err(|e| format!("volume folder {dir}: {e}"))? {
        let p = e.map_err(|e| e.to_string())?.path();
        let gone = if p.is_dir() && !p.is_symlink() {
            std::fs::remove_dir_all(&p)
        } else {
            std::fs::remove_file(&p)
        };
        gone.map_err(|e| format!("emptying {}: {e}", p.display()))?;
    }
    let mut a = tar::Archive::new(from);
    a.set_preserve_permissions(true);
    a.set_preserve_ownerships(true);
    a.set_preserve_mtime(true);
    a.set_overwrite(true);
    a.unpack(dir)
        .map_err(|e| format!("unpacking into {dir}: {}", chain(&e)))
}

/// An error with its causes (the tar reader wraps the stream's own error).
fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        s.push_str(&format!(": {c}"));
        cause = c.source();
    }
    s
}

/// Puts one file back (`acme.json`): written beside it with mode 0600, then renamed over it.
/// An empty artefact (the backup found no file) puts nothing back.
pub fn put_file(path: &str, body: &[u8]) -> Result<Option<String>, String> {
    if body.is_empty() {
        return Ok(Some("nothing: the backup found no file there".to_string()));
    }
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = format!("{path}.restoring");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(|e| format!("{tmp}: {e}"))?;
    f.write_all(body)
        .and_then(|_| f.sync_all())
        .map_err(|e| format!("{tmp}: {e}"))?;
    std::fs::rename(&tmp, path).map_err(|e| format!("{path}: {e}"))?;
    Ok(None)
}

/// What a file holds (`None`: not there or empty).
pub fn file_holding(path: &str) -> Result<Option<String>, String> {
    match std::fs::metadata(path) {
        Ok(m) if m.len() > 0 => Ok(Some(format!("{path}, {}", super::human_bytes(m.len())))),
        Ok(_) => Ok(None),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!("{path}: {e}")),
    }
}

/// A file's bytes, empty when it is not there yet (Traefik has made no acme.json).
pub fn read_file(path: &str) -> Result<Vec<u8>, String> {
    match std::fs::read(path) {
        Ok(b) => Ok(b),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(format!("read {path}: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[tokio::test(flavor = "multi_thread")]
    async fn a_folder_comes_back_as_it_was_and_what_was_there_goes() {
        let from = tempfile::tempdir().unwrap();
        let d = from.path();
        std::fs::create_dir(d.join("sub")).unwrap();
        std::fs::write(d.join("config"), b"{\"encryptionKey\":\"k\"}").unwrap();
        std::fs::set_permissions(d.join("config"), std::fs::Permissions::from_mode(0o600)).unwrap();
        std::fs::write(d.join("sub/data"), vec![7u8; 300_000]).unwrap();
        std::os::unix::fs::symlink("/etc/passwd", d.join("link")).unwrap();
        assert_eq!(
            holding(d.to_str().unwrap()).unwrap().as_deref(),
            Some("3 files, 293.0 KiB")
        );

        let (tx, mut rx) = mpsc::channel(4);
        let dir = d.to_str().unwrap().to_string();
        let packer = tokio::task::spawn_blocking(move || pack(&dir, tx));
        let mut tar = Vec::new();
        while let Some(c) = rx.recv().await {
            tar.extend(c);
        }
        packer.await.unwrap().unwrap();

        let to = tempfile::tempdir().unwrap();
        std::fs::write(to.path().join("stale"), b"made after the backup").unwrap();
        let (ptx, prx) = mpsc::channel(4);
        let dir = to.path().to_str().unwrap().to_string();
        let unpacker = tokio::task::spawn_blocking(move || unpack(&dir, Plain::new(prx)));
        for c in tar.chunks(10_000) {
            ptx.send(Ok(c.to_vec())).await.unwrap();
        }
        drop(ptx);
        unpacker.await.unwrap().unwrap();
        let t = to.path();
        assert!(!t.join("stale").exists(), "what was there is replaced");
        assert_eq!(
            std::fs::read(t.join("config")).unwrap(),
            b"{\"encryptionKey\":\"k\"}"
        );
        let mode = std::fs::metadata(t.join("config"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "its mode kept");
        assert_eq!(std::fs::read(t.join("sub/data")).unwrap().len(), 300_000);
        assert_eq!(
            std::fs::read_link(t.join("link")).unwrap(),
            Path::new("/etc/passwd"),
            "a link stays a link, never followed"
        );
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_broken_stream_fails_the_unpack() {
        let to = tempfile::tempdir().unwrap();
        let (ptx, prx) = mpsc::channel(4);
        let dir = to.path().to_str().unwrap().to_string();
        let unpacker = tokio::task::spawn_blocking(move || unpack(&dir, Plain::new(prx)));
        ptx.send(Err("it does not decrypt to its end".into()))
            .await
            .unwrap();
        drop(ptx);
        let e = unpacker.await.unwrap().unwrap_err();
        assert!(e.contains("does not decrypt"), "{e}");
    }

    #[test]
    fn a_file_is_put_back_private_and_an_empty_one_is_nothing() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("acme.json");
        let p = p.to_str().unwrap();
        assert_eq!(file_holding(p).unwrap(), None);
        assert_eq!(read_file(p).unwrap(), b"");
        assert!(put_file(p, b"").unwrap().is_some());
        assert!(!Path::new(p).exists());
        assert_eq!(put_file(p, b"{\"r\":{}}").unwrap(), None);
        let mode = std::fs::metadata(p).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(file_holding(p).unwrap().unwrap(), format!("{p}, 8 B"));
    }
}
