//! A service's `routes`: router names, the hosts each answers on in this environment, the path
//! prefix, the middlewares, and what `internal` may forward to.
//!
//! Everything here ends up inside Traefik labels and rules, so each piece is held to a grammar
//! that cannot change the label or rule around it: paths are plain URL paths, `internal` names
//! Traefik's dashboard or a service of the spec (never a `…@provider` of anyone's choosing), and
//! a route never reaches a backend without the gate that backend's own route has.

use super::service::ServiceCx;
use super::suggest::suggest;
use super::{pos, Resolver};
use crate::model::{self, MiddlewareKind, Role};
use crate::names::check_object_name;
use crate::raw::{self, S};
use crate::values;

/// Traefik's dashboard: the one Traefik-internal service a route may name.
pub const DASHBOARD: &str = "api@internal";

/// The router name of a service's `i`-th route, which is also the name of the Traefik service
/// that route's `port` defines: its `name`, else the service's name, then `-2`, `-3` ….
pub(super) fn router_name(service: &str, i: usize, route: &raw::Route) -> String {
    match &route.name {
        Some(n) => n.value.clone(),
        None if i == 0 => service.to_string(),
        None => format!("{service}-{}", i + 1),
    }
}

/// What a route's `internal` resolved to.
struct Internal {
    /// The Traefik service the router forwards to (`api@internal` or another route's router).
    backend: Option<String>,
    /// Set when the backend does not run in this environment: the route is dropped, not an
    /// error (like a route whose gate does not run).
    dropped: Option<String>,
}

impl<'a> Resolver<'a> {
    /// `routes`, with their hosts for this environment. A route whose forward-auth gate does
    /// not run here is dropped (and said so), not an error.
    pub(super) fn routes(
        &mut self,
        cx: &ServiceCx<'_, 'a>,
    ) -> (Vec<model::Route>, Vec<model::Disabled>) {
        let name = cx.name();
        let mut routes = Vec::new();
        let mut dropped_routes = Vec::new();
        for (i, r) in cx.svc.routes.iter().enumerate() {
            let rv = &r.value;
            if let Some(n) = &rv.name {
                if check_object_name(&n.value).is_err() {
                    self.err(
                        "invalid-router-name",
                        pos(n),
                        format!(
                            "router name `{}` must be lowercase letters, digits and `-`",
                            n.value
                        ),
                    );
                }
            }
            let router = router_name(name, i, rv);
            // The unseal agent serves one thing to routes: its status page, on its own port.
            let agent = cx.svc.role.as_ref().map(|r| r.value) == Some(Role::UnsealAgent);
            let port = match (&rv.port, &rv.internal) {
                (Some(p), None) if agent && p.value != u64::from(model::Alerts::STATUS_PORT) => {
                    self.err(
                        "agent-route-port",
                        pos(p),
                        format!(
                            "route `{router}` of the unseal agent `{name}` forwards to port {}; the agent serves only its status page to routes, on port {}",
                            p.value,
                            model::Alerts::STATUS_PORT
                        ),
                    )
                    .help = Some("leave out `port`: a route of the agent is its status page".into());
                    None
                }
                (None, None) if agent => Some(model::Alerts::STATUS_PORT),
                (Some(p), None) if (1..=65535).contains(&p.value) => Some(p.value as u16),
                (Some(p), None) => {
                    self.err(
                        "invalid-port",
                        pos(p),
                        format!("port {} is outside 1–65535", p.value),
                    );
                    None
                }
                (None, Some(_)) => None,
                (Some(p), Some(_)) => {
                    self.err("route-port-and-internal", pos(p), "a route forwards either to a `port` or to an `internal` Traefik service, not both");
                    None
                }
                (None, None) => {
                    self.err(
                        "route-without-port",
                        pos(r),
                        format!("route `{router}` of `{name}` names no `port`"),
                    )
                    .help = Some("add `port: <container port>` to the route".into());
                    None
                }
            };
            if let Some(p) = &rv.path {
                if let Err(e) = values::check_route_path(&p.value) {
                    self.err("invalid-path", pos(p), e).help = Some(
                        "the path is written into the Traefik rule: use a plain URL path such as `/webhook` (letters, digits and `._~/-`)"
                            .into(),
                    );
                }
            }
            for m in &rv.middlewares {
                if !cx.middlewares.iter().any(|x| x.name == m.value)
                    && self.spec.middlewares.get(&m.value).is_none()
                {
                    let known: Vec<String> = self
                        .spec
                        .middlewares
                        .iter()
                        .map(|(k, _)| k.value.clone())
                        .collect();
                    self.err(
                        "unknown-middleware",
                        pos(m),
                        format!(
                            "route `{router}` uses middleware `{}`, which is not declared",
                            m.value
                        ),
                    )
                    .help = Some(suggest(&m.value, &known, "middlewares"));
                }
            }
            let internal = match &rv.internal {
                Some(int) => self.internal(cx, &router, rv, int),
                None => Internal {
                    backend: None,
                    dropped: None,
                },
            };
            let hosts = self.hosts(cx, rv);
            let gate_off = rv.middlewares.iter().find_map(|m| {
                let mw = cx.middlewares.iter().find(|x| x.name == m.value)?;
                let gate = mw.service.as_ref()?;
                let (_, why) = cx.eff.disabled.get(gate)?;
                Some(format!(
                    "middleware `{}` needs `{gate}`, which does not run here ({why})",
                    m.value
                ))
            });
            if let Some(reason) = gate_off.or(internal.dropped) {
                dropped_routes.push(model::Disabled {
                    service: router,
                    reason,
                });
                continue;
            }
            routes.push(model::Route {
                at: pos(r),
                router,
                hosts,
                path: rv.path.as_ref().map(|p| p.value.clone()),
                port,
                internal: internal.backend,
                middlewares: rv.middlewares.iter().map(|m| m.value.clone()).collect(),
            });
        }
        (routes, dropped_routes)
    }

    /// The hosts a route answers on here: its subdomain of the environment's hostname, its full
    /// host, or the hostname itself; plus the environment's IPs with `ip_access`.
    fn hosts(&mut self, cx: &ServiceCx<'_, 'a>, rv: &raw::Route) -> Vec<String> {
        let hostname = cx.env.map(|e| e.hostname.clone()).unwrap_or_default();
        let mut hosts = Vec::new();
        match (&rv.subdomain, &rv.host) {
            (Some(s), None) => {
                if let Err(e) = values::check_host(&s.value) {
                    self.err("invalid-host", pos(s), e);
                }
                hosts.push(format!("{}.{hostname}", s.value.to_ascii_lowercase()));
            }
            (None, Some(h)) => {
                if let Err(e) = values::check_host(&h.value) {
                    self.err("invalid-host", pos(h), e);
                }
                hosts.push(h.value.to_ascii_lowercase());
            }
            (None, None) => hosts.push(hostname.clone()),
            (Some(s), Some(_)) => {
                self.err("subdomain-and-host", pos(s), "a route names either a `subdomain` (of the environment's hostname) or a full `host`, not both");
            }
        }
        if rv.ip_access {
            if let Some(env) = cx.env {
                hosts.extend(env.access_ips().iter().map(|ip| ip.to_string()));
            }
        }
        hosts
    }

    /// `internal`: Traefik's dashboard, behind a forward-auth gate; or a service of the spec,
    /// whose first route with a `port` is the backend (its router names the Traefik service),
    /// reached only through every middleware that route has.
    fn internal(
        &mut self,
        cx: &ServiceCx<'_, 'a>,
        router: &str,
        rv: &raw::Route,
        int: &S<String>,
    ) -> Internal {
        let v = int.value.as_str();
        let mut out = Internal {
            backend: None,
            dropped: None,
        };
        if v == DASHBOARD {
            let gated = rv.middlewares.iter().any(|m| {
                cx.middlewares.iter().any(|x| {
                    x.name == m.value && matches!(x.kind, MiddlewareKind::ForwardAuth { .. })
                })
            });
            if !gated {
                self.err(
                    "ungated-dashboard",
                    pos(int),
                    format!("route `{router}` serves Traefik's dashboard (`{DASHBOARD}`) without a gate: anyone reaching the host could read and probe the whole routing table"),
                )
                .help = Some("add a `forward_auth` middleware to the route, e.g. `middlewares: [admin-only]`".into());
            }
            out.backend = Some(v.to_string());
            return out;
        }
        let Some(target) = cx.services.get(v) else {
            let known: Vec<String> = cx.services.keys().map(|s| s.to_string()).collect();
            // `board@swarm` means `board`: suggest the name without the provider.
            let bare = v.split_once('@').map_or(v, |(b, _)| b);
            self.err(
                "invalid-internal",
                pos(int),
                format!("route `{router}`: `internal: {v}` is neither `{DASHBOARD}` nor a service of the spec"),
            )
            .help = Some(format!(
                "`internal` names Traefik's dashboard or a service (by its name alone, no `@provider`) whose route this one shares; {}",
                suggest(bare, &known, "services")
            ));
            return out;
        };
        let backend = target
            .svc
            .routes
            .iter()
            .enumerate()
            .find(|(_, r)| r.value.port.is_some() && r.value.internal.is_none());
        let Some((ti, troute)) = backend else {
            self.err(
                "invalid-internal",
                pos(int),
                format!("route `{router}`: `internal: {v}` names a service with no route to a `port`, so there is no backend to share"),
            )
            .help = Some(format!(
                "give `{v}` a route with a `port`, or give this route a `port` of its own"
            ));
            return out;
        };
        let missing: Vec<&str> = troute
            .value
            .middlewares
            .iter()
            .map(|m| m.value.as_str())
            .filter(|m| !rv.middlewares.iter().any(|x| x.value == *m))
            .collect();
        if !missing.is_empty() {
            self.err(
                "internal-without-gate",
                pos(int),
                format!(
                    "route `{router}` forwards to `{v}` without `{}`, which `{v}`'s own route passes through",
                    missing.join("`, `")
                ),
            )
            .help = Some(format!(
                "add `{}` to this route's `middlewares`: a backend is never reached around its gate",
                missing.join("`, `")
            ));
        }
        out.backend = Some(router_name(v, ti, &troute.value));
        if let Some((_, why)) = cx.eff.disabled.get(v) {
            out.dropped = Some(format!(
                "`internal` names `{v}`, which does not run here ({why})"
            ));
        }
        out
    }
}
