//! Reading a spec: YAML → typed file (unknown keys collected) → one environment resolved through
//! its `extends` chain → every rule checked → the [`Platform`] model.
//!
//! All problems are collected and returned together. Nothing here touches the network or the
//! engine; the only things read from the machine — the config and recipients files the spec
//! names, and the home folder `~/` stands for — come in through [`Files`], so tests can hand
//! them in from memory. [`load_file`] and [`Files::disk`] are the edge that reads the real ones.
//!
//! One file per section of the spec: `environment.rs` (which environment, its `extends` chain),
//! `service.rs` (each service, one method per key), with `route.rs` (its routes) and
//! `config.rs` (its config files) apart, `platform.rs` (rules across services), `limits.rs`
//! (Docker's limits on the names derived from the spec), `vault.rs` (the `vault` section) and
//! `suggest.rs` (the "did you mean" of every unknown name).
//! This file holds the entry points and `Resolver::run`, the walk that calls them in order; the
//! small top-level sections (middlewares, externals) are resolved here too; `secret.rs` the top-level `secrets`.

mod access;
mod alerts;
mod backup;
mod config;
mod environment;
mod limits;
mod platform;
mod route;
mod s3;
pub use s3::{bucket_name, endpoint_host, DEFAULT_REGION};
mod secret;
mod service;
mod suggest;
mod tls;
mod vault;

use crate::diag::{Diagnostic, Pos, Report, SourceFile};
use crate::model::{self, Platform};
use crate::names::check_object_name;
use crate::raw::{self, Role, SpecFile, S};
use crate::tree::{self, Node, Seg};
use environment::Effective;
use serde_saphyr::Spanned;
use service::ServiceCx;
use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use suggest::suggest;

/// A spec file that parsed: the typed file, its located tree and the problems found so far
/// (unknown keys).
pub struct Parsed {
    pub source: SourceFile,
    pub spec: SpecFile,
    pub diagnostics: Vec<Diagnostic>,
}

/// A spec resolved for one environment.
#[derive(Debug)]
pub struct Loaded {
    pub platform: Platform,
    /// Warnings (never errors: any error makes loading fail).
    pub warnings: Vec<Diagnostic>,
    pub source: SourceFile,
}

fn pos<T>(s: &S<T>) -> Pos {
    Pos::from_location(&s.referenced)
}

/// What resolving reads from the machine: the files the spec names (config files, `file:`
/// recipients), where they really are (symlinks followed), and the home folder `~/` stands for.
/// Handed in, so that resolving reads nothing by itself and tests can serve all of it from
/// memory.
pub struct Files<'a> {
    pub read: &'a dyn Fn(&Path) -> std::io::Result<Vec<u8>>,
    /// A path's canonical form: absolute, symlinks and `..` resolved (`std::fs::canonicalize`
    /// on disk). Config files must stay inside the spec's folder by this form.
    pub canonicalize: &'a dyn Fn(&Path) -> std::io::Result<PathBuf>,
    /// What `~/` expands to; `None` when unknown (`~/x` then stands for `x`).
    pub home: Option<PathBuf>,
}

impl<'a> Files<'a> {
    /// Files served by `read`, no symlinks (every path is its own canonical form), no home
    /// folder.
    pub fn new(read: &'a dyn Fn(&Path) -> std::io::Result<Vec<u8>>) -> Self {
        Files {
            read,
            canonicalize: &|p: &Path| Ok(p.to_path_buf()),
            home: None,
        }
    }

    /// The real file system and the `HOME` of this process: the edge, for the CLI.
    pub fn disk() -> Files<'static> {
        Files {
            read: &|p: &Path| std::fs::read(p),
            canonicalize: &|p: &Path| std::fs::canonicalize(p),
            home: std::env::var_os("HOME").map(PathBuf::from),
        }
    }
}

/// Reads `path` and resolves environment `env` (the spec's default when `None`).
pub fn load_file(path: &Path, env: Option<&str>) -> Result<Loaded, Report> {
    let parsed = parse_file(path)?;
    resolve(&parsed, env, &Files::disk())
}

/// Reads and parses `path`; a missing or unreadable file is reported like any other problem.
pub fn parse_file(path: &Path) -> Result<Parsed, Report> {
    let text = std::fs::read_to_string(path).map_err(|e| Report {
        source: None,
        diagnostics: vec![Diagnostic::error(
            "spec-unreadable",
            Pos::UNKNOWN,
            format!("cannot read the spec file: {e}"),
        )
        .help("pass the spec with -f/--file, or run from the folder holding sprocket.yaml")
        .in_file(path)],
    })?;
    parse(SourceFile {
        path: path.to_path_buf(),
        text: Arc::from(text),
    })
}

/// Parses spec text. YAML syntax and type errors stop here (with their location); unknown keys
/// are collected and parsing goes on, so they are reported together with the semantic problems.
pub fn parse(source: SourceFile) -> Result<Parsed, Report> {
    let file = source.path.clone();
    let fail = |e: serde_saphyr::Error| {
        let p = e
            .location()
            .map(|l| Pos::from_location(&l))
            .unwrap_or(Pos::UNKNOWN);
        let msg = e.without_snippet().to_string();
        let msg = strip_location_prefix(&msg).to_string();
        Report {
            source: Some(source.clone()),
            diagnostics: vec![Diagnostic::error("yaml", p, msg)
                .help("fix the YAML at this place; see the spec reference in the README")
                .in_file(&file)],
        }
    };
    let tree: Spanned<Node> = serde_saphyr::from_str(&source.text).map_err(fail)?;
    let mut unknown: Vec<Vec<Seg>> = Vec::new();
    let spec: SpecFile = tree::with_key_positions(&tree, || {
        serde_saphyr::with_deserializer_from_str(&source.text, |de| {
            serde_ignored::deserialize(de, |path| {
                if let Some(segs) = tree::path_segments(&path) {
                    unknown.push(segs);
                }
            })
        })
    })
    .map_err(fail)?;
    let diagnostics = unknown
        .into_iter()
        .map(|segs| {
            let at = tree::find(&tree, &segs).unwrap_or(Pos::UNKNOWN);
            let key = match segs.last() {
                Some(Seg::Key(k)) => k.clone(),
                _ => "?".into(),
            };
            let dotted = segs
                .iter()
                .map(|s| match s {
                    Seg::Key(k) => k.clone(),
                    Seg::Index(i) => i.to_string(),
                })
                .collect::<Vec<_>>()
                .join(".");
            Diagnostic::error("unknown-key", at, format!("unknown key `{key}` (at `{dotted}`)"))
                .help("check the spelling against the spec reference in the README; unknown keys are never ignored")
                .in_file(&file)
        })
        .collect();
    Ok(Parsed {
        source,
        spec,
        diagnostics,
    })
}

fn strip_location_prefix(msg: &str) -> &str {
    // serde-saphyr adds "line N column M: " or " at line N, column M"; we print the location
    // ourselves.
    let mut msg = msg;
    if let Some(rest) = msg.strip_prefix("line ") {
        if let Some(i) = rest.find(": ") {
            msg = &rest[i + 2..];
        }
    }
    if let Some(i) = msg.rfind(" at line ") {
        msg = &msg[..i];
    }
    msg
}

/// The names of the spec's environments, in file order.
pub fn environment_names(parsed: &Parsed) -> Vec<String> {
    parsed
        .spec
        .environments
        .iter()
        .map(|(k, _)| k.value.clone())
        .collect()
}

/// Resolves one environment. `files` serves the files the spec names.
pub fn resolve(parsed: &Parsed, env: Option<&str>, files: &Files) -> Result<Loaded, Report> {
    resolve_as(parsed, env, files, None)
}

/// [`resolve`], as a drill's scratch copy of the environment when `scratch` is given.
pub fn resolve_as(
    parsed: &Parsed,
    env: Option<&str>,
    files: &Files,
    scratch: Option<&model::Scratch>,
) -> Result<Loaded, Report> {
    let mut cx = Resolver {
        scratch,
        spec: &parsed.spec,
        spec_dir: parsed
            .source
            .path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default(),
        errors: parsed.diagnostics.iter().filter(|d| d.is_error()).count(),
        diags: parsed.diagnostics.clone(),
        files,
    };
    let platform = cx.run(env);
    let file = parsed.source.path.clone();
    let mut diags: Vec<Diagnostic> = cx.diags.into_iter().map(|d| d.in_file(&file)).collect();
    dedup(&mut diags);
    let report = Report {
        source: Some(parsed.source.clone()),
        diagnostics: diags,
    };
    match platform {
        Some(p) if !report.has_errors() => Ok(Loaded {
            platform: p,
            warnings: report.diagnostics,
            source: parsed.source.clone(),
        }),
        _ => Err(report),
    }
}

/// Validates every environment of the spec; returns all distinct diagnostics.
pub fn validate_all(parsed: &Parsed, files: &Files) -> Report {
    let mut all = Vec::new();
    let names = environment_names(parsed);
    if names.is_empty() {
        all.extend(parsed.diagnostics.clone());
    }
    for name in names {
        match resolve(parsed, Some(&name), files) {
            Ok(l) => all.extend(l.warnings),
            Err(r) => all.extend(r.diagnostics),
        }
    }
    dedup(&mut all);
    Report {
        source: Some(parsed.source.clone()),
        diagnostics: all,
    }
}

fn dedup(diags: &mut Vec<Diagnostic>) {
    let mut seen = BTreeSet::new();
    diags.retain(|d| seen.insert((d.code, d.pos, d.message.clone())));
    diags.sort_by_key(|d| (d.pos.line, d.pos.column));
}

/// One resolution of one environment: the spec, where it lives, what may be read, and the
/// problems found so far. Each section's file adds its methods.
struct Resolver<'a> {
    spec: &'a SpecFile,
    spec_dir: PathBuf,
    diags: Vec<Diagnostic>,
    /// How many of `diags` are errors (counted as they come: a service asks after each one).
    errors: usize,
    files: &'a Files<'a>,
    scratch: Option<&'a model::Scratch>,
}

/// A service as written, with the layer it sits in: what cross-service rules look up by name.
struct ServiceRef<'a> {
    layer: usize,
    layer_name: &'a str,
    key: &'a S<String>,
    svc: &'a raw::Service,
}

/// In a drill's scratch copy the apps (services with neither a role nor a datastore) are
/// deployed with no replica and no published port: their logins, secrets and networks are made
/// (and checked), but nothing runs that would act on the outside world with the live
/// platform's identities — a Discord bot's token, the shared buckets, the managed database's
/// administrator, an n8n's workflows — or bind a host port the live platform holds.
///
/// Nothing of the copy reaches the live platform's data on the datastores outside the swarm: a
/// PostgreSQL access to a database not named after the scratch namespace (one the live platform
/// shares, which no restore touches) and every S3 access (its buckets are the live platform's)
/// are left out, so no scratch login is granted anything there. Returns the services that would
/// still run on a writable host folder (`bind`), which the live platform's task uses too.
fn scratch_apps(layers: &mut [model::Layer], namespace: &str) -> Vec<(String, String)> {
    let ours = format!("{namespace}_");
    let mut shared_folders = Vec::new();
    for s in layers.iter_mut().flat_map(|l| l.services.iter_mut()) {
        if s.role.is_none() && s.datastore.is_none() {
            s.mode = model::Mode::Replicated(0);
            s.ports.clear();
        } else {
            for v in &s.volumes {
                if let model::Volume::Bind {
                    source,
                    read_only: false,
                    ..
                } = v
                {
                    shared_folders.push((s.name.clone(), source.clone()));
                }
            }
        }
        let (kept, left): (Vec<_>, Vec<_>) =
            std::mem::take(&mut s.access)
                .into_iter()
                .partition(|a| match a.kind {
                    model::DatastoreKind::Postgres => a.database.starts_with(&ours),
                    model::DatastoreKind::S3 => false,
                    _ => true,
                });
        // The credentials of what is left out are not mounted (nor made): those another
        // access of the service still holds stay.
        let still = |name: &String| {
            kept.iter()
                .any(|a| &a.secret == name || &a.key_secret == name)
        };
        let gone: Vec<&String> = left
            .iter()
            .flat_map(|a| [&a.secret, &a.key_secret])
            .filter(|n| !n.is_empty() && !still(n))
            .collect();
        s.secrets.retain(|m| !gone.contains(&&m.name));
        s.access = kept;
    }
    shared_folders
}

impl<'a> Resolver<'a> {
    fn err(&mut self, code: &'static str, at: Pos, msg: impl Into<String>) -> &mut Diagnostic {
        self.errors += 1;
        self.diags.push(Diagnostic::error(code, at, msg));
        self.diags.last_mut().expect("just pushed")
    }

    fn warn(&mut self, code: &'static str, at: Pos, msg: impl Into<String>) -> &mut Diagnostic {
        self.diags.push(Diagnostic::warning(code, at, msg));
        self.diags.last_mut().expect("just pushed")
    }

    fn run(&mut self, env: Option<&str>) -> Option<Platform> {
        let spec = self.spec;
        self.check_all_extends();
        let env_name = self.choose_environment(env)?;
        let chain = self.chain(&env_name)?;
        let mut eff = self.effective(&chain);
        // Where Vault does not run, neither does its unseal agent.
        let with_role = |role: Role| {
            spec.layers
                .iter()
                .flat_map(|(_, l)| l.services.iter())
                .filter(move |(_, s)| s.role.as_ref().map(|r| r.value) == Some(role))
                .map(|(k, _)| (k.value.clone(), pos(k)))
        };
        if let Some((vault, _)) = with_role(Role::Vault).next() {
            if let Some((_, why)) = eff.disabled.get(&vault).cloned() {
                for (agent, at) in with_role(Role::UnsealAgent) {
                    eff.disabled.entry(agent).or_insert((
                        at,
                        format!("its Vault (`{vault}`) does not run here: {why}"),
                    ));
                }
            }
        }
        let mut environment = self.environment(&env_name, &chain, &eff);
        if let (Some(sc), Some(e)) = (self.scratch, environment.as_mut()) {
            self.scratch_copy(sc, e);
        }

        let services = self.index_services();
        self.check_environment_refs(&services);
        self.check_cycles(&services);
        let middlewares = self.middlewares();
        for (k, m) in spec.middlewares.iter() {
            if let Some(s) = &m.service {
                if !services.contains_key(s.value.as_str()) {
                    let known: Vec<String> = services.keys().map(|s| s.to_string()).collect();
                    self.err(
                        "unknown-service",
                        pos(s),
                        format!(
                            "middleware `{}` names service `{}`, which is not defined",
                            k.value, s.value
                        ),
                    )
                    .help = Some(suggest(&s.value, &known, "services"));
                }
            }
        }
        let secrets = self.secrets();
        let externals = self.externals(&eff, &secrets);
        let vault_service = services
            .iter()
            .find(|(_, r)| r.svc.role.as_ref().map(|x| x.value) == Some(Role::Vault))
            .map(|(k, _)| *k);

        let mut layers = Vec::new();
        for (li, (lkey, layer)) in spec.layers.iter().enumerate() {
            let mut out = model::Layer {
                name: lkey.value.clone(),
                services: Vec::new(),
                disabled: Vec::new(),
            };
            if let Err(e) = check_object_name(&lkey.value) {
                self.err(
                    "invalid-layer-name",
                    pos(lkey),
                    format!("layer name `{}` {e}", lkey.value),
                )
                .help = Some(
                    "layer names become file names (`render --out`) and labels: use lowercase letters, digits and `-`"
                        .into(),
                );
            }
            if layer.services.is_empty() {
                self.warn(
                    "empty-layer",
                    pos(lkey),
                    format!("layer `{}` has no services", lkey.value),
                );
            }
            for (skey, svc) in layer.services.iter() {
                // Structural checks apply to disabled services too: the spec is one platform,
                // whatever runs here.
                let resolved = self.service(&ServiceCx {
                    li,
                    layer: &lkey.value,
                    key: skey,
                    svc,
                    eff: &eff,
                    services: &services,
                    env: environment.as_ref(),
                    secrets: &secrets,
                    middlewares: &middlewares,
                    externals: &externals,
                    vault_service,
                });
                if let Some((_, reason)) = eff.disabled.get(&skey.value) {
                    out.disabled.push(model::Disabled {
                        service: skey.value.clone(),
                        reason: reason.clone(),
                    });
                } else if let Some(s) = resolved {
                    out.services.push(s);
                }
            }
            layers.push(out);
        }
        let mut environment = environment?;
        environment.backup = self.backup(eff.backup, &externals);
        // A drill's copy restores the live platform's backups; it takes none.
        if let (Some(_), Some(b)) = (self.scratch, environment.backup.as_mut()) {
            b.scheduled = false;
        }
        if self.scratch.is_some() {
            for (service, folder) in scratch_apps(&mut layers, &environment.namespace) {
                self.err(
                    "scratch-shares-data",
                    Pos::UNKNOWN,
                    format!(
                        "service `{service}` writes to the host folder `{folder}` (a `bind` volume): a drill's copy of it would run on the live platform's data"
                    ),
                )
                .help = Some("give it a named volume (`volume:`), or make the bind `read_only: true`; a drill cannot run before".into());
            }
        }
        let mut vault = self.vault(&eff, &layers, &environment.namespace);
        if let (Some(sc), Some(v)) = (self.scratch, vault.as_mut()) {
            v.keyring = sc.keyring.clone();
        }
        let mut platform = Platform {
            name: spec.platform.value.clone(),
            environment,
            layers,
            externals,
            secrets,
            middlewares,
            vault,
        };
        let derived = access::derived_secrets(&platform);
        platform.secrets.extend(derived);
        self.check_access(&platform);
        self.check_platform(&platform, &services, &eff);
        self.check_name_lengths(&platform, &services, &eff);
        self.check_secrets(&platform);
        Some(platform)
    }

    /// Makes `e` the drill's scratch copy `sc` of itself (see [`model::Scratch`]).
    fn scratch_copy(&mut self, sc: &model::Scratch, e: &mut model::Environment) {
        if let Err(why) = check_object_name(&sc.namespace) {
            self.err(
                "invalid-namespace",
                Pos::UNKNOWN,
                format!("the drill's namespace `{}` {why}", sc.namespace),
            );
        }
        // Only `<namespace>-drill`, and only where no environment of the spec is named so: a
        // drill removes what its scratch namespace holds, so it must hold nothing else.
        if sc.namespace != model::Scratch::namespace_of(&e.namespace) {
            self.err(
                "invalid-namespace",
                Pos::UNKNOWN,
                format!(
                    "a drill's scratch namespace is `{}`, not `{}`",
                    model::Scratch::namespace_of(&e.namespace),
                    sc.namespace
                ),
            );
        }
        // An environment without a namespace of its own (nor one it extends) takes the
        // platform's name.
        if self.spec.platform.value == sc.namespace {
            self.err(
                "invalid-namespace",
                pos(&self.spec.platform),
                format!(
                    "the platform's name `{}` is the namespace of its environments that set none, and the drills' scratch namespace of `{}`",
                    sc.namespace, e.namespace
                ),
            )
            .help = Some("rename the platform or give every environment a namespace: a drill removes everything in its scratch namespace".into());
        }
        if let Some((name, env)) = self.spec.environments.iter().find(|(_, env)| {
            env.namespace.as_ref().map(|n| n.value.as_str()) == Some(sc.namespace.as_str())
        }) {
            let at = env.namespace.as_ref().map(pos).unwrap_or(Pos::UNKNOWN);
            self.err(
                "invalid-namespace",
                at,
                format!(
                    "environment `{}` uses namespace `{}`, which is the drills' scratch namespace of `{}`",
                    name.value, sc.namespace, e.namespace
                ),
            )
            .help = Some("give that environment another namespace: a drill removes everything in its scratch namespace".into());
        }
        e.scratch_of = Some(std::mem::replace(&mut e.namespace, sc.namespace.clone()));
        e.http_port = sc.http_port;
        e.https_port = sc.https_port;
        if e.tls.acme() {
            e.tls = model::Tls::SelfSigned;
        }
        e.alerts = None;
    }

    fn index_services(&mut self) -> HashMap<&'a str, ServiceRef<'a>> {
        let mut out: HashMap<&'a str, ServiceRef<'a>> = HashMap::new();
        for (li, (lkey, layer)) in self.spec.layers.iter().enumerate() {
            for (skey, svc) in layer.services.iter() {
                if let Err(e) = check_object_name(&skey.value) {
                    self.err(
                        "invalid-service-name",
                        pos(skey),
                        format!("service name `{}` {e}", skey.value),
                    )
                    .help = Some(
                        "service names become DNS names: lowercase letters, digits and `-`".into(),
                    );
                }
                if let Some(first) = out.get(skey.value.as_str()) {
                    let (fp, fl) = (pos(first.key), first.layer_name.to_string());
                    let d = self.err(
                        "duplicate-service",
                        pos(skey),
                        format!(
                            "service `{}` is defined twice (layers `{fl}` and `{}`)",
                            skey.value, lkey.value
                        ),
                    );
                    *d = d.clone().related(fp, "first defined here").help("rename one of them: service names are unique across layers (they are DNS names)");
                    continue;
                }
                out.insert(
                    skey.value.as_str(),
                    ServiceRef {
                        layer: li,
                        layer_name: lkey.value.as_str(),
                        key: skey,
                        svc,
                    },
                );
            }
        }
        out
    }

    fn middlewares(&mut self) -> Vec<model::Middleware> {
        let mut out = Vec::new();
        for (k, m) in self.spec.middlewares.iter() {
            if let Err(e) = check_object_name(&k.value) {
                self.err(
                    "invalid-middleware-name",
                    pos(k),
                    format!("middleware name `{}` {e}", k.value),
                )
                .help = Some("a middleware's name becomes part of Traefik label keys (where `.` nests) and of a router's `,`-separated list (where `,` or `@` would add another): use lowercase letters, digits and `-`".into());
            }
            let mut kinds = Vec::new();
            if let Some(fa) = &m.forward_auth {
                kinds.push(model::MiddlewareKind::ForwardAuth {
                    address: fa.address.clone(),
                    trust_forward_header: fa.trust_forward_header,
                    response_headers: fa.response_headers.clone(),
                });
            }
            if let Some(p) = &m.strip_prefix {
                kinds.push(model::MiddlewareKind::StripPrefix {
                    prefixes: p.clone(),
                });
            }
            if m.redirect_https == Some(true) {
                kinds.push(model::MiddlewareKind::RedirectHttps);
            }
            if kinds.len() != 1 {
                self.err("invalid-middleware", pos(k), format!("middleware `{}` must set exactly one of `forward_auth`, `strip_prefix`, `redirect_https`", k.value));
                continue;
            }
            out.push(model::Middleware {
                name: k.value.clone(),
                service: m.service.as_ref().map(|s| s.value.clone()),
                kind: kinds.remove(0),
            });
        }
        out
    }

    fn externals(
        &mut self,
        eff: &Effective<'a>,
        secrets: &[model::Secret],
    ) -> Vec<model::External> {
        let mut out = Vec::new();
        for (k, e) in self.spec.external.iter() {
            let mut x = model::External {
                name: k.value.clone(),
                kind: e.kind.clone(),
                host: e.host.clone(),
                port: e.port,
                endpoint: e.endpoint.clone(),
                datastore: None,
            };
            let mut sslmode = e.sslmode.as_ref();
            let (mut region, mut keys) = (e.region.as_ref(), e.keys.as_ref());
            for o in eff.external.get(&k.value).into_iter().flatten() {
                if o.host.is_some() {
                    x.host = o.host.clone();
                }
                if o.port.is_some() {
                    x.port = o.port;
                }
                if o.endpoint.is_some() {
                    x.endpoint = o.endpoint.clone();
                }
                if o.sslmode.is_some() {
                    sslmode = o.sslmode.as_ref();
                }
                if o.region.is_some() {
                    region = o.region.as_ref();
                }
                if o.keys.is_some() {
                    keys = o.keys.as_ref();
                }
            }
            x.datastore = if e.kind == "s3" {
                self.s3_datastore(
                    s3::S3Fields {
                        name: k,
                        external: e,
                        endpoint: x.endpoint.as_deref(),
                        region,
                        keys,
                    },
                    secrets,
                )
            } else {
                for (field, v) in [
                    ("admin_access_key", &e.admin_access_key),
                    ("admin_secret_key", &e.admin_secret_key),
                    ("region", &e.region),
                    ("keys", &e.keys),
                ] {
                    if let Some(v) = v {
                        self.err(
                            "invalid-external",
                            pos(v),
                            format!(
                                "external `{}`: `{field}` is an S3 setting; `{}` is `{}`",
                                k.value, k.value, e.kind
                            ),
                        )
                        .help = Some(format!("remove `{field}`"));
                    }
                }
                if let Some(b) = e.buckets.as_ref().and_then(|b| b.first()) {
                    self.err(
                        "invalid-external",
                        pos(b),
                        format!(
                            "external `{}`: `buckets` is an S3 setting; `{}` is `{}`",
                            k.value, k.value, e.kind
                        ),
                    )
                    .help = Some("remove `buckets`".into());
                }
                self.external_datastore(k, e, &x, sslmode, secrets)
            };
            out.push(x);
        }
        for name in eff.external.keys() {
            if self.spec.external.get(name).is_none() {
                self.err("unknown-external", Pos::UNKNOWN, format!("an environment overrides external `{name}`, which is not declared under `external`"));
            }
        }
        out
    }

    /// An external's administrator secret (`what`: its password, its key) must be declared.
    fn admin_secret_declared(
        &mut self,
        name: &str,
        what: &str,
        s: &S<String>,
        secrets: &[model::Secret],
    ) {
        if secrets.iter().any(|x| x.name == s.value) {
            return;
        }
        let known: Vec<String> = secrets.iter().map(|s| s.name.clone()).collect();
        self.err(
            "unknown-secret",
            pos(s),
            format!(
                "external `{name}`: the administrator's {what} `{}` is not a declared secret",
                s.value
            ),
        )
        .help = Some(format!(
            "declare it under `secrets` (e.g. `{}: {{ source: doppler, key: … }}`); {}",
            s.value,
            suggest(&s.value, &known, "secrets")
        ));
    }

    /// An external with an administrator (`admin_user` and `admin_password`) is a datastore
    /// `up` provisions its consumers' logins in: PostgreSQL, from a one-off task in the swarm.
    fn external_datastore(
        &mut self,
        k: &'a S<String>,
        e: &'a raw::External,
        x: &model::External,
        sslmode: Option<&'a S<String>>,
        secrets: &[model::Secret],
    ) -> Option<model::Datastore> {
        let name = &k.value;
        let (user, password) = match (&e.admin_user, &e.admin_password) {
            (None, None) => {
                for (field, v) in [
                    ("admin_database", &e.admin_database),
                    ("sslmode", &e.sslmode),
                ] {
                    if let Some(v) = v {
                        self.err(
                            "invalid-external",
                            pos(v),
                            format!("external `{name}`: `{field}` without an administrator"),
                        )
                        .help = Some(
                            "add `admin_user` and `admin_password` (a secret), or remove it".into(),
                        );
                    }
                }
                return None;
            }
            (Some(u), Some(p)) => (u, p),
            (Some(u), None) | (None, Some(u)) => {
                let missing = if e.admin_user.is_none() {
                    "admin_user"
                } else {
                    "admin_password"
                };
                self.err(
                    "invalid-external",
                    pos(u),
                    format!("external `{name}` names half an administrator: `{missing}` is missing"),
                )
                .help = Some("give both `admin_user` and `admin_password` (the name of a secret with its password)".into());
                return None;
            }
        };
        if e.kind != "postgres" {
            self.err(
                "invalid-external",
                pos(user),
                format!(
                    "external `{name}` is `{}`: sprocketctl provisions logins only in `postgres` externals (and keys in `s3` ones)",
                    e.kind
                ),
            )
            .help = Some("remove `admin_user` and `admin_password`".into());
            return None;
        }
        self.admin_secret_declared(name, "password", password, secrets);
        if x.host.as_deref().unwrap_or_default().is_empty() {
            self.err(
                "invalid-external",
                pos(k),
                format!("external `{name}` has an administrator but no `host`"),
            )
            .help = Some("give the server's `host` (and `port`)".into());
        }
        let kind = S::new(e.kind.clone(), k.referenced, k.defined);
        let port = x.port.map(|p| S::new(p, k.referenced, k.defined));
        self.datastore_admin(access::AdminFields {
            owner: name,
            kind: &kind,
            admin_user: user,
            admin_password: password,
            admin_port: port.as_ref(),
            admin_database: e.admin_database.as_ref(),
            sslmode,
        })
    }
}
