//! Shared by the cross-service tests: all four services, each with its own
//! fresh database.

pub mod festival;
pub mod reasons;

use std::{collections::HashMap, sync::Arc};

use caravan::suite::Suite;
use caravan_platform::{CancellationToken, config::ServiceKind};
use caravan_testkit::{TestDatabase, service_config};

/// The four services, running.
pub struct RunningSuite {
    /// Their addresses.
    pub suite: Suite,
    /// Cancel to stop them.
    pub token: CancellationToken,
    databases: HashMap<ServiceKind, Arc<TestDatabase>>,
}

impl RunningSuite {
    /// The database of one service (to start another replica on it).
    #[allow(dead_code)] // Each test binary uses what it needs.
    pub fn database(&self, kind: ServiceKind) -> Arc<TestDatabase> {
        self.databases[&kind].clone()
    }
}

/// Starts all four services on port 0 with the test keys.
#[allow(dead_code)] // Each test binary uses what it needs.
pub async fn start_suite() -> RunningSuite {
    start_suite_at(None).await
}

/// [`start_suite`], every service reading `clock` (tests move it instead of sleeping).
#[allow(dead_code)] // Each test binary uses what it needs.
pub async fn start_suite_with_clock(clock: &caravan_platform::time::ManualClock) -> RunningSuite {
    start_suite_at(Some(clock)).await
}

async fn start_suite_at(clock: Option<&caravan_platform::time::ManualClock>) -> RunningSuite {
    start_suite_adjusted(clock, |_, _| {}).await
}

/// [`start_suite_with_clock`], each service's configuration passed through
/// `adjust` first (a database behind a proxy, a shorter timeout).
#[allow(dead_code)] // Each test binary uses what it needs.
pub async fn start_suite_adjusted(
    clock: Option<&caravan_platform::time::ManualClock>,
    adjust: impl Fn(ServiceKind, &mut caravan_platform::config::ServiceConfig),
) -> RunningSuite {
    caravan_platform::telemetry::init_for_tests();
    let mut databases = HashMap::new();
    databases.insert(ServiceKind::Catalog, database::<caravan_catalog::Migrator>(ServiceKind::Catalog).await);
    databases.insert(ServiceKind::Scheduling, database::<caravan_scheduling::Migrator>(ServiceKind::Scheduling).await);
    databases.insert(ServiceKind::Inventory, database::<caravan_inventory::Migrator>(ServiceKind::Inventory).await);
    databases.insert(ServiceKind::Orders, database::<caravan_orders::Migrator>(ServiceKind::Orders).await);
    let token = CancellationToken::new();
    let config_for = |kind| {
        let mut config = service_config(kind, databases[&kind].config(), &[]);
        if let Some(clock) = clock {
            config.clock = std::sync::Arc::new(clock.clone());
        }
        adjust(kind, &mut config);
        config
    };
    let suite = Suite::start(config_for, &Default::default(), None, token.clone()).await.expect("the suite starts");
    RunningSuite { suite, token, databases: databases.into_iter().map(|(k, d)| (k, Arc::new(d))).collect() }
}

async fn database<M: sea_orm_migration::MigratorTrait>(kind: ServiceKind) -> TestDatabase {
    TestDatabase::new::<M>(kind).await.expect("a test database")
}
