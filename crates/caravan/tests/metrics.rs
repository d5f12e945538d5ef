//! Each `caravan serve` process's /metrics after a known piece of traffic:
//! the counters moved by exactly what was done, on both sides of each call.

#![allow(clippy::unwrap_used)] // Test helpers fail loudly; that is their job.

mod common;

use std::{net::SocketAddr, time::Duration};

use caravan::channel::Authed;
use caravan_platform::config::ServiceKind;
use caravan_proto::orders::v1::{
    CancelOrderRequest, ConfirmPaymentRequest, orders_service_client::OrdersServiceClient,
};
use caravan_testkit::{Caller, eventually};
use common::{Services, live_show, place};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

/// The Prometheus text of the endpoint at `addr`.
async fn scrape(addr: SocketAddr) -> String {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.write_all(b"GET /metrics HTTP/1.0\r\nHost: caravan\r\n\r\n").await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.0 200") || head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(head.to_ascii_lowercase().contains("content-type: text/plain; version=0.0.4"), "{head}");
    body.to_owned()
}

/// The value of the sample `name` whose labels are exactly `labels`; 0 when
/// there is none (a counter that never moved).
fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    let mut wanted: Vec<String> = labels.iter().map(|(k, v)| format!("{k}=\"{v}\"")).collect();
    wanted.sort();
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let Some((series, value)) = line.rsplit_once(' ') else { continue };
        let (metric, found) = match series.split_once('{') {
            Some((metric, rest)) => {
                let mut found: Vec<String> = rest.trim_end_matches('}').split(',').map(str::to_owned).collect();
                found.retain(|l| !l.is_empty());
                found.sort();
                (metric, found)
            }
            None => (series, Vec::new()),
        };
        if metric == name && found == wanted {
            return value.parse().unwrap();
        }
    }
    0.0
}

#[tokio::test]
async fn each_processs_counters_move_by_exactly_what_was_done() {
    let dir = tempfile::tempdir().unwrap();
    let services = Services::start(dir.path(), &[]).await;
    let orders = services.addrs[&ServiceKind::Orders];
    let sale = live_show(&services.addrs, Caller::Operator.key(), 2).await;

    // Three buyers for two units — the first wants three, and inventory
    // refuses; one pays, one cancels.
    let refused = place(orders, Caller::Hema.key(), &sale, "buyer-c", 3, None).await.unwrap_err();
    assert_eq!(refused.code(), tonic::Code::FailedPrecondition);
    let a = place(orders, Caller::Hema.key(), &sale, "buyer-a", 1, None).await.unwrap();
    let b = place(orders, Caller::Hema.key(), &sale, "buyer-b", 1, None).await.unwrap();
    let mut hema = OrdersServiceClient::new(Authed::new(&orders.to_string(), Some(Caller::Hema.key()), None).unwrap());
    hema.confirm_payment(ConfirmPaymentRequest {
        name: a,
        payment_reference: "pay-a".into(),
        request_id: String::new(),
    })
    .await
    .unwrap();
    hema.cancel_order(CancelOrderRequest { name: b, reason: String::new(), request_id: String::new() }).await.unwrap();

    let text = |kind: ServiceKind| scrape(services.metrics[&kind]);
    let orders_text = text(ServiceKind::Orders).await;
    for (event, n) in
        [("placed", 3.0), ("accepted", 2.0), ("rejected", 0.0), ("paid", 1.0), ("cancelled", 1.0), ("expired", 0.0)]
    {
        assert_eq!(sample(&orders_text, "caravan_orders_total", &[("event", event)]), n, "orders {event}");
    }
    let turned_away = |decided| sample(&orders_text, "caravan_orders_turned_away_total", &[("decided", decided)]);
    assert_eq!((turned_away("inventory"), turned_away("memory")), (1.0, 0.0), "the refused order, turned away");
    let show = sale.show().trim_start_matches("shows/");
    let of_show = |event| sample(&orders_text, "caravan_show_orders_total", &[("show", show), ("event", event)]);
    assert_eq!((of_show("placed"), of_show("paid"), of_show("turned_away")), (3.0, 1.0, 1.0), "the show's own figures");
    let place_order = "caravan.orders.v1.OrdersService/PlaceOrder";
    let served = |text: &str, service: &str, method: &str, code: &str| {
        sample(text, "rpc_server_duration_seconds_count", &[("service", service), ("method", method), ("code", code)])
    };
    let called = |text: &str, service: &str, method: &str, code: &str| {
        sample(text, "rpc_client_duration_seconds_count", &[("service", service), ("method", method), ("code", code)])
    };
    assert_eq!(served(&orders_text, "orders", place_order, "OK"), 2.0);
    assert_eq!(served(&orders_text, "orders", place_order, "FAILED_PRECONDITION"), 1.0);
    let reserve = "caravan.inventory.v1.InventoryService/ReserveStock";
    assert_eq!(called(&orders_text, "orders", reserve, "OK"), 2.0);
    assert_eq!(called(&orders_text, "orders", reserve, "FAILED_PRECONDITION"), 1.0);
    let batch_get = "caravan.catalog.v1.CatalogService/BatchGetProducts";
    assert_eq!(called(&orders_text, "orders", batch_get, "OK"), 3.0);
    // The pool of two asked for; SQLite always has its one writer.
    let pool = if std::env::var_os(caravan_testkit::PG_URL_VARIABLE).is_some() { 2.0 } else { 1.0 };
    assert_eq!(sample(&orders_text, "caravan_db_max_connections", &[("service", "orders")]), pool);
    assert!(orders_text.contains("caravan_db_connections{service=\"orders\",state=\"idle\"}"));

    let inventory_text = text(ServiceKind::Inventory).await;
    for (event, n) in [("reserved", 2.0), ("committed", 1.0), ("released", 1.0), ("expired", 0.0)] {
        assert_eq!(sample(&inventory_text, "caravan_stock_units_total", &[("event", event)]), n, "units {event}");
    }
    assert_eq!(
        sample(&inventory_text, "caravan_sold_out_total", &[("pool", "show")]),
        1.0,
        "the second unit sold it out"
    );
    assert_eq!(sample(&inventory_text, "caravan_allocations_total", &[("event", "allocated")]), 1.0);
    assert_eq!(served(&inventory_text, "inventory", reserve, "OK"), 2.0);
    assert_eq!(served(&inventory_text, "inventory", reserve, "FAILED_PRECONDITION"), 1.0);

    // Catalog served orders' three checks and scheduling's check of the line-up.
    let catalog_text = text(ServiceKind::Catalog).await;
    assert_eq!(served(&catalog_text, "catalog", batch_get, "OK"), 4.0);
    let scheduling_text = text(ServiceKind::Scheduling).await;
    assert_eq!(called(&scheduling_text, "scheduling", batch_get, "OK"), 1.0);
    let live_offers = "caravan.scheduling.v1.SchedulingService/GetLiveOffers";
    assert_eq!(served(&scheduling_text, "scheduling", live_offers, "OK"), 3.0);
    let live = eventually(Duration::from_secs(10), || async {
        sample(&scrape(services.metrics[&ServiceKind::Scheduling]).await, "caravan_shows_live", &[]) == 1.0
    })
    .await;
    assert!(live, "one show on air");
    services.stop().await;
}
