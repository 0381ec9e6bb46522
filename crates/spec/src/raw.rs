//! The spec file as written: serde types that mirror the YAML one to one.
//!
//! Nothing here is checked beyond YAML types; `validate` turns these into the resolved model.
//! Values that diagnostics must point at are `Spanned`. Field documentation here is the spec
//! reference (the README links to it).

use crate::tree::{OrderedMap, Scalar};
use serde::{Deserialize, Serialize};
use serde_saphyr::Spanned;

pub type S<T> = Spanned<T>;

/// The whole spec file.
#[derive(Debug, Deserialize)]
pub struct SpecFile {
    /// The platform's name; prefixes every object name (overridable per environment by
    /// `namespace`).
    pub platform: S<String>,
    /// The environment used when `-e` is not given.
    pub default_environment: Option<S<String>>,
    /// Layers in deploy order; each holds services. Names as services' (they become file names).
    pub layers: OrderedMap<Layer>,
    /// Dependencies outside the swarm (managed PostgreSQL, S3 …) that services may `use`.
    #[serde(default)]
    pub external: OrderedMap<External>,
    /// Every secret a service may reference, with where its value comes from. `vault-unseal` and
    /// `vault-token-…` are reserved: `up` makes them.
    #[serde(default)]
    pub secrets: OrderedMap<Secret>,
    /// Traefik middlewares that routes refer to by name (lowercase letters, digits and `-`).
    #[serde(default)]
    pub middlewares: OrderedMap<Middleware>,
    /// Vault's initialisation and the operators who hold its keys.
    pub vault: Option<S<VaultSection>>,
    /// Named environments: overlays of this one platform.
    pub environments: OrderedMap<Environment>,
}

#[derive(Debug, Deserialize, Default, Clone)]
pub struct VaultSection {
    /// Unseal key shares made by `vault init` (default 5).
    pub shares: Option<S<u64>>,
    /// Shares needed to unseal (default 3).
    pub threshold: Option<S<u64>>,
    /// Where the encrypted keyring is written, relative to the spec; `{namespace}` is replaced
    /// (default `keyrings/{namespace}.age`).
    pub keyring: Option<S<String>>,
    /// The operators' public keys the keyring is encrypted to: `age1…`, `ssh-ed25519 …`,
    /// `ssh-rsa …`, or `file:PATH` (a file holding such keys, one per line; `~` is the home folder).
    #[serde(default)]
    pub recipients: Vec<S<String>>,
    /// Secret engines `up` mounts: path → `kv-v2` or `kv` (version 1). A mount is never
    /// disabled or changed in type by sprocketctl (that would destroy its data).
    #[serde(default)]
    pub mounts: OrderedMap<S<String>>,
    /// Human team policies: name → rules (`{ path, capabilities }`, paths as Vault's ACL
    /// syntax has them, e.g. `platform/data/*`). Each service's policy is derived from its
    /// `vault` paths, not written here.
    #[serde(default)]
    pub policies: OrderedMap<Vec<S<PolicyRule>>>,
    /// GitHub login for people: organisation and team → policies (needs the server's `github`
    /// auth plugin: built into HashiCorp Vault, an external plugin for OpenBao 2.x).
    pub github: Option<S<GithubAuth>>,
    /// Period of the services' Vault tokens (default `24h`). The unseal agent renews every
    /// token at a third of it; a token not renewed for a whole period expires, and the next
    /// `up` issues a new one.
    pub token_period: Option<S<String>>,
}

#[derive(Debug, Deserialize, Clone)]
pub struct PolicyRule {
    /// A Vault ACL path (`*` at the end, `+` for one segment).
    pub path: S<String>,
    /// `create`, `read`, `update`, `patch`, `delete`, `list`, `sudo`, `deny`.
    pub capabilities: Vec<S<String>>,
}

#[derive(Debug, Deserialize, Clone)]
pub struct GithubAuth {
    /// The GitHub organisation whose members may log in.
    pub organization: S<String>,
    /// Its numeric id. Without it, Vault asks GitHub when the config is written, which fails
    /// where GitHub is unreachable (`curl https://api.github.com/orgs/NAME` shows it).
    pub organization_id: Option<S<u64>>,
    /// GitHub Enterprise API URL.
    pub base_url: Option<S<String>>,
    /// Team slug → the policies its members get.
    #[serde(default)]
    pub teams: OrderedMap<Vec<S<String>>>,
}

#[derive(Debug, Deserialize)]
pub struct Layer {
    #[serde(default)]
    pub services: OrderedMap<Service>,
}

#[derive(Debug, Deserialize, Serialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// The edge router (Traefik): its arguments, ports and networks are derived.
    Edge,
    /// The read-only Docker API proxy the edge router reads through.
    DockerApiProxy,
    /// The secrets server (Vault / OpenBao).
    Vault,
    /// `sprocketctl agent`: keeps every Vault task unsealed. Its unseal material (a Docker
    /// secret), the Vault tasks' name and the Docker API it watches are derived.
    UnsealAgent,
}

#[derive(Debug, Deserialize)]
pub struct Service {
    pub image: S<String>,
    pub role: Option<S<Role>>,
    /// Replaces the image's entrypoint.
    pub command: Option<Vec<String>>,
    /// Replaces the image's default arguments.
    pub args: Option<Vec<String>>,
    /// Variables (`[A-Za-z_][A-Za-z0-9_]*`) → values.
    #[serde(default)]
    pub env: OrderedMap<Scalar>,
    /// `replicated` (default) or `global`.
    pub mode: Option<S<String>>,
    /// 0 to 1000 (default 1).
    pub replicas: Option<S<u64>>,
    /// What this service talks to: other services (any earlier or the same layer) or externals.
    #[serde(default)]
    pub uses: Vec<S<String>>,
    #[serde(default)]
    pub routes: Vec<S<Route>>,
    /// Ports published on the nodes (not routed through the edge).
    #[serde(default)]
    pub ports: Vec<S<PortSpec>>,
    pub health: Option<S<Health>>,
    #[serde(default)]
    pub volumes: Vec<S<VolumeSpec>>,
    #[serde(default)]
    pub configs: Vec<S<ConfigSpec>>,
    #[serde(default)]
    pub secrets: Vec<S<SecretUse>>,
    /// Vault paths this service reads, `<mount>/<path>` (`*` at the end matches the rest).
    /// Its least-privilege policy, a periodic token (a Docker secret at
    /// `/run/secrets/vault-token`, renewed by the unseal agent), `VAULT_ADDR` and a network to
    /// Vault are derived.
    #[serde(default)]
    pub vault: Vec<S<String>>,
    /// This service is a datastore `up` provisions logins in for its consumers' `access`.
    pub datastore: Option<S<Datastore>>,
    /// Used datastore (a service with `datastore:`) → what this service needs there. Its own
    /// login, a generated password (a secret like any other) and the grants are derived.
    #[serde(default)]
    pub access: OrderedMap<S<Access>>,
    pub resources: Option<Resources>,
    #[serde(default)]
    pub placement: Vec<S<String>>,
    pub hostname: Option<S<String>>,
    pub user: Option<String>,
    pub workdir: Option<String>,
    pub stop_grace_period: Option<S<String>>,
    pub logging: Option<Logging>,
    /// Free-form description shown by `status`.
    pub description: Option<String>,
    /// What `check` tolerates of it.
    pub check: Option<CheckSettings>,
}

/// `datastore: { kind: rabbitmq, admin_user: admin, admin_password: SECRET }`.
#[derive(Debug, Deserialize)]
pub struct Datastore {
    /// `rabbitmq`.
    pub kind: S<String>,
    /// The administrator `up` provisions as.
    pub admin_user: S<String>,
    /// A secret the service mounts that holds the administrator's password.
    pub admin_password: S<String>,
    /// The port provisioning talks to (RabbitMQ's management API: 15672; PostgreSQL: 5432).
    pub admin_port: Option<S<u64>>,
    /// PostgreSQL: the database the administrator connects to (default `postgres`).
    pub admin_database: Option<S<String>>,
    /// PostgreSQL: `require` (default) or `disable`.
    pub sslmode: Option<S<String>>,
}

/// What a consumer needs in a datastore it uses. RabbitMQ: `user` (default: the service's
/// name), `vhost` (default: the service's name), `configure` / `write` / `read` patterns
/// (default `.*`: everything in that vhost), and `password_file`, where the service finds its
/// password (default `/run/secrets/<datastore>-password`). PostgreSQL: `user`, `database`
/// (default: the service's name), `privileges` and `password_file`. Redis: `user` (an ACL user;
/// default: the service's name), `keys` and `channels` (patterns; default `<user>:*`) and
/// `password_file`. S3: `buckets` (`{ name: read | readwrite }`), `user` (with `keys:
/// per-service`; default `<namespace>-<service>`), `access_key_file` and `secret_key_file`.
#[derive(Debug, Deserialize)]
pub struct Access {
    pub user: Option<S<String>>,
    pub vhost: Option<S<String>>,
    pub configure: Option<S<String>>,
    pub write: Option<S<String>>,
    pub read: Option<S<String>>,
    pub password_file: Option<S<String>>,
    /// PostgreSQL: the database (default: the service's name).
    pub database: Option<S<String>>,
    /// PostgreSQL: `owner` (default; `up` creates the database), `readwrite` or `read`.
    pub privileges: Option<S<String>>,
    /// Redis: the key patterns the user may touch (default `<user>:*`).
    pub keys: Option<Vec<S<String>>>,
    /// Redis: the Pub/Sub channel patterns (default `<user>:*`).
    pub channels: Option<Vec<S<String>>>,
    /// S3: the buckets it uses, each `read` or `readwrite` (buckets the external declares).
    pub buckets: Option<OrderedMap<S<String>>>,
    /// S3: where the service finds its access key id (default
    /// `/run/secrets/<datastore>-access-key`).
    pub access_key_file: Option<S<String>>,
    /// S3: where it finds its secret key (default `/run/secrets/<datastore>-secret-key`).
    pub secret_key_file: Option<S<String>>,
}

#[derive(Debug, Deserialize)]
pub struct Route {
    /// `<subdomain>.<environment hostname>`; omit both this and `host` for the hostname itself.
    pub subdomain: Option<S<String>>,
    /// A full host name, used as is in every environment.
    pub host: Option<S<String>>,
    /// The container port Traefik forwards to. Not used with `internal`.
    pub port: Option<S<u64>>,
    /// Only requests under this path prefix: `/` then letters, digits and `._~/-`.
    pub path: Option<S<String>>,
    #[serde(default)]
    pub middlewares: Vec<S<String>>,
    /// Also answer on the environment's IP addresses (`server_ip`, `tailscale_ip`). Several
    /// routes may do so only with different `path`s: the IP is one host.
    #[serde(default)]
    pub ip_access: bool,
    /// Router name; defaults to the service name (plus `-2`, `-3` … for further routes).
    pub name: Option<S<String>>,
    /// Instead of a port: `api@internal` (Traefik's dashboard; the route needs a `forward_auth`
    /// middleware), or the name of another service, whose first route with a `port` this route
    /// shares (with at least that route's middlewares). Never `…@provider`.
    pub internal: Option<S<String>>,
}

#[derive(Debug, Deserialize)]
pub struct PortSpec {
    pub target: u64,
    pub published: u64,
    #[serde(default = "tcp")]
    pub protocol: String,
}

fn tcp() -> String {
    "tcp".into()
}

#[derive(Debug, Deserialize)]
pub struct Health {
    /// Exec form, run in the container: `[redis-cli, ping]`.
    pub cmd: Vec<String>,
    pub interval: Option<S<String>>,
    pub timeout: Option<S<String>>,
    /// At most 1000 (default 3).
    pub retries: Option<S<u64>>,
    pub start_period: Option<S<String>>,
}

#[derive(Debug, Deserialize)]
pub struct VolumeSpec {
    /// A named volume owned by the platform (kept by `down` unless `--volumes`).
    pub volume: Option<String>,
    /// A host path (bind mount).
    pub bind: Option<String>,
    pub target: String,
    #[serde(default)]
    pub read_only: bool,
    /// A named volume whose files are data: `backup` saves them (a tar of the volume) and
    /// `restore` puts them back.
    #[serde(default)]
    pub backup: bool,
}

#[derive(Debug, Deserialize)]
pub struct ConfigSpec {
    /// A file, relative to the spec file, mounted as a Docker config (content-addressed). It
    /// stays inside the spec's folder (no absolute path, no `..` or symlink out of it) and
    /// holds at most 500 KiB.
    pub file: S<String>,
    pub target: String,
    pub mode: Option<u32>,
}

/// `- name` or `- {name: x, target: /path, uid: 472, gid: 472, mode: 0o440}`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum SecretUse {
    Name(String),
    Full {
        name: String,
        target: Option<String>,
        /// The file's owner in the container (a non-root image's user reads its secrets).
        uid: Option<u32>,
        gid: Option<u32>,
        mode: Option<u32>,
    },
}

impl SecretUse {
    pub fn name(&self) -> &str {
        match self {
            SecretUse::Name(n) => n,
            SecretUse::Full { name, .. } => name,
        }
    }
    pub fn target(&self) -> Option<&str> {
        match self {
            SecretUse::Name(_) => None,
            SecretUse::Full { target, .. } => target.as_deref(),
        }
    }
    /// (uid, gid, mode): root and 0400 unless the spec says otherwise.
    pub fn file(&self) -> (u32, u32, u32) {
        match self {
            SecretUse::Name(_) => (0, 0, 0o400),
            SecretUse::Full { uid, gid, mode, .. } => {
                (uid.unwrap_or(0), gid.unwrap_or(0), mode.unwrap_or(0o400))
            }
        }
    }
}

#[derive(Debug, Deserialize, Clone)]
pub struct Resources {
    /// CPUs, e.g. `0.5`: above 0, at most 1000000.
    pub cpus: Option<S<f64>>,
    /// Memory limit: digits and one unit, e.g. `512M`, `512MiB`, `2G`.
    pub memory: Option<S<String>>,
    pub reserve_cpus: Option<S<f64>>,
    pub reserve_memory: Option<S<String>>,
}

#[derive(Debug, Deserialize, Clone)]
pub struct Logging {
    pub driver: String,
    #[serde(default)]
    pub options: OrderedMap<Scalar>,
}

#[derive(Debug, Deserialize)]
pub struct External {
    /// `postgres`, `s3`, `http` … (used for checks).
    pub kind: String,
    /// `host.docker.internal`: the Docker host itself (what uses it gets the host entry).
    pub host: Option<String>,
    pub port: Option<u64>,
    pub endpoint: Option<String>,
    /// PostgreSQL: the administrator `up` provisions its consumers' roles and databases as
    /// (CREATEROLE and CREATEDB, not a superuser, as on managed databases).
    pub admin_user: Option<S<String>>,
    /// A secret with the administrator's password (from the source of truth).
    pub admin_password: Option<S<String>>,
    /// The database the administrator connects to (default `postgres`).
    pub admin_database: Option<S<String>>,
    /// `require` (default: encrypted) or `disable`.
    pub sslmode: Option<S<String>>,
    /// S3: a secret with the access key id `up` creates the buckets (and, with `keys:
    /// per-service`, the consumers' users and keys) with.
    pub admin_access_key: Option<S<String>>,
    /// S3: a secret with that key's secret.
    pub admin_secret_key: Option<S<String>>,
    /// S3: the signing region (default `us-east-1`; DigitalOcean Spaces: the region of the
    /// endpoint, e.g. `nyc3`).
    pub region: Option<S<String>>,
    /// S3: the buckets `up` creates (never removes: they hold data). Consumers name them in
    /// their `access`.
    pub buckets: Option<Vec<S<String>>>,
    /// S3: `per-service` (the store's IAM API makes each consumer its own user and key,
    /// limited to its buckets: SeaweedFS, MinIO) or `shared` (the default: the store's keys are
    /// made in its console, as DigitalOcean Spaces' are; consumers mount the key above).
    pub keys: Option<S<String>>,
}

#[derive(Debug, Deserialize)]
pub struct Secret {
    /// Where the value comes from: `doppler` (the source of truth), `generate` (random, made
    /// once and kept), or `manual` (set by an operator).
    pub source: S<String>,
    /// The key in the source, when it differs from the secret's name.
    pub key: Option<String>,
    /// Length for generated secrets.
    pub length: Option<u64>,
    /// The shortest value accepted from the source (`secrets check` refuses shorter ones).
    pub min_length: Option<u64>,
    /// Generated values' characters: `alphanumeric` (default), `hex` or `base64url`.
    pub alphabet: Option<S<String>>,
    /// A regular expression the whole value must match (`secrets check`, `up`).
    pub pattern: Option<S<String>>,
    /// Where Vault keeps it, `mount/path` on a `kv-v2` mount of the spec (default:
    /// `sprocket/<namespace>/<secret>`, sprocketctl's own mount).
    pub vault_path: Option<S<String>>,
    /// The field of that Vault document (default `value`).
    pub vault_key: Option<S<String>>,
}

#[derive(Debug, Deserialize)]
pub struct Middleware {
    /// The service that implements this middleware (e.g. the forward-auth server). Where an
    /// environment disables it, routes using the middleware are not published at all, so a
    /// gated route is never exposed without its gate.
    pub service: Option<S<String>>,
    pub forward_auth: Option<ForwardAuth>,
    pub strip_prefix: Option<Vec<String>>,
    pub redirect_https: Option<bool>,
}

#[derive(Debug, Deserialize)]
pub struct ForwardAuth {
    /// May contain `{hostname}`, replaced with the environment's hostname.
    pub address: String,
    #[serde(default)]
    pub trust_forward_header: bool,
    #[serde(default)]
    pub response_headers: Vec<String>,
}

#[derive(Debug, Deserialize, Default)]
pub struct Environment {
    pub extends: Option<S<String>>,
    pub description: Option<String>,
    /// Prefix of every object name; defaults to the platform name.
    pub namespace: Option<S<String>>,
    pub hostname: Option<S<String>>,
    /// The server's LAN address: routes with `ip_access` also answer on it.
    /// `none` clears an address inherited through `extends`.
    pub server_ip: Option<S<String>>,
    /// The server's Tailscale address: routes with `ip_access` also answer on it.
    pub tailscale_ip: Option<S<String>>,
    pub tls: Option<S<Tls>>,
    /// `vip` (needs IPVS in the kernel) or `dnsrr`.
    pub endpoint_mode: Option<S<String>>,
    /// `ingress` (routing mesh, needs IPVS) or `host`.
    pub publish_mode: Option<S<String>>,
    /// Where this environment's secret values come from: `doppler:PROJECT/CONFIG`,
    /// `dotenv:PATH` (relative to the spec's folder) or `env` (`SPROCKET_SECRETS_FROM` and
    /// `--secrets-from` override it).
    pub secrets_from: Option<S<String>>,
    /// Host ports of the edge router.
    pub http_port: Option<S<u64>>,
    pub https_port: Option<S<u64>>,
    /// Upstream image → image to run instead (e.g. one built locally).
    #[serde(default)]
    pub images: OrderedMap<S<String>>,
    /// Service → why it does not run in this environment.
    #[serde(default)]
    pub disable: OrderedMap<S<String>>,
    /// Services a parent environment disabled that run here.
    #[serde(default)]
    pub enable: Vec<S<String>>,
    /// Per-service overrides.
    #[serde(default)]
    pub services: OrderedMap<ServiceOverride>,
    /// Overrides of external endpoints.
    #[serde(default)]
    pub external: OrderedMap<ExternalOverride>,
    /// Overrides of the `vault` section (`keyring`, `recipients`, `token_period`), e.g. a
    /// developer's own key.
    pub vault: Option<S<VaultSection>>,
    /// Where the agent sends the alerts of its checks, and when.
    pub alerts: Option<S<Alerts>>,
    /// Where and how often the platform is backed up, and which backups are kept.
    pub backup: Option<S<Backup>>,
}

/// An environment's `backup`: `sprocketctl backup` (and the agent, daily) writes every artefact a
/// rebuild needs, encrypted to Vault's `recipients` (the operators), to `bucket` of the S3
/// external `to`.
#[derive(Debug, Deserialize, Clone)]
pub struct Backup {
    /// An external of `kind: s3` with an administrator's key.
    pub to: S<String>,
    /// The bucket (made if missing; never removed). Objects go under `<namespace>/`.
    pub bucket: S<String>,
    /// When the daily backup runs, `HH:MM` in UTC (default `02:00`).
    pub at: Option<S<String>>,
    /// How many backups of each kind retention keeps (default 7 daily, 4 weekly, 6 monthly).
    pub keep: Option<S<Keep>>,
}

#[derive(Debug, Deserialize, Clone)]
pub struct Keep {
    pub daily: Option<S<u64>>,
    pub weekly: Option<S<u64>>,
    pub monthly: Option<S<u64>>,
}

#[derive(Debug, Deserialize, Clone)]
pub struct Alerts {
    /// A URL the agent POSTs each alert to, as it fires and as it resolves.
    pub webhook: Option<S<String>>,
    /// A secret whose value is the webhook's URL (Slack's and Discord's are credentials): the
    /// agent gets it as a file, never in its environment.
    pub webhook_secret: Option<S<String>>,
    /// The webhook's body: `json` (default), `slack` or `discord`.
    pub format: Option<S<String>>,
    /// An Alertmanager (its base URL): every firing alert each round, on `/api/v2/alerts`.
    pub alertmanager: Option<S<String>>,
    /// Consecutive failing rounds before an alert fires (default 3).
    pub fail_after: Option<S<u64>>,
    /// Consecutive good rounds before it resolves (default 2).
    pub resolve_after: Option<S<u64>>,
    /// How often the agent checks (default 30s).
    pub interval: Option<S<String>>,
}

#[derive(Debug, Deserialize, Clone)]
pub struct Tls {
    /// `letsencrypt`, `letsencrypt-staging`, `self-signed` or `none`.
    pub mode: S<String>,
    /// ACME account e-mail (Let's Encrypt modes).
    pub email: Option<String>,
    /// ACME directory URL, for another CA (e.g. a local Pebble in tests).
    pub ca_server: Option<String>,
    /// A private ACME server's own CA certificate (PEM, a file next to the spec) that Traefik
    /// trusts for talking to `ca_server` (a company CA, or Pebble in tests).
    pub ca_certificate: Option<S<String>>,
    /// How long the CA's certificates last, in hours (Traefik's `certificatesDuration`; default
    /// 2160, Let's Encrypt's 90 days): Traefik renews within a third of it (30 days by default;
    /// under 24 hours: 20 minutes before expiry, checked every minute).
    pub certificates_duration: Option<S<u64>>,
}

#[derive(Debug, Deserialize, Default)]
pub struct ServiceOverride {
    pub replicas: Option<S<u64>>,
    #[serde(default)]
    pub env: OrderedMap<Scalar>,
    pub args: Option<Vec<String>>,
    pub resources: Option<Resources>,
    pub placement: Option<Vec<S<String>>>,
}

#[derive(Debug, Deserialize, Default)]
pub struct ExternalOverride {
    pub host: Option<String>,
    pub port: Option<u64>,
    pub endpoint: Option<String>,
    pub sslmode: Option<S<String>>,
    pub region: Option<S<String>>,
    pub keys: Option<S<String>>,
}

/// A service's `check:` settings.
#[derive(Debug, Deserialize, Default)]
pub struct CheckSettings {
    /// Error lines a day before `check` warns (default 50, the runbook's healthy count).
    pub errors_per_day: Option<u64>,
    /// Its uptime target in percent (e.g. 99.9), for the SLA report's error budget.
    pub slo: Option<f64>,
}
