//! Crash drills of the order saga: `caravan serve orders` runs as its own
//! process with a failpoint armed, aborts at that step (as `kill -9` would
//! leave it), and is started again. Whatever the step, the order converges —
//! by the partner's retry or by the order driver — and inventory's books
//! balance, with nothing held for an order that sells nothing.

#![allow(clippy::unwrap_used)] // Test helpers fail loudly; that is their job.

mod common;

use std::{
    net::SocketAddr,
    os::unix::process::ExitStatusExt as _,
    process::Stdio,
    time::{Duration, Instant},
};

use caravan_platform::config::ServiceKind;
use caravan_proto::{
    inventory::v1::{
        CreateWarehouseRequest, GetReservationRequest, GetStockRequest, ReceiveStockRequest, Warehouse,
        inventory_service_client::InventoryServiceClient, reservation,
    },
    orders::v1::{
        CancelOrderRequest, ConfirmPaymentRequest, ListOrdersRequest, Order, PlaceOrderLine, PlaceOrderRequest,
        order::State, orders_service_client::OrdersServiceClient,
    },
};
use caravan_testkit::{Caller, KeyedChannel, TestDatabase, TestServer, eventually, health_status, write_test_keys};
use common::{Spawned, free_addr, serve, stop};
use tonic::Code;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_types::StatusExt as _;

/// The call limit of the drills: orders are recovered after twice this, and
/// claims re-driven after twice this.
const CALL_LIMIT: &str = "1s";
/// The payment window of the drills.
const PAYMENT_WINDOW: &str = "5s";
/// A trace the partner's requests belong to.
const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const SIGABRT: i32 = 6;

/// Catalog and inventory in this process (the drills crash only orders), a
/// product with stock, and what `caravan serve orders` needs to reach them.
struct Drill {
    catalog: TestServer,
    inventory: TestServer,
    orders_db: TestDatabase,
    dir: tempfile::TempDir,
    orders_addr: SocketAddr,
    otlp: SocketAddr,
    product: String,
    stock: i64,
}

impl Drill {
    async fn new() -> Drill {
        let catalog = TestServer::start::<caravan_catalog::Catalog>(&[]).await.unwrap();
        let inventory = TestServer::start::<caravan_inventory::Inventory>(&[]).await.unwrap();
        let dataset = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/data/products.jsonl")).unwrap();
        let line = dataset.lines().find(|l| l.contains("\"id\":\"uz-")).unwrap();
        let product = line.split("\"id\":\"").nth(1).unwrap().split('"').next().unwrap().to_owned();
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("products.jsonl");
        std::fs::write(&file, line).unwrap();
        caravan::catalog_import::import(&file, &catalog.addr().to_string(), Caller::Operator.key(), 10, true)
            .await
            .unwrap();
        let mut operator = InventoryServiceClient::new(inventory.channel());
        let warehouse = Warehouse { display_name: "Shanghai bonded".into(), priority: 1, ..Default::default() };
        operator
            .create_warehouse(CreateWarehouseRequest {
                warehouse: Some(warehouse),
                warehouse_id: "sh-bonded".into(),
                request_id: String::new(),
            })
            .await
            .unwrap();
        let stock = 20;
        operator
            .receive_stock(ReceiveStockRequest {
                product: format!("products/{product}"),
                warehouse: "warehouses/sh-bonded".into(),
                quantity: stock,
                request_id: "receipt-1".into(),
                reference: String::new(),
            })
            .await
            .unwrap();
        let orders_db = TestDatabase::new::<caravan_orders::Migrator>(ServiceKind::Orders).await.unwrap();
        write_test_keys(dir.path()).unwrap();
        // Spans are exported nowhere (a closed port): the drills only need
        // the trace context that orders store.
        let otlp = free_addr();
        Drill { catalog, inventory, orders_db, dir, orders_addr: free_addr(), otlp, product, stock }
    }

    /// Starts `caravan serve orders`, with `failpoint` armed, and waits until it serves.
    async fn orders(&self, failpoint: Option<&str>) -> Spawned {
        let log = std::fs::File::options().create(true).append(true).open(self.dir.path().join("orders.log")).unwrap();
        let keys = self.dir.path().join("keys.txt");
        let mut command = serve(ServiceKind::Orders, self.orders_addr, &self.orders_db, &keys);
        command
            .env("CARAVAN_LOG", "warn,caravan_orders=info,opentelemetry=off")
            .env("CARAVAN_DRAIN_DELAY", "0s")
            .env("CARAVAN_SERVICE_KEY_FILE", self.dir.path().join("orders.key"))
            .env("CARAVAN_CATALOG_URL", format!("http://{}", self.catalog.addr()))
            .env("CARAVAN_INVENTORY_URL", format!("http://{}", self.inventory.addr()))
            .env("CARAVAN_SCHEDULING_URL", "http://127.0.0.1:1")
            .env("CARAVAN_CALL_LIMIT", CALL_LIMIT)
            .env("CARAVAN_PAYMENT_WINDOW", PAYMENT_WINDOW)
            .env("CARAVAN_RESERVATION_TTL", "60s")
            .env("OTEL_EXPORTER_OTLP_ENDPOINT", format!("http://{}", self.otlp))
            .stdout(Stdio::null())
            .stderr(log);
        if let Some(failpoint) = failpoint {
            command.env("CARAVAN_FAILPOINT", failpoint);
        }
        let child = Spawned(command.spawn().unwrap());
        let addr = self.orders_addr;
        let up = eventually(Duration::from_secs(30), || async {
            matches!(health_status(addr, "").await, Ok(ServingStatus::Serving))
        })
        .await;
        assert!(up, "caravan serve orders became SERVING; its log:\n{}", self.log());
        child
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("orders.log")).unwrap_or_default()
    }

    fn hema(&self) -> OrdersServiceClient<KeyedChannel> {
        OrdersServiceClient::new(KeyedChannel::new(self.orders_addr, Some(Caller::Hema)))
    }

    fn inventory(&self) -> InventoryServiceClient<KeyedChannel> {
        InventoryServiceClient::new(self.inventory.channel())
    }

    /// A PlaceOrder of one unit for `buyer`, in the partner's trace.
    fn place(&self, buyer: &str) -> tonic::Request<PlaceOrderRequest> {
        self.place_units(buyer, 1)
    }

    /// A PlaceOrder of `quantity` units for `buyer`, in the partner's trace.
    fn place_units(&self, buyer: &str, quantity: i64) -> tonic::Request<PlaceOrderRequest> {
        let mut request = tonic::Request::new(PlaceOrderRequest {
            buyer: buyer.into(),
            show: String::new(),
            lines: vec![PlaceOrderLine { product: format!("products/{}", self.product), quantity }],
            request_id: format!("req-{buyer}"),
        });
        let traceparent = format!("00-{TRACE_ID}-00f067aa0ba902b7-01");
        request.metadata_mut().insert("traceparent", traceparent.parse().unwrap());
        request
    }

    /// The buyer's one order.
    async fn order_of(&self, buyer: &str) -> Order {
        let listed = self.hema().list_orders(ListOrdersRequest { buyer: buyer.into(), ..Default::default() }).await;
        let mut orders = listed.unwrap().into_inner().orders;
        assert_eq!(orders.len(), 1, "{buyer}: {orders:?}");
        orders.remove(0)
    }

    /// Waits until the buyer's order is in `state`.
    async fn converges(&self, buyer: &str, state: State) -> Order {
        let reached =
            eventually(Duration::from_secs(30), || async { self.order_of(buyer).await.state() == state }).await;
        let order = self.order_of(buyer).await;
        assert!(reached, "{buyer}'s order is {:?}, not {state:?}; orders' log:\n{}", order.state(), self.log());
        order
    }

    /// The state of the order's reservation; `None` while inventory has none.
    async fn reservation(&self, order: &Order) -> Option<reservation::State> {
        let name = order.name.replace("orders/", "reservations/");
        let mut inventory = self.inventory();
        match inventory.get_reservation(GetReservationRequest { name }).await {
            Ok(reservation) => Some(reservation.into_inner().state()),
            Err(status) if status.code() == Code::NotFound => None,
            Err(status) => panic!("GetReservation: {status:?}"),
        }
    }

    /// Inventory's books balance; the product's (on hand, reserved).
    async fn books(&self) -> (i64, i64) {
        let db = self.inventory.database().connect().await.unwrap();
        let (violations, _) = caravan_inventory::store::audit(&db).await.unwrap();
        db.close().await.unwrap();
        assert!(violations.is_empty(), "inventory's books do not balance:\n{}", violations.join("\n"));
        let mut inventory = self.inventory();
        let level = inventory
            .get_stock(GetStockRequest { name: format!("stockLevels/{}", self.product) })
            .await
            .unwrap()
            .into_inner();
        (level.on_hand, level.reserved)
    }

    /// The `traceparent` stored with an order.
    async fn traceparent(&self, order: &Order) -> String {
        let db = self.orders_db.connect().await.unwrap();
        let id = order.name.trim_start_matches("orders/");
        let rows = caravan_platform::db::query(&db, "SELECT traceparent FROM orders WHERE id = $1", vec![id.into()])
            .await
            .unwrap();
        rows[0].try_get_by_index(0).unwrap()
    }
}

/// Waits for the process to abort at its failpoint.
async fn aborts(child: &mut Spawned, drill: &Drill, failpoint: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(status) = child.0.try_wait().unwrap() {
            assert_eq!(status.signal(), Some(SIGABRT), "{failpoint}: exited {status:?}; log:\n{}", drill.log());
            assert!(drill.log().contains(failpoint), "the log names the failpoint");
            return;
        }
        assert!(Instant::now() < deadline, "{failpoint} was never reached; log:\n{}", drill.log());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn reason(status: &tonic::Status) -> String {
    status.get_error_details().error_info().map(|i| i.reason.clone()).unwrap_or_default()
}

/// Runs `act` against `caravan serve orders` armed with `failpoint`, sees
/// it abort there, and starts it again unarmed for the order to converge.
async fn crash_at<F, Fut>(drill: &Drill, failpoint: &str, act: F) -> Spawned
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let mut orders = drill.orders(Some(failpoint)).await;
    act().await;
    aborts(&mut orders, drill, failpoint).await;
    drill.orders(None).await
}

#[tokio::test]
async fn placing_an_order_converges_after_a_crash_at_every_step() {
    let drill = Drill::new().await;
    let place_cut_short = |buyer: &'static str| {
        let drill = &drill;
        move || async move {
            assert!(drill.hema().place_order(drill.place(buyer)).await.is_err(), "the partner got no answer");
        }
    };

    // Written PENDING, nothing reserved: recovery rejects it; the retry hears so.
    let orders = crash_at(&drill, "orders.place.after_insert", place_cut_short("a")).await;
    let rejected = drill.converges("a", State::Rejected).await;
    // Recovery rejects first, then releases (a tombstone): wait for both.
    let tombstone = eventually(Duration::from_secs(20), || async {
        drill.reservation(&rejected).await == Some(reservation::State::Released)
    })
    .await;
    assert!(tombstone, "a tombstone bars a late reserve; log:\n{}", drill.log());
    let status = drill.hema().place_order(drill.place("a")).await.unwrap_err();
    assert_eq!((status.code(), reason(&status).as_str()), (Code::FailedPrecondition, "ORDER_REJECTED"));
    assert!(drill.traceparent(&rejected).await.contains(TRACE_ID), "the order keeps the trace that created it");
    stop(orders).await;

    // Stock held, order PENDING: recovery rejects it and gives the stock back.
    let mut orders = drill.orders(Some("orders.place.after_reserve")).await;
    place_cut_short("b")().await;
    aborts(&mut orders, &drill, "orders.place.after_reserve").await;
    assert_eq!(drill.books().await, (drill.stock, 1), "the crash left a hold");
    let orders = drill.orders(None).await;
    let rejected = drill.converges("b", State::Rejected).await;
    let released = eventually(Duration::from_secs(20), || async { drill.books().await.1 == 0 }).await;
    assert!(released, "the hold of the order the partner was told failed was released");
    assert_eq!(drill.reservation(&rejected).await, Some(reservation::State::Released));
    let status = drill.hema().place_order(drill.place("b")).await.unwrap_err();
    assert_eq!(reason(&status), "ORDER_REJECTED");
    stop(orders).await;

    // AWAITING_PAYMENT but unanswered: the partner's retry gets the order.
    let orders = crash_at(&drill, "orders.place.after_accept", place_cut_short("c")).await;
    let resumed = eventually(Duration::from_secs(20), || async {
        drill.hema().place_order(drill.place("c")).await.is_ok_and(|o| o.into_inner().state() == State::AwaitingPayment)
    })
    .await;
    assert!(resumed, "the retry answered the order awaiting payment");
    assert_eq!(drill.books().await, (drill.stock, 1));
    stop(orders).await;

    // Recovery itself crashes between its two steps: re-driven, it finishes.
    let orders = crash_at(&drill, "orders.place.after_reserve", place_cut_short("d")).await;
    stop(orders).await;
    let orders = crash_at(&drill, "orders.recovery.after_reject", || async {}).await;
    let d = drill.order_of("d").await;
    assert_eq!(d.state(), State::Rejected, "rejected before the crash");
    let released = eventually(Duration::from_secs(20), || async {
        drill.reservation(&d).await == Some(reservation::State::Released)
    })
    .await;
    assert!(released, "the re-driven recovery released the hold; log:\n{}", drill.log());

    // c was never paid: it expired at its deadline, and nothing is held.
    drill.converges("c", State::Expired).await;
    assert_eq!(drill.books().await, (drill.stock, 0));
    let pending = ListOrdersRequest { state: State::Pending.into(), ..Default::default() };
    let pending = drill.hema().list_orders(pending).await.unwrap().into_inner().orders;
    assert!(pending.is_empty(), "no order is left PENDING: {pending:?}");
    stop(orders).await;

    // Refused by inventory, cut short before the PENDING order was
    // forgotten: recovered like any order whose partner heard nothing —
    // REJECTED, a tombstone, nothing held — and the retry hears so.
    let too_many = drill.stock + 1;
    let orders = crash_at(&drill, "orders.place.after_refusal", || async {
        let refused = drill.hema().place_order(drill.place_units("e", too_many)).await;
        assert!(refused.is_err(), "the partner got no answer");
    })
    .await;
    let rejected = drill.converges("e", State::Rejected).await;
    let tombstone = eventually(Duration::from_secs(20), || async {
        drill.reservation(&rejected).await == Some(reservation::State::Released)
    })
    .await;
    assert!(tombstone, "recovery released the (never made) hold; log:\n{}", drill.log());
    let status = drill.hema().place_order(drill.place_units("e", too_many)).await.unwrap_err();
    assert_eq!(reason(&status), "ORDER_REJECTED");
    assert_eq!(drill.books().await, (drill.stock, 0), "nothing is held");

    // Refused without a crash, the order leaves nothing behind.
    let status = drill.hema().place_order(drill.place_units("f", too_many)).await.unwrap_err();
    assert_eq!(reason(&status), "INSUFFICIENT_STOCK");
    let listed = drill.hema().list_orders(ListOrdersRequest { buyer: "f".into(), ..Default::default() }).await;
    assert!(listed.unwrap().into_inner().orders.is_empty(), "a refusal leaves no order");
    stop(orders).await;
}

#[tokio::test]
async fn paying_cancelling_and_expiring_converge_after_a_crash_at_every_step() {
    let drill = Drill::new().await;
    let pay = |order: &Order, reference: &str| ConfirmPaymentRequest {
        name: order.name.clone(),
        payment_reference: reference.into(),
        request_id: String::new(),
    };
    let place = |buyer: &'static str| {
        let drill = &drill;
        async move { drill.hema().place_order(drill.place(buyer)).await.unwrap().into_inner() }
    };

    // The payment is recorded, nothing committed: the retry finishes it.
    let mut orders = drill.orders(Some("orders.pay.after_record")).await;
    let p = place("p").await;
    assert!(drill.hema().confirm_payment(pay(&p, "pay-p")).await.is_err());
    aborts(&mut orders, &drill, "orders.pay.after_record").await;
    let orders = drill.orders(None).await;
    let paid = drill.hema().confirm_payment(pay(&p, "pay-p")).await.unwrap().into_inner();
    assert_eq!((paid.state(), paid.payment_reference.as_str()), (State::Paid, "pay-p"));
    assert_eq!(drill.reservation(&p).await, Some(reservation::State::Committed));
    stop(orders).await;

    // Committed, not yet PAID, and the partner never retries: the driver
    // finds the sale at the payment deadline and marks the order PAID.
    let mut orders = drill.orders(Some("orders.pay.after_commit")).await;
    let q = place("q").await;
    assert!(drill.hema().confirm_payment(pay(&q, "pay-q")).await.is_err());
    aborts(&mut orders, &drill, "orders.pay.after_commit").await;
    let orders = drill.orders(None).await;
    let q = drill.converges("q", State::Paid).await;
    assert_eq!(q.payment_reference, "pay-q");
    stop(orders).await;

    // Released, not yet CANCELLED: the retry cancels.
    let mut orders = drill.orders(Some("orders.cancel.after_release")).await;
    let r = place("r").await;
    let cancel = CancelOrderRequest { name: r.name.clone(), reason: String::new(), request_id: String::new() };
    assert!(drill.hema().cancel_order(cancel.clone()).await.is_err());
    aborts(&mut orders, &drill, "orders.cancel.after_release").await;
    let orders = drill.orders(None).await;
    assert_eq!(drill.hema().cancel_order(cancel).await.unwrap().into_inner().state(), State::Cancelled);
    stop(orders).await;

    // Expiry crashes between its two steps: re-driven, the order expires.
    let mut orders = drill.orders(Some("orders.expiry.after_release")).await;
    let s = place("s").await;
    assert_eq!(s.state(), State::AwaitingPayment);
    aborts(&mut orders, &drill, "orders.expiry.after_release").await;
    let orders = drill.orders(None).await;
    drill.converges("s", State::Expired).await;
    assert_eq!(drill.reservation(&s).await, Some(reservation::State::Released));

    // Two sold, nothing held.
    assert_eq!(drill.books().await, (drill.stock - 2, 0));
    stop(orders).await;
}
