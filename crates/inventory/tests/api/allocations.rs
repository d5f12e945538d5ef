use caravan_proto::inventory::v1::{
    AllocateStockRequest, AllocationRequestLine, GetAllocationRequest, GetStockRequest, ReleaseReservationRequest,
    ReturnAllocationRequest, allocation::State,
};
use futures::future::join_all;
use tonic::Code;

use crate::helpers::{Client, TestApp, reason, reserve, spawn_app};

fn allocate(show: &str, lines: &[(&str, i64)]) -> AllocateStockRequest {
    AllocateStockRequest {
        show: format!("shows/{show}"),
        lines: lines
            .iter()
            .map(|(product, quantity)| AllocationRequestLine {
                product: format!("products/{product}"),
                quantity: *quantity,
            })
            .collect(),
        request_id: String::new(),
    }
}

fn close(show: &str) -> ReturnAllocationRequest {
    ReturnAllocationRequest { show: format!("shows/{show}"), request_id: String::new() }
}

async fn level(client: &mut Client, product: &str) -> (i64, i64, i64, i64) {
    let level =
        client.get_stock(GetStockRequest { name: format!("stockLevels/{product}") }).await.unwrap().into_inner();
    (level.on_hand, level.reserved, level.allocated, level.available)
}

async fn stocked() -> TestApp {
    let mut app = spawn_app().await;
    app.warehouse("sh-bonded", 1).await;
    app.warehouse("gz-bonded", 2).await;
    app.receive("tea", "sh-bonded", 60).await;
    app.receive("tea", "gz-bonded", 40).await;
    app.receive("walnuts", "gz-bonded", 10).await;
    app
}

#[tokio::test]
async fn a_show_allocation_runs_out_independently_of_the_general_pool() {
    let mut app = stocked().await;
    let allocation = app.scheduling.allocate_stock(allocate("uz-show", &[("tea", 30)])).await.unwrap().into_inner();
    assert_eq!(allocation.state, State::Open as i32);
    assert_eq!((allocation.lines[0].quantity, allocation.lines[0].available), (30, 30));
    assert_eq!(level(&mut app.client, "tea").await, (100, 0, 30, 70));

    // 100 buyers in the show and 100 outside it, all at once.
    let calls = (0..200).map(|i| {
        let mut client = app.orders_client();
        let mut request = reserve(&format!("order-{i}"), &[("tea", 1)]);
        if i % 2 == 0 {
            request.show = "shows/uz-show".into();
        }
        async move { (i % 2 == 0, client.reserve_stock(request).await) }
    });
    let results = join_all(calls).await;
    let granted = |in_show: bool| results.iter().filter(|(s, r)| *s == in_show && r.is_ok()).count();
    assert_eq!(granted(true), 30, "the show sold exactly its allocation");
    assert_eq!(granted(false), 70, "the general pool sold exactly the rest");
    for (in_show, result) in &results {
        if let Err(status) = result {
            let (reason, metadata) = reason(status);
            assert_eq!(reason, "INSUFFICIENT_STOCK");
            assert_eq!(metadata.contains_key("show"), *in_show);
        }
    }
    assert_eq!(level(&mut app.client, "tea").await, (100, 100, 0, 0));
    let line = &app
        .client
        .get_allocation(GetAllocationRequest { name: "allocations/uz-show".into() })
        .await
        .unwrap()
        .into_inner()
        .lines[0];
    assert_eq!((line.used, line.available, line.sold_out), (30, 0, true));
    app.check_invariants().await;
}

#[tokio::test]
async fn returning_an_allocation_gives_back_the_unsold_and_refuses_later_reservations() {
    let mut app = stocked().await;
    app.scheduling.allocate_stock(allocate("uz-show", &[("tea", 30)])).await.unwrap();
    for i in 0..10 {
        let mut request = reserve(&format!("order-{i}"), &[("tea", 1)]);
        request.show = "shows/uz-show".into();
        app.orders.reserve_stock(request).await.unwrap();
    }
    assert_eq!(level(&mut app.client, "tea").await, (100, 10, 20, 70));

    let closed = app.scheduling.return_allocation(close("uz-show")).await.unwrap().into_inner();
    assert_eq!(closed.state, State::Closed as i32);
    assert!(closed.close_time.is_some());
    assert_eq!(level(&mut app.client, "tea").await, (100, 10, 0, 90), "20 unsold units went back");
    let again = app.scheduling.return_allocation(close("uz-show")).await.unwrap().into_inner();
    assert_eq!(again, closed, "returning twice changes nothing");

    let mut late = reserve("order-late", &[("tea", 1)]);
    late.show = "shows/uz-show".into();
    let status = app.orders.reserve_stock(late).await.unwrap_err();
    assert_eq!((status.code(), reason(&status).0.as_str()), (Code::FailedPrecondition, "ALLOCATION_CLOSED"));
    let status = app.scheduling.allocate_stock(allocate("uz-show", &[("tea", 5)])).await.unwrap_err();
    assert_eq!(reason(&status).0, "ALLOCATION_CLOSED");

    // A reservation of the closed show released later goes to the general pool.
    app.orders
        .release_reservation(ReleaseReservationRequest {
            name: "reservations/order-0".into(),
            request_id: String::new(),
        })
        .await
        .unwrap();
    assert_eq!(level(&mut app.client, "tea").await, (100, 9, 0, 91));
    app.check_invariants().await;
}

#[tokio::test]
async fn a_reservation_released_while_the_show_runs_goes_back_to_the_show() {
    let mut app = stocked().await;
    app.scheduling.allocate_stock(allocate("uz-show", &[("walnuts", 4)])).await.unwrap();
    let mut request = reserve("order-1", &[("walnuts", 4)]);
    request.show = "shows/uz-show".into();
    app.orders.reserve_stock(request).await.unwrap();
    app.orders
        .release_reservation(ReleaseReservationRequest {
            name: "reservations/order-1".into(),
            request_id: String::new(),
        })
        .await
        .unwrap();
    assert_eq!(level(&mut app.client, "walnuts").await, (10, 0, 4, 6));
    app.check_invariants().await;
}

#[tokio::test]
async fn allocating_is_all_or_nothing_and_sets_a_target() {
    let mut app = stocked().await;
    // Walnuts are short: nothing is allocated, tea included.
    let status = app.scheduling.allocate_stock(allocate("uz-show", &[("tea", 30), ("walnuts", 11)])).await.unwrap_err();
    assert_eq!(status.code(), Code::FailedPrecondition);
    let (reason_code, metadata) = reason(&status);
    assert_eq!(reason_code, "INSUFFICIENT_STOCK");
    assert_eq!((metadata["product"].as_str(), metadata["available"].as_str()), ("products/walnuts", "10"));
    assert_eq!(level(&mut app.client, "tea").await, (100, 0, 0, 100));

    // Targets, drawn in priority order; repeating one changes nothing.
    for _ in 0..2 {
        let allocation = app
            .scheduling
            .allocate_stock(allocate("uz-show", &[("tea", 70), ("walnuts", 10)]))
            .await
            .unwrap()
            .into_inner();
        let tea = allocation.lines.iter().find(|l| l.product == "products/tea").unwrap();
        let sources: Vec<_> = tea.sources.iter().map(|s| (s.warehouse.as_str(), s.quantity)).collect();
        assert_eq!(sources, [("warehouses/sh-bonded", 60), ("warehouses/gz-bonded", 10)]);
    }
    assert_eq!(level(&mut app.client, "tea").await, (100, 0, 70, 30));

    // Lowering gives unused units back, never below what was reserved.
    let mut request = reserve("order-1", &[("tea", 5)]);
    request.show = "shows/uz-show".into();
    app.orders.reserve_stock(request).await.unwrap();
    let status = app.scheduling.allocate_stock(allocate("uz-show", &[("tea", 4)])).await.unwrap_err();
    assert_eq!(reason(&status).0, "ALLOCATION_IN_USE");
    app.scheduling.allocate_stock(allocate("uz-show", &[("tea", 5), ("walnuts", 0)])).await.unwrap();
    assert_eq!(level(&mut app.client, "tea").await, (100, 5, 0, 95));
    assert_eq!(level(&mut app.client, "walnuts").await, (10, 0, 0, 10));
    app.check_invariants().await;
}

#[tokio::test]
async fn only_services_allocate_and_reserve() {
    let mut app = stocked().await;
    let status = app.client.allocate_stock(allocate("uz-show", &[("tea", 1)])).await.unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied);
    let status = app.client.reserve_stock(reserve("order-1", &[("tea", 1)])).await.unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied);
    assert_eq!(level(&mut app.client, "tea").await, (100, 0, 0, 100));
}
