//! Releases and rollbacks across schema versions (expand, then contract),
//! concurrent migration jobs, and a runtime role without DDL rights — with
//! the catalog as the service, and test-only migrations standing in for a
//! later release's.

#![allow(clippy::unwrap_used)] // Test helpers fail loudly; that is their job.
#![allow(elided_lifetimes_in_paths)] // MigrationTrait is an async_trait whose `SchemaManager` lifetime must stay elided.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    time::Duration,
};

use caravan_platform::{
    app::{Service, ServiceHost},
    config::{MigrateMode, ServiceKind},
    schema,
};
use caravan_proto::catalog::v1::{
    GetCountryRequest, ListProductsRequest, catalog_service_client::CatalogServiceClient,
};
use caravan_testkit::{TestDatabase, TestServer, eventually, health_status, service_config};
use futures::future::join_all;
use sea_orm_migration::{
    MigrationName, MigrationTrait, MigratorTrait, SchemaManager, async_trait,
    prelude::{Alias, ColumnDef, DynIden, Table},
    sea_orm::{ConnectionTrait as _, DbErr},
};
use tonic::service::Routes;
use tonic_health::pb::health_check_response::ServingStatus;

/// A later release's expanding migration: a nullable column and a table
/// the previous binary knows nothing of.
struct Expand;

impl MigrationName for Expand {
    fn name(&self) -> &str {
        "m20991231_000001_test_expand"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Expand {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Alias::new("products"))
                    .add_column(ColumnDef::new(Alias::new("test_note")).string().null())
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Alias::new("test_release_notes"))
                    .col(ColumnDef::new(Alias::new("id")).integer().not_null().primary_key())
                    .to_owned(),
            )
            .await
    }
}

/// A release after that one contracts the schema: binaries older than it
/// can no longer run.
struct Contract;

impl MigrationName for Contract {
    fn name(&self) -> &str {
        "m20991231_000002_test_contract"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Contract {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(Alias::new("test_release_notes")).to_owned()).await?;
        schema::require_binaries_from(manager, self.name()).await
    }
}

/// The catalog's migrations, and `extra` after them.
fn catalog_plus(extra: Vec<Box<dyn MigrationTrait>>) -> Vec<Box<dyn MigrationTrait>> {
    let mut migrations = caravan_catalog::Migrator::migrations();
    migrations.extend(extra);
    migrations
}

/// The next release's migrations: this one's plus an expansion.
struct NextMigrator;

impl MigratorTrait for NextMigrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        catalog_plus(vec![Box::new(Expand)])
    }

    fn migration_table_name() -> DynIden {
        caravan_catalog::Migrator::migration_table_name()
    }
}

/// The release after: an expansion and a contraction.
struct ContractedMigrator;

impl MigratorTrait for ContractedMigrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        catalog_plus(vec![Box::new(Expand), Box::new(Contract)])
    }

    fn migration_table_name() -> DynIden {
        caravan_catalog::Migrator::migration_table_name()
    }
}

/// No migration yet: a database no migration job has touched.
struct Nothing;

impl MigratorTrait for Nothing {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        Vec::new()
    }

    fn migration_table_name() -> DynIden {
        caravan_catalog::Migrator::migration_table_name()
    }
}

/// The catalog's code with the next release's schema: the new binary.
struct NextCatalog;

impl Service for NextCatalog {
    const KIND: ServiceKind = ServiceKind::Catalog;
    const NAME: &'static str = caravan_catalog::Catalog::NAME;
    type Migrator = NextMigrator;
    type Settings = caravan_platform::config::NoSettings;

    fn routes(host: &ServiceHost<NextMigrator>, _: &Self::Settings) -> anyhow::Result<Routes> {
        Ok(caravan_catalog::routes_on(host))
    }
}

/// A replica as production runs it: it never migrates, it checks.
async fn replica<S: Service>(database: Arc<TestDatabase>) -> TestServer {
    let mut config = service_config(ServiceKind::Catalog, database.config(), &[]);
    config.migrate = MigrateMode::Verify;
    TestServer::start_with::<S>(config, database).await.unwrap()
}

async fn serving(server: &TestServer) -> ServingStatus {
    health_status(server.addr(), "").await.unwrap()
}

/// Calls `servers` in a loop until stopped; counts the calls that failed.
struct Traffic {
    stop: Arc<AtomicBool>,
    calls: Arc<AtomicUsize>,
    failed: Arc<AtomicUsize>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Traffic {
    fn start(servers: &[&TestServer]) -> Traffic {
        let (stop, calls, failed) = (Arc::default(), Arc::default(), Arc::default());
        let tasks = servers
            .iter()
            .map(|server| {
                let mut client = CatalogServiceClient::new(server.channel());
                let (stop, calls, failed): (Arc<AtomicBool>, Arc<AtomicUsize>, Arc<AtomicUsize>) =
                    (Arc::clone(&stop), Arc::clone(&calls), Arc::clone(&failed));
                tokio::spawn(async move {
                    while !stop.load(Ordering::SeqCst) {
                        let country =
                            client.get_country(GetCountryRequest { name: "countries/UZ".into(), as_of: None });
                        let products = ListProductsRequest { page_size: 5, ..Default::default() };
                        let ok = country.await.is_ok() && client.list_products(products).await.is_ok();
                        calls.fetch_add(1, Ordering::SeqCst);
                        if !ok {
                            failed.fetch_add(1, Ordering::SeqCst);
                        }
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                })
            })
            .collect();
        Traffic { stop, calls, failed, tasks }
    }

    async fn stop(self) -> (usize, usize) {
        self.stop.store(true, Ordering::SeqCst);
        join_all(self.tasks).await;
        (self.calls.load(Ordering::SeqCst), self.failed.load(Ordering::SeqCst))
    }
}

/// Two health periods (the test config's is 200 ms) and a margin.
const SETTLE: Duration = Duration::from_millis(800);

#[tokio::test]
async fn the_old_and_the_new_binary_serve_side_by_side_across_an_expanding_migration() {
    let database = Arc::new(TestDatabase::new::<caravan_catalog::Migrator>(ServiceKind::Catalog).await.unwrap());
    let old = replica::<caravan_catalog::Catalog>(database.clone()).await;
    assert_eq!(serving(&old).await, ServingStatus::Serving);
    let traffic = Traffic::start(&[&old]);

    // The release's migration job: the next release's expansion.
    let db = database.connect().await.unwrap();
    let migrated = schema::migrate::<NextMigrator>(&db).await.unwrap();
    assert_eq!((migrated.applied, migrated.newer), (1, 0));
    tokio::time::sleep(SETTLE).await;
    assert_eq!(serving(&old).await, ServingStatus::Serving, "the old replica keeps serving the expanded schema");
    let check = schema::check::<caravan_catalog::Migrator>(&db).await.unwrap();
    assert_eq!((check.newer, check.verdict()), (1, Ok(())), "one migration the old binary does not know");

    // The rolling update: a new replica beside the old one.
    let new = replica::<NextCatalog>(database.clone()).await;
    assert_eq!(serving(&new).await, ServingStatus::Serving);
    let both = Traffic::start(&[&old, &new]);
    tokio::time::sleep(SETTLE).await;
    assert_eq!((serving(&old).await, serving(&new).await), (ServingStatus::Serving, ServingStatus::Serving));
    let (calls, failed) = traffic.stop().await;
    let (both_calls, both_failed) = both.stop().await;
    assert!(calls > 10 && both_calls > 10, "traffic ran: {calls}, {both_calls}");
    assert_eq!(failed + both_failed, 0, "no call failed across the migration");
}

#[tokio::test]
async fn a_rollback_is_a_redeploy_until_a_contracting_migration_and_then_the_old_binary_says_why() {
    let database = Arc::new(TestDatabase::new::<caravan_catalog::Migrator>(ServiceKind::Catalog).await.unwrap());
    let db = database.connect().await.unwrap();
    schema::migrate::<NextMigrator>(&db).await.unwrap();

    // Roll back: the previous image's migration job finds nothing to do, and
    // its replicas start and serve on the expanded schema.
    let rerun = schema::migrate::<caravan_catalog::Migrator>(&db).await.unwrap();
    assert_eq!((rerun.applied, rerun.newer), (0, 1));
    let rolled_back = replica::<caravan_catalog::Catalog>(database.clone()).await;
    assert_eq!(serving(&rolled_back).await, ServingStatus::Serving);
    let mut client = CatalogServiceClient::new(rolled_back.channel());
    client.get_country(GetCountryRequest { name: "countries/UZ".into(), as_of: None }).await.unwrap();

    // A later release contracts the schema: binaries before it cannot run,
    // and say which binary the schema needs.
    schema::migrate::<ContractedMigrator>(&db).await.unwrap();
    let gone =
        eventually(Duration::from_secs(5), || async { serving(&rolled_back).await == ServingStatus::NotServing }).await;
    assert!(gone, "the old replica leaves the Service once the schema is too new for it");
    let check = schema::check::<caravan_catalog::Migrator>(&db).await.unwrap();
    let why = check.verdict().unwrap_err();
    assert!(why.contains("too new") && why.contains("m20991231_000002_test_contract"), "{why}");
    let refused = schema::migrate::<caravan_catalog::Migrator>(&db).await.unwrap_err().to_string();
    assert!(refused.contains("m20991231_000002_test_contract"), "the old migration job refuses too: {refused}");
    assert_eq!(schema::check::<ContractedMigrator>(&db).await.unwrap().verdict(), Ok(()));

    // A binary whose migrations are not applied yet: too old, and it says so.
    let fresh = TestDatabase::new::<Nothing>(ServiceKind::Catalog).await.unwrap();
    let fresh_db = fresh.connect().await.unwrap();
    let why = schema::check::<caravan_catalog::Migrator>(&fresh_db).await.unwrap().verdict().unwrap_err();
    assert!(why.contains("too old") && why.contains("not applied"), "{why}");
}

#[tokio::test]
async fn concurrent_migration_jobs_wait_for_each_other_and_apply_each_migration_once() {
    let database = TestDatabase::new::<Nothing>(ServiceKind::Catalog).await.unwrap();
    let mut pools = Vec::new();
    for _ in 0..3 {
        pools.push(database.connect().await.unwrap());
    }
    let runs = join_all(pools.iter().map(schema::migrate::<caravan_catalog::Migrator>)).await;
    let applied: Vec<usize> = runs.into_iter().map(|run| run.unwrap().applied).collect();
    let known = caravan_catalog::Migrator::migrations().len();
    let mut sorted = applied.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, [0, 0, known], "one job applied everything, the others found nothing to do: {applied:?}");
    let check = schema::check::<caravan_catalog::Migrator>(&pools[0]).await.unwrap();
    assert_eq!((check.pending, check.newer, check.verdict()), (0, 0, Ok(())));
}

#[tokio::test]
async fn a_service_runs_under_a_role_that_may_only_read_and_write_rows() {
    let database = Arc::new(TestDatabase::new::<caravan_catalog::Migrator>(ServiceKind::Catalog).await.unwrap());
    if !database.is_postgres() {
        // SQLite has no roles: the file's owner may do anything.
        return;
    }
    let admin = database.connect().await.unwrap();
    let role = format!("caravan_dml_{}", uuid_suffix());
    let name = database.config().url.expose().rsplit('/').next().unwrap().split('?').next().unwrap().to_owned();
    for statement in [
        format!("CREATE ROLE {role} LOGIN"),
        format!("GRANT CONNECT ON DATABASE \"{name}\" TO {role}"),
        format!("GRANT USAGE ON SCHEMA public TO {role}"),
        format!("GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {role}"),
        format!("GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {role}"),
    ] {
        admin.execute_unprepared(&statement).await.unwrap();
    }
    let mut config = service_config(ServiceKind::Catalog, database.config(), &[]);
    let url = config.database.url.expose().replacen("postgres@", &format!("{role}@"), 1);
    assert_ne!(&url, config.database.url.expose(), "the test URL names its user");
    config.database.url = caravan_platform::config::Secret::new(url);
    config.migrate = MigrateMode::Verify;
    let server = TestServer::start_with::<caravan_catalog::Catalog>(config, database.clone()).await.unwrap();
    assert_eq!(serving(&server).await, ServingStatus::Serving, "its checks only read");
    tokio::time::sleep(SETTLE).await;
    assert_eq!(serving(&server).await, ServingStatus::Serving, "and keep only reading");
    let mut client = CatalogServiceClient::new(server.channel());
    client.get_country(GetCountryRequest { name: "countries/UZ".into(), as_of: None }).await.unwrap();
    let ddl = format!("SET ROLE {role}; CREATE TABLE test_denied (id INTEGER)");
    assert!(admin.execute_unprepared(&ddl).await.is_err(), "the role really may not create tables");
    drop(server);
    // Roles belong to the whole server: leave none behind.
    admin.execute_unprepared(&format!("DROP OWNED BY {role}")).await.unwrap();
    admin.execute_unprepared(&format!("DROP ROLE {role}")).await.unwrap();
}

fn uuid_suffix() -> String {
    format!("{:x}", std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos())
}
