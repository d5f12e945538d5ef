//! Database outages: a replica that starts while its database is away waits
//! unready instead of crashing, and calls during a known outage are answered
//! UNAVAILABLE at once. PostgreSQL only (a SQLite file cannot go away from
//! the process holding it); on SQLite each test checks what applies and ends.

#![allow(clippy::unwrap_used)] // Test helpers fail loudly; that is their job.

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

mod common;

use caravan_platform::{
    config::{MigrateMode, Secret, ServiceKind},
    server::LIVENESS,
};
use caravan_proto::catalog::v1::{GetCountryRequest, catalog_service_client::CatalogServiceClient};
use caravan_testkit::{TestDatabase, TestServer, eventually, health_status, service_config};
use tokio::net::{TcpListener, TcpStream};
use tonic::Code;
use tonic_health::pb::health_check_response::ServingStatus;

fn replica_config(database: &TestDatabase) -> caravan_platform::config::ServiceConfig {
    let mut config = service_config(ServiceKind::Catalog, database.config(), &[]);
    config.migrate = MigrateMode::Verify;
    // The pool's own patience, which a known outage must not cost each call.
    config.database.acquire_timeout = Duration::from_secs(5);
    config
}

fn country() -> GetCountryRequest {
    GetCountryRequest { name: "countries/UZ".into(), as_of: None }
}

#[tokio::test]
async fn calls_during_a_known_outage_are_answered_unavailable_at_once() {
    let database = Arc::new(TestDatabase::new::<caravan_catalog::Migrator>(ServiceKind::Catalog).await.unwrap());
    let server =
        TestServer::start_with::<caravan_catalog::Catalog>(replica_config(&database), database.clone()).await.unwrap();
    let mut client = CatalogServiceClient::new(server.channel());
    client.get_country(country()).await.unwrap();
    if !database.set_reachable(false).await.unwrap() {
        return; // SQLite
    }
    let known = eventually(Duration::from_secs(15), || async {
        health_status(server.addr(), "").await.unwrap() == ServingStatus::NotServing
    })
    .await;
    assert!(known, "health saw the outage");
    for _ in 0..5 {
        let started = Instant::now();
        let status = client.get_country(country()).await.unwrap_err();
        let took = started.elapsed();
        assert_eq!(status.code(), Code::Unavailable, "{status:?}");
        assert!(took < Duration::from_secs(1), "answered in {took:?}, not after the pool's 5 s acquire timeout");
    }
    database.set_reachable(true).await.unwrap();
    let back =
        eventually(Duration::from_secs(15), || async { client.clone().get_country(country()).await.is_ok() }).await;
    assert!(back, "calls succeed again once a health check reaches the database");
    assert_eq!(health_status(server.addr(), "").await.unwrap(), ServingStatus::Serving);
}

/// A TCP proxy to the database that drops every connection while closed,
/// and can cut the connections it carries (as a PostgreSQL restart would).
struct Gate {
    addr: std::net::SocketAddr,
    open: Arc<AtomicBool>,
    carried: Arc<Mutex<Vec<tokio::task::AbortHandle>>>,
}

impl Gate {
    async fn to(upstream: String, open: bool) -> Gate {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let open = Arc::new(AtomicBool::new(open));
        let carried: Arc<Mutex<Vec<tokio::task::AbortHandle>>> = Arc::default();
        let (gate, connections) = (open.clone(), carried.clone());
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                if !gate.load(Ordering::SeqCst) {
                    drop(inbound);
                    continue;
                }
                let upstream = upstream.clone();
                let task = tokio::spawn(async move {
                    if let Ok(mut outbound) = TcpStream::connect(upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
                connections.lock().unwrap().push(task.abort_handle());
            }
        });
        Gate { addr, open, carried }
    }

    /// Closes the gate and cuts every connection through it, mid-query or not.
    fn cut(&self) {
        self.open.store(false, Ordering::SeqCst);
        for connection in self.carried.lock().unwrap().drain(..) {
            connection.abort();
        }
    }

    fn reopen(&self) {
        self.open.store(true, Ordering::SeqCst);
    }

    /// `url` with its host and port replaced by the gate's.
    fn in_front_of(&self, url: &str) -> String {
        url.replacen(&authority(url), &self.addr.to_string(), 1)
    }
}

/// `host:port` of a `postgres://user@host:port/name` URL.
fn authority(url: &str) -> String {
    url.split('@').nth(1).unwrap().split('/').next().unwrap().to_owned()
}

#[tokio::test]
async fn a_replica_started_during_an_outage_waits_unready_and_serves_when_the_database_returns() {
    let database = Arc::new(TestDatabase::new::<caravan_catalog::Migrator>(ServiceKind::Catalog).await.unwrap());
    if !database.is_postgres() {
        return; // a SQLite file is there or not; nothing to wait for
    }
    let url = database.config().url.expose().to_owned();
    let gate = Gate::to(authority(&url), false).await;
    let mut config = replica_config(&database);
    config.database.url = Secret::new(gate.in_front_of(&url));

    let server = TestServer::start_with::<caravan_catalog::Catalog>(config, database.clone())
        .await
        .expect("a replica starts while its database is unreachable");
    assert_eq!(health_status(server.addr(), "").await.unwrap(), ServingStatus::NotServing, "unready");
    assert_eq!(health_status(server.addr(), LIVENESS).await.unwrap(), ServingStatus::Serving, "alive: not restarted");
    let status = CatalogServiceClient::new(server.channel()).get_country(country()).await.unwrap_err();
    assert_eq!(status.code(), Code::Unavailable);

    gate.reopen();
    let up = eventually(Duration::from_secs(15), || async {
        health_status(server.addr(), "").await.unwrap() == ServingStatus::Serving
    })
    .await;
    assert!(up, "SERVING by itself once the database answers");
    CatalogServiceClient::new(server.channel()).get_country(country()).await.unwrap();
}

/// What one buyer heard, in order, and how it ended.
#[derive(Debug, Default)]
struct Heard {
    codes: Vec<Code>,
    paid: bool,
}

/// Calls `call` until its answer is final: retries UNAVAILABLE and ABORTED
/// (REQUEST_IN_PROGRESS) with the same request, as a partner does.
async fn until_final<T, F, Fut>(heard: &mut Heard, mut call: F) -> Result<T, tonic::Status>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, tonic::Status>>,
{
    for _ in 0..200 {
        let answer = tokio::time::timeout(Duration::from_secs(15), call())
            .await
            .unwrap_or_else(|_| Err(tonic::Status::deadline_exceeded("no answer within 15 s")));
        match answer {
            Ok(value) => {
                heard.codes.push(Code::Ok);
                return Ok(value);
            }
            Err(status) => {
                heard.codes.push(status.code());
                if !matches!(status.code(), Code::Unavailable | Code::Aborted) {
                    eprintln!("final: {status:?}");
                    return Err(status);
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no final answer after 200 attempts: {:?}", heard.codes);
}

#[tokio::test]
async fn a_flash_sale_through_connections_cut_mid_query_ends_with_every_order_agreeing_with_inventory() {
    use caravan_proto::{
        orders::v1::{
            ConfirmPaymentRequest, ListOrdersRequest, PlaceOrderLine, PlaceOrderRequest, order::State,
            orders_service_client::OrdersServiceClient,
        },
        scheduling::v1::StartShowRequest,
    };
    use caravan_testkit::{Caller, KeyedChannel};
    use common::festival::{create, festival_adjusted, show, uzbek_products};

    let Ok(server) = std::env::var("CARAVAN_TEST_DATABASE_URL") else { return };
    if server.trim().is_empty() {
        return; // SQLite: no connection to cut
    }
    // Orders' database behind the gate, its pool quick to give up.
    let gate = Arc::new(Gate::to(authority(server.trim()), true).await);
    let through = gate.clone();
    let mut festival = festival_adjusted(move |kind, config| {
        if kind == ServiceKind::Orders {
            config.database.url = Secret::new(through.in_front_of(config.database.url.expose()));
            config.database.acquire_timeout = Duration::from_secs(1);
        }
    })
    .await;
    let product = uzbek_products()[0].clone();
    festival
        .scheduling
        .create_show(create("uz-on-hema", show("olimkhonov", 20.0, 21.0, &[(&product, 12)])))
        .await
        .unwrap();
    festival
        .scheduling
        .start_show(StartShowRequest { name: "shows/uz-on-hema".into(), request_id: String::new() })
        .await
        .unwrap();
    let addr = festival.running.suite.addr(ServiceKind::Orders);
    let hema = OrdersServiceClient::new(KeyedChannel::new(addr, Some(Caller::Hema)));

    // Twenty buyers for twelve units, each placing then paying, while the
    // connections of orders are cut twice under them.
    let buyers = (0..20).map(|i| {
        let client = hema.clone();
        let product = product.clone();
        async move {
            let mut heard = Heard::default();
            let place = PlaceOrderRequest {
                buyer: format!("buyer-{i}"),
                show: "shows/uz-on-hema".into(),
                lines: vec![PlaceOrderLine { product: format!("products/{product}"), quantity: 1 }],
                request_id: format!("drill-order-{i}"),
            };
            let placed = until_final(&mut heard, || {
                let (mut client, place) = (client.clone(), place.clone());
                async move {
                    let mut request = tonic::Request::new(place);
                    request.set_timeout(Duration::from_secs(10));
                    client.place_order(request).await
                }
            })
            .await;
            if let Ok(order) = placed {
                let pay = ConfirmPaymentRequest {
                    name: order.into_inner().name,
                    payment_reference: format!("alipay-drill-{i}"),
                    request_id: format!("drill-pay-{i}"),
                };
                let paid = until_final(&mut heard, || {
                    let (mut client, pay) = (client.clone(), pay.clone());
                    async move {
                        let mut request = tonic::Request::new(pay);
                        request.set_timeout(Duration::from_secs(10));
                        client.confirm_payment(request).await
                    }
                })
                .await;
                heard.paid = paid.is_ok();
            }
            heard
        }
    });
    let cuts = async {
        for pause in [Duration::from_millis(30), Duration::from_millis(250)] {
            tokio::time::sleep(pause).await;
            gate.cut();
            tokio::time::sleep(Duration::from_millis(400)).await;
            gate.reopen();
        }
    };
    let (heard, ()) = tokio::join!(futures::future::join_all(buyers), cuts);

    let codes: Vec<Code> = heard.iter().flat_map(|h| h.codes.iter().copied()).collect();
    let deliberate = [Code::Ok, Code::FailedPrecondition, Code::Unavailable, Code::Aborted];
    assert!(codes.iter().all(|c| deliberate.contains(c)), "every answer final or UNAVAILABLE: {codes:?}");
    let unavailable = codes.iter().filter(|c| **c == Code::Unavailable).count();
    eprintln!("drill: {} answers, {unavailable} UNAVAILABLE", codes.len());
    assert!(unavailable > 0, "the cuts landed while calls were in flight: {codes:?}");
    let paid = heard.iter().filter(|h| h.paid).count();
    assert_eq!(paid, 12, "every unit sold once, none twice: {heard:?}");

    // The books: orders' PAID units are inventory's sold ones, nothing held.
    let orders = hema
        .clone()
        .list_orders(ListOrdersRequest { page_size: 100, ..Default::default() })
        .await
        .unwrap()
        .into_inner()
        .orders;
    let paid_units: i64 =
        orders.iter().filter(|o| o.state() == State::Paid).flat_map(|o| o.lines.iter().map(|l| l.quantity)).sum();
    assert_eq!(paid_units, 12);
    assert!(orders.iter().all(|o| matches!(o.state(), State::Paid)), "no order left pending or awaiting: {orders:?}");
    let db = festival.running.database(ServiceKind::Inventory).connect().await.unwrap();
    let (violations, books) = caravan_inventory::store::audit(&db).await.unwrap();
    assert!(violations.is_empty(), "inventory's books balance: {violations:?}");
    let sold: i64 = books.iter().filter(|((p, _), _)| *p == product).map(|(_, b)| 100 - b.on_hand).sum();
    let held: i64 = books.iter().filter(|((p, _), _)| *p == product).map(|(_, b)| b.reserved).sum();
    assert_eq!((sold, held), (12, 0), "inventory sold what orders were paid for, and holds nothing");
    festival.running.token.cancel();
}
