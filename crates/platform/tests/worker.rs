//! The background worker against a real database: leases, exactly-once
//! driving by several replicas, retries, re-driving after a dead replica, and
//! runs linked to the trace that created the item.

#![allow(clippy::unwrap_used)] // Test helpers fail loudly; that is their job.
#![allow(elided_lifetimes_in_paths)] // MigrationTrait is an async_trait.

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use caravan_platform::{
    config::{LogConfig, LogFormat, ServiceKind},
    db::Db,
    telemetry::ServiceTelemetry,
    time::{ManualClock, Micros, SharedClock},
    worker::{Claimed, ItemTable, Job, Next, Worker, WorkerConfig, lease_columns},
};
use caravan_testkit::TestDatabase;
use opentelemetry::trace::{SpanId, TraceId};
use sea_orm::{ConnectionTrait, Statement};
use sea_orm_migration::{prelude::*, schema::*};

#[derive(Debug)]
struct JobsMigrator;

#[async_trait::async_trait]
impl MigratorTrait for JobsMigrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![Box::new(CreateJobs)]
    }
}

#[derive(DeriveMigrationName)]
struct CreateJobs;

#[async_trait::async_trait]
impl MigrationTrait for CreateJobs {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let mut table = Table::create();
        table.table("probe_jobs").col(string("id").primary_key()).col(integer("runs").default(0));
        for mut column in lease_columns() {
            table.col(&mut column);
        }
        manager.create_table(table.to_owned()).await
    }
}

const T0: Micros = Micros(1_700_000_000_000_000);

/// Counts runs per item in the item's own row; fails the first `failures` runs.
struct Probe {
    db: Db,
    failures: Arc<AtomicUsize>,
}

impl Job for Probe {
    fn name(&self) -> &'static str {
        "probe"
    }

    fn items(&self) -> ItemTable {
        ItemTable { table: "probe_jobs", id: "id" }
    }

    async fn run(&self, item: &Claimed) -> anyhow::Result<Next> {
        if self.failures.load(Ordering::SeqCst) > 0 {
            self.failures.fetch_sub(1, Ordering::SeqCst);
            anyhow::bail!("injected failure");
        }
        let backend = self.db.get_database_backend();
        let sql = match backend {
            sea_orm::DatabaseBackend::Postgres => "UPDATE probe_jobs SET runs = runs + 1 WHERE id = $1",
            _ => "UPDATE probe_jobs SET runs = runs + 1 WHERE id = ?",
        };
        self.db.execute_raw(Statement::from_sql_and_values(backend, sql, [item.id.clone().into()])).await?;
        Ok(Next::Done)
    }
}

async fn insert(db: &Db, id: &str, due: Micros, traceparent: &str) {
    let backend = db.get_database_backend();
    let sql = match backend {
        sea_orm::DatabaseBackend::Postgres => "INSERT INTO probe_jobs (id, due_at, traceparent) VALUES ($1, $2, $3)",
        _ => "INSERT INTO probe_jobs (id, due_at, traceparent) VALUES (?, ?, ?)",
    };
    db.execute_raw(Statement::from_sql_and_values(backend, sql, [id.into(), due.0.into(), traceparent.into()]))
        .await
        .unwrap();
}

async fn runs(db: &Db) -> Vec<(String, i32, Option<i64>)> {
    let rows = db
        .query_all_raw(Statement::from_string(
            db.get_database_backend(),
            "SELECT id, runs, due_at FROM probe_jobs ORDER BY id",
        ))
        .await
        .unwrap();
    rows.into_iter()
        .map(|r| (r.try_get_by_index(0).unwrap(), r.try_get_by_index(1).unwrap(), r.try_get_by_index(2).unwrap()))
        .collect()
}

fn worker(db: Db, clock: &ManualClock, failures: usize, config: WorkerConfig) -> Worker<Probe> {
    let job = Probe { db: db.clone(), failures: Arc::new(AtomicUsize::new(failures)) };
    let clock: SharedClock = Arc::new(clock.clone());
    Worker::new(job, db, clock, config, ServiceTelemetry::global())
}

#[tokio::test]
async fn two_replicas_drive_each_item_exactly_once() {
    let database = TestDatabase::new::<JobsMigrator>(ServiceKind::Orders).await.unwrap();
    let setup = database.connect().await.unwrap();
    for i in 0..120 {
        insert(&setup, &format!("item-{i:03}"), T0, "").await;
    }
    // Not yet due: nothing is driven.
    let clock = ManualClock::new(Micros(T0.0 - 1));
    let config = WorkerConfig { batch: 16, ..WorkerConfig::default() };
    // Each replica has its own pool, as separate processes would.
    let a = worker(database.connect().await.unwrap(), &clock, 0, config.clone());
    let b = worker(database.connect().await.unwrap(), &clock, 0, config);
    assert_eq!(a.tick().await.unwrap(), 0);

    clock.advance(Duration::from_secs(1));
    let drive = |w: Worker<Probe>| async move {
        let mut total = 0;
        loop {
            let n = w.tick().await.unwrap();
            assert!(n <= 16, "claims are bounded by the batch size");
            if n == 0 {
                return total;
            }
            total += n;
        }
    };
    let (by_a, by_b) = tokio::join!(drive(a), drive(b));
    assert_eq!(by_a + by_b, 120, "every item driven once in all (a: {by_a}, b: {by_b})");
    let rows = runs(&setup).await;
    assert_eq!(rows.len(), 120);
    for (id, runs, due) in rows {
        assert_eq!(runs, 1, "{id} ran {runs} times");
        assert_eq!(due, None, "{id} is retired");
    }
}

#[tokio::test]
async fn a_failed_run_is_retried_later_by_the_clock() {
    let database = TestDatabase::new::<JobsMigrator>(ServiceKind::Orders).await.unwrap();
    let db = database.connect().await.unwrap();
    insert(&db, "flaky", T0, "").await;
    let clock = ManualClock::new(T0);
    let config = WorkerConfig { retry_after: Duration::from_secs(5), ..WorkerConfig::default() };
    let w = worker(db.clone(), &clock, 1, config);

    assert_eq!(w.tick().await.unwrap(), 1, "claimed, run fails");
    assert_eq!(runs(&db).await, [("flaky".to_owned(), 0, Some(T0.plus(Duration::from_secs(5)).0))]);
    assert_eq!(w.tick().await.unwrap(), 0, "not due again until the retry time");
    clock.advance(Duration::from_secs(5));
    assert_eq!(w.tick().await.unwrap(), 1);
    assert_eq!(runs(&db).await, [("flaky".to_owned(), 1, None)]);
}

#[tokio::test]
async fn an_item_held_by_a_dead_replica_is_redriven_when_its_lease_ends() {
    let database = TestDatabase::new::<JobsMigrator>(ServiceKind::Orders).await.unwrap();
    let db = database.connect().await.unwrap();
    insert(&db, "orphan", T0, "").await;
    let lease_end = T0.plus(Duration::from_secs(60));
    let backend = db.get_database_backend();
    let sql = match backend {
        sea_orm::DatabaseBackend::Postgres => "UPDATE probe_jobs SET lease_owner = 'dead', lease_until = $1",
        _ => "UPDATE probe_jobs SET lease_owner = 'dead', lease_until = ?",
    };
    db.execute_raw(Statement::from_sql_and_values(backend, sql, [lease_end.0.into()])).await.unwrap();

    let clock = ManualClock::new(T0);
    let w = worker(db.clone(), &clock, 0, WorkerConfig::default());
    assert_eq!(w.tick().await.unwrap(), 0, "held by another replica");
    clock.set(lease_end);
    assert_eq!(w.tick().await.unwrap(), 1, "lease over: re-driven");
    assert_eq!(runs(&db).await, [("orphan".to_owned(), 1, None)]);
}

#[tokio::test]
async fn each_run_is_a_new_trace_linked_to_the_items_trace() {
    let database = TestDatabase::new::<JobsMigrator>(ServiceKind::Orders).await.unwrap();
    let db = database.connect().await.unwrap();
    let trace_id = "0af7651916cd43dd8448eb211c80319c";
    let span_id = "b7ad6b7169203331";
    insert(&db, "traced", T0, &format!("00-{trace_id}-{span_id}-01")).await;

    let log = LogConfig { format: LogFormat::Pretty, filter: "off".into() };
    let (telemetry, collector) = ServiceTelemetry::collecting(ServiceKind::Orders, &log).unwrap();
    let job = Probe { db: db.clone(), failures: Arc::new(AtomicUsize::new(0)) };
    let w = Worker::new(job, db, Arc::new(ManualClock::new(T0)), WorkerConfig::default(), telemetry);
    assert_eq!(w.tick().await.unwrap(), 1);

    let spans = collector.spans();
    let run = spans.iter().find(|s| s.name == "probe").expect("a span per run");
    assert_ne!(run.trace_id, TraceId::from_hex(trace_id).unwrap().to_bytes(), "its own trace");
    assert!(run.parent_span_id.is_empty(), "a root span");
    let link = run.links.first().expect("linked");
    assert_eq!(link.trace_id, TraceId::from_hex(trace_id).unwrap().to_bytes());
    assert_eq!(link.span_id, SpanId::from_hex(span_id).unwrap().to_bytes());
}
