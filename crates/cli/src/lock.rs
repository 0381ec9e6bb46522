//! One changing command per namespace at a time on this machine: `up`, `down` and the Vault
//! ceremonies hold an advisory lock (`flock`) on `<temp>/sprocketctl-<namespace>.lock` while they
//! run. Two concurrent `up`s would otherwise each make a generated secret's version and split the
//! services between them, or one `init` move the other's fresh keyring aside. The kernel drops
//! the lock when the process ends, however it ends: a crashed run never leaves it stuck. The
//! file names the holder (pid and command), for the message of whoever waits.

use crate::output::Progress;
use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Held while alive; dropping it releases the lock.
pub struct NamespaceLock {
    _file: File,
}

pub fn path(namespace: &str) -> PathBuf {
    std::env::temp_dir().join(format!("sprocketctl-{namespace}.lock"))
}

/// Takes the namespace's lock for `command`, waiting up to `wait` (saying so) while another
/// sprocketctl holds it.
pub async fn acquire(
    namespace: &str,
    command: &str,
    wait: Duration,
    p: Progress,
) -> Result<NamespaceLock, crate::error::CliError> {
    let path = path(namespace);
    let failed = |e: std::io::Error| {
        crate::error::CliError::Failed(format!(
            "cannot open the lock file {}: {e}\n  hint: another user may own it; remove it when no sprocketctl runs",
            path.display()
        ))
    };
    let mut file = open(&path).map_err(failed)?;
    let until = Instant::now() + wait;
    let mut said = false;
    loop {
        match file.try_lock() {
            Ok(()) => break,
            Err(TryLockError::WouldBlock) => {
                let holder = holder(&mut file);
                if Instant::now() >= until {
                    return Err(crate::error::CliError::Blocked(format!(
                        "another sprocketctl ({holder}) is changing namespace `{namespace}`; nothing was changed\n  hint: wait for it to finish and run again (the lock goes when that process ends: {})",
                        path.display()
                    )));
                }
                if !said {
                    p.say(format!(
                        "waiting for another sprocketctl ({holder}) on namespace `{namespace}`"
                    ));
                    said = true;
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(TryLockError::Error(e)) => return Err(failed(e)),
        }
    }
    // Ours now: say who holds it (best effort; the lock itself is what counts).
    let _ = file.set_len(0).and_then(|_| {
        file.rewind()?;
        write!(file, "pid {} ({command})", std::process::id())
    });
    Ok(NamespaceLock { _file: file })
}

fn open(path: &std::path::Path) -> std::io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o644)
        // In a shared temp folder: never follow a link someone planted at the lock's name.
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        // Made by another user: a read-only descriptor locks as well.
        .or_else(|e| match e.kind() {
            std::io::ErrorKind::PermissionDenied => OpenOptions::new()
                .read(true)
                .custom_flags(libc::O_NOFOLLOW)
                .open(path),
            _ => Err(e),
        })
}

fn holder(file: &mut File) -> String {
    let mut s = String::new();
    let _ = file.rewind().and_then(|_| file.read_to_string(&mut s));
    let s = s.trim();
    if s.is_empty() || s.len() > 100 {
        "a process".into()
    } else {
        s.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_planted_link_is_not_followed() {
        let ns = format!("linktest-{}", std::process::id());
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("precious");
        std::fs::write(&target, "keep me").unwrap();
        let _ = std::fs::remove_file(path(&ns));
        std::os::unix::fs::symlink(&target, path(&ns)).unwrap();
        let got = acquire(&ns, "up", Duration::ZERO, Progress { enabled: false }).await;
        assert!(got.is_err(), "a link at the lock's name is refused");
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "keep me");
        let _ = std::fs::remove_file(path(&ns));
    }

    #[tokio::test]
    async fn a_second_holder_waits_then_is_refused_and_a_dropped_lock_frees_it() {
        let ns = format!("locktest-{}", std::process::id());
        let quiet = Progress { enabled: false };
        let first = acquire(&ns, "up", Duration::ZERO, quiet).await.unwrap();
        let t0 = Instant::now();
        let second = acquire(&ns, "down", Duration::from_millis(400), quiet).await;
        let Err(crate::error::CliError::Blocked(msg)) = second else {
            panic!("the second run got the lock");
        };
        assert!(t0.elapsed() >= Duration::from_millis(400), "it waited");
        assert!(
            msg.contains(&format!("pid {} (up)", std::process::id())),
            "{msg}"
        );
        drop(first);
        let third = acquire(&ns, "up", Duration::ZERO, quiet).await;
        assert!(third.is_ok(), "released when its holder went");
        let _ = std::fs::remove_file(path(&ns));
    }
}
