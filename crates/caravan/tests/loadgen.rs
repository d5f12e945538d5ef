//! `caravan loadgen` end to end: the echo baselines in child processes and the
//! database baseline, counted and checked (never timed).

#![allow(clippy::unwrap_used)] // Test helpers fail loudly; that is their job.

mod common;

use std::process::{Command, Stdio};

use caravan_platform::config::ServiceKind;
use caravan_testkit::TestDatabase;

fn loadgen(args: &[&str]) -> serde_json::Value {
    let output = Command::new(env!("CARGO_BIN_EXE_caravan"))
        .arg("loadgen")
        .args(args)
        .args(["--json", "--warmup", "0s", "--concurrency", "4", "--channels", "2"])
        .env_clear()
        .env("CARAVAN_LOG", "warn")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    serde_json::from_slice(&output.stdout).unwrap()
}

#[test]
fn echo_baselines_run_every_call_without_error_and_compare() {
    let dir = tempfile::tempdir().unwrap();
    let svg = dir.path().join("run.svg");
    let out = loadgen(&[
        "--baseline",
        "echo",
        "--baseline",
        "echo-platform",
        "--count",
        "300",
        "--compare",
        "--svg",
        svg.to_str().unwrap(),
    ]);
    let reports = out["reports"].as_array().unwrap();
    assert_eq!(reports.len(), 2);
    for (report, name) in reports.iter().zip(["baseline echo", "baseline echo-platform"]) {
        assert_eq!(report["name"], name);
        assert_eq!(report["calls"], 300, "{report}");
        assert!(report["errors"].as_object().unwrap().is_empty(), "{report}");
        assert!(report["throughput"].as_f64().unwrap() > 0.0);
        assert!(report["server_cpu_seconds"].as_f64().is_some(), "the child server's CPU is read from /proc");
        let p = &report["latency_ms"];
        assert!(p["p50"].as_f64().unwrap() <= p["p99"].as_f64().unwrap());
    }
    let ratios = out["ratios"].as_array().unwrap();
    assert_eq!(ratios.len(), 1);
    assert_eq!(ratios[0]["baseline"], "baseline echo");
    let drawn = std::fs::read_to_string(&svg).unwrap();
    assert!(drawn.starts_with("<svg") && drawn.contains("throughput"));
}

#[tokio::test]
async fn the_database_baseline_counts_each_decrement_once() {
    let database = TestDatabase::new::<caravan_catalog::Migrator>(ServiceKind::Catalog).await.unwrap();
    let url = database.config().url.expose().clone();
    let out =
        tokio::task::spawn_blocking(move || loadgen(&["--baseline", "db", "--database-url", &url, "--count", "200"]))
            .await
            .unwrap();
    let report = &out["reports"][0];
    assert_eq!(report["calls"], 200);
    assert!(report["errors"].as_object().unwrap().is_empty(), "{report}");
    assert!(report["correctness"].as_str().unwrap().contains("units taken: 200 of"), "{report}");
}

#[test]
fn nothing_to_run_is_an_error() {
    let output = Command::new(env!("CARGO_BIN_EXE_caravan")).args(["loadgen"]).env_clear().output().unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("--scenario"));
}

#[tokio::test]
async fn the_read_scenario_reads_the_catalog_of_a_running_service() {
    use caravan_testkit::{Caller, TestServer};

    let catalog = TestServer::start::<caravan_catalog::Catalog>(&[]).await.unwrap();
    let addr = catalog.addr().to_string();
    let dataset = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/data/products.jsonl"));
    caravan::catalog_import::import(dataset, &addr, Caller::Operator.key(), 500, true).await.unwrap();
    let out = tokio::task::spawn_blocking(move || {
        loadgen(&["--scenario", "read", "--catalog", &addr, "--key", Caller::Hema.key(), "--count", "150"])
    })
    .await
    .unwrap();
    let report = &out["reports"][0];
    assert_eq!(report["name"], "read");
    assert_eq!(report["calls"], 150);
    assert!(report["errors"].as_object().unwrap().is_empty(), "{report}");

    // Synthetic products to grow the catalog, and the list scenario on it.
    let addr = catalog.addr().to_string();
    let filled = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_caravan"))
            .args(["catalog", "fill", "--count", "2500", "--catalog", &addr, "--key", Caller::Operator.key()])
            .env_clear()
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(
        String::from_utf8_lossy(&filled.stdout).contains("created 2500"),
        "{}",
        String::from_utf8_lossy(&filled.stderr)
    );
    let addr = catalog.addr().to_string();
    let out = tokio::task::spawn_blocking(move || {
        loadgen(&[
            "--scenario",
            "list",
            "--list-country",
            "countries/PK",
            "--catalog",
            &addr,
            "--key",
            Caller::Hema.key(),
            "--count",
            "50",
        ])
    })
    .await
    .unwrap();
    assert_eq!(out["reports"][0]["calls"], 50);
    assert!(out["reports"][0]["errors"].as_object().unwrap().is_empty());

    // A wrong key cannot even list what to read.
    let addr = catalog.addr().to_string();
    let output = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_caravan"))
            .args(["loadgen", "--scenario", "read", "--catalog", &addr, "--key", "cvn_wrong", "--count", "20"])
            .env_clear()
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("unknown or revoked API key"));
}

#[tokio::test]
async fn the_reserve_scenario_sells_out_the_hot_product_without_overselling() {
    use caravan_testkit::{Caller, TestServer};

    let inventory = TestServer::start::<caravan_inventory::Inventory>(&[]).await.unwrap();
    let addr = inventory.addr().to_string();
    let out = tokio::task::spawn_blocking(move || {
        loadgen(&[
            "--scenario",
            "reserve",
            "--inventory",
            &addr,
            "--key",
            Caller::Service(ServiceKind::Orders).key(),
            "--operator-key",
            Caller::Operator.key(),
            "--stock",
            "120",
            "--count",
            "200",
        ])
    })
    .await
    .unwrap();
    let report = &out["reports"][0];
    assert_eq!(report["name"], "reserve");
    assert_eq!(report["calls"], 200);
    assert_eq!(report["errors"]["FAILED_PRECONDITION"], 80, "{report}");
    let check = report["correctness"].as_str().unwrap();
    assert!(check.contains("granted 120 of 120") && check.contains("oversold: 0"), "{check}");

    // Without an operator key there is no stock to sell.
    let addr = inventory.addr().to_string();
    let output = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_caravan"))
            .args(["loadgen", "--scenario", "reserve", "--inventory", &addr, "--count", "5"])
            .args(["--key", Caller::Service(ServiceKind::Orders).key()])
            .env_clear()
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("--operator-key"));
}

#[tokio::test]
async fn the_order_scenario_sells_the_show_offer_through_all_four_services_without_overselling() {
    use caravan_testkit::Caller;

    let running = common::InProcess::start().await;
    let addrs = running.addr_args();
    let out = tokio::task::spawn_blocking(move || {
        let mut args: Vec<&str> = addrs.iter().map(String::as_str).collect();
        args.extend([
            "--scenario",
            "order",
            "--key",
            Caller::Hema.key(),
            "--operator-key",
            Caller::Operator.key(),
            "--stock",
            "60",
            "--count",
            "100",
        ]);
        loadgen(&args)
    })
    .await
    .unwrap();
    let report = &out["reports"][0];
    assert_eq!(report["name"], "order");
    assert_eq!(report["calls"], 100);
    assert_eq!(report["errors"]["FAILED_PRECONDITION"], 40, "{report}");
    let check = report["correctness"].as_str().unwrap();
    assert!(check.contains("placed 60 orders of 60") && check.contains("oversold: 0"), "{check}");
    running.stop().await;
}

#[tokio::test]
async fn the_storm_sells_out_refuses_the_crowd_sells_cancelled_units_again_and_keeps_health_serving() {
    use caravan_testkit::Caller;

    let running = common::InProcess::start().await;
    let addrs = running.addr_args();
    let out = tokio::task::spawn_blocking(move || {
        let mut args: Vec<&str> = addrs.iter().map(String::as_str).collect();
        args.extend([
            "--scenario",
            "storm",
            "--key",
            Caller::Hema.key(),
            "--operator-key",
            Caller::Operator.key(),
            "--stock",
            "30",
            "--storm-cancel",
            "5",
            "--duration",
            "3s",
            // Within the partner key's rate limit (2,000/s): refusals from
            // memory are fast enough to reach it.
            "--rate",
            "500",
        ]);
        loadgen(&args)
    })
    .await
    .unwrap();
    let (selling, storming) = (&out["reports"][0], &out["reports"][1]);
    assert_eq!(selling["name"], "storm: selling out");
    assert_eq!(selling["calls"], 30, "one call per unit: {selling}");
    let check = selling["correctness"].as_str().unwrap();
    assert!(check.starts_with("30 accepted, 0 refused; sold out"), "{check}");
    assert_eq!(storming["name"], "storm: after the sell-out");
    assert!(storming["errors"].as_object().unwrap().is_empty(), "refusals are the expected answer: {storming}");
    let check = storming["correctness"].as_str().unwrap();
    assert!(check.contains("5 accepted after 5 orders were cancelled"), "the cancelled units sold again: {check}");
    assert!(check.contains("every one SERVING") && check.contains("oversold: 0"), "{check}");
    assert!(storming["calls"].as_u64().unwrap() > 100, "the crowd kept pressing buy: {storming}");
    running.stop().await;
}
