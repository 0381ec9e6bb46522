//! Rules across services: references from environments, `uses` cycles, and what the resolved
//! platform must hold together (one service per role, an edge router for routes, distinct
//! routers, routes and published ports).
//!
//! These need every service at once, so they run outside the per-service checks of
//! `service.rs`: the reference and cycle checks on the indexed spec, [`Resolver::check_platform`]
//! on the resolved [`Platform`] of one environment.

use super::suggest::suggest;
use super::{pos, Effective, Resolver, ServiceRef};
use crate::diag::Pos;
use crate::model::{self, Platform};
use crate::raw::{Role, S};
use crate::values;
use std::collections::{BTreeSet, HashMap};

impl<'a> Resolver<'a> {
    /// Every environment's `disable`, `enable`, `services` and `images` entries name something
    /// that exists: checked for all environments, whichever one is resolved.
    pub(super) fn check_environment_refs(&mut self, services: &HashMap<&'a str, ServiceRef<'a>>) {
        let known: Vec<String> = services.keys().map(|s| s.to_string()).collect();
        let envs = &self.spec.environments;
        for (_, env) in envs.iter() {
            let refs = env
                .disable
                .iter()
                .map(|(k, _)| k)
                .chain(env.services.iter().map(|(k, _)| k))
                .chain(env.enable.iter());
            let mut unknown = Vec::new();
            for r in refs {
                if !services.contains_key(r.value.as_str()) {
                    unknown.push((pos(r), r.value.clone()));
                }
            }
            for (at, name) in unknown {
                self.err(
                    "unknown-service",
                    at,
                    format!("environment refers to service `{name}`, which is not defined"),
                )
                .help = Some(suggest(&name, &known, "services"));
            }
            for (k, v) in env.images.iter() {
                if let Err(e) = values::check_image(&v.value) {
                    self.err("invalid-image", pos(v), e).help = Some(
                        "write an image reference such as `registry.example.org/team/app:1.2`"
                            .into(),
                    );
                }
                if !services.values().any(|s| s.svc.image.value == k.value) {
                    self.warn(
                        "unused-image-mapping",
                        pos(k),
                        format!("no service uses image `{}`", k.value),
                    )
                    .help = Some(
                        "remove the mapping or fix the image name to match a service's `image`"
                            .into(),
                    );
                }
            }
        }
    }

    pub(super) fn check_cycles(&mut self, services: &HashMap<&'a str, ServiceRef<'a>>) {
        // Depth-first in file order; report each cycle once, at the `uses` entry closing it.
        let order: Vec<&str> = self
            .spec
            .layers
            .iter()
            .flat_map(|(_, l)| l.services.iter().map(|(k, _)| k.value.as_str()))
            .collect();
        let mut state: HashMap<&str, u8> = HashMap::new(); // 1 = on stack, 2 = done
        let mut reported = BTreeSet::new();
        let mut found: Vec<(Pos, Vec<String>)> = Vec::new();
        // (service, index of its next `uses` entry): a loop, not recursion, so a long chain of
        // `uses` cannot overflow the stack.
        let mut stack: Vec<(&str, usize)> = Vec::new();
        for n in order {
            let Some((&start, _)) = services.get_key_value(n) else {
                continue;
            };
            if state.contains_key(start) {
                continue;
            }
            state.insert(start, 1);
            stack.push((start, 0));
            while let Some(&(node, i)) = stack.last() {
                let uses = &services[node].svc.uses;
                let Some(u) = uses.get(i) else {
                    state.insert(node, 2);
                    stack.pop();
                    continue;
                };
                if let Some(top) = stack.last_mut() {
                    top.1 += 1;
                }
                let Some((&target, _)) = services.get_key_value(u.value.as_str()) else {
                    continue;
                };
                match state.get(target) {
                    Some(1) => {
                        let from = stack.iter().position(|(x, _)| *x == target).unwrap_or(0);
                        let mut cyc: Vec<String> =
                            stack[from..].iter().map(|(x, _)| x.to_string()).collect();
                        cyc.push(target.to_string());
                        found.push((pos(u), cyc));
                    }
                    Some(_) => {}
                    None => {
                        state.insert(target, 1);
                        stack.push((target, 0));
                    }
                }
            }
        }
        for (at, cyc) in found {
            let mut canon = cyc[..cyc.len() - 1].to_vec();
            canon.sort();
            if reported.insert(canon) {
                self.err(
                    "dependency-cycle",
                    at,
                    format!("services use each other in a cycle: {}", cyc.join(" → ")),
                )
                .help = Some(
                    "break the cycle: a service cannot wait for something that waits for it".into(),
                );
            }
        }
    }

    /// Rules across services of the resolved environment: roles, routers, route and port
    /// collisions.
    pub(super) fn check_platform(
        &mut self,
        p: &Platform,
        services: &HashMap<&'a str, ServiceRef<'a>>,
        eff: &Effective<'a>,
    ) {
        let svc_pos = |svc: &str| {
            services
                .get(svc)
                .map(|s| pos(s.key))
                .unwrap_or(Pos::UNKNOWN)
        };

        // Vault's server command: its private listener is one more `-config=` after it.
        if let Some(v) = p
            .services()
            .find(|s| s.role == Some(Role::Vault) && s.command.is_none() && s.args.is_none())
        {
            self.err(
                "vault-without-command",
                svc_pos(&v.name),
                format!(
                    "`{}` has role `vault` but says neither `command` nor `args` for its server",
                    v.name
                ),
            )
            .help = Some(
                "give its server invocation, e.g. `command: [bao, server, -config=/openbao/config/vault.hcl]`: sprocketctl adds its private listener as one more `-config=` after it".into(),
            );
        }

        // Roles.
        for role in [
            Role::Edge,
            Role::DockerApiProxy,
            Role::Vault,
            Role::UnsealAgent,
        ] {
            let with: Vec<&str> = p
                .services()
                .filter(|s| s.role == Some(role))
                .map(|s| s.name.as_str())
                .collect();
            if with.len() > 1 {
                self.err(
                    "duplicate-role",
                    svc_pos(with[1]),
                    format!(
                        "services `{}` and `{}` both have role `{}`",
                        with[0],
                        with[1],
                        role_name(role)
                    ),
                )
                .help = Some(
                    "a platform has one edge router, one Docker API proxy and one Vault".into(),
                );
            }
        }
        let routed: Vec<&model::Service> = p.services().filter(|s| !s.routes.is_empty()).collect();
        let edge = p.edge();
        if let (Some(first), None) = (routed.first(), edge) {
            self.err(
                "no-edge-router",
                svc_pos(&first.name),
                format!(
                    "`{}` has routes but this environment runs no service with `role: edge`",
                    first.name
                ),
            )
            .help =
                Some("declare Traefik with `role: edge` (or disable the routed services)".into());
        }
        if let Some(edge) = edge {
            if p.docker_api_proxy().is_none() {
                self.err("no-docker-api-proxy", svc_pos(&edge.name), "the edge router needs a service with `role: docker-api-proxy`: Traefik reads the Docker API only through a read-only proxy, never the raw socket")
                    .help = Some("add the socket proxy (e.g. tecnativa/docker-socket-proxy) with `role: docker-api-proxy` in the same layer".into());
            }
            let li = p.layer_index(&edge.layer).unwrap_or(0);
            for s in &routed {
                if p.layer_index(&s.layer).unwrap_or(0) < li {
                    self.err(
                        "route-before-edge",
                        svc_pos(&s.name),
                        format!(
                            "`{}` is routed but starts in a layer before the edge router `{}`",
                            s.name, edge.name
                        ),
                    );
                }
            }
        }

        // Routers and routes.
        let mut routers: HashMap<String, (Pos, String)> = HashMap::new();
        let mut claims: HashMap<(String, String), (Pos, String)> = HashMap::new();
        let acme = p.environment.tls.acme();
        // sprocketctl sends Vault the unseal keys and tokens by its hosts: those hosts are
        // Vault's alone, any path (a longer one would win in Traefik).
        let vault_hosts: HashMap<&str, (Pos, &str)> = p
            .services()
            .filter(|s| s.role == Some(Role::Vault))
            .flat_map(|s| {
                s.routes.iter().flat_map(move |r| {
                    r.hosts
                        .iter()
                        .map(move |h| (h.as_str(), (r.at, s.name.as_str())))
                })
            })
            .collect();
        for s in p.services() {
            for r in &s.routes {
                let at = r.at;
                let on_vault = r
                    .hosts
                    .iter()
                    .find_map(|h| vault_hosts.get_key_value(h.as_str()));
                if let (Some((h, (vault_at, vault))), false) =
                    (on_vault, s.role == Some(Role::Vault))
                {
                    let d = self.err(
                        "route-on-vault-host",
                        at,
                        format!("route `{}` of `{}` answers on `{h}`, a host of the Vault service `{vault}`: it could take requests meant for Vault, unseal keys and tokens included", r.router, s.name),
                    );
                    *d = d
                        .clone()
                        .related(*vault_at, "Vault's route")
                        .help("give the route another host: Vault's hosts are Vault's alone");
                }
                if let Some((first, owner)) = routers.get(&r.router) {
                    let d = self.err(
                        "duplicate-router",
                        at,
                        format!(
                            "router name `{}` is used twice (services `{owner}` and `{}`)",
                            r.router, s.name
                        ),
                    );
                    *d = d
                        .clone()
                        .related(*first, "first used here")
                        .help("give one of the routes its own `name`");
                } else {
                    routers.insert(r.router.clone(), (at, s.name.clone()));
                }
                for h in &r.hosts {
                    if acme && values::is_local_host(h) {
                        self.err("acme-on-local-host", at, format!("route `{}` answers on `{h}`, for which Let's Encrypt cannot issue a certificate", r.router))
                            .help = Some("drop `ip_access` from the route, or use `self-signed` TLS in this environment".into());
                    }
                    let path = r.path.clone().unwrap_or_else(|| "/".into());
                    let key = (h.clone(), path.clone());
                    if let Some((first, other)) = claims.get(&key) {
                        let d = self.err(
                            "route-collision",
                            at,
                            format!("routes `{other}` and `{}` both claim host `{h}` with path `{path}` in environment `{}`", r.router, p.environment.name),
                        );
                        let hint = if h.parse::<std::net::IpAddr>().is_ok() {
                            "an IP is one host: give each `ip_access` route its own `path`, or keep `ip_access` on one route"
                        } else {
                            "give one route another subdomain or a `path`"
                        };
                        *d = d.clone().related(*first, "claimed first here").help(hint);
                    } else {
                        claims.insert(key, (at, r.router.clone()));
                    }
                }
            }
        }

        // Published ports (the edge router's come from the environment).
        let mut taken: HashMap<(u16, String), (Pos, String)> = HashMap::new();
        let env_pos = |field: Option<&S<u64>>| field.map(pos).unwrap_or(Pos::UNKNOWN);
        let mut claim = |this: &mut Self, port: u16, proto: &str, at: Pos, who: String| {
            if let Some((first, other)) = taken.get(&(port, proto.to_string())) {
                let d = this.err(
                    "port-clash",
                    at,
                    format!("{who} and {other} both publish {proto} port {port}"),
                );
                *d = d
                    .clone()
                    .related(*first, "published first here")
                    .help("publish one of them on another port");
            } else {
                taken.insert((port, proto.to_string()), (at, who));
            }
        };
        if let Some(edge) = edge {
            claim(
                self,
                p.environment.http_port,
                "tcp",
                env_pos(eff.http_port),
                format!("the edge router `{}` (http)", edge.name),
            );
            if p.environment.tls.enabled() {
                claim(
                    self,
                    p.environment.https_port,
                    "tcp",
                    env_pos(eff.https_port),
                    format!("the edge router `{}` (https)", edge.name),
                );
            }
        }
        for s in p.services() {
            let raw_ports = services.get(s.name.as_str()).map(|r| &r.svc.ports);
            for (i, port) in s.ports.iter().enumerate() {
                let at = raw_ports
                    .and_then(|v| v.get(i))
                    .map(pos)
                    .unwrap_or(Pos::UNKNOWN);
                claim(
                    self,
                    port.published,
                    &port.protocol,
                    at,
                    format!("`{}`", s.name),
                );
            }
        }
    }
}

fn role_name(r: Role) -> &'static str {
    match r {
        Role::Edge => "edge",
        Role::DockerApiProxy => "docker-api-proxy",
        Role::Vault => "vault",
        Role::UnsealAgent => "unseal-agent",
    }
}
