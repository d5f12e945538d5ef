use std::time::Duration;

use caravan_inventory::{reaper::Reaper, store::Store};
use caravan_platform::{
    telemetry::ServiceTelemetry,
    worker::{Worker, WorkerConfig},
};
use caravan_proto::inventory::v1::{
    CommitReservationRequest, GetReservationRequest, GetStockRequest, ListMovementsRequest, ReleaseReservationRequest,
    movement::Kind, reservation::State,
};
use futures::future::join_all;
use rand::{Rng as _, SeedableRng as _};
use tonic::Code;

use crate::helpers::{reason, reserve, spawn_app};

async fn available(client: &mut crate::helpers::Client, product: &str) -> i64 {
    client.get_stock(GetStockRequest { name: format!("stockLevels/{product}") }).await.unwrap().into_inner().available
}

#[tokio::test]
async fn five_hundred_buyers_for_one_hundred_units_get_exactly_one_hundred() {
    let mut app = spawn_app().await;
    app.warehouse("sh-bonded", 1).await;
    app.receive("uz-dried-apricots", "sh-bonded", 100).await;

    let calls = (0..500).map(|i| {
        let mut client = app.orders_client();
        async move { client.reserve_stock(reserve(&format!("order-{i}"), &[("uz-dried-apricots", 1)])).await }
    });
    let results = join_all(calls).await;
    let granted = results.iter().filter(|r| r.is_ok()).count();
    assert_eq!(granted, 100);
    for status in results.iter().filter_map(|r| r.as_ref().err()) {
        assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
        let (reason, metadata) = reason(status);
        assert_eq!(reason, "INSUFFICIENT_STOCK");
        assert_eq!(metadata["product"], "products/uz-dried-apricots");
        assert_eq!(metadata["available"], "0");
    }
    assert_eq!(available(&mut app.client, "uz-dried-apricots").await, 0);
    app.check_invariants().await;
}

#[tokio::test]
async fn mixed_quantities_and_multi_line_reservations_never_oversell_and_are_all_or_nothing() {
    let mut app = spawn_app().await;
    app.warehouse("sh-bonded", 1).await;
    app.warehouse("gz-bonded", 2).await;
    app.receive("tea", "sh-bonded", 40).await;
    app.receive("tea", "gz-bonded", 20).await;
    app.receive("walnuts", "gz-bonded", 35).await;

    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
    let requests: Vec<_> = (0..200)
        .map(|i| {
            let tea = rng.random_range(0..=3);
            let walnuts = rng.random_range(if tea == 0 { 1 } else { 0 }..=2);
            let lines: Vec<(&str, i64)> =
                [("walnuts", walnuts), ("tea", tea)].into_iter().filter(|l| l.1 > 0).collect();
            (format!("order-{i}"), lines)
        })
        .collect();
    let calls = requests.iter().map(|(id, lines)| {
        let mut client = app.orders_client();
        let request = reserve(id, lines);
        async move { client.reserve_stock(request).await }
    });
    let results = join_all(calls).await;

    let mut sold = std::collections::HashMap::from([("tea", 0), ("walnuts", 0)]);
    for ((_, lines), result) in requests.iter().zip(&results) {
        match result {
            Ok(reservation) => {
                let reservation = reservation.get_ref();
                assert_eq!(reservation.lines.len(), lines.len(), "a granted reservation holds every line");
                for (product, quantity) in lines {
                    let line = reservation.lines.iter().find(|l| l.product == format!("products/{product}")).unwrap();
                    assert_eq!(line.quantity, *quantity);
                    assert_eq!(line.sources.iter().map(|s| s.quantity).sum::<i64>(), *quantity);
                    *sold.get_mut(product).unwrap() += quantity;
                }
            }
            Err(status) => assert_eq!(reason(status).0, "INSUFFICIENT_STOCK", "{status:?}"),
        }
    }
    assert!(sold["tea"] <= 60 && sold["walnuts"] <= 35, "{sold:?}");
    assert_eq!(available(&mut app.client, "tea").await, 60 - sold["tea"]);
    assert_eq!(available(&mut app.client, "walnuts").await, 35 - sold["walnuts"]);
    // Demand (about 300 tea, 200 walnuts) far exceeds stock: a product runs
    // out only once nothing of it is left for any request.
    assert!(sold["tea"] >= 57 && sold["walnuts"] >= 34, "{sold:?}");
    app.check_invariants().await;
}

#[tokio::test]
async fn lines_draw_from_warehouses_in_priority_order_and_record_where() {
    let mut app = spawn_app().await;
    app.warehouse("gz-bonded", 2).await;
    app.warehouse("sh-bonded", 1).await;
    app.receive("tea", "sh-bonded", 5).await;
    app.receive("tea", "gz-bonded", 10).await;

    let reservation = app.orders.reserve_stock(reserve("order-1", &[("tea", 8)])).await.unwrap().into_inner();
    let sources: Vec<_> = reservation.lines[0].sources.iter().map(|s| (s.warehouse.as_str(), s.quantity)).collect();
    assert_eq!(sources, [("warehouses/sh-bonded", 5), ("warehouses/gz-bonded", 3)]);
    let level = app.client.get_stock(GetStockRequest { name: "stockLevels/tea".into() }).await.unwrap().into_inner();
    assert_eq!((level.on_hand, level.reserved, level.available), (15, 8, 7));
    let per_warehouse: Vec<_> = level.warehouses.iter().map(|w| (w.warehouse.as_str(), w.available)).collect();
    assert_eq!(per_warehouse, [("warehouses/sh-bonded", 0), ("warehouses/gz-bonded", 7)]);
    app.check_invariants().await;
}

#[tokio::test]
async fn one_reservation_id_has_one_effect_however_often_it_is_sent() {
    let mut app = spawn_app().await;
    app.warehouse("sh-bonded", 1).await;
    app.receive("tea", "sh-bonded", 10).await;

    let calls = (0..50).map(|_| {
        let mut client = app.orders_client();
        async move { client.reserve_stock(reserve("order-1", &[("tea", 3)])).await }
    });
    let results = join_all(calls).await;
    let first = results[0].as_ref().unwrap().get_ref().clone();
    for result in &results {
        assert_eq!(result.as_ref().unwrap().get_ref(), &first, "every repeat answers the one reservation");
    }
    assert_eq!(available(&mut app.client, "tea").await, 7);

    let status = app.orders.reserve_stock(reserve("order-1", &[("tea", 4)])).await.unwrap_err();
    assert_eq!(status.code(), Code::AlreadyExists);
    assert_eq!(reason(&status).0, "RESERVATION_ID_REUSED");
    assert_eq!(available(&mut app.client, "tea").await, 7, "the refused repeat held nothing");
    app.check_invariants().await;
}

#[tokio::test]
async fn commit_and_release_happen_once_and_in_order() {
    let mut app = spawn_app().await;
    app.warehouse("sh-bonded", 1).await;
    app.receive("tea", "sh-bonded", 10).await;
    app.orders.reserve_stock(reserve("order-1", &[("tea", 3)])).await.unwrap();
    app.orders.reserve_stock(reserve("order-2", &[("tea", 2)])).await.unwrap();

    let commit = |id: &str| CommitReservationRequest { name: format!("reservations/{id}"), request_id: String::new() };
    let release =
        |id: &str| ReleaseReservationRequest { name: format!("reservations/{id}"), request_id: String::new() };
    for _ in 0..2 {
        let committed = app.orders.commit_reservation(commit("order-1")).await.unwrap().into_inner();
        assert_eq!(committed.state, State::Committed as i32);
        let released = app.orders.release_reservation(release("order-2")).await.unwrap().into_inner();
        assert_eq!(released.state, State::Released as i32);
    }
    let level = app.client.get_stock(GetStockRequest { name: "stockLevels/tea".into() }).await.unwrap().into_inner();
    assert_eq!((level.on_hand, level.reserved, level.available), (7, 0, 7), "sold 3, gave back 2, each once");

    let status = app.orders.commit_reservation(commit("order-2")).await.unwrap_err();
    assert_eq!((status.code(), reason(&status).0.as_str()), (Code::FailedPrecondition, "RESERVATION_RELEASED"));
    let status = app.orders.release_reservation(release("order-1")).await.unwrap_err();
    assert_eq!((status.code(), reason(&status).0.as_str()), (Code::FailedPrecondition, "RESERVATION_COMMITTED"));
    let status = app.orders.commit_reservation(commit("order-404")).await.unwrap_err();
    assert_eq!(status.code(), Code::NotFound);

    let movements = app
        .client
        .list_movements(ListMovementsRequest { product: "products/tea".into(), ..Default::default() })
        .await
        .unwrap()
        .into_inner()
        .movements;
    let kinds: Vec<_> = movements.iter().map(|m| Kind::try_from(m.kind).unwrap()).collect();
    assert_eq!(kinds, [Kind::Receive, Kind::Reserve, Kind::Reserve, Kind::Commit, Kind::Release]);
    app.check_invariants().await;
}

#[tokio::test]
async fn releasing_an_unknown_id_leaves_a_tombstone_that_refuses_a_late_reservation() {
    let mut app = spawn_app().await;
    app.warehouse("sh-bonded", 1).await;
    app.receive("tea", "sh-bonded", 10).await;

    let released = app
        .orders
        .release_reservation(ReleaseReservationRequest {
            name: "reservations/order-9".into(),
            request_id: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(released.state, State::Released as i32);
    assert!(released.lines.is_empty());

    let status = app.orders.reserve_stock(reserve("order-9", &[("tea", 1)])).await.unwrap_err();
    assert_eq!((status.code(), reason(&status).0.as_str()), (Code::FailedPrecondition, "RESERVATION_RELEASED"));
    assert_eq!(available(&mut app.client, "tea").await, 10);
    app.check_invariants().await;
}

#[tokio::test]
async fn expired_reservations_give_their_stock_back_once_with_two_reapers() {
    let mut app = spawn_app().await;
    app.warehouse("sh-bonded", 1).await;
    app.receive("tea", "sh-bonded", 100).await;
    for i in 0..40 {
        let mut request = reserve(&format!("order-{i}"), &[("tea", 2)]);
        request.ttl_seconds = if i % 2 == 0 { 60 } else { 600 };
        app.orders.reserve_stock(request).await.unwrap();
    }
    assert_eq!(available(&mut app.client, "tea").await, 20);

    // Two reapers, as two replicas would run them, on one database.
    let db = app.server.database().connect().await.unwrap();
    let store = Store::new(db.clone());
    let clock: caravan_platform::time::SharedClock = std::sync::Arc::new(app.clock.clone());
    let config = WorkerConfig { batch: 8, ..WorkerConfig::default() };
    let reaper = || {
        Worker::new(
            Reaper::new(store.clone(), clock.clone(), None),
            db.clone(),
            clock.clone(),
            config.clone(),
            ServiceTelemetry::global(),
        )
    };
    let (first, second) = (reaper(), reaper());
    assert_eq!(first.tick().await.unwrap(), 0, "nothing is due before the TTL");

    app.clock.advance(Duration::from_secs(61));
    // The service's own reaper runs too: three replicas' worth on one database.
    let mut driven = 0;
    for _ in 0..100 {
        let (a, b) = tokio::join!(first.tick(), second.tick());
        driven += a.unwrap() + b.unwrap();
        if available(&mut app.client, "tea").await == 60 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(driven <= 20, "no reservation is driven twice: {driven}");
    assert_eq!(available(&mut app.client, "tea").await, 60);
    let expired = app
        .orders
        .get_reservation(GetReservationRequest { name: "reservations/order-0".into() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(expired.state, State::Expired as i32);
    let status = app
        .orders
        .commit_reservation(CommitReservationRequest { name: "reservations/order-0".into(), request_id: String::new() })
        .await
        .unwrap_err();
    assert_eq!((status.code(), reason(&status).0.as_str()), (Code::FailedPrecondition, "RESERVATION_EXPIRED"));
    let still = app
        .orders
        .get_reservation(GetReservationRequest { name: "reservations/order-1".into() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(still.state, State::Active as i32, "a longer TTL is still held");

    let movements = app
        .client
        .list_movements(ListMovementsRequest { product: "products/tea".into(), page_size: 1000, ..Default::default() })
        .await
        .unwrap()
        .into_inner()
        .movements;
    assert_eq!(movements.iter().filter(|m| m.kind == Kind::Expire as i32).count(), 20);
    app.check_invariants().await;
    db.close().await.unwrap();
}

#[tokio::test]
async fn the_service_reaps_on_its_own_and_a_reservation_past_its_ttl_cannot_be_committed() {
    let mut app = spawn_app().await;
    app.warehouse("sh-bonded", 1).await;
    app.receive("tea", "sh-bonded", 5).await;
    let mut request = reserve("order-1", &[("tea", 5)]);
    request.ttl_seconds = 30;
    app.orders.reserve_stock(request).await.unwrap();

    app.clock.advance(Duration::from_secs(31));
    // Due but perhaps not yet reaped: a commit now is refused all the same.
    let status = app
        .orders
        .commit_reservation(CommitReservationRequest { name: "reservations/order-1".into(), request_id: String::new() })
        .await
        .unwrap_err();
    assert_eq!(reason(&status).0, "RESERVATION_EXPIRED");
    let mut client = app.client.clone();
    let reaped = caravan_testkit::eventually(Duration::from_secs(10), || {
        let mut client = client.clone();
        async move { available(&mut client, "tea").await == 5 }
    })
    .await;
    assert!(reaped, "the background reaper gave the stock back");
    assert_eq!(available(&mut client, "tea").await, 5);
    app.check_invariants().await;
}

#[tokio::test]
async fn bad_reservations_are_refused_field_by_field() {
    let mut app = spawn_app().await;
    let mut request = reserve("Order 1", &[("tea", 0), ("tea", 1), ("", 1)]);
    request.ttl_seconds = -5;
    request.show = "shows".into();
    let status = app.orders.reserve_stock(request).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(
        caravan_testkit::violated_fields(&status),
        ["reservation_id", "show", "lines[2].product", "lines[0].quantity", "lines[1].product", "ttl_seconds"]
    );
}
