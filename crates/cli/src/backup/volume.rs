//! Data volumes in a backup: the files of a volume mounted into the backup task, as a tar
//! stream (modes, owners and times kept; links kept as links, never followed), and back into
//! the volume mounted into the restore task. Blocking file work, on a blocking thread; the
//! bytes pass through channels so that nothing is held whole in memory.

use std::io::{Read, Write};
use std::path::Path;
use tokio::sync::mpsc;

/// Writes the tar of `dir` into `tx`, in chunks. Run on a blocking thread. Fails when the
/// receiver is gone (the upload stopped) or a folder cannot be read.
///
/// The folder is live (its service runs), so each file is stored with the size it had when it
/// was opened, read to exactly that length (padded with zeros if it shrank: a tar whose header
/// and body disagree is unreadable past that file); a file gone since it was listed is left
/// out, and so are sockets, pipes and devices (not data). The folder itself is the first entry
/// (`./`), so that its own mode and owner come back too.
pub fn pack(dir: &str, tx: mpsc::Sender<Vec<u8>>) -> Result<(), String> {
    let out = std::io::BufWriter::with_capacity(256 << 10, Chunks(tx));
    let mut b = tar::Builder::new(out);
    let root = Path::new(dir);
    walk(&mut b, root, Path::new("."))
        .map_err(|e| format!("reading volume folder {dir}: {}", chain(&e)))?;
    let out = b.into_inner().map_err(|e| e.to_string())?;
    out.into_inner()
        .map_err(|e| e.into_error().to_string())?
        .flush()
        .map_err(|e| e.to_string())
}

/// Appends `at` (a folder: itself, then what it holds) as `name`.
fn walk<W: Write>(b: &mut tar::Builder<W>, at: &Path, name: &Path) -> std::io::Result<()> {
    let Some(meta) = present(std::fs::symlink_metadata(at))? else {
        return Ok(());
    };
    let mut h = tar::Header::new_gnu();
    h.set_metadata_in_mode(&meta, tar::HeaderMode::Complete);
    let t = meta.file_type();
    if t.is_dir() {
        h.set_size(0);
        b.append_data(&mut h, name, std::io::empty())?;
        let Some(rd) = present(std::fs::read_dir(at))? else {
            return Ok(());
        };
        let mut entries: Vec<std::path::PathBuf> =
            rd.filter_map(|e| e.ok().map(|e| e.path())).collect();
        entries.sort();
        for e in entries {
            let Some(file) = e.file_name() else { continue };
            walk(b, &e, &name.join(file))?;
        }
    } else if t.is_symlink() {
        let Some(target) = present(std::fs::read_link(at))? else {
            return Ok(());
        };
        h.set_size(0);
        b.append_link(&mut h, name, target)?;
    } else if t.is_file() {
        let Some(f) = present(std::fs::File::open(at))? else {
            return Ok(());
        };
        // Its length now, from the open file: what the header says and the body holds.
        let len = f.metadata()?.len();
        h.set_size(len);
        b.append_data(
            &mut h,
            name,
            Exactly {
                inner: f.take(len),
                left: len,
            },
        )?;
    }
    Ok(())
}

/// `None` for what was removed since it was listed (the folder is live); other errors stay.
fn present<T>(r: std::io::Result<T>) -> std::io::Result<Option<T>> {
    match r {
        Ok(v) => Ok(Some(v)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// `left` bytes: those of `inner`, then zeros if it ends early (the file shrank meanwhile).
struct Exactly<R> {
    inner: R,
    left: u64,
}

impl<R: Read> Read for Exactly<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.left == 0 {
            return Ok(0);
        }
        let want = buf.len().min(self.left as usize);
        let mut n = self.inner.read(&mut buf[..want])?;
        if n == 0 {
            buf[..want].fill(0);
            n = want;
        }
        self.left -= n as u64;
        Ok(n)
    }
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

/// Where a restore unpacks before anything of the volume is touched.
const STAGING: &str = ".sprocket-restoring";

/// Puts the tar read from `from` into `dir` (a volume's mount point), with the files' modes,
/// owners and times, the folder's own too. It is unpacked first into a staging folder inside
/// the volume; only once the whole tar is read does what was there go and the staged entries
/// take its place (renames on one file system) — a broken stream, a wrong key or a full disk
/// leaves the volume as it was. Entries that would land outside are refused by the tar reader.
/// Run on a blocking thread.
pub fn unpack(dir: &str, from: impl Read) -> Result<(), String> {
    let root = Path::new(dir);
    let staging = root.join(STAGING);
    let fail = |e: String| {
        let _ = std::fs::remove_dir_all(&staging);
        e
    };
    if staging.exists() {
        std::fs::remove_dir_all(&staging)
            .map_err(|e| format!("an earlier restore's {}: {e}", staging.display()))?;
    }
    std::fs::create_dir(&staging).map_err(|e| format!("{}: {e}", staging.display()))?;
    let mut a = tar::Archive::new(from);
    a.set_preserve_permissions(true);
    a.set_preserve_ownerships(true);
    a.set_preserve_mtime(true);
    a.set_overwrite(true);
    let mut own: Option<tar::Header> = None;
    let entries = a
        .entries()
        .map_err(|e| fail(format!("reading the volume's tar: {}", chain(&e))))?;
    for entry in entries {
        let mut entry =
            entry.map_err(|e| fail(format!("reading the volume's tar: {}", chain(&e))))?;
        let path = entry.path().map_err(|e| fail(e.to_string()))?.into_owned();
        if path.components().all(|c| c == std::path::Component::CurDir) {
            // The folder itself: applied to the mount point at the end.
            own = Some(entry.header().clone());
            continue;
        }
        entry
            .unpack_in(&staging)
            .map_err(|e| fail(format!("unpacking {}: {}", path.display(), chain(&e))))?;
    }
    // The whole tar is in: what was there goes, the staged entries move in.
    for e in std::fs::read_dir(root).map_err(|e| fail(format!("volume folder {dir}: {e}")))? {
        let p = e.map_err(|e| fail(e.to_string()))?.path();
        if p == staging {
            continue;
        }
        let gone = if p.is_dir() && !p.is_symlink() {
            std::fs::remove_dir_all(&p)
        } else {
            std::fs::remove_file(&p)
        };
        gone.map_err(|e| fail(format!("emptying {}: {e}", p.display())))?;
    }
    for e in std::fs::read_dir(&staging).map_err(|e| fail(e.to_string()))? {
        let p = e.map_err(|e| fail(e.to_string()))?.path();
        let Some(name) = p.file_name() else { continue };
        std::fs::rename(&p, root.join(name))
            .map_err(|e| fail(format!("moving {} into place: {e}", p.display())))?;
    }
    std::fs::remove_dir(&staging).map_err(|e| format!("{}: {e}", staging.display()))?;
    if let Some(h) = own {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(mode) = h.mode() {
            std::fs::set_permissions(root, std::fs::Permissions::from_mode(mode & 0o7777))
                .map_err(|e| format!("{dir}'s mode: {e}"))?;
        }
        if let (Ok(uid), Ok(gid)) = (h.uid(), h.gid()) {
            std::os::unix::fs::chown(root, Some(uid as u32), Some(gid as u32))
                .map_err(|e| format!("{dir}'s owner: {e}"))?;
        }
    }
    Ok(())
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
        return Ok(Some(NOTHING_PUT_BACK.to_string()));
    }
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = format!("{path}.restoring");
    // A fresh file: never one (or a link) left at that name.
    present(std::fs::remove_file(&tmp)).map_err(|e| format!("{tmp}: {e}"))?;
    let written = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .and_then(|mut f| f.write_all(body).and_then(|_| f.sync_all()))
        .and_then(|_| std::fs::rename(&tmp, path));
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(format!("{path}: {e}"));
    }
    Ok(None)
}

/// What a restored file holds when its artefact was empty (the backup found no file there).
pub const NOTHING_PUT_BACK: &str = "nothing: the backup found no file there";

/// What a file holds (`None`: not there or empty).
pub fn file_holding(path: &str) -> Result<Option<String>, String> {
    let m = present(std::fs::metadata(path)).map_err(|e| format!("{path}: {e}"))?;
    Ok(m.filter(|m| m.len() > 0)
        .map(|m| format!("{path}, {}", super::human_bytes(m.len()))))
}

/// A file's bytes, empty when it is not there yet (Traefik has made no acme.json).
pub fn read_file(path: &str) -> Result<Vec<u8>, String> {
    present(std::fs::read(path))
        .map(Option::unwrap_or_default)
        .map_err(|e| format!("read {path}: {e}"))
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
        std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o750)).unwrap();
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
        let root = std::fs::metadata(t).unwrap().permissions().mode();
        assert_eq!(root & 0o777, 0o750, "the folder's own mode too");
        assert!(!t.join(STAGING).exists());
    }

    #[test]
    fn a_file_that_shrinks_while_read_keeps_its_headers_length() {
        let mut r = Exactly {
            inner: &b"abc"[..],
            left: 6,
        };
        let mut out = Vec::new();
        r.read_to_end(&mut out).unwrap();
        assert_eq!(out, b"abc\0\0\0");
        // One that grew is read to its length when opened.
        let mut r = Exactly {
            inner: (&b"abcdef"[..]).take(4),
            left: 4,
        };
        let mut out = Vec::new();
        r.read_to_end(&mut out).unwrap();
        assert_eq!(out, b"abcd");
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_broken_stream_fails_the_unpack_and_leaves_the_volume_as_it_was() {
        let to = tempfile::tempdir().unwrap();
        std::fs::write(to.path().join("config"), b"today's key").unwrap();
        let (ptx, prx) = mpsc::channel(4);
        let dir = to.path().to_str().unwrap().to_string();
        let unpacker = tokio::task::spawn_blocking(move || unpack(&dir, Plain::new(prx)));
        ptx.send(Err("it does not decrypt to its end".into()))
            .await
            .unwrap();
        drop(ptx);
        let e = unpacker.await.unwrap().unwrap_err();
        assert!(e.contains("does not decrypt"), "{e}");
        assert_eq!(
            std::fs::read(to.path().join("config")).unwrap(),
            b"today's key"
        );
        assert!(!to.path().join(STAGING).exists(), "no staging left");
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
