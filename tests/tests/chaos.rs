//! A fault-injection drill, as the runbook's show-day rehearsal runs it:
//! inventory's database slowed and orders' calls to inventory failing
//! intermittently while buyers order from a live show. Orders' deadlines and
//! retries hold, every PlaceOrder answers within its call limit with a
//! verdict a partner can act on, the drill is counted, it ends by itself, and
//! the books balance.

#![allow(clippy::unwrap_used)] // Test helpers fail loudly; that is their job.

mod common;

use std::time::{Duration, Instant};

use caravan::{
    channel::Authed,
    loadgen::scenario::{Order, OrderSetup},
};
use caravan_platform::config::ServiceKind;
use caravan_proto::orders::v1::{PlaceOrderLine, PlaceOrderRequest, orders_service_client::OrdersServiceClient};
use caravan_testkit::Caller;
use common::start_suite_adjusted;
use futures::future::join_all;
use tonic::Code;

const CALL_LIMIT: Duration = Duration::from_secs(3);

/// The injections counted so far for `service`'s `target` and `fault`.
fn injected(service: &str, target: &str, fault: &str) -> u64 {
    let text = caravan_platform::metrics::metrics().render();
    let series =
        format!("caravan_chaos_injected_total{{fault=\"{fault}\",service=\"{service}\",target=\"{target}\"}} ");
    text.lines().find_map(|l| l.strip_prefix(series.as_str())).map_or(0, |v| v.parse().unwrap())
}

/// Whether `service` reports a drill on.
fn active(service: &str) -> bool {
    let series = format!("caravan_chaos_active{{service=\"{service}\"}} ");
    let text = caravan_platform::metrics::metrics().render();
    text.lines().find_map(|l| l.strip_prefix(series.as_str())).is_some_and(|v| v == "1")
}

fn request(sale: &Order, buyer: usize) -> PlaceOrderRequest {
    PlaceOrderRequest {
        buyer: format!("drill-buyer-{buyer}"),
        show: sale.show().to_owned(),
        lines: vec![PlaceOrderLine { product: sale.product(), quantity: 1 }],
        request_id: format!("drill-{buyer}"),
    }
}

#[tokio::test]
async fn a_drill_slows_inventory_and_orders_still_answer_within_their_limit() {
    let dir = tempfile::tempdir().unwrap();
    let drill = dir.path().join("drill.json");
    let until = chrono::Utc::now() + chrono::Duration::seconds(12);
    std::fs::write(
        &drill,
        format!(
            r#"{{"until": "{}", "faults": [
                {{"service": "inventory", "database": true, "latency": "40ms"}},
                {{"service": "orders", "calls_to": "inventory", "latency": "100ms", "error_rate": 0.3}}]}}"#,
            until.to_rfc3339()
        ),
    )
    .unwrap();
    let running = start_suite_adjusted(None, |_, config| {
        config.chaos_file = Some(drill.clone());
        config.call_limit = CALL_LIMIT;
    })
    .await;
    let suite = &running.suite;
    assert!(active("inventory") && active("orders"), "the drill is on from the start");
    assert!(!active("catalog"), "catalog has no fault in it");
    let channel = |kind| Authed::new(&suite.addr(kind).to_string(), Some(Caller::Operator.key()), None).unwrap();
    let setup = OrderSetup {
        catalog: channel(ServiceKind::Catalog),
        scheduling: channel(ServiceKind::Scheduling),
        inventory: channel(ServiceKind::Inventory),
        orders: channel(ServiceKind::Orders),
    };
    let sale = Order::prepare(Vec::new(), setup, 20).await.unwrap();
    let hema = OrdersServiceClient::new(
        Authed::new(&suite.addr(ServiceKind::Orders).to_string(), Some(Caller::Hema.key()), None).unwrap(),
    );

    // Thirty buyers for twenty units, all at once, while the drill is on.
    let answers = join_all((0..30).map(|buyer| {
        let (mut client, request) = (hema.clone(), request(&sale, buyer));
        async move {
            let start = Instant::now();
            let answer = client.place_order(request).await;
            (buyer, start.elapsed(), answer.map(|o| o.into_inner().name))
        }
    }))
    .await;
    let mut retry = Vec::new();
    for (buyer, took, answer) in &answers {
        assert!(*took <= CALL_LIMIT + Duration::from_secs(1), "buyer {buyer} waited {took:?}, past the call limit");
        match answer {
            Ok(_) => {}
            Err(status) if status.code() == Code::FailedPrecondition => {}
            // Orders' retries ran out within the limit: the partner retries
            // with the same request id, as the contract says.
            Err(status) if matches!(status.code(), Code::Unavailable | Code::DeadlineExceeded) => retry.push(*buyer),
            Err(status) => panic!("buyer {buyer}: {status:?} is no answer a partner can act on"),
        }
    }
    assert!(injected("inventory", "database", "latency") > 0, "inventory's database was slowed");
    assert!(injected("orders", "calls:inventory", "latency") > 0, "orders' calls to inventory were slowed");
    assert!(injected("orders", "calls:inventory", "error") > 0, "and some failed");

    // The drill ends by itself; afterwards nothing is injected, and the
    // buyers told to retry get their verdict.
    let left = (until - chrono::Utc::now()).to_std().unwrap_or_default();
    tokio::time::sleep(left + Duration::from_millis(200)).await;
    let before = injected("orders", "calls:inventory", "latency");
    for buyer in retry {
        let answer = hema.clone().place_order(request(&sale, buyer)).await;
        assert!(
            answer.is_ok() || answer.as_ref().is_err_and(|s| s.code() == Code::FailedPrecondition),
            "buyer {buyer}'s retry after the drill: {answer:?}"
        );
    }
    let after = hema.clone().place_order(request(&sale, 99)).await;
    assert!(after.is_ok() || after.is_err_and(|s| s.code() == Code::FailedPrecondition));
    assert_eq!(injected("orders", "calls:inventory", "latency"), before, "the drill is over");
    assert!(!active("orders"), "and says so");

    // Whatever the faults, nothing oversold and the books balance.
    let db = running.database(ServiceKind::Inventory).connect().await.unwrap();
    let (violations, books) = caravan_inventory::store::audit(&db).await.unwrap();
    assert!(violations.is_empty(), "inventory's books balance after the drill: {violations:?}");
    let product = sale.product().trim_start_matches("products/").to_owned();
    let held: i64 = books.iter().filter(|((p, _), _)| *p == product).map(|(_, b)| b.reserved).sum();
    assert!(held <= 20, "never more held than the show had: {held}");
    running.token.cancel();
}
