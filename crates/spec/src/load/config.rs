//! A service's `configs`: files next to the spec, read now so a missing one is a validation
//! error rather than a failed deploy.
//!
//! A config's content is shipped to the swarm and readable in the container, its hash is
//! published in the config's name and its path in a label. So the file must be the spec's own:
//! inside the spec's folder by its written form (no absolute path, no `..` above the folder)
//! and by its canonical form (no symlink out of the folder), and small enough for Swarm. What
//! the disk says comes in through [`super::Files`] (`canonicalize` and `read`).

use super::service::ServiceCx;
use super::{pos, Resolver};
use crate::model;
use crate::raw::S;
use std::path::{Component, Path, PathBuf};

/// The largest config file accepted, in bytes: 500 KiB, what swarmkit has always taken (newer
/// engines take up to 1000 KiB, older ones refuse more than 500 KiB).
pub const MAX_CONFIG_BYTES: usize = 500 * 1024;

const HELP_INSIDE: &str =
    "config paths are relative to the spec file's folder and stay inside it: copy the file there";

impl<'a> Resolver<'a> {
    /// `configs`: each file checked, then read through its canonical path.
    pub(super) fn configs(&mut self, cx: &ServiceCx<'_, 'a>) -> Vec<model::ConfigFile> {
        let mut configs = Vec::new();
        for c in &cx.svc.configs {
            let Some((path, content)) = self.config_file(&c.value.file) else {
                continue;
            };
            configs.push(model::ConfigFile {
                file: c.value.file.value.clone(),
                path,
                target: c.value.target.clone(),
                mode: c.value.mode.unwrap_or(0o444),
                content,
            });
        }
        configs
    }

    /// The file's path as the spec reaches it (relative to the current directory when the spec's
    /// path is) and its content; `None` when a rule failed (reported).
    pub(super) fn config_file(&mut self, file: &S<String>) -> Option<(PathBuf, Vec<u8>)> {
        let written = Path::new(&file.value);
        if written.has_root() || written.is_absolute() {
            self.err(
                "config-file-outside-spec",
                pos(file),
                format!(
                    "config file `{}` is an absolute path: it must be inside the spec's folder",
                    file.value
                ),
            )
            .help = Some(HELP_INSIDE.into());
            return None;
        }
        // `..` above the folder, by the written path alone.
        let mut depth = 0usize;
        for part in written.components() {
            match part {
                Component::ParentDir if depth == 0 => {
                    self.err(
                        "config-file-outside-spec",
                        pos(file),
                        format!(
                            "config file `{}` climbs out of the spec's folder with `..`",
                            file.value
                        ),
                    )
                    .help = Some(HELP_INSIDE.into());
                    return None;
                }
                Component::ParentDir => depth -= 1,
                Component::Normal(_) => depth += 1,
                _ => {}
            }
        }
        let path = self.spec_dir.join(written);
        let unreadable = |this: &mut Self, e: std::io::Error| {
            this.err(
                "missing-config-file",
                pos(file),
                format!("cannot read config file `{}`: {e}", path.display()),
            )
            .help = Some("config paths are relative to the spec file's folder".into());
        };
        // The canonical forms (symlinks followed): `.` stands for a spec in the current folder.
        let dir = if self.spec_dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            self.spec_dir.as_path()
        };
        let real = match (self.files.canonicalize)(&dir.join(written)) {
            Ok(p) => p,
            Err(e) => {
                unreadable(self, e);
                return None;
            }
        };
        let real_dir = match (self.files.canonicalize)(dir) {
            Ok(p) => p,
            Err(e) => {
                unreadable(self, e);
                return None;
            }
        };
        if !real.starts_with(&real_dir) {
            self.err(
                "config-file-outside-spec",
                pos(file),
                format!(
                    "config file `{}` is really `{}` (through a symlink), outside the spec's folder `{}`",
                    file.value,
                    real.display(),
                    real_dir.display()
                ),
            )
            .help = Some(HELP_INSIDE.into());
            return None;
        }
        // Read what was checked, not the path again (a symlink could change in between).
        let content = match (self.files.read)(&real) {
            Ok(c) => c,
            Err(e) => {
                unreadable(self, e);
                return None;
            }
        };
        if content.len() > MAX_CONFIG_BYTES {
            self.err(
                "config-file-too-large",
                pos(file),
                format!(
                    "config file `{}` is {} bytes; Swarm takes configs of at most {MAX_CONFIG_BYTES} bytes (500 KiB)",
                    file.value,
                    content.len()
                ),
            )
            .help = Some("mount large files from a volume or bake them into the image".into());
            return None;
        }
        Some((path, content))
    }
}
