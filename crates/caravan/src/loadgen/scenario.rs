//! Scenarios: what one unit of load is. Each service issue adds its own here
//! (a struct, its `call`, its `check`) and a line in [`by_name`].

use std::{
    future::Future,
    sync::atomic::{AtomicU64, Ordering},
};

use caravan_platform::db::Db;
use caravan_proto::{
    catalog::v1::{GetProductRequest, ListProductsRequest, catalog_service_client::CatalogServiceClient},
    inventory::v1::{self as inventory, inventory_service_client::InventoryServiceClient},
    loadgen::v1::{EchoRequest, echo_service_client::EchoServiceClient},
    orders::v1::{
        GetShowSalesReportRequest, PlaceOrderLine, PlaceOrderRequest, order, orders_service_client::OrdersServiceClient,
    },
};
use sea_orm::{ConnectionTrait, Statement};
use tonic::Status;

use crate::channel::Authed;

/// One unit of load and the check of the run.
pub trait Scenario: Send + Sync + 'static {
    /// Short name, as on the command line.
    fn name(&self) -> &str;

    /// One call (or short sequence of calls); `worker` picks the channel.
    fn call(&self, worker: usize, seq: u64) -> impl Future<Output = Result<(), Status>> + Send;

    /// A correctness line for the report (e.g. oversell count), checked
    /// after the run.
    fn check(&self) -> impl Future<Output = anyhow::Result<Option<String>>> + Send {
        async { Ok(None) }
    }
}

/// The echo baseline: one unary call that does nothing.
#[derive(Debug)]
pub struct Echo {
    clients: Vec<EchoServiceClient<Authed>>,
}

impl Echo {
    /// Echo calls spread over `channels`.
    pub fn new(channels: Vec<Authed>) -> Self {
        Echo { clients: channels.into_iter().map(EchoServiceClient::new).collect() }
    }
}

impl Scenario for Echo {
    fn name(&self) -> &str {
        "echo"
    }

    async fn call(&self, worker: usize, _seq: u64) -> Result<(), Status> {
        let mut client = self.clients[worker % self.clients.len()].clone();
        let payload = b"caravan".to_vec();
        let response = client.echo(EchoRequest { payload: payload.clone() }).await?.into_inner();
        if response.payload != payload {
            return Err(Status::data_loss("echo answered other bytes"));
        }
        Ok(())
    }
}

/// `read`: GetProduct on the catalog's products, the partner's browsing load
/// during a show (the hottest partner traffic).
#[derive(Debug)]
pub struct Read {
    clients: Vec<CatalogServiceClient<Authed>>,
    names: Vec<String>,
}

impl Read {
    /// Reads spread over `channels`, cycling through the first 500 products.
    pub async fn prepare(channels: Vec<Authed>) -> anyhow::Result<Self> {
        let mut clients: Vec<_> = channels.into_iter().map(CatalogServiceClient::new).collect();
        let page = clients[0]
            .list_products(ListProductsRequest { page_size: 500, ..Default::default() })
            .await
            .map_err(|s| anyhow::anyhow!("listing products to read: {}", s.message()))?
            .into_inner();
        let names: Vec<String> = page.products.into_iter().map(|p| p.name).collect();
        anyhow::ensure!(!names.is_empty(), "the catalog has no products: import the dataset first");
        Ok(Read { clients, names })
    }
}

impl Scenario for Read {
    fn name(&self) -> &str {
        "read"
    }

    async fn call(&self, worker: usize, seq: u64) -> Result<(), Status> {
        let mut client = self.clients[worker % self.clients.len()].clone();
        let name = &self.names[(seq % self.names.len() as u64) as usize];
        let product = client.get_product(GetProductRequest { name: name.clone() }).await?;
        if &product.into_inner().name != name {
            return Err(Status::data_loss("catalog answered another product"));
        }
        Ok(())
    }
}

/// `list`: the first page of ListProducts, optionally filtered by country
/// (keyset pages cost the same at any catalog size).
#[derive(Debug)]
pub struct List {
    clients: Vec<CatalogServiceClient<Authed>>,
    country: String,
}

impl List {
    /// Pages of 50, filtered by `country` (`countries/XX`) when not empty.
    pub fn new(channels: Vec<Authed>, country: String) -> Self {
        List { clients: channels.into_iter().map(CatalogServiceClient::new).collect(), country }
    }
}

impl Scenario for List {
    fn name(&self) -> &str {
        "list"
    }

    async fn call(&self, worker: usize, _seq: u64) -> Result<(), Status> {
        let mut client = self.clients[worker % self.clients.len()].clone();
        let request = ListProductsRequest { page_size: 50, country: self.country.clone(), ..Default::default() };
        let page = client.list_products(request).await?.into_inner();
        if page.products.is_empty() {
            return Err(Status::data_loss("an empty page"));
        }
        Ok(())
    }
}

/// The database baseline: the raw single-row conditional decrement, one
/// statement per transaction — the ceiling of a hot product done naively.
#[derive(Debug)]
pub struct DbDecrement {
    db: Db,
    start: i64,
}

const DB_TABLE: &str = "caravan_loadgen_baseline";

impl DbDecrement {
    /// Creates the baseline's one-row table with `start` units.
    pub async fn prepare(db: Db, start: i64) -> anyhow::Result<Self> {
        let backend = db.get_database_backend();
        db.execute_unprepared(&format!("DROP TABLE IF EXISTS {DB_TABLE}")).await?;
        db.execute_unprepared(&format!("CREATE TABLE {DB_TABLE} (id INTEGER PRIMARY KEY, available BIGINT NOT NULL)"))
            .await?;
        db.execute_raw(Statement::from_string(
            backend,
            format!("INSERT INTO {DB_TABLE} (id, available) VALUES (1, {start})"),
        ))
        .await?;
        Ok(DbDecrement { db, start })
    }

    /// Drops the table.
    pub async fn cleanup(&self) -> anyhow::Result<()> {
        self.db.execute_unprepared(&format!("DROP TABLE IF EXISTS {DB_TABLE}")).await?;
        Ok(())
    }
}

impl Scenario for DbDecrement {
    fn name(&self) -> &str {
        "db"
    }

    async fn call(&self, _worker: usize, _seq: u64) -> Result<(), Status> {
        let sql = format!("UPDATE {DB_TABLE} SET available = available - 1 WHERE id = 1 AND available >= 1");
        let result = self.db.execute_unprepared(&sql).await.map_err(|e| Status::unavailable(e.to_string()))?;
        if result.rows_affected() != 1 {
            return Err(Status::failed_precondition("sold out"));
        }
        Ok(())
    }

    /// Units taken must equal successful decrements: the row never went below zero.
    async fn check(&self) -> anyhow::Result<Option<String>> {
        let row = self
            .db
            .query_one_raw(Statement::from_string(
                self.db.get_database_backend(),
                format!("SELECT available FROM {DB_TABLE} WHERE id = 1"),
            ))
            .await?
            .ok_or_else(|| anyhow::anyhow!("baseline row missing"))?;
        let available: i64 = row.try_get("", "available")?;
        Ok(Some(format!("units taken: {} of {}; below zero: {}", self.start - available, self.start, available < 0)))
    }
}

/// `reserve`: the flash sale on one hot product — every call reserves one
/// unit of the same stock row through inventory's ReserveStock. The check
/// compares what was granted with what inventory says is reserved: an
/// oversell (or a lost grant) shows as a difference.
#[derive(Debug)]
pub struct Reserve {
    clients: Vec<InventoryServiceClient<Authed>>,
    product: String,
    stock: i64,
    run: String,
    next: AtomicU64,
    granted: AtomicU64,
}

/// The warehouse the `reserve` scenario receives its stock into.
const LOADGEN_WAREHOUSE: &str = "loadgen";

impl Reserve {
    /// Receives `stock` units of a fresh product into the `loadgen`
    /// warehouse (as the operator `setup` channel), then reserves it over
    /// `channels` (which must carry a service key: ReserveStock is for
    /// services).
    pub async fn prepare(channels: Vec<Authed>, setup: Authed, stock: i64) -> anyhow::Result<Self> {
        let run = format!("{:012x}", rand::random::<u64>() >> 16);
        let product = format!("loadgen-hot-{run}");
        Self::prepare_stock(setup, &product, stock, &run).await?;
        Ok(Reserve {
            clients: channels.into_iter().map(InventoryServiceClient::new).collect(),
            product,
            stock,
            run,
            next: AtomicU64::new(0),
            granted: AtomicU64::new(0),
        })
    }

    /// Receives `stock` units of `product` into the `loadgen` warehouse
    /// (created if missing), as the operator `setup` channel.
    async fn prepare_stock(setup: Authed, product: &str, stock: i64, run: &str) -> anyhow::Result<()> {
        let mut operator = InventoryServiceClient::new(setup);
        let warehouse = inventory::Warehouse {
            display_name: "Load generator".into(),
            location: "nowhere".into(),
            priority: 1_000_000,
            ..Default::default()
        };
        let created = operator
            .create_warehouse(inventory::CreateWarehouseRequest {
                warehouse: Some(warehouse),
                warehouse_id: LOADGEN_WAREHOUSE.into(),
                request_id: String::new(),
            })
            .await;
        match created {
            Ok(_) => {}
            Err(status) if status.code() == tonic::Code::AlreadyExists => {}
            Err(status) => anyhow::bail!("creating the loadgen warehouse: {}", status.message()),
        }
        operator
            .receive_stock(inventory::ReceiveStockRequest {
                product: format!("products/{product}"),
                warehouse: format!("warehouses/{LOADGEN_WAREHOUSE}"),
                quantity: stock,
                request_id: format!("loadgen-{run}"),
                reference: "caravan loadgen reserve".into(),
            })
            .await
            .map_err(|s| anyhow::anyhow!("receiving the hot product's stock: {}", s.message()))?;
        Ok(())
    }
}

impl Scenario for Reserve {
    fn name(&self) -> &str {
        "reserve"
    }

    async fn call(&self, worker: usize, _seq: u64) -> Result<(), Status> {
        let mut client = self.clients[worker % self.clients.len()].clone();
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let request = inventory::ReserveStockRequest {
            reservation_id: format!("lg-{}-{n}", self.run),
            show: String::new(),
            lines: vec![inventory::ReservationRequestLine {
                product: format!("products/{}", self.product),
                quantity: 1,
            }],
            ttl_seconds: 0,
            request_id: String::new(),
        };
        let reservation = client.reserve_stock(request).await?.into_inner();
        if reservation.lines.iter().map(|l| l.quantity).sum::<i64>() != 1 {
            return Err(Status::data_loss("a reservation that does not hold the unit asked for"));
        }
        self.granted.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// Granted units (warm-up included) must equal what inventory holds as
    /// reserved, and never exceed the stock.
    async fn check(&self) -> anyhow::Result<Option<String>> {
        let mut client = self.clients[0].clone();
        let level = client
            .get_stock(inventory::GetStockRequest { name: format!("stockLevels/{}", self.product) })
            .await
            .map_err(|s| anyhow::anyhow!("reading the hot product's stock: {}", s.message()))?
            .into_inner();
        let granted = i64::try_from(self.granted.load(Ordering::Relaxed)).unwrap_or(i64::MAX);
        let oversold = (granted - self.stock).max(0);
        anyhow::ensure!(
            level.reserved == granted && oversold == 0 && level.available >= 0,
            "OVERSELL or lost grant: granted {granted}, inventory reserved {}, stock {}",
            level.reserved,
            self.stock
        );
        Ok(Some(format!(
            "granted {granted} of {} units; inventory holds {} reserved, {} available; oversold: {oversold}",
            self.stock, level.reserved, level.available
        )))
    }
}

/// `order`: the flash sale end to end — every call is one buyer's PlaceOrder
/// of one unit of one hot product in a live show, through orders (catalog,
/// scheduling and inventory behind it). The check compares the orders that
/// were placed with the show's sales report and inventory's books: an
/// oversell, a lost order or a leaked hold shows as a difference.
#[derive(Debug)]
pub struct Order {
    pub(super) clients: Vec<OrdersServiceClient<Authed>>,
    pub(super) operator_orders: OrdersServiceClient<Authed>,
    pub(super) inventory: InventoryServiceClient<Authed>,
    pub(super) product: String,
    pub(super) show: String,
    pub(super) stock: i64,
    pub(super) run: String,
    next: AtomicU64,
    placed: AtomicU64,
}

/// Where the `order` scenario's setup goes, and who does it.
#[derive(Debug)]
pub struct OrderSetup {
    /// Operator channels to catalog, scheduling, inventory and orders.
    pub catalog: Authed,
    /// Scheduling.
    pub scheduling: Authed,
    /// Inventory.
    pub inventory: Authed,
    /// Orders (the sales report).
    pub orders: Authed,
}

fn setup_error(step: &str) -> impl FnOnce(Status) -> anyhow::Error + '_ {
    move |s| anyhow::anyhow!("{step}: {:?}: {}", s.code(), s.message())
}

impl Order {
    /// Creates a hot product (ACTIVE) with `stock` units, and a live show of
    /// a fresh campaign, channel and host offering all of it with no
    /// per-buyer limit; then orders over `channels` (partner keys: only
    /// partners place orders).
    pub async fn prepare(channels: Vec<Authed>, setup: OrderSetup, stock: i64) -> anyhow::Result<Self> {
        use caravan_proto::{catalog::v1 as catalog, scheduling::v1 as scheduling, r#type::v1 as types};

        use crate::festival::{Timetable, date, text};
        let run = format!("{:012x}", rand::random::<u64>() >> 16);
        let product = format!("loadgen-hot-{run}");
        let price = types::Money { currency_code: "CNY".into(), minor_units: 2990 };
        let mut products = CatalogServiceClient::new(setup.catalog);
        let new = catalog::Product {
            country: "countries/UZ".into(),
            category: catalog::Category::Food.into(),
            title: Some(types::LocalizedText {
                zh_cn: "压测核桃".into(),
                en: "Load generator walnuts".into(),
                ..Default::default()
            }),
            description: Some(types::LocalizedText {
                zh_cn: "压测用的热门商品".into(),
                en: "The hot product of a load test".into(),
                ..Default::default()
            }),
            list_price: Some(price.clone()),
            unit: "500 g".into(),
            ..Default::default()
        };
        let request = catalog::CreateProductRequest {
            product: Some(new),
            product_id: product.clone(),
            request_id: String::new(),
        };
        products.create_product(request).await.map_err(setup_error("creating the hot product"))?;
        let activate = catalog::ActivateProductRequest { name: format!("products/{product}"), ..Default::default() };
        products.activate_product(activate).await.map_err(setup_error("activating the hot product"))?;
        Reserve::prepare_stock(setup.inventory.clone(), &product, stock, &run).await?;

        let mut timetable = Timetable::new(setup.scheduling);
        let today = chrono::Utc::now().date_naive();
        let campaign = scheduling::Campaign {
            title: text("Load generator festival"),
            organiser: "caravan loadgen".into(),
            start_date: date(today.pred_opt().unwrap_or(today)),
            end_date: date(today.succ_opt().unwrap_or(today)),
            time_zone: "UTC".into(),
            ..Default::default()
        };
        let id = format!("loadgen-{run}");
        timetable.campaign(&id, campaign).await?;
        timetable.channel(&id, "hema", "Load generator", "hema").await?;
        let host = scheduling::Host {
            display_name: "Load generator".into(),
            country: "countries/UZ".into(),
            ..Default::default()
        };
        timetable.host(&id, host).await?;
        let now = caravan_platform::time::Micros::from_datetime(chrono::Utc::now());
        let show = scheduling::Show {
            campaign: format!("campaigns/{id}"),
            channel: format!("channels/{id}"),
            host: format!("hosts/{id}"),
            title: text("Load generator flash sale"),
            start_time: Some(caravan_proto::timestamp_from_micros(now.0)),
            end_time: Some(caravan_proto::timestamp_from_micros(now.plus(std::time::Duration::from_secs(3600)).0)),
            offers: vec![scheduling::Offer {
                product: format!("products/{product}"),
                show_price: Some(price),
                allocated_quantity: stock,
                per_buyer_limit: 0,
                display_order: 0,
            }],
            ..Default::default()
        };
        timetable.show(&id, show).await?;
        // The show clock starts it at its start time; start it by hand at once.
        timetable.start(&id).await?;
        Ok(Order {
            clients: channels.into_iter().map(OrdersServiceClient::new).collect(),
            operator_orders: OrdersServiceClient::new(setup.orders),
            inventory: InventoryServiceClient::new(setup.inventory),
            product,
            show: format!("shows/{id}"),
            stock,
            run,
            next: AtomicU64::new(0),
            placed: AtomicU64::new(0),
        })
    }
}

impl Order {
    /// The hot product: `products/{id}`.
    pub fn product(&self) -> String {
        format!("products/{}", self.product)
    }

    /// The live show: `shows/{id}`.
    pub fn show(&self) -> &str {
        &self.show
    }
}

impl Scenario for Order {
    fn name(&self) -> &str {
        "order"
    }

    async fn call(&self, worker: usize, _seq: u64) -> Result<(), Status> {
        let mut client = self.clients[worker % self.clients.len()].clone();
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let request = PlaceOrderRequest {
            buyer: format!("lg-{}-{n}", self.run),
            show: self.show.clone(),
            lines: vec![PlaceOrderLine { product: format!("products/{}", self.product), quantity: 1 }],
            request_id: format!("lg-{}-{n}", self.run),
        };
        let order = client.place_order(request).await?.into_inner();
        if order.state != order::State::AwaitingPayment as i32
            || order.lines.iter().map(|l| l.quantity).sum::<i64>() != 1
        {
            return Err(Status::data_loss("an order that does not hold the unit asked for"));
        }
        self.placed.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// Placed orders (warm-up included) must equal what the sales report
    /// counts and what inventory holds reserved, and never exceed the stock.
    async fn check(&self) -> anyhow::Result<Option<String>> {
        let mut orders = self.operator_orders.clone();
        let report = orders
            .get_show_sales_report(GetShowSalesReportRequest { show: self.show.clone() })
            .await
            .map_err(|s| anyhow::anyhow!("reading the sales report: {}", s.message()))?
            .into_inner();
        let mut inventory = self.inventory.clone();
        let level = inventory
            .get_stock(inventory::GetStockRequest { name: format!("stockLevels/{}", self.product) })
            .await
            .map_err(|s| anyhow::anyhow!("reading the hot product's stock: {}", s.message()))?
            .into_inner();
        let placed = i64::try_from(self.placed.load(Ordering::Relaxed)).unwrap_or(i64::MAX);
        let reported = report.units_awaiting_payment + report.units_paid;
        let oversold = (placed - self.stock).max(0);
        anyhow::ensure!(
            reported == placed && level.reserved == placed && oversold == 0,
            "OVERSELL, lost order or leaked hold: placed {placed}, the report counts {reported}, inventory holds {}, stock {}",
            level.reserved,
            self.stock
        );
        Ok(Some(format!(
            "placed {placed} orders of {} units; the report counts {reported}, inventory holds {} reserved; oversold: {oversold}",
            self.stock, level.reserved
        )))
    }
}
