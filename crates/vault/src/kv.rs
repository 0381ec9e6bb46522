//! KV version 2, as the secrets pipeline uses it: read a document's current version, write one
//! with check-and-set (a concurrent writer is never clobbered), read a document's metadata.
//! Values are held in [`KvValue`], which never shows them in `Debug`.

use crate::api::Authed;
use crate::client::VaultError;
use serde_json::{json, Value};

/// One field of one version of a KV v2 document. `Debug` shows its version, never its value.
#[derive(Clone, PartialEq, Eq)]
pub struct KvValue {
    pub version: u64,
    /// RFC 3339, as Vault gives it.
    pub created_time: String,
    /// The field's value; `None` when the document has no such field.
    pub value: Option<String>,
}

impl std::fmt::Debug for KvValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "KvValue {{ version: {}, created_time: {}, value: {} }}",
            self.version,
            self.created_time,
            if self.value.is_some() {
                "<redacted>"
            } else {
                "none"
            }
        )
    }
}

/// What a document is now: nothing, a live version, or a version deleted or destroyed (the
/// next write must name it as `cas`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KvState {
    Absent,
    Live(KvValue),
    Gone { version: u64 },
}

impl KvState {
    /// The version a check-and-set write must name: 0 when there is none.
    pub fn cas(&self) -> u64 {
        match self {
            KvState::Absent => 0,
            KvState::Live(v) => v.version,
            KvState::Gone { version } => *version,
        }
    }
}

/// Why a KV write did not happen.
#[derive(Debug, thiserror::Error)]
pub enum KvWriteError {
    /// Someone wrote a version since it was read.
    #[error("{path} changed in Vault since it was read (check-and-set expected version {expected}): another writer is at work; run again to read the new version")]
    Conflict { path: String, expected: u64 },
    #[error(transparent)]
    Vault(#[from] VaultError),
}

fn u64_at(v: &Value, ptr: &str) -> u64 {
    v.pointer(ptr).and_then(Value::as_u64).unwrap_or(0)
}

impl Authed<'_> {
    /// `LIST MOUNT/metadata/PATH`: the documents and folders (ending in `/`) under a folder.
    pub async fn kv_list(&self, mount: &str, path: &str) -> Result<Vec<String>, VaultError> {
        self.list(&format!("{mount}/metadata/{path}")).await
    }

    /// `GET MOUNT/data/PATH`, then `GET MOUNT/metadata/PATH` when there is no live version.
    pub async fn kv_read(&self, mount: &str, path: &str, key: &str) -> Result<KvState, VaultError> {
        if let Some(d) = self.read(&format!("{mount}/data/{path}")).await? {
            let meta = &d["metadata"];
            let deleted = meta["deletion_time"]
                .as_str()
                .is_some_and(|t| !t.is_empty())
                || meta["destroyed"].as_bool() == Some(true);
            let version = u64_at(meta, "/version");
            if !deleted && version > 0 {
                return Ok(KvState::Live(KvValue {
                    version,
                    created_time: meta["created_time"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string(),
                    value: d["data"][key].as_str().map(str::to_string),
                }));
            }
        }
        Ok(
            match self.read(&format!("{mount}/metadata/{path}")).await? {
                Some(m) if u64_at(&m, "/current_version") > 0 => KvState::Gone {
                    version: u64_at(&m, "/current_version"),
                },
                _ => KvState::Absent,
            },
        )
    }

    /// `POST MOUNT/data/PATH` with `options.cas`: writes `{key: value}` as the next version only
    /// if the current one is still `cas` (0: only if there is none). The new version's number.
    pub async fn kv_write(
        &self,
        mount: &str,
        path: &str,
        key: &str,
        value: &str,
        cas: u64,
    ) -> Result<u64, KvWriteError> {
        let body = json!({ "options": { "cas": cas }, "data": { key: value } });
        match self.write(&format!("{mount}/data/{path}"), &body).await {
            Ok(Some(r)) => Ok(u64_at(&r, "/data/version")),
            Ok(None) => Err(KvWriteError::Vault(VaultError::Protocol {
                addr: String::new(),
                call: format!("POST {mount}/data/{path}"),
                reason: "no version in the answer".into(),
            })),
            Err(e) if e.status() == Some(400) && e.to_string().contains("check-and-set") => {
                Err(KvWriteError::Conflict {
                    path: format!("{mount}/{path}"),
                    expected: cas,
                })
            }
            Err(e) => Err(e.into()),
        }
    }
}
