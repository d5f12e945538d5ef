//! Typed configuration from environment variables, validated before any port
//! is bound.
//!
//! Every variable is read from an explicit map (the process environment in
//! `main`, a literal map in tests), never from a global: tests must not mutate
//! the process environment.

use std::{
    collections::HashMap,
    fmt,
    net::SocketAddr,
    path::{Path, PathBuf},
    str::FromStr,
    sync::Arc,
    time::Duration,
};

use url::Url;

use crate::{
    auth::{keys::KeyStore, rate::RateConfig},
    time::{SharedClock, SystemClock},
};

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
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MigrateMode {
    /// Apply pending migrations (development, `caravan up`).
    Apply,
    /// Only check: a replica whose schema is behind stays NOT_SERVING instead
    /// of racing other replicas to migrate (production; a Job applies).
    Verify,
}

impl FromStr for MigrateMode {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "apply" => Ok(MigrateMode::Apply),
            "verify" => Ok(MigrateMode::Verify),
            other => Err(format!("`{other}` is not one of apply, verify")),
        }
    }
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable, coloured when the output is a terminal.
    Pretty,
    /// One JSON object per line, for log collectors.
    Json,
}

impl FromStr for LogFormat {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "pretty" => Ok(LogFormat::Pretty),
            "json" => Ok(LogFormat::Json),
            other => Err(format!("`{other}` is not one of pretty, json")),
        }
    }
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
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pooler {
    /// Nothing: the service's connections are server sessions.
    None,
    /// A pooler in transaction mode (PgBouncer `pool_mode = transaction`):
    /// a server connection belongs to a client for one transaction only. See
    /// [`crate::db::Db`] for what caravan does about it, and the runbook for
    /// what the pooler must be set to.
    Transaction,
}

impl FromStr for Pooler {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "none" => Ok(Pooler::None),
            "transaction" => Ok(Pooler::Transaction),
            other => Err(format!("`{other}` is not one of none, transaction")),
        }
    }
}

impl DatabaseConfig {
    /// Settings with the defaults for `url`.
    pub fn new(url: impl Into<String>) -> Self {
        DatabaseConfig {
            url: Secret::new(url.into()),
            max_connections: 10,
            acquire_timeout: Duration::from_secs(5),
            statement_timeout: Duration::from_secs(10),
            busy_timeout: Duration::from_secs(5),
            idle_timeout: Duration::from_secs(60),
            pooler: Pooler::None,
        }
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

/// Calls a service serves at once by default.
pub const DEFAULT_MAX_CONCURRENT_CALLS: usize = 1024;

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
    /// refused with `RESOURCE_EXHAUSTED` (0: no limit); see
    /// [`DEFAULT_MAX_CONCURRENT_CALLS`].
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
    /// Orders: how long a buyer has to pay an order.
    pub payment_window: Duration,
    /// Orders: how long inventory holds an order's stock; longer than the
    /// payment window plus the call limit, so every payment made in time
    /// finds its hold.
    pub reservation_ttl: Duration,
    /// A named step at which the process aborts (crash drills and tests;
    /// see [`crate::failpoint`]).
    pub failpoint: Option<String>,
    /// How often an upstream addressed by name (a headless Service) is
    /// resolved again, so calls reach new replicas and leave gone ones.
    pub resolve_interval: Duration,
    /// Inventory: most one-line reservations of one product committed in
    /// one transaction (1: each alone).
    pub reserve_batch_max: usize,
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
    /// Defaults for local development: listen on the service's default port on
    /// loopback, SQLite under `data_dir`, upstreams on loopback default ports.
    pub fn local(service: ServiceKind, data_dir: &Path) -> Self {
        let upstreams = service.upstreams().iter().map(|&up| (up, loopback_url(up.default_port()))).collect();
        ServiceConfig {
            service,
            listen_addr: SocketAddr::from(([127, 0, 0, 1], service.default_port())),
            database: DatabaseConfig::sqlite_file(&data_dir.join(format!("{service}.db"))),
            migrate: MigrateMode::Apply,
            shutdown_grace: Duration::from_secs(20),
            drain_delay: Duration::from_secs(1),
            max_request_bytes: 4 * 1024 * 1024,
            health_check_interval: Duration::from_secs(2),
            upstreams,
            connect_timeout: Duration::from_secs(2),
            max_concurrent_calls: DEFAULT_MAX_CONCURRENT_CALLS,
            auth: Authentication::Missing,
            service_key: None,
            rate: RateConfig::default(),
            tls: None,
            health_addr: None,
            upstream_tls: None,
            clock: Arc::new(SystemClock),
            call_limit: Duration::from_secs(10),
            payment_window: Duration::from_secs(10 * 60),
            reservation_ttl: Duration::from_secs(15 * 60),
            failpoint: None,
            resolve_interval: Duration::from_secs(5),
            reserve_batch_max: 128,
        }
    }

    /// Reads the configuration of `service` from environment variables
    /// (see [`VARIABLES`]). Any invalid value is an error naming the variable.
    pub fn from_env(service: ServiceKind, env: &HashMap<String, String>) -> Result<Self, ConfigError> {
        let data_dir: String = parse_or(env, "CARAVAN_DATA_DIR", "./data".to_owned())?;
        let mut config = ServiceConfig::local(service, Path::new(&data_dir));
        config.listen_addr =
            parse_or(env, "CARAVAN_LISTEN_ADDR", SocketAddr::from(([0, 0, 0, 0], service.default_port())))?;
        if let Some(url) = get(env, "CARAVAN_DATABASE_URL") {
            if !(url.starts_with("sqlite:") || url.starts_with("postgres://") || url.starts_with("postgresql://")) {
                return Err(ConfigError::new(
                    "CARAVAN_DATABASE_URL",
                    "must start with sqlite:, postgres:// or postgresql://",
                ));
            }
            config.database.url = Secret::new(url.to_owned());
        }
        config.database.max_connections = parse_or(env, "CARAVAN_DB_MAX_CONNECTIONS", 10u32)?;
        if config.database.max_connections == 0 {
            return Err(ConfigError::new("CARAVAN_DB_MAX_CONNECTIONS", "must be at least 1"));
        }
        config.database.acquire_timeout =
            duration_or(env, "CARAVAN_DB_ACQUIRE_TIMEOUT", config.database.acquire_timeout)?;
        config.database.statement_timeout =
            duration_or(env, "CARAVAN_DB_STATEMENT_TIMEOUT", config.database.statement_timeout)?;
        config.database.busy_timeout = duration_or(env, "CARAVAN_DB_BUSY_TIMEOUT", config.database.busy_timeout)?;
        config.database.idle_timeout = duration_or(env, "CARAVAN_DB_IDLE_TIMEOUT", config.database.idle_timeout)?;
        if config.database.idle_timeout < Duration::from_secs(1) {
            return Err(ConfigError::new("CARAVAN_DB_IDLE_TIMEOUT", "must be at least 1s"));
        }
        config.database.pooler = parse_or(env, "CARAVAN_DB_POOLER", Pooler::None)?;
        if config.database.pooler == Pooler::Transaction {
            if !config.database.is_postgres() {
                return Err(ConfigError::new("CARAVAN_DB_POOLER", "a pooler stands only before PostgreSQL"));
            }
            // PgBouncer 1.18 refuses the `options` startup parameter that
            // would carry it: the pooler's `connect_query` sets it instead.
            if get(env, "CARAVAN_DB_STATEMENT_TIMEOUT").is_some() {
                return Err(ConfigError::new(
                    "CARAVAN_DB_STATEMENT_TIMEOUT",
                    "cannot be sent through a transaction pooler: set statement_timeout in the pooler's connect_query",
                ));
            }
        }
        config.migrate = parse_or(env, "CARAVAN_MIGRATE", MigrateMode::Apply)?;
        config.shutdown_grace = duration_or(env, "CARAVAN_SHUTDOWN_GRACE", config.shutdown_grace)?;
        config.drain_delay = duration_or(env, "CARAVAN_DRAIN_DELAY", config.drain_delay)?;
        if config.drain_delay >= config.shutdown_grace {
            return Err(ConfigError::new("CARAVAN_DRAIN_DELAY", "must be shorter than CARAVAN_SHUTDOWN_GRACE"));
        }
        config.max_request_bytes = parse_or(env, "CARAVAN_MAX_REQUEST_BYTES", config.max_request_bytes)?;
        if config.max_request_bytes < 1024 {
            return Err(ConfigError::new("CARAVAN_MAX_REQUEST_BYTES", "must be at least 1024"));
        }
        config.health_check_interval = duration_or(env, "CARAVAN_HEALTH_CHECK_INTERVAL", config.health_check_interval)?;
        config.connect_timeout = duration_or(env, "CARAVAN_CONNECT_TIMEOUT", config.connect_timeout)?;
        config.call_limit = duration_or(env, "CARAVAN_CALL_LIMIT", config.call_limit)?;
        if config.call_limit < Duration::from_millis(100) {
            return Err(ConfigError::new("CARAVAN_CALL_LIMIT", "must be at least 100ms"));
        }
        config.payment_window = duration_or(env, "CARAVAN_PAYMENT_WINDOW", config.payment_window)?;
        config.reservation_ttl = duration_or(env, "CARAVAN_RESERVATION_TTL", config.reservation_ttl)?;
        if config.payment_window < Duration::from_secs(1) {
            return Err(ConfigError::new("CARAVAN_PAYMENT_WINDOW", "must be at least 1s"));
        }
        if config.reservation_ttl <= config.payment_window + config.call_limit {
            return Err(ConfigError::new(
                "CARAVAN_RESERVATION_TTL",
                format!(
                    "must be longer than CARAVAN_PAYMENT_WINDOW plus CARAVAN_CALL_LIMIT ({}), so a payment made in \
                     time finds its hold",
                    humantime::format_duration(config.payment_window + config.call_limit)
                ),
            ));
        }
        config.resolve_interval = duration_or(env, "CARAVAN_RESOLVE_INTERVAL", config.resolve_interval)?;
        if config.resolve_interval < Duration::from_millis(100) {
            return Err(ConfigError::new("CARAVAN_RESOLVE_INTERVAL", "must be at least 100ms"));
        }
        config.reserve_batch_max = parse_or(env, "CARAVAN_RESERVE_BATCH", config.reserve_batch_max)?;
        if !(1..=1000).contains(&config.reserve_batch_max) {
            return Err(ConfigError::new("CARAVAN_RESERVE_BATCH", "must be 1 (no batching) to 1000"));
        }
        config.failpoint = get(env, "CARAVAN_FAILPOINT").map(str::to_owned);
        if let Some(name) = &config.failpoint
            && !crate::failpoint::is_known(name)
        {
            return Err(ConfigError::new(
                "CARAVAN_FAILPOINT",
                format!("`{name}` is not a failpoint (known: {})", crate::failpoint::KNOWN.join(", ")),
            ));
        }
        config.max_concurrent_calls = parse_or(env, "CARAVAN_MAX_CONCURRENT_CALLS", config.max_concurrent_calls)?;
        config.rate = RateConfig {
            per_second: parse_or(env, "CARAVAN_RATE_LIMIT", config.rate.per_second)?,
            burst: parse_or(env, "CARAVAN_RATE_BURST", config.rate.burst)?,
        };
        if let Some(path) = get(env, "CARAVAN_KEYS_FILE") {
            let file = PathBuf::from(path);
            let store = KeyStore::load(&file).map_err(|e| ConfigError::new("CARAVAN_KEYS_FILE", e))?;
            let reload = duration_or(env, "CARAVAN_KEYS_RELOAD", Duration::from_secs(10))?;
            config.auth = Authentication::Keys { store, file: Some(file), reload };
        }
        config.service_key = match (get(env, "CARAVAN_SERVICE_KEY"), get(env, "CARAVAN_SERVICE_KEY_FILE")) {
            (Some(_), Some(_)) => {
                return Err(ConfigError::new("CARAVAN_SERVICE_KEY", "set it or CARAVAN_SERVICE_KEY_FILE, not both"));
            }
            (Some(key), None) => Some(
                crate::auth::keys::ServiceKey::new(key.trim())
                    .map_err(|e| ConfigError::new("CARAVAN_SERVICE_KEY", e))?,
            ),
            (None, Some(path)) => Some(
                crate::auth::keys::ServiceKey::from_file(Path::new(path))
                    .map_err(|e| ConfigError::new("CARAVAN_SERVICE_KEY_FILE", e))?,
            ),
            (None, None) => None,
        };
        let pem = |var: &str| -> Result<Option<String>, ConfigError> {
            get(env, var)
                .map(|path| {
                    std::fs::read_to_string(path).map_err(|e| ConfigError::new(var, format!("cannot read {path}: {e}")))
                })
                .transpose()
        };
        config.tls = match (pem("CARAVAN_TLS_CERT")?, pem("CARAVAN_TLS_KEY")?) {
            (Some(cert_pem), Some(key_pem)) => Some(ServerTls {
                cert_pem,
                key_pem: Secret::new(key_pem),
                client_ca_pem: pem("CARAVAN_TLS_CLIENT_CA")?,
                files: get(env, "CARAVAN_TLS_CERT").zip(get(env, "CARAVAN_TLS_KEY")).map(|(c, k)| (c.into(), k.into())),
            }),
            (None, None) if get(env, "CARAVAN_TLS_CLIENT_CA").is_some() => {
                return Err(ConfigError::new("CARAVAN_TLS_CLIENT_CA", "needs CARAVAN_TLS_CERT and CARAVAN_TLS_KEY"));
            }
            (None, None) => None,
            (Some(_), None) => return Err(ConfigError::new("CARAVAN_TLS_KEY", "needed with CARAVAN_TLS_CERT")),
            (None, Some(_)) => return Err(ConfigError::new("CARAVAN_TLS_CERT", "needed with CARAVAN_TLS_KEY")),
        };
        if config.tls.is_some() {
            let default = SocketAddr::new(config.listen_addr.ip(), config.listen_addr.port().saturating_add(100));
            config.health_addr = Some(parse_or(env, "CARAVAN_HEALTH_ADDR", default)?);
        }
        config.upstream_tls = match pem("CARAVAN_UPSTREAM_CA")? {
            None => None,
            Some(ca_pem) => {
                let identity = match (pem("CARAVAN_UPSTREAM_CERT")?, pem("CARAVAN_UPSTREAM_KEY")?) {
                    (Some(cert), Some(key)) => Some((cert, Secret::new(key))),
                    (None, None) => None,
                    _ => {
                        return Err(ConfigError::new(
                            "CARAVAN_UPSTREAM_CERT",
                            "set both CARAVAN_UPSTREAM_CERT and _KEY, or neither",
                        ));
                    }
                };
                Some(ClientTls { ca_pem, identity })
            }
        };
        if config.service_key.is_none() && !service.upstreams().is_empty() && get(env, "CARAVAN_KEYS_FILE").is_some() {
            return Err(ConfigError::new(
                "CARAVAN_SERVICE_KEY_FILE",
                format!("{service} calls other services and needs its own service key"),
            ));
        }
        for &up in service.upstreams() {
            let var = up.url_variable();
            if let Some(raw) = get(env, &var) {
                let url = Url::parse(raw).map_err(|e| ConfigError::new(&var, format!("`{raw}` is not a URL: {e}")))?;
                if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
                    return Err(ConfigError::new(
                        &var,
                        format!("`{raw}` must be http://HOST:PORT or https://HOST:PORT"),
                    ));
                }
                config.upstreams.insert(up, url);
            }
        }
        Ok(config)
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

/// Where the process serves Prometheus metrics: `CARAVAN_METRICS_ADDR`
/// (default `0.0.0.0:9464`, `off` for none).
pub fn metrics_addr_from_env(env: &HashMap<String, String>) -> Result<Option<SocketAddr>, ConfigError> {
    match get(env, "CARAVAN_METRICS_ADDR") {
        Some("off") => Ok(None),
        _ => parse_or(env, "CARAVAN_METRICS_ADDR", SocketAddr::from(([0, 0, 0, 0], 9464))).map(Some),
    }
}

/// Process-wide settings: logging.
#[derive(Debug, Clone)]
pub struct LogConfig {
    /// Pretty or JSON.
    pub format: LogFormat,
    /// An `EnvFilter` directive, e.g. `info,caravan_orders=debug`.
    pub filter: String,
}

impl LogConfig {
    /// Reads `CARAVAN_LOG_FORMAT` and `CARAVAN_LOG`.
    pub fn from_env(env: &HashMap<String, String>) -> Result<Self, ConfigError> {
        Ok(LogConfig {
            format: parse_or(env, "CARAVAN_LOG_FORMAT", LogFormat::Pretty)?,
            filter: get(env, "CARAVAN_LOG").unwrap_or(DEFAULT_LOG_FILTER).to_owned(),
        })
    }
}

/// Default log filter: info, with sqlx's per-query INFO lines silenced.
pub const DEFAULT_LOG_FILTER: &str = "info,sqlx=warn,sea_orm=warn,sea_orm_migration=warn,h2=warn,tower=warn";

/// Every environment variable caravan reads, with its meaning, for `--help`.
pub const VARIABLES: &[(&str, &str)] = &[
    ("CARAVAN_LISTEN_ADDR", "address the gRPC server binds (default 0.0.0.0:<service port>)"),
    ("CARAVAN_DATA_DIR", "folder of the default SQLite files (default ./data)"),
    ("CARAVAN_DATABASE_URL", "sqlite://PATH or postgres://USER@HOST/DB (default sqlite://<data dir>/<service>.db)"),
    ("CARAVAN_DB_MAX_CONNECTIONS", "PostgreSQL pool size (default 10; SQLite always uses one writer connection)"),
    ("CARAVAN_DB_ACQUIRE_TIMEOUT", "wait for a pooled connection, e.g. 5s (default 5s)"),
    ("CARAVAN_DB_STATEMENT_TIMEOUT", "PostgreSQL statement_timeout (default 10s)"),
    ("CARAVAN_DB_BUSY_TIMEOUT", "SQLite busy_timeout (default 5s)"),
    ("CARAVAN_DB_IDLE_TIMEOUT", "close a pooled PostgreSQL connection unused this long (default 60s)"),
    (
        "CARAVAN_DB_POOLER",
        "none (default) or transaction: PostgreSQL is behind a transaction-pooling PgBouncer (see the runbook)",
    ),
    ("CARAVAN_MIGRATE", "apply (default) or verify: stay NOT_SERVING while the schema is behind"),
    ("CARAVAN_SHUTDOWN_GRACE", "how long in-flight calls may finish after SIGTERM (default 20s)"),
    (
        "CARAVAN_DRAIN_DELAY",
        "after SIGTERM, how long calls are still served while health says NOT_SERVING (default 1s; < the grace)",
    ),
    ("CARAVAN_MAX_REQUEST_BYTES", "largest accepted request message (default 4194304)"),
    ("CARAVAN_HEALTH_CHECK_INTERVAL", "how often health re-checks the database (default 2s)"),
    ("CARAVAN_CONNECT_TIMEOUT", "connect timeout to other services (default 2s)"),
    (
        "CARAVAN_CALL_LIMIT",
        "longest a saga call (PlaceOrder) runs; unfinished work is re-driven after twice this (default 10s)",
    ),
    ("CARAVAN_PAYMENT_WINDOW", "orders: how long a buyer has to pay (default 10m)"),
    (
        "CARAVAN_RESERVATION_TTL",
        "orders: how long inventory holds an order's stock; > payment window + call limit (default 15m)",
    ),
    (
        "CARAVAN_RESERVE_BATCH",
        "inventory: most one-line reservations of one product per transaction (default 128; 1: no batching)",
    ),
    ("CARAVAN_FAILPOINT", "crash drills only: abort the process at this saga step (e.g. orders.place.after_reserve)"),
    (
        "CARAVAN_MAX_CONCURRENT_CALLS",
        "calls in flight beyond which new ones get RESOURCE_EXHAUSTED (default 1024; 0: no limit)",
    ),
    (
        "CARAVAN_KEYS_FILE",
        "hashes of the accepted API keys (`caravan keys create`); required unless --insecure-no-auth",
    ),
    ("CARAVAN_KEYS_RELOAD", "how often the keys file is re-read for added and revoked keys (default 10s)"),
    ("CARAVAN_SERVICE_KEY_FILE", "file holding this service's own key, sent to the services it calls"),
    ("CARAVAN_SERVICE_KEY", "the same key directly (prefer the file: environments leak)"),
    ("CARAVAN_RATE_LIMIT", "calls per second per partner or operator, per replica (default 2000; 0: off)"),
    ("CARAVAN_RATE_BURST", "calls allowed at once above that rate (default 4000)"),
    ("CARAVAN_TLS_CERT", "PEM certificate chain: serve TLS on the service port"),
    ("CARAVAN_TLS_KEY", "PEM private key of that certificate"),
    ("CARAVAN_TLS_CLIENT_CA", "PEM CA: require client certificates signed by it (mTLS)"),
    ("CARAVAN_HEALTH_ADDR", "with TLS on, plaintext health-only address for probes (default: service port + 100)"),
    ("CARAVAN_UPSTREAM_CA", "PEM CA that signs the upstreams' certificates (for https:// upstream URLs)"),
    ("CARAVAN_UPSTREAM_CERT", "PEM certificate this service presents to upstreams that require one"),
    ("CARAVAN_UPSTREAM_KEY", "PEM private key of that certificate"),
    ("CARAVAN_METRICS_ADDR", "Prometheus /metrics address of the process (default 0.0.0.0:9464; `off` disables)"),
    ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTLP collector for traces (no export when unset; see README, Traces)"),
    ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc (default) or http/protobuf"),
    ("OTEL_EXPORTER_OTLP_CERTIFICATE", "PEM CA of an https:// collector (default: the public roots)"),
    ("OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE", "PEM client certificate for a collector that requires mTLS"),
    ("OTEL_EXPORTER_OTLP_CLIENT_KEY", "PEM private key of that certificate"),
    ("OTEL_SDK_DISABLED", "true: export no traces, whatever else is set (also OTEL_TRACES_EXPORTER=none)"),
    (
        "OTEL_*",
        "the rest as the OpenTelemetry SDK reads them: headers, timeout, compression, sampler, resource, batches",
    ),
    (
        "CARAVAN_RESOLVE_INTERVAL",
        "how often upstream host names are resolved again; calls are balanced over all their addresses (default 5s)",
    ),
    ("CARAVAN_CATALOG_URL", "catalog's address for its callers (default http://127.0.0.1:50051)"),
    ("CARAVAN_SCHEDULING_URL", "scheduling's address for its callers (default http://127.0.0.1:50052)"),
    ("CARAVAN_INVENTORY_URL", "inventory's address for its callers (default http://127.0.0.1:50053)"),
    ("CARAVAN_LOG", "log filter (default info,sqlx=warn,…)"),
    ("CARAVAN_LOG_FORMAT", "pretty (default) or json"),
];

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

fn get<'a>(env: &'a HashMap<String, String>, name: &str) -> Option<&'a str> {
    env.get(name).map(|v| v.trim()).filter(|v| !v.is_empty())
}

fn parse_or<T>(env: &HashMap<String, String>, name: &str, default: T) -> Result<T, ConfigError>
where
    T: FromStr,
    T::Err: fmt::Display,
{
    match get(env, name) {
        None => Ok(default),
        Some(raw) => raw.parse().map_err(|e| ConfigError::new(name, format!("`{raw}` is invalid: {e}"))),
    }
}

fn duration_or(env: &HashMap<String, String>, name: &str, default: Duration) -> Result<Duration, ConfigError> {
    match get(env, name) {
        None => Ok(default),
        Some(raw) => humantime::parse_duration(raw)
            .map_err(|e| ConfigError::new(name, format!("`{raw}` is not a duration like 5s or 250ms: {e}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    #[test]
    fn defaults_need_no_variables() {
        let config = ServiceConfig::from_env(ServiceKind::Orders, &env(&[])).unwrap();
        assert_eq!(config.listen_addr.port(), 50054);
        assert_eq!(config.migrate, MigrateMode::Apply);
        assert!(config.database.url.expose().starts_with("sqlite://./data/orders.db"));
        assert_eq!(config.upstreams.len(), 3);
        assert_eq!(config.upstream(ServiceKind::Inventory).as_str(), "http://127.0.0.1:50053/");
    }

    #[test]
    fn every_variable_is_read() {
        let config = ServiceConfig::from_env(
            ServiceKind::Scheduling,
            &env(&[
                ("CARAVAN_LISTEN_ADDR", "127.0.0.1:7000"),
                ("CARAVAN_DATABASE_URL", "postgres://u:pw@db/scheduling"),
                ("CARAVAN_DB_MAX_CONNECTIONS", "3"),
                ("CARAVAN_DB_STATEMENT_TIMEOUT", "1500ms"),
                ("CARAVAN_MIGRATE", "verify"),
                ("CARAVAN_SHUTDOWN_GRACE", "3s"),
                ("CARAVAN_CATALOG_URL", "http://catalog:50051"),
            ]),
        )
        .unwrap();
        assert_eq!(config.listen_addr.port(), 7000);
        assert!(config.database.is_postgres());
        assert_eq!(config.database.max_connections, 3);
        assert_eq!(config.database.statement_timeout, Duration::from_millis(1500));
        assert_eq!(config.migrate, MigrateMode::Verify);
        assert_eq!(config.shutdown_grace, Duration::from_secs(3));
        assert_eq!(config.upstream(ServiceKind::Catalog).host_str(), Some("catalog"));
    }

    #[test]
    fn bad_values_name_their_variable() {
        let check = |var: &str, value: &str| {
            let err = ServiceConfig::from_env(ServiceKind::Orders, &env(&[(var, value)])).unwrap_err();
            assert_eq!(err.variable, var, "{err}");
            assert!(err.to_string().starts_with(var), "{err}");
        };
        check("CARAVAN_LISTEN_ADDR", "localhost");
        check("CARAVAN_DATABASE_URL", "mysql://x");
        check("CARAVAN_DB_MAX_CONNECTIONS", "0");
        check("CARAVAN_DB_MAX_CONNECTIONS", "many");
        check("CARAVAN_DB_ACQUIRE_TIMEOUT", "soon");
        check("CARAVAN_MIGRATE", "yes");
        check("CARAVAN_MAX_REQUEST_BYTES", "10");
        check("CARAVAN_CATALOG_URL", "catalog:50051");
        check("CARAVAN_INVENTORY_URL", "ftp://inventory");
        check("CARAVAN_CALL_LIMIT", "1ms");
        check("CARAVAN_RESERVATION_TTL", "5m");
        check("CARAVAN_FAILPOINT", "orders.nowhere");
        check("CARAVAN_DB_POOLER", "pgbouncer");
        check("CARAVAN_DB_IDLE_TIMEOUT", "a while");
        check("CARAVAN_DB_IDLE_TIMEOUT", "0s");
    }

    #[test]
    fn a_transaction_pooler_stands_before_postgresql_and_takes_the_statement_timeout() {
        let pooled = |extra: &[(&str, &str)]| {
            let mut vars = vec![
                ("CARAVAN_DATABASE_URL", "postgres://u:pw@pgbouncer:6432/orders"),
                ("CARAVAN_DB_POOLER", "transaction"),
            ];
            vars.extend_from_slice(extra);
            ServiceConfig::from_env(ServiceKind::Orders, &env(&vars))
        };
        let config = pooled(&[("CARAVAN_DB_IDLE_TIMEOUT", "30s")]).unwrap();
        assert_eq!(config.database.pooler, Pooler::Transaction);
        assert_eq!(config.database.idle_timeout, Duration::from_secs(30));
        // PgBouncer refuses the startup parameter that would carry it.
        let err = pooled(&[("CARAVAN_DB_STATEMENT_TIMEOUT", "5s")]).unwrap_err();
        assert_eq!(err.variable, "CARAVAN_DB_STATEMENT_TIMEOUT", "{err}");
        assert!(err.to_string().contains("connect_query"), "{err}");
        // SQLite has no pooler.
        let err =
            ServiceConfig::from_env(ServiceKind::Orders, &env(&[("CARAVAN_DB_POOLER", "transaction")])).unwrap_err();
        assert_eq!(err.variable, "CARAVAN_DB_POOLER", "{err}");
        let direct = ServiceConfig::from_env(ServiceKind::Orders, &env(&[])).unwrap();
        assert_eq!(direct.database.pooler, Pooler::None);
    }

    #[test]
    fn secrets_do_not_print() {
        let config = ServiceConfig::from_env(
            ServiceKind::Catalog,
            &env(&[("CARAVAN_DATABASE_URL", "postgres://u:hunter2@db/catalog")]),
        )
        .unwrap();
        assert!(!format!("{config:?}").contains("hunter2"));

        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, text: &str| {
            let path = dir.path().join(name);
            std::fs::write(&path, text).unwrap();
            path.display().to_string()
        };
        let key = crate::auth::keys::generate();
        let keys = write(
            "keys.txt",
            &crate::auth::keys::KeyEntry::for_key(&key, crate::auth::Principal::operator("ops")).to_line(),
        );
        let config = ServiceConfig::from_env(
            ServiceKind::Orders,
            &env(&[
                ("CARAVAN_KEYS_FILE", &keys),
                ("CARAVAN_SERVICE_KEY", "cvn_service_secret"),
                ("CARAVAN_TLS_CERT", &write("cert.pem", "CERTIFICATE")),
                ("CARAVAN_TLS_KEY", &write("key.pem", "PRIVATE-KEY-MATERIAL")),
            ]),
        )
        .unwrap();
        let printed = format!("{config:?}");
        for secret in ["cvn_service_secret", "PRIVATE-KEY-MATERIAL", &key, &hex::encode(crate::auth::keys::hash(&key))]
        {
            assert!(!printed.contains(secret), "{secret} printed");
        }
        assert_eq!(config.health_addr.unwrap().port(), 50154, "TLS on: plaintext health next to the service port");
    }

    #[test]
    fn callers_of_other_services_need_their_own_key() {
        let dir = tempfile::tempdir().unwrap();
        let keys = dir.path().join("keys.txt");
        std::fs::write(&keys, "").unwrap();
        let err = ServiceConfig::from_env(ServiceKind::Orders, &env(&[("CARAVAN_KEYS_FILE", keys.to_str().unwrap())]))
            .unwrap_err();
        assert_eq!(err.variable, "CARAVAN_SERVICE_KEY_FILE");
        let config =
            ServiceConfig::from_env(ServiceKind::Catalog, &env(&[("CARAVAN_KEYS_FILE", keys.to_str().unwrap())]));
        assert!(config.is_ok(), "catalog calls no one");
    }

    #[test]
    fn service_names_round_trip() {
        for kind in ServiceKind::ALL {
            assert_eq!(kind.as_str().parse::<ServiceKind>(), Ok(kind));
        }
        assert!("payments".parse::<ServiceKind>().is_err());
    }
}
