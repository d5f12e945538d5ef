use std::time::Duration;

use caravan_proto::inventory::v1::{
    AllocateStockRequest, AllocationRequestLine, GetStockRequest, StockCursor, WatchStockRequest, WatchStockResponse,
    watch_stock_response::Kind,
};
use futures::future::join_all;
use tonic::{Code, Streaming};

use crate::helpers::{Client, reserve, spawn_app};

fn watch(products: &[&str]) -> WatchStockRequest {
    WatchStockRequest {
        products: products.iter().map(|p| format!("products/{p}")).collect(),
        cursors: Vec::new(),
        show: String::new(),
    }
}

async fn next(stream: &mut Streaming<WatchStockResponse>) -> WatchStockResponse {
    tokio::time::timeout(Duration::from_secs(10), stream.message())
        .await
        .expect("a message within 10 s")
        .expect("the stream is healthy")
        .expect("the stream is open")
}

/// Reads changes until one satisfies `done`.
async fn until(
    stream: &mut Streaming<WatchStockResponse>,
    done: impl Fn(&WatchStockResponse) -> bool,
) -> WatchStockResponse {
    loop {
        let message = next(stream).await;
        if done(&message) {
            return message;
        }
    }
}

async fn stock(client: &mut Client, product: &str) -> caravan_proto::inventory::v1::StockLevel {
    client.get_stock(GetStockRequest { name: format!("stockLevels/{product}") }).await.unwrap().into_inner()
}

#[tokio::test]
async fn a_watch_sends_a_snapshot_then_changes_until_sold_out() {
    let mut app = spawn_app().await;
    app.warehouse("sh-bonded", 1).await;
    app.receive("tea", "sh-bonded", 3).await;
    let mut stream = app.client.watch_stock(watch(&["tea", "walnuts"])).await.unwrap().into_inner();
    let mut snapshot = [next(&mut stream).await, next(&mut stream).await];
    snapshot.sort_by_key(|m| m.stock_level.as_ref().unwrap().product.clone());
    assert!(snapshot.iter().all(|m| m.kind == Kind::Snapshot as i32));
    let tea = snapshot[0].stock_level.as_ref().unwrap();
    assert_eq!((tea.product.as_str(), tea.available), ("products/tea", 3));
    let walnuts = snapshot[1].stock_level.as_ref().unwrap();
    assert_eq!((walnuts.available, walnuts.version, walnuts.sold_out), (0, 0, true), "never received");

    app.orders.reserve_stock(reserve("order-1", &[("tea", 3)])).await.unwrap();
    let change = until(&mut stream, |m| m.stock_level.as_ref().is_some_and(|l| l.available == 0)).await;
    assert_eq!(change.kind, Kind::Change as i32);
    let level = change.stock_level.unwrap();
    assert!(level.sold_out);
    assert_eq!(level, stock(&mut app.client, "tea").await);
}

#[tokio::test]
async fn a_watcher_reconnecting_with_its_cursor_misses_nothing() {
    let mut app = spawn_app().await;
    app.warehouse("sh-bonded", 1).await;
    app.receive("tea", "sh-bonded", 10).await;
    let mut stream = app.client.watch_stock(watch(&["tea"])).await.unwrap().into_inner();
    let seen = next(&mut stream).await.stock_level.unwrap();
    drop(stream);

    // Changes while disconnected.
    app.orders.reserve_stock(reserve("order-1", &[("tea", 2)])).await.unwrap();
    app.orders.reserve_stock(reserve("order-2", &[("tea", 3)])).await.unwrap();
    let mut request = watch(&["tea"]);
    request.cursors = vec![StockCursor { product: "products/tea".into(), version: seen.version }];
    let mut stream = app.client.watch_stock(request).await.unwrap().into_inner();
    let resumed = next(&mut stream).await;
    assert_eq!(resumed.kind, Kind::Change as i32, "a cursor resumes without a snapshot");
    let level = resumed.stock_level.unwrap();
    assert_eq!(level, stock(&mut app.client, "tea").await, "the latest state, nothing skipped");
    assert_eq!(level.available, 5);

    // Resuming from the latest version waits for the next change.
    let mut request = watch(&["tea"]);
    request.cursors = vec![StockCursor { product: "products/tea".into(), version: level.version }];
    let mut stream = app.client.watch_stock(request).await.unwrap().into_inner();
    assert!(tokio::time::timeout(Duration::from_millis(300), stream.message()).await.is_err(), "nothing new yet");
    app.receive("tea", "sh-bonded", 1).await;
    let change = next(&mut stream).await.stock_level.unwrap();
    assert_eq!((change.available, change.version), (6, level.version + 1));
}

#[tokio::test]
async fn a_change_through_one_replica_reaches_a_stream_on_another() {
    let mut first = spawn_app().await;
    let mut second = first.replica().await;
    first.warehouse("sh-bonded", 1).await;
    first.receive("tea", "sh-bonded", 10).await;
    let mut stream = second.client.watch_stock(watch(&["tea"])).await.unwrap().into_inner();
    assert_eq!(next(&mut stream).await.stock_level.unwrap().available, 10);

    first.orders.reserve_stock(reserve("order-1", &[("tea", 4)])).await.unwrap();
    let change = until(&mut stream, |m| m.stock_level.as_ref().is_some_and(|l| l.available == 6)).await;
    assert_eq!(change.kind, Kind::Change as i32);
    assert_eq!(stock(&mut second.client, "tea").await.reserved, 4);
}

#[tokio::test]
async fn two_replicas_on_one_database_never_oversell() {
    let mut first = spawn_app().await;
    let second = first.replica().await;
    first.warehouse("sh-bonded", 1).await;
    first.receive("tea", "sh-bonded", 100).await;
    let calls = (0..300).map(|i| {
        let mut client = if i % 2 == 0 { first.orders_client() } else { second.orders_client() };
        async move { client.reserve_stock(reserve(&format!("order-{i}"), &[("tea", 1)])).await }
    });
    let results = join_all(calls).await;
    assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 100);
    assert!(results.iter().filter_map(|r| r.as_ref().err()).all(|s| s.code() == Code::FailedPrecondition));
    first.check_invariants().await;
}

#[tokio::test]
async fn a_show_watch_follows_what_is_left_of_its_allocation() {
    let mut app = spawn_app().await;
    app.warehouse("sh-bonded", 1).await;
    app.receive("tea", "sh-bonded", 10).await;
    let status = app
        .client
        .watch_stock(WatchStockRequest { show: "shows/uz-show".into(), ..Default::default() })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound, "no allocation yet");

    app.scheduling
        .allocate_stock(AllocateStockRequest {
            show: "shows/uz-show".into(),
            lines: vec![AllocationRequestLine { product: "products/tea".into(), quantity: 2 }],
            request_id: String::new(),
        })
        .await
        .unwrap();
    let mut stream = app
        .client
        .watch_stock(WatchStockRequest { show: "shows/uz-show".into(), ..Default::default() })
        .await
        .unwrap()
        .into_inner();
    let snapshot = next(&mut stream).await;
    assert!(snapshot.stock_level.is_none());
    let line = snapshot.allocation_line.unwrap();
    assert_eq!((line.product.as_str(), line.available, line.sold_out), ("products/tea", 2, false));

    for id in ["order-1", "order-2"] {
        let mut request = reserve(id, &[("tea", 1)]);
        request.show = "shows/uz-show".into();
        app.orders.reserve_stock(request).await.unwrap();
    }
    let sold_out = until(&mut stream, |m| m.allocation_line.as_ref().is_some_and(|l| l.sold_out)).await;
    assert_eq!(sold_out.allocation_line.unwrap().used, 2);
}

#[tokio::test]
async fn bad_watches_are_refused() {
    let mut app = spawn_app().await;
    let status = app.client.watch_stock(WatchStockRequest::default()).await.unwrap_err();
    assert_eq!(caravan_testkit::violated_fields(&status), ["products"]);
    let mut request = watch(&["tea"]);
    request.cursors = vec![StockCursor { product: "products/walnuts".into(), version: 1 }];
    let status = app.client.watch_stock(request).await.unwrap_err();
    assert_eq!(caravan_testkit::violated_fields(&status), ["cursors[0].product"]);

    // A cursor ahead of the server is refused, not left waiting forever: for
    // a product's pool and for a show's line alike.
    app.warehouse("sh-bonded", 1).await;
    app.receive("tea", "sh-bonded", 3).await;
    let current = stock(&mut app.client, "tea").await.version;
    let mut request = watch(&["walnuts", "tea"]);
    request.cursors = vec![
        StockCursor { product: "products/walnuts".into(), version: 0 },
        StockCursor { product: "products/tea".into(), version: current + 1 },
    ];
    let status = app.client.watch_stock(request).await.unwrap_err();
    assert_eq!(caravan_testkit::violated_fields(&status), ["cursors[1].version"]);
    let mut request = watch(&["tea"]);
    request.show = "shows/uz-show".into();
    request.cursors = vec![StockCursor { product: "products/tea".into(), version: 1 }];
    let status = app.client.watch_stock(request).await.unwrap_err();
    assert_eq!(caravan_testkit::violated_fields(&status), ["cursors[0].version"], "never allocated");
    let mut request = watch(&["tea"]);
    request.cursors = vec![StockCursor { product: "products/tea".into(), version: current }];
    app.client.watch_stock(request).await.expect("a cursor at the current version is fine");

    let products: Vec<String> = (0..501).map(|i| format!("product-{i}")).collect();
    let products: Vec<&str> = products.iter().map(String::as_str).collect();
    let status = app.client.watch_stock(watch(&products)).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
}

#[tokio::test]
async fn an_expiry_reaches_the_watchers() {
    let mut app = spawn_app().await;
    app.warehouse("sh-bonded", 1).await;
    app.receive("tea", "sh-bonded", 2).await;
    let mut request = reserve("order-1", &[("tea", 2)]);
    request.ttl_seconds = 30;
    app.orders.reserve_stock(request).await.unwrap();
    let mut stream = app.client.watch_stock(watch(&["tea"])).await.unwrap().into_inner();
    let sold_out = next(&mut stream).await.stock_level.unwrap();
    assert!(sold_out.sold_out);

    // The background reaper expires the hold; the stream sees the units back.
    app.clock.advance(Duration::from_secs(31));
    let back = until(&mut stream, |m| m.stock_level.as_ref().is_some_and(|l| l.available == 2)).await;
    let level = back.stock_level.unwrap();
    assert!(!level.sold_out);
    assert!(level.version > sold_out.version);
    app.check_invariants().await;
}
