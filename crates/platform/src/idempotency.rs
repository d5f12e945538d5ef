//! AIP-155 request ids, one mechanism for every mutating RPC.
//!
//! Each service keeps, in its own database, `(principal, method, request_id)
//! → request hash, outcome, time`. Only final outcomes are stored: a success
//! or a deterministic refusal (`INVALID_ARGUMENT`, `FAILED_PRECONDITION`,
//! `NOT_FOUND`, …). A transient failure (`UNAVAILABLE`, `DEADLINE_EXCEEDED`,
//! `INTERNAL`, …) ends the claim's lease at once, so a retry takes it over and
//! runs again — and the record still knows the request (its hash), so a
//! retry is never mistaken for a new request. When the database cannot be
//! reached to say so, it is said again in the background until it can.
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
//!
//! A refusal that depends on state that moves (`FAILED_PRECONDITION`: sold
//! out, a limit, a show not live yet) is not an outcome either: storing it
//! would cost a write for every caller turned away, and a retry re-evaluates
//! it instead.
//!
//! A hot handler can fold the mechanism into its own transactions instead of
//! paying two commits of its own ([`Idempotency::claim_for`]): it writes the
//! [`Claim`] in the transaction that starts its work and the outcome in the
//! one that ends it; when the claim is taken (a retry, a concurrent repeat),
//! it falls back to [`Idempotency::run_for`], which waits, replays or takes
//! over as above. [`Idempotency::seen`] tells, without writing, whether a
//! request id is new — batched across concurrent callers — so a refusal known
//! from memory costs no write either.

use std::{collections::HashMap, future::Future, time::Duration};

use caravan_macros::store_op;
use prost::Message;
use sea_orm::{ConnectionTrait, DbErr, FromQueryResult, SqlErr, Statement, Value};
use sea_orm_migration::{
    MigrationName, MigrationTrait, SchemaManager, async_trait,
    prelude::{Index, Table},
    schema::{big_integer, blob_null, integer_null, string_len, text_null},
};
use sha2::{Digest as _, Sha256};
use tonic::{Code, Status};
use tonic_types::StatusExt as _;

use crate::{
    batch::Batcher,
    db::{Db, placeholder},
    deadline,
    error::invalid_argument,
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
    db: Db,
    clock: SharedClock,
    config: IdempotencyConfig,
    lookups: Batcher<Key, Result<Option<String>, Status>>,
}

/// `(principal, method, request_id)`: a record's key.
type Key = (String, &'static str, String);

/// Most request ids one batched lookup reads.
const LOOKUP_BATCH: usize = 64;

/// What the record of a request id says of a request, without running it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seen {
    /// No record: the id has not been used (or its record was purged).
    New,
    /// A record of this very request (done or running).
    Same,
    /// A record of another request under the same id.
    Reused,
}

/// A request id's claim, written by the handler in its own transaction
/// ([`Idempotency::claim_for`]).
#[derive(Debug, Clone)]
pub struct Claim {
    principal: String,
    method: &'static str,
    request_id: String,
    hash: String,
    owner: String,
    now: Micros,
    lease_until: Micros,
}

impl Claim {
    /// Writes the claim (running, leased) in `c`'s transaction; `false` if
    /// the request id already has a record — then roll back, and go through
    /// [`Idempotency::run_for`].
    pub async fn insert(&self, c: &impl ConnectionTrait) -> Result<bool, DbErr> {
        let inserted = crate::db::exec(
            c,
            "INSERT INTO idempotency_records \
             (principal, method, request_id, request_hash, state, owner, lease_until, create_time) \
             VALUES ($1, $2, $3, $4, 'running', $5, $6, $7) ON CONFLICT DO NOTHING",
            vec![
                Value::from(self.principal.as_str()),
                Value::from(self.method),
                Value::from(self.request_id.as_str()),
                Value::from(self.hash.as_str()),
                Value::from(self.owner.as_str()),
                Value::from(self.lease_until.0),
                Value::from(self.now.0),
            ],
        )
        .await?;
        Ok(inserted == 1)
    }

    /// Records the success `response` (the encoded reply) in `c`'s
    /// transaction, the one that commits the work.
    pub async fn finish(&self, c: &impl ConnectionTrait, response: Vec<u8>) -> Result<(), DbErr> {
        crate::db::exec(
            c,
            "UPDATE idempotency_records SET state = 'done', code = $1, message = '', details = $2, response = $3 \
             WHERE principal = $4 AND method = $5 AND request_id = $6 AND owner = $7",
            vec![
                Value::from(Code::Ok as i32),
                Value::from(Vec::<u8>::new()),
                Value::Bytes(Some(response)),
                Value::from(self.principal.as_str()),
                Value::from(self.method),
                Value::from(self.request_id.as_str()),
                Value::from(self.owner.as_str()),
            ],
        )
        .await
        .map(drop)
    }

    /// Lets go of the claim for a refusal, in `c`'s transaction: the
    /// request leaves no record, and the next attempt is a new request.
    pub async fn release(&self, c: &impl ConnectionTrait) -> Result<(), DbErr> {
        crate::db::exec(
            c,
            "DELETE FROM idempotency_records \
             WHERE principal = $1 AND method = $2 AND request_id = $3 AND owner = $4 AND state = 'running'",
            vec![
                Value::from(self.principal.as_str()),
                Value::from(self.method),
                Value::from(self.request_id.as_str()),
                Value::from(self.owner.as_str()),
            ],
        )
        .await
        .map(drop)
    }
}

/// Ends a running claim's lease now (its owner failed and let go): the next
/// attempt takes it over. The record, and its request hash, stay.
async fn expire(
    db: &impl ConnectionTrait,
    principal: &str,
    method: &str,
    request_id: &str,
    owner: &str,
) -> Result<(), DbErr> {
    crate::db::exec(
        db,
        "UPDATE idempotency_records SET lease_until = 0 \
         WHERE principal = $1 AND method = $2 AND request_id = $3 AND owner = $4 AND state = 'running'",
        vec![Value::from(principal), Value::from(method), Value::from(request_id), Value::from(owner)],
    )
    .await
    .map(drop)
}

/// A stored record, as read (columns by name).
#[derive(FromQueryResult)]
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
enum Decision {
    /// We hold the claim: run the handler.
    Run { owner: String },
    /// Answer this without running.
    Answer(Result<Vec<u8>, Status>),
}

impl Idempotency {
    /// The mechanism on `db`.
    pub fn new(db: Db, clock: SharedClock, config: IdempotencyConfig) -> Self {
        let reader = db.clone();
        let lookups = Batcher::new("idempotency.lookup_batch", LOOKUP_BATCH, move |keys: Vec<Key>| {
            let reader = reader.clone();
            async move { lookup(&reader, keys).await }
        });
        Idempotency { db, clock, config, lookups }
    }

    /// A claim on `request`'s id for a handler that writes it itself (see
    /// the module docs); `None` without a request id. The id is validated
    /// as in [`Self::run`].
    pub fn claim_for<Req: Message>(
        &self,
        request: &tonic::Request<Req>,
        method: &'static str,
        request_id: &str,
    ) -> Result<Option<Claim>, Status> {
        if request_id.is_empty() {
            return Ok(None);
        }
        check_request_id(request_id)?;
        let principal = crate::auth::principal(request)?.id.clone();
        let now = self.clock.now();
        Ok(Some(Claim {
            principal,
            method,
            request_id: request_id.to_owned(),
            hash: request_hash(method, request.get_ref()),
            owner: uuid::Uuid::new_v4().simple().to_string(),
            now,
            lease_until: now.plus(self.config.lease),
        }))
    }

    /// Whether `claim`'s request id has a record, and of which request: one
    /// read, shared by the callers asking at the same time.
    pub async fn seen(&self, claim: &Claim) -> Result<Seen, Status> {
        let key = (claim.principal.clone(), claim.method, claim.request_id.clone());
        let stored =
            self.lookups.submit(key).await.map_err(|e| crate::error::internal("looking up a request id", &e))??;
        Ok(match stored {
            None => Seen::New,
            Some(hash) if hash == claim.hash => Seen::Same,
            Some(_) => Seen::Reused,
        })
    }

    /// Lets go of `claim` after a failure (a handler that gave up, a step
    /// that failed): its lease ends now, so the retry the failure asks for
    /// takes it over and runs at once, while the record still says this
    /// request was seen ([`Self::seen`]: an order it may have written is
    /// found by its retry). When the database cannot be reached, it is
    /// tried again in the background until it can.
    pub async fn release(&self, claim: &Claim) {
        let (principal, request_id, owner) = (&claim.principal, &claim.request_id, &claim.owner);
        if let Err(e) = expire(&self.db, principal, claim.method, request_id, owner).await {
            crate::db::failed(&e);
            tracing::warn!(error = %crate::error::chain(&e), "letting go of a request id; trying again in the background");
            self.let_go_later(principal.clone(), claim.method.to_owned(), request_id.clone(), owner.clone());
        }
    }

    /// Keeps trying to expire a running claim the call could not let go of
    /// (its database was unreachable), so that once the database is back a
    /// retry runs at once instead of waiting out the lease (twice the call
    /// limit) with `REQUEST_IN_PROGRESS`. Gives up when the lease would have
    /// ended anyway.
    fn let_go_later(&self, principal: String, method: String, request_id: String, owner: String) {
        let (db, lease) = (self.db.clone(), self.config.lease);
        tokio::spawn(async move {
            let until = tokio::time::Instant::now() + lease;
            while tokio::time::Instant::now() < until {
                tokio::time::sleep(Duration::from_millis(250)).await;
                if expire(&db, &principal, &method, &request_id, &owner).await.is_ok() {
                    tracing::info!(request_id, "let go of a request id once the database answered again");
                    return;
                }
            }
        });
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
        check_request_id(scope.request_id)?;
        let hash = request_hash(scope.method, request);
        let owner = match self.claim(scope, &hash).await? {
            Decision::Answer(Ok(bytes)) => {
                return Resp::decode(bytes.as_slice())
                    .map_err(|e| crate::error::internal("decoding a stored response", &e));
            }
            Decision::Answer(Err(status)) => return Err(status),
            Decision::Run { owner } => owner,
        };
        let outcome = handler().await;
        let recorded = match &outcome {
            Ok(response) => self.finish(scope, &owner, Code::Ok, "", &[], Some(response.encode_to_vec())).await,
            Err(status) if is_final(status.code()) => {
                self.finish(scope, &owner, status.code(), status.message(), status.details(), None).await
            }
            Err(_) => expire(&self.db, scope.principal, scope.method, scope.request_id, &owner).await,
        };
        if let Err(e) = recorded {
            // Neither recorded nor let go: let go as soon as the database
            // answers, so the retry this answer asks for runs again (every
            // handler under a request id converges when run twice).
            let Scope { principal, method, request_id } = scope;
            self.let_go_later(principal.to_owned(), method.to_owned(), request_id.to_owned(), owner);
            return Err(crate::error::database("recording a request outcome", e));
        }
        outcome
    }

    async fn claim(&self, scope: Scope<'_>, hash: &str) -> Result<Decision, Status> {
        let waited_until = tokio::time::Instant::now()
            + deadline::remaining()
                .map_or(self.config.wait, |left| left.saturating_sub(Duration::from_millis(50)).min(self.config.wait));
        loop {
            let owner = uuid::Uuid::new_v4().simple().to_string();
            let now = self.clock.now();
            match self.insert(scope, hash, &owner, now).await {
                Ok(()) => return Ok(Decision::Run { owner }),
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
                return Ok(Decision::Answer(replay(record)));
            }
            if record.lease_until <= now.0 {
                // The first call's process died: take its claim over.
                if self
                    .take_over(scope, &record.owner, &owner, now)
                    .await
                    .map_err(|e| crate::error::database("taking over a request id", e))?
                {
                    return Ok(Decision::Run { owner });
                }
                continue;
            }
            if tokio::time::Instant::now() >= waited_until {
                let mut details = crate::error::error_info(
                    crate::error::Reason::RequestInProgress,
                    HashMap::from([("request_id".to_owned(), crate::error::clip(scope.request_id).into_owned())]),
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

    #[store_op(prefix = "idempotency")]
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

    #[store_op(prefix = "idempotency")]
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
        row.map(|row| Record::from_query_result(&row, "")).transpose().inspect_err(crate::db::failed)
    }

    #[store_op(prefix = "idempotency")]
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

    #[store_op(prefix = "idempotency")]
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

    /// Deletes up to `batch` records older than the retention (finished, or
    /// claims long dead: no lease outlives a day);
    /// returns how many. Run it periodically (`worker::spawn_periodic`).
    #[store_op(prefix = "idempotency")]
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
              WHERE create_time < {} ORDER BY create_time LIMIT {batch})",
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

fn check_request_id(request_id: &str) -> Result<(), Status> {
    if request_id.chars().count() > MAX_REQUEST_ID || request_id.chars().any(char::is_control) {
        return Err(invalid_argument(
            "request_id",
            format!("must be at most {MAX_REQUEST_ID} printable characters (a UUID is recommended)"),
        ));
    }
    Ok(())
}

/// A record's key and request hash, as [`lookup`] reads them.
#[derive(FromQueryResult)]
struct Stored {
    principal: String,
    method: String,
    request_id: String,
    request_hash: String,
}

/// The stored request hash of each key (`None`: no record), in one query.
#[store_op(prefix = "idempotency", db = db, batch = keys.len())]
async fn lookup(db: &Db, keys: Vec<Key>) -> Vec<Result<Option<String>, Status>> {
    let rows = (0..keys.len()).map(|i| format!("(${}, ${}, ${})", 3 * i + 1, 3 * i + 2, 3 * i + 3));
    // Row-value IN works on PostgreSQL and on SQLite ≥ 3.15.
    let sql = format!(
        "SELECT principal, method, request_id, request_hash FROM idempotency_records \
         WHERE (principal, method, request_id) IN ({})",
        rows.collect::<Vec<_>>().join(", ")
    );
    let values =
        keys.iter().flat_map(|(p, m, r)| [Value::from(p.as_str()), Value::from(*m), Value::from(r.as_str())]).collect();
    let found = async {
        let mut found: HashMap<Key, String> = HashMap::new();
        for row in crate::db::query(db, &sql, values).await? {
            let Stored { principal, method, request_id, request_hash } = Stored::from_query_result(&row, "")?;
            if let Some(key) = keys.iter().find(|(p, m, r)| p == &principal && *m == method && r == &request_id) {
                found.insert(key.clone(), request_hash);
            }
        }
        Ok::<_, DbErr>(found)
    };
    match found.await {
        Ok(mut found) => keys.iter().map(|key| Ok(found.remove(key))).collect(),
        Err(e) => {
            crate::db::failed(&e);
            let status = crate::error::database("looking up request ids", e);
            keys.iter().map(|_| Err(status.clone())).collect()
        }
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
/// `FAILED_PRECONDITION` is not one: it depends on state that moves (see
/// the module docs).
fn is_final(code: Code) -> bool {
    matches!(
        code,
        Code::Ok
            | Code::InvalidArgument
            | Code::NotFound
            | Code::AlreadyExists
            | Code::PermissionDenied
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
    crate::error::refusal(
        Code::AlreadyExists,
        crate::error::Reason::RequestIdReused,
        "this request_id was already used with a different request; use a new request_id for a new request",
        metadata,
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
