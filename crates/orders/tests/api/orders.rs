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
            .insert_order(&order(&format!("o-{i}"), buyer, show, state, base + offset), "", NEVER, &BuyerLimits::new())
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
    use caravan_platform::testing::Caller;
    use caravan_proto::orders::v1::orders_service_client::OrdersServiceClient;

    let app = spawn_app().await;
    let store = app.store().await;
    let base = 1_641_800_000_000_000;
    store
        .insert_order(&order("o-hema", "b1", "", AwaitingPayment, base), "", NEVER, &BuyerLimits::new())
        .await
        .unwrap();
    let mut theirs = order("o-douyin", "b1", "", AwaitingPayment, base + 1);
    theirs.partner = "douyin".into();
    store.insert_order(&theirs, "", NEVER, &BuyerLimits::new()).await.unwrap();

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
