//! `sprocketctl drill`: proves the newest backup (or `--from`) restores, and measures how long
//! it takes. The platform is rebuilt from nothing in a scratch namespace of the same swarm
//! (`<namespace>-drill`, on free host ports, with a keyring file of its own and self-signed
//! certificates: [`sprocket_spec::model::Scratch`]), the backup is restored into it with
//! `--force`, the result is checked, and the scratch platform is taken down — its logins and
//! databases on the external datastores with it. Each step runs as its own `sprocketctl`
//! process on the scratch copy (its own lock and report), so a drill does exactly what an
//! operator's recovery would do.
//!
//! The result — each step's and each component's time, what each holds after, the recovery
//! time and point against the runbook's targets — is printed and kept in the bucket
//! (`_drills/<namespace>/<id>.json`, no value in it) for `check`. A drill that was stopped
//! leaves its scratch platform; the next one removes it first.

use super::store::{self, StoreArgs};
use crate::commands::Ctx;
use crate::error::CliError;
use crate::output::{self, Format};
use sprocket_backup::drill::{self, Component, Record, Step};
use sprocket_check::Kind;
use sprocket_spec::model::Scratch;
use std::path::PathBuf;
use std::time::Instant;

#[derive(clap::Args)]
pub struct Args {
    /// The backup to drill (an id from `backup ls`; default: the newest complete one — unless
    /// it may be of a rebuilt, still empty platform, as for `restore`: then it names both and
    /// stops).
    #[arg(long)]
    pub from: Option<String>,
    /// An operator's private key: an age identity file or an unencrypted OpenSSH private key
    /// (default ~/.config/sprocket/identity.txt).
    #[arg(long, env = "SPROCKET_IDENTITY")]
    pub identity: Option<PathBuf>,
    /// Seconds `up` waits for each service in the rebuild and after the restore, and the
    /// restore's own deadline.
    #[arg(long, default_value_t = 900, value_parser = clap::value_parser!(u64).range(60..=86_400))]
    pub timeout: u64,
    /// Leave the scratch platform running after the drill (to look at it); the next drill
    /// removes it first.
    #[arg(long)]
    pub keep: bool,
    #[command(flatten)]
    pub store: StoreArgs,
}

/// Two host ports nothing listens on now, for the scratch platform's edge router.
fn free_ports() -> Result<(u16, u16), CliError> {
    let bind = || {
        std::net::TcpListener::bind(("0.0.0.0", 0))
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .map_err(|e| CliError::Failed(format!("no free port for the scratch platform: {e}")))
    };
    let (a, b) = (bind()?, bind()?);
    if a == b {
        return free_ports();
    }
    Ok((a, b))
}

/// One step: a `sprocketctl -o json …` child on the scratch copy; its exit code, its JSON
/// report and its seconds.
fn step(ctx: &Ctx, args: &[&str]) -> (i32, serde_json::Value, f64) {
    let t = Instant::now();
    let (code, json) = ctx.run_json(args);
    (code, json, t.elapsed().as_secs_f64())
}

/// A `check` report's critical findings, "subject: detail": about the platform, and about the
/// node it runs on ([`Kind::of_the_node`]).
fn critical_findings(report: &serde_json::Value) -> (Vec<String>, Vec<String>) {
    let mut platform = Vec::new();
    let mut node = Vec::new();
    for f in report["findings"].as_array().into_iter().flatten() {
        if f["severity"] != "critical" {
            continue;
        }
        let line = format!(
            "{}: {}",
            f["subject"].as_str().unwrap_or("?"),
            f["detail"].as_str().unwrap_or("")
        );
        match serde_json::from_value::<Kind>(f["kind"].clone()) {
            Ok(k) if k.of_the_node() => node.push(line),
            _ => platform.push(line),
        }
    }
    (platform, node)
}

/// What a failed child said: its report's `error`, else its exit code.
fn why(code: i32, json: &serde_json::Value) -> String {
    json.get("error")
        .and_then(|e| e.as_str())
        .map(str::to_string)
        .unwrap_or_else(|| format!("it ended with exit code {code}"))
}

/// Removes the scratch platform: its logins and databases on the external datastores (while
/// it still runs: the removal uses its networks and administrators' secrets), then every
/// object of its namespace, volumes and generated secrets included.
async fn teardown(ctx: &Ctx) -> Result<String, String> {
    let loaded = crate::commands::load(ctx).map_err(|e| e.to_string())?;
    let p = &loaded.platform;
    let ns = &p.environment.namespace;
    if p.environment.scratch_of.is_none() {
        return Err(format!(
            "`{ns}` is not a drill's scratch copy: not torn down"
        ));
    }
    let engine = crate::commands::connect()
        .await
        .map_err(|e| e.to_string())?;
    let observed = engine.observe(ns).await.map_err(|e| e.to_string())?;
    let mut removed = Vec::new();
    let mut errors = Vec::new();
    for pr in sprocket_desired::provision::provisions(p)
        .iter()
        .filter(|pr| !pr.in_swarm && pr.used)
    {
        match crate::apply::provision::teardown(
            &engine,
            pr,
            ns,
            &p.environment.tool_image,
            &observed,
            ctx.progress,
        )
        .await
        {
            Ok(r) => removed.extend(r.removed),
            Err(e) => errors.push(format!("{}: {e}", pr.datastore)),
        }
    }
    // The swarm's part goes only once nothing is left outside it: the removal there needs the
    // copy's networks and administrators' secrets, so the next drill can retry it.
    if !errors.is_empty() {
        return Err(format!(
            "{}; `{ns}` is left running so that the next drill removes it",
            errors.join("; ")
        ));
    }
    let (code, json, _) = step(ctx, &["down", "--volumes"]);
    if code != crate::exit::OK {
        errors.push(format!("`down --volumes` of `{ns}`: {}", why(code, &json)));
    }
    if !errors.is_empty() {
        return Err(errors.join("; "));
    }
    let objects = json["removed"].as_array().map(Vec::len).unwrap_or(0);
    Ok(format!(
        "{objects} object(s) of `{ns}` removed{}",
        if removed.is_empty() {
            String::new()
        } else {
            format!("; outside the swarm: {}", removed.join(", "))
        }
    ))
}

/// What failed (a step, or a component: `redis:redis`) and why.
type Failure = (String, String);

/// A drill in progress: the scratch copy's context, what the children are given, the record.
struct Drill<'a> {
    sctx: Ctx,
    identity: String,
    timeout: String,
    secrets_from: Option<&'a str>,
    record: Record,
}

impl Drill<'_> {
    /// Records a step: its detail, or what failed (the first failure is the drill's) and why.
    /// The detail is one line of at most 300 characters: it is kept in the bucket in clear.
    fn step(&mut self, name: &str, seconds: f64, outcome: Result<String, Failure>) -> bool {
        let ok = outcome.is_ok();
        let detail = match outcome {
            Ok(d) => d,
            Err((what, why)) => {
                self.record.failed.get_or_insert(what);
                why
            }
        };
        self.record.steps.push(Step {
            name: name.into(),
            seconds,
            ok,
            detail: detail
                .lines()
                .next()
                .unwrap_or("")
                .chars()
                .take(300)
                .collect(),
        });
        ok
    }

    /// A child that changes the scratch platform, with the operator's identity, the step's
    /// timeout and the secrets' source.
    fn child(&self, args: &[&str]) -> (i32, serde_json::Value, f64) {
        let mut all: Vec<&str> = args.to_vec();
        all.extend(["--identity", &self.identity, "--timeout", &self.timeout]);
        if let Some(s) = self.secrets_from {
            all.extend(["--secrets-from", s]);
        }
        step(&self.sctx, &all)
    }

    /// Every artefact downloaded, checked against the manifest and decrypted: a backup that
    /// cannot restore fails here, naming its component, before anything is built.
    async fn check_backup(
        &mut self,
        store: &store::Store,
        manifest: &sprocket_backup::Manifest,
        identities: &[Box<dyn age::Identity>],
    ) -> bool {
        let t = Instant::now();
        let mut bad = None;
        for art in &manifest.artefacts {
            let c = super::verify::one(store, art, identities).await;
            if let (false, None) = (c.ok, &bad) {
                bad = Some((c.component, c.problem.unwrap_or_default()));
            }
        }
        let outcome = match bad {
            None => Ok(format!(
                "{} artefacts match the manifest and decrypt",
                manifest.artefacts.len()
            )),
            Some((c, p)) => Err((c.clone(), format!("{c}: {p}"))),
        };
        self.step("check-backup", t.elapsed().as_secs_f64(), outcome)
    }

    /// The platform from nothing, as after the loss of everything.
    fn rebuild(&mut self) -> bool {
        let (code, json, seconds) = self.child(&["up"]);
        let outcome = match code {
            crate::exit::OK => Ok(String::new()),
            _ => Err(("rebuild".into(), why(code, &json))),
        };
        self.step("rebuild", seconds, outcome)
    }

    /// The backup into it (`--force`: the rebuilt Vault is initialised); each component's time
    /// and what it holds after, from the restore's report.
    fn restore(&mut self) -> bool {
        let backup = self.record.backup.clone();
        let (code, json, seconds) = self.child(&["restore", "--force", "--from", &backup]);
        self.record.components = json["restored"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|r| Component {
                component: r["component"].as_str().unwrap_or("?").to_string(),
                seconds: r["seconds"].as_f64().unwrap_or(0.0),
                holds: r["holds"].as_str().unwrap_or("").to_string(),
            })
            .collect();
        let outcome = match code {
            crate::exit::OK => Ok(String::new()),
            _ => {
                let failed = json["failed"].as_str().unwrap_or("restore").to_string();
                let why = format!("{failed}: {}", why(code, &json));
                Err((failed, why))
            }
        };
        self.step("restore", seconds, outcome)
    }

    /// Every check of the restored platform; a critical finding about it fails the drill, a
    /// warning is said. The node's own findings (CPU, memory, disks: shared with the live
    /// platform, and busy while a drill builds) are said, never a failure. (Vault unsealed
    /// with its secrets read back, each datastore's contents: in the restore's report.)
    fn check(&mut self) -> bool {
        let (code, json, seconds) = step(&self.sctx, &["check", "--identity", &self.identity]);
        let (critical, node) = critical_findings(&json);
        let judged = [
            crate::exit::OK,
            crate::exit::CHECK_WARNING,
            crate::exit::CHECK_CRITICAL,
        ]
        .contains(&code);
        let outcome = match (judged, critical.is_empty()) {
            (true, true) => Ok(format!(
                "{}{}",
                if code == crate::exit::OK {
                    "every finding ok"
                } else {
                    "no critical finding about the platform"
                },
                if node.is_empty() {
                    String::new()
                } else {
                    format!(" (the node: {})", node.join("; "))
                }
            )),
            (true, false) => Err(("check".into(), critical.join("; "))),
            (false, _) => Err(("check".into(), why(code, &json))),
        };
        self.step("check", seconds, outcome)
    }
}

pub async fn run(ctx: &Ctx, a: Args) -> Result<i32, CliError> {
    let t0 = Instant::now();
    let started = crate::clock::unix_now().as_secs() as i64;
    let (identity, identities) = store::identities(a.identity.clone())?;
    let loaded = crate::commands::load(ctx)?;
    let p = &loaded.platform;
    let ns = p.environment.namespace.clone();
    if let Some(of) = &p.environment.scratch_of {
        return Err(CliError::Invalid(format!(
            "`{ns}` is already a drill's scratch copy of `{of}`"
        )));
    }
    let store = store::open(p, a.store.secrets_from.as_deref()).await?;
    // A drill of a rebuilt, still empty platform's backup would pass and prove nothing: the
    // same refusal as `restore`'s.
    let from = match a.from.clone() {
        Some(id) => Some(id),
        None => {
            let engine = crate::commands::connect().await?;
            super::restore::unnamed(&engine, &ns, &store, "drill").await?
        }
    };
    let (backup, manifest) = store.chosen(from).await?;
    let backup_t = sprocket_backup::layout::time_of(&backup).ok_or_else(|| {
        CliError::Invalid(format!(
            "`{backup}` is not a backup id (`sprocketctl backup ls`)"
        ))
    })?;
    // One drill of a namespace at a time: the next one's first step removes the scratch
    // platform. (Its steps take the scratch namespace's own lock, one after the other.)
    let _one = crate::lock::acquire(
        &format!("{}.drill", Scratch::namespace_of(&ns)),
        "drill",
        std::time::Duration::from_secs(1),
        ctx.progress,
    )
    .await?;
    // The scratch copy: its keyring in a folder of its own, gone with the drill.
    let dir = tempfile::Builder::new()
        .prefix("sprocket-drill-")
        .tempdir()
        .map_err(|e| CliError::Failed(format!("a folder for the drill's keyring: {e}")))?;
    let (http_port, https_port) = free_ports()?;
    let scratch = Scratch {
        namespace: Scratch::namespace_of(&ns),
        http_port,
        https_port,
        keyring: dir.path().join("keyring.age"),
    };
    let id = sprocket_backup::layout::id(
        started,
        (crate::clock::unix_now().subsec_nanos() >> 8) as u16,
    );
    let mut d = Drill {
        sctx: Ctx {
            cli_file: ctx.cli_file.clone(),
            env: ctx.env.clone(),
            format: ctx.format,
            progress: ctx.progress,
            scratch: Some(scratch.clone()),
        },
        identity: identity.to_string_lossy().to_string(),
        timeout: a.timeout.to_string(),
        secrets_from: a.store.secrets_from.as_deref(),
        record: Record {
            format: drill::FORMAT,
            id: id.clone(),
            namespace: ns.clone(),
            scratch: scratch.namespace.clone(),
            backup: backup.clone(),
            rpo_s: (started - backup_t).max(0) as f64,
            rto_s: 0.0,
            steps: Vec::new(),
            components: Vec::new(),
            targets: Vec::new(),
            ok: false,
            failed: None,
            error: None,
            seconds: 0.0,
        },
    };
    let say = |m: String| ctx.progress.say(format!("drill {id}: {m}"));

    say(format!("1/5 checking backup {backup}"));
    let mut built = false;
    let checked = d.check_backup(&store, &manifest, &identities).await;
    // What a stopped drill left goes first (its volumes too: a Vault volume of an earlier drill
    // would not open with this drill's keyring).
    let t = Instant::now();
    let cleaned = match teardown(&d.sctx).await {
        Ok(_) => true,
        Err(e) => d.step("clean", t.elapsed().as_secs_f64(), Err(("clean".into(), e))),
    };
    if checked && cleaned {
        say(format!(
            "2/5 rebuilding the platform in `{}` (ports {http_port}, {https_port})",
            scratch.namespace
        ));
        built = true;
        if d.rebuild() {
            say(format!("3/5 restoring backup {backup} into it"));
            if d.restore() {
                say("4/5 checking the restored platform".into());
                d.check();
            }
        }
    }
    if built && a.keep {
        say(format!(
            "5/5 the scratch platform `{}` is left running (--keep); its keyring is {}",
            scratch.namespace,
            scratch.keyring.display()
        ));
        let _ = dir.keep();
    } else if built {
        say(format!(
            "5/5 removing the scratch platform `{}`",
            scratch.namespace
        ));
        let t = Instant::now();
        let r = teardown(&d.sctx).await.map_err(|e| {
            (
                "teardown".to_string(),
                format!("{e}; the next drill removes what is left"),
            )
        });
        d.step("teardown", t.elapsed().as_secs_f64(), r);
    }
    let mut record = d.record;
    // Recovery times are measured only by a restore that happened.
    let restored = record.steps.iter().any(|s| s.name == "restore" && s.ok);
    if restored {
        let rebuild_s = step_seconds(&record, "rebuild");
        record.rto_s = rebuild_s + step_seconds(&record, "restore");
        record.targets = drill::targets(rebuild_s, &record.components, record.rto_s, record.rpo_s);
    }
    record.error = record
        .steps
        .iter()
        .find(|s| !s.ok)
        .map(|s| s.detail.clone());
    record.ok = record.failed.is_none() && restored && record.targets.iter().all(|t| t.met);
    record.seconds = t0.elapsed().as_secs_f64();
    // Kept for `check`.
    let kept = store
        .client
        .put_object(
            &store.bucket,
            &sprocket_backup::layout::drill(&ns, &id),
            serde_json::to_vec_pretty(&record).expect("serialisable"),
        )
        .await
        .and_then(|r| r.ok("keep the drill's result").map(|_| ()));
    match ctx.format {
        Format::Json => output::json(&record),
        Format::Human => print(&record),
    }
    say_failure(&record);
    if let Err(e) = kept {
        eprintln!(
            "warning: the drill's result is not kept in bucket `{}`: {e}",
            store.bucket
        );
    }
    Ok(if record.ok {
        crate::exit::OK
    } else {
        crate::exit::ERROR
    })
}

/// A step's seconds (0 when it did not run).
fn step_seconds(r: &Record, step: &str) -> f64 {
    r.steps
        .iter()
        .find(|s| s.name == step)
        .map(|s| s.seconds)
        .unwrap_or(0.0)
}

fn print(r: &Record) {
    println!(
        "drill {} of `{}`: backup {} (recovery point {} old), rebuilt in `{}`",
        r.id,
        r.namespace,
        r.backup,
        drill::span(r.rpo_s),
        r.scratch
    );
    for s in &r.steps {
        println!(
            "  {:<9} {:>8.1} s  {}{}",
            s.name,
            s.seconds,
            if s.ok { "ok" } else { "FAILED" },
            if s.detail.is_empty() {
                String::new()
            } else {
                format!("  {}", s.detail)
            }
        );
    }
    for c in &r.components {
        println!(
            "  {:<28} {:>6.1} s  holds {}",
            c.component, c.seconds, c.holds
        );
    }
    for t in &r.targets {
        println!(
            "  {:<15} {:>10} (target {:<10}) {}",
            t.what,
            drill::span(t.measured_s),
            drill::span(t.target_s),
            if t.met { "met" } else { "MISSED" }
        );
    }
    if r.ok {
        println!(
            "drill passed: RTO {} (rebuild and restore), in {} with the teardown",
            drill::span(r.rto_s),
            drill::span(r.seconds)
        );
    }
}

/// Why a drill did not pass, on stderr whatever the output format (its JSON holds it too).
fn say_failure(r: &Record) {
    match (&r.failed, &r.error) {
        (Some(c), e) => eprintln!(
            "error: drill {} failed at `{c}`{}",
            r.id,
            e.as_deref().map(|e| format!(": {e}")).unwrap_or_default()
        ),
        (None, _) if !r.ok => {
            let missed: Vec<&str> = r
                .targets
                .iter()
                .filter(|t| !t.met)
                .map(|t| t.what.as_str())
                .collect();
            eprintln!(
                "error: drill {} missed its recovery target(s): {}",
                r.id,
                if missed.is_empty() {
                    "nothing was restored".to_string()
                } else {
                    missed.join(", ")
                }
            )
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_nodes_findings_never_fail_a_drill_the_platforms_do() {
        let report = serde_json::json!({ "findings": [
            { "kind": "resources", "subject": "this node", "severity": "critical",
              "detail": "CPU 100 % busy" },
            { "kind": "docker-disk", "subject": "this node", "severity": "critical",
              "detail": "images 40 GB" },
            { "kind": "replicas", "subject": "redis", "severity": "critical",
              "detail": "0/1 running" },
            { "kind": "route", "subject": "demo", "severity": "warning", "detail": "slow" },
        ]});
        let (platform, node) = critical_findings(&report);
        assert_eq!(platform, ["redis: 0/1 running"]);
        assert_eq!(
            node,
            ["this node: CPU 100 % busy", "this node: images 40 GB"]
        );
        // A kind this build does not know is the platform's: never silently passed.
        let (platform, _) = critical_findings(&serde_json::json!({ "findings": [
            { "kind": "something-new", "subject": "x", "severity": "critical", "detail": "d" }
        ]}));
        assert_eq!(platform, ["x: d"]);
    }
}
