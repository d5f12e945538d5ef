//! Database connection and migrations, the same for every service.
//!
//! SQLite runs in WAL mode with a `busy_timeout` and exactly one pooled
//! connection: one writer, so concurrent requests queue in the pool instead of
//! failing with `SQLITE_BUSY`. Its query planner keeps one plan per
//! statement whatever values are bound ([`plan_once`]). PostgreSQL gets a pool
//! with acquire, statement and idle timeouts, directly or through a
//! transaction-pooling PgBouncer ([`Db`]).

use std::{future::Future, path::Path, pin::Pin};

use sea_orm::{
    AccessMode, ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DatabaseTransaction, DbBackend, DbErr,
    ExecResult, IsolationLevel, QueryResult, Statement, TransactionError, TransactionOptions, TransactionTrait,
    sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous},
};

use crate::chaos::Chaos;
use crate::config::{DatabaseConfig, Pooler};

/// A service's pool of database connections: what its stores, its
/// idempotency records and its workers hold. Clones share the pool.
///
/// Directly on the database it is sea-orm's pool. Behind a transaction
/// pooler ([`Pooler::Transaction`]) a server connection belongs to this
/// process for one transaction at a time, and three things change:
///
/// - sqlx sends every statement in two round trips, each ending in a Sync
///   (parse and describe; then bind and execute), and between them a pooler
///   that knows nothing of prepared statements (PgBouncer 1.18) may hand the
///   server connection to another client: the second half would find no
///   statement. So a statement outside a transaction runs in one of its own
///   (`BEGIN`, the statement, `COMMIT`: two more round trips, measured by
///   `caravan loadgen --pooler-cost`), and inside a transaction the server
///   connection stays linked.
/// - No statement cache: sqlx then names each statement once and never
///   reuses it, and the pooler's `server_reset_query = DEALLOCATE ALL`
///   (with `server_reset_query_always = 1`) clears the names whenever a
///   server connection changes hands, so two clients' names never meet.
/// - No ping at every acquire, only after a connection idled (see `open`).
#[derive(Clone, Debug)]
pub struct Db {
    pool: DatabaseConnection,
    pooler: Pooler,
    chaos: Chaos,
}

impl Db {
    /// A handle on `pool`, reached through `pooler`.
    pub fn new(pool: DatabaseConnection, pooler: Pooler) -> Self {
        Db { pool, pooler, chaos: Chaos::off() }
    }

    /// The same pool, its statements and transactions subject to `chaos`'s
    /// drills.
    pub fn with_chaos(mut self, chaos: Chaos) -> Self {
        self.chaos = chaos;
        self
    }

    /// What a drill does to the operation about to start: a delay, or a
    /// lost connection (transient: UNAVAILABLE to the caller, who retries).
    async fn drill(&self) -> Result<(), DbErr> {
        let injection = self.chaos.database();
        if let Some(kind) = Chaos::fault_kind(&injection) {
            // The store operation's `db` span declares the field.
            tracing::Span::current().record("chaos.fault", kind);
        }
        if !injection.delay.is_zero() {
            tokio::time::sleep(injection.delay).await;
        }
        match injection.error {
            Some(status) => Err(DbErr::Conn(sea_orm::RuntimeErr::Internal(status.message().to_owned()))),
            None => Ok(()),
        }
    }

    /// sea-orm's pool, for what needs it by type (the migrator, pool gauges).
    pub fn pool(&self) -> &DatabaseConnection {
        &self.pool
    }

    /// Whether the database answers: a simple query, one round trip.
    pub async fn ping(&self) -> Result<(), DbErr> {
        self.pool.ping().await
    }

    /// Closes every connection of the pool.
    pub async fn close(self) -> Result<(), DbErr> {
        self.pool.close().await
    }

    /// Whether each statement outside a transaction needs one of its own.
    fn alone(&self) -> bool {
        self.pooler == Pooler::Transaction
    }
}

/// Runs `$call` on the pool, or in a transaction of its own behind a
/// transaction pooler (see [`Db`]).
macro_rules! alone {
    ($db:expr, $call:ident($arg:expr)) => {
        if $db.alone() {
            let txn = $db.pool.begin().await?;
            let out = txn.$call($arg).await?;
            txn.commit().await?;
            Ok(out)
        } else {
            $db.pool.$call($arg).await
        }
    };
}

#[async_trait::async_trait]
impl ConnectionTrait for Db {
    fn get_database_backend(&self) -> DbBackend {
        self.pool.get_database_backend()
    }

    async fn execute_raw(&self, stmt: Statement) -> Result<ExecResult, DbErr> {
        self.drill().await?;
        alone!(self, execute_raw(stmt))
    }

    /// The simple query protocol: one message, one Sync, safe through a
    /// pooler as it is.
    async fn execute_unprepared(&self, sql: &str) -> Result<ExecResult, DbErr> {
        self.pool.execute_unprepared(sql).await
    }

    async fn query_one_raw(&self, stmt: Statement) -> Result<Option<QueryResult>, DbErr> {
        self.drill().await?;
        alone!(self, query_one_raw(stmt))
    }

    async fn query_all_raw(&self, stmt: Statement) -> Result<Vec<QueryResult>, DbErr> {
        self.drill().await?;
        alone!(self, query_all_raw(stmt))
    }

    fn support_returning(&self) -> bool {
        self.pool.support_returning()
    }
}

type Callback<'c, T, E> = Pin<Box<dyn Future<Output = Result<T, E>> + Send + 'c>>;

#[async_trait::async_trait]
impl TransactionTrait for Db {
    type Transaction = DatabaseTransaction;

    async fn begin(&self) -> Result<DatabaseTransaction, DbErr> {
        self.drill().await?;
        self.pool.begin().await
    }

    async fn begin_with_config(
        &self,
        isolation_level: Option<IsolationLevel>,
        access_mode: Option<AccessMode>,
    ) -> Result<DatabaseTransaction, DbErr> {
        self.drill().await?;
        self.pool.begin_with_config(isolation_level, access_mode).await
    }

    async fn begin_with_options(&self, options: TransactionOptions) -> Result<DatabaseTransaction, DbErr> {
        self.drill().await?;
        self.pool.begin_with_options(options).await
    }

    async fn transaction<F, T, E>(&self, callback: F) -> Result<T, TransactionError<E>>
    where
        F: for<'c> FnOnce(&'c DatabaseTransaction) -> Callback<'c, T, E> + Send,
        T: Send,
        E: std::fmt::Display + std::fmt::Debug + Send,
    {
        self.pool.transaction(callback).await
    }

    async fn transaction_with_config<F, T, E>(
        &self,
        callback: F,
        isolation_level: Option<IsolationLevel>,
        access_mode: Option<AccessMode>,
    ) -> Result<T, TransactionError<E>>
    where
        F: for<'c> FnOnce(&'c DatabaseTransaction) -> Callback<'c, T, E> + Send,
        T: Send,
        E: std::fmt::Display + std::fmt::Debug + Send,
    {
        self.pool.transaction_with_config(callback, isolation_level, access_mode).await
    }
}

/// Opens a pool on the configured database. A SQLite file's folder is created
/// if it is missing.
pub async fn connect(config: &DatabaseConfig) -> Result<Db, DbErr> {
    open(config, config.max_connections, false).await
}

/// [`connect`], opening connections only when first used: a replica that
/// starts while its database is unreachable comes up NOT_SERVING and turns
/// SERVING by itself when the database answers, instead of exiting.
pub async fn connect_lazy(config: &DatabaseConfig) -> Result<Db, DbErr> {
    open(config, config.max_connections, true).await
}

/// A pool of one connection of its own for health's database check, opened
/// when first used: a check that waited in the requests' pool would find it
/// busy under a burst and call a healthy database down — and on Kubernetes
/// every replica would leave its Service at the peak of a show.
pub async fn connect_probe(config: &DatabaseConfig) -> Result<Db, DbErr> {
    open(config, 1, true).await
}

async fn open(config: &DatabaseConfig, max_connections: u32, lazy: bool) -> Result<Db, DbErr> {
    let url = config.url.expose();
    let mut options = ConnectOptions::new(url.clone());
    options
        .acquire_timeout(config.acquire_timeout)
        .connect_timeout(config.acquire_timeout)
        .sqlx_logging(false)
        .connect_lazy(lazy);
    if config.is_postgres() {
        options.max_connections(max_connections).min_connections(0).idle_timeout(config.idle_timeout);
        match config.pooler {
            // The startup parameter `options` carries it.
            Pooler::None => {
                options.statement_timeout(config.statement_timeout);
            }
            // PgBouncer 1.18 refuses `options`; its `connect_query` sets the
            // timeout on each server connection. No statement cache: see `Db`.
            // And no ping at every acquire: through the pooler it takes a
            // server connection, a round trip and a reset query, to learn
            // only that PgBouncer is there. A connection that died meanwhile
            // fails its statement, which is UNAVAILABLE, and is retried.
            Pooler::Transaction => {
                options
                    .map_sqlx_postgres_opts(|opts| opts.statement_cache_capacity(0))
                    .test_before_acquire_if_idle_for(config.idle_timeout / 2);
            }
        }
    } else {
        if let Some(parent) = sqlite_path(url).and_then(Path::parent).filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)
                .map_err(|e| DbErr::Custom(format!("cannot create database folder {}: {e}", parent.display())))?;
        }
        let busy_timeout = config.busy_timeout;
        options
            // One connection is the single writer; see the module docs.
            // (Health's probe is a second one, which only reads.)
            .max_connections(1)
            .min_connections(u32::from(!lazy))
            .map_sqlx_sqlite_opts(move |opts| {
                opts.journal_mode(SqliteJournalMode::Wal)
                    .synchronous(SqliteSynchronous::Normal)
                    .busy_timeout(busy_timeout)
                    .foreign_keys(true)
                    .create_if_missing(true)
            })
            .map_sqlx_sqlite_pool_opts(|pool| pool.after_connect(|conn, _| Box::pin(plan_once(conn))));
    }
    Ok(Db::new(Database::connect(options).await?, config.pooler))
}

/// Turns on SQLite's query planner stability guarantee for `conn`
/// (`SQLITE_DBCONFIG_ENABLE_QPSG`): a prepared statement keeps its plan
/// whatever values are bound to it.
///
/// Without it SQLite 3.51 plans with the values bound to some parameters —
/// `LIMIT ?`, which sea-orm writes for every `.one()` and every page — and so
/// throws away and re-prepares such a statement at each execution, since every
/// execution binds them anew: under a read load, a share of the catalog's CPU
/// (BENCHMARKS.md). caravan's queries are key lookups and keyset pages, whose
/// plans do not depend on the values, so nothing is lost.
async fn plan_once(conn: &mut sea_orm::sqlx::SqliteConnection) -> Result<(), sea_orm::sqlx::Error> {
    match stable_plans(conn, 1).await? {
        true => Ok(()),
        false => {
            Err(sea_orm::sqlx::Error::Configuration("SQLite refused its query planner stability guarantee".into()))
        }
    }
}

/// Sets SQLite's query planner stability guarantee on `conn` (`1` on, `0` off,
/// `-1` leave it) and answers whether it is on.
async fn stable_plans(conn: &mut sea_orm::sqlx::SqliteConnection, set: i32) -> Result<bool, sea_orm::sqlx::Error> {
    let mut handle = conn.lock_handle().await?;
    let db = handle.as_raw_handle().as_ptr();
    let mut now: std::ffi::c_int = -1;
    // SAFETY: `db` is the handle of an open connection, held exclusively
    // through `handle` for the duration of the call. ENABLE_QPSG takes an
    // `int` (the setting) and an `int*` where SQLite writes the resulting one.
    #[allow(unsafe_code)]
    let rc = unsafe {
        libsqlite3_sys::sqlite3_db_config(
            db,
            libsqlite3_sys::SQLITE_DBCONFIG_ENABLE_QPSG,
            set as std::ffi::c_int,
            &raw mut now,
        )
    };
    if rc != libsqlite3_sys::SQLITE_OK {
        return Err(sea_orm::sqlx::Error::Configuration(
            format!("SQLite's query planner stability setting: error code {rc}").into(),
        ));
    }
    Ok(now == 1)
}

/// The file path in a `sqlite://PATH?…` URL, if it names a file.
fn sqlite_path(url: &str) -> Option<&Path> {
    let rest = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next()?;
    (!path.is_empty() && path != ":memory:").then(|| Path::new(path))
}

/// The OpenTelemetry `db.system` name of `c`'s database.
pub fn system(c: &impl sea_orm::ConnectionTrait) -> &'static str {
    match c.get_database_backend() {
        sea_orm::DatabaseBackend::Postgres => "postgresql",
        sea_orm::DatabaseBackend::Sqlite => "sqlite",
        sea_orm::DatabaseBackend::MySql => "mysql",
        _ => "other_sql",
    }
}

/// Counts `error` (`caravan_db_errors_total`) and marks the current store
/// operation's `db` span as failed with it (OpenTelemetry: status ERROR with
/// the error's text, `error.type` its class; no mark if the current span is
/// not a `db` span). Every service's database errors pass through here as
/// they are wrapped, so a trace shows which database operation a failed call
/// failed in, and an alert can watch the rate. The log line is the caller's:
/// it writes one when it turns the error into a status.
pub fn failed(error: &DbErr) {
    let code = database_code(error);
    let error_type = code.as_deref().unwrap_or_else(|| error_class(error));
    let service = crate::telemetry::current_service().map_or("unknown", |s| s.as_str());
    crate::metrics::metrics().db_errors.with_label_values(&[service, error_type]).inc();
    let span = tracing::Span::current();
    if span.metadata().is_none_or(|m| m.name() != "db") {
        return;
    }
    // A description is an error status (see `telemetry`'s span layer).
    span.record("otel.status_description", crate::error::chain(error).as_str());
    span.record("error.type", error_type);
    if let Some(code) = &code {
        span.record("db.response.status_code", code.as_str());
    }
}

/// Whether `error` may pass by itself — the connection was lost or never
/// made, the server is shutting down or out of connections, the statement
/// ran out of time, a serialization failure or deadlock, SQLite busy — so
/// that the same call, retried, may succeed. A partner told `UNAVAILABLE`
/// retries with the same request id and converges; `INTERNAL` is for bugs.
pub fn is_transient(error: &DbErr) -> bool {
    use sea_orm::{RuntimeErr, sqlx};
    match error {
        DbErr::ConnectionAcquire(_) | DbErr::Conn(_) => true,
        DbErr::Exec(RuntimeErr::SqlxError(e)) | DbErr::Query(RuntimeErr::SqlxError(e)) => match e.as_ref() {
            sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::WorkerCrashed
            | sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::Protocol(_) => true,
            sqlx::Error::Database(_) => database_code(error).is_some_and(|code| transient_code(&code)),
            _ => false,
        },
        _ => false,
    }
}

/// Database codes of failures that pass: PostgreSQL's SQLSTATE classes 08
/// (connection), 53 (insufficient resources), 57P0x (shutting down,
/// starting), 57014 (statement timeout), 40001 and 40P01 (serialization,
/// deadlock); SQLite's busy and locked result codes.
fn transient_code(code: &str) -> bool {
    code.starts_with("08")
        || code.starts_with("53")
        || code.starts_with("57P0")
        || matches!(code, "57014" | "40001" | "40P01")
        || matches!(code.parse::<u32>().map(|c| c & 0xff), Ok(5 | 6))
}

/// The database's own code for `error`, if it sent one: the SQLSTATE on
/// PostgreSQL (`40001`, `23505`), the extended result code on SQLite
/// (`5` busy, `2067` unique).
fn database_code(error: &DbErr) -> Option<String> {
    use sea_orm::{RuntimeErr, sqlx};
    match error {
        DbErr::Conn(RuntimeErr::SqlxError(e))
        | DbErr::Exec(RuntimeErr::SqlxError(e))
        | DbErr::Query(RuntimeErr::SqlxError(e)) => match e.as_ref() {
            sqlx::Error::Database(db) => db.code().map(|c| c.into_owned()),
            _ => None,
        },
        _ => None,
    }
}

/// A class of error with no database code: what failed, in a few words
/// (a low-cardinality `error.type`).
fn error_class(error: &DbErr) -> &'static str {
    use sea_orm::{ConnAcquireErr, RuntimeErr, sqlx};
    match error {
        DbErr::ConnectionAcquire(ConnAcquireErr::Timeout) => "pool_timeout",
        DbErr::ConnectionAcquire(_) => "connection_closed",
        DbErr::Conn(_) => "connection",
        DbErr::Exec(RuntimeErr::SqlxError(e)) | DbErr::Query(RuntimeErr::SqlxError(e)) => match e.as_ref() {
            sqlx::Error::PoolTimedOut => "pool_timeout",
            sqlx::Error::PoolClosed | sqlx::Error::WorkerCrashed => "connection_closed",
            sqlx::Error::Io(_) | sqlx::Error::Tls(_) | sqlx::Error::Protocol(_) => "connection",
            sqlx::Error::RowNotFound => "row_not_found",
            sqlx::Error::ColumnDecode { .. } | sqlx::Error::Decode(_) | sqlx::Error::TypeNotFound { .. } => "decode",
            _ => "query",
        },
        DbErr::Exec(_) | DbErr::Query(_) => "query",
        DbErr::RecordNotFound(_) => "record_not_found",
        DbErr::RecordNotInserted => "record_not_inserted",
        DbErr::RecordNotUpdated => "record_not_updated",
        DbErr::Type(_) | DbErr::TryIntoErr { .. } | DbErr::ConvertFromU64(_) | DbErr::Json(_) => "decode",
        _ => "other",
    }
}

/// `$n` on PostgreSQL, `?` elsewhere, for hand-written statements. SQLite's
/// `?` binds in order, so a value used twice must be passed twice.
pub fn placeholder(backend: sea_orm::DatabaseBackend, n: usize) -> String {
    match backend {
        sea_orm::DatabaseBackend::Postgres => format!("${n}"),
        _ => "?".to_owned(),
    }
}

/// Runs a hand-written statement with `$n` placeholders (PostgreSQL and, via
/// sqlx, SQLite both bind them by number), returning the rows it changed.
pub async fn exec(c: &impl sea_orm::ConnectionTrait, sql: &str, values: Vec<sea_orm::Value>) -> Result<u64, DbErr> {
    Ok(c.execute_raw(sea_orm::Statement::from_sql_and_values(c.get_database_backend(), sql, values))
        .await?
        .rows_affected())
}

/// Runs a hand-written query (or a statement with `RETURNING`) with `$n`
/// placeholders.
pub async fn query(
    c: &impl sea_orm::ConnectionTrait,
    sql: &str,
    values: Vec<sea_orm::Value>,
) -> Result<Vec<sea_orm::QueryResult>, DbErr> {
    c.query_all_raw(sea_orm::Statement::from_sql_and_values(c.get_database_backend(), sql, values)).await
}

/// `$from, $from+1, …` for `n` values (an `IN (…)` list).
pub fn params(from: usize, n: usize) -> String {
    (from..from + n).map(|i| format!("${i}")).collect::<Vec<_>>().join(", ")
}

/// Most rows one multi-row statement carries (see [`row_chunks`]).
pub const MAX_ROWS_PER_STATEMENT: usize = 32;

/// Splits `n` rows into runs for multi-row statements, largest first, each a
/// power of two of at most [`MAX_ROWS_PER_STATEMENT`] rows: any batch is then
/// one of six statement shapes, each prepared once per connection (rather
/// than one new statement per batch size, churning the statement cache), and
/// every message stays far below the 16 KiB a fresh TCP socket buffers.
/// The second matters because the PostgreSQL driver (sqlx 0.9.0) leaves
/// Nagle's algorithm on: a message the kernel has to send in two writes
/// waits ~40 ms for the server's delayed ACK before its tail goes out.
pub fn row_chunks(n: usize) -> impl Iterator<Item = std::ops::Range<usize>> {
    let mut start = 0;
    std::iter::from_fn(move || {
        let left = n - start;
        (left > 0).then(|| {
            let size = 1 << left.min(MAX_ROWS_PER_STATEMENT).ilog2();
            start += size;
            start - size..start
        })
    })
}

/// A read-only transaction whose statements all see one snapshot, for
/// reports and audits that run several queries during live traffic:
/// REPEATABLE READ on PostgreSQL; on SQLite a read transaction already is
/// one snapshot (WAL), and the isolation settings are not supported.
pub async fn read_snapshot(db: &Db) -> Result<DatabaseTransaction, DbErr> {
    match db.get_database_backend() {
        sea_orm::DatabaseBackend::Postgres => {
            db.begin_with_config(Some(sea_orm::IsolationLevel::RepeatableRead), Some(sea_orm::AccessMode::ReadOnly))
                .await
        }
        _ => db.begin().await,
    }
}

/// The URL of database `name` on the PostgreSQL server of `server_url`,
/// created if it does not exist yet (`caravan up --postgres`: one database
/// per service on a development server).
pub async fn ensure_postgres_database(server_url: &str, name: &str) -> Result<String, DbErr> {
    if !name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_') {
        return Err(DbErr::Custom(format!("`{name}` is not a plain database name")));
    }
    let with = |database: &str| with_database(server_url, database).map_err(DbErr::Custom);
    let admin = Database::connect(with("postgres")?).await?;
    let exists = admin
        .query_one_raw(sea_orm::Statement::from_string(
            admin.get_database_backend(),
            format!("SELECT 1 FROM pg_database WHERE datname = '{name}'"),
        ))
        .await?
        .is_some();
    if !exists {
        admin.execute_unprepared(&format!("CREATE DATABASE \"{name}\"")).await?;
    }
    admin.close().await?;
    with(name)
}

/// The URL of database `database` on the server of `server_url`.
pub fn with_database(server_url: &str, database: &str) -> Result<String, String> {
    let mut url = url::Url::parse(server_url).map_err(|e| format!("`{server_url}` is not a URL: {e}"))?;
    url.set_path(&format!("/{database}"));
    Ok(url.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_that_pass_are_told_from_bugs() {
        use std::sync::Arc;

        use sea_orm::{RuntimeErr, sqlx};
        let sqlx = |e: sqlx::Error| DbErr::Exec(RuntimeErr::SqlxError(Arc::new(e)));
        let reset = std::io::Error::new(std::io::ErrorKind::ConnectionReset, "reset by peer");
        for transient in [
            DbErr::ConnectionAcquire(sea_orm::ConnAcquireErr::Timeout),
            DbErr::Conn(RuntimeErr::Internal("refused".into())),
            sqlx(sqlx::Error::Io(reset)),
            sqlx(sqlx::Error::PoolClosed),
            sqlx(sqlx::Error::Protocol("unexpected end".into())),
        ] {
            assert!(is_transient(&transient), "{transient:?}");
        }
        for bug in [
            sqlx(sqlx::Error::RowNotFound),
            DbErr::Custom("a bug".into()),
            DbErr::Exec(RuntimeErr::Internal("syntax".into())),
        ] {
            assert!(!is_transient(&bug), "{bug:?}");
        }
        // Connection lost, admin shutdown, statement timeout, serialization,
        // deadlock, too many connections; SQLite busy (and busy snapshot), locked.
        for code in ["08006", "57P01", "57P03", "57014", "40001", "40P01", "53300", "5", "517", "6"] {
            assert!(transient_code(code), "{code}");
        }
        // Unique and foreign-key violations, a syntax error; SQLite's constraint.
        for code in ["23505", "23503", "42601", "2067", "19"] {
            assert!(!transient_code(code), "{code}");
        }
    }

    #[tokio::test]
    async fn sqlite_connections_keep_one_plan_per_statement() {
        use sea_orm::sqlx::{ConnectOptions as _, sqlite::SqliteConnectOptions};
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("plans.db");
        let db = connect(&DatabaseConfig::sqlite_file(&path)).await.unwrap();
        let mut pooled = db.pool().get_sqlite_connection_pool().acquire().await.unwrap();
        assert!(stable_plans(&mut pooled, -1).await.unwrap(), "a pooled connection re-plans with bound values");

        // SQLite's default, which the pool changes.
        let mut plain = SqliteConnectOptions::new().filename(&path).connect().await.unwrap();
        assert!(!stable_plans(&mut plain, -1).await.unwrap());
    }

    #[test]
    fn row_chunks_cover_every_row_once_in_few_shapes() {
        for n in 0..300 {
            let chunks: Vec<_> = row_chunks(n).collect();
            let mut next = 0;
            for chunk in &chunks {
                assert_eq!(chunk.start, next, "{n} rows: contiguous");
                assert!(chunk.len().is_power_of_two() && chunk.len() <= MAX_ROWS_PER_STATEMENT, "{n}: {chunk:?}");
                next = chunk.end;
            }
            assert_eq!(next, n, "{n} rows: all covered");
            assert!(chunks.windows(2).all(|w| w[0].len() >= w[1].len()), "{n}: largest first");
        }
        assert_eq!(row_chunks(45).map(|c| c.len()).collect::<Vec<_>>(), [32, 8, 4, 1]);
    }
}
