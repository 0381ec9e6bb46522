//! Vault's lifecycle as sprocketctl drives it: reach the listener, initialise once (keys
//! encrypted to the operators before anything else happens), unseal from the keyring.
//! Used by the `vault` commands and by `up` between layer 1 and layer 2. The root token's own
//! lifecycle is here too: revoked once the admin token works, generated again from the unseal
//! keys for break-glass work.
//!
//! The rules that make the original's five attempts unnecessary:
//! - `sys/init` has no client timeout, and its answer is written (encrypted, atomically) before
//!   any other call; if that write fails, an encrypted copy goes to a fallback path, and if that
//!   fails too, the ciphertext is printed on stderr (it is encrypted to the operators): the keys
//!   are never dropped while a message says they were kept.
//! - An initialised Vault without a keyring is never re-initialised: that would need its data
//!   destroyed. The error says how to recover.
//! - Recipients are parsed before `sys/init`, so a typo cannot strand the keys.

use crate::output::Progress;
use crate::vault_config::{SessionKind, VaultConfigError};
use serde::Serialize;
use sprocket_spec::model::{Platform, Vault};
use sprocket_vault::api::{DecodeRootError, RootEndpoint};
use sprocket_vault::{Keyring, KeyringError, Role, SealStatus, VaultClient, VaultError};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

mod shield;

#[derive(Debug, thiserror::Error)]
pub enum LifecycleError {
    #[error(transparent)]
    Vault(#[from] VaultError),
    #[error(transparent)]
    Keyring(#[from] KeyringError),
    #[error("Vault at {addr} is already initialised, but there is no keyring at {path}.\n  It will not be initialised again (that would need its data destroyed). The unseal keys are with whoever initialised it:\n  restore the keyring from your backup to {path}; or, if this Vault's data is disposable, remove the service `{service}` (`docker service rm <namespace>_{service}`) and then only its data volume (`docker volume rm <namespace>_<its volume>`), and run `up` again. Not `sprocketctl down --volumes`: that removes every layer's volumes and every secret.")]
    InitializedWithoutKeyring {
        addr: String,
        path: PathBuf,
        service: String,
    },
    #[error("Vault was initialised but its answer could not be read ({reason}). The answer, which holds the unseal keys and the root token, was saved encrypted to the operators at {kept}.\n  hint: open it with `age -d -i <your identity> {kept}` to recover the keys; Vault will not be initialised again")]
    InitAnswerUnreadable { reason: String, kept: PathBuf },
    #[error("Vault was initialised but the keyring could not be written to {path} ({reason}); an encrypted copy was saved to {fallback}. Move it to {path} before anything else.")]
    KeyringWriteFailed {
        path: PathBuf,
        fallback: PathBuf,
        reason: String,
    },
    #[error("Vault was initialised but the keyring could not be written to {path} ({reason}), nor an encrypted copy to {fallback} ({fallback_reason}). The keyring was printed on stderr instead, encrypted to the operators, between the lines `-----BEGIN AGE ENCRYPTED FILE-----` and `-----END AGE ENCRYPTED FILE-----`: it holds the only copy of the unseal keys.\n  hint: save those lines, both markers included, exactly as printed to {path} before anything else; `sprocketctl vault unseal` then opens it")]
    KeyringNotSaved {
        path: PathBuf,
        fallback: PathBuf,
        reason: String,
        fallback_reason: String,
    },
    #[error(
        "Vault at {addr} did not answer within {secs}s: {last}{}",
        socket_hint(addr)
    )]
    NotListening {
        addr: String,
        secs: u64,
        last: String,
    },
    #[error("no identity to open the keyring {keyring}\n  hint: pass --identity (or SPROCKET_IDENTITY) with your age identity or SSH private key; `sprocketctl vault keygen` makes one at ~/.config/sprocket/identity.txt")]
    NoIdentity { keyring: PathBuf },
    #[error("Vault at {addr} is unsealed but did not become the active node within {secs}s\n  hint: `sprocketctl vault status`; with several replicas, check that raft has a leader (`bao operator raft list-peers`)")]
    NotActive { addr: String, secs: u64 },
    #[error("unsealing stopped at {progress}/{threshold} shares: the keyring's keys do not unseal this Vault (was it re-initialised?)")]
    WrongKeys { progress: u32, threshold: u32 },
    #[error(transparent)]
    Config(#[from] VaultConfigError),
    #[error("{source}\n  hint: OpenBao before 2.6 and Vault need `disable_unauthed_generate_root_endpoints = false` on the listener while a root token is generated")]
    RootEndpointRefused { source: VaultError },
    #[error("Vault answered no generate-root attempt")]
    NoRootAttempt,
    #[error("generate-root did not complete with the keyring's keys")]
    RootIncomplete,
    #[error(transparent)]
    DecodeRoot(#[from] DecodeRootError),
    #[error("the generated token is not a root token")]
    NotRoot,
}

/// The default identity: `~/.config/sprocket/identity.txt`, if it exists.
pub fn default_identity() -> Option<PathBuf> {
    let p = PathBuf::from(std::env::var_os("HOME")?).join(".config/sprocket/identity.txt");
    p.exists().then_some(p)
}

/// How to reach Vault from here: `addr` when given (`--vault-addr`); else its private listener,
/// the Unix socket in the Vault service's socket volume under the engine's root folder
/// (`docker_root`) on this machine. Never through the shared router: a route there could be
/// captured by another service, and anyone reaching it could call `sys/init` first.
pub fn client(p: &Platform, addr: Option<&str>, docker_root: &Path) -> Option<VaultClient> {
    if let Some(a) = addr {
        return Some(VaultClient::new(a));
    }
    let v = p.vault.as_ref()?;
    p.service(&v.service)?;
    Some(VaultClient::over_socket(
        &sprocket_desired::contract::vault_socket::host_path(docker_root, &p.environment.namespace),
    ))
}

/// When the private socket does not answer: it exists only on the node that runs Vault.
fn socket_hint(addr: &str) -> &'static str {
    if addr.starts_with("unix:") {
        "\n  hint: the socket is Vault's private listener, on the node that runs Vault's task: run sprocketctl on that node (`docker service ps <namespace>_vault`), or pass --vault-addr"
    } else {
        ""
    }
}

/// Polls `sys/seal-status` until the listener answers (a task that just started, or Traefik
/// that has not picked up the route yet).
pub async fn wait_listener(
    c: &VaultClient,
    timeout: Duration,
) -> Result<SealStatus, LifecycleError> {
    let until = Instant::now() + timeout;
    loop {
        match c.seal_status().await {
            Ok(s) => return Ok(s),
            Err(e) if Instant::now() >= until => {
                return Err(LifecycleError::NotListening {
                    addr: c.address(),
                    secs: timeout.as_secs(),
                    last: e.to_string(),
                })
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

#[derive(Debug, Serialize, Default)]
pub struct VaultReport {
    pub address: String,
    pub initialized: bool,
    pub sealed: bool,
    pub version: String,
    pub threshold: u32,
    pub shares: u32,
    pub keyring: String,
    pub keyring_exists: bool,
    /// Fingerprint of the keyring's key set, when it was opened.
    pub keyring_fingerprint: Option<String>,
    /// `active`, `standby`, `sealed` or `uninitialised` (`vault status`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ha_role: Option<Role>,
    /// What this run did: `initialised`, `unsealed`.
    pub actions: Vec<String>,
    /// Why something was not done (no identity, no recipients).
    pub notes: Vec<String>,
    /// What `up` changed of Vault's configuration, and what it could not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub config: Option<crate::vault_config::Applied>,
    /// The platform's secrets as `up` synced them to Vault (versions, keyed fingerprints).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secrets: Option<Vec<crate::secrets_sync::Synced>>,
    /// Why [`ensure`] could not open the keyring although the keys were wanted or needed to
    /// unseal. Its caller says it, through [`keys_unavailable`].
    #[serde(skip)]
    pub keyring_error: Option<LifecycleError>,
}

impl VaultReport {
    pub fn from(c: &VaultClient, v: &Vault, s: &SealStatus) -> VaultReport {
        VaultReport {
            address: c.address(),
            initialized: s.initialized,
            sealed: s.sealed,
            version: s.version.clone(),
            threshold: s.t,
            shares: s.n,
            keyring: v.keyring.display().to_string(),
            keyring_exists: v.keyring.exists(),
            ..Default::default()
        }
    }
}

fn now_secs() -> u64 {
    crate::clock::unix_now().as_secs()
}

/// Initialises Vault if it is not yet. Returns the keyring (in memory) when this call made it.
pub async fn init(
    c: &VaultClient,
    v: &Vault,
    namespace: &str,
    p: Progress,
) -> Result<(VaultReport, Option<Keyring>), LifecycleError> {
    let status = wait_listener(c, Duration::from_secs(60)).await?;
    let mut report = VaultReport::from(c, v, &status);
    if status.initialized {
        if !v.keyring.exists() {
            return Err(LifecycleError::InitializedWithoutKeyring {
                addr: c.address(),
                path: v.keyring.clone(),
                service: v.service.clone(),
            });
        }
        report
            .notes
            .push("already initialised; keyring present".into());
        return Ok((report, None));
    }
    // Nothing irreversible before the recipients are known to be good.
    sprocket_vault::keyring::parse_recipients(&v.recipients)?;
    if v.keyring.exists() {
        // A keyring of a Vault whose data is gone (volume removed): keep it, out of the way.
        let aside = v
            .keyring
            .with_extension(format!("age.replaced-{}", now_secs()));
        std::fs::rename(&v.keyring, &aside).map_err(|e| KeyringError::Io {
            path: v.keyring.clone(),
            source: e,
        })?;
        report
            .notes
            .push(format!("an older keyring was moved to {}", aside.display()));
    }
    p.say(format!(
        "vault: initialising ({} shares, threshold {}); this can take several seconds",
        v.shares, v.threshold
    ));
    let started = Instant::now();
    // From here until the keyring is on disk, the keys exist only in this process.
    let shield = shield::Shield::hold();
    let raw = c.init_raw(v.shares, v.threshold).await?;
    let answer = match c.parse_init(&raw) {
        Ok(a) => a,
        // An answer that does not read may still hold the only copy of the keys: kept,
        // encrypted to the operators, before anything is reported.
        Err(e) => {
            let kept = v.keyring.with_file_name(format!(
                "{}.init-answer-{}.age",
                v.keyring
                    .file_name()
                    .map(|f| f.to_string_lossy().to_string())
                    .unwrap_or_default(),
                now_secs()
            ));
            let sealed = sprocket_vault::keyring::seal_bytes(&raw, &v.recipients)?;
            let fallback = std::env::temp_dir().join(format!(
                "sprocket-init-answer-{namespace}-{}.age",
                now_secs()
            ));
            keep_sealed_keyring(&kept, &fallback, &sealed, &mut std::io::stderr())?;
            return Err(LifecycleError::InitAnswerUnreadable {
                reason: e.to_string(),
                kept,
            });
        }
    };
    let keyring = Keyring {
        format: 1,
        vault: format!("{namespace} at {}", c.address()),
        created_at: now_secs(),
        shares: v.shares,
        threshold: v.threshold,
        unseal_keys_b64: answer.keys_base64,
        root_token: answer.root_token,
        admin_token: None,
        recipients: v.recipients.clone(),
    };
    let sealed = keyring.seal(&v.recipients)?;
    let fallback =
        std::env::temp_dir().join(format!("sprocket-keyring-{namespace}-{}.age", now_secs()));
    keep_sealed_keyring(&v.keyring, &fallback, &sealed, &mut std::io::stderr())?;
    shield.release();
    p.say(format!(
        "vault: initialised in {:.1}s; keyring {} (fingerprint {}, encrypted to {} recipient(s))",
        started.elapsed().as_secs_f64(),
        v.keyring.display(),
        keyring.fingerprint(),
        v.recipients.len()
    ));
    report.initialized = true;
    report.shares = v.shares;
    report.threshold = v.threshold;
    report.keyring_exists = true;
    report.keyring_fingerprint = Some(keyring.fingerprint());
    report.actions.push("initialised".into());
    Ok((report, Some(keyring)))
}

/// Writes the sealed (encrypted) keyring to `path`; if that fails, to `fallback`; if that fails
/// too, prints it on `last_resort` (stderr) with what to do. The error says which of these
/// happened, never more than did. Only ciphertext is ever written or printed.
fn keep_sealed_keyring(
    path: &Path,
    fallback: &Path,
    sealed: &[u8],
    last_resort: &mut dyn std::io::Write,
) -> Result<(), LifecycleError> {
    let Err(e) = sprocket_vault::keyring::write_atomic(path, sealed) else {
        return Ok(());
    };
    let reason = e.to_string();
    match sprocket_vault::keyring::write_atomic(fallback, sealed) {
        Ok(()) => Err(LifecycleError::KeyringWriteFailed {
            path: path.to_path_buf(),
            fallback: fallback.to_path_buf(),
            reason,
        }),
        Err(f) => {
            // Armoured age: ASCII, and safe to show (it opens only with an operator's key).
            let _ = writeln!(
                last_resort,
                "vault: the keyring could not be written anywhere; here it is, encrypted to the operators. Save everything from the BEGIN line to the END line, exactly, to {}:\n{}",
                path.display(),
                String::from_utf8_lossy(sealed).trim_end()
            );
            let _ = last_resort.flush();
            Err(LifecycleError::KeyringNotSaved {
                path: path.to_path_buf(),
                fallback: fallback.to_path_buf(),
                reason,
                fallback_reason: f.to_string(),
            })
        }
    }
}

/// Waits until Vault is the active node: right after unsealing, raft elects it leader (a
/// moment as a standby that cannot serve writes).
pub async fn wait_active(c: &VaultClient, timeout: Duration) -> Result<(), LifecycleError> {
    let until = Instant::now() + timeout;
    loop {
        match c.is_active().await {
            Ok(true) => return Ok(()),
            Ok(false) | Err(_) if Instant::now() < until => {
                tokio::time::sleep(Duration::from_millis(100)).await
            }
            Ok(false) => {
                return Err(LifecycleError::NotActive {
                    addr: c.address(),
                    secs: timeout.as_secs(),
                })
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// Submits shares until Vault is unsealed.
pub async fn unseal(c: &VaultClient, k: &Keyring) -> Result<SealStatus, LifecycleError> {
    let mut status = c.seal_status().await?;
    for key in &k.unseal_keys_b64 {
        if !status.sealed {
            break;
        }
        status = c.unseal(key).await?;
    }
    if status.sealed {
        return Err(LifecycleError::WrongKeys {
            progress: status.progress,
            threshold: status.t,
        });
    }
    Ok(status)
}

/// Opens the keyring with `identity` (or the default one).
pub fn open_keyring(v: &Vault, identity: Option<&Path>) -> Result<Keyring, LifecycleError> {
    if !v.keyring.exists() {
        return Err(KeyringError::Missing {
            path: v.keyring.clone(),
        }
        .into());
    }
    let id = identity
        .map(Path::to_path_buf)
        .or_else(default_identity)
        .ok_or_else(|| LifecycleError::NoIdentity {
            keyring: v.keyring.clone(),
        })?;
    Ok(Keyring::open(&v.keyring, &id)?)
}

/// Opens the keyring of an initialised Vault: without one, the keys are with whoever initialised
/// it, which is what the error says (not "no keyring", which suggests `vault init`).
fn open_initialised_keyring(
    c: &VaultClient,
    v: &Vault,
    identity: Option<&Path>,
) -> Result<Keyring, LifecycleError> {
    match open_keyring(v, identity) {
        Err(LifecycleError::Keyring(KeyringError::Missing { path })) => {
            Err(LifecycleError::InitializedWithoutKeyring {
                addr: c.address(),
                path,
                service: v.service.clone(),
            })
        }
        other => other,
    }
}

/// What `up` does after the layer that holds Vault is healthy: initialise if needed (the keys are
/// then in memory, no identity needed), unseal if sealed. Operator-dependent gaps (no recipients
/// yet, no identity to open the keyring) are notes, not failures: nothing in the platform reads
/// Vault yet.
///
/// Returns the keys when they are at hand: just made, opened to unseal, or — with `want_keys`
/// (the unseal agent's material must be made, or the configuration applied) — opened from the
/// keyring. When they are not although wanted, `report.keyring_error` holds why, and the caller
/// names that one cause where it needed them ([`keys_unavailable`]); so the note that a sealed
/// Vault stays sealed for want of an identity is made here only without `want_keys`.
pub async fn ensure(
    c: &VaultClient,
    v: &Vault,
    namespace: &str,
    identity: Option<&Path>,
    want_keys: bool,
    p: Progress,
) -> Result<(VaultReport, Option<Keyring>), LifecycleError> {
    let status = wait_listener(c, Duration::from_secs(60)).await?;
    let mut report = VaultReport::from(c, v, &status);
    let mut keys = None;
    if !status.initialized {
        if v.recipients.is_empty() {
            report.notes.push(
                "not initialised: `vault.recipients` names no key yet (`sprocketctl vault keygen`)"
                    .into(),
            );
            return Ok((report, None));
        }
        let (r, k) = init(c, v, namespace, p).await?;
        report = r;
        keys = k;
    }
    let status = c.seal_status().await?;
    if status.sealed {
        let k = match keys {
            Some(k) => k,
            None => match open_initialised_keyring(c, v, identity) {
                Ok(k) => k,
                Err(e @ LifecycleError::NoIdentity { .. }) => {
                    if !want_keys {
                        report.notes.push(format!("sealed: {}", one_line(&e)));
                    }
                    report.keyring_error = Some(e);
                    return Ok((report, None));
                }
                Err(e) => return Err(e),
            },
        };
        let started = Instant::now();
        let s = unseal(c, &k).await?;
        p.say(format!(
            "vault: unsealed in {:.2}s",
            started.elapsed().as_secs_f64()
        ));
        report.sealed = s.sealed;
        report.keyring_fingerprint = Some(k.fingerprint());
        report.actions.push("unsealed".into());
        keys = Some(k);
    }
    report.sealed = c.seal_status().await?.sealed;
    if !report.sealed {
        // Configuration and tokens need the active node (one just unsealed — by us or by the
        // agent — is a standby until raft elects it).
        wait_active(c, Duration::from_secs(60)).await?;
    }
    if keys.is_none() && want_keys {
        match open_initialised_keyring(c, v, identity) {
            Ok(k) => keys = Some(k),
            Err(e) => report.keyring_error = Some(e),
        }
    }
    Ok((report, keys))
}

/// What a root-token command did. Fingerprints only.
#[derive(Debug, serde::Serialize)]
pub struct RootReport {
    pub action: String,
    /// 12 hex digits of SHA-256 of the new root token.
    pub root_token_fingerprint: Option<String>,
    pub admin_token: bool,
}

/// Revokes the keyring's root token, after making sure the admin token works (so `up` keeps
/// working), and drops it from the keyring.
pub async fn revoke_root(
    c: &VaultClient,
    v: &Vault,
    k: &mut Keyring,
    p: Progress,
) -> Result<RootReport, LifecycleError> {
    k.check_recipients(&v.keyring, &v.recipients)?;
    let s = crate::vault_config::session(c, v, k, true, p).await?;
    debug_assert_eq!(s.kind, SessionKind::Admin);
    if k.root_token.is_empty() {
        return Ok(RootReport {
            action: "already revoked".into(),
            root_token_fingerprint: None,
            admin_token: true,
        });
    }
    match c.with_token(&k.root_token).revoke_self().await {
        Ok(()) => {}
        // Already gone (revoked by someone else): drop it all the same.
        Err(e) if e.status() == Some(403) => {}
        Err(e) => return Err(e.into()),
    }
    k.root_token.clear();
    k.save(&v.keyring, &v.recipients)
        .map_err(|source| VaultConfigError::KeyringNotRewritten {
            done: "the root token was revoked",
            source,
        })?;
    p.say(
        "vault: root token revoked and removed from the keyring; `up` works with the admin token",
    );
    Ok(RootReport {
        action: "revoked".into(),
        root_token_fingerprint: None,
        admin_token: true,
    })
}

/// Makes a new root token from the unseal keys: OpenBao's authenticated
/// `sys/generate-root-token` (with the admin token), else Vault's `sys/generate-root`. The token
/// comes back XOR-encoded with a one-time password that never leaves this process.
pub async fn generate_root(
    c: &VaultClient,
    v: &Vault,
    k: &mut Keyring,
    p: Progress,
) -> Result<RootReport, LifecycleError> {
    // The new root token goes into the keyring: nothing starts if it could not be saved there.
    k.check_recipients(&v.keyring, &v.recipients)?;
    // The admin token (renewed on the way), else the root token.
    let token = crate::vault_config::session(c, v, k, false, p).await?.token;
    let api = c.with_token(&token);
    let attempt = match api.generate_root_start(RootEndpoint::Authenticated).await {
        Ok(Some(a)) => a,
        // Not there (HashiCorp Vault, OpenBao before 2.6): the unauthenticated endpoints.
        Ok(None) => unauthenticated_attempt(&api).await?,
        Err(e) if e.status() == Some(405) => unauthenticated_attempt(&api).await?,
        Err(e) => return Err(e.into()),
    };
    p.say(format!(
        "vault: generating a root token from {} unseal keys",
        k.threshold
    ));
    let mut encoded = None;
    for key in &k.unseal_keys_b64 {
        encoded = api.generate_root_update(&attempt, key).await?;
        if encoded.is_some() {
            break;
        }
    }
    let encoded = encoded.ok_or(LifecycleError::RootIncomplete)?;
    let root = sprocket_vault::api::decode_root(&encoded, &attempt.otp)?;
    // From here a root token exists: if it cannot be kept, it is revoked, never left alive
    // with nobody holding it.
    let kept = async {
        let policies = c.token_policies(&root).await?;
        if !policies.iter().any(|p| p == "root") {
            return Err(LifecycleError::NotRoot);
        }
        let mut copy = k.clone();
        copy.root_token = root.clone();
        copy.save(&v.keyring, &v.recipients).map_err(|source| {
            VaultConfigError::KeyringNotRewritten {
                done: "a root token was generated",
                source,
            }
        })?;
        Ok(copy)
    }
    .await;
    match kept {
        Ok(copy) => *k = copy,
        Err(e) => {
            if let Err(r) = c.with_token(&root).revoke_self().await {
                p.say(format!(
                    "vault: the root token just generated could not be revoked ({r}): nobody holds it; revoke it by its accessor (`bao list auth/token/accessors`, `bao token revoke -accessor …`)"
                ));
            }
            return Err(e);
        }
    }
    p.say(
        "vault: new root token kept in the keyring (never printed; `vault revoke-root` when done)",
    );
    Ok(RootReport {
        action: "generated".into(),
        root_token_fingerprint: Some(sprocket_desired::state::short_hash(k.root_token.as_bytes())),
        admin_token: k.admin_token.is_some(),
    })
}

/// A generate-root attempt at the unauthenticated endpoints, which a listener may have disabled.
async fn unauthenticated_attempt(
    api: &sprocket_vault::Authed<'_>,
) -> Result<sprocket_vault::api::RootAttempt, LifecycleError> {
    api.generate_root_start(RootEndpoint::Unauthenticated)
        .await
        .map_err(|source| LifecycleError::RootEndpointRefused { source })?
        .ok_or(LifecycleError::NoRootAttempt)
}

// ---------------------------------------------------------------------------------------------
// The one cause. `up`'s Vault step (apply.rs `vault_step`) explains every missing key with "the
// keyring could not be opened (no identity)", whatever the cause, next to notes that may say
// another one. It is to name the cause this returns instead (apply.rs is being rewritten).

/// Why the keys are not at hand after [`ensure`] although `up` needed them (the tokens it cannot
/// issue, the configuration it did not check, the unseal agent it did not deploy): the one true
/// cause and its fix, on one line — not initialised, no keyring, no identity, the wrong
/// identity, an unusable identity file, a damaged keyring, or a sealed Vault.
pub fn keys_unavailable(report: &VaultReport) -> String {
    if !report.initialized {
        return "Vault is not initialised: `vault.recipients` names no key yet (`sprocketctl vault keygen`, then `up`)".into();
    }
    match (&report.keyring_error, report.sealed) {
        (Some(e), true) => format!("Vault is sealed and cannot be unsealed: {}", one_line(e)),
        (Some(e), false) => one_line(e),
        (None, true) => "Vault is sealed; `sprocketctl vault unseal` unseals it".into(),
        (None, false) => "the keyring was not opened (`up` opens it only when the configuration or the unseal agent needs it)".into(),
    }
}

/// An error and its hint on one line, for notes and the reasons that embed it.
fn one_line(e: &LifecycleError) -> String {
    let text = e.to_string().replace("\n  hint: ", "; ");
    text.lines().map(str::trim).collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests;
