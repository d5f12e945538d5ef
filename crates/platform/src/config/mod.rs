//! Typed configuration, validated before any port is bound.
//!
//! [`settings`] declares every setting once (variable, flag, default, parser,
//! help); [`ServiceConfig`] is what a service runs on, built from them by
//! [`ServiceSettings::into_config`]; [`vars`] reads declarations from a map
//! of variables (tests) and names the variable behind any refused value. A
//! service's own settings (orders' payment window, inventory's batch size)
//! are declared in its crate, as an [`OwnSettings`].

mod settings;
mod vars;

use std::{
    collections::HashMap,
    fmt,
    net::SocketAddr,
    path::{Path, PathBuf},
    str::FromStr,
    time::Duration,
};

pub use settings::{
    ChaosSettings, DataDir, DatabaseSettings, KeySettings, LimitSettings, LogConfig, MetricsAddr, ServiceSettings,
    TlsSettings, UpstreamSettings,
};
use url::Url;
pub use vars::{Declared, duration, duration_at_least, refusal, variables_table};

use crate::{
    auth::{keys::KeyStore, rate::RateConfig},
    time::SharedClock,
};

/// What a service declares for itself beyond [`ServiceSettings`]: clap
/// declarations with their own variables, and a check against the common
/// settings (`caravan serve <service> --help` lists both).
pub trait OwnSettings: Declared + Clone + fmt::Debug + Send + Sync + 'static {
    /// Refuses values that do not fit the common settings, naming the
    /// variable.
    fn check(&self, _common: &ServiceConfig) -> Result<(), ConfigError> {
        Ok(())
    }
}

/// A service that declares nothing of its own.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct NoSettings {}

impl OwnSettings for NoSettings {}

/// The four services of caravan.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ServiceKind {
    /// Countries and products.
    Catalog,
    /// Campaigns, channels, hosts, shows.
    Scheduling,
    /// Warehouses, stock, allocations, reservations.
    Inventory,
    /// Orders and sales reports.
    Orders,
}

impl ServiceKind {
    /// All four, in the order `caravan up` starts them.
    pub const ALL: [ServiceKind; 4] =
        [ServiceKind::Catalog, ServiceKind::Scheduling, ServiceKind::Inventory, ServiceKind::Orders];

    /// Short lower-case name: `catalog`, `scheduling`, `inventory`, `orders`.
    pub fn as_str(self) -> &'static str {
        match self {
            ServiceKind::Catalog => "catalog",
            ServiceKind::Scheduling => "scheduling",
            ServiceKind::Inventory => "inventory",
            ServiceKind::Orders => "orders",
        }
    }

    /// The port `caravan up` and the defaults use.
    pub fn default_port(self) -> u16 {
        match self {
            ServiceKind::Catalog => 50051,
            ServiceKind::Scheduling => 50052,
            ServiceKind::Inventory => 50053,
            ServiceKind::Orders => 50054,
        }
    }

    /// The services this one calls (the call graph of ARCHITECTURE.md; no cycles).
    pub fn upstreams(self) -> &'static [ServiceKind] {
        match self {
            ServiceKind::Catalog | ServiceKind::Inventory => &[],
            ServiceKind::Scheduling => &[ServiceKind::Catalog, ServiceKind::Inventory],
            ServiceKind::Orders => &[ServiceKind::Catalog, ServiceKind::Scheduling, ServiceKind::Inventory],
        }
    }

    /// Name of the variable holding this service's address for its callers,
    /// e.g. `CARAVAN_CATALOG_URL`.
    pub fn url_variable(self) -> String {
        format!("CARAVAN_{}_URL", self.as_str().to_ascii_uppercase())
    }
}

impl fmt::Display for ServiceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ServiceKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ServiceKind::ALL
            .into_iter()
            .find(|kind| kind.as_str() == s)
            .ok_or_else(|| format!("unknown service `{s}` (expected catalog, scheduling, inventory or orders)"))
    }
}

/// What to do with migrations at start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum MigrateMode {
    /// Apply pending migrations (development, `caravan up`).
    Apply,
    /// Only check: a replica whose schema is behind stays NOT_SERVING instead
    /// of racing other replicas to migrate (production; a Job applies).
    Verify,
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable, coloured when the output is a terminal.
    Pretty,
    /// One JSON object per line, for log collectors.
    Json,
}

/// A value that must never be printed: `Debug` shows `[redacted]`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret<T>(T);

impl<T> Secret<T> {
    /// Wraps a secret value.
    pub fn new(value: T) -> Self {
        Secret(value)
    }

    /// The secret itself; call only where it is used, never to log it.
    pub fn expose(&self) -> &T {
        &self.0
    }
}

impl<T> fmt::Debug for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// Database settings.
#[derive(Debug, Clone)]
pub struct DatabaseConfig {
    /// `sqlite://PATH` or `postgres://…`; secret because it may hold a password.
    pub url: Secret<String>,
    /// Pool size (PostgreSQL). SQLite always uses one connection: one writer.
    pub max_connections: u32,
    /// How long a request waits for a pooled connection before failing.
    pub acquire_timeout: Duration,
    /// PostgreSQL `statement_timeout`: no statement runs longer.
    pub statement_timeout: Duration,
    /// SQLite `busy_timeout`: how long to wait on a lock held by another process.
    pub busy_timeout: Duration,
    /// A pooled connection unused this long is closed (PostgreSQL), so a
    /// replica gives back what a burst made it open.
    pub idle_timeout: Duration,
    /// What stands between the service and PostgreSQL.
    pub pooler: Pooler,
}

/// What stands between a service and its PostgreSQL server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Pooler {
    /// Nothing: the service's connections are server sessions.
    None,
    /// A pooler in transaction mode (PgBouncer `pool_mode = transaction`):
    /// a server connection belongs to a client for one transaction only. See
    /// [`crate::db::Db`] for what caravan does about it, and the runbook for
    /// what the pooler must be set to.
    Transaction,
}

impl DatabaseConfig {
    /// Settings with the defaults for `url`.
    pub fn new(url: impl Into<String>) -> Self {
        DatabaseConfig { url: Secret::new(url.into()), ..DatabaseSettings::declared_defaults().config() }
    }

    /// A SQLite database in a file at `path` (created if missing).
    pub fn sqlite_file(path: &Path) -> Self {
        DatabaseConfig::new(format!("sqlite://{}?mode=rwc", path.display()))
    }

    /// Whether the URL names a PostgreSQL database.
    pub fn is_postgres(&self) -> bool {
        let url = self.url.expose();
        url.starts_with("postgres://") || url.starts_with("postgresql://")
    }
}

/// Everything one service process needs, validated.
#[derive(Debug, Clone)]
pub struct ServiceConfig {
    /// Which service this is.
    pub service: ServiceKind,
    /// Address the gRPC server binds; port 0 picks a free port (tests).
    pub listen_addr: SocketAddr,
    /// Its own database.
    pub database: DatabaseConfig,
    /// Apply or only verify migrations at start.
    pub migrate: MigrateMode,
    /// How long in-flight calls may run after shutdown begins.
    pub shutdown_grace: Duration,
    /// How long calls are still accepted after shutdown begins, health
    /// NOT_SERVING meanwhile (part of the grace).
    pub drain_delay: Duration,
    /// Largest request message accepted, in bytes.
    pub max_request_bytes: usize,
    /// How often health re-checks the database.
    pub health_check_interval: Duration,
    /// Addresses of the services this one calls (exactly its upstreams).
    pub upstreams: HashMap<ServiceKind, Url>,
    /// Timeout for establishing a connection to an upstream.
    pub connect_timeout: Duration,
    /// Calls in flight across all connections beyond which new calls are
    /// refused with `RESOURCE_EXHAUSTED` (0: no limit).
    pub max_concurrent_calls: usize,
    /// Who may call, and how that is checked.
    pub auth: Authentication,
    /// This service's own key, sent on calls to other services (from
    /// `CARAVAN_SERVICE_KEY_FILE`, re-read like the keys file).
    pub service_key: Option<crate::auth::keys::ServiceKey>,
    /// Per-principal request rate limits.
    pub rate: RateConfig,
    /// TLS for the service port (off when `None`).
    pub tls: Option<ServerTls>,
    /// With TLS on: a plaintext port serving only health, for Kubernetes'
    /// native `grpc:` probes, which cannot speak TLS.
    pub health_addr: Option<SocketAddr>,
    /// TLS towards upstreams (for `https://` upstream URLs).
    pub upstream_tls: Option<ClientTls>,
    /// Where the service reads the time: the system clock, or a
    /// [`crate::time::ManualClock`] that tests move instead of sleeping.
    pub clock: SharedClock,
    /// The longest a saga call (PlaceOrder) may run. Work a crash or a
    /// timeout left unfinished is re-driven after twice this, and claims on
    /// request ids and background items are leased for twice this.
    pub call_limit: Duration,
    /// How often an upstream addressed by name (a headless Service) is
    /// resolved again, so calls reach new replicas and leave gone ones.
    pub resolve_interval: Duration,
    /// The fault-injection drill file, watched while serving; `None` (the
    /// default) runs no drill ever (see [`crate::chaos`]).
    pub chaos_file: Option<PathBuf>,
}

/// A server's certificate and key, and optionally the CA its clients'
/// certificates must chain to (mTLS).
#[derive(Debug, Clone)]
pub struct ServerTls {
    /// PEM certificate chain.
    pub cert_pem: String,
    /// PEM private key.
    pub key_pem: Secret<String>,
    /// PEM CA certificates; when set, clients must present a certificate.
    pub client_ca_pem: Option<String>,
    /// The certificate's and the key's files, re-read while serving (new
    /// connections get a rotated certificate); `None` for fixed PEM.
    pub files: Option<(PathBuf, PathBuf)>,
}

/// What a client trusts, and optionally who it is (mTLS).
#[derive(Debug, Clone)]
pub struct ClientTls {
    /// PEM CA certificates that sign the servers' certificates.
    pub ca_pem: String,
    /// PEM certificate and key to present, for servers that require one.
    pub identity: Option<(String, Secret<String>)>,
}

/// How callers are authenticated.
#[derive(Debug, Clone)]
pub enum Authentication {
    /// No keys configured: the server refuses to start (a safety net; the
    /// binary asks for `CARAVAN_KEYS_FILE` or `--insecure-no-auth`).
    Missing,
    /// API keys; `file`, when set, is re-read every `reload` to pick up
    /// added and revoked keys.
    Keys {
        /// The keys accepted now.
        store: KeyStore,
        /// Where they come from.
        file: Option<PathBuf>,
        /// How often the file is checked for changes.
        reload: Duration,
    },
    /// Every caller is an operator. Development only, and loudly logged.
    InsecureNoAuth,
}

impl ServiceConfig {
    /// Defaults for local development: the declared defaults (see
    /// [`ServiceSettings`]), listening on the service's default port on
    /// loopback, SQLite under `data_dir`, upstreams on loopback default ports.
    pub fn local(service: ServiceKind, data_dir: &Path) -> Self {
        let settings = ServiceSettings::declared_defaults();
        let mut config = match settings.into_config(service) {
            Ok(config) => config,
            // The defaults hold no file to read and pass every check
            // (`settings::tests::the_declared_defaults_are_valid`).
            Err(e) => unreachable!("caravan's declared defaults are invalid: {e}"),
        };
        config.listen_addr = SocketAddr::from(([127, 0, 0, 1], service.default_port()));
        config.database.url = DatabaseConfig::sqlite_file(&data_dir.join(format!("{service}.db"))).url;
        config
    }

    /// The address of an upstream service.
    ///
    /// # Panics
    /// Never for a service listed in [`ServiceKind::upstreams`]: the
    /// constructors fill every one of them.
    pub fn upstream(&self, service: ServiceKind) -> &Url {
        match self.upstreams.get(&service) {
            Some(url) => url,
            None => panic!("{} does not call {service}: not in the call graph", self.service),
        }
    }
}

/// Default log filter: info, with sqlx's per-query INFO lines silenced.
pub const DEFAULT_LOG_FILTER: &str = "info,sqlx=warn,sea_orm=warn,sea_orm_migration=warn,h2=warn,tower=warn";

/// `http://127.0.0.1:PORT`.
pub fn loopback_url(port: u16) -> Url {
    // A literal built from a u16 always parses.
    match Url::parse(&format!("http://127.0.0.1:{port}")) {
        Ok(url) => url,
        Err(e) => unreachable!("loopback URL: {e}"),
    }
}

/// A configuration value that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{variable}: {message}")]
pub struct ConfigError {
    /// The variable (or flag) at fault.
    pub variable: String,
    /// What is wrong with it.
    pub message: String,
}

impl ConfigError {
    /// An error about `variable`.
    pub fn new(variable: &str, message: impl Into<String>) -> Self {
        ConfigError { variable: variable.to_owned(), message: message.into() }
    }
}

/// Exit code for bad configuration (sysexits `EX_USAGE`).
pub const EXIT_CONFIG: i32 = 64;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_names_round_trip() {
        for kind in ServiceKind::ALL {
            assert_eq!(kind.as_str().parse::<ServiceKind>(), Ok(kind));
        }
        assert!("payments".parse::<ServiceKind>().is_err());
    }
}
