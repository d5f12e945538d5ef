//! `caravan demo` end to end against a running suite: it sets the festival
//! up, plays the first show as a flash sale, and prints a sales report that
//! agrees with the service's.

#![allow(clippy::unwrap_used)] // Test helpers fail loudly; that is their job.

mod common;

use std::process::{Command, Stdio};

use caravan_platform::config::ServiceKind;
use caravan_proto::{
    orders::v1::{GetShowSalesReportRequest, orders_service_client::OrdersServiceClient},
    scheduling::v1::{ListShowsRequest, scheduling_service_client::SchedulingServiceClient},
};
use caravan_testkit::{Caller, KeyedChannel};
use common::InProcess;

#[tokio::test]
async fn the_demo_plays_the_first_show_and_reports_what_the_service_reports() {
    let running = InProcess::start().await;
    let suite = &running.suite;
    let addrs = running.addr_args();
    let output = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_caravan"))
            .args(["demo", "--time-scale", "600", "--buyers", "150"])
            .args(&addrs)
            .args(["--operator-key", Caller::Operator.key(), "--hema-key", Caller::Hema.key()])
            .env_clear()
            .env("CARAVAN_LOG", "warn")
            .stdin(Stdio::null())
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(output.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    for expected in [
        "1692 specialties of 28 countries",
        "Uzbekistan on Hema",
        "Pakistan",
        "Cambodia",
        "Russia",
        "the host presents",
    ] {
        assert!(stdout.contains(expected), "`{expected}` missing:\n{stdout}");
    }

    // The service's report of the show the demo played.
    let mut shows =
        SchedulingServiceClient::new(KeyedChannel::new(suite.addr(ServiceKind::Scheduling), Some(Caller::Operator)));
    let listed = shows.list_shows(ListShowsRequest::default()).await.unwrap().into_inner().shows;
    assert_eq!(listed.len(), 5, "the seed's five shows");
    let played = listed.iter().find(|s| s.name.starts_with("shows/uz-")).unwrap();
    assert_eq!(played.offers.len(), 9, "nine Uzbek specialties");
    let mut sales =
        OrdersServiceClient::new(KeyedChannel::new(suite.addr(ServiceKind::Orders), Some(Caller::Operator)));
    let report = sales
        .get_show_sales_report(GetShowSalesReportRequest { show: played.name.clone() })
        .await
        .unwrap()
        .into_inner();
    assert!(
        report.orders_paid > 0 && report.orders_paid >= report.orders_awaiting_payment,
        "most buyers paid: {report:?}"
    );
    let line = format!(
        "{} orders: {} paid, {} awaiting payment; {} units sold",
        report.order_count, report.orders_paid, report.orders_awaiting_payment, report.units_paid
    );
    assert!(stdout.contains(&line), "the printed report is the service's: `{line}` in\n{stdout}");
    let sold_out = report.products.iter().filter(|p| p.sold_out_time.is_some()).count();
    assert!(sold_out > 0, "popular goods sold out");
    assert_eq!(stdout.matches("after ").count(), sold_out, "each sell-out is printed:\n{stdout}");
    for offer in &played.offers {
        let sold = report
            .products
            .iter()
            .find(|p| p.product == offer.product)
            .map_or(0, |p| p.units_paid + p.units_awaiting_payment);
        assert!(sold <= offer.allocated_quantity, "{}: {sold} of {}", offer.product, offer.allocated_quantity);
    }
    running.stop().await;
}
