//! The platform's server against a real database: health reflects the schema
//! and shutdown, reflection lists what grpcurl needs.

#![allow(clippy::unwrap_used)] // Test helpers fail loudly; that is their job.
#![allow(elided_lifetimes_in_paths)] // MigrationTrait is an async_trait.

use std::time::Duration;

use caravan_platform::{
    app::{self, Application, ServiceHost},
    config::{MigrateMode, ServiceKind},
};
use caravan_testkit::{TestDatabase, eventually, health_status, service_config};
use sea_orm_migration::{prelude::*, schema::*};
use tokio_util::sync::CancellationToken;
use tonic::service::Routes;
use tonic_health::pb::health_check_response::ServingStatus;

const NAME: &str = "caravan.test.v1.ProbeService";

/// A service with one table and no RPCs of its own.
#[derive(Debug)]
struct Probe;

impl app::Service for Probe {
    const KIND: ServiceKind = ServiceKind::Inventory;
    const NAME: &'static str = NAME;
    type Migrator = ProbeMigrator;
    type Settings = caravan_platform::config::NoSettings;

    fn routes(_: &ServiceHost<ProbeMigrator>, _: &Self::Settings) -> anyhow::Result<Routes> {
        Ok(Routes::default())
    }
}

#[derive(Debug)]
struct ProbeMigrator;

#[async_trait::async_trait]
impl MigratorTrait for ProbeMigrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![Box::new(CreateProbes)]
    }

    fn migration_table_name() -> DynIden {
        "probe_migrations".into_iden()
    }
}

#[derive(DeriveMigrationName)]
struct CreateProbes;

#[async_trait::async_trait]
impl MigrationTrait for CreateProbes {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.create_table(Table::create().table("probes").col(pk_auto("id")).to_owned()).await
    }
}

/// A migrator with no migrations: gives a database whose schema is behind
/// `ProbeMigrator`'s.
struct Empty;

#[async_trait::async_trait]
impl MigratorTrait for Empty {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        Vec::new()
    }

    fn migration_table_name() -> DynIden {
        "probe_migrations".into_iden()
    }
}

/// Builds the probe service and runs it until the token is cancelled.
async fn start(
    config: caravan_platform::config::ServiceConfig,
) -> (std::net::SocketAddr, CancellationToken, tokio::task::JoinHandle<anyhow::Result<()>>) {
    let app = Application::<Probe>::build(config).await.expect("a schema behind is not a start failure");
    let addr = app.local_addr();
    let token = CancellationToken::new();
    let running = tokio::spawn(app.run_until_stopped(token.clone()));
    (addr, token, running)
}

async fn status(addr: std::net::SocketAddr, service: &str) -> ServingStatus {
    health_status(addr, service).await.expect("health answers")
}

#[tokio::test]
async fn verify_mode_stays_not_serving_until_the_schema_is_migrated() {
    let database = TestDatabase::new::<Empty>(ServiceKind::Inventory).await.unwrap();
    let mut config = service_config(ServiceKind::Inventory, database.config(), &[]);
    config.migrate = MigrateMode::Verify;
    let (addr, token, running) = start(config.clone()).await;

    assert_eq!(status(addr, "").await, ServingStatus::NotServing);
    assert_eq!(status(addr, NAME).await, ServingStatus::NotServing);

    // What the Kubernetes migration Job does; the replica notices by itself.
    assert_eq!(app::migrate::<ProbeMigrator>(&config).await.unwrap(), 1);
    assert!(
        eventually(Duration::from_secs(10), || async { status(addr, "").await == ServingStatus::Serving }).await,
        "health turns SERVING once the schema is current"
    );
    assert_eq!(status(addr, NAME).await, ServingStatus::Serving);

    token.cancel();
    running.await.unwrap().unwrap();
}

#[tokio::test]
async fn apply_mode_migrates_at_start() {
    let database = TestDatabase::new::<Empty>(ServiceKind::Inventory).await.unwrap();
    let config = service_config(ServiceKind::Inventory, database.config(), &[]);
    let (addr, token, running) = start(config.clone()).await;
    assert_eq!(status(addr, "").await, ServingStatus::Serving);
    assert_eq!(app::migrate::<ProbeMigrator>(&config).await.unwrap(), 0, "nothing left to apply");
    token.cancel();
    running.await.unwrap().unwrap();
}

#[tokio::test]
async fn shutdown_stops_accepting_and_returns() {
    let database = TestDatabase::new::<ProbeMigrator>(ServiceKind::Inventory).await.unwrap();
    let config = service_config(ServiceKind::Inventory, database.config(), &[]);
    let (addr, token, running) = start(config).await;
    assert_eq!(status(addr, "").await, ServingStatus::Serving);

    token.cancel();
    tokio::time::timeout(Duration::from_secs(5), running)
        .await
        .expect("drained within the grace period")
        .unwrap()
        .unwrap();
    assert!(health_status(addr, "").await.is_err(), "no longer accepting connections");
}

#[tokio::test]
async fn a_service_refuses_another_services_configuration() {
    let database = TestDatabase::new::<ProbeMigrator>(ServiceKind::Orders).await.unwrap();
    let config = service_config(ServiceKind::Orders, database.config(), &[]);
    let err = Application::<Probe>::build(config).await.unwrap_err();
    assert!(err.to_string().contains("configuration of orders given to inventory"), "{err}");
}

#[tokio::test]
async fn reflection_v1alpha_lists_the_service_health_and_reflection() {
    use tonic_reflection::pb::v1alpha::{
        ServerReflectionRequest, server_reflection_client::ServerReflectionClient,
        server_reflection_request::MessageRequest, server_reflection_response::MessageResponse,
    };

    let database = TestDatabase::new::<ProbeMigrator>(ServiceKind::Inventory).await.unwrap();
    let config = service_config(ServiceKind::Inventory, database.config(), &[]);
    let (addr, token, running) = start(config).await;

    // grpcurl 1.8 speaks only v1alpha.
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}")).unwrap().connect().await.unwrap();
    let mut client = ServerReflectionClient::new(channel);
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut responses = client.server_reflection_info(tokio_stream::iter([request])).await.unwrap().into_inner();
    let response = responses.message().await.unwrap().expect("one response");
    let Some(MessageResponse::ListServicesResponse(list)) = response.message_response else {
        panic!("unexpected reflection answer: {response:?}");
    };
    let mut names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    names.sort();
    assert_eq!(
        names,
        [
            NAME,
            "grpc.health.v1.Health",
            "grpc.reflection.v1.ServerReflection",
            "grpc.reflection.v1alpha.ServerReflection"
        ]
    );
    drop(responses);
    drop(client);
    token.cancel();
    running.await.unwrap().unwrap();
}

#[tokio::test]
async fn health_follows_the_database_going_away_and_coming_back() {
    let database = TestDatabase::new::<ProbeMigrator>(ServiceKind::Inventory).await.unwrap();
    let config = service_config(ServiceKind::Inventory, database.config(), &[]);
    let (addr, token, running) = start(config).await;
    assert_eq!(status(addr, "").await, ServingStatus::Serving);

    if !database.set_reachable(false).await.unwrap() {
        // SQLite: the service holds its file open; there is nothing to take away.
        token.cancel();
        running.await.unwrap().unwrap();
        return;
    }
    let down =
        eventually(Duration::from_secs(15), || async { status(addr, "").await == ServingStatus::NotServing }).await;
    assert!(down, "NOT_SERVING while the database refuses connections");
    assert_eq!(status(addr, NAME).await, ServingStatus::NotServing);
    assert_eq!(
        status(addr, caravan_platform::server::LIVENESS).await,
        ServingStatus::Serving,
        "alive all the same: a liveness probe must not restart replicas for a database outage"
    );

    database.set_reachable(true).await.unwrap();
    let up = eventually(Duration::from_secs(15), || async { status(addr, "").await == ServingStatus::Serving }).await;
    assert!(up, "SERVING again once the database is back");

    token.cancel();
    running.await.unwrap().unwrap();
}

/// The probe service, whose request pool a background task keeps busy: every
/// connection inside an open transaction for `BUSY`, as a burst of requests
/// would.
#[derive(Debug)]
struct Busy;

const BUSY: Duration = Duration::from_secs(3);

impl app::Service for Busy {
    const KIND: ServiceKind = ServiceKind::Inventory;
    const NAME: &'static str = NAME;
    type Migrator = ProbeMigrator;
    type Settings = caravan_platform::config::NoSettings;

    fn routes(host: &ServiceHost<ProbeMigrator>, _: &Self::Settings) -> anyhow::Result<Routes> {
        use sea_orm::TransactionTrait as _;
        let db = host.db().clone();
        let connections = if host.config().database.is_postgres() { host.config().database.max_connections } else { 1 };
        tokio::spawn(async move {
            let mut held = Vec::new();
            for _ in 0..connections {
                held.push(db.begin().await.unwrap());
            }
            tokio::time::sleep(BUSY).await;
            drop(held);
        });
        Ok(Routes::default())
    }
}

#[tokio::test]
async fn health_stays_serving_while_requests_hold_every_pooled_connection() {
    let database = TestDatabase::new::<ProbeMigrator>(ServiceKind::Inventory).await.unwrap();
    let config = service_config(ServiceKind::Inventory, database.config(), &[]);
    let app = Application::<Busy>::build(config).await.unwrap();
    let addr = app.local_addr();
    let token = CancellationToken::new();
    let running = tokio::spawn(app.run_until_stopped(token.clone()));
    // Health re-checks every 200 ms, each check bounded by 1 s: a check
    // that waited in the request pool would have failed by now.
    let until = tokio::time::Instant::now() + BUSY - Duration::from_millis(500);
    let mut checks = 0;
    while tokio::time::Instant::now() < until {
        assert_eq!(status(addr, "").await, ServingStatus::Serving, "after {checks} checks");
        checks += 1;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(checks >= 10);
    token.cancel();
    running.await.unwrap().unwrap();
}
