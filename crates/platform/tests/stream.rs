//! Live streams against a real database: no change missed under concurrent
//! writers (the commit-order trap on PostgreSQL), resuming by cursor, bounded
//! memory for slow readers, cursors too old, drain and lifetime.

#![allow(clippy::unwrap_used)] // Test helpers fail loudly; that is their job.
#![allow(elided_lifetimes_in_paths)] // MigrationTrait is an async_trait.

use std::{collections::HashMap, time::Duration};

use caravan_platform::{
    config::ServiceKind,
    db::Db,
    stream::{Changes, Delivery, Feed, Hub, HubConfig, Subscription},
};
use caravan_testkit::TestDatabase;
use futures::StreamExt as _;
use sea_orm::{ConnectionTrait, DatabaseBackend, Statement, TransactionTrait, Value};
use sea_orm_migration::{prelude::*, schema::*};
use tokio_util::sync::CancellationToken;
use tonic::Code;

#[derive(Debug)]
struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![Box::new(CreateProbe)]
    }
}

#[derive(DeriveMigrationName)]
struct CreateProbe;

#[async_trait::async_trait]
impl MigrationTrait for CreateProbe {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("probe_aggregates")
                    .col(string("key").primary_key())
                    .col(big_integer("version"))
                    .col(big_integer("value"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("probe_events")
                    .col(string("key"))
                    .col(big_integer("version"))
                    .col(big_integer("value"))
                    .primary_key(Index::create().col("key").col("version"))
                    .to_owned(),
            )
            .await
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Change {
    key: String,
    version: i64,
    value: i64,
}

fn sql(backend: DatabaseBackend, text: &str) -> String {
    // Written with `?`; PostgreSQL wants `$n`.
    if backend != DatabaseBackend::Postgres {
        return text.to_owned();
    }
    let mut out = String::new();
    let mut n = 0;
    for c in text.chars() {
        if c == '?' {
            n += 1;
            out.push_str(&format!("${n}"));
        } else {
            out.push(c);
        }
    }
    out
}

async fn rows(db: &Db, text: &str, values: Vec<Value>) -> Vec<Change> {
    let backend = db.get_database_backend();
    db.query_all_raw(Statement::from_sql_and_values(backend, sql(backend, text), values))
        .await
        .unwrap()
        .into_iter()
        .map(|r| Change {
            key: r.try_get_by_index(0).unwrap(),
            version: r.try_get_by_index(1).unwrap(),
            value: r.try_get_by_index(2).unwrap(),
        })
        .collect()
}

/// Every change of an aggregate is an event (like a show's history).
struct Events(Db);
/// Only the latest state matters (like a stock level).
struct States(Db);

impl Feed for Events {
    type Key = String;
    type Item = Change;
    const COALESCE: bool = false;

    fn key(item: &Change) -> String {
        item.key.clone()
    }

    fn version(item: &Change) -> i64 {
        item.version
    }

    async fn snapshot(&self, keys: &[String]) -> anyhow::Result<Vec<Change>> {
        let mut out = Vec::new();
        for key in keys {
            out.extend(
                rows(
                    &self.0,
                    "SELECT key, version, value FROM probe_aggregates WHERE key = ?",
                    vec![key.clone().into()],
                )
                .await,
            );
        }
        Ok(out)
    }

    async fn changes(&self, after: &[(String, i64)]) -> anyhow::Result<Changes<String, Change>> {
        let mut items = Vec::new();
        let mut too_old = Vec::new();
        for (key, version) in after {
            let found = rows(
                &self.0,
                "SELECT key, version, value FROM probe_events WHERE key = ? AND version > ? ORDER BY version LIMIT 1000",
                vec![key.clone().into(), (*version).into()],
            )
            .await;
            if found.first().is_some_and(|first| first.version > version + 1) {
                too_old.push(key.clone());
                continue;
            }
            items.extend(found);
        }
        Ok(Changes { items, too_old })
    }
}

impl Feed for States {
    type Key = String;
    type Item = Change;
    const COALESCE: bool = true;

    fn key(item: &Change) -> String {
        item.key.clone()
    }

    fn version(item: &Change) -> i64 {
        item.version
    }

    async fn snapshot(&self, keys: &[String]) -> anyhow::Result<Vec<Change>> {
        Events(self.0.clone()).snapshot(keys).await
    }

    async fn changes(&self, after: &[(String, i64)]) -> anyhow::Result<Changes<String, Change>> {
        let mut items = Vec::new();
        for (key, version) in after {
            items.extend(
                rows(
                    &self.0,
                    "SELECT key, version, value FROM probe_aggregates WHERE key = ? AND version > ?",
                    vec![key.clone().into(), (*version).into()],
                )
                .await,
            );
        }
        Ok(Changes { items, too_old: Vec::new() })
    }
}

async fn create(db: &Db, key: &str) {
    let backend = db.get_database_backend();
    db.execute_raw(Statement::from_sql_and_values(
        backend,
        sql(backend, "INSERT INTO probe_aggregates (key, version, value) VALUES (?, 0, 0)"),
        [key.into()],
    ))
    .await
    .unwrap();
}

/// One change: the version is bumped in the statement that changes the row
/// (under its lock), and the event is written in the same transaction.
async fn bump(db: &Db, key: &str) {
    let backend = db.get_database_backend();
    let txn = db.begin().await.unwrap();
    let row = txn
        .query_one_raw(Statement::from_sql_and_values(
            backend,
            sql(backend, "UPDATE probe_aggregates SET version = version + 1, value = value + 1 WHERE key = ? RETURNING version, value"),
            [key.into()],
        ))
        .await
        .unwrap()
        .unwrap();
    let version: i64 = row.try_get_by_index(0).unwrap();
    let value: i64 = row.try_get_by_index(1).unwrap();
    txn.execute_raw(Statement::from_sql_and_values(
        backend,
        sql(backend, "INSERT INTO probe_events (key, version, value) VALUES (?, ?, ?)"),
        [key.into(), version.into(), value.into()],
    ))
    .await
    .unwrap();
    txn.commit().await.unwrap();
}

fn fast(buffer: usize) -> HubConfig {
    HubConfig { poll_interval: Duration::from_millis(5), buffer, ..HubConfig::default() }
}

async fn next<F: Feed>(subscription: &mut Subscription<F>) -> Option<Result<(Delivery, F::Item), tonic::Status>> {
    tokio::time::timeout(Duration::from_secs(20), subscription.next()).await.expect("the stream stalled")
}

const KEYS: [&str; 4] = ["k0", "k1", "k2", "k3"];
const WRITERS: usize = 8;
const WRITES: usize = 40;

#[tokio::test]
async fn no_change_is_missed_under_concurrent_writers_and_a_cursor_resumes() {
    let database = TestDatabase::new::<Migrator>(ServiceKind::Inventory).await.unwrap();
    let db = database.connect().await.unwrap();
    for key in KEYS {
        create(&db, key).await;
    }
    let token = CancellationToken::new();
    let hub = Hub::start(Events(database.connect().await.unwrap()), fast(4096), token.clone());
    let keys: Vec<String> = KEYS.iter().map(|k| (*k).to_owned()).collect();
    let mut subscription = hub.subscribe(keys.clone(), HashMap::new()).unwrap();

    let mut seen: HashMap<String, Vec<i64>> = HashMap::new();
    for _ in KEYS {
        let (delivery, item) = next(&mut subscription).await.unwrap().unwrap();
        assert_eq!((delivery, item.version), (Delivery::Snapshot, 0));
        seen.entry(item.key).or_default().push(0);
    }

    // Many writers on few rows, each through the pool concurrently.
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let db = db.clone();
            tokio::spawn(async move {
                for i in 0..WRITES {
                    bump(&db, KEYS[(w * 7 + i * 3) % KEYS.len()]).await;
                }
            })
        })
        .collect();

    let total = WRITERS * WRITES;
    let mut received = 0;
    // Half of the changes on one stream, then a reconnect with the cursors.
    while received < total / 2 {
        let (delivery, item) = next(&mut subscription).await.unwrap().unwrap();
        assert_eq!(delivery, Delivery::Change);
        seen.entry(item.key).or_default().push(item.version);
        received += 1;
    }
    drop(subscription);
    let cursors: HashMap<String, i64> = seen.iter().map(|(k, v)| (k.clone(), *v.last().unwrap())).collect();
    let mut subscription = hub.subscribe(keys, cursors).unwrap();
    while received < total {
        let (delivery, item) = next(&mut subscription).await.unwrap().unwrap();
        assert_eq!(delivery, Delivery::Change, "a cursor resumes without a snapshot");
        seen.entry(item.key).or_default().push(item.version);
        received += 1;
    }
    for writer in writers {
        writer.await.unwrap();
    }

    // Every version of every key, exactly once, in order.
    let mut all = 0;
    for (key, versions) in &seen {
        let expected: Vec<i64> = (0..versions.len() as i64).collect();
        assert_eq!(versions, &expected, "{key}");
        all += versions.len() - 1;
    }
    assert_eq!(all, total);
    token.cancel();
}

#[tokio::test]
async fn a_slow_event_reader_is_cut_off_not_buffered_without_bound() {
    let database = TestDatabase::new::<Migrator>(ServiceKind::Inventory).await.unwrap();
    let db = database.connect().await.unwrap();
    create(&db, "hot").await;
    let token = CancellationToken::new();
    let hub = Hub::start(Events(db.clone()), fast(16), token.clone());
    let mut subscription = hub.subscribe(vec!["hot".into()], HashMap::from([("hot".to_owned(), 0)])).unwrap();
    for _ in 0..100 {
        bump(&db, "hot").await;
        assert!(subscription.pending_items() <= 16, "memory stays bounded while the reader sleeps");
    }
    hub.wake();
    let mut read = 0;
    let end = loop {
        match next(&mut subscription).await {
            Some(Ok(_)) => read += 1,
            Some(Err(status)) => break status,
            None => panic!("the stream ended without saying why"),
        }
        assert!(subscription.pending_items() <= 16);
    };
    assert_eq!(end.code(), Code::ResourceExhausted);
    assert!(read < 100, "the reader did not get all 100 changes buffered (read {read})");
    token.cancel();
}

#[tokio::test]
async fn a_slow_state_reader_gets_the_latest_state_in_bounded_memory() {
    let database = TestDatabase::new::<Migrator>(ServiceKind::Inventory).await.unwrap();
    let db = database.connect().await.unwrap();
    create(&db, "a").await;
    create(&db, "b").await;
    let token = CancellationToken::new();
    let hub = Hub::start(States(db.clone()), fast(16), token.clone());
    let mut subscription = hub.subscribe(vec!["a".into(), "b".into()], HashMap::new()).unwrap();
    for _ in 0..50 {
        bump(&db, "a").await;
        bump(&db, "b").await;
        assert!(subscription.pending_items() <= 2, "one pending state per key at most");
    }
    // Read until both keys reach their final state.
    let mut last: HashMap<String, i64> = HashMap::new();
    while last.get("a") != Some(&50) || last.get("b") != Some(&50) {
        let (_, item) = next(&mut subscription).await.unwrap().unwrap();
        let previous = last.insert(item.key.clone(), item.version);
        assert!(previous.is_none_or(|p| p < item.version), "versions only grow");
        assert_eq!(item.value, item.version);
    }
    token.cancel();
}

#[tokio::test]
async fn a_cursor_older_than_what_is_kept_is_out_of_range() {
    let database = TestDatabase::new::<Migrator>(ServiceKind::Inventory).await.unwrap();
    let db = database.connect().await.unwrap();
    create(&db, "old").await;
    for _ in 0..10 {
        bump(&db, "old").await;
    }
    db.execute_raw(Statement::from_string(db.get_database_backend(), "DELETE FROM probe_events WHERE version < 6"))
        .await
        .unwrap();
    let token = CancellationToken::new();
    let hub = Hub::start(Events(db.clone()), fast(64), token.clone());

    let mut stale = hub.subscribe(vec!["old".into()], HashMap::from([("old".to_owned(), 2)])).unwrap();
    assert_eq!(next(&mut stale).await.unwrap().unwrap_err().code(), Code::OutOfRange);
    // A cursor within what is kept resumes.
    let mut fresh = hub.subscribe(vec!["old".into()], HashMap::from([("old".to_owned(), 5)])).unwrap();
    assert_eq!(next(&mut fresh).await.unwrap().unwrap().1.version, 6);
    token.cancel();
}

#[tokio::test]
async fn streams_end_on_drain_and_after_their_lifetime() {
    let database = TestDatabase::new::<Migrator>(ServiceKind::Inventory).await.unwrap();
    let db = database.connect().await.unwrap();
    create(&db, "k").await;

    let token = CancellationToken::new();
    let short = HubConfig { max_lifetime: Duration::from_millis(300), ..fast(64) };
    let hub = Hub::start(Events(db.clone()), short, token.clone());
    let mut subscription = hub.subscribe(vec!["k".into()], HashMap::new()).unwrap();
    assert_eq!(next(&mut subscription).await.unwrap().unwrap().0, Delivery::Snapshot);
    assert!(next(&mut subscription).await.is_none(), "a normal end after the lifetime");

    let mut subscription = hub.subscribe(vec!["k".into()], HashMap::new()).unwrap();
    assert_eq!(next(&mut subscription).await.unwrap().unwrap().0, Delivery::Snapshot);
    token.cancel();
    assert_eq!(next(&mut subscription).await.unwrap().unwrap_err().code(), Code::Unavailable);
    assert!(next(&mut subscription).await.is_none());
    assert_eq!(hub.subscribe(vec!["k".into()], HashMap::new()).map(|_| ()).unwrap_err().code(), Code::Unavailable);

    // Limits on what one stream may ask.
    let hub = Hub::start(Events(db), fast(64), CancellationToken::new());
    assert_eq!(hub.subscribe(Vec::new(), HashMap::new()).map(|_| ()).unwrap_err().code(), Code::InvalidArgument);
    let too_many: Vec<String> = (0..501).map(|i| format!("k{i}")).collect();
    assert_eq!(hub.subscribe(too_many, HashMap::new()).map(|_| ()).unwrap_err().code(), Code::InvalidArgument);
}
