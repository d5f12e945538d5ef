use std::{collections::HashMap, sync::Arc};

use caravan_inventory::Inventory;
use caravan_platform::{
    config::ServiceKind,
    testing::{Caller, KeyedChannel as Channel, TestDatabase, TestServer, service_config},
    time::{ManualClock, Micros},
};
use caravan_proto::inventory::v1::{
    CreateWarehouseRequest, ReceiveStockRequest, ReservationRequestLine, ReserveStockRequest, Warehouse,
    inventory_service_client::InventoryServiceClient,
};
use sea_orm::{ConnectionTrait, Statement};

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

async fn sums(db: &sea_orm::DatabaseConnection, sql: &str) -> HashMap<(String, String), Vec<i64>> {
    let rows = db.query_all_raw(Statement::from_string(db.get_database_backend(), sql)).await.unwrap();
    rows.iter()
        .map(|r| {
            let key = (r.try_get_by_index::<String>(0).unwrap(), r.try_get_by_index::<String>(1).unwrap());
            let values = (2..r.column_names().len()).map(|i| r.try_get_by_index::<i64>(i).unwrap()).collect();
            (key, values)
        })
        .collect()
}

/// The books balance, per product and warehouse: on-hand, reserved and
/// allocated are each the sum of their ledger movements; reserved is what
/// active reservations hold; allocated is what open show allocations have
/// not yet handed out; nothing is negative or held beyond what is on hand.
pub async fn check_invariants(database: &TestDatabase) {
    let db = database.connect().await.unwrap();
    let stock = sums(&db, "SELECT product_id, warehouse_id, on_hand, reserved, allocated FROM stock").await;
    let ledger = sums(
        &db,
        "SELECT product_id, warehouse_id, CAST(SUM(on_hand_delta) AS BIGINT), CAST(SUM(reserved_delta) AS BIGINT), \
         CAST(SUM(allocated_delta) AS BIGINT) FROM movements GROUP BY product_id, warehouse_id",
    )
    .await;
    let held = sums(
        &db,
        "SELECT l.product_id, l.warehouse_id, CAST(SUM(l.quantity) AS BIGINT) FROM reservation_lines l \
         JOIN reservations r ON r.id = l.reservation_id WHERE r.state = 1 GROUP BY l.product_id, l.warehouse_id",
    )
    .await;
    let earmarked = sums(
        &db,
        "SELECT product_id, warehouse_id, CAST(SUM(quantity - used) AS BIGINT) FROM allocation_lines \
         WHERE closed = 0 GROUP BY product_id, warehouse_id",
    )
    .await;
    for (key, row) in &stock {
        let (on_hand, reserved, allocated) = (row[0], row[1], row[2]);
        assert!(reserved >= 0 && allocated >= 0 && reserved + allocated <= on_hand, "{key:?}: {row:?}");
        let ledger = ledger.get(key).cloned().unwrap_or_else(|| vec![0, 0, 0]);
        assert_eq!(ledger, vec![on_hand, reserved, allocated], "{key:?}: ledger sums differ from the stock row");
        let held = held.get(key).map_or(0, |v| v[0]);
        assert_eq!(held, reserved, "{key:?}: active reservations hold {held}, the row says {reserved}");
        let earmarked = earmarked.get(key).map_or(0, |v| v[0]);
        assert_eq!(earmarked, allocated, "{key:?}: open allocations hold {earmarked}, the row says {allocated}");
    }
    for key in ledger.keys() {
        assert!(stock.contains_key(key), "{key:?}: movements without a stock row");
    }
    db.close().await.unwrap();
}
