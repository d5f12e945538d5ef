//! AIP-155 request ids, one mechanism for every mutating RPC.
//!
//! Each service keeps, in its own database, `(principal, method, request_id)
//! → request hash, outcome, time`. Only final outcomes are stored: a success
//! or a deterministic refusal (`INVALID_ARGUMENT`, `FAILED_PRECONDITION`,
//! `NOT_FOUND`, …). A transient failure (`UNAVAILABLE`, `DEADLINE_EXCEEDED`,
//! `INTERNAL`, …) removes the claim, so a retry runs again.
//!
//! A repeat of a finished request gets the stored outcome, byte for byte. A
//! repeat while the first call is still running **waits** for it (up to
//! [`IdempotencyConfig::wait`], never past its own deadline) and then gets
//! `ABORTED` with reason `REQUEST_IN_PROGRESS`, to retry. A repeat with a
//! different body gets `ALREADY_EXISTS` with reason `REQUEST_ID_REUSED`. A
//! first call that died (its process crashed) leaves a claim whose lease
//! expires, after which a repeat takes it over and runs.
//!
//! Records are kept for [`IdempotencyConfig::retention`] (24 h by default)
//! and then purged in bounded batches.

use std::{collections::HashMap, future::Future, time::Duration};

use prost::Message;
use sea_orm::{ConnectionTrait, DatabaseConnection, DbErr, SqlErr, Statement, Value};
use sea_orm_migration::{
    MigrationName, MigrationTrait, SchemaManager, async_trait,
    prelude::{Index, Table},
    schema::{big_integer, blob_null, integer_null, string_len, text_null},
};
use sha2::{Digest as _, Sha256};
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt as _};
use tracing::field::Empty;

use crate::{
    db::placeholder,
    deadline,
    error::{ERROR_DOMAIN, invalid_argument},
    time::{Micros, SharedClock},
};

/// The principal of every caller until partner authentication exists.
pub const ANONYMOUS: &str = "anonymous";

/// Longest accepted request id.
pub const MAX_REQUEST_ID: usize = 128;

/// Settings.
#[derive(Debug, Clone)]
pub struct IdempotencyConfig {
    /// How long outcomes are kept (at least 24 h in production).
    pub retention: Duration,
    /// How long a running first call holds its claim before a repeat may take
    /// it over (longer than any call may run).
    pub lease: Duration,
    /// How long a repeat waits for a running first call before `ABORTED`.
    pub wait: Duration,
}

impl Default for IdempotencyConfig {
    fn default() -> Self {
        IdempotencyConfig {
            retention: Duration::from_secs(24 * 3600),
            lease: Duration::from_secs(60),
            wait: Duration::from_secs(5),
        }
    }
}

/// Which request a record is for.
#[derive(Debug, Clone, Copy)]
pub struct Scope<'a> {
    /// Who called (ids are per caller: two partners may use the same one).
    pub principal: &'a str,
    /// Full gRPC method name.
    pub method: &'a str,
    /// The request id the caller sent.
    pub request_id: &'a str,
}

/// The mechanism, over one service's database.
#[derive(Debug, Clone)]
pub struct Idempotency {
    db: DatabaseConnection,
    clock: SharedClock,
    config: IdempotencyConfig,
}

/// A stored record, as read.
struct Record {
    request_hash: String,
    state: String,
    owner: String,
    lease_until: i64,
    code: Option<i32>,
    message: Option<String>,
    details: Option<Vec<u8>>,
    response: Option<Vec<u8>>,
}

/// What the first step decided.
enum Claim {
    /// We hold the claim: run the handler.
    Run { owner: String },
    /// Answer this without running.
    Answer(Result<Vec<u8>, Status>),
}

impl Idempotency {
    /// The mechanism on `db`.
    pub fn new(db: DatabaseConnection, clock: SharedClock, config: IdempotencyConfig) -> Self {
        Idempotency { db, clock, config }
    }

    /// [`Self::run`] for a gRPC request: the principal is its authenticated
    /// caller, so two callers' request ids never meet.
    pub async fn run_for<Req, Resp, F, Fut>(
        &self,
        request: &tonic::Request<Req>,
        method: &str,
        request_id: &str,
        handler: F,
    ) -> Result<Resp, Status>
    where
        Req: Message,
        Resp: Message + Default,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Resp, Status>>,
    {
        let principal = crate::auth::principal(request)?.id.clone();
        let scope = Scope { principal: &principal, method, request_id };
        self.run(scope, request.get_ref(), handler).await
    }

    /// Runs `handler` at most once per `(principal, method, request_id)` and
    /// request body; see the module docs. An empty request id runs it plainly.
    pub async fn run<Req, Resp, F, Fut>(&self, scope: Scope<'_>, request: &Req, handler: F) -> Result<Resp, Status>
    where
        Req: Message,
        Resp: Message + Default,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Resp, Status>>,
    {
        if scope.request_id.is_empty() {
            return handler().await;
        }
        if scope.request_id.chars().count() > MAX_REQUEST_ID || scope.request_id.chars().any(char::is_control) {
            return Err(invalid_argument(
                "request_id",
                format!("must be at most {MAX_REQUEST_ID} printable characters (a UUID is recommended)"),
            ));
        }
        let hash = request_hash(scope.method, request);
        let owner = match self.claim(scope, &hash).await? {
            Claim::Answer(Ok(bytes)) => {
                return Resp::decode(bytes.as_slice())
                    .map_err(|e| crate::error::internal("decoding a stored response", &e));
            }
            Claim::Answer(Err(status)) => return Err(status),
            Claim::Run { owner } => owner,
        };
        let outcome = handler().await;
        match &outcome {
            Ok(response) => self.finish(scope, &owner, Code::Ok, "", &[], Some(response.encode_to_vec())).await,
            Err(status) if is_final(status.code()) => {
                self.finish(scope, &owner, status.code(), status.message(), status.details(), None).await
            }
            Err(_) => self.abandon(scope, &owner).await,
        }
        .map_err(|e| crate::error::database("recording a request outcome", e))?;
        outcome
    }

    async fn claim(&self, scope: Scope<'_>, hash: &str) -> Result<Claim, Status> {
        let waited_until = tokio::time::Instant::now()
            + deadline::remaining()
                .map_or(self.config.wait, |left| left.saturating_sub(Duration::from_millis(50)).min(self.config.wait));
        loop {
            let owner = uuid::Uuid::new_v4().simple().to_string();
            let now = self.clock.now();
            match self.insert(scope, hash, &owner, now).await {
                Ok(()) => return Ok(Claim::Run { owner }),
                Err(e) if matches!(e.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) => {}
                Err(e) => return Err(crate::error::database("claiming a request id", e)),
            }
            let Some(record) = self.read(scope).await.map_err(|e| crate::error::database("reading a request id", e))?
            else {
                // The first call failed transiently and let go: try again.
                continue;
            };
            if record.request_hash != hash {
                return Err(reused(scope));
            }
            if record.state == "done" {
                return Ok(Claim::Answer(replay(record)));
            }
            if record.lease_until <= now.0 {
                // The first call's process died: take its claim over.
                if self
                    .take_over(scope, &record.owner, &owner, now)
                    .await
                    .map_err(|e| crate::error::database("taking over a request id", e))?
                {
                    return Ok(Claim::Run { owner });
                }
                continue;
            }
            if tokio::time::Instant::now() >= waited_until {
                let mut details = ErrorDetails::with_error_info(
                    "REQUEST_IN_PROGRESS",
                    ERROR_DOMAIN,
                    HashMap::from([("request_id".to_owned(), scope.request_id.to_owned())]),
                );
                details.set_retry_info(Some(Duration::from_millis(500)));
                return Err(Status::with_error_details(
                    Code::Aborted,
                    "the first request with this request_id is still running; retry",
                    details,
                ));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Runs one statement; returns the rows it changed. A failure marks the
    /// operation's span, except the claim's expected conflict (the request
    /// id is taken: a retry, answered from the record).
    async fn exec<const N: usize>(&self, sql: String, values: [Value; N]) -> Result<u64, DbErr> {
        let statement = Statement::from_sql_and_values(self.db.get_database_backend(), sql, values);
        match self.db.execute_raw(statement).await {
            Ok(result) => Ok(result.rows_affected()),
            Err(e) => {
                if !matches!(e.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) {
                    crate::db::failed(&e);
                }
                Err(e)
            }
        }
    }

    fn p(&self, n: usize) -> String {
        placeholder(self.db.get_database_backend(), n)
    }

    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "idempotency insert", otel.kind = "client", otel.status_description = Empty, error.type = Empty, db.response.status_code = Empty, db.system = crate::db::system(&self.db), db.operation.name = "insert"))]
    async fn insert(&self, scope: Scope<'_>, hash: &str, owner: &str, now: Micros) -> Result<(), DbErr> {
        let sql = format!(
            "INSERT INTO idempotency_records (principal, method, request_id, request_hash, state, owner, lease_until, create_time) \
             VALUES ({}, {}, {}, {}, 'running', {}, {}, {})",
            self.p(1),
            self.p(2),
            self.p(3),
            self.p(4),
            self.p(5),
            self.p(6),
            self.p(7)
        );
        let values = [
            Value::from(scope.principal),
            Value::from(scope.method),
            Value::from(scope.request_id),
            Value::from(hash),
            Value::from(owner),
            Value::from(now.plus(self.config.lease).0),
            Value::from(now.0),
        ];
        self.exec(sql, values).await.map(|_| ())
    }

    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "idempotency read", otel.kind = "client", otel.status_description = Empty, error.type = Empty, db.response.status_code = Empty, db.system = crate::db::system(&self.db), db.operation.name = "read"))]
    async fn read(&self, scope: Scope<'_>) -> Result<Option<Record>, DbErr> {
        let sql = format!(
            "SELECT request_hash, state, owner, lease_until, code, message, details, response FROM idempotency_records \
             WHERE principal = {} AND method = {} AND request_id = {}",
            self.p(1),
            self.p(2),
            self.p(3)
        );
        let row = self
            .db
            .query_one_raw(Statement::from_sql_and_values(
                self.db.get_database_backend(),
                sql,
                [Value::from(scope.principal), Value::from(scope.method), Value::from(scope.request_id)],
            ))
            .await
            .inspect_err(crate::db::failed)?;
        row.map(|row| {
            Ok(Record {
                request_hash: row.try_get_by_index(0)?,
                state: row.try_get_by_index(1)?,
                owner: row.try_get_by_index(2)?,
                lease_until: row.try_get_by_index(3)?,
                code: row.try_get_by_index(4)?,
                message: row.try_get_by_index(5)?,
                details: row.try_get_by_index(6)?,
                response: row.try_get_by_index(7)?,
            })
        })
        .transpose()
        .inspect_err(crate::db::failed)
    }

    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "idempotency take_over", otel.kind = "client", otel.status_description = Empty, error.type = Empty, db.response.status_code = Empty, db.system = crate::db::system(&self.db), db.operation.name = "take_over"))]
    async fn take_over(&self, scope: Scope<'_>, old_owner: &str, owner: &str, now: Micros) -> Result<bool, DbErr> {
        let sql = format!(
            "UPDATE idempotency_records SET owner = {}, lease_until = {} \
             WHERE principal = {} AND method = {} AND request_id = {} AND state = 'running' AND owner = {}",
            self.p(1),
            self.p(2),
            self.p(3),
            self.p(4),
            self.p(5),
            self.p(6)
        );
        let values = [
            Value::from(owner),
            Value::from(now.plus(self.config.lease).0),
            Value::from(scope.principal),
            Value::from(scope.method),
            Value::from(scope.request_id),
            Value::from(old_owner),
        ];
        Ok(self.exec(sql, values).await? == 1)
    }

    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "idempotency finish", otel.kind = "client", otel.status_description = Empty, error.type = Empty, db.response.status_code = Empty, db.system = crate::db::system(&self.db), db.operation.name = "finish"))]
    async fn finish(
        &self,
        scope: Scope<'_>,
        owner: &str,
        code: Code,
        message: &str,
        details: &[u8],
        response: Option<Vec<u8>>,
    ) -> Result<(), DbErr> {
        let sql = format!(
            "UPDATE idempotency_records SET state = 'done', code = {}, message = {}, details = {}, response = {} \
             WHERE principal = {} AND method = {} AND request_id = {} AND owner = {}",
            self.p(1),
            self.p(2),
            self.p(3),
            self.p(4),
            self.p(5),
            self.p(6),
            self.p(7),
            self.p(8)
        );
        let values = [
            Value::from(code as i32),
            Value::from(message),
            Value::from(details.to_vec()),
            Value::Bytes(response),
            Value::from(scope.principal),
            Value::from(scope.method),
            Value::from(scope.request_id),
            Value::from(owner),
        ];
        self.exec(sql, values).await.map(|_| ())
    }

    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "idempotency abandon", otel.kind = "client", otel.status_description = Empty, error.type = Empty, db.response.status_code = Empty, db.system = crate::db::system(&self.db), db.operation.name = "abandon"))]
    async fn abandon(&self, scope: Scope<'_>, owner: &str) -> Result<(), DbErr> {
        let sql = format!(
            "DELETE FROM idempotency_records WHERE principal = {} AND method = {} AND request_id = {} AND owner = {} AND state = 'running'",
            self.p(1),
            self.p(2),
            self.p(3),
            self.p(4)
        );
        let values = [
            Value::from(scope.principal),
            Value::from(scope.method),
            Value::from(scope.request_id),
            Value::from(owner),
        ];
        self.exec(sql, values).await.map(|_| ())
    }

    /// Deletes up to `batch` finished records older than the retention;
    /// returns how many. Run it periodically (`worker::spawn_periodic`).
    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "idempotency purge", otel.kind = "client", otel.status_description = Empty, error.type = Empty, db.response.status_code = Empty, db.system = crate::db::system(&self.db), db.operation.name = "purge"))]
    pub async fn purge(&self, batch: u64) -> Result<u64, DbErr> {
        let cutoff =
            Micros(self.clock.now().0.saturating_sub(
                <i64 as TryFrom<u128>>::try_from(self.config.retention.as_micros()).unwrap_or(i64::MAX),
            ));
        let backend = self.db.get_database_backend();
        // Row-value IN works on PostgreSQL and on SQLite ≥ 3.15.
        let sql = format!(
            "DELETE FROM idempotency_records WHERE (principal, method, request_id) IN \
             (SELECT principal, method, request_id FROM idempotency_records \
              WHERE create_time < {} AND state = 'done' ORDER BY create_time LIMIT {batch})",
            placeholder(backend, 1)
        );
        let result = self
            .db
            .execute_raw(Statement::from_sql_and_values(backend, sql, [Value::from(cutoff.0)]))
            .await
            .inspect_err(crate::db::failed)?;
        Ok(result.rows_affected())
    }
}

/// SHA-256 of the method and the encoded request: equal bodies hash equal.
fn request_hash<Req: Message>(method: &str, request: &Req) -> String {
    let mut hasher = Sha256::new();
    hasher.update(method.as_bytes());
    hasher.update([0]);
    hasher.update(request.encode_to_vec());
    hex::encode(hasher.finalize())
}

/// Outcomes worth replaying: the same request would get the same answer.
fn is_final(code: Code) -> bool {
    matches!(
        code,
        Code::Ok
            | Code::InvalidArgument
            | Code::NotFound
            | Code::AlreadyExists
            | Code::PermissionDenied
            | Code::FailedPrecondition
            | Code::OutOfRange
            | Code::Unimplemented
            | Code::Unauthenticated
    )
}

fn replay(record: Record) -> Result<Vec<u8>, Status> {
    let code = Code::from_i32(record.code.unwrap_or(Code::Unknown as i32));
    if code == Code::Ok {
        return Ok(record.response.unwrap_or_default());
    }
    Err(Status::with_details(code, record.message.unwrap_or_default(), record.details.unwrap_or_default().into()))
}

fn reused(scope: Scope<'_>) -> Status {
    let metadata = HashMap::from([("request_id".to_owned(), scope.request_id.to_owned())]);
    Status::with_error_details(
        Code::AlreadyExists,
        "this request_id was already used with a different request; use a new request_id for a new request",
        ErrorDetails::with_error_info("REQUEST_ID_REUSED", ERROR_DOMAIN, metadata),
    )
}

/// The migration creating `idempotency_records`; every service that uses the
/// mechanism lists it among its own migrations.
pub fn migration() -> Box<dyn MigrationTrait> {
    Box::new(CreateIdempotencyRecords)
}

struct CreateIdempotencyRecords;

impl MigrationName for CreateIdempotencyRecords {
    fn name(&self) -> &str {
        "m20261129_100000_create_idempotency_records"
    }
}

#[allow(elided_lifetimes_in_paths)] // async_trait: the lifetime must stay elided.
#[async_trait::async_trait]
impl MigrationTrait for CreateIdempotencyRecords {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("idempotency_records")
                    .col(string_len("principal", 128))
                    .col(string_len("method", 200))
                    .col(string_len("request_id", MAX_REQUEST_ID as u32))
                    .col(string_len("request_hash", 64))
                    .col(string_len("state", 16))
                    .col(string_len("owner", 40))
                    .col(big_integer("lease_until"))
                    .col(integer_null("code"))
                    .col(text_null("message"))
                    .col(blob_null("details"))
                    .col(blob_null("response"))
                    .col(big_integer("create_time"))
                    .primary_key(Index::create().col("principal").col("method").col("request_id"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idempotency_records_by_time")
                    .table("idempotency_records")
                    .col("create_time")
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table("idempotency_records").to_owned()).await
    }
}
