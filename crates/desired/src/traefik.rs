//! Traefik, derived: router rules from environment + route, entry points and TLS from the
//! environment, the edge router's own arguments from the platform. Nobody writes a Traefik label
//! by hand, so nobody can mistype one.

use sprocket_spec::model::{MiddlewareKind, Platform, Role, Route, Service, Tls};
use std::collections::BTreeMap;

/// The certificate resolver name used for Let's Encrypt modes.
pub const RESOLVER: &str = "letsencrypt";

/// Where Traefik keeps ACME's account and certificates (on its volume); `status` and `plan`
/// read it there.
pub const ACME_STORAGE: &str = "/data/acme.json";

/// Let's Encrypt's directories (production is Traefik's default CA).
pub const LETS_ENCRYPT: &str = "https://acme-v02.api.letsencrypt.org/directory";
pub const LETS_ENCRYPT_STAGING: &str = "https://acme-staging-v02.api.letsencrypt.org/directory";

/// The ACME directory an environment's certificates come from, and whether it is Let's
/// Encrypt's (whose rate limits `up`'s pre-flight and `plan`'s budget guard); `None` without
/// ACME.
pub fn acme_directory(tls: &Tls) -> Option<(String, bool)> {
    match tls {
        Tls::LetsEncrypt { ca_server, .. } => {
            let url = ca_server.clone().unwrap_or_else(|| LETS_ENCRYPT.into());
            let le = url == LETS_ENCRYPT || url == LETS_ENCRYPT_STAGING;
            Some((url, le))
        }
        Tls::LetsEncryptStaging { .. } => Some((LETS_ENCRYPT_STAGING.into(), true)),
        Tls::SelfSigned | Tls::None => None,
    }
}

/// Vault's unauthenticated endpoints that hand over or take its keys: whoever reaches them
/// first may initialise a fresh Vault, feed or reset unseal attempts, or start a root-token or
/// rekey ceremony. sprocketctl calls them over its private path; the public route refuses them.
pub const VAULT_PRIVATE_PATHS: [&str; 4] = [
    "/v1/sys/init",
    "/v1/sys/unseal",
    "/v1/sys/generate-root",
    "/v1/sys/rekey",
];

/// `Host(`a`) || Host(`b`)`, and `&& PathPrefix(`/p`)` when the route has a path.
pub fn rule(route: &Route) -> String {
    let hosts = route
        .hosts
        .iter()
        .map(|h| format!("Host(`{h}`)"))
        .collect::<Vec<_>>()
        .join(" || ");
    match &route.path {
        Some(p) if route.hosts.len() > 1 => format!("({hosts}) && PathPrefix(`{p}`)"),
        Some(p) => format!("{hosts} && PathPrefix(`{p}`)"),
        None => hosts,
    }
}

/// The rule of a route of `svc`: for Vault, [`rule`] minus [`VAULT_PRIVATE_PATHS`] (Traefik then
/// answers 404 for them on this route).
pub fn service_rule(svc: &Service, route: &Route) -> String {
    let base = rule(route);
    if svc.role != Some(Role::Vault) {
        return base;
    }
    let refused = VAULT_PRIVATE_PATHS
        .iter()
        .map(|p| format!(" && !PathPrefix(`{p}`)"))
        .collect::<String>();
    if route.hosts.len() > 1 && route.path.is_none() {
        format!("({base}){refused}")
    } else {
        format!("{base}{refused}")
    }
}

/// Labels for one service's routes (empty when it has none). `edge_network` is the network
/// Traefik reaches the service's tasks on (none when all its routes are Traefik's own).
pub fn service_labels(
    p: &Platform,
    svc: &Service,
    edge_network: Option<&str>,
) -> BTreeMap<String, String> {
    let mut l = BTreeMap::new();
    if svc.routes.is_empty() {
        return l;
    }
    l.insert("traefik.enable".into(), "true".into());
    if let Some(net) = edge_network {
        l.insert("traefik.swarm.network".into(), net.into());
    }
    let tls = &p.environment.tls;
    let mut used_middlewares = Vec::new();
    for r in &svc.routes {
        let backend = match &r.internal {
            Some(internal) => internal.clone(),
            None => {
                let port = r
                    .port
                    .expect("validated: a route has a port or is internal");
                l.insert(
                    format!(
                        "traefik.http.services.{}.loadbalancer.server.port",
                        r.router
                    ),
                    port.to_string(),
                );
                r.router.clone()
            }
        };
        let rule = service_rule(svc, r);
        let mws = r.middlewares.join(",");
        used_middlewares.extend(r.middlewares.iter().cloned());
        // (router name, entry point, tls)
        let routers: Vec<(String, &str, bool)> = match tls {
            Tls::None => vec![(r.router.clone(), "web", false)],
            // Plain HTTP and HTTPS both answer locally: curl without -k works.
            Tls::SelfSigned => vec![
                (r.router.clone(), "web", false),
                (format!("{}-tls", r.router), "websecure", true),
            ],
            // HTTPS only; the web entry point redirects.
            Tls::LetsEncrypt { .. } | Tls::LetsEncryptStaging { .. } => {
                vec![(r.router.clone(), "websecure", true)]
            }
        };
        for (name, ep, with_tls) in routers {
            let k = |f: &str| format!("traefik.http.routers.{name}.{f}");
            l.insert(k("rule"), rule.clone());
            l.insert(k("entrypoints"), ep.into());
            l.insert(k("service"), backend.clone());
            if !mws.is_empty() {
                l.insert(k("middlewares"), mws.clone());
            }
            if with_tls {
                l.insert(k("tls"), "true".into());
                if tls.acme() {
                    l.insert(k("tls.certresolver"), RESOLVER.into());
                }
            }
        }
    }
    // Swarm needs a port for every Traefik service, even one whose routes are all internal.
    if svc.routes.iter().all(|r| r.internal.is_some()) {
        l.insert(
            format!(
                "traefik.http.services.{}-noop.loadbalancer.server.port",
                svc.name
            ),
            "9999".into(),
        );
    }
    used_middlewares.sort();
    used_middlewares.dedup();
    for name in used_middlewares {
        let Some(m) = p.middlewares.iter().find(|m| m.name == name) else {
            continue;
        };
        let k = |f: &str| format!("traefik.http.middlewares.{name}.{f}");
        match &m.kind {
            MiddlewareKind::ForwardAuth {
                address,
                trust_forward_header,
                response_headers,
            } => {
                l.insert(
                    k("forwardauth.address"),
                    address.replace("{hostname}", &p.environment.hostname),
                );
                if *trust_forward_header {
                    l.insert(k("forwardauth.trustforwardheader"), "true".into());
                }
                if !response_headers.is_empty() {
                    l.insert(
                        k("forwardauth.authresponseheaders"),
                        response_headers.join(","),
                    );
                }
            }
            MiddlewareKind::StripPrefix { prefixes } => {
                l.insert(k("stripprefix.prefixes"), prefixes.join(","));
            }
            MiddlewareKind::RedirectHttps => {
                l.insert(k("redirectscheme.scheme"), "https".into());
                l.insert(k("redirectscheme.permanent"), "true".into());
            }
        }
    }
    l
}

/// The edge router's arguments: Docker API through the proxy, our namespace only, entry points
/// and certificate resolvers of the environment. Each routed service names its own edge network
/// in its labels, so there is no default network.
pub fn edge_args(p: &Platform, proxy_host: &str) -> Vec<String> {
    let env = &p.environment;
    let mut a = vec![
        "--ping=true".to_string(),
        "--log.level=INFO".into(),
        "--providers.swarm=true".into(),
        format!(
            "--providers.swarm.endpoint=tcp://{proxy_host}:{}",
            crate::contract::DOCKER_API_PORT
        ),
        "--providers.swarm.exposedbydefault=false".into(),
        format!(
            "--providers.swarm.constraints=Label(`{}`,`{}`)",
            crate::labels::NAMESPACE,
            env.namespace
        ),
        "--providers.swarm.refreshSeconds=2".into(),
        // Traefik holds each provider's next configuration back for this long after applying
        // one (default 2 s): on top of the 2 s poll, a task that starts or stops reached the
        // routers up to 4 s later (new tasks unserved, stopped ones still sent requests). The
        // poll already bounds how often the swarm provider changes anything.
        "--providers.providersThrottleDuration=100ms".into(),
        "--entrypoints.web.address=:80".into(),
    ];
    if p.services()
        .flat_map(|s| &s.routes)
        .any(|r| r.internal.as_deref() == Some("api@internal"))
    {
        a.push("--api.dashboard=true".into());
    }
    if env.tls.enabled() {
        a.push("--entrypoints.websecure.address=:443".into());
    }
    match &env.tls {
        Tls::LetsEncrypt {
            email,
            ca_server,
            ca_certificate,
            certificates_duration,
        } => {
            a.extend(acme_args(email, ca_server.as_deref()));
            if let Some(h) = certificates_duration {
                a.push(format!(
                    "--certificatesresolvers.{RESOLVER}.acme.certificatesduration={h}"
                ));
            }
            if ca_certificate.is_some() {
                a.push(format!(
                    "--certificatesresolvers.{RESOLVER}.acme.cacertificates={ACME_CA_TARGET}"
                ));
            }
            a.extend(redirect_args());
        }
        Tls::LetsEncryptStaging { email } => {
            a.extend(acme_args(email, Some(LETS_ENCRYPT_STAGING)));
            a.extend(redirect_args());
        }
        Tls::SelfSigned | Tls::None => {}
    }
    a
}

/// Where Traefik finds a private ACME server's CA certificate (a Docker config).
pub const ACME_CA_TARGET: &str = "/run/sprocket/acme-ca.pem";

/// The resolver: HTTP-01 on the `web` entry point (the CA fetches
/// `http://<host>/.well-known/acme-challenge/…` on port 80; Traefik answers it before the
/// entry point's redirect to HTTPS), the account and certificates in `acme.json` on Traefik's
/// volume.
fn acme_args(email: &str, ca: Option<&str>) -> Vec<String> {
    let k = |f: &str| format!("--certificatesresolvers.{RESOLVER}.acme.{f}");
    let mut a = vec![
        format!("{}={email}", k("email")),
        format!("{}={ACME_STORAGE}", k("storage")),
        format!("{}=web", k("httpchallenge.entrypoint")),
    ];
    if let Some(ca) = ca {
        a.push(format!("{}={ca}", k("caserver")));
    }
    a
}

fn redirect_args() -> Vec<String> {
    vec![
        "--entrypoints.web.http.redirections.entrypoint.to=websecure".into(),
        "--entrypoints.web.http.redirections.entrypoint.scheme=https".into(),
    ]
}
