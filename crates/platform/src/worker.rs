//! Background work, one mechanism for every service (reservation reaper,
//! order expiry and recovery, show clock, re-drives).
//!
//! Items live in the service's own table, which carries four columns the
//! worker owns: when the item is next due (`due_at`), who holds it and until
//! when (`lease_owner`, `lease_until`), and the W3C `traceparent` of the
//! request that created it. A [`Worker`] claims due items in bounded batches,
//! each with one conditional `UPDATE` (so several replicas never drive one
//! item at once, on SQLite and PostgreSQL alike), runs the [`Job`] on each in
//! a span **linked** to the item's stored trace, and then either retires the
//! item (`due_at = NULL`) or makes it due again later.
//!
//! A run must finish well within the lease (the worker cancels it at half the
//! lease), so a lease can only expire on a replica that died; the next claim
//! then re-drives the item. Jobs are idempotent per item, as every saga step is.

use std::{future::Future, sync::Arc, time::Duration};

use sea_orm::{ConnectionTrait, DbErr, Statement, Value};
use tokio_util::sync::CancellationToken;
use tracing::Instrument as _;

use crate::{
    db::{Db, placeholder},
    telemetry::{ServiceTelemetry, Work, span_context_of},
    time::{Micros, SharedClock},
};

/// Where a job's items live: a table and its key column. The table must also
/// have `due_at BIGINT NULL`, `lease_owner VARCHAR NULL`, `lease_until BIGINT
/// NULL` and `traceparent VARCHAR NOT NULL` (see [`lease_columns`]).
#[derive(Debug, Clone, Copy)]
pub struct ItemTable {
    /// Table name.
    pub table: &'static str,
    /// Its key column (text).
    pub id: &'static str,
}

/// The worker's columns, for a migration: `due_at`, `lease_owner`,
/// `lease_until`, `traceparent`.
pub fn lease_columns() -> Vec<sea_orm_migration::prelude::ColumnDef> {
    use sea_orm_migration::schema::{big_integer_null, string, string_null};
    vec![
        big_integer_null("due_at"),
        string_null("lease_owner"),
        big_integer_null("lease_until"),
        string("traceparent").default("").to_owned(),
    ]
}

/// A claimed item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claimed {
    /// Its key.
    pub id: String,
    /// The `traceparent` stored with it (may be empty).
    pub traceparent: String,
}

/// What to do with an item after a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Nothing more to do: it is no longer due.
    Done,
    /// Run again at this instant.
    At(Micros),
}

/// One kind of background work.
pub trait Job: Send + Sync + 'static {
    /// Short name for spans and logs, e.g. `order-expiry`.
    fn name(&self) -> &'static str;

    /// Where its items live.
    fn items(&self) -> ItemTable;

    /// Drives one item. An error is logged and the item retried later.
    fn run(&self, item: &Claimed) -> impl Future<Output = anyhow::Result<Next>> + Send;
}

/// Worker settings.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// Most items claimed at once.
    pub batch: u64,
    /// How long a claim is held.
    pub lease: Duration,
    /// How long to wait before looking again when nothing was due.
    pub idle_interval: Duration,
    /// When a run fails, how long until the item is due again.
    pub retry_after: Duration,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        WorkerConfig {
            batch: 64,
            lease: Duration::from_secs(60),
            idle_interval: Duration::from_millis(500),
            retry_after: Duration::from_secs(5),
        }
    }
}

/// Claims and drives the due items of one job.
#[derive(Debug)]
pub struct Worker<J> {
    job: Arc<J>,
    db: Db,
    clock: SharedClock,
    config: WorkerConfig,
    owner: String,
    telemetry: ServiceTelemetry,
}

impl<J: Job> Worker<J> {
    /// A worker with a unique owner id (one per process and job).
    pub fn new(job: J, db: Db, clock: SharedClock, config: WorkerConfig, telemetry: ServiceTelemetry) -> Self {
        let owner = format!("{}-{}", job.name(), uuid::Uuid::new_v4().simple());
        Worker { job: Arc::new(job), db, clock, config, owner, telemetry }
    }

    /// Claims one batch of due items and drives each; returns how many were
    /// driven. Tests call this instead of sleeping.
    pub async fn tick(&self) -> Result<usize, DbErr> {
        let claimed = self.claim().await?;
        for item in &claimed {
            self.drive(item).await?;
        }
        Ok(claimed.len())
    }

    /// Runs until `shutdown`: a full batch is followed by the next at once,
    /// anything less by a pause.
    pub async fn run(self, shutdown: CancellationToken) {
        let telemetry = self.telemetry.clone();
        let body = async move {
            loop {
                let swept = self.tick().await;
                let outcome = if swept.is_ok() { "ok" } else { "failed" };
                crate::metrics::metrics().worker_sweeps.with_label_values(&[self.job.name(), outcome]).inc();
                let pause = match swept {
                    Ok(n) if n as u64 >= self.config.batch => Duration::ZERO,
                    Ok(_) => self.config.idle_interval,
                    Err(e) => {
                        tracing::warn!(job = self.job.name(), error = %e, "worker could not claim items; retrying");
                        self.config.idle_interval
                    }
                };
                tokio::select! {
                    () = shutdown.cancelled() => break,
                    () = tokio::time::sleep(pause) => {}
                }
            }
        };
        telemetry.run(body).await;
    }

    async fn claim(&self) -> Result<Vec<Claimed>, DbErr> {
        let ItemTable { table, id } = self.job.items();
        let backend = self.db.get_database_backend();
        let now = self.clock.now().0;
        // Candidates first, then one conditional UPDATE per candidate: only
        // the replica whose UPDATE matched holds the item.
        let candidates = self
            .db
            .query_all_raw(Statement::from_sql_and_values(
                backend,
                format!(
                    "SELECT {id} AS item_id, traceparent FROM {table} \
                     WHERE due_at IS NOT NULL AND due_at <= {p1} AND (lease_until IS NULL OR lease_until <= {p2}) \
                     ORDER BY due_at LIMIT {limit}",
                    p1 = placeholder(backend, 1),
                    p2 = placeholder(backend, 2),
                    limit = self.config.batch,
                ),
                [Value::from(now), Value::from(now)],
            ))
            .await?;
        let lease_until = Micros(now).plus(self.config.lease).0;
        let mut claimed = Vec::with_capacity(candidates.len());
        for row in candidates {
            let item_id: String = row.try_get("", "item_id")?;
            let traceparent: String = row.try_get("", "traceparent")?;
            let result = self
                .db
                .execute_raw(Statement::from_sql_and_values(
                    backend,
                    format!(
                        "UPDATE {table} SET lease_owner = {p1}, lease_until = {p2} \
                         WHERE {id} = {p3} AND due_at IS NOT NULL AND due_at <= {p4} \
                         AND (lease_until IS NULL OR lease_until <= {p5})",
                        p1 = placeholder(backend, 1),
                        p2 = placeholder(backend, 2),
                        p3 = placeholder(backend, 3),
                        p4 = placeholder(backend, 4),
                        p5 = placeholder(backend, 5),
                    ),
                    [
                        Value::from(self.owner.clone()),
                        Value::from(lease_until),
                        Value::from(item_id.clone()),
                        Value::from(now),
                        Value::from(now),
                    ],
                ))
                .await?;
            if result.rows_affected() == 1 {
                claimed.push(Claimed { id: item_id, traceparent });
            }
        }
        Ok(claimed)
    }

    async fn drive(&self, item: &Claimed) -> Result<(), DbErr> {
        let (span, work) = tracing::dispatcher::with_default(&self.telemetry.dispatch, || {
            // A new trace per run (no parent), linked to the one that created the item.
            let open = || {
                let service = self.telemetry.service.map_or("", |s| s.as_str());
                tracing::info_span!(parent: None, "worker.run", otel.name = self.job.name(), otel.kind = "internal", job = self.job.name(), item = %item.id, service)
            };
            match self.telemetry.service {
                Some(service) => {
                    let (span, work) = crate::telemetry::span_in_trace(None, service, open);
                    (span, Some(work))
                }
                None => (open(), None),
            }
        });
        if let Some(link) = span_context_of(&item.traceparent) {
            crate::telemetry::add_link(&span, link);
        }
        let limit = self.config.lease / 2;
        // A tick may also run outside `run` (tests): the run is the service's work either way.
        let outcome = self
            .telemetry
            .run_as(work.clone(), tokio::time::timeout(limit, self.job.run(item)).instrument(span.clone()))
            .await;
        // Its warnings carry its trace, sampled or not.
        let warn = |log: &dyn Fn()| {
            tracing::dispatcher::with_default(&self.telemetry.dispatch, || Work::within_sync(work.clone(), log))
        };
        let next = match outcome {
            Ok(Ok(next)) => next,
            Ok(Err(e)) => {
                warn(&|| {
                    let _entered = span.enter();
                    tracing::warn!(job = self.job.name(), item = %item.id, error = format!("{e:#}"), "run failed; will retry");
                });
                Next::At(self.clock.now().plus(self.config.retry_after))
            }
            Err(_) => {
                warn(&|| {
                    tracing::warn!(job = self.job.name(), item = %item.id, ?limit, "run took too long; will retry");
                });
                Next::At(self.clock.now().plus(self.config.retry_after))
            }
        };
        self.release(item, next).await
    }

    async fn release(&self, item: &Claimed, next: Next) -> Result<(), DbErr> {
        let ItemTable { table, id } = self.job.items();
        let backend = self.db.get_database_backend();
        let due = match next {
            Next::Done => Value::BigInt(None),
            Next::At(at) => Value::from(at.0),
        };
        self.db
            .execute_raw(Statement::from_sql_and_values(
                backend,
                format!(
                    "UPDATE {table} SET due_at = {p1}, lease_owner = NULL, lease_until = NULL \
                     WHERE {id} = {p2} AND lease_owner = {p3}",
                    p1 = placeholder(backend, 1),
                    p2 = placeholder(backend, 2),
                    p3 = placeholder(backend, 3),
                ),
                [due, Value::from(item.id.clone()), Value::from(self.owner.clone())],
            ))
            .await?;
        Ok(())
    }
}

/// Runs `task` every `interval` until `shutdown`, under the service's
/// telemetry (purges and other housekeeping that is not per item; several
/// replicas running it at once must be harmless). Each run is a trace.
pub fn spawn_periodic<F, Fut>(
    name: &'static str,
    interval: Duration,
    telemetry: &ServiceTelemetry,
    shutdown: CancellationToken,
    mut task: F,
) -> tokio::task::JoinHandle<()>
where
    F: FnMut() -> Fut + Send + 'static,
    Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
{
    let body = every(interval, shutdown, move || {
        let span = tracing::info_span!(parent: None, "worker.periodic", otel.name = name, otel.kind = "internal");
        let run = task().instrument(span);
        async move {
            if let Err(e) = run.await {
                tracing::warn!(task = name, error = format!("{e:#}"), "periodic task failed");
            }
        }
    });
    tokio::spawn(telemetry.run(body))
}

/// Runs `sample` every `interval` until `shutdown`, with no span: for
/// metrics sampled from state (a trace every few seconds of nothing would
/// drown the real ones). Failures are logged at debug and the next tick tries
/// again.
pub fn spawn_sampler<F, Fut>(
    interval: Duration,
    shutdown: CancellationToken,
    mut sample: F,
) -> tokio::task::JoinHandle<()>
where
    F: FnMut() -> Fut + Send + 'static,
    Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
{
    tokio::spawn(every(interval, shutdown, move || {
        let sampled = sample();
        async move {
            if let Err(e) = sampled.await {
                tracing::debug!(error = format!("{e:#}"), "sampling a metric failed");
            }
        }
    }))
}

/// Runs `tick` every `interval`, the first at once, until `shutdown`; a late
/// tick is not made up for.
async fn every<F, Fut>(interval: Duration, shutdown: CancellationToken, mut tick: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = ()>,
{
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => break,
            _ = ticker.tick() => {}
        }
        tick().await;
    }
}
