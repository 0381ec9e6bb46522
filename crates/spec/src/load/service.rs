//! One service: each of its keys checked and resolved for the chosen environment.
//!
//! [`Resolver::service`] reads top to bottom like the spec reference: one method per key (mode,
//! uses, Vault paths, routes, ports, health, volumes, configs, secrets, resources and the
//! environment's overrides, placement, logging), each returning its piece of the
//! [`model::Service`]; routes (`route.rs`) and configs (`config.rs`) have files of their own. Adding a key means adding one method and one line there. The methods run
//! in a fixed order because diagnostics at the same position keep the order they were found in.
//! What every method may look at — the service as written, its layer, the environment and the
//! rest of the platform — travels in one [`ServiceCx`].

use super::suggest::suggest;
use super::{pos, Effective, Resolver, ServiceRef};
use crate::model::{self, Mode};
use crate::names::{
    check_env_key, check_object_name, is_reserved_secret, looks_like_literal_secret,
    FINGERPRINT_KEY_SECRET,
};
use crate::raw::{self, Role, S};
use crate::tree::Scalar;
use crate::values;
use std::collections::{BTreeMap, HashMap};

/// The help of every bad duration.
pub(super) const DURATION_HELP: &str =
    "digits and a unit (`ms`, `s`, `m`, `h`), repeated as needed: `500ms`, `5s`, `1m30s`, `2h`";

/// The most tasks a replicated service may ask for.
pub const MAX_REPLICAS: u64 = 1000;
/// The most health check retries.
pub const MAX_RETRIES: u64 = 1000;
/// The most CPUs a limit or reservation may name.
pub const MAX_CPUS: f64 = 1_000_000.0;

/// What resolving one service may look at besides the service itself.
pub(super) struct ServiceCx<'c, 'a> {
    /// Index of the service's layer, for "uses a later layer".
    pub(super) li: usize,
    pub(super) layer: &'c str,
    pub(super) key: &'c S<String>,
    pub(super) svc: &'c raw::Service,
    pub(super) eff: &'c Effective<'a>,
    /// Every service of the spec by name, whatever runs here.
    pub(super) services: &'c HashMap<&'a str, ServiceRef<'a>>,
    /// `None` when the environment itself did not resolve; the service is checked anyway.
    pub(super) env: Option<&'c model::Environment>,
    pub(super) secrets: &'c [model::Secret],
    pub(super) middlewares: &'c [model::Middleware],
    pub(super) externals: &'c [model::External],
    /// The service with `role: vault`, if any (looked up once, not per reader).
    pub(super) vault_service: Option<&'a str>,
}

impl<'c> ServiceCx<'c, '_> {
    pub(super) fn name(&self) -> &'c str {
        &self.key.value
    }

    /// Whether this environment runs the service. Structural checks apply either way; only
    /// "uses something disabled" depends on it.
    pub(super) fn enabled(&self) -> bool {
        !self.eff.disabled.contains_key(self.name())
    }
}

/// The keys an environment's `services.<name>` entries override, over the service's own values.
struct Overridden<'c> {
    resources: model::Resources,
    env: BTreeMap<String, String>,
    args: Option<Vec<String>>,
    /// Unchecked: [`Resolver::placement`] checks the list that wins.
    placement: Vec<&'c S<String>>,
}

impl<'a> Resolver<'a> {
    /// The service resolved for this environment, or `None` when one of its checks failed (the
    /// problems are in the diagnostics).
    pub(super) fn service(&mut self, cx: &ServiceCx<'_, 'a>) -> Option<model::Service> {
        let errors_before = self.error_count();
        let svc = cx.svc;
        if cx.name() == crate::names::BACKUP_TOKEN_HOLDER {
            self.err(
                "reserved-service-name",
                pos(cx.key),
                format!("service name `{}` is reserved", cx.name()),
            )
            .help = Some(format!(
                "`{}` holds the backups' Vault token (its secret `vault-token-{}`, its policy `svc-{}`): give this service another name",
                cx.name(),
                cx.name(),
                cx.name()
            ));
        }
        let image = self.image(cx);
        let overrides = cx.eff.overrides.get(cx.name()).cloned().unwrap_or_default();
        let mode = self.mode(cx, &overrides);
        let (mut uses, uses_external) = self.uses(cx);
        self.unseal_agent_uses(cx, &mut uses);
        let vault_paths = self.vault_paths(cx, &mut uses);
        let (routes, dropped_routes) = self.routes(cx);
        let ports = self.ports(cx);
        let health = self.health(cx);
        let stop_grace_period_ns = svc
            .stop_grace_period
            .as_ref()
            .map(|_| self.duration(&svc.stop_grace_period, 10_000_000_000));
        let mut volumes = self.volumes(cx);
        // The unseal agent that watches remembers alerts and uptime on a volume.
        if svc.role.as_ref().map(|r| r.value) == Some(Role::UnsealAgent) && watches(cx) {
            volumes.push(model::Volume::Named {
                name: model::Alerts::STATE_VOLUME.into(),
                target: model::Alerts::STATE_DIR.into(),
                read_only: false,
                backup: false,
            });
        }
        let slo = svc.check.as_ref().and_then(|c| c.slo);
        if let Some(v) = slo.filter(|v| !(*v > 0.0 && *v < 100.0)) {
            self.err(
                "invalid-slo",
                pos(cx.key),
                format!("`{}`'s check.slo {v} is not a percentage between 0 and 100", cx.name()),
            )
            .help = Some("give its uptime target in percent, e.g. `slo: 99.9` (43 minutes of downtime a month)".into());
        }
        let configs = self.configs(cx);
        let mut secrets = self.secret_mounts(cx);
        // The unseal agent's webhook URL, when it is a secret (`alerts.webhook_secret`).
        if svc.role.as_ref().map(|r| r.value) == Some(Role::UnsealAgent) {
            if let Some(name) = cx
                .env
                .and_then(|e| e.alerts.as_ref())
                .and_then(|a| a.webhook_secret.clone())
                .filter(|n| self.spec.secrets.get(n).is_some())
            {
                secrets.push(model::SecretMount {
                    name,
                    target: model::Alerts::WEBHOOK_FILE.into(),
                    uid: 0,
                    gid: 0,
                    mode: 0o400,
                });
            }
        }
        let datastore = self.datastore(cx);
        let mut access = self.access(cx, &uses, &uses_external);
        secrets.extend(access.mounts);
        let overridden = self.resources_and_overrides(cx, &overrides, &access.access);
        let referenced: std::collections::BTreeSet<String> = access
            .access
            .iter()
            .filter(|a| {
                let r = crate::names::access_user_reference(&a.on);
                matches!(
                    a.kind,
                    model::DatastoreKind::Postgres | model::DatastoreKind::Rabbitmq
                ) && overridden.env.values().any(|v| v.contains(&r))
            })
            .map(|a| a.on.clone())
            .collect();
        self.alternates(cx, &mut access.access, &referenced);
        let placement = self.placement(&overridden.placement);
        let hostname = self.hostname(cx);
        let logging = logging(svc);
        if self.error_count() > errors_before {
            return None;
        }
        Some(model::Service {
            name: cx.name().to_string(),
            layer: cx.layer.to_string(),
            role: svc.role.as_ref().map(|r| r.value),
            image,
            spec_image: svc.image.value.clone(),
            command: svc.command.clone(),
            args: overridden.args,
            env: overridden.env,
            mode,
            uses,
            uses_external,
            routes,
            dropped_routes,
            ports,
            health,
            volumes,
            configs,
            secrets,
            vault_paths,
            datastore,
            access: access.access,
            resources: overridden.resources,
            placement,
            hostname,
            user: svc.user.clone(),
            workdir: svc.workdir.clone(),
            stop_grace_period_ns,
            logging,
            description: svc.description.clone(),
            errors_per_day: svc
                .check
                .as_ref()
                .and_then(|c| c.errors_per_day)
                .unwrap_or(model::DEFAULT_ERRORS_PER_DAY),
            slo,
        })
    }

    fn error_count(&self) -> usize {
        self.errors
    }

    /// `image` as written (checked), then as the environment's `images` map it.
    fn image(&mut self, cx: &ServiceCx<'_, 'a>) -> String {
        let svc = cx.svc;
        if let Err(e) = values::check_image(&svc.image.value) {
            self.err("invalid-image", pos(&svc.image), e).help = Some(
                "write an image reference such as `redis:7.0-alpine` or `ghcr.io/org/app:1.2`"
                    .into(),
            );
        }
        cx.eff
            .images
            .get(&svc.image.value)
            .map(|(_, v)| v.value.clone())
            .unwrap_or_else(|| svc.image.value.clone())
    }

    /// `mode` and `replicas`; an environment's `replicas` wins over the service's.
    fn mode(&mut self, cx: &ServiceCx<'_, 'a>, overrides: &[&raw::ServiceOverride]) -> Mode {
        let svc = cx.svc;
        let mut replicas = svc.replicas.as_ref().map(|r| (r.value, pos(r)));
        for o in overrides {
            if let Some(r) = &o.replicas {
                replicas = Some((r.value, pos(r)));
            }
        }
        if let Some((n, at)) = replicas {
            if n > MAX_REPLICAS {
                self.err(
                    "invalid-replicas",
                    at,
                    format!("{n} replicas: at most {MAX_REPLICAS} are accepted"),
                )
                .help = Some(format!(
                    "give a number of tasks from 0 to {MAX_REPLICAS}, or use `mode: global` for one per node"
                ));
            }
        }
        match svc.mode.as_ref().map(|m| (m, m.value.as_str())) {
            None | Some((_, "replicated")) => Mode::Replicated(replicas.map(|r| r.0).unwrap_or(1)),
            Some((_, "global")) => {
                if let Some((_, at)) = replicas {
                    self.err(
                        "replicas-with-global",
                        at,
                        "a `global` service runs one task per node and takes no `replicas`",
                    );
                }
                Mode::Global
            }
            Some((m, other)) => {
                self.err(
                    "invalid-mode",
                    pos(m),
                    format!("unknown service mode `{other}`"),
                )
                .help = Some("use `replicated` (with `replicas: N`) or `global`".into());
                Mode::Replicated(1)
            }
        }
    }

    /// `uses`: services (of this or an earlier layer, running here) and externals, apart.
    fn uses(&mut self, cx: &ServiceCx<'_, 'a>) -> (Vec<String>, Vec<String>) {
        let (name, layer) = (cx.name(), cx.layer);
        let mut uses = Vec::new();
        let mut uses_external = Vec::new();
        for u in &cx.svc.uses {
            if let Some(target) = cx.services.get(u.value.as_str()) {
                if target.layer > cx.li {
                    self.err(
                        "dependency-on-later-layer",
                        pos(u),
                        format!("`{name}` (layer `{layer}`) uses `{}`, which is in the later layer `{}`", u.value, target.layer_name),
                    )
                    .help = Some(format!("move `{}` to layer `{layer}` or earlier, or `{name}` to a later layer: layers start in order", u.value));
                } else if u.value == name {
                    self.err("dependency-cycle", pos(u), format!("`{name}` uses itself"));
                } else if cx.enabled() && cx.eff.disabled.contains_key(&u.value) {
                    let reason = &cx.eff.disabled[&u.value].1;
                    self.err(
                        "disabled-dependency",
                        pos(u),
                        format!(
                            "`{name}` uses `{}`, which this environment disables ({reason})",
                            u.value
                        ),
                    )
                    .help = Some(format!(
                        "disable `{name}` in this environment too, or stop disabling `{}`",
                        u.value
                    ));
                }
                uses.push(u.value.clone());
            } else if cx.externals.iter().any(|e| e.name == u.value) {
                uses_external.push(u.value.clone());
            } else {
                // Built only for a misspelt name: once per service, it made validation
                // quadratic in the number of services.
                let mut known: Vec<String> = cx.services.keys().map(|s| s.to_string()).collect();
                known.extend(cx.externals.iter().map(|e| e.name.clone()));
                self.err(
                    "unknown-dependency",
                    pos(u),
                    format!(
                        "`{name}` uses `{}`, which is neither a service nor an external",
                        u.value
                    ),
                )
                .help = Some(suggest(&u.value, &known, "services and externals"));
            }
        }
        (uses, uses_external)
    }

    /// The unseal agent talks to Vault and to the Docker API proxy: derived, not written.
    fn unseal_agent_uses(&mut self, cx: &ServiceCx<'_, 'a>, uses: &mut Vec<String>) {
        if cx.svc.role.as_ref().map(|r| r.value) != Some(Role::UnsealAgent) {
            return;
        }
        let name = cx.name();
        // When it watches (`alerts`, or its status page), it checks the routes through the
        // edge router too.
        let watches = watches(cx);
        let mut derived: Vec<&str> = cx
            .services
            .iter()
            .filter(|(_, r)| match r.svc.role.as_ref().map(|x| x.value) {
                Some(Role::Vault) | Some(Role::DockerApiProxy) => true,
                Some(Role::Edge) => watches,
                _ => false,
            })
            .map(|(name, _)| *name)
            .filter(|name| !uses.iter().any(|u| u == name))
            .collect();
        derived.sort();
        uses.extend(derived.into_iter().map(str::to_string));
        if self.spec.vault.is_none() {
            self.err(
                "unseal-agent-without-vault",
                pos(cx.key),
                format!("`{name}` has `role: unseal-agent` but the spec has no `vault` section"),
            )
            .help = Some("add a `vault:` section (shares, threshold, recipients)".into());
        }
    }

    /// `vault`: paths checked against the declared mounts; Vault becomes a derived dependency.
    fn vault_paths(&mut self, cx: &ServiceCx<'_, 'a>, uses: &mut Vec<String>) -> Vec<String> {
        let (svc, name, layer) = (cx.svc, cx.name(), cx.layer);
        let mut vault_paths = Vec::new();
        if svc.vault.is_empty() {
            return vault_paths;
        }
        let vault_svc = cx.vault_service.and_then(|v| cx.services.get_key_value(v));
        match (self.spec.vault.as_ref(), vault_svc) {
            (None, _) | (_, None) => {
                self.err(
                    "vault-paths-without-vault",
                    pos(&svc.vault[0]),
                    format!("`{name}` reads Vault paths, but the spec has no `vault` section and Vault service"),
                )
                .help = Some("add a service with `role: vault` and a `vault:` section with its `mounts`".into());
            }
            (Some(section), Some((vname, vref))) => {
                let mounts: Vec<String> = section
                    .value
                    .mounts
                    .iter()
                    .map(|(k, _)| k.value.clone())
                    .collect();
                if vref.layer >= cx.li {
                    self.err(
                        "vault-reader-too-early",
                        pos(&svc.vault[0]),
                        format!("`{name}` (layer `{layer}`) reads Vault, which runs in the same or a later layer `{}`: readers go in a layer after Vault's, so the order of layers says Vault comes first", vref.layer_name),
                    )
                    .help = Some(format!("move `{name}` to a layer after `{}`", vref.layer_name));
                } else if cx.enabled() && cx.eff.disabled.contains_key(*vname) {
                    let reason = &cx.eff.disabled[*vname].1;
                    self.err(
                        "disabled-dependency",
                        pos(&svc.vault[0]),
                        format!("`{name}` reads Vault paths, but this environment disables `{vname}` ({reason})"),
                    )
                    .help = Some(format!("disable `{name}` in this environment too, or stop disabling `{vname}`"));
                }
                for p in &svc.vault {
                    match values::check_vault_path(&p.value) {
                        Err(e) => {
                            self.err("invalid-vault-path", pos(p), e).help = Some(
                                "write `<mount>/<path>`, e.g. `platform/core` or `platform/core/*`"
                                    .into(),
                            );
                        }
                        Ok(mount) if !mounts.iter().any(|m| m == mount) => {
                            self.err(
                                "unknown-vault-mount",
                                pos(p),
                                format!("`{}` is under `{mount}/`, which `vault.mounts` does not declare", p.value),
                            )
                            .help = Some(suggest(mount, &mounts, "mounts"));
                        }
                        Ok(_) => vault_paths.push(p.value.clone()),
                    }
                }
                if !uses.iter().any(|u| u == *vname) {
                    uses.push(vname.to_string());
                }
            }
        }
        vault_paths
    }

    /// `ports` published on the nodes.
    fn ports(&mut self, cx: &ServiceCx<'_, 'a>) -> Vec<model::Port> {
        let mut ports = Vec::new();
        for p in &cx.svc.ports {
            let v = &p.value;
            if !(1..=65535).contains(&v.target) || !(1..=65535).contains(&v.published) {
                self.err("invalid-port", pos(p), "ports must be within 1–65535");
                continue;
            }
            if v.protocol != "tcp" && v.protocol != "udp" {
                self.err(
                    "invalid-port",
                    pos(p),
                    format!("protocol `{}` is neither `tcp` nor `udp`", v.protocol),
                );
                continue;
            }
            ports.push(model::Port {
                target: v.target as u16,
                published: v.published as u16,
                protocol: v.protocol.clone(),
            });
        }
        ports
    }

    /// A duration in nanoseconds, or `default` when unset or invalid (reported).
    fn duration(&mut self, v: &Option<S<String>>, default: u64) -> u64 {
        match v {
            None => default,
            Some(s) => values::parse_duration(&s.value).unwrap_or_else(|e| {
                self.err("invalid-duration", pos(s), e).help = Some(DURATION_HELP.into());
                default
            }),
        }
    }

    /// `health`: the check's command and timings, with Docker's defaults.
    fn health(&mut self, cx: &ServiceCx<'_, 'a>) -> Option<model::Health> {
        let h = cx.svc.health.as_ref()?;
        if h.value.cmd.is_empty() {
            self.err(
                "invalid-health",
                pos(h),
                "the health check's `cmd` is empty",
            )
            .help = Some("give the command in exec form, e.g. `cmd: [redis-cli, ping]`".into());
        }
        let retries = h.value.retries.as_ref().map(|r| r.value).unwrap_or(3);
        if let Some(r) = h.value.retries.as_ref().filter(|r| r.value > MAX_RETRIES) {
            self.err(
                "invalid-retries",
                pos(r),
                format!(
                    "{} health check retries: at most {MAX_RETRIES} are accepted",
                    r.value
                ),
            )
            .help =
                Some("a few retries (3–10) with an `interval` say when a task is unhealthy".into());
        }
        Some(model::Health {
            cmd: h.value.cmd.clone(),
            interval_ns: self.duration(&h.value.interval, 5_000_000_000),
            timeout_ns: self.duration(&h.value.timeout, 3_000_000_000),
            retries,
            start_period_ns: self.duration(&h.value.start_period, 0),
        })
    }

    /// `volumes`: named volumes and bind mounts.
    fn volumes(&mut self, cx: &ServiceCx<'_, 'a>) -> Vec<model::Volume> {
        let mut volumes = Vec::new();
        for v in &cx.svc.volumes {
            let vv = &v.value;
            match (&vv.volume, &vv.bind) {
                (Some(n), None) => {
                    if check_object_name(n).is_err() {
                        self.err(
                            "invalid-volume",
                            pos(v),
                            format!("volume name `{n}` must be lowercase letters, digits and `-`"),
                        );
                    }
                    volumes.push(model::Volume::Named {
                        name: n.clone(),
                        target: vv.target.clone(),
                        read_only: vv.read_only,
                        backup: vv.backup,
                    });
                }
                (None, Some(b)) => {
                    if vv.backup {
                        self.err(
                            "backup-bind",
                            pos(v),
                            format!("`backup: true` is for named volumes; bind source `{b}` is a folder of the node, which sprocketctl neither owns nor restores"),
                        )
                        .help = Some("keep the data in a named volume (`volume: <name>`), or back the folder up with the node".into());
                    }
                    if !b.starts_with('/') {
                        self.err(
                            "invalid-volume",
                            pos(v),
                            format!("bind source `{b}` must be an absolute path on the node"),
                        );
                    }
                    volumes.push(model::Volume::Bind {
                        source: b.clone(),
                        target: vv.target.clone(),
                        read_only: vv.read_only,
                    });
                }
                _ => {
                    self.err(
                        "invalid-volume",
                        pos(v),
                        "a volume entry sets exactly one of `volume` (named) or `bind` (host path)",
                    );
                }
            }
            if !vv.target.starts_with('/') {
                self.err(
                    "invalid-volume",
                    pos(v),
                    format!("mount target `{}` must be an absolute path", vv.target),
                );
            }
        }
        volumes
    }

    /// `secrets`: each must be declared in the top-level `secrets:`.
    fn secret_mounts(&mut self, cx: &ServiceCx<'_, 'a>) -> Vec<model::SecretMount> {
        let name = cx.name();
        let mut secret_mounts = Vec::new();
        for s in &cx.svc.secrets {
            let sname = s.value.name();
            if is_reserved_secret(sname) && sname != FINGERPRINT_KEY_SECRET {
                self.err(
                    "reserved-secret-mount",
                    pos(s),
                    format!("`{name}` mounts `{sname}`, a secret only `up` makes (Vault's unseal keys or a service's Vault token)"),
                )
                .help = Some("remove it: a service that reads Vault gets its own token from its `vault:` paths (at /run/secrets/vault-token), the unseal agent its keys from `role: unseal-agent`".into());
                continue;
            }
            if !cx.secrets.iter().any(|x| x.name == sname)
                && self.spec.secrets.get(sname).is_none()
                && sname != FINGERPRINT_KEY_SECRET
            {
                let known: Vec<String> = self
                    .spec
                    .secrets
                    .iter()
                    .map(|(k, _)| k.value.clone())
                    .collect();
                self.err(
                    "undeclared-secret",
                    pos(s),
                    format!("`{name}` references secret `{sname}`, which is not declared"),
                )
                .help = Some(format!(
                    "declare it under the top-level `secrets:` with its source; {}",
                    suggest(sname, &known, "secrets")
                ));
                continue;
            }
            let (uid, gid, mode) = s.value.file();
            if mode > 0o777 {
                self.err(
                    "invalid-mode",
                    pos(s),
                    format!("`{name}` mounts secret `{sname}` with mode {mode:#o}, which is not a file mode"),
                )
                .help = Some("write it in octal, e.g. `mode: 0o440`".into());
            }
            secret_mounts.push(model::SecretMount {
                uid,
                gid,
                mode,
                name: sname.to_string(),
                target: s
                    .value
                    .target()
                    .map(str::to_string)
                    .unwrap_or_else(|| format!("/run/secrets/{sname}")),
            });
        }
        secret_mounts
    }

    /// `resources`, `env`, `args` and `placement`, with the environment's overrides applied in
    /// chain order (the nearest environment last, so it wins).
    fn resources_and_overrides<'c>(
        &mut self,
        cx: &ServiceCx<'c, 'a>,
        overrides: &[&'c raw::ServiceOverride],
        access: &[model::Access],
    ) -> Overridden<'c> {
        let svc = cx.svc;
        let mut resources = model::Resources::default();
        if let Some(r) = &svc.resources {
            self.apply_resources(&mut resources, r);
        }
        self.env_keys(svc.env.iter());
        let mut env: BTreeMap<String, String> = BTreeMap::new();
        for (k, v) in svc.env.iter() {
            let v = self.env_value(cx, access, k, &v.0);
            env.insert(k.value.clone(), v);
        }
        let mut args = svc.args.clone();
        let mut placement: Vec<&'c S<String>> = svc.placement.iter().collect();
        for o in overrides {
            if let Some(r) = &o.resources {
                self.apply_resources(&mut resources, r);
            }
            self.env_keys(o.env.iter());
            for (k, v) in o.env.iter() {
                let v = self.env_value(cx, access, k, &v.0);
                env.insert(k.value.clone(), v);
            }
            if o.args.is_some() {
                args = o.args.clone();
            }
            if let Some(p) = &o.placement {
                placement = p.iter().collect();
            }
        }
        Overridden {
            resources,
            env,
            args,
            placement,
        }
    }

    /// An `env` value with the references it may hold resolved for this environment:
    /// `{namespace}`, `{hostname}`, `{external.NAME.host}`, `{external.NAME.port}`,
    /// `{external.NAME.endpoint}` and (an S3 store's) `{external.NAME.region}` — so what
    /// `up` derives per environment (a PostgreSQL login's name, the database's address)
    /// reaches the app without being written twice. Any other `{external.…}` is an error.
    /// `{access.DATASTORE.user}` (a PostgreSQL or RabbitMQ login of the service's `access`)
    /// stays as it is: which of its two alternating logins it names is chosen when the
    /// service is deployed, by the version of its password (see `Access::alternate`).
    fn env_value(
        &mut self,
        cx: &ServiceCx<'_, 'a>,
        access: &[model::Access],
        key: &S<String>,
        value: &str,
    ) -> String {
        if !value.contains('{') {
            return value.to_string();
        }
        let Some(e) = cx.env else {
            return value.to_string();
        };
        let mut out = value
            .replace("{namespace}", &e.namespace)
            .replace("{hostname}", &e.hostname);
        for x in cx.externals {
            let host = format!("{{external.{}.host}}", x.name);
            let port = format!("{{external.{}.port}}", x.name);
            if out.contains(&host) {
                out = out.replace(&host, x.host.as_deref().unwrap_or_default());
            }
            if out.contains(&port) {
                let p = x
                    .port
                    .or_else(|| x.datastore.as_ref().map(|d| u64::from(d.admin_port)))
                    .map(|p| p.to_string())
                    .unwrap_or_default();
                out = out.replace(&port, &p);
            }
            let endpoint = format!("{{external.{}.endpoint}}", x.name);
            if out.contains(&endpoint) {
                out = out.replace(&endpoint, x.endpoint.as_deref().unwrap_or_default());
            }
            let region = format!("{{external.{}.region}}", x.name);
            if let (true, Some(d)) = (out.contains(&region), &x.datastore) {
                out = out.replace(&region, &d.region);
            }
        }
        let mut rest = out.as_str();
        while let Some(i) = rest.find("{access.") {
            let token: String = rest[i..].chars().take_while(|c| *c != '}').collect();
            let closed = rest[i + token.len()..].starts_with('}');
            rest = &rest[i + token.len()..];
            let known: Vec<String> = access
                .iter()
                .filter(|a| {
                    matches!(
                        a.kind,
                        model::DatastoreKind::Postgres | model::DatastoreKind::Rabbitmq
                    )
                })
                .map(|a| crate::names::access_user_reference(&a.on))
                .collect();
            if closed && known.iter().any(|k| k[..k.len() - 1] == token) {
                continue;
            }
            self.err(
                "unknown-env-reference",
                pos(key),
                format!(
                    "`{}`: env `{}` refers to `{token}}}`, which is no user name of its PostgreSQL or RabbitMQ `access`",
                    cx.name(),
                    key.value
                ),
            )
            .help = Some(if known.is_empty() {
                "`{access.DATASTORE.user}` names the user of the service's own login on a PostgreSQL or RabbitMQ datastore it has `access` to; this one has none".to_string()
            } else {
                format!("use {}", known.join(", "))
            });
        }
        if let Some(i) = out.find("{external.") {
            let token: String = out[i..].chars().take_while(|c| *c != '}').collect();
            let known: Vec<String> = cx
                .externals
                .iter()
                .flat_map(|x| {
                    [
                        format!("{{external.{}.host}}", x.name),
                        format!("{{external.{}.port}}", x.name),
                        format!("{{external.{}.endpoint}}", x.name),
                    ]
                })
                .collect();
            self.err(
                "unknown-env-reference",
                pos(key),
                format!(
                    "`{}`: env `{}` refers to `{token}}}`, which is no external's host, port, endpoint or region",
                    cx.name(),
                    key.value
                ),
            )
            .help = Some(format!(
                "use {}",
                if known.is_empty() {
                    "no `{external.…}` reference: this spec declares no external".to_string()
                } else {
                    known.join(", ")
                }
            ));
        }
        out
    }

    /// `env` keys are variable names, and no value is a secret written out.
    fn env_keys<'k>(&mut self, entries: impl Iterator<Item = (&'k S<String>, &'k Scalar)>) {
        for (k, v) in entries {
            if let Err(e) = check_env_key(&k.value) {
                self.err(
                    "invalid-env-key",
                    pos(k),
                    format!("environment variable name {:?} {e}", k.value),
                )
                .help = Some(
                    "name variables like `LOG_LEVEL` or `_X1`; put anything else in the value"
                        .into(),
                );
            } else if looks_like_literal_secret(&k.value, &v.0) {
                self.err(
                    "secret-in-env",
                    pos(k),
                    format!(
                        "`{}` looks like a secret written into the environment: it would show in `docker service inspect`, the Docker API and every `render`",
                        k.value
                    ),
                )
                .help = Some(
                    "declare it under `secrets:` (from the environment's source, or `generate`), mount it, and point the app at the file (e.g. `DB_PASSWORD_FILE: /run/secrets/db-password`)".into(),
                );
            }
        }
    }

    fn apply_resources(&mut self, into: &mut model::Resources, r: &raw::Resources) {
        if let Some(c) = self.cpus(&r.cpus) {
            into.nano_cpus = Some(c);
        }
        if let Some(c) = self.cpus(&r.reserve_cpus) {
            into.reserve_nano_cpus = Some(c);
        }
        if let Some(m) = self.memory(&r.memory) {
            into.memory_bytes = Some(m);
        }
        if let Some(m) = self.memory(&r.reserve_memory) {
            into.reserve_memory_bytes = Some(m);
        }
    }

    /// A number of CPUs in nano-CPUs: above 0 (0 would mean no limit) and at most
    /// [`MAX_CPUS`], so it always fits Docker's signed 64 bits.
    fn cpus(&mut self, v: &Option<S<f64>>) -> Option<i64> {
        let v = v.as_ref()?;
        let nano = v.value * 1e9;
        if v.value.is_finite() && nano >= 1.0 && v.value <= MAX_CPUS {
            // Bounded above: the cast cannot saturate.
            return Some(nano as i64);
        }
        self.err(
            "invalid-cpus",
            pos(v),
            format!(
                "{} CPUs: give a number above 0 and at most {MAX_CPUS}",
                v.value
            ),
        )
        .help = Some("e.g. `cpus: 0.5` (half a CPU) or `cpus: 2`".into());
        None
    }

    fn memory(&mut self, v: &Option<S<String>>) -> Option<i64> {
        let v = v.as_ref()?;
        match values::parse_memory(&v.value) {
            // `parse_memory` keeps sizes within i64.
            Ok(b) => Some(i64::try_from(b).unwrap_or(i64::MAX)),
            Err(e) => {
                self.err("invalid-memory", pos(v), e).help = Some(
                    "digits and one unit, `K`, `M` or `G` (powers of 1024) with an optional `i` and `B`: `512M`, `512MiB`, `2G`"
                        .into(),
                );
                None
            }
        }
    }

    /// Placement constraints (the list that won over the overrides).
    fn placement(&mut self, constraints: &[&S<String>]) -> Vec<String> {
        let mut placement = Vec::new();
        for p in constraints {
            let ok = ["==", "!="].iter().any(|op| {
                p.value
                    .split_once(op)
                    .is_some_and(|(a, b)| !a.trim().is_empty() && !b.trim().is_empty())
            });
            if !ok {
                self.err(
                    "invalid-constraint",
                    pos(p),
                    format!(
                        "placement constraint `{}` is not `<attribute> == <value>` or `!=`",
                        p.value
                    ),
                )
                .help = Some("e.g. `node.role == manager` or `node.labels.role == storage`".into());
                continue;
            }
            placement.push(p.value.clone());
        }
        placement
    }

    /// The container's `hostname`.
    fn hostname(&mut self, cx: &ServiceCx<'_, 'a>) -> Option<String> {
        let h = cx.svc.hostname.as_ref()?;
        if let Err(e) = values::check_host(&h.value) {
            self.err("invalid-host", pos(h), e);
        }
        Some(h.value.clone())
    }
}

/// `logging`: passed through; the engine checks the driver.
fn logging(svc: &raw::Service) -> model::Logging {
    match &svc.logging {
        Some(l) => model::Logging {
            driver: l.driver.clone(),
            options: l
                .options
                .iter()
                .map(|(k, v)| (k.value.clone(), v.0.clone()))
                .collect(),
        },
        None => model::Logging::default(),
    }
}

/// Whether the unseal agent watches the platform: the environment sends `alerts`, or the agent
/// has a route (its status page).
fn watches(cx: &ServiceCx<'_, '_>) -> bool {
    cx.eff.alerts.is_some() || !cx.svc.routes.is_empty()
}
