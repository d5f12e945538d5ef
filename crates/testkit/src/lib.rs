//! caravan's test kit: a fresh database per test through the real
//! migrations, servers on free ports, the test keys and callers, an OTLP
//! receiver. A dev-dependency only: the production binary carries none of it.
//!
//! SQLite (default): a temporary file, removed when the test ends.
//! PostgreSQL (when `CARAVAN_TEST_DATABASE_URL` is set to a server URL such as
//! `postgres://postgres@127.0.0.1:5432/postgres`): a database cloned from a
//! template that was migrated once per service and migration set, built under
//! `pg_advisory_lock` because test processes run in parallel; dropped
//! `WITH (FORCE)` when the test ends. Every name starts with
//! [`PG_TEST_PREFIX`], so `.ci/run` can sweep leftovers of killed runs.
//! With `CARAVAN_TEST_POOLER_URL` also set (a transaction-pooling PgBouncer
//! in front of that server, as `.ci/run` starts one), the services and
//! [`TestDatabase::connect`] reach the database through the pooler, the way
//! the prod overlay runs; the harness's own administration stays direct.

use std::{
    collections::hash_map::DefaultHasher,
    hash::{Hash, Hasher},
    net::SocketAddr,
    path::Path,
    sync::Arc,
};

use sea_orm::{ConnectionTrait, Database, Statement};
use sea_orm_migration::MigratorTrait;
use tempfile::TempDir;

use caravan_platform::{
    auth::{
        Principal,
        keys::{self, KeyEntry, KeyStore},
    },
    config::{Authentication, DatabaseConfig, ServiceConfig, ServiceKind},
};
mod otlp;

pub use caravan_platform::{client::health_status, error::violated_fields};
pub use otlp::{Export, OtlpReceiver};

/// Every PostgreSQL database the harness creates starts with this.
pub const PG_TEST_PREFIX: &str = "caravan_test_";
/// The variable naming the PostgreSQL server for tests.
pub const PG_URL_VARIABLE: &str = "CARAVAN_TEST_DATABASE_URL";
/// The variable naming a transaction-pooling PgBouncer in front of it.
pub const POOLER_URL_VARIABLE: &str = "CARAVAN_TEST_POOLER_URL";
/// Test pools stay small: the server allows 100 connections and tests run in parallel.
pub const TEST_POOL_SIZE: u32 = 4;

/// A database that lives as long as this value.
#[derive(Debug)]
pub struct TestDatabase {
    config: DatabaseConfig,
    backend: Backend,
}

#[derive(Debug)]
enum Backend {
    Sqlite { _dir: TempDir },
    Postgres { admin_url: String, name: String },
}

impl TestDatabase {
    /// A fresh, migrated database for `service`.
    pub async fn new<M: MigratorTrait>(service: ServiceKind) -> anyhow::Result<Self> {
        match std::env::var(PG_URL_VARIABLE) {
            Ok(url) if !url.trim().is_empty() => Self::postgres::<M>(service, url.trim()).await,
            _ => Self::sqlite::<M>(service).await,
        }
    }

    /// Settings to connect to it (small pool).
    pub fn config(&self) -> DatabaseConfig {
        self.config.clone()
    }

    /// Whether this is PostgreSQL.
    pub fn is_postgres(&self) -> bool {
        matches!(self.backend, Backend::Postgres { .. })
    }

    /// Whether the services reach it through a transaction pooler.
    pub fn is_pooled(&self) -> bool {
        self.config.pooler == caravan_platform::config::Pooler::Transaction
    }

    /// PostgreSQL only: makes the database refuse (or accept again) new
    /// connections and, when refusing, ends the open ones, so the service
    /// sees its database become unreachable. The test role is a superuser,
    /// so revoking CONNECT would not do. Returns `false` on SQLite, whose
    /// open file cannot be taken away from a running service.
    pub async fn set_reachable(&self, reachable: bool) -> anyhow::Result<bool> {
        let Backend::Postgres { admin_url, name } = &self.backend else {
            return Ok(false);
        };
        let admin = Database::connect(admin_url).await?;
        admin.execute_unprepared(&format!("ALTER DATABASE \"{name}\" ALLOW_CONNECTIONS {reachable}")).await?;
        if !reachable {
            admin
                .execute_unprepared(&format!(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}' AND pid <> pg_backend_pid()"
                ))
                .await?;
        }
        admin.close().await?;
        Ok(true)
    }

    /// A new pool on it, through the same code the services use.
    pub async fn connect(&self) -> anyhow::Result<caravan_platform::db::Db> {
        Ok(caravan_platform::db::connect(&self.config).await?)
    }

    async fn sqlite<M: MigratorTrait>(service: ServiceKind) -> anyhow::Result<Self> {
        let dir = tempfile::Builder::new().prefix("caravan-test-").tempdir()?;
        let config = DatabaseConfig::sqlite_file(&dir.path().join(format!("{service}.db")));
        let db = caravan_platform::db::connect(&config).await?;
        M::up(db.pool(), None).await?;
        db.close().await?;
        Ok(TestDatabase { config, backend: Backend::Sqlite { _dir: dir } })
    }

    async fn postgres<M: MigratorTrait>(service: ServiceKind, server_url: &str) -> anyhow::Result<Self> {
        let admin_url = with_database(server_url, "postgres")?;
        let template = format!("{PG_TEST_PREFIX}tpl_{service}_{:016x}", migration_fingerprint::<M>());
        let name = format!("{PG_TEST_PREFIX}{service}_{}", uuid::Uuid::new_v4().simple());

        let admin = Database::connect(&admin_url).await?;
        // Session-level lock on a dedicated connection: build the template once,
        // and clone it while no one else is connected to it.
        let lock_key = 0x6361_7261_7661_6e00_i64; // "caravan\0"
        admin.execute_unprepared(&format!("SELECT pg_advisory_lock({lock_key})")).await?;
        let result = async {
            let exists = admin
                .query_one_raw(Statement::from_string(
                    admin.get_database_backend(),
                    format!("SELECT 1 FROM pg_database WHERE datname = '{template}'"),
                ))
                .await?
                .is_some();
            if !exists {
                admin.execute_unprepared(&format!("CREATE DATABASE \"{template}\"")).await?;
                let tpl =
                    caravan_platform::db::connect(&small(DatabaseConfig::new(with_database(server_url, &template)?)))
                        .await?;
                let migrated = M::up(tpl.pool(), None).await;
                tpl.close().await?;
                if let Err(e) = migrated {
                    admin.execute_unprepared(&format!("DROP DATABASE \"{template}\" WITH (FORCE)")).await?;
                    return Err(anyhow::Error::from(e).context("migrating the template database"));
                }
            }
            admin.execute_unprepared(&format!("CREATE DATABASE \"{name}\" TEMPLATE \"{template}\"")).await?;
            anyhow::Ok(())
        }
        .await;
        admin.execute_unprepared(&format!("SELECT pg_advisory_unlock({lock_key})")).await?;
        admin.close().await?;
        result?;

        let mut config = small(DatabaseConfig::new(with_database(server_url, &name)?));
        if let Ok(pooler_url) = std::env::var(POOLER_URL_VARIABLE)
            && !pooler_url.trim().is_empty()
        {
            config.url = caravan_platform::config::Secret::new(with_database(pooler_url.trim(), &name)?);
            config.pooler = caravan_platform::config::Pooler::Transaction;
        }
        Ok(TestDatabase { config, backend: Backend::Postgres { admin_url, name } })
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let Backend::Postgres { admin_url, name } = &self.backend else {
            return;
        };
        let (admin_url, name) = (admin_url.clone(), name.clone());
        // Drop cannot be async: use a runtime of our own on a thread of our own,
        // which works whether or not the test's runtime is still running.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            runtime.block_on(async {
                let admin = Database::connect(&admin_url).await?;
                admin.execute_unprepared(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)")).await?;
                admin.close().await?;
                anyhow::Ok(())
            })
        })
        .join();
        match dropped {
            Ok(Ok(())) => {}
            Ok(Err(e)) => eprintln!("warning: could not drop test database: {e:#}"),
            Err(_) => eprintln!("warning: dropping the test database panicked"),
        }
    }
}

fn small(mut config: DatabaseConfig) -> DatabaseConfig {
    config.max_connections = TEST_POOL_SIZE;
    config
}

/// Changes whenever the migration list changes, so a new migration gets a new template.
fn migration_fingerprint<M: MigratorTrait>() -> u64 {
    let mut hasher = DefaultHasher::new();
    for migration in M::migrations() {
        migration.name().hash(&mut hasher);
    }
    hasher.finish()
}

fn with_database(server_url: &str, database: &str) -> anyhow::Result<String> {
    caravan_platform::db::with_database(server_url, database).map_err(|e| anyhow::anyhow!("{PG_URL_VARIABLE}: {e}"))
}

/// The test keys as a keys file in `dir` (`keys.txt`, for
/// `CARAVAN_KEYS_FILE`), and each service's own key in `<service>.key` (for
/// `CARAVAN_SERVICE_KEY_FILE`): what a `caravan serve` child process of a
/// test needs to accept the test callers and call the others.
pub fn write_test_keys(dir: &Path) -> std::io::Result<std::path::PathBuf> {
    let keys = dir.join("keys.txt");
    let lines: Vec<String> =
        Caller::all().into_iter().map(|c| KeyEntry::for_key(c.key(), c.principal()).to_line()).collect();
    std::fs::write(&keys, lines.join("\n"))?;
    for kind in ServiceKind::ALL {
        std::fs::write(dir.join(format!("{kind}.key")), Caller::Service(kind).key())?;
    }
    Ok(keys)
}

/// Who a test calls as: one key of each kind, the same for the whole test process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Caller {
    /// `ops-test`, an operator.
    Operator,
    /// `hema-shop`, a partner of `hema`.
    Hema,
    /// `douyin-live`, a partner of `douyin`.
    Douyin,
    /// `svc-<service>`, a service.
    Service(ServiceKind),
}

impl Caller {
    /// Its principal.
    pub fn principal(self) -> Principal {
        match self {
            Caller::Operator => Principal::operator("ops-test"),
            Caller::Hema => Principal::partner("hema-shop", "hema"),
            Caller::Douyin => Principal::partner("douyin-live", "douyin"),
            Caller::Service(kind) => Principal::service(&format!("svc-{kind}")),
        }
    }

    /// Its key (generated once per test process).
    pub fn key(self) -> &'static str {
        let keys = test_keys();
        let index = match self {
            Caller::Operator => 0,
            Caller::Hema => 1,
            Caller::Douyin => 2,
            Caller::Service(kind) => 3 + ServiceKind::ALL.iter().position(|k| *k == kind).unwrap_or(0),
        };
        keys[index].as_str()
    }

    /// Every test caller.
    pub fn all() -> Vec<Caller> {
        let mut all = vec![Caller::Operator, Caller::Hema, Caller::Douyin];
        all.extend(ServiceKind::ALL.map(Caller::Service));
        all
    }
}

fn test_keys() -> &'static Vec<String> {
    static KEYS: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
    KEYS.get_or_init(|| (0..3 + ServiceKind::ALL.len()).map(|_| keys::generate()).collect())
}

/// The keys of every test caller, as a server holds them (hashes only).
pub fn test_key_store() -> KeyStore {
    KeyStore::new(Caller::all().into_iter().map(|c| KeyEntry::for_key(c.key(), c.principal())).collect())
}

/// A channel that sends `caller`'s key with every call.
#[derive(Debug, Clone)]
pub struct KeyedChannel {
    inner: tonic::transport::Channel,
    authorization: Option<http::HeaderValue>,
}

impl KeyedChannel {
    /// A channel to `addr` calling as `caller` (`None`: sending no key).
    pub fn new(addr: SocketAddr, caller: Option<Caller>) -> Self {
        Self::with_header(addr, caller.map(|c| format!("Bearer {}", c.key())))
    }

    /// A channel sending `authorization` as given (to test bad keys).
    pub fn with_header(addr: SocketAddr, authorization: Option<String>) -> Self {
        let inner = match tonic::transport::Endpoint::from_shared(format!("http://{addr}")) {
            Ok(endpoint) => endpoint.connect_lazy(),
            Err(e) => unreachable!("a socket address is a valid URI: {e}"),
        };
        let authorization = authorization.and_then(|a| http::HeaderValue::from_str(&a).ok());
        KeyedChannel { inner, authorization }
    }
}

impl tower::Service<http::Request<tonic::body::Body>> for KeyedChannel {
    type Response = http::Response<tonic::body::Body>;
    type Error = tonic::transport::Error;
    type Future = <tonic::transport::Channel as tower::Service<http::Request<tonic::body::Body>>>::Future;

    fn poll_ready(&mut self, cx: &mut std::task::Context<'_>) -> std::task::Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<tonic::body::Body>) -> Self::Future {
        if let Some(value) = &self.authorization {
            request.headers_mut().insert(caravan_platform::auth::AUTHORIZATION, value.clone());
        }
        self.inner.call(request)
    }
}

/// The configuration of a service under test: loopback port 0, the given
/// database, the test keys, upstreams as given (unknown ones point at a
/// closed port).
pub fn service_config(
    service: ServiceKind,
    database: DatabaseConfig,
    upstreams: &[(ServiceKind, SocketAddr)],
) -> ServiceConfig {
    let mut config = ServiceConfig::local(service, Path::new("."));
    config.listen_addr = SocketAddr::from(([127, 0, 0, 1], 0));
    config.database = database;
    config.shutdown_grace = std::time::Duration::from_secs(2);
    // Tests stop servers all the time; none of them waits for a balancer.
    config.drain_delay = std::time::Duration::ZERO;
    config.health_check_interval = std::time::Duration::from_millis(200);
    config.auth =
        Authentication::Keys { store: test_key_store(), file: None, reload: std::time::Duration::from_secs(10) };
    config.service_key = caravan_platform::auth::keys::ServiceKey::new(Caller::Service(service).key()).ok();
    // Upstreams the test did not start are a closed port, never a default
    // port where a developer's own `caravan up` may be listening.
    for kind in service.upstreams() {
        let port = upstreams.iter().find(|(k, _)| k == kind).map_or(1, |(_, addr)| addr.port());
        config.upstreams.insert(*kind, caravan_platform::config::loopback_url(port));
    }
    config
}

/// A service running on a loopback port with a fresh database, for tests.
/// Dropping it stops the server.
#[derive(Debug)]
pub struct TestServer {
    addr: SocketAddr,
    health_addr: Option<SocketAddr>,
    token: caravan_platform::CancellationToken,
    handle: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
    database: Arc<TestDatabase>,
}

impl TestServer {
    /// Starts service `S` on port 0 with a fresh database; `upstreams` are
    /// the addresses of the services it calls (others point at closed ports).
    pub async fn start<S: caravan_platform::app::Service>(
        upstreams: &[(ServiceKind, SocketAddr)],
    ) -> anyhow::Result<Self> {
        caravan_platform::telemetry::init_for_tests();
        let database = TestDatabase::new::<S::Migrator>(S::KIND).await?;
        let config = service_config(S::KIND, database.config(), upstreams);
        Self::start_with::<S>(config, database).await
    }

    /// Starts service `S` with `config` (its database must be `database`).
    pub async fn start_with<S: caravan_platform::app::Service>(
        config: ServiceConfig,
        database: impl Into<Arc<TestDatabase>>,
    ) -> anyhow::Result<Self> {
        let database = database.into();
        let app = caravan_platform::app::Application::<S>::build(config).await?;
        let addr = app.local_addr();
        let health_addr = app.health_addr();
        let token = caravan_platform::CancellationToken::new();
        let handle = tokio::spawn(app.run_until_stopped(token.clone()));
        Ok(TestServer { addr, health_addr, token, handle: Some(handle), database })
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Its plaintext health address, when it serves TLS.
    pub fn health_addr(&self) -> Option<SocketAddr> {
        self.health_addr
    }

    /// Its database.
    pub fn database(&self) -> &TestDatabase {
        &self.database
    }

    /// Its database, to start another replica on it with [`Self::start_with`].
    pub fn shared_database(&self) -> Arc<TestDatabase> {
        self.database.clone()
    }

    /// A channel to it calling as an operator (connected on first use).
    pub fn channel(&self) -> KeyedChannel {
        KeyedChannel::new(self.addr, Some(Caller::Operator))
    }

    /// A channel to it calling as `caller`.
    pub fn channel_as(&self, caller: Caller) -> KeyedChannel {
        KeyedChannel::new(self.addr, Some(caller))
    }

    /// Stops it and waits for the drain to finish.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        self.token.cancel();
        match self.handle.take() {
            Some(handle) => handle.await?,
            None => Ok(()),
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.token.cancel();
    }
}

/// Polls `check` until it returns `true` or `timeout` passes (for states
/// that change in the background, such as health; never to wait for a server
/// to start, which is bound before it is spawned).
pub async fn eventually<F, Fut>(timeout: std::time::Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if check().await {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
}

/// Asserts that `wrap`, handed a database error inside a store operation's
/// `db` span as a service's store wraps one, marks that operation failed
/// ([`caravan_platform::db::failed`]): an `error.type` and the error's text as the
/// status description. Each service's test of its error wrapping.
pub fn assert_wrapping_marks_db_failure(wrap: impl FnOnce(sea_orm::DbErr)) {
    let fields = db_failure_fields(wrap);
    assert_eq!(fields.get("error.type").map(String::as_str), Some("other"), "{fields:?}");
    assert!(fields.get("otel.status_description").is_some_and(|d| d.contains("the disk is on fire")), "{fields:?}");
}

/// What a `db` span records when `wrap` is handed a database error inside
/// it: field name → value.
fn db_failure_fields(wrap: impl FnOnce(sea_orm::DbErr)) -> std::collections::HashMap<String, String> {
    use std::{collections::HashMap, sync::Mutex};

    use tracing::field::{Empty, Field, Visit};
    use tracing_subscriber::{Layer, layer::SubscriberExt as _};

    #[derive(Clone, Default)]
    struct Recorded(Arc<Mutex<HashMap<String, String>>>);

    impl Visit for Recorded {
        fn record_str(&mut self, field: &Field, value: &str) {
            self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner).insert(field.name().into(), value.into());
        }

        fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
            self.record_str(field, &format!("{value:?}"));
        }
    }

    impl<S: tracing::Subscriber> Layer<S> for Recorded {
        fn on_record(
            &self,
            _: &tracing::span::Id,
            values: &tracing::span::Record<'_>,
            _: tracing_subscriber::layer::Context<'_, S>,
        ) {
            values.record(&mut self.clone());
        }
    }

    let recorded = Recorded::default();
    let subscriber = tracing_subscriber::registry().with(recorded.clone());
    tracing::subscriber::with_default(subscriber, || {
        let span = tracing::info_span!(
            "db",
            otel.name = "test operation",
            otel.status_description = Empty,
            error.type = Empty,
            db.response.status_code = Empty
        );
        span.in_scope(|| wrap(sea_orm::DbErr::Custom("the disk is on fire".into())));
    });
    recorded.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
}
