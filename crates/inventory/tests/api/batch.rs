//! The hot-product batcher: concurrent one-line reservations of a product
//! share transactions, and stay exactly as correct as one at a time.

use std::{sync::Arc, time::Duration};

use caravan_inventory::{
    batcher::Batcher,
    domain::ReserveRequest,
    store::{BatchItem, Batched, Store},
};
use caravan_platform::{telemetry::ServiceTelemetry, time::Micros};
use caravan_proto::inventory::v1::{GetReservationRequest, GetStockRequest, reservation::State};
use caravan_testkit::eventually;
use futures::future::join_all;
use sea_orm::{ConnectionTrait as _, TransactionTrait as _};
use tonic::Code;

use crate::helpers::{reason, reserve, spawn_app};

fn one(id: &str, product: &str, quantity: i64) -> BatchItem {
    BatchItem {
        request: ReserveRequest {
            id: id.into(),
            show_id: None,
            lines: vec![(product.into(), quantity)],
            ttl: Duration::from_secs(900),
        },
        traceparent: String::new(),
    }
}

fn granted(outcome: &Batched) -> Option<i64> {
    match outcome {
        Batched::Granted(r) => Some(r.lines.iter().map(|l| l.quantity).sum()),
        _ => None,
    }
}

#[tokio::test]
async fn a_batch_grants_in_arrival_order_whole_reservations_only() {
    let mut app = spawn_app().await;
    app.warehouse("sh-bonded", 1).await;
    app.warehouse("gz-bonded", 2).await;
    app.receive("walnuts", "sh-bonded", 3).await;
    app.receive("walnuts", "gz-bonded", 2).await;
    let store = Store::new(app.server.database().connect().await.unwrap());
    let now = Micros(1_767_225_600_000_000);

    // 5 units over two warehouses: 2, 2 and 1 fit; the 2 after them does not,
    // but the 1 after it still does... until nothing is left.
    let items = [
        one("order-a", "walnuts", 2),
        one("order-b", "walnuts", 2),
        one("order-c", "walnuts", 2),
        one("order-d", "walnuts", 1),
        one("order-e", "walnuts", 1),
    ];
    let outcome = store.reserve_batch(None, "walnuts", &items, now).await.unwrap();
    let got: Vec<Option<i64>> = outcome.items.iter().map(granted).collect();
    assert_eq!(got, [Some(2), Some(2), None, Some(1), None], "{:?}", outcome.items);
    assert_eq!(outcome.items[2], Batched::Short { requested: 2, available: 1 });
    assert_eq!(outcome.items[4], Batched::Short { requested: 1, available: 0 });
    assert!(outcome.sold_out, "the batch took the last unit");
    // b straddles the warehouses, in priority order.
    let Batched::Granted(b) = &outcome.items[1] else { unreachable!("b was granted") };
    let sources: Vec<(&str, i64)> = b.lines[0].sources.iter().map(|s| (s.warehouse_id.as_str(), s.quantity)).collect();
    assert_eq!(sources, [("sh-bonded", 1), ("gz-bonded", 1)]);
    // Every grant is a reservation of its own; refused ones left nothing.
    let expected = [
        ("order-a", Some(State::Active)),
        ("order-b", Some(State::Active)),
        ("order-c", None),
        ("order-d", Some(State::Active)),
    ];
    for (id, state) in expected {
        let found = app.client.get_reservation(GetReservationRequest { name: format!("reservations/{id}") }).await;
        assert_eq!(found.as_ref().ok().map(|r| r.get_ref().state()), state, "{id}: {found:?}");
    }
    // A repeat of a granted id in a later batch is answered as a repeat.
    let again = store.reserve_batch(None, "walnuts", &[one("order-a", "walnuts", 2)], now).await.unwrap();
    assert_eq!(again.items, [Batched::Existing]);
    app.check_invariants().await;
}

#[tokio::test]
async fn a_batch_of_many_statements_records_every_grant_and_no_refusal() {
    let mut app = spawn_app().await;
    app.warehouse("sh-bonded", 1).await;
    app.warehouse("gz-bonded", 2).await;
    app.receive("dates", "sh-bonded", 30).await;
    app.receive("dates", "gz-bonded", 20).await;
    let store = Store::new(app.server.database().connect().await.unwrap());
    let now = Micros(1_767_225_600_000_000);

    // 70 buyers of one unit, one of them a repeat of an earlier id: more rows
    // than one statement carries, so the batch is written in several.
    let items: Vec<BatchItem> =
        (0..70).map(|i| one(&format!("order-{}", if i == 40 { 5 } else { i }), "dates", 1)).collect();
    let outcome = store.reserve_batch(None, "dates", &items, now).await.unwrap();
    assert_eq!(outcome.items[40], Batched::Existing, "the repeat within the batch");
    let granted_at: Vec<usize> = (0..70).filter(|i| granted(&outcome.items[*i]).is_some()).collect();
    let expected: Vec<usize> = (0..=50).filter(|i| *i != 40).collect();
    assert_eq!(granted_at, expected, "the first 50 new buyers, in arrival order");
    assert!(outcome.items[51..].iter().all(|b| matches!(b, Batched::Short { requested: 1, available: 0 })));
    assert!(outcome.sold_out);
    for (id, state) in [("order-0", Some(State::Active)), ("order-50", Some(State::Active)), ("order-51", None)] {
        let found = app.client.get_reservation(GetReservationRequest { name: format!("reservations/{id}") }).await;
        assert_eq!(found.as_ref().ok().map(|r| r.get_ref().state()), state, "{id}: {found:?}");
    }
    let level = app.client.get_stock(GetStockRequest { name: "stockLevels/dates".into() }).await.unwrap().into_inner();
    assert_eq!((level.reserved, level.available), (50, 0));
    app.check_invariants().await;
}

#[tokio::test]
async fn concurrent_reservations_through_two_batching_replicas_never_oversell() {
    let mut app = spawn_app().await;
    app.warehouse("sh-bonded", 1).await;
    app.receive("raisins", "sh-bonded", 150).await;
    let replica = app.replica().await;
    // 400 buyers of one or two units, half through each replica.
    let calls = (0..400).map(|i| {
        let mut client = if i % 2 == 0 { app.orders_client() } else { replica.orders_client() };
        let quantity = 1 + i64::from(i % 3 == 0);
        async move { (quantity, client.reserve_stock(reserve(&format!("order-{i}"), &[("raisins", quantity)])).await) }
    });
    let results = join_all(calls).await;
    let held: i64 = results.iter().filter(|(_, r)| r.is_ok()).map(|(q, _)| q).sum();
    assert!(held <= 150, "oversold: {held} of 150");
    assert!(held >= 149, "a refusal left more than a unit unsold: {held}");
    for (_, result) in &results {
        if let Err(status) = result {
            assert_eq!((status.code(), reason(status).0.as_str()), (Code::FailedPrecondition, "INSUFFICIENT_STOCK"));
        }
    }
    let level =
        app.client.get_stock(GetStockRequest { name: "stockLevels/raisins".into() }).await.unwrap().into_inner();
    assert_eq!(level.reserved, held, "inventory holds exactly what was granted");
    app.check_invariants().await;
}

#[tokio::test]
async fn a_failed_batch_fails_every_request_in_it_and_keeps_nothing() {
    let mut app = spawn_app().await;
    app.warehouse("sh-bonded", 1).await;
    app.receive("honey", "sh-bonded", 50).await;
    // The ledger is gone: every batch's last statements fail.
    let db = app.server.database().connect().await.unwrap();
    db.execute_unprepared("DROP TABLE movements").await.unwrap();
    let calls = (0..20).map(|i| {
        let mut client = app.orders_client();
        async move { client.reserve_stock(reserve(&format!("order-{i}"), &[("honey", 1)])).await }
    });
    for result in join_all(calls).await {
        let status = result.unwrap_err();
        assert_eq!(status.code(), Code::Internal, "{status:?}");
        assert!(status.message().contains("reserving stock"), "says what failed: {}", status.message());
        assert!(!status.message().to_lowercase().contains("movements"), "no SQL in the answer: {}", status.message());
    }
    let level = app.client.get_stock(GetStockRequest { name: "stockLevels/honey".into() }).await.unwrap().into_inner();
    assert_eq!(level.reserved, 0, "the failed batches held nothing");
    let missing = app.client.get_reservation(GetReservationRequest { name: "reservations/order-3".into() }).await;
    assert_eq!(missing.unwrap_err().code(), Code::NotFound, "and recorded nothing");
}

#[tokio::test]
async fn a_caller_that_gives_up_is_left_holding_nothing() {
    let mut app = spawn_app().await;
    app.warehouse("sh-bonded", 1).await;
    app.receive("walnuts", "sh-bonded", 10).await;
    let database = app.server.database();
    let store = Store::new(database.connect().await.unwrap());
    let batcher = Batcher::new(store, Arc::new(app.clock.clone()), ServiceTelemetry::global(), 64);

    // Another writer holds the stock row (SQLite: the database), so the
    // first batch waits on it.
    let blocker = database.connect().await.unwrap();
    let lock = blocker.begin().await.unwrap();
    lock.execute_unprepared("UPDATE stock SET version = version WHERE product_id = 'walnuts'").await.unwrap();

    let spawn = |id: &'static str| {
        let batcher = batcher.clone();
        tokio::spawn(async move { batcher.reserve(one(id, "walnuts", 2)).await })
    };
    // Each step waits until the batcher holds what it should: the first
    // caller's reservation in a batch (waiting on the lock, so the queue is
    // empty and draining), then two callers queued behind it. (Its own
    // load, not the process's metrics, which other tests' batchers move.)
    let holds = |expected: (usize, usize)| {
        let batcher = batcher.clone();
        async move { eventually(Duration::from_secs(5), || async { batcher.load() == expected }).await }
    };
    let first = spawn("gives-up-in-its-batch");
    assert!(holds((0, 1)).await, "the first batch began");
    let queued_one = spawn("gives-up-queued");
    assert!(holds((1, 1)).await, "one caller queued");
    let stays = spawn("stays");
    assert!(holds((2, 1)).await, "two callers queued");
    first.abort();
    queued_one.abort();
    lock.commit().await.unwrap();

    let stayed = stays.await.unwrap().unwrap();
    assert_eq!(granted(&stayed), Some(2), "{stayed:?}");
    // Its batch granted the first caller's units, and they were given back
    // when the grant found nobody to take it (before the next batch ran).
    let batched =
        app.client.get_reservation(GetReservationRequest { name: "reservations/gives-up-in-its-batch".into() });
    assert_eq!(batched.await.unwrap().into_inner().state(), State::Released, "its grant was given back");
    // The queued caller left before any batch took it: never reserved.
    let queued = app.client.get_reservation(GetReservationRequest { name: "reservations/gives-up-queued".into() });
    assert_eq!(queued.await.unwrap_err().code(), Code::NotFound, "never reserved");
    let level =
        app.client.get_stock(GetStockRequest { name: "stockLevels/walnuts".into() }).await.unwrap().into_inner();
    assert_eq!(level.reserved, 2, "only the caller that stayed holds stock");
    app.check_invariants().await;
}
