//! Drain under load: one of two `caravan serve catalog` replicas gets
//! SIGTERM while a balancing client drives calls at both. Its health turns
//! NOT_SERVING before it goes, the calls it has in flight complete, and a
//! client that retries on UNAVAILABLE sees no failed call.

#![allow(clippy::unwrap_used)] // Test helpers fail loudly; that is their job.

mod common;

use std::{
    net::SocketAddr,
    pin::Pin,
    process::Command,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use caravan_platform::{
    client::{Balancing, ChannelOptions, Resolver, Retry, TracedChannel},
    config::ServiceKind,
};
use caravan_proto::catalog::v1::{GetCountryRequest, catalog_service_client::CatalogServiceClient};
use caravan_testkit::{Caller, TestDatabase, health_status, write_test_keys};
use common::{Spawned, free_addr, serve, serving};
use tonic::Code;
use tonic_health::pb::health_check_response::ServingStatus;

/// The two replicas' addresses, as a headless Service's DNS would answer.
#[derive(Debug, Clone)]
struct Replicas(Arc<Mutex<Vec<SocketAddr>>>);

impl Resolver for Replicas {
    fn resolve(
        &self,
        _host: &str,
        _port: u16,
    ) -> Pin<Box<dyn std::future::Future<Output = std::io::Result<Vec<SocketAddr>>> + Send + '_>> {
        let addrs = self.0.lock().unwrap().clone();
        Box::pin(async move { Ok(addrs) })
    }
}

#[tokio::test]
async fn a_replica_drains_on_sigterm_and_a_retrying_client_never_fails() {
    let dir = tempfile::tempdir().unwrap();
    let keys = write_test_keys(dir.path()).unwrap();
    let database = TestDatabase::new::<caravan_catalog::Migrator>(ServiceKind::Catalog).await.unwrap();
    let (a, b) = (free_addr(), free_addr());
    let replica = |addr: SocketAddr| {
        let child = serve(ServiceKind::Catalog, addr, &database, &keys)
            .env("CARAVAN_MIGRATE", "verify")
            .env("CARAVAN_SHUTDOWN_GRACE", "5s")
            .env("CARAVAN_DRAIN_DELAY", "1s")
            .spawn()
            .unwrap();
        Spawned(child)
    };
    let mut leaving = replica(a);
    let mut staying = replica(b);
    serving(a).await;
    serving(b).await;

    let replicas = Replicas(Arc::new(Mutex::new(vec![a, b])));
    let options = ChannelOptions {
        caller: ServiceKind::Scheduling,
        target: ServiceKind::Catalog,
        connect_timeout: Duration::from_millis(500),
        default_deadline: Duration::from_secs(2),
        service_key: caravan_platform::auth::keys::ServiceKey::new(Caller::Service(ServiceKind::Scheduling).key()).ok(),
        tls: None,
        balancing: Balancing { resolver: Arc::new(replicas.clone()), interval: Duration::from_millis(100) },
        chaos: Default::default(),
    };
    let url = url::Url::parse("http://catalog-headless:50051").unwrap();
    let client = CatalogServiceClient::new(TracedChannel::new(&url, options).unwrap());

    // Eight callers, each retrying only on UNAVAILABLE (GetCountry is idempotent).
    let stop = Arc::new(AtomicBool::new(false));
    let (calls, failed) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let cut: Arc<Mutex<Vec<String>>> = Arc::default();
    let retry = Retry::with_attempts(5);
    let callers: Vec<_> = (0..8)
        .map(|_| {
            let (client, stop, calls, failed, cut, retry) =
                (client.clone(), stop.clone(), calls.clone(), failed.clone(), cut.clone(), retry.clone());
            tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    let outcome = retry
                        .idempotent(|| {
                            let mut client = client.clone();
                            let cut = cut.clone();
                            async move {
                                let answer = client
                                    .get_country(GetCountryRequest { name: "countries/UZ".into(), as_of: None })
                                    .await;
                                // Anything but a clean answer or a retryable
                                // refusal means a call was cut mid-flight.
                                if let Err(status) = &answer
                                    && status.code() != Code::Unavailable
                                {
                                    cut.lock().unwrap().push(format!("{:?}: {}", status.code(), status.message()));
                                }
                                answer
                            }
                        })
                        .await;
                    calls.fetch_add(1, Ordering::Relaxed);
                    if outcome.is_err() {
                        failed.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();

    // Watch the leaving replica's health from outside, as a kubelet would.
    let watching = tokio::spawn(async move {
        let mut seen = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            let status = health_status(a, "").await.ok();
            if seen.last() != Some(&status) {
                seen.push(status);
            }
            if status.is_none() && seen.len() > 1 {
                break; // The port is closed: the process is gone.
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        seen
    });

    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = calls.load(Ordering::Relaxed);
    assert!(before > 50, "load is flowing: {before} calls");
    Command::new("kill").args(["-TERM", &leaving.0.id().to_string()]).status().unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    let exit = loop {
        if let Some(status) = leaving.0.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "the replica did not drain and exit");
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    assert!(exit.success(), "a clean exit after the drain: {exit:?}");
    // Scale-in done: the name no longer answers the replica that left.
    replicas.0.lock().unwrap().retain(|addr| *addr != a);
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::Relaxed);
    for caller in callers {
        caller.await.unwrap();
    }

    let seen = watching.await.unwrap();
    let serving_then_not: Vec<_> = seen.iter().map(|s| s.map(|s| s as i32)).collect();
    assert_eq!(
        seen.first().copied().flatten(),
        Some(ServingStatus::Serving),
        "SERVING before the signal: {serving_then_not:?}"
    );
    let not_serving = seen.iter().position(|s| *s == Some(ServingStatus::NotServing));
    let gone = seen.iter().position(Option::is_none);
    assert!(
        matches!((not_serving, gone), (Some(n), Some(g)) if n < g),
        "health turned NOT_SERVING before the port closed: {serving_then_not:?}"
    );
    assert!(calls.load(Ordering::Relaxed) > before + 50, "calls went on after the signal");
    assert_eq!(*cut.lock().unwrap(), Vec::<String>::new(), "no call in flight was cut");
    assert_eq!(failed.load(Ordering::Relaxed), 0, "no call failed");
    Command::new("kill").args(["-TERM", &staying.0.id().to_string()]).status().unwrap();
    staying.0.wait().unwrap();
}

#[tokio::test]
async fn the_exit_after_sigterm_fits_the_budget_the_pods_grace_period_is_sized_for() {
    use caravan_platform::shutdown::exit_budget;
    use caravan_proto::inventory::v1::{WatchStockRequest, inventory_service_client::InventoryServiceClient};
    use caravan_testkit::KeyedChannel;

    let dir = tempfile::tempdir().unwrap();
    let keys = write_test_keys(dir.path()).unwrap();
    let database = TestDatabase::new::<caravan_inventory::Migrator>(ServiceKind::Inventory).await.unwrap();
    // A collector that accepts connections and never answers: the trace
    // flush at exit waits as long as it is allowed to.
    let collector = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let otlp = collector.local_addr().unwrap();
    let _held = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = collector.accept().await {
            held.push(socket);
        }
    });
    let addr = free_addr();
    let grace = Duration::from_secs(3);
    let mut child = Spawned(
        serve(ServiceKind::Inventory, addr, &database, &keys)
            .env("CARAVAN_MIGRATE", "verify")
            .env("CARAVAN_SHUTDOWN_GRACE", "3s")
            .env("CARAVAN_DRAIN_DELAY", "1s")
            .env("OTEL_EXPORTER_OTLP_ENDPOINT", format!("http://{otlp}"))
            .env("OTEL_TRACES_SAMPLER", "always_on")
            .spawn()
            .unwrap(),
    );
    serving(addr).await;
    // A call that lasts: a stock stream, open when the signal comes.
    let mut client = InventoryServiceClient::new(KeyedChannel::new(addr, Some(Caller::Operator)));
    let request = WatchStockRequest { products: vec!["products/uz-walnuts".into()], ..Default::default() };
    let mut stream = client.watch_stock(request).await.unwrap().into_inner();
    stream.message().await.unwrap().expect("the snapshot");

    let signalled = Instant::now();
    Command::new("kill").args(["-TERM", &child.0.id().to_string()]).status().unwrap();
    let budget = exit_budget(grace);
    let exit = loop {
        if let Some(status) = child.0.try_wait().unwrap() {
            break status;
        }
        assert!(signalled.elapsed() < budget * 3, "no exit after {:?}", signalled.elapsed());
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let took = signalled.elapsed();
    eprintln!("exited {took:?} after SIGTERM");
    assert!(exit.success(), "a clean exit: {exit:?}");
    // Nothing was left in flight after the drain delay (the stream ends
    // with the drain), so the exit took the delay and the trace flush the
    // silent collector made last its whole allowance — never the budget's
    // worst case, and nothing more. A margin for a loaded machine.
    let expected = Duration::from_secs(1) + caravan_platform::shutdown::TRACE_FLUSH;
    assert!(
        took <= expected + Duration::from_millis(900),
        "exited {took:?} after SIGTERM, expected about {expected:?}"
    );
    assert!(took <= budget, "within the exit budget {budget:?}");
    let ended = tokio::time::timeout(Duration::from_secs(1), stream.message()).await;
    assert!(!matches!(ended, Ok(Ok(Some(_)))), "the stream ended with the process: {ended:?}");
}
