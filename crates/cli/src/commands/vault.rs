//! `vault keygen | init | unseal | status | revoke-root | generate-root`: Vault's keys, held by
//! the operators, encrypted; the root token used once and retired.

use super::{load, Ctx};
use crate::error::CliError;
use crate::exit;
use crate::output::{self, Format};
use crate::vault_lifecycle::{self as life, LifecycleError};
use clap::Subcommand;
use serde::Serialize;
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub access: super::VaultAccess,
    #[command(subcommand)]
    pub command: VaultCommand,
}

#[derive(Subcommand)]
pub enum VaultCommand {
    /// Make your own age identity (~/.config/sprocket/identity.txt, mode 0600) and its public key
    /// (age.pub beside it), for the spec's `vault.recipients`.
    Keygen {
        /// Replace an existing identity; the old one is moved aside (`identity.txt.replaced-<time>`):
        /// keyrings encrypted to it open only with it.
        #[arg(long)]
        force: bool,
    },
    /// Initialise Vault once: the unseal keys and root token go straight into the keyring,
    /// encrypted to the operators. Safe to re-run.
    Init {
        /// Also print the unseal keys and the root token (they are never printed otherwise).
        #[arg(long)]
        reveal: bool,
    },
    /// Unseal Vault with the keyring.
    Unseal,
    /// Initialised? Sealed? Version, thresholds, and which keyring would unseal it.
    Status,
    /// Revoke the root token and drop it from the keyring (after making sure the scoped admin
    /// token that `up` works with is there).
    RevokeRoot,
    /// Make a new root token from the unseal keys (for break-glass work); it goes into the
    /// keyring, never to the screen. `vault revoke-root` when done.
    GenerateRoot,
    /// Show whom the keyring is encrypted to and how that differs from the spec's
    /// `vault.recipients`; with --confirm, re-encrypt it to the spec's (the previous file is
    /// kept beside it). Nothing else ever changes the recipients.
    Recipients {
        /// Re-encrypt the keyring to the spec's recipients.
        #[arg(long)]
        confirm: bool,
    },
}

impl VaultCommand {
    /// The subcommand as typed (for the namespace lock's holder).
    fn name(&self) -> &'static str {
        match self {
            VaultCommand::Keygen { .. } => "keygen",
            VaultCommand::Init { .. } => "init",
            VaultCommand::Unseal => "unseal",
            VaultCommand::Status => "status",
            VaultCommand::RevokeRoot => "revoke-root",
            VaultCommand::GenerateRoot => "generate-root",
            VaultCommand::Recipients { .. } => "recipients",
        }
    }
}

#[derive(Serialize)]
struct Keygen {
    identity: PathBuf,
    recipient: String,
    /// Where `--force` moved the previous identity.
    #[serde(skip_serializing_if = "Option::is_none")]
    replaced: Option<PathBuf>,
}

#[derive(Serialize)]
struct Revealed<'a> {
    #[serde(flatten)]
    report: &'a life::VaultReport,
    unseal_keys_b64: &'a [String],
    root_token: &'a str,
}

pub async fn run(ctx: &Ctx, a: Args) -> Result<i32, CliError> {
    if let VaultCommand::Keygen { force } = a.command {
        return keygen(ctx, force);
    }
    let loaded = load(ctx)?;
    let p = &loaded.platform;
    let Some(v) = p.vault.clone() else {
        return Err(CliError::Invalid(format!("environment `{}` runs no Vault: the spec needs a `vault:` section and an enabled service with `role: vault`", p.environment.name)));
    };
    if let VaultCommand::Recipients { confirm } = a.command {
        let _lock = crate::lock::acquire(
            &p.environment.namespace,
            "vault recipients",
            super::LOCK_WAIT,
            ctx.progress,
        )
        .await?;
        return recipients(ctx, &v, a.access.identity.as_deref(), confirm);
    }
    // Without --vault-addr: Vault's private socket, under the engine's root folder.
    let docker_root = match a.access.vault_addr {
        Some(_) => PathBuf::new(),
        None => super::connect().await?.root_dir,
    };
    let Some(client) = life::client(p, a.access.vault_addr.as_deref(), &docker_root) else {
        return Err(CliError::Invalid(format!(
            "Vault service `{}` does not run in environment `{}`; pass --vault-addr",
            v.service, p.environment.name
        )));
    };
    let identity = a.access.identity.as_deref();
    // Every ceremony but `status` changes Vault or the keyring: one at a time per namespace.
    let _lock = match &a.command {
        VaultCommand::Status | VaultCommand::Keygen { .. } | VaultCommand::Recipients { .. } => {
            None
        }
        other => Some(
            crate::lock::acquire(
                &p.environment.namespace,
                &format!("vault {}", other.name()),
                super::LOCK_WAIT,
                ctx.progress,
            )
            .await?,
        ),
    };
    let report = match a.command {
        VaultCommand::Keygen { .. } | VaultCommand::Recipients { .. } => {
            unreachable!("they need no Vault: handled first")
        }
        VaultCommand::RevokeRoot => return root(ctx, &client, &v, identity, Root::Revoke).await,
        VaultCommand::GenerateRoot => {
            return root(ctx, &client, &v, identity, Root::Generate).await
        }
        VaultCommand::Init { reveal } => {
            let ns = &p.environment.namespace;
            match init(ctx, &client, &v, ns, identity, reveal).await? {
                Some(report) => report,
                None => return Ok(exit::OK),
            }
        }
        VaultCommand::Unseal => unseal(&client, &v, identity).await?,
        VaultCommand::Status => status(&client, &v, identity).await?,
    };
    match ctx.format {
        Format::Json => output::json(&report),
        Format::Human => print_human(&report),
    }
    Ok(exit::OK)
}

enum Root {
    Revoke,
    Generate,
}

/// `vault revoke-root` / `vault generate-root`: Vault unsealed and active first.
async fn root(
    ctx: &Ctx,
    client: &sprocket_vault::VaultClient,
    v: &sprocket_spec::model::Vault,
    identity: Option<&std::path::Path>,
    what: Root,
) -> Result<i32, CliError> {
    let mut k = life::open_keyring(v, identity)?;
    if client.seal_status().await?.sealed {
        return Err(CliError::Failed(
            "Vault is sealed: run `sprocketctl vault unseal` first".into(),
        ));
    }
    life::wait_active(client, std::time::Duration::from_secs(30)).await?;
    let r = match what {
        Root::Revoke => life::revoke_root(client, v, &mut k, ctx.progress).await?,
        Root::Generate => life::generate_root(client, v, &mut k, ctx.progress).await?,
    };
    match ctx.format {
        Format::Json => output::json(&r),
        Format::Human => println!(
            "root token: {}{}",
            r.action,
            r.root_token_fingerprint
                .as_ref()
                .map(|f| format!(" (fingerprint {f})"))
                .unwrap_or_default()
        ),
    }
    Ok(exit::OK)
}

/// `vault init [--reveal]`: `None` when the report was already printed (revealed).
async fn init(
    ctx: &Ctx,
    client: &sprocket_vault::VaultClient,
    v: &sprocket_spec::model::Vault,
    ns: &str,
    identity: Option<&std::path::Path>,
    reveal: bool,
) -> Result<Option<life::VaultReport>, CliError> {
    let (mut report, keys) = life::init(client, v, ns, ctx.progress).await?;
    if let Some(k) = &keys {
        let s = life::unseal(client, k).await?;
        report.sealed = s.sealed;
        report.actions.push("unsealed".into());
        client.token_policies(k.token()).await?;
    }
    if !reveal {
        return Ok(Some(report));
    }
    let k = match keys {
        Some(k) => k,
        None => life::open_keyring(v, identity)?,
    };
    let r = Revealed {
        report: &report,
        unseal_keys_b64: &k.unseal_keys_b64,
        root_token: &k.root_token,
    };
    match ctx.format {
        Format::Json => output::json(&r),
        Format::Human => {
            print_human(&report);
            for (i, key) in k.unseal_keys_b64.iter().enumerate() {
                println!("unseal key {}: {key}", i + 1);
            }
            println!("root token: {}", k.root_token);
        }
    }
    Ok(None)
}

async fn unseal(
    client: &sprocket_vault::VaultClient,
    v: &sprocket_spec::model::Vault,
    identity: Option<&std::path::Path>,
) -> Result<life::VaultReport, LifecycleError> {
    let status = life::wait_listener(client, std::time::Duration::from_secs(30)).await?;
    let mut report = life::VaultReport::from(client, v, &status);
    if !status.initialized {
        report
            .notes
            .push("not initialised: run `sprocketctl vault init` first".into());
        return Ok(report);
    }
    let k = life::open_keyring(v, identity)?;
    report.keyring_fingerprint = Some(k.fingerprint());
    if status.sealed {
        let s = life::unseal(client, &k).await?;
        report.sealed = s.sealed;
        report.actions.push("unsealed".into());
    } else {
        report.notes.push("already unsealed".into());
    }
    Ok(report)
}

async fn status(
    client: &sprocket_vault::VaultClient,
    v: &sprocket_spec::model::Vault,
    identity: Option<&std::path::Path>,
) -> Result<life::VaultReport, LifecycleError> {
    let s = life::wait_listener(client, std::time::Duration::from_secs(10)).await?;
    let mut report = life::VaultReport::from(client, v, &s);
    report.ha_role = client.health().await.ok().map(|h| h.role());
    match life::open_keyring(v, identity) {
        Ok(k) if k.threshold == s.t && k.shares == s.n => {
            report.keyring_fingerprint = Some(k.fingerprint());
            report.notes.push(format!(
                "keyring {} ({} of {} shares) would unseal it",
                k.fingerprint(),
                k.threshold,
                k.shares
            ));
        }
        Ok(k) => report.notes.push(format!(
            "keyring {} holds {} of {} shares, Vault wants {} of {}: not this Vault's",
            k.fingerprint(),
            k.threshold,
            k.shares,
            s.t,
            s.n
        )),
        Err(e) => report.notes.push(format!(
            "keyring: {}",
            e.to_string().lines().next().unwrap_or_default()
        )),
    }
    Ok(report)
}

#[derive(Serialize)]
struct RecipientsReport {
    keyring: PathBuf,
    /// Whom it is encrypted to (empty: a keyring written before this was recorded).
    recorded: Vec<String>,
    spec: Vec<String>,
    added: Vec<String>,
    removed: Vec<String>,
    rewritten: bool,
    /// The keyring as it was, kept when it was rewritten.
    #[serde(skip_serializing_if = "Option::is_none")]
    previous: Option<PathBuf>,
}

/// `vault recipients`: the difference between the keyring's recipients and the spec's, and with
/// `confirm` the re-encryption (the old file moved aside first: a mistaken change never locks
/// the operators out).
fn recipients(
    ctx: &Ctx,
    v: &sprocket_spec::model::Vault,
    identity: Option<&std::path::Path>,
    confirm: bool,
) -> Result<i32, CliError> {
    let mut k = life::open_keyring(v, identity)?;
    let (added, removed) = k.recipient_change(&v.recipients);
    let changed = !added.is_empty() || !removed.is_empty() || k.recipients.is_empty();
    let mut r = RecipientsReport {
        keyring: v.keyring.clone(),
        recorded: k.recipients.clone(),
        spec: v.recipients.clone(),
        added,
        removed,
        rewritten: false,
        previous: None,
    };
    if confirm && changed {
        let aside = v.keyring.with_extension(format!(
            "age.replaced-{}",
            crate::clock::unix_now().as_secs()
        ));
        std::fs::copy(&v.keyring, &aside).map_err(|e| {
            CliError::Failed(format!(
                "cannot keep a copy of {} at {}: {e}; nothing was changed",
                v.keyring.display(),
                aside.display()
            ))
        })?;
        k.save_to(&v.keyring, &v.recipients)
            .map_err(|e| CliError::Failed(e.to_string()))?;
        r.rewritten = true;
        r.previous = Some(aside);
    }
    match ctx.format {
        Format::Json => output::json(&r),
        Format::Human => {
            let show = |l: &[String]| {
                if l.is_empty() {
                    "none".to_string()
                } else {
                    l.join(", ")
                }
            };
            println!("keyring {}", r.keyring.display());
            println!(
                "  encrypted to: {}",
                if r.recorded.is_empty() {
                    "not recorded (an older keyring)".into()
                } else {
                    show(&r.recorded)
                }
            );
            println!("  added by the spec: {}", show(&r.added));
            println!("  removed by the spec: {}", show(&r.removed));
            match (&r.previous, changed) {
                (Some(prev), _) => println!(
                    "  re-encrypted to the spec's {} recipient(s); the previous file is kept at {} (delete it once the new one opens, above all if a recipient was removed for cause)",
                    r.spec.len(),
                    prev.display()
                ),
                (None, true) => println!("  run again with --confirm to re-encrypt it to the spec's recipients"),
                (None, false) => println!("  matches the spec"),
            }
        }
    }
    Ok(exit::OK)
}

fn print_human(r: &life::VaultReport) {
    println!("vault {}  {}", r.address, r.version);
    println!(
        "  initialised: {}   sealed: {}   shares: {} (threshold {}){}",
        r.initialized,
        r.sealed,
        r.shares,
        r.threshold,
        r.ha_role
            .as_ref()
            .map(|h| format!("   HA role: {h}"))
            .unwrap_or_default()
    );
    println!(
        "  keyring: {}{}",
        r.keyring,
        match (&r.keyring_fingerprint, r.keyring_exists) {
            (Some(f), _) => format!(" (fingerprint {f})"),
            (None, true) => " (present)".into(),
            (None, false) => " (missing)".into(),
        }
    );
    for a in &r.actions {
        println!("  {a}");
    }
    for n in &r.notes {
        println!("  note: {n}");
    }
}

fn keygen(ctx: &Ctx, force: bool) -> Result<i32, CliError> {
    let Some(home) = std::env::var_os("HOME").map(PathBuf::from) else {
        return Err(CliError::Failed("HOME is not set".into()));
    };
    let dir = home.join(".config/sprocket");
    let identity = dir.join("identity.txt");
    if identity.exists() && !force {
        return Err(CliError::Invalid(format!(
            "{} exists; keep it (keyrings are encrypted to it) or pass --force",
            identity.display()
        )));
    }
    // --force never destroys a key: keyrings may be encrypted to it alone (local/offline), so
    // the old identity is moved aside, like a replaced keyring.
    let replaced = if identity.exists() {
        let aside = identity.with_extension(format!(
            "txt.replaced-{}",
            crate::clock::unix_now().as_secs()
        ));
        std::fs::rename(&identity, &aside).map_err(|e| {
            CliError::Failed(format!(
                "cannot move {} aside to {}: {e}; nothing was changed",
                identity.display(),
                aside.display()
            ))
        })?;
        Some(aside)
    } else {
        None
    };
    let id = age::x25519::Identity::generate();
    let recipient = id.to_public().to_string();
    let secret = age::secrecy::ExposeSecret::expose_secret(&id.to_string()).to_string();
    let text = format!(
        "# sprocketctl operator identity, made at unix time {}\n# public key: {recipient}\n{secret}\n",
        crate::clock::unix_now().as_secs()
    );
    if let Err(e) =
        sprocket_vault::keyring::write_atomic(&identity, text.as_bytes()).and_then(|_| {
            sprocket_vault::keyring::write_atomic(
                &dir.join("age.pub"),
                format!("{recipient}\n").as_bytes(),
            )
        })
    {
        return Err(CliError::Failed(format!(
            "cannot write {}: {e}",
            identity.display()
        )));
    }
    let r = Keygen {
        identity,
        recipient,
        replaced,
    };
    match ctx.format {
        Format::Json => output::json(&r),
        Format::Human => {
            println!(
                "identity {} (keep it private)\npublic key {}",
                r.identity.display(),
                r.recipient
            );
            if let Some(old) = &r.replaced {
                eprintln!(
                    "the previous identity was moved to {}: keyrings encrypted to it still open with it (--identity {})",
                    old.display(),
                    old.display()
                );
            }
        }
    }
    Ok(exit::OK)
}
