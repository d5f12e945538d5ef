//! Every setting a service process reads, declared once: its variable, flag,
//! default, parser and help text (clap's `env` and `default_value`). A value
//! that is wrong on its own is refused by its parser; what depends on other
//! settings or on files is checked by [`ServiceSettings::into_config`].

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use clap::Args;
use url::Url;

use super::{
    Authentication, ClientTls, ConfigError, DatabaseConfig, LogFormat, MigrateMode, Pooler, Secret, ServerTls,
    ServiceConfig, ServiceKind, loopback_url,
    vars::{duration, duration_at_least},
};
use crate::{
    auth::{keys::KeyStore, rate::RateConfig},
    time::SystemClock,
};

/// The settings every service reads (`caravan serve <service>`).
#[derive(Debug, Clone, Args)]
pub struct ServiceSettings {
    /// Address the gRPC server binds [default: 0.0.0.0:<the service's port>].
    #[arg(long, env = "CARAVAN_LISTEN_ADDR", value_name = "ADDR")]
    pub listen_addr: Option<SocketAddr>,
    #[command(flatten)]
    pub data_dir: DataDir,
    #[command(flatten)]
    pub database: DatabaseSettings,
    /// apply: migrate at start; verify: stay NOT_SERVING while the schema is
    /// behind (production: a Job applies).
    #[arg(long, env = "CARAVAN_MIGRATE", value_enum, default_value = "apply")]
    pub migrate: MigrateMode,
    /// How long in-flight calls may finish after SIGTERM.
    #[arg(long, env = "CARAVAN_SHUTDOWN_GRACE", default_value = "20s", value_parser = duration)]
    pub shutdown_grace: Duration,
    /// After SIGTERM, how long calls are still served while health says
    /// NOT_SERVING (shorter than the grace).
    #[arg(long, env = "CARAVAN_DRAIN_DELAY", default_value = "1s", value_parser = duration)]
    pub drain_delay: Duration,
    /// Largest accepted request message, in bytes.
    #[arg(long, env = "CARAVAN_MAX_REQUEST_BYTES", default_value = "4194304",
          value_parser = clap::value_parser!(u32).range(1024..))]
    pub max_request_bytes: u32,
    /// How often health re-checks the database.
    #[arg(long, env = "CARAVAN_HEALTH_CHECK_INTERVAL", default_value = "2s", value_parser = duration)]
    pub health_check_interval: Duration,
    /// Timeout for connecting to the services this one calls.
    #[arg(long, env = "CARAVAN_CONNECT_TIMEOUT", default_value = "2s", value_parser = duration)]
    pub connect_timeout: Duration,
    /// Longest a saga call (PlaceOrder) runs; unfinished work is re-driven,
    /// and claims are leased, for twice this.
    #[arg(long, env = "CARAVAN_CALL_LIMIT", default_value = "10s",
          value_parser = duration_at_least(Duration::from_millis(100)))]
    pub call_limit: Duration,
    /// How often upstream host names are resolved again; calls are balanced
    /// over all their addresses.
    #[arg(long, env = "CARAVAN_RESOLVE_INTERVAL", default_value = "5s",
          value_parser = duration_at_least(Duration::from_millis(100)))]
    pub resolve_interval: Duration,
    #[command(flatten)]
    pub limits: LimitSettings,
    #[command(flatten)]
    pub keys: KeySettings,
    #[command(flatten)]
    pub tls: TlsSettings,
    #[command(flatten)]
    pub upstreams: UpstreamSettings,
    #[command(flatten)]
    pub chaos: ChaosSettings,
    /// Prometheus /metrics address of the process (`off`: none).
    #[arg(long, env = "CARAVAN_METRICS_ADDR", default_value = "0.0.0.0:9464", value_parser = metrics_addr)]
    pub metrics_addr: MetricsAddr,
}

/// Where the default SQLite files live.
#[derive(Debug, Clone, Args)]
pub struct DataDir {
    /// Folder of the SQLite files (`<service>.db`) when no database URL is set.
    #[arg(long = "data-dir", env = "CARAVAN_DATA_DIR", default_value = "./data")]
    pub path: PathBuf,
}

/// A service's own database.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Database")]
pub struct DatabaseSettings {
    /// sqlite://PATH or postgres://USER@HOST/DB [default:
    /// sqlite://<data dir>/<service>.db].
    #[arg(long, env = "CARAVAN_DATABASE_URL", hide_env_values = true, value_name = "URL", value_parser = database_url)]
    pub database_url: Option<String>,
    /// PostgreSQL pool size (SQLite always uses one writer connection).
    #[arg(long, env = "CARAVAN_DB_MAX_CONNECTIONS", default_value = "10",
          value_parser = clap::value_parser!(u32).range(1..))]
    pub db_max_connections: u32,
    /// How long a call waits for a pooled connection.
    #[arg(long, env = "CARAVAN_DB_ACQUIRE_TIMEOUT", default_value = "5s", value_parser = duration)]
    pub db_acquire_timeout: Duration,
    /// PostgreSQL statement_timeout [default: 10s; through a transaction
    /// pooler, its connect_query sets it instead].
    #[arg(long, env = "CARAVAN_DB_STATEMENT_TIMEOUT", value_name = "DURATION", value_parser = duration)]
    pub db_statement_timeout: Option<Duration>,
    /// SQLite busy_timeout: how long to wait on another process's lock.
    #[arg(long, env = "CARAVAN_DB_BUSY_TIMEOUT", default_value = "5s", value_parser = duration)]
    pub db_busy_timeout: Duration,
    /// Close a pooled PostgreSQL connection unused this long.
    #[arg(long, env = "CARAVAN_DB_IDLE_TIMEOUT", default_value = "60s",
          value_parser = duration_at_least(Duration::from_secs(1)))]
    pub db_idle_timeout: Duration,
    /// transaction: PostgreSQL stands behind a transaction-pooling
    /// PgBouncer (see the runbook).
    #[arg(long, env = "CARAVAN_DB_POOLER", value_enum, default_value = "none")]
    pub db_pooler: Pooler,
}

/// The statement timeout when none is set.
const DEFAULT_STATEMENT_TIMEOUT: Duration = Duration::from_secs(10);

/// How much a replica takes on at once.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Limits")]
pub struct LimitSettings {
    /// Calls in flight beyond which new ones get RESOURCE_EXHAUSTED at once
    /// (0: no limit).
    #[arg(long, env = "CARAVAN_MAX_CONCURRENT_CALLS", default_value = "1024")]
    pub max_concurrent_calls: usize,
    /// Calls per second per partner or operator, per replica (0: off). A
    /// partner forwards many buyers' orders through one key, so it is sized
    /// not to throttle one partner's flash-sale burst: it stops a runaway
    /// client, load shedding protects the server.
    #[arg(long, env = "CARAVAN_RATE_LIMIT", default_value = "2000")]
    pub rate_limit: u32,
    /// Calls allowed at once above that rate.
    #[arg(long, env = "CARAVAN_RATE_BURST", default_value = "4000")]
    pub rate_burst: u32,
}

impl LimitSettings {
    /// The per-principal rate limits.
    pub fn rate(&self) -> RateConfig {
        RateConfig { per_second: self.rate_limit, burst: self.rate_burst }
    }
}

/// Who may call, and who this service is to the services it calls.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Keys")]
pub struct KeySettings {
    /// Hashes of the accepted API keys (`caravan keys create`); required
    /// unless --insecure-no-auth.
    #[arg(long, env = "CARAVAN_KEYS_FILE", value_name = "FILE")]
    pub keys_file: Option<PathBuf>,
    /// How often the keys file (and the service key and TLS files) is
    /// re-read for added, revoked and rotated entries.
    #[arg(long, env = "CARAVAN_KEYS_RELOAD", default_value = "10s", value_parser = duration)]
    pub keys_reload: Duration,
    /// File holding this service's own key, sent to the services it calls.
    #[arg(long, env = "CARAVAN_SERVICE_KEY_FILE", value_name = "FILE")]
    pub service_key_file: Option<PathBuf>,
    /// The same key directly (prefer the file: environments leak).
    #[arg(long, env = "CARAVAN_SERVICE_KEY", hide_env_values = true, value_name = "KEY")]
    pub service_key: Option<String>,
}

/// TLS on the service port and towards upstreams.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "TLS")]
pub struct TlsSettings {
    /// PEM certificate chain: serve TLS on the service port.
    #[arg(long, env = "CARAVAN_TLS_CERT", value_name = "FILE")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of that certificate.
    #[arg(long, env = "CARAVAN_TLS_KEY", value_name = "FILE")]
    pub tls_key: Option<PathBuf>,
    /// PEM CA: require client certificates signed by it (mTLS).
    #[arg(long, env = "CARAVAN_TLS_CLIENT_CA", value_name = "FILE")]
    pub tls_client_ca: Option<PathBuf>,
    /// With TLS on, the plaintext health-only address for probes [default:
    /// the service port + 100].
    #[arg(long, env = "CARAVAN_HEALTH_ADDR", value_name = "ADDR")]
    pub health_addr: Option<SocketAddr>,
    /// PEM CA that signs the upstreams' certificates (https:// upstreams).
    #[arg(long, env = "CARAVAN_UPSTREAM_CA", value_name = "FILE")]
    pub upstream_ca: Option<PathBuf>,
    /// PEM certificate this service presents to upstreams that require one.
    #[arg(long, env = "CARAVAN_UPSTREAM_CERT", value_name = "FILE")]
    pub upstream_cert: Option<PathBuf>,
    /// PEM private key of that certificate.
    #[arg(long, env = "CARAVAN_UPSTREAM_KEY", value_name = "FILE")]
    pub upstream_key: Option<PathBuf>,
}

/// Where the services this one calls are; each read only by its callers.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Upstreams")]
pub struct UpstreamSettings {
    /// Catalog's address for its callers [default: http://127.0.0.1:50051].
    #[arg(long, env = "CARAVAN_CATALOG_URL", value_name = "URL", value_parser = upstream_url)]
    pub catalog_url: Option<Url>,
    /// Scheduling's address for its callers [default: http://127.0.0.1:50052].
    #[arg(long, env = "CARAVAN_SCHEDULING_URL", value_name = "URL", value_parser = upstream_url)]
    pub scheduling_url: Option<Url>,
    /// Inventory's address for its callers [default: http://127.0.0.1:50053].
    #[arg(long, env = "CARAVAN_INVENTORY_URL", value_name = "URL", value_parser = upstream_url)]
    pub inventory_url: Option<Url>,
}

impl UpstreamSettings {
    fn get(&self, service: ServiceKind) -> Option<&Url> {
        match service {
            ServiceKind::Catalog => self.catalog_url.as_ref(),
            ServiceKind::Scheduling => self.scheduling_url.as_ref(),
            ServiceKind::Inventory => self.inventory_url.as_ref(),
            ServiceKind::Orders => None,
        }
    }
}

/// Fault-injection drills ([`crate::chaos`]): off unless allowed here.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Chaos drills")]
pub struct ChaosSettings {
    /// true: this process may run fault-injection drills (rehearsals, never
    /// the festival itself). Without it a drill file is refused.
    #[arg(long, env = "CARAVAN_CHAOS_ALLOWED", value_name = "BOOL", default_value = "false",
          action = clap::ArgAction::Set)]
    pub chaos_allowed: bool,
    /// The drill file an operator writes to start a drill and empties to
    /// stop it; re-read every CARAVAN_KEYS_RELOAD.
    #[arg(long, env = "CARAVAN_CHAOS_FILE", value_name = "FILE")]
    pub chaos_file: Option<PathBuf>,
}

/// Where the process serves Prometheus metrics; `None` for nowhere.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MetricsAddr(pub Option<SocketAddr>);

/// Log output of every command.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Logs")]
pub struct LogConfig {
    /// pretty (coloured on a terminal) or json (one object per line).
    #[arg(long = "log-format", env = "CARAVAN_LOG_FORMAT", value_enum, default_value = "pretty", global = true)]
    pub format: LogFormat,
    /// Log filter, an EnvFilter directive such as info,caravan_orders=debug.
    #[arg(long = "log", env = "CARAVAN_LOG", default_value = super::DEFAULT_LOG_FILTER, global = true)]
    pub filter: String,
}

impl DatabaseSettings {
    /// The database settings, with the URL when one is set (else empty: the
    /// caller knows the service's default file).
    pub fn config(&self) -> DatabaseConfig {
        DatabaseConfig {
            url: Secret::new(self.database_url.clone().unwrap_or_default()),
            max_connections: self.db_max_connections,
            acquire_timeout: self.db_acquire_timeout,
            statement_timeout: self.db_statement_timeout.unwrap_or(DEFAULT_STATEMENT_TIMEOUT),
            busy_timeout: self.db_busy_timeout,
            idle_timeout: self.db_idle_timeout,
            pooler: self.db_pooler,
        }
    }
}

impl ServiceSettings {
    /// The configuration of `service`: the settings checked against each
    /// other, and the files they name (keys, service key, certificates) read.
    /// Any error names the variable at fault.
    pub fn into_config(self, service: ServiceKind) -> Result<ServiceConfig, ConfigError> {
        let mut database = self.database.config();
        if self.database.database_url.is_none() {
            database.url = DatabaseConfig::sqlite_file(&self.data_dir.path.join(format!("{service}.db"))).url;
        }
        if database.pooler == Pooler::Transaction {
            if !database.is_postgres() {
                return Err(ConfigError::new("CARAVAN_DB_POOLER", "a pooler stands only before PostgreSQL"));
            }
            // PgBouncer 1.18 refuses the `options` startup parameter that
            // would carry it: the pooler's `connect_query` sets it instead.
            if self.database.db_statement_timeout.is_some() {
                return Err(ConfigError::new(
                    "CARAVAN_DB_STATEMENT_TIMEOUT",
                    "cannot be sent through a transaction pooler: set statement_timeout in the pooler's connect_query",
                ));
            }
        }
        let chaos_file = match (&self.chaos.chaos_file, self.chaos.chaos_allowed) {
            (Some(file), true) => Some(file.clone()),
            (Some(_), false) => {
                return Err(ConfigError::new(
                    "CARAVAN_CHAOS_FILE",
                    "refused: fault-injection drills need CARAVAN_CHAOS_ALLOWED=true (never on the festival itself)",
                ));
            }
            (None, _) => None,
        };
        if self.drain_delay >= self.shutdown_grace {
            return Err(ConfigError::new("CARAVAN_DRAIN_DELAY", "must be shorter than CARAVAN_SHUTDOWN_GRACE"));
        }
        let listen_addr = self.listen_addr.unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], service.default_port())));
        let auth = match &self.keys.keys_file {
            None => Authentication::Missing,
            Some(file) => Authentication::Keys {
                store: KeyStore::load(file).map_err(|e| ConfigError::new("CARAVAN_KEYS_FILE", e))?,
                file: Some(file.clone()),
                reload: self.keys.keys_reload,
            },
        };
        let service_key = match (&self.keys.service_key, &self.keys.service_key_file) {
            (Some(_), Some(_)) => {
                return Err(ConfigError::new("CARAVAN_SERVICE_KEY", "set it or CARAVAN_SERVICE_KEY_FILE, not both"));
            }
            (Some(key), None) => Some(
                crate::auth::keys::ServiceKey::new(key.trim())
                    .map_err(|e| ConfigError::new("CARAVAN_SERVICE_KEY", e))?,
            ),
            (None, Some(path)) => Some(
                crate::auth::keys::ServiceKey::from_file(path)
                    .map_err(|e| ConfigError::new("CARAVAN_SERVICE_KEY_FILE", e))?,
            ),
            (None, None) => None,
        };
        if service_key.is_none() && !service.upstreams().is_empty() && self.keys.keys_file.is_some() {
            return Err(ConfigError::new(
                "CARAVAN_SERVICE_KEY_FILE",
                format!("{service} calls other services and needs its own service key"),
            ));
        }
        let tls = self.tls.server()?;
        let health_addr = tls.as_ref().map(|_| {
            self.tls
                .health_addr
                .unwrap_or_else(|| SocketAddr::new(listen_addr.ip(), listen_addr.port().saturating_add(100)))
        });
        let upstreams = service
            .upstreams()
            .iter()
            .map(|&up| (up, self.upstreams.get(up).cloned().unwrap_or_else(|| loopback_url(up.default_port()))))
            .collect();
        Ok(ServiceConfig {
            service,
            listen_addr,
            database,
            migrate: self.migrate,
            shutdown_grace: self.shutdown_grace,
            drain_delay: self.drain_delay,
            // At most u32::MAX, so it fits a usize on every target caravan builds for.
            max_request_bytes: self.max_request_bytes as usize,
            health_check_interval: self.health_check_interval,
            upstreams,
            connect_timeout: self.connect_timeout,
            max_concurrent_calls: self.limits.max_concurrent_calls,
            auth,
            service_key,
            rate: self.limits.rate(),
            tls,
            health_addr,
            upstream_tls: self.tls.upstream()?,
            clock: std::sync::Arc::new(SystemClock),
            call_limit: self.call_limit,
            resolve_interval: self.resolve_interval,
            chaos_file,
        })
    }
}

impl TlsSettings {
    fn server(&self) -> Result<Option<ServerTls>, ConfigError> {
        match (&self.tls_cert, &self.tls_key) {
            (Some(cert), Some(key)) => Ok(Some(ServerTls {
                cert_pem: read_pem("CARAVAN_TLS_CERT", cert)?,
                key_pem: Secret::new(read_pem("CARAVAN_TLS_KEY", key)?),
                client_ca_pem: self
                    .tls_client_ca
                    .as_ref()
                    .map(|ca| read_pem("CARAVAN_TLS_CLIENT_CA", ca))
                    .transpose()?,
                files: Some((cert.clone(), key.clone())),
            })),
            (None, None) if self.tls_client_ca.is_some() => {
                Err(ConfigError::new("CARAVAN_TLS_CLIENT_CA", "needs CARAVAN_TLS_CERT and CARAVAN_TLS_KEY"))
            }
            (None, None) => Ok(None),
            (Some(_), None) => Err(ConfigError::new("CARAVAN_TLS_KEY", "needed with CARAVAN_TLS_CERT")),
            (None, Some(_)) => Err(ConfigError::new("CARAVAN_TLS_CERT", "needed with CARAVAN_TLS_KEY")),
        }
    }

    fn upstream(&self) -> Result<Option<ClientTls>, ConfigError> {
        let Some(ca) = &self.upstream_ca else {
            return Ok(None);
        };
        let identity = match (&self.upstream_cert, &self.upstream_key) {
            (Some(cert), Some(key)) => {
                Some((read_pem("CARAVAN_UPSTREAM_CERT", cert)?, Secret::new(read_pem("CARAVAN_UPSTREAM_KEY", key)?)))
            }
            (None, None) => None,
            _ => {
                return Err(ConfigError::new(
                    "CARAVAN_UPSTREAM_CERT",
                    "set both CARAVAN_UPSTREAM_CERT and _KEY, or neither",
                ));
            }
        };
        Ok(Some(ClientTls { ca_pem: read_pem("CARAVAN_UPSTREAM_CA", ca)?, identity }))
    }
}

fn read_pem(variable: &str, path: &std::path::Path) -> Result<String, ConfigError> {
    std::fs::read_to_string(path)
        .map_err(|e| ConfigError::new(variable, format!("cannot read {}: {e}", path.display())))
}

fn database_url(raw: &str) -> Result<String, String> {
    if raw.starts_with("sqlite:") || raw.starts_with("postgres://") || raw.starts_with("postgresql://") {
        Ok(raw.to_owned())
    } else {
        // Not echoed: the URL may hold a password.
        Err("must start with sqlite:, postgres:// or postgresql://".to_owned())
    }
}

fn upstream_url(raw: &str) -> Result<Url, String> {
    let url = Url::parse(raw).map_err(|e| format!("not a URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err("must be http://HOST:PORT or https://HOST:PORT".to_owned());
    }
    Ok(url)
}

fn metrics_addr(raw: &str) -> Result<MetricsAddr, String> {
    match raw {
        "off" => Ok(MetricsAddr(None)),
        addr => addr.parse().map(|addr| MetricsAddr(Some(addr))).map_err(|e| format!("{e} (or `off`)")),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::config::Declared;

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    fn config(service: ServiceKind, pairs: &[(&str, &str)]) -> Result<ServiceConfig, ConfigError> {
        ServiceSettings::from_vars(&env(pairs))?.into_config(service)
    }

    #[test]
    fn the_declared_defaults_are_valid() {
        let config = ServiceSettings::declared_defaults().into_config(ServiceKind::Orders).unwrap();
        assert_eq!(config.shutdown_grace, Duration::from_secs(20));
        assert_eq!(config.database.statement_timeout, Duration::from_secs(10));
        assert_eq!(config.rate, RateConfig { per_second: 2000, burst: 4000 });
        assert_eq!(DatabaseConfig::new("postgres://db/x").max_connections, 10);
        let local = ServiceConfig::local(ServiceKind::Catalog, std::path::Path::new("/tmp/x"));
        assert_eq!(local.listen_addr, SocketAddr::from(([127, 0, 0, 1], 50051)));
        assert_eq!(local.database.url.expose(), "sqlite:///tmp/x/catalog.db?mode=rwc");
    }

    #[test]
    fn defaults_need_no_variables() {
        let config = config(ServiceKind::Orders, &[]).unwrap();
        assert_eq!(config.listen_addr, SocketAddr::from(([0, 0, 0, 0], 50054)));
        assert_eq!(config.migrate, MigrateMode::Apply);
        assert!(config.database.url.expose().starts_with("sqlite://./data/orders.db"));
        assert_eq!(config.upstreams.len(), 3);
        assert_eq!(config.upstream(ServiceKind::Inventory).as_str(), "http://127.0.0.1:50053/");
    }

    #[test]
    fn every_variable_is_read() {
        let config = config(
            ServiceKind::Scheduling,
            &[
                ("CARAVAN_LISTEN_ADDR", "127.0.0.1:7000"),
                ("CARAVAN_DATABASE_URL", "postgres://u:pw@db/scheduling"),
                ("CARAVAN_DB_MAX_CONNECTIONS", "3"),
                ("CARAVAN_DB_STATEMENT_TIMEOUT", "1500ms"),
                ("CARAVAN_MIGRATE", "verify"),
                ("CARAVAN_SHUTDOWN_GRACE", "3s"),
                ("CARAVAN_CATALOG_URL", "http://catalog:50051"),
                ("CARAVAN_RATE_BURST", "7"),
                ("CARAVAN_METRICS_ADDR", "off"),
            ],
        )
        .unwrap();
        assert_eq!(config.listen_addr.port(), 7000);
        assert!(config.database.is_postgres());
        assert_eq!(config.database.max_connections, 3);
        assert_eq!(config.database.statement_timeout, Duration::from_millis(1500));
        assert_eq!(config.migrate, MigrateMode::Verify);
        assert_eq!(config.shutdown_grace, Duration::from_secs(3));
        assert_eq!(config.upstream(ServiceKind::Catalog).host_str(), Some("catalog"));
        assert_eq!(config.rate.burst, 7);
        let settings = ServiceSettings::from_vars(&env(&[("CARAVAN_METRICS_ADDR", "off")])).unwrap();
        assert_eq!(settings.metrics_addr, MetricsAddr(None));
    }

    #[test]
    fn bad_values_name_their_variable() {
        let check = |var: &str, value: &str| {
            let err = config(ServiceKind::Orders, &[(var, value)]).unwrap_err();
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
        check("CARAVAN_DB_POOLER", "pgbouncer");
        check("CARAVAN_DB_IDLE_TIMEOUT", "a while");
        check("CARAVAN_DB_IDLE_TIMEOUT", "0s");
        check("CARAVAN_DRAIN_DELAY", "30s");
        check("CARAVAN_METRICS_ADDR", "everywhere");
        check("CARAVAN_CHAOS_FILE", "/etc/caravan/chaos/drill.json");
        check("CARAVAN_CHAOS_ALLOWED", "yes");
        let err = config(ServiceKind::Orders, &[("CARAVAN_DATABASE_URL", "mysql://u:hunter2@db")]).unwrap_err();
        assert!(!err.to_string().contains("hunter2"), "{err}");
    }

    #[test]
    fn chaos_drills_are_off_unless_allowed() {
        assert_eq!(config(ServiceKind::Orders, &[]).unwrap().chaos_file, None);
        let allowed = config(
            ServiceKind::Orders,
            &[("CARAVAN_CHAOS_ALLOWED", "true"), ("CARAVAN_CHAOS_FILE", "/etc/caravan/chaos/drill.json")],
        )
        .unwrap();
        assert_eq!(allowed.chaos_file, Some(PathBuf::from("/etc/caravan/chaos/drill.json")));
        let err = config(ServiceKind::Orders, &[("CARAVAN_CHAOS_FILE", "/tmp/drill.json")]).unwrap_err();
        assert!(err.message.contains("CARAVAN_CHAOS_ALLOWED=true"), "{err}");
    }

    #[test]
    fn a_transaction_pooler_stands_before_postgresql_and_takes_the_statement_timeout() {
        let pooled = |extra: &[(&str, &str)]| {
            let mut vars = vec![
                ("CARAVAN_DATABASE_URL", "postgres://u:pw@pgbouncer:6432/orders"),
                ("CARAVAN_DB_POOLER", "transaction"),
            ];
            vars.extend_from_slice(extra);
            config(ServiceKind::Orders, &vars)
        };
        let pooled_config = pooled(&[("CARAVAN_DB_IDLE_TIMEOUT", "30s")]).unwrap();
        assert_eq!(pooled_config.database.pooler, Pooler::Transaction);
        assert_eq!(pooled_config.database.idle_timeout, Duration::from_secs(30));
        // PgBouncer refuses the startup parameter that would carry it.
        let err = pooled(&[("CARAVAN_DB_STATEMENT_TIMEOUT", "5s")]).unwrap_err();
        assert_eq!(err.variable, "CARAVAN_DB_STATEMENT_TIMEOUT", "{err}");
        assert!(err.to_string().contains("connect_query"), "{err}");
        // SQLite has no pooler.
        let err = config(ServiceKind::Orders, &[("CARAVAN_DB_POOLER", "transaction")]).unwrap_err();
        assert_eq!(err.variable, "CARAVAN_DB_POOLER", "{err}");
        assert_eq!(config(ServiceKind::Orders, &[]).unwrap().database.pooler, Pooler::None);
    }

    #[test]
    fn secrets_do_not_print() {
        let config_with_password =
            config(ServiceKind::Catalog, &[("CARAVAN_DATABASE_URL", "postgres://u:hunter2@db/catalog")]).unwrap();
        assert!(!format!("{config_with_password:?}").contains("hunter2"));

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
        let config = config(
            ServiceKind::Orders,
            &[
                ("CARAVAN_KEYS_FILE", &keys),
                ("CARAVAN_SERVICE_KEY", "cvn_service_secret"),
                ("CARAVAN_TLS_CERT", &write("cert.pem", "CERTIFICATE")),
                ("CARAVAN_TLS_KEY", &write("key.pem", "PRIVATE-KEY-MATERIAL")),
            ],
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
        let keys = keys.to_str().unwrap();
        let err = config(ServiceKind::Orders, &[("CARAVAN_KEYS_FILE", keys)]).unwrap_err();
        assert_eq!(err.variable, "CARAVAN_SERVICE_KEY_FILE");
        assert!(config(ServiceKind::Catalog, &[("CARAVAN_KEYS_FILE", keys)]).is_ok(), "catalog calls no one");
    }
}
