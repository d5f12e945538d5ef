use caravan_orders::{
    domain::{Money, Order, OrderLine, OrderState},
    store::BuyerLimits,
};
use caravan_platform::time::Micros;
use caravan_proto::orders::v1::{GetOrderRequest, ListOrdersRequest, order};
use tonic::Code;
use tonic_types::StatusExt;

use crate::helpers::spawn_app;

/// Orders written straight into the store are never due for the driver.
const NEVER: Micros = Micros(i64::MAX);

fn order(id: &str, buyer: &str, show: &str, state: OrderState, time: i64) -> Order {
    Order {
        id: id.into(),
        partner: "hema".into(),
        buyer: buyer.into(),
        show: show.into(),
        lines: vec![
            OrderLine {
                product: "products/uz-walnuts".into(),
                quantity: 2,
                unit_price: Money { currency: "CNY".into(), minor: 3990 },
                country: "UZ".into(),
            },
            OrderLine {
                product: "products/uz-raisins".into(),
                quantity: 1,
                unit_price: Money { currency: "CNY".into(), minor: 2500 },
                country: "UZ".into(),
            },
        ],
        state,
        state_reason: String::new(),
        payment_deadline: Some(Micros(time + 900_000_000)),
        payment_reference: String::new(),
        request_id: format!("req-{id}"),
        create_time: Micros(time),
        update_time: Micros(time),
    }
}

#[tokio::test]
async fn get_returns_the_stored_order_with_its_price_snapshot() {
    let mut app = spawn_app().await;
    let store = app.store().await;
    store
        .insert_order(
            &order("o-1", "buyer-1", "shows/uz-hema", OrderState::AwaitingPayment, 1_641_800_000_000_000),
            "",
            NEVER,
            &BuyerLimits::new(),
            None,
            None,
        )
        .await
        .unwrap();

    let got = app.client.get_order(GetOrderRequest { name: "orders/o-1".into() }).await.unwrap().into_inner();
    assert_eq!(got.name, "orders/o-1");
    assert_eq!(got.state(), order::State::AwaitingPayment);
    assert_eq!(got.lines.len(), 2);
    assert_eq!(got.lines[0].product, "products/uz-walnuts");
    assert_eq!(got.lines[0].line_total.as_ref().unwrap().minor_units, 7980);
    assert_eq!(got.totals.len(), 1);
    assert_eq!((got.totals[0].currency_code.as_str(), got.totals[0].minor_units), ("CNY", 10_480));
    assert_eq!(got.create_time.unwrap().seconds, 1_641_800_000);
    assert_eq!(got.request_id, "req-o-1", "stored with the order, answered with it");

    let status = app.client.get_order(GetOrderRequest { name: "orders/o-2".into() }).await.unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
    let status = app.client.get_order(GetOrderRequest { name: "o-1".into() }).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
}

#[tokio::test]
async fn list_is_newest_first_filtered_and_paged() {
    let mut app = spawn_app().await;
    let store = app.store().await;
    let base = 1_641_800_000_000_000;
    // Two orders share a creation time: the page boundary must still not skip or repeat.
    for (i, (buyer, show, state, offset)) in [
        ("b1", "shows/s-one", OrderState::Paid, 0),
        ("b2", "shows/s-one", OrderState::AwaitingPayment, 10),
        ("b1", "shows/s-two", OrderState::Paid, 10),
        ("b3", "", OrderState::Rejected, 20),
        ("b1", "shows/s-one", OrderState::Paid, 30),
    ]
    .into_iter()
    .enumerate()
    {
        store
            .insert_order(
                &order(&format!("o-{i}"), buyer, show, state, base + offset),
                "",
                NEVER,
                &BuyerLimits::new(),
                None,
                None,
            )
            .await
            .unwrap();
    }

    let list = |request: ListOrdersRequest| {
        let mut client = app.client.clone();
        async move {
            let mut names = Vec::new();
            let mut request = request;
            loop {
                let page = client.list_orders(request.clone()).await.unwrap().into_inner();
                names.extend(page.orders.into_iter().map(|o| o.name));
                if page.next_page_token.is_empty() {
                    return names;
                }
                request.page_token = page.next_page_token;
            }
        }
    };
    assert_eq!(
        list(ListOrdersRequest { page_size: 2, ..Default::default() }).await,
        ["orders/o-4", "orders/o-3", "orders/o-2", "orders/o-1", "orders/o-0"]
    );
    assert_eq!(
        list(ListOrdersRequest { page_size: 1, show: "shows/s-one".into(), ..Default::default() }).await,
        ["orders/o-4", "orders/o-1", "orders/o-0"]
    );
    assert_eq!(
        list(ListOrdersRequest { buyer: "b1".into(), state: order::State::Paid.into(), ..Default::default() }).await,
        ["orders/o-4", "orders/o-2", "orders/o-0"]
    );

    let status = app
        .client
        .list_orders(ListOrdersRequest {
            page_size: -1,
            page_token: "00".into(),
            show: "s-one".into(),
            buyer: String::new(),
            state: 42,
            start_time: None,
            end_time: None,
        })
        .await
        .unwrap_err();
    let fields: Vec<_> =
        status.get_error_details().bad_request().unwrap().field_violations.iter().map(|v| v.field.clone()).collect();
    assert_eq!(fields, ["page_size", "page_token", "show", "state"]);
}

#[tokio::test]
async fn a_partner_sees_only_its_own_orders() {
    use caravan_orders::domain::OrderState::AwaitingPayment;
    use caravan_proto::orders::v1::orders_service_client::OrdersServiceClient;
    use caravan_testkit::Caller;

    let app = spawn_app().await;
    let store = app.store().await;
    let base = 1_641_800_000_000_000;
    store
        .insert_order(&order("o-hema", "b1", "", AwaitingPayment, base), "", NEVER, &BuyerLimits::new(), None, None)
        .await
        .unwrap();
    let mut theirs = order("o-douyin", "b1", "", AwaitingPayment, base + 1);
    theirs.partner = "douyin".into();
    store.insert_order(&theirs, "", NEVER, &BuyerLimits::new(), None, None).await.unwrap();

    let mut hema = OrdersServiceClient::new(app.server.channel_as(Caller::Hema));
    let mut douyin = OrdersServiceClient::new(app.server.channel_as(Caller::Douyin));
    assert_eq!(
        hema.get_order(GetOrderRequest { name: "orders/o-hema".into() }).await.unwrap().into_inner().partner,
        "hema"
    );

    // Another partner's order is exactly as absent as one that does not exist.
    let other = hema.get_order(GetOrderRequest { name: "orders/o-douyin".into() }).await.unwrap_err();
    let missing = hema.get_order(GetOrderRequest { name: "orders/o-nowhere".into() }).await.unwrap_err();
    assert_eq!((other.code(), missing.code()), (Code::NotFound, Code::NotFound));
    assert_eq!(other.message().replace("o-douyin", "X"), missing.message().replace("o-nowhere", "X"));

    let names = |orders: Vec<caravan_proto::orders::v1::Order>| orders.into_iter().map(|o| o.name).collect::<Vec<_>>();
    let listed = hema.list_orders(ListOrdersRequest::default()).await.unwrap().into_inner().orders;
    assert_eq!(names(listed), ["orders/o-hema"]);
    let listed = douyin.list_orders(ListOrdersRequest { buyer: "b1".into(), ..Default::default() }).await.unwrap();
    assert_eq!(names(listed.into_inner().orders), ["orders/o-douyin"]);
    // Operators see every partner's.
    let listed = app.client.clone().list_orders(ListOrdersRequest::default()).await.unwrap().into_inner().orders;
    assert_eq!(names(listed), ["orders/o-douyin", "orders/o-hema"]);
}

#[tokio::test]
async fn list_filters_by_creation_time_and_tokens_stay_with_their_filters() {
    use caravan_proto::timestamp_from_micros;
    let mut app = spawn_app().await;
    let store = app.store().await;
    let base = 1_641_800_000_000_000;
    for i in 0..5 {
        let placed = order(&format!("o-{i}"), "b1", "", OrderState::Paid, base + i * 1_000_000);
        store.insert_order(&placed, "", NEVER, &BuyerLimits::new(), None, None).await.unwrap();
    }
    let between = |from: i64, to: i64| ListOrdersRequest {
        start_time: Some(timestamp_from_micros(base + from * 1_000_000)),
        end_time: Some(timestamp_from_micros(base + to * 1_000_000)),
        ..Default::default()
    };
    let names = |orders: Vec<caravan_proto::orders::v1::Order>| orders.into_iter().map(|o| o.name).collect::<Vec<_>>();
    let listed = app.client.list_orders(between(1, 4)).await.unwrap().into_inner();
    assert_eq!(names(listed.orders), ["orders/o-3", "orders/o-2", "orders/o-1"], "from inclusive, to exclusive");

    let first = app.client.list_orders(ListOrdersRequest { page_size: 2, ..between(0, 5) }).await.unwrap().into_inner();
    assert_eq!(names(first.orders), ["orders/o-4", "orders/o-3"]);
    let next = ListOrdersRequest { page_size: 2, page_token: first.next_page_token.clone(), ..between(0, 5) };
    assert_eq!(names(app.client.list_orders(next).await.unwrap().into_inner().orders), ["orders/o-2", "orders/o-1"]);
    // The same token with other filters is refused, not silently misapplied.
    let other = ListOrdersRequest { page_size: 2, page_token: first.next_page_token, ..between(0, 3) };
    let status = app.client.list_orders(other).await.unwrap_err();
    assert_eq!(caravan_testkit::violated_fields(&status), ["page_token"]);

    let status = app.client.list_orders(between(3, 3)).await.unwrap_err();
    assert_eq!(caravan_testkit::violated_fields(&status), ["end_time"]);
    let bad =
        ListOrdersRequest { start_time: Some(prost_types::Timestamp { seconds: 0, nanos: -5 }), ..Default::default() };
    let status = app.client.list_orders(bad).await.unwrap_err();
    assert_eq!(caravan_testkit::violated_fields(&status), ["start_time"]);
}

/// A PlaceOrder of one unit, with a deadline of `timeout`.
fn place(timeout: std::time::Duration) -> tonic::Request<caravan_proto::orders::v1::PlaceOrderRequest> {
    use caravan_proto::orders::v1::{PlaceOrderLine, PlaceOrderRequest};
    let mut request = tonic::Request::new(PlaceOrderRequest {
        buyer: "buyer-1".into(),
        show: String::new(),
        lines: vec![PlaceOrderLine { product: "products/uz-walnuts".into(), quantity: 1 }],
        request_id: "req-outage".into(),
    });
    request.set_timeout(timeout);
    request
}

#[tokio::test]
async fn an_unreachable_service_fails_place_order_fast_with_unavailable() {
    use caravan_testkit::{Caller, KeyedChannel};
    // spawn_app points catalog, scheduling and inventory at a closed port.
    let app = spawn_app().await;
    let mut hema = caravan_proto::orders::v1::orders_service_client::OrdersServiceClient::new(KeyedChannel::new(
        app.server.addr(),
        Some(Caller::Hema),
    ));
    let started = std::time::Instant::now();
    let status = hema.place_order(place(std::time::Duration::from_secs(5))).await.unwrap_err();
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    assert!(status.message().contains("request_id"), "tells the partner to retry: {}", status.message());
    assert!(started.elapsed() < std::time::Duration::from_secs(3), "fast: {:?}", started.elapsed());
    // Nothing was written: a retry starts afresh.
    let listed = hema.list_orders(ListOrdersRequest::default()).await.unwrap().into_inner();
    assert!(listed.orders.is_empty());
}

#[tokio::test]
async fn a_service_that_hangs_cannot_make_place_order_hang() {
    use caravan_orders::Orders;
    use caravan_platform::config::ServiceKind;
    use caravan_testkit::{Caller, KeyedChannel, TestDatabase, TestServer, service_config};
    // A "catalog" that accepts connections and never answers.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let catalog = listener.local_addr().unwrap();
    let _held = std::thread::spawn(move || {
        let held: Vec<_> = listener.incoming().take(16).collect();
        std::thread::sleep(std::time::Duration::from_secs(30));
        drop(held);
    });
    let database = TestDatabase::new::<caravan_orders::Migrator>(ServiceKind::Orders).await.unwrap();
    let config = service_config(ServiceKind::Orders, database.config(), &[(ServiceKind::Catalog, catalog)]);
    let server = TestServer::start_with::<Orders>(config, database).await.unwrap();
    let mut hema = caravan_proto::orders::v1::orders_service_client::OrdersServiceClient::new(KeyedChannel::new(
        server.addr(),
        Some(Caller::Hema),
    ));
    let deadline = std::time::Duration::from_secs(3);
    let started = std::time::Instant::now();
    let status = hema.place_order(place(deadline)).await.unwrap_err();
    let took = started.elapsed();
    assert_eq!(status.code(), Code::Unavailable, "answered before the partner's deadline: {status:?}");
    assert!(took < deadline, "{took:?}");
}
