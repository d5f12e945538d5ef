use std::{collections::HashMap, sync::Arc};

use caravan_inventory::Inventory;
use caravan_platform::{
    config::ServiceKind,
    time::{ManualClock, Micros},
};
use caravan_proto::inventory::v1::{
    CreateWarehouseRequest, ReceiveStockRequest, ReservationRequestLine, ReserveStockRequest, Warehouse,
    inventory_service_client::InventoryServiceClient,
};
use caravan_testkit::{Caller, KeyedChannel as Channel, TestDatabase, TestServer, service_config};

pub type Client = InventoryServiceClient<Channel>;

pub struct TestApp {
    pub server: TestServer,
    /// Calls as an operator.
    pub client: Client,
    /// Calls as the orders service (reservations).
    pub orders: Client,
    /// Calls as the scheduling service (allocations).
    pub scheduling: Client,
    /// The service's clock.
    pub clock: ManualClock,
}

impl TestApp {
    /// Another replica of the service on the same database and clock.
    pub async fn replica(&self) -> TestApp {
        let mut config = service_config(ServiceKind::Inventory, self.server.database().config(), &[]);
        config.clock = Arc::new(self.clock.clone());
        let server = TestServer::start_with::<Inventory>(config, self.server.shared_database()).await.unwrap();
        TestApp::around(server, self.clock.clone())
    }

    fn around(server: TestServer, clock: ManualClock) -> TestApp {
        TestApp {
            client: InventoryServiceClient::new(server.channel()),
            orders: InventoryServiceClient::new(server.channel_as(Caller::Service(ServiceKind::Orders))),
            scheduling: InventoryServiceClient::new(server.channel_as(Caller::Service(ServiceKind::Scheduling))),
            server,
            clock,
        }
    }

    /// Creates a warehouse.
    pub async fn warehouse(&mut self, id: &str, priority: i32) {
        let warehouse =
            Warehouse { display_name: id.into(), location: "Shanghai".into(), priority, ..Default::default() };
        self.client
            .create_warehouse(CreateWarehouseRequest {
                warehouse: Some(warehouse),
                warehouse_id: id.into(),
                request_id: String::new(),
            })
            .await
            .unwrap();
    }

    /// Receives `quantity` units of `product` into `warehouse`.
    pub async fn receive(&mut self, product: &str, warehouse: &str, quantity: i64) {
        self.client
            .receive_stock(ReceiveStockRequest {
                product: format!("products/{product}"),
                warehouse: format!("warehouses/{warehouse}"),
                quantity,
                request_id: uuid::Uuid::new_v4().to_string(),
                reference: String::new(),
            })
            .await
            .unwrap();
    }

    /// A client as the orders service sharing its connection (for
    /// concurrent tasks: calls multiplex over HTTP/2, as a service's would).
    pub fn orders_client(&self) -> Client {
        self.orders.clone()
    }

    /// Checks the books (see [`check_invariants`]).
    pub async fn check_invariants(&self) {
        check_invariants(self.server.database()).await;
    }
}

/// Inventory on a fresh database, its clock stopped at a fixed instant.
pub async fn spawn_app() -> TestApp {
    caravan_platform::telemetry::init_for_tests();
    let database = TestDatabase::new::<caravan_inventory::Migrator>(ServiceKind::Inventory).await.unwrap();
    let clock = ManualClock::new(Micros(1_767_225_600_000_000)); // 2026-01-01T00:00:00Z
    let mut config = service_config(ServiceKind::Inventory, database.config(), &[]);
    config.clock = Arc::new(clock.clone());
    let server = TestServer::start_with::<Inventory>(config, database).await.expect("inventory starts");
    TestApp::around(server, clock)
}

/// A ReserveStock of `(product, quantity)` lines from the general pool.
pub fn reserve(id: &str, lines: &[(&str, i64)]) -> ReserveStockRequest {
    ReserveStockRequest {
        reservation_id: id.into(),
        show: String::new(),
        lines: lines
            .iter()
            .map(|(product, quantity)| ReservationRequestLine {
                product: format!("products/{product}"),
                quantity: *quantity,
            })
            .collect(),
        ttl_seconds: 0,
        request_id: String::new(),
    }
}

/// The `ErrorInfo` reason and metadata of an error.
pub fn reason(status: &tonic::Status) -> (String, HashMap<String, String>) {
    use tonic_types::StatusExt as _;
    match status.get_error_details().error_info() {
        Some(info) => (info.reason.clone(), info.metadata.clone()),
        None => (String::new(), HashMap::new()),
    }
}

/// The books balance (see [`caravan_inventory::store::audit`]).
pub async fn check_invariants(database: &TestDatabase) {
    let db = database.connect().await.unwrap();
    let (violations, _) = caravan_inventory::store::audit(&db).await.unwrap();
    assert!(violations.is_empty(), "inventory's books do not balance:\n{}", violations.join("\n"));
    db.close().await.unwrap();
}
