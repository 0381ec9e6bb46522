//! The validated platform for one environment: every reference resolved, every value parsed,
//! environment overlays applied. This is what `desired` turns into Swarm objects.

use serde::Serialize;
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::PathBuf;

pub use crate::raw::Role;

#[derive(Debug, Clone, Serialize)]
pub struct Platform {
    /// The `platform:` name of the spec.
    pub name: String,
    pub environment: Environment,
    /// In deploy order.
    pub layers: Vec<Layer>,
    pub externals: Vec<External>,
    pub secrets: Vec<Secret>,
    pub middlewares: Vec<Middleware>,
    /// Present when the spec has a `vault` section and its Vault service runs here.
    pub vault: Option<Vault>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Vault {
    /// The service with `role: vault`.
    pub service: String,
    pub shares: u32,
    pub threshold: u32,
    /// Absolute path of the encrypted keyring.
    pub keyring: PathBuf,
    /// Public keys (age or SSH), `file:` references already read.
    pub recipients: Vec<String>,
    /// Secret engines to mount, in spec order.
    pub mounts: Vec<VaultMount>,
    /// Human team policies.
    pub policies: Vec<VaultPolicy>,
    pub github: Option<GithubAuth>,
    /// Period of the services' tokens, in seconds.
    pub token_period_s: u64,
    /// Service → the Vault paths it reads (enabled services with `vault` paths only).
    pub readers: BTreeMap<String, Vec<String>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VaultMount {
    /// Without slashes (`platform`).
    pub path: String,
    pub kind: KvVersion,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum KvVersion {
    #[serde(rename = "kv")]
    V1,
    #[serde(rename = "kv-v2")]
    V2,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VaultPolicy {
    pub name: String,
    /// (path, capabilities) in spec order.
    pub rules: Vec<(String, Vec<String>)>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GithubAuth {
    pub organization: String,
    pub organization_id: Option<u64>,
    pub base_url: Option<String>,
    /// Team slug → policies.
    pub teams: BTreeMap<String, Vec<String>>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Environment {
    pub name: String,
    /// This environment and the ones it extends, nearest first.
    pub chain: Vec<String>,
    pub description: Option<String>,
    pub namespace: String,
    pub hostname: String,
    pub server_ip: Option<IpAddr>,
    pub tailscale_ip: Option<IpAddr>,
    pub tls: Tls,
    pub endpoint_mode: EndpointMode,
    pub publish_mode: PublishMode,
    pub http_port: u16,
    pub https_port: u16,
    /// Where secret values come from (`secrets_from`; a dotenv path made absolute).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secrets_from: Option<crate::secrets_from::SecretsFrom>,
    /// sprocketctl's own image here (the environment's `images` map it like any other): the
    /// one-off tasks `up` runs inside the swarm (provisioning a datastore's logins) use it.
    pub tool_image: String,
    /// Where the agent sends the alerts of its checks; `None`: it sends none.
    pub alerts: Option<Alerts>,
    /// Where backups go (`environments.<env>.backup`); `None`: the platform is not backed up.
    pub backup: Option<Backup>,
    /// A drill's scratch copy of this environment ([`Scratch`]): the namespace it copies. Its
    /// restores read that namespace's backups; `backup` refuses it; it sends no alert.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scratch_of: Option<String>,
}

/// What makes a drill's scratch platform (`sprocketctl drill`) out of an environment: the same
/// spec in namespace `<namespace>-drill` of the same swarm, on other host ports, with a keyring
/// file of its own, self-signed certificates (a drill never spends Let's Encrypt's rate limits)
/// and no alerts; its apps (neither a role nor a datastore) get no replica and no published
/// port, so nothing in it acts on the outside world with the live platform's identities.
/// Applied while the spec is resolved, so everything derived from the namespace follows it
/// (object names, `{namespace}` in values, database and role names, Vault paths).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Scratch {
    pub namespace: String,
    pub http_port: u16,
    pub https_port: u16,
    /// Absolute path of the scratch platform's keyring file.
    pub keyring: std::path::PathBuf,
}

impl Scratch {
    /// The scratch namespace of `namespace`'s drills.
    pub fn namespace_of(namespace: &str) -> String {
        format!("{namespace}-drill")
    }
}

/// Where backups go, when the daily one runs and what retention keeps.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Backup {
    /// The S3 external (`kind: s3`, with an administrator's key).
    pub store: String,
    pub bucket: String,
    /// Minutes after 00:00 UTC of the daily backup.
    pub at_minute: u32,
    /// Whether the daily backup runs (`at: off`: only `sprocketctl backup`).
    pub scheduled: bool,
    pub keep_daily: u32,
    pub keep_weekly: u32,
    pub keep_monthly: u32,
}

impl Backup {
    /// 02:00 UTC, the runbook's.
    pub const AT_MINUTE: u32 = 120;
    /// The runbook's retention: a week of dailies, a month of weeklies, half a year of monthlies.
    pub const KEEP: (u32, u32, u32) = (7, 4, 6);
    /// The runbook's recovery point objective: a backup older than this is late.
    pub const MAX_AGE_S: u64 = 24 * 3600;
}

impl Environment {
    /// The addresses routes with `ip_access` also answer on.
    pub fn access_ips(&self) -> Vec<IpAddr> {
        self.server_ip
            .into_iter()
            .chain(self.tailscale_ip)
            .collect()
    }
}

/// Where the agent sends alerts (`environments.<env>.alerts`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Alerts {
    pub webhook: Option<String>,
    /// The secret holding the webhook's URL, mounted into the agent at [`Alerts::WEBHOOK_FILE`].
    pub webhook_secret: Option<String>,
    pub format: AlertFormat,
    pub alertmanager: Option<String>,
    pub fail_after: u32,
    pub resolve_after: u32,
    pub interval_s: u64,
}

impl Alerts {
    /// Where the agent finds the webhook's URL when it comes from a secret.
    pub const WEBHOOK_FILE: &'static str = "/run/secrets/alerts-webhook";
    /// Where the agent keeps what it remembers (alerts, uptime), on a volume of its own.
    pub const STATE_DIR: &'static str = "/var/lib/sprocket-agent";
    /// That volume's name in the spec's terms (`_` never occurs in a spec's volume name).
    pub const STATE_VOLUME: &'static str = "agent_state";
    /// The port of the agent's status page: what a route of the agent forwards to.
    pub const STATUS_PORT: u16 = 8080;
    /// Rounds before an alert fires, and good ones before it resolves (as Gatus's defaults).
    pub const FAIL_AFTER: u32 = 3;
    pub const RESOLVE_AFTER: u32 = 2;
    /// Seconds between rounds.
    pub const INTERVAL_S: u64 = 30;

    /// The watch without destinations: what the agent runs for its status page when the
    /// environment sends no alerts.
    pub fn watch_only() -> Alerts {
        Alerts {
            webhook: None,
            webhook_secret: None,
            format: AlertFormat::Json,
            alertmanager: None,
            fail_after: Self::FAIL_AFTER,
            resolve_after: Self::RESOLVE_AFTER,
            interval_s: Self::INTERVAL_S,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AlertFormat {
    /// Our own body: status, key, severity, summary, root, affects, …
    #[default]
    Json,
    /// `{text}`: Slack incoming webhooks (and Mattermost, Rocket.Chat).
    Slack,
    /// `{content}`: Discord webhooks.
    Discord,
}

/// A CA certificate file of the spec's folder, read at load time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CaCertificate {
    /// The file as the spec names it.
    pub file: String,
    #[serde(skip)]
    pub content: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "mode", rename_all = "kebab-case")]
pub enum Tls {
    LetsEncrypt {
        email: String,
        ca_server: Option<String>,
        /// The private ACME server's CA certificate Traefik trusts (`ca_server`'s, not the
        /// issuing root).
        ca_certificate: Option<CaCertificate>,
        /// How long the CA's certificates last, in hours, where it is not Let's Encrypt's 90
        /// days (Traefik renews by it).
        certificates_duration: Option<u64>,
    },
    LetsEncryptStaging {
        email: String,
    },
    SelfSigned,
    None,
}

impl Tls {
    pub fn acme(&self) -> bool {
        matches!(
            self,
            Tls::LetsEncrypt { .. } | Tls::LetsEncryptStaging { .. }
        )
    }
    pub fn enabled(&self) -> bool {
        !matches!(self, Tls::None)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum EndpointMode {
    Vip,
    Dnsrr,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PublishMode {
    Ingress,
    Host,
}

#[derive(Debug, Clone, Serialize)]
pub struct Layer {
    pub name: String,
    pub services: Vec<Service>,
    /// Services this environment does not run, with the reason.
    pub disabled: Vec<Disabled>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Disabled {
    pub service: String,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase", tag = "kind", content = "replicas")]
pub enum Mode {
    Replicated(u64),
    Global,
}

#[derive(Debug, Clone, Serialize)]
pub struct Service {
    pub name: String,
    pub layer: String,
    pub role: Option<Role>,
    /// The image this environment runs.
    pub image: String,
    /// The image the spec names (differs when the environment maps it).
    pub spec_image: String,
    pub command: Option<Vec<String>>,
    pub args: Option<Vec<String>>,
    pub env: BTreeMap<String, String>,
    pub mode: Mode,
    /// Swarm services this one talks to.
    pub uses: Vec<String>,
    /// External dependencies this one talks to.
    pub uses_external: Vec<String>,
    pub routes: Vec<Route>,
    /// Routes this environment does not publish, with the reason.
    pub dropped_routes: Vec<Disabled>,
    pub ports: Vec<Port>,
    pub health: Option<Health>,
    pub volumes: Vec<Volume>,
    pub configs: Vec<ConfigFile>,
    pub secrets: Vec<SecretMount>,
    /// Vault paths this service reads (`<mount>/<path>`).
    pub vault_paths: Vec<String>,
    /// This service is a datastore: how `up` provisions its consumers' logins.
    pub datastore: Option<Datastore>,
    /// This service's own logins in the datastores it uses.
    pub access: Vec<Access>,
    pub resources: Resources,
    pub placement: Vec<String>,
    pub hostname: Option<String>,
    pub user: Option<String>,
    pub workdir: Option<String>,
    pub stop_grace_period_ns: Option<u64>,
    pub logging: Logging,
    pub description: Option<String>,
    /// Error lines a day in its log before `check` warns.
    pub errors_per_day: u64,
    /// Its uptime target in percent (`check: { slo }`), for the SLA report.
    pub slo: Option<f64>,
}

/// The runbook's healthy daily count of error lines, where a service names none.
pub const DEFAULT_ERRORS_PER_DAY: u64 = 50;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DatastoreKind {
    Rabbitmq,
    Postgres,
    Redis,
    S3,
}

impl DatastoreKind {
    pub const ALL: &'static [(&'static str, DatastoreKind)] = &[
        ("rabbitmq", DatastoreKind::Rabbitmq),
        ("postgres", DatastoreKind::Postgres),
        ("redis", DatastoreKind::Redis),
        ("s3", DatastoreKind::S3),
    ];

    pub fn name(self) -> &'static str {
        match self {
            DatastoreKind::Rabbitmq => "rabbitmq",
            DatastoreKind::Postgres => "postgres",
            DatastoreKind::Redis => "redis",
            DatastoreKind::S3 => "s3",
        }
    }

    /// The port the provisioning talks to, unless the spec names one: RabbitMQ's management
    /// API, PostgreSQL's own.
    pub fn default_admin_port(self) -> u16 {
        match self {
            DatastoreKind::Rabbitmq => 15672,
            DatastoreKind::Postgres => 5432,
            DatastoreKind::Redis => 6379,
            // Its endpoint's.
            DatastoreKind::S3 => 443,
        }
    }
}

/// TLS to a PostgreSQL server, as libpq's `sslmode` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum SslMode {
    /// Plain TCP (a server on the same host or a private network).
    Disable,
    /// Encrypted, the server's certificate not checked (libpq's `require`; what DigitalOcean's
    /// connection strings use).
    #[default]
    Require,
}

impl SslMode {
    pub const ALL: &'static [(&'static str, SslMode)] =
        &[("disable", SslMode::Disable), ("require", SslMode::Require)];
}

/// Whose keys an S3 store's consumers use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum S3Keys {
    /// The store's keys are made in its console (DigitalOcean Spaces): consumers mount the
    /// external's key.
    #[default]
    Shared,
    /// `up` makes each consumer its own user and key through the store's IAM API, limited to
    /// its buckets (SeaweedFS, MinIO).
    PerService,
}

impl S3Keys {
    pub const ALL: &'static [(&'static str, S3Keys)] = &[
        ("shared", S3Keys::Shared),
        ("per-service", S3Keys::PerService),
    ];
}

/// What an S3 consumer may do in a bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum BucketAccess {
    Read,
    Readwrite,
}

impl BucketAccess {
    pub const ALL: &'static [(&'static str, BucketAccess)] = &[
        ("read", BucketAccess::Read),
        ("readwrite", BucketAccess::Readwrite),
    ];

    pub fn name(self) -> &'static str {
        match self {
            BucketAccess::Read => "read",
            BucketAccess::Readwrite => "readwrite",
        }
    }
}

/// A PostgreSQL consumer's privileges in its database.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Privileges {
    /// It owns the database (`up` creates it): creates its tables, migrates them.
    #[default]
    Owner,
    /// Reads and writes the tables the owner makes, creates nothing.
    Readwrite,
    /// Reads them.
    Read,
}

impl Privileges {
    pub const ALL: &'static [(&'static str, Privileges)] = &[
        ("owner", Privileges::Owner),
        ("readwrite", Privileges::Readwrite),
        ("read", Privileges::Read),
    ];

    pub fn name(self) -> &'static str {
        match self {
            Privileges::Owner => "owner",
            Privileges::Readwrite => "readwrite",
            Privileges::Read => "read",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Datastore {
    pub kind: DatastoreKind,
    pub admin_user: String,
    /// The secret with the administrator's password (mounted by a datastore service; an
    /// external's comes from the source of truth).
    pub admin_secret: String,
    pub admin_port: u16,
    /// PostgreSQL: the database the administrator connects to (`postgres`; DigitalOcean's is
    /// `defaultdb`).
    pub admin_database: String,
    /// PostgreSQL: TLS to the server.
    pub sslmode: SslMode,
    /// S3: the secret with the administrator's access key id (`admin_secret` holds its secret
    /// key); empty for the other kinds.
    pub admin_key_secret: String,
    /// S3: `http(s)://host[:port]`, the signing region, the buckets `up` creates and whose keys
    /// the consumers use.
    pub endpoint: String,
    pub region: String,
    pub buckets: Vec<String>,
    pub keys: S3Keys,
}

/// A consumer's own login in a datastore it uses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Access {
    /// The datastore service.
    pub on: String,
    pub kind: DatastoreKind,
    pub user: String,
    /// The generated secret with its password ([`crate::names::access_secret`]); the service
    /// mounts it at `password_file`.
    pub secret: String,
    pub password_file: String,
    /// RabbitMQ: the vhost and the permissions' patterns in it.
    pub vhost: String,
    pub configure: String,
    pub write: String,
    pub read: String,
    /// PostgreSQL: the database and what the login may do there.
    pub database: String,
    pub privileges: Privileges,
    /// Redis: the key and Pub/Sub channel patterns of its ACL user.
    pub keys: Vec<String>,
    pub channels: Vec<String>,
    /// S3: its buckets, and the secret with its access key id mounted at `key_file` (`secret`
    /// holds the secret key, mounted at `password_file`). With shared keys both are the
    /// external's administrator's secrets.
    pub buckets: Vec<(String, BucketAccess)>,
    pub key_secret: String,
    pub key_file: String,
    /// PostgreSQL, RabbitMQ: the second login ([`crate::names::alternate_login`]) when the
    /// consumer takes its user name from `{access.<on>.user}` in its `env`: the password's odd
    /// versions are `user`'s, its even ones the alternate's, so a rotation never changes the
    /// password the running task logs in with.
    pub alternate: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Route {
    /// Where the route is written in the spec.
    #[serde(skip)]
    pub at: crate::diag::Pos,
    /// Unique router name (Traefik label key).
    pub router: String,
    /// Host names and IPs this route answers on, in rule order.
    pub hosts: Vec<String>,
    pub path: Option<String>,
    pub port: Option<u16>,
    /// The Traefik service this route forwards to instead of a port of its own: `api@internal`
    /// (the dashboard), or the router of another service's route that the spec named as
    /// `internal: <service>` (the Traefik service that route's `port` defines).
    pub internal: Option<String>,
    pub middlewares: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Port {
    pub target: u16,
    pub published: u16,
    pub protocol: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Health {
    pub cmd: Vec<String>,
    pub interval_ns: u64,
    pub timeout_ns: u64,
    pub retries: u64,
    pub start_period_ns: u64,
}

#[derive(Debug, Clone, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Volume {
    Named {
        name: String,
        target: String,
        read_only: bool,
        /// Its files are data: saved by `backup` (a tar of the volume), put back by `restore`.
        backup: bool,
    },
    Bind {
        source: String,
        target: String,
        read_only: bool,
    },
}

#[derive(Debug, Clone, Serialize)]
pub struct ConfigFile {
    /// The file as the spec names it (relative to the spec).
    pub file: String,
    pub path: PathBuf,
    pub target: String,
    pub mode: u32,
    /// The file's bytes, read at load time so that everything after loading is pure.
    #[serde(skip)]
    pub content: Vec<u8>,
}

#[derive(Debug, Clone, Serialize)]
pub struct SecretMount {
    pub name: String,
    pub target: String,
    /// The file's owner and mode in the container (default root, 0400).
    pub uid: u32,
    pub gid: u32,
    pub mode: u32,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Resources {
    pub nano_cpus: Option<i64>,
    pub memory_bytes: Option<i64>,
    pub reserve_nano_cpus: Option<i64>,
    pub reserve_memory_bytes: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Logging {
    pub driver: String,
    pub options: BTreeMap<String, String>,
}

impl Default for Logging {
    /// json-file, 5 MB × 5 files, compressed: the original's hard-won rotation.
    fn default() -> Self {
        Logging {
            driver: "json-file".into(),
            options: [("max-size", "5m"), ("max-file", "5"), ("compress", "true")]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct External {
    pub name: String,
    pub kind: String,
    pub host: Option<String>,
    pub port: Option<u64>,
    pub endpoint: Option<String>,
    /// `up` provisions its consumers' logins in it (a managed PostgreSQL) as this administrator.
    pub datastore: Option<Datastore>,
}

impl External {
    /// Docker Desktop's name for the host; on Linux engines a task resolves it only with the
    /// host entry `host-gateway` (docker0's address), which `up` adds to what uses it.
    pub const HOST_GATEWAY_NAME: &'static str = "host.docker.internal";

    /// Whether tasks reach it on the Docker host itself.
    pub fn on_docker_host(&self) -> bool {
        self.host.as_deref() == Some(Self::HOST_GATEWAY_NAME)
            || self.endpoint.as_deref().and_then(crate::values::url_host)
                == Some(Self::HOST_GATEWAY_NAME)
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Secret {
    pub name: String,
    pub source: SecretSource,
    pub key: String,
    /// Length of generated values.
    pub length: usize,
    /// The shortest value accepted from the source (0: any non-empty one).
    pub min_length: usize,
    /// Characters of generated values.
    pub alphabet: Alphabet,
    /// A regular expression the whole value must match (validated: it compiles).
    pub pattern: Option<String>,
    /// The spec's `vault_path` (`mount/path`), when it overrides the convention.
    pub vault_path: Option<String>,
    /// The spec's `vault_key`, when it overrides `value`.
    pub vault_key: Option<String>,
}

impl Secret {
    /// Where Vault keeps it in `namespace` ([`crate::names::secret_vault_path`]).
    pub fn vault_location(&self, namespace: &str) -> crate::names::VaultPath {
        crate::names::secret_vault_path(
            namespace,
            &self.name,
            self.vault_path.as_deref(),
            self.vault_key.as_deref(),
        )
    }
}

/// The characters a generated secret is made of: never a line break or padding, so a value
/// can never arrive wrapped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Alphabet {
    #[default]
    Alphanumeric,
    Hex,
    Base64url,
}

impl Alphabet {
    pub fn chars(self) -> &'static [u8] {
        match self {
            Alphabet::Alphanumeric => {
                b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
            }
            Alphabet::Hex => b"0123456789abcdef",
            Alphabet::Base64url => {
                b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
            }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SecretSource {
    Doppler,
    Generate,
    Manual,
    /// Made from the operators' keyring by `vault init` / `up` (the unseal agent's material).
    Vault,
    /// A service's periodic Vault token, issued by `up` (services with `vault` paths).
    #[serde(rename = "vault-token")]
    VaultToken,
    /// The fingerprints' key, made once in Vault by `up` (mounted by a service that reports
    /// its secrets' fingerprints).
    #[serde(rename = "fingerprint-key")]
    FingerprintKey,
}

#[derive(Debug, Clone, Serialize)]
pub struct Middleware {
    pub name: String,
    pub service: Option<String>,
    pub kind: MiddlewareKind,
}

#[derive(Debug, Clone, Serialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum MiddlewareKind {
    ForwardAuth {
        address: String,
        trust_forward_header: bool,
        response_headers: Vec<String>,
    },
    StripPrefix {
        prefixes: Vec<String>,
    },
    RedirectHttps,
}

impl Platform {
    pub fn services(&self) -> impl Iterator<Item = &Service> {
        self.layers.iter().flat_map(|l| l.services.iter())
    }

    pub fn service(&self, name: &str) -> Option<&Service> {
        self.services().find(|s| s.name == name)
    }

    pub fn layer_index(&self, name: &str) -> Option<usize> {
        self.layers.iter().position(|l| l.name == name)
    }

    pub fn edge(&self) -> Option<&Service> {
        self.services().find(|s| s.role == Some(Role::Edge))
    }

    pub fn unseal_agent(&self) -> Option<&Service> {
        self.services().find(|s| s.role == Some(Role::UnsealAgent))
    }

    /// Whether the backups hold a Vault token of their own (`names::BACKUP_TOKEN_HOLDER`): the
    /// environment is backed up, with Vault and an unseal agent to renew the token.
    pub fn backups_hold_a_vault_token(&self) -> bool {
        self.vault.is_some() && self.environment.backup.is_some() && self.unseal_agent().is_some()
    }

    pub fn docker_api_proxy(&self) -> Option<&Service> {
        self.services()
            .find(|s| s.role == Some(Role::DockerApiProxy))
    }
}
