//! Orders across the four services: the flash sale of a show offer, payment,
//! cancellation and expiry, idempotent retries, the per-buyer limit, the live
//! sales report, recovery of stuck orders, and who may do what — each checked
//! against inventory's books.

#![allow(clippy::unwrap_used)] // Test helpers fail loudly; that is their job.

mod common;

use std::{sync::Arc, time::Duration};

use caravan_inventory::store::{Books, audit};
use caravan_orders::{
    domain::{Money as DomainMoney, Order as DomainOrder, OrderLine, OrderState as DomainState},
    store::{BuyerLimits, Store},
};
use caravan_platform::{
    config::ServiceKind,
    idempotency::{Idempotency, IdempotencyConfig},
};
use caravan_proto::{
    inventory::v1::{
        GetReservationRequest, GetStockRequest, ReleaseReservationRequest, ReservationRequestLine, ReserveStockRequest,
        reservation,
    },
    orders::v1::{
        CancelOrderRequest, ConfirmPaymentRequest, GetOrderRequest, GetShowSalesReportRequest, ListOrdersRequest,
        Order, PlaceOrderLine, PlaceOrderRequest, ShowSalesReport, order::State,
        orders_service_client::OrdersServiceClient,
    },
    scheduling::v1::{EndShowRequest, GetLiveOffersRequest, StartShowRequest, show::State as ShowState},
};
use caravan_testkit::{Caller, KeyedChannel, eventually};
use common::festival::{Festival, Inventory, create, festival, show, uzbek_products};
use futures::future::join_all;
use tonic::{Code, Status};
use tonic_types::StatusExt as _;

type Orders = OrdersServiceClient<KeyedChannel>;

const SHOW: &str = "shows/uz-on-hema";
/// The show price of every offer of the festival fixture.
const PRICE: i64 = 2990;

/// A live show on Hema with the given offers (product index, allocated
/// units; every offer at most 2 per buyer), and orders clients as each caller.
struct Sale {
    festival: Festival,
    products: Vec<String>,
    hema: Orders,
    douyin: Orders,
    operator: Orders,
}

async fn sale(offers: &[(usize, i64)]) -> Sale {
    let mut festival = festival().await;
    let products = uzbek_products();
    let line_up: Vec<(&str, i64)> = offers.iter().map(|(i, quantity)| (products[*i].as_str(), *quantity)).collect();
    festival.scheduling.create_show(create("uz-on-hema", show("olimkhonov", 20.0, 21.0, &line_up))).await.unwrap();
    festival.scheduling.start_show(StartShowRequest { name: SHOW.into(), request_id: String::new() }).await.unwrap();
    let addr = festival.running.suite.addr(ServiceKind::Orders);
    Sale {
        hema: OrdersServiceClient::new(KeyedChannel::new(addr, Some(Caller::Hema))),
        douyin: OrdersServiceClient::new(KeyedChannel::new(addr, Some(Caller::Douyin))),
        operator: OrdersServiceClient::new(KeyedChannel::new(addr, Some(Caller::Operator))),
        festival,
        products,
    }
}

impl Sale {
    async fn stop(self) {
        self.festival.running.token.cancel();
        self.festival.running.suite.wait().await.unwrap();
    }

    /// Inventory's books balance; what they say of `product`, over all warehouses.
    async fn books(&self, product: &str) -> Books {
        let db = self.festival.running.database(ServiceKind::Inventory).connect().await.unwrap();
        let (violations, books) = audit(&db).await.unwrap();
        db.close().await.unwrap();
        assert!(violations.is_empty(), "inventory's books do not balance:\n{}", violations.join("\n"));
        books.iter().filter(|((p, _), _)| p == product).map(|(_, b)| *b).fold(
            Books { on_hand: 0, reserved: 0, allocated: 0 },
            |sum, b| Books {
                on_hand: sum.on_hand + b.on_hand,
                reserved: sum.reserved + b.reserved,
                allocated: sum.allocated + b.allocated,
            },
        )
    }

    async fn report(&self, client: &Orders) -> ShowSalesReport {
        let mut client = client.clone();
        client.get_show_sales_report(GetShowSalesReportRequest { show: SHOW.into() }).await.unwrap().into_inner()
    }

    /// Every order `client` may see that matches `request`, all pages.
    async fn list(&self, client: &Orders, mut request: ListOrdersRequest) -> Vec<Order> {
        let mut client = client.clone();
        let mut orders = Vec::new();
        loop {
            let page = client.list_orders(request.clone()).await.unwrap().into_inner();
            orders.extend(page.orders);
            if page.next_page_token.is_empty() {
                return orders;
            }
            request.page_token = page.next_page_token;
        }
    }

    async fn count(&self, state: State) -> usize {
        self.list(&self.operator, ListOrdersRequest { state: state.into(), page_size: 500, ..Default::default() })
            .await
            .len()
    }
}

fn order(buyer: &str, product: &str, quantity: i64, request_id: &str) -> PlaceOrderRequest {
    PlaceOrderRequest {
        buyer: buyer.into(),
        show: SHOW.into(),
        lines: vec![PlaceOrderLine { product: format!("products/{product}"), quantity }],
        request_id: request_id.into(),
    }
}

/// `request` at the list price, in no show.
fn off_show(request: PlaceOrderRequest) -> PlaceOrderRequest {
    PlaceOrderRequest { show: String::new(), ..request }
}

fn pay(order: &Order, reference: &str) -> ConfirmPaymentRequest {
    ConfirmPaymentRequest { name: order.name.clone(), payment_reference: reference.into(), request_id: String::new() }
}

fn cancel(order: &Order) -> CancelOrderRequest {
    CancelOrderRequest { name: order.name.clone(), reason: "changed mind".into(), request_id: String::new() }
}

/// The `ErrorInfo` reason of a refusal.
fn reason(status: &Status) -> String {
    status.get_error_details().error_info().map(|i| i.reason.clone()).unwrap_or_default()
}

/// Places every request at once, each on the shared connection.
async fn place_all(client: &Orders, requests: Vec<PlaceOrderRequest>) -> Vec<Result<Order, Status>> {
    join_all(requests.into_iter().map(|request| {
        let mut client = client.clone();
        async move { client.place_order(request).await.map(tonic::Response::into_inner) }
    }))
    .await
}

#[tokio::test]
async fn a_flash_sale_sells_exactly_the_allocation_and_every_book_agrees() {
    let mut sale = sale(&[(0, 100)]).await;
    let hot = sale.products[0].clone();
    let requests = (0..300).map(|i| order(&format!("buyer-{i}"), &hot, 1, &format!("req-{i}"))).collect();
    let results = place_all(&sale.hema, requests).await;
    let placed: Vec<Order> = results.iter().filter_map(|r| r.as_ref().ok()).cloned().collect();
    assert_eq!(placed.len(), 100, "exactly the allocation was sold");
    for o in &placed {
        assert_eq!(o.state(), State::AwaitingPayment);
        assert!(o.payment_deadline.is_some());
        assert_eq!(o.lines[0].unit_price.as_ref().unwrap().minor_units, PRICE, "the show price");
        assert_eq!(o.totals[0].minor_units, PRICE);
    }
    for status in results.iter().filter_map(|r| r.as_ref().err()) {
        assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
        let info = status.get_error_details().error_info().cloned().unwrap();
        assert_eq!(
            (info.reason.as_str(), info.metadata["product"].as_str()),
            ("INSUFFICIENT_STOCK", format!("products/{hot}").as_str())
        );
    }
    let books = sale.books(&hot).await;
    assert_eq!((books.on_hand, books.reserved, books.allocated), (100, 100, 0));

    // The organiser's live numbers: every hold awaits payment, and the offer
    // sold out with 200 buyers turned away (written within about a second).
    let report = sale.report(&sale.operator).await;
    assert_eq!((report.order_count, report.orders_awaiting_payment, report.units_awaiting_payment), (100, 100, 100));
    assert_eq!(report.revenue_awaiting_payment[0].minor_units, 100 * PRICE);
    let counted = eventually(Duration::from_secs(5), || async {
        let product = &sale.report(&sale.operator).await.products[0];
        (product.turned_away, product.units_turned_away) == (200, 200)
    })
    .await;
    let product = &sale.report(&sale.operator).await.products[0];
    assert!(counted, "every refusal is counted as demand: {product:?}");
    assert!(product.sold_out_time.is_some(), "200 buyers were refused for lack of stock");
    assert_eq!(report.countries.len(), 1);
    assert_eq!(
        (report.countries[0].country.as_str(), report.countries[0].units_awaiting_payment),
        ("countries/UZ", 100)
    );

    // Pay 40, cancel 20, and let 40 pass their payment deadline.
    for (i, o) in placed.iter().take(40).enumerate() {
        let paid = sale.hema.confirm_payment(pay(o, &format!("pay-{i}"))).await.unwrap().into_inner();
        assert_eq!((paid.state(), paid.payment_reference.as_str()), (State::Paid, format!("pay-{i}").as_str()));
    }
    for o in placed.iter().skip(40).take(20) {
        assert_eq!(sale.hema.cancel_order(cancel(o)).await.unwrap().into_inner().state(), State::Cancelled);
    }
    let books = sale.books(&hot).await;
    assert_eq!((books.on_hand, books.reserved, books.allocated), (60, 40, 20), "cancelled units go back to the show");

    sale.festival.clock.advance(Duration::from_secs(11 * 60));
    let expired = eventually(Duration::from_secs(30), || async { sale.count(State::Expired).await == 40 }).await;
    assert!(expired, "the driver expired the unpaid orders: {}", sale.count(State::Expired).await);
    let books = sale.books(&hot).await;
    assert_eq!((books.on_hand, books.reserved, books.allocated), (60, 0, 60), "every unpaid hold is back on the show");
    let counts = [
        sale.count(State::Paid).await,
        sale.count(State::Cancelled).await,
        sale.count(State::Rejected).await,
        sale.count(State::AwaitingPayment).await,
        sale.count(State::Pending).await,
    ];
    assert_eq!(counts, [40, 20, 0, 0, 0], "a refused order leaves no row");

    // The report agrees with inventory to the unit.
    let report = sale.report(&sale.operator).await;
    assert_eq!((report.order_count, report.orders_paid, report.orders_awaiting_payment), (40, 40, 0));
    assert_eq!((report.units_paid, report.units_awaiting_payment), (100 - books.on_hand, 0));
    assert_eq!(report.revenue_paid.len(), 1);
    assert_eq!(
        (report.revenue_paid[0].currency_code.as_str(), report.revenue_paid[0].minor_units),
        ("CNY", 40 * PRICE)
    );
    let product = &report.products[0];
    assert_eq!(
        (product.product.as_str(), product.units_paid, product.order_count),
        (format!("products/{hot}").as_str(), 40, 40)
    );
    assert_eq!(product.country, "countries/UZ");
    assert_eq!(report.countries[0].units_paid, 40);
    assert_eq!(report.countries[0].revenue_paid[0].minor_units, 40 * PRICE);

    // Past the deadline, a payment is refused and kept for a refund.
    let late = &placed[70];
    let status = sale.hema.confirm_payment(pay(late, "pay-late")).await.unwrap_err();
    assert_eq!((status.code(), reason(&status).as_str()), (Code::FailedPrecondition, "ORDER_EXPIRED"));
    let kept = sale.hema.get_order(GetOrderRequest { name: late.name.clone() }).await.unwrap().into_inner();
    assert_eq!((kept.state(), kept.payment_reference.as_str()), (State::Expired, "pay-late"));

    // Illegal transitions are refused and change nothing.
    let status = sale.hema.confirm_payment(pay(&placed[45], "pay-x")).await.unwrap_err();
    assert_eq!(
        (status.code(), reason(&status).as_str()),
        (Code::FailedPrecondition, "ORDER_STATE"),
        "pay a cancelled order"
    );
    let status = sale.hema.cancel_order(cancel(&placed[0])).await.unwrap_err();
    assert_eq!(
        (status.code(), reason(&status).as_str()),
        (Code::FailedPrecondition, "ORDER_STATE"),
        "cancel a paid order"
    );
    let status = sale.hema.confirm_payment(pay(&placed[0], "pay-other")).await.unwrap_err();
    assert_eq!(reason(&status), "ORDER_ALREADY_PAID");
    let again = sale.hema.confirm_payment(pay(&placed[0], "pay-0")).await.unwrap().into_inner();
    assert_eq!(again.state(), State::Paid, "the same payment again is the same answer");
    let books = sale.books(&hot).await;
    assert_eq!((books.on_hand, books.reserved, books.allocated), (60, 0, 60), "refusals changed nothing");
    sale.stop().await;
}

#[tokio::test]
async fn a_request_id_places_one_order_however_often_and_whenever_it_is_sent() {
    let mut sale = sale(&[(0, 100), (1, 1)]).await;
    let hot = sale.products[0].clone();

    // Twenty copies at once: one order, one hold, the same answer for all.
    let results = place_all(&sale.hema, (0..20).map(|_| order("buyer-1", &hot, 2, "req-once")).collect()).await;
    let names: Vec<String> = results.into_iter().map(|r| r.unwrap().name).collect();
    assert!(names.iter().all(|n| n == &names[0]), "{names:?}");
    let buyer = sale.list(&sale.operator, ListOrdersRequest { buyer: "buyer-1".into(), ..Default::default() }).await;
    assert_eq!(buyer.len(), 1);
    assert_eq!(buyer[0].request_id, "req-once", "a listed order names the request that placed it");
    assert_eq!(sale.books(&hot).await.reserved, 2);

    // After the order moved on, the repeat still answers the first result.
    sale.hema.confirm_payment(pay(&buyer[0], "pay-1")).await.unwrap();
    let again = sale.hema.place_order(order("buyer-1", &hot, 2, "req-once")).await.unwrap().into_inner();
    assert_eq!((again.name.as_str(), again.state()), (names[0].as_str(), State::AwaitingPayment));
    let now = sale.hema.get_order(GetOrderRequest { name: names[0].clone() }).await.unwrap().into_inner();
    assert_eq!(now.state(), State::Paid);

    // Another body under the same id is refused; another partner's id is its own.
    let status = sale.hema.place_order(order("buyer-1", &hot, 1, "req-once")).await.unwrap_err();
    assert_eq!((status.code(), reason(&status).as_str()), (Code::AlreadyExists, "REQUEST_ID_REUSED"));
    let spare = sale.products[2].clone();
    let theirs = sale.douyin.place_order(off_show(order("buyer-1", &spare, 2, "req-once"))).await.unwrap().into_inner();
    assert_ne!(theirs.name, names[0]);
    assert_eq!(sale.books(&hot).await.on_hand, 98);
    assert_eq!(sale.books(&hot).await.reserved, 0, "hema's hold was sold");
    assert_eq!(sale.books(&spare).await.reserved, 2, "douyin's hold");

    // A refusal is no outcome: it leaves nothing, and the repeat is asked
    // afresh — refused while the offer is sold out, placed once a unit
    // comes back.
    let scarce = sale.products[1].clone();
    let holder = sale.hema.place_order(order("buyer-3", &scarce, 1, "req-holder")).await.unwrap().into_inner();
    let first = sale.hema.place_order(order("buyer-2", &scarce, 1, "req-refused")).await.unwrap_err();
    assert_eq!(reason(&first), "INSUFFICIENT_STOCK");
    let again = sale.hema.place_order(order("buyer-2", &scarce, 1, "req-refused")).await.unwrap_err();
    assert_eq!((again.code(), reason(&again)), (first.code(), reason(&first)));
    let buyer = sale.list(&sale.operator, ListOrdersRequest { buyer: "buyer-2".into(), ..Default::default() }).await;
    assert!(buyer.is_empty(), "a refusal leaves no order: {buyer:?}");
    sale.hema.cancel_order(cancel(&holder)).await.unwrap();
    let placed = eventually(Duration::from_secs(5), || async {
        let mut hema = sale.hema.clone();
        hema.place_order(order("buyer-2", &scarce, 1, "req-refused")).await.is_ok()
    })
    .await;
    assert!(placed, "the unit came back and the same request id placed the order");
    let buyer = sale.list(&sale.operator, ListOrdersRequest { buyer: "buyer-2".into(), ..Default::default() }).await;
    assert_eq!(buyer.len(), 1);
    assert_eq!(sale.books(&scarce).await.reserved, 1);
    sale.stop().await;
}

#[tokio::test]
async fn a_purged_request_id_is_a_new_request() {
    let sale = sale(&[(0, 10)]).await;
    let product = sale.products[1].clone();
    let no_show =
        |quantity: i64| PlaceOrderRequest { show: String::new(), ..order("buyer-1", &product, quantity, "req-day-1") };
    let mut hema = sale.hema.clone();
    let first = hema.place_order(no_show(1)).await.unwrap().into_inner();
    assert_eq!(first.show, "", "an order outside any show, at the list price");

    // A day later the record is still kept…
    sale.festival.clock.advance(Duration::from_secs(23 * 3600));
    let db = sale.festival.running.database(ServiceKind::Orders).connect().await.unwrap();
    let clock = Arc::new(sale.festival.clock.clone());
    let idempotency = Idempotency::new(db, clock, IdempotencyConfig::default());
    assert_eq!(idempotency.purge(1000).await.unwrap(), 0);
    let status = hema.place_order(no_show(2)).await.unwrap_err();
    assert_eq!(reason(&status), "REQUEST_ID_REUSED");

    // …and once purged, the id is free for a new order.
    sale.festival.clock.advance(Duration::from_secs(2 * 3600));
    assert!(idempotency.purge(1000).await.unwrap() >= 1);
    let second = hema.place_order(no_show(2)).await.unwrap().into_inner();
    assert_ne!(second.name, first.name);
    assert_eq!((second.state(), second.lines[0].quantity), (State::AwaitingPayment, 2));
    sale.books(&product).await;
    sale.stop().await;
}

#[tokio::test]
async fn a_retry_answers_its_order_after_the_show_ended_and_the_record_was_purged() {
    let mut sale = sale(&[(0, 10)]).await;
    let hot = sale.products[0].clone();
    let mut hema = sale.hema.clone();
    let first = hema.place_order(order("buyer-1", &hot, 1, "req-late")).await.unwrap().into_inner();
    hema.confirm_payment(pay(&first, "pay-late")).await.unwrap();
    sale.festival.scheduling.end_show(EndShowRequest { name: SHOW.into(), request_id: String::new() }).await.unwrap();
    // What orders asks scheduling, until its cache of live shows has let go.
    let ended = eventually(Duration::from_secs(5), || {
        let mut scheduling = sale.festival.scheduling.clone();
        let request = GetLiveOffersRequest { show: SHOW.into(), products: vec![format!("products/{hot}")] };
        async move { scheduling.get_live_offers(request).await.unwrap().into_inner().state() != ShowState::Live }
    })
    .await;
    assert!(ended, "scheduling answers that the show is no longer live");

    // The retry's checks fail now, and no record remembers the first
    // attempt: the order it wrote is still its answer, not a refusal.
    sale.festival.clock.advance(Duration::from_secs(25 * 3600));
    let db = sale.festival.running.database(ServiceKind::Orders).connect().await.unwrap();
    let idempotency = Idempotency::new(db, Arc::new(sale.festival.clock.clone()), IdempotencyConfig::default());
    assert!(idempotency.purge(1000).await.unwrap() >= 1);
    let again = hema.place_order(order("buyer-1", &hot, 1, "req-late")).await.unwrap().into_inner();
    assert_eq!((again.name.as_str(), again.state()), (first.name.as_str(), State::Paid));
    assert_eq!(sale.count(State::Paid).await, 1, "no second order");
    assert_eq!(sale.books(&hot).await.on_hand, 99, "one unit of the 100 sold, once");
    sale.stop().await;
}

#[tokio::test]
async fn a_buyer_cannot_pass_an_offers_limit_even_with_orders_at_once() {
    let mut sale = sale(&[(0, 50), (1, 2)]).await;
    let (hot, scarce) = (sale.products[0].clone(), sale.products[1].clone());

    // Six orders of one unit at once from one buyer, limit 2: two pass.
    let requests = (0..6).map(|i| order("greedy", &hot, 1, &format!("greedy-{i}"))).collect();
    let results = place_all(&sale.hema, requests).await;
    let placed: Vec<Order> = results.iter().filter_map(|r| r.as_ref().ok()).cloned().collect();
    assert_eq!(placed.len(), 2, "{results:?}");
    for status in results.iter().filter_map(|r| r.as_ref().err()) {
        assert_eq!((status.code(), reason(status).as_str()), (Code::FailedPrecondition, "PER_BUYER_LIMIT"));
        let info = status.get_error_details().error_info().cloned().unwrap();
        assert_eq!((info.metadata["limit"].as_str(), info.metadata["held"].as_str()), ("2", "2"));
    }
    assert_eq!(sale.books(&hot).await.reserved, 2, "refused orders hold nothing");
    let status = sale.hema.place_order(order("greedy-2", &hot, 3, "greedy-big")).await.unwrap_err();
    assert_eq!(reason(&status), "PER_BUYER_LIMIT", "one order beyond the limit");
    // The limit is per buyer: others are not held back.
    sale.hema.place_order(order("modest", &hot, 2, "modest-1")).await.unwrap();

    // A cancelled order stops counting; a paid one keeps counting.
    sale.hema.cancel_order(cancel(&placed[0])).await.unwrap();
    sale.hema.confirm_payment(pay(&placed[1], "pay-greedy")).await.unwrap();
    sale.hema.place_order(order("greedy", &hot, 1, "greedy-again")).await.unwrap();
    let status = sale.hema.place_order(order("greedy", &hot, 1, "greedy-more")).await.unwrap_err();
    assert_eq!(reason(&status), "PER_BUYER_LIMIT");

    // An order refused for lack of stock does not count either.
    sale.hema.place_order(order("first", &scarce, 2, "first-1")).await.unwrap();
    let status = sale.hema.place_order(order("second", &scarce, 1, "second-1")).await.unwrap_err();
    assert_eq!(reason(&status), "INSUFFICIENT_STOCK");
    let first = sale.list(&sale.hema, ListOrdersRequest { buyer: "first".into(), ..Default::default() }).await;
    sale.hema.cancel_order(cancel(&first[0])).await.unwrap();
    // The units are back in inventory at once; orders' memory of the sold-out
    // offer hears of it through its stock subscription (within a second, see
    // `every_replica_refuses_a_sold_out_offer_from_memory…`), and until then
    // refuses without writing anything, so the same request may be retried.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    let second = loop {
        match sale.hema.place_order(order("second", &scarce, 2, "second-2")).await {
            Ok(order) => break order.into_inner(),
            Err(status) if reason(&status) == "INSUFFICIENT_STOCK" && std::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(status) => panic!("the cancelled units were not sold again: {status:?}"),
        }
    };
    assert_eq!(second.state(), State::AwaitingPayment, "the refused unit was not held against the buyer");

    // An expired order stops counting too: greedy's unpaid unit expires, the paid one stays.
    sale.festival.clock.advance(Duration::from_secs(11 * 60));
    let again = sale.list(&sale.hema, ListOrdersRequest { buyer: "greedy".into(), ..Default::default() }).await;
    let unpaid = again.iter().find(|o| o.state() == State::AwaitingPayment).unwrap().name.clone();
    let expired = eventually(Duration::from_secs(30), || async {
        let mut hema = sale.hema.clone();
        hema.get_order(GetOrderRequest { name: unpaid.clone() }).await.unwrap().into_inner().state() == State::Expired
    })
    .await;
    assert!(expired, "the unpaid order expired");
    sale.hema.place_order(order("greedy", &hot, 1, "greedy-after-expiry")).await.unwrap();
    let status = sale.hema.place_order(order("greedy", &hot, 1, "greedy-last")).await.unwrap_err();
    assert_eq!(reason(&status), "PER_BUYER_LIMIT", "the paid unit still counts");
    sale.books(&hot).await;
    sale.stop().await;
}

#[tokio::test]
async fn the_report_is_consistent_while_orders_arrive() {
    let sale = sale(&[(0, 60), (1, 60)]).await;
    let products = sale.products.clone();
    let placing = {
        let hema = sale.hema.clone();
        let products = products.clone();
        tokio::spawn(async move {
            let requests =
                (0..150).map(|i| order(&format!("buyer-{i}"), &products[i % 2], 1, &format!("req-{i}"))).collect();
            place_all(&hema, requests).await
        })
    };
    let mut reports = Vec::new();
    while !placing.is_finished() {
        reports.push(sale.report(&sale.operator).await);
    }
    let results = placing.await.unwrap();
    reports.push(sale.report(&sale.operator).await);
    let mut last = 0;
    for report in &reports {
        // One unit per order: every figure of one report counts the same orders.
        let by_product: i64 = report.products.iter().map(|p| p.units_awaiting_payment).sum();
        let by_country: i64 = report.countries.iter().map(|c| c.units_awaiting_payment).sum();
        let orders: i64 = report.products.iter().map(|p| p.order_count).sum();
        assert_eq!(
            (report.order_count, report.units_awaiting_payment, by_product, by_country, orders),
            (
                report.orders_awaiting_payment,
                report.order_count,
                report.order_count,
                report.order_count,
                report.order_count
            ),
            "{report:?}"
        );
        assert_eq!(report.revenue_awaiting_payment.first().map_or(0, |m| m.minor_units), report.order_count * PRICE);
        assert!(report.order_count >= last, "orders only arrive: {} then {}", last, report.order_count);
        last = report.order_count;
    }
    assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 120);
    assert_eq!(last, 120, "the last report counts every order");
    assert!(reports.len() >= 2, "the report was read while orders arrived");
    sale.stop().await;
}

#[tokio::test]
async fn partners_place_and_see_their_own_and_operators_see_every_order() {
    let mut sale = sale(&[(0, 4), (1, 10)]).await;
    let (hot, other) = (sale.products[0].clone(), sale.products[1].clone());
    for i in 0..4 {
        sale.hema.place_order(order(&format!("h-{i}"), &hot, 1, &format!("h-{i}"))).await.unwrap();
    }
    let status = sale.hema.place_order(order("h-4", &hot, 1, "h-4")).await.unwrap_err();
    assert_eq!(reason(&status), "INSUFFICIENT_STOCK");

    // The show is on Hema's channel: Douyin may not order in it — not even
    // an offer with stock left — and is told so, not that it sold out.
    for product in [&other, &hot] {
        let status = sale.douyin.place_order(order("d-0", product, 1, "d-0")).await.unwrap_err();
        assert_eq!((status.code(), reason(&status).as_str()), (Code::PermissionDenied, "SHOW_OF_ANOTHER_PARTNER"));
        let info = status.get_error_details().error_info().cloned().unwrap();
        assert_eq!(info.metadata["show"], SHOW);
    }
    assert_eq!(sale.books(&other).await.reserved, 0, "the refused order held nothing");
    // Orders of its own (here at the list price, in no show) it may place.
    sale.douyin.place_order(off_show(order("d-1", &other, 2, "d-1"))).await.unwrap();

    // Operators and services read but never place.
    let mut operator = sale.operator.clone();
    let status = operator.place_order(order("o-0", &other, 1, "o-0")).await.unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied);
    let addr = sale.festival.running.suite.addr(ServiceKind::Orders);
    let mut service = OrdersServiceClient::new(KeyedChannel::new(addr, Some(Caller::Service(ServiceKind::Scheduling))));
    let status = service.place_order(order("s-0", &other, 1, "s-0")).await.unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied);

    // Each partner's report counts its own orders; the operator's all; the
    // sell-out is a fact of the show for everyone.
    let dated = eventually(Duration::from_secs(5), || async {
        sale.report(&sale.operator).await.products.iter().any(|p| p.sold_out_time.is_some())
    })
    .await;
    assert!(dated, "the sell-out is written within about a second");
    let (hema, douyin, all) =
        (sale.report(&sale.hema).await, sale.report(&sale.douyin).await, sale.report(&sale.operator).await);
    assert_eq!((hema.order_count, douyin.order_count, all.order_count), (4, 0, 4));
    assert_eq!((hema.units_awaiting_payment, douyin.units_awaiting_payment, all.units_awaiting_payment), (4, 0, 4));
    let sold_out = |report: &ShowSalesReport| {
        report.products.iter().find(|p| p.product == format!("products/{hot}")).and_then(|p| p.sold_out_time)
    };
    assert!(sold_out(&hema).is_some() && sold_out(&hema) == sold_out(&all));

    // Another partner's order is as absent as a missing one.
    let hemas = sale.list(&sale.hema, ListOrdersRequest::default()).await;
    assert_eq!(hemas.len(), 4);
    assert!(hemas.iter().all(|o| o.partner == "hema"));
    let status = sale.douyin.get_order(GetOrderRequest { name: hemas[0].name.clone() }).await.unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
    let status = sale.douyin.confirm_payment(pay(&hemas[0], "pay-theirs")).await.unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
    let status = sale.douyin.cancel_order(cancel(&hemas[0])).await.unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
    assert_eq!(
        sale.list(&sale.operator, ListOrdersRequest::default()).await.len(),
        5,
        "the refused order left nothing"
    );
    sale.books(&hot).await;
    sale.stop().await;
}

/// An order a crashed PlaceOrder left PENDING with stock held, as if the
/// process died right after ReserveStock.
async fn stuck_order(sale: &Sale, id: &str, product: &str, inventory: &mut Inventory) {
    let store = Store::new(sale.festival.running.database(ServiceKind::Orders).connect().await.unwrap());
    let now = caravan_platform::time::Clock::now(&sale.festival.clock);
    let order = DomainOrder {
        id: id.into(),
        partner: "hema".into(),
        buyer: "buyer-stuck".into(),
        show: SHOW.into(),
        lines: vec![OrderLine {
            product: format!("products/{product}"),
            quantity: 1,
            unit_price: DomainMoney { currency: "CNY".into(), minor: PRICE },
            country: "UZ".into(),
        }],
        state: DomainState::Pending,
        state_reason: String::new(),
        payment_deadline: None,
        payment_reference: String::new(),
        request_id: String::new(),
        create_time: now,
        update_time: now,
    };
    // Due when the service itself would have made it due: twice the call limit.
    let due = now.plus(Duration::from_secs(20));
    assert!(store.insert_order(&order, "", due, &BuyerLimits::new(), None, None).await.unwrap());
    inventory.reserve_stock(reserve(id, product)).await.unwrap();
}

fn reserve(id: &str, product: &str) -> ReserveStockRequest {
    ReserveStockRequest {
        reservation_id: id.into(),
        show: SHOW.into(),
        lines: vec![ReservationRequestLine { product: format!("products/{product}"), quantity: 1 }],
        ttl_seconds: 900,
        request_id: String::new(),
    }
}

#[tokio::test]
async fn a_retry_of_a_pending_order_whose_hold_ended_hears_order_rejected() {
    let mut sale = sale(&[(0, 10)]).await;
    let hot = sale.products[0].clone();
    let addr = sale.festival.running.suite.addr(ServiceKind::Inventory);
    let mut inventory = Inventory::new(KeyedChannel::new(addr, Some(Caller::Service(ServiceKind::Orders))));
    // A first attempt wrote its order and held its stock, and its answer was
    // lost (a crash); meanwhile the hold ended (expired, or released by a
    // recovery racing the retry).
    let request = order("buyer-stuck", &hot, 1, "req-stuck");
    let id = caravan_orders::api::order_id("hema", &request);
    stuck_order(&sale, &id, &hot, &mut inventory).await;
    let release = ReleaseReservationRequest { name: format!("reservations/{id}"), request_id: String::new() };
    inventory.release_reservation(release).await.unwrap();

    for _ in 0..2 {
        let status = sale.hema.place_order(request.clone()).await.unwrap_err();
        assert_eq!(
            (status.code(), reason(&status).as_str()),
            (Code::FailedPrecondition, "ORDER_REJECTED"),
            "{status:?}"
        );
        let details = status.get_error_details();
        assert_eq!(details.error_info().unwrap().metadata.get("order"), Some(&format!("orders/{id}")));
    }
    let order = sale.hema.get_order(GetOrderRequest { name: format!("orders/{id}") }).await.unwrap().into_inner();
    assert_eq!(order.state(), State::Rejected, "the order says what the partner heard");
    assert_eq!(sale.books(&hot).await.reserved, 0, "nothing is held");
    sale.stop().await;
}

#[tokio::test]
async fn an_order_left_pending_is_rejected_and_its_stock_given_back() {
    let mut sale = sale(&[(0, 10)]).await;
    let hot = sale.products[0].clone();
    let addr = sale.festival.running.suite.addr(ServiceKind::Inventory);
    let mut inventory = Inventory::new(KeyedChannel::new(addr, Some(Caller::Service(ServiceKind::Orders))));
    stuck_order(&sale, "o-stuck", &hot, &mut inventory).await;
    assert_eq!(sale.books(&hot).await.reserved, 1);

    // Before its recovery time nothing happens: a retry could still resume it.
    // Two more sweeps of the driver: the second began after the clock moved.
    let sweeps = || {
        caravan_platform::metrics::metrics()
            .worker_sweeps
            .with_label_values(&[caravan_orders::driver::NAME, "ok"])
            .get()
    };
    let before = sweeps();
    sale.festival.clock.advance(Duration::from_secs(19));
    assert!(eventually(Duration::from_secs(10), || async { sweeps() >= before + 2 }).await, "the driver sweeps");
    let pending = sale.hema.get_order(GetOrderRequest { name: "orders/o-stuck".into() }).await.unwrap().into_inner();
    assert_eq!(pending.state(), State::Pending);

    sale.festival.clock.advance(Duration::from_secs(2));
    let recovered = eventually(Duration::from_secs(20), || async {
        let mut hema = sale.hema.clone();
        let order = hema.get_order(GetOrderRequest { name: "orders/o-stuck".into() }).await.unwrap().into_inner();
        order.state() == State::Rejected
    })
    .await;
    assert!(recovered, "the driver rejected the stuck order");
    let released = eventually(Duration::from_secs(20), || async { sale.books(&hot).await.reserved == 0 }).await;
    assert!(released, "its hold was given back");
    let mut probe = inventory.clone();
    let reservation = probe
        .get_reservation(GetReservationRequest { name: "reservations/o-stuck".into() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(reservation.state(), reservation::State::Released);
    // A ReserveStock that arrives late answers the released reservation and takes nothing.
    let late = inventory.reserve_stock(reserve("o-stuck", &hot)).await.unwrap().into_inner();
    assert_eq!(late.state(), reservation::State::Released);
    let level = probe.get_stock(GetStockRequest { name: format!("stockLevels/{hot}") }).await.unwrap().into_inner();
    assert_eq!(level.reserved, 0);
    sale.stop().await;
}

/// Another orders replica on the suite's database and clock, calling
/// `catalog` and `scheduling` there (a closed port plays one it cannot
/// reach) and the suite's inventory.
async fn orders_replica(
    sale: &Sale,
    catalog: std::net::SocketAddr,
    scheduling: std::net::SocketAddr,
) -> (caravan_testkit::TestServer, Orders) {
    let running = &sale.festival.running;
    let database = running.database(ServiceKind::Orders);
    let upstreams = [
        (ServiceKind::Catalog, catalog),
        (ServiceKind::Scheduling, scheduling),
        (ServiceKind::Inventory, running.suite.addr(ServiceKind::Inventory)),
    ];
    let mut config = caravan_testkit::service_config(ServiceKind::Orders, database.config(), &upstreams);
    config.clock = Arc::new(sale.festival.clock.clone());
    let server = caravan_testkit::TestServer::start_with::<caravan_orders::Orders>(config, database).await.unwrap();
    let client = OrdersServiceClient::new(KeyedChannel::new(server.addr(), Some(Caller::Hema)));
    (server, client)
}

/// Places `request` on `client` and answers the refusal's reason ("" when
/// placed, the code's name for a refusal without one).
async fn outcome(client: &Orders, request: PlaceOrderRequest) -> String {
    let mut client = client.clone();
    match client.place_order(request).await {
        Ok(_) => String::new(),
        Err(status) if reason(&status).is_empty() => format!("{:?}", status.code()),
        Err(status) => reason(&status),
    }
}

#[tokio::test]
async fn every_replica_refuses_a_sold_out_offer_from_memory_and_sells_returned_units_within_a_second() {
    let mut sale = sale(&[(0, 2)]).await;
    let hot = sale.products[0].clone();
    let suite = &sale.festival.running.suite;
    let (catalog, scheduling) = (suite.addr(ServiceKind::Catalog), suite.addr(ServiceKind::Scheduling));
    let (_b, replica_b) = orders_replica(&sale, catalog, scheduling).await;
    // Replica C cannot reach the catalog: every order it places fails there
    // (UNAVAILABLE), so an answer of INSUFFICIENT_STOCK can only come from
    // its memory — no call to another service, nothing written.
    let closed = std::net::SocketAddr::from(([127, 0, 0, 1], 1));
    let (_c, replica_c) = orders_replica(&sale, closed, scheduling).await;
    assert_eq!(outcome(&replica_c, order("c-0", &hot, 1, "c-0")).await, "Unavailable", "C starts watching the show");

    // The two units sell on A and B; then every replica knows the offer is gone.
    let a = sale.hema.place_order(order("a-0", &hot, 1, "a-0")).await.unwrap().into_inner();
    let b = replica_b.clone().place_order(order("b-0", &hot, 1, "b-0")).await.unwrap().into_inner();
    let known = eventually(Duration::from_secs(5), || async {
        outcome(&replica_c, order("c-1", &hot, 1, "c-1")).await == "INSUFFICIENT_STOCK"
    })
    .await;
    assert!(known, "C learns of the sell-out from inventory's stream");
    let refusal = replica_c.clone().place_order(order("c-2", &hot, 2, "c-2")).await.unwrap_err();
    let info = refusal.get_error_details().error_info().cloned().unwrap();
    assert_eq!(refusal.code(), Code::FailedPrecondition);
    assert_eq!(
        (info.metadata["product"].as_str(), info.metadata["show"].as_str()),
        (format!("products/{hot}").as_str(), SHOW)
    );
    assert_eq!((info.metadata["requested"].as_str(), info.metadata["available"].as_str()), ("2", "0"));
    for client in [&sale.hema, &replica_b] {
        let refused = eventually(Duration::from_secs(5), || async {
            outcome(client, order("x", &hot, 1, "")).await == "INSUFFICIENT_STOCK"
        })
        .await;
        assert!(refused, "A and B refuse too");
    }
    // A retry of an order placed before the sell-out still gets its order.
    // (C answers it from the request id's record, without the catalog.)
    let again = replica_c.clone().place_order(order("a-0", &hot, 1, "a-0")).await.unwrap().into_inner();
    assert_eq!((again.name.as_str(), again.state()), (a.name.as_str(), State::AwaitingPayment));
    // Asked twice: once before C has read the show's request keys (the
    // request id's record answers), once after (its memory does).
    let again = replica_c.clone().place_order(order("a-0", &hot, 1, "a-0")).await.unwrap().into_inner();
    assert_eq!(again.name, a.name);
    let reused = replica_c.clone().place_order(order("a-0", &hot, 2, "a-0")).await.unwrap_err();
    assert_eq!((reused.code(), reason(&reused).as_str()), (Code::AlreadyExists, "REQUEST_ID_REUSED"));
    let orders = sale.list(&sale.operator, ListOrdersRequest::default()).await;
    assert_eq!(orders.len(), 2, "refusals wrote nothing: {orders:?}");

    // A cancelled unit: within a second C stops refusing and B sells it.
    sale.hema.cancel_order(cancel(&a)).await.unwrap();
    let (c_forgot, b_sold) = tokio::join!(
        eventually(Duration::from_secs(1), || async {
            outcome(&replica_c, order("c-3", &hot, 1, "c-3")).await == "Unavailable"
        }),
        eventually(Duration::from_secs(1), || async {
            outcome(&replica_b, order("b-1", &hot, 1, "b-1")).await.is_empty()
        }),
    );
    assert!(c_forgot && b_sold, "within a second of the cancellation: C knew ({c_forgot}), B sold ({b_sold})");

    // An expired unit: the same.
    let known = eventually(Duration::from_secs(5), || async {
        outcome(&replica_c, order("c-4", &hot, 1, "c-4")).await == "INSUFFICIENT_STOCK"
    })
    .await;
    assert!(known, "sold out again");
    assert_eq!(sale.books(&hot).await.reserved, 2, "b-0 and b-1 hold both units");
    drop(b);
    sale.festival.clock.advance(Duration::from_secs(11 * 60));
    let returned = eventually(Duration::from_secs(30), || async { sale.books(&hot).await.reserved == 0 }).await;
    assert!(returned, "the unpaid orders expired and their units went back to the show");
    let (c_forgot, a_sold) = tokio::join!(
        eventually(Duration::from_secs(1), || async {
            outcome(&replica_c, order("c-5", &hot, 1, "c-5")).await == "Unavailable"
        }),
        eventually(Duration::from_secs(1), || async {
            outcome(&sale.hema, order("a-1", &hot, 2, "a-1")).await.is_empty()
        }),
    );
    assert!(c_forgot && a_sold, "within a second of the expiry: C knew ({c_forgot}), A sold ({a_sold})");
    sale.books(&hot).await;
    sale.stop().await;
}

#[tokio::test]
async fn an_ended_show_is_not_live_to_every_order_from_the_moment_it_ends() {
    let mut sale = sale(&[(0, 50)]).await;
    let hot = sale.products[0].clone();
    // Scheduling answers orders about a live show from a cache of up to a
    // second: this order fills it just before the show ends.
    sale.hema.place_order(order("early", &hot, 1, "end-0")).await.unwrap();
    sale.festival.scheduling.end_show(EndShowRequest { name: SHOW.into(), request_id: String::new() }).await.unwrap();

    // Within that second, an order still reaches inventory, whose closed
    // allocation refuses it: the partner hears the show is not live, in the
    // words the README gives, not an internal "allocation closed".
    let status = sale.hema.place_order(order("late", &hot, 1, "end-1")).await.unwrap_err();
    assert_eq!((status.code(), reason(&status).as_str()), (Code::FailedPrecondition, "SHOW_NOT_LIVE"), "{status:?}");
    let info = status.get_error_details().error_info().cloned().unwrap();
    assert_eq!(info.metadata["show"], SHOW);
    let orders = sale.list(&sale.operator, ListOrdersRequest::default()).await;
    assert_eq!(orders.len(), 1, "the refused order left nothing");
    sale.stop().await;
}

#[tokio::test]
async fn the_report_of_a_show_that_does_not_exist_is_not_found_and_of_one_without_sales_is_empty() {
    let mut sale = sale(&[(0, 5)]).await;
    let status = sale
        .operator
        .get_show_sales_report(GetShowSalesReportRequest { show: "shows/no-such-show".into() })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound, "{status:?}");
    let report = sale.report(&sale.hema).await;
    assert_eq!((report.order_count, report.products.len()), (0, 0), "a live show, nothing sold yet");
    sale.stop().await;
}

#[tokio::test]
async fn a_repeat_while_the_first_attempt_hangs_answers_within_the_call_limit() {
    use caravan_testkit::{TestDatabase, TestServer, service_config};

    // Catalog answers; inventory accepts connections and never answers, so
    // the first attempt holds its request id until the call limit.
    let catalog = TestServer::start::<caravan_catalog::Catalog>(&[]).await.unwrap();
    let dataset =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../crates/caravan/data/products.jsonl")).unwrap();
    let line = dataset.lines().find(|l| l.contains("\"id\":\"uz-")).unwrap();
    let product = line.split("\"id\":\"").nth(1).unwrap().split('"').next().unwrap().to_owned();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("products.jsonl");
    std::fs::write(&file, line).unwrap();
    caravan::catalog_import::import(&file, &catalog.addr().to_string(), Caller::Operator.key(), 10, true)
        .await
        .unwrap();
    let hanging = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let inventory = hanging.local_addr().unwrap();
    let _held = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = hanging.accept().await {
            held.push(socket);
        }
    });
    let database = TestDatabase::new::<caravan_orders::Migrator>(ServiceKind::Orders).await.unwrap();
    let mut config = service_config(
        ServiceKind::Orders,
        database.config(),
        &[(ServiceKind::Catalog, catalog.addr()), (ServiceKind::Inventory, inventory)],
    );
    let limit = Duration::from_secs(2);
    config.call_limit = limit;
    let orders = TestServer::start_with::<caravan_orders::Orders>(config, database).await.unwrap();
    let request = PlaceOrderRequest {
        buyer: "buyer-1".into(),
        show: String::new(),
        lines: vec![PlaceOrderLine { product: format!("products/{product}"), quantity: 1 }],
        request_id: "req-hang".into(),
    };
    // The partner sets no deadline of its own: the call limit alone bounds
    // the first attempt, a repeat waiting for it, and the repeat's own run.
    let attempt = |delay: Duration| {
        let mut client = OrdersServiceClient::new(orders.channel_as(Caller::Hema));
        let request = request.clone();
        async move {
            tokio::time::sleep(delay).await;
            let started = std::time::Instant::now();
            let status = client.place_order(request).await.unwrap_err();
            (status, started.elapsed())
        }
    };
    let answers = join_all([attempt(Duration::ZERO), attempt(Duration::from_millis(300))]).await;
    for (status, took) in answers {
        assert!(matches!(status.code(), Code::Unavailable | Code::Aborted), "{status:?}");
        assert!(took < limit + Duration::from_millis(800), "answered after {took:?}, over the call limit: {status:?}");
    }
}
