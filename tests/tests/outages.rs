//! Database outages: a replica that starts while its database is away waits
//! unready instead of crashing, and calls during a known outage are answered
//! UNAVAILABLE at once. PostgreSQL only (a SQLite file cannot go away from
//! the process holding it); on SQLite each test checks what applies and ends.

#![allow(clippy::unwrap_used)] // Test helpers fail loudly; that is their job.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use caravan_platform::{
    config::{MigrateMode, Secret, ServiceKind},
    server::LIVENESS,
    testing::{TestDatabase, TestServer, eventually, health_status, service_config},
};
use caravan_proto::catalog::v1::{GetCountryRequest, catalog_service_client::CatalogServiceClient};
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

/// A TCP proxy to the database that drops every connection until opened.
struct Gate {
    addr: std::net::SocketAddr,
    open: Arc<AtomicBool>,
}

impl Gate {
    async fn to(upstream: String) -> Gate {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let open = Arc::new(AtomicBool::new(false));
        let gate = open.clone();
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                if !gate.load(Ordering::SeqCst) {
                    drop(inbound);
                    continue;
                }
                let upstream = upstream.clone();
                tokio::spawn(async move {
                    if let Ok(mut outbound) = TcpStream::connect(upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
            }
        });
        Gate { addr, open }
    }
}

#[tokio::test]
async fn a_replica_started_during_an_outage_waits_unready_and_serves_when_the_database_returns() {
    let database = Arc::new(TestDatabase::new::<caravan_catalog::Migrator>(ServiceKind::Catalog).await.unwrap());
    if !database.is_postgres() {
        return; // a SQLite file is there or not; nothing to wait for
    }
    // postgres://user@host:port/name → the same through the gate.
    let url = database.config().url.expose().to_owned();
    let authority = url.split('@').nth(1).unwrap().split('/').next().unwrap().to_owned();
    let gate = Gate::to(authority.clone()).await;
    let mut config = replica_config(&database);
    config.database.url = Secret::new(url.replacen(&authority, &gate.addr.to_string(), 1));

    let server = TestServer::start_with::<caravan_catalog::Catalog>(config, database.clone())
        .await
        .expect("a replica starts while its database is unreachable");
    assert_eq!(health_status(server.addr(), "").await.unwrap(), ServingStatus::NotServing, "unready");
    assert_eq!(health_status(server.addr(), LIVENESS).await.unwrap(), ServingStatus::Serving, "alive: not restarted");
    let status = CatalogServiceClient::new(server.channel()).get_country(country()).await.unwrap_err();
    assert_eq!(status.code(), Code::Unavailable);

    gate.open.store(true, Ordering::SeqCst);
    let up = eventually(Duration::from_secs(15), || async {
        health_status(server.addr(), "").await.unwrap() == ServingStatus::Serving
    })
    .await;
    assert!(up, "SERVING by itself once the database answers");
    CatalogServiceClient::new(server.channel()).get_country(country()).await.unwrap();
}
