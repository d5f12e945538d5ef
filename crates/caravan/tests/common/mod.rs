//! Shared by the tests that run `caravan` as separate processes.

#![allow(dead_code)] // Each test binary uses what it needs.

use std::{
    collections::HashMap,
    net::{SocketAddr, TcpListener},
    path::Path,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use caravan::{
    channel::Authed,
    loadgen::scenario::{Order, OrderSetup},
};
use caravan_platform::config::ServiceKind;
use caravan_proto::orders::v1::{PlaceOrderLine, PlaceOrderRequest, orders_service_client::OrdersServiceClient};
use caravan_testkit::{TestDatabase, eventually, health_status, write_test_keys};
use tonic_health::pb::health_check_response::ServingStatus;

/// `caravan serve <kind>` listening on `listen`, on `database`, accepting
/// the keys of the keys file `keys`, with nothing inherited from the test's
/// environment: what every process test starts from, adding its own
/// variables (a later `env` of the same name wins).
pub fn serve(kind: ServiceKind, listen: SocketAddr, database: &TestDatabase, keys: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_caravan"));
    command
        .args(["serve", kind.as_str()])
        .env_clear()
        .env("CARAVAN_LOG", "warn")
        .env("CARAVAN_METRICS_ADDR", "off")
        .env("CARAVAN_LISTEN_ADDR", listen.to_string())
        .env("CARAVAN_DATABASE_URL", database.config().url.expose())
        .env("CARAVAN_DB_MAX_CONNECTIONS", "2")
        .env("CARAVAN_KEYS_FILE", keys)
        .stdin(Stdio::null());
    command
}

/// A loopback address no one listens on (yet), below the ephemeral range
/// (32768 and up), where the outgoing connections of parallel tests would
/// otherwise take it before the child process binds it. Never the same port
/// twice in one test process: the ports of one suite are all chosen before
/// its first process binds any. Another test process may still choose a
/// port this one has not bound yet; [`Services::start`] retries then.
pub fn free_addr() -> SocketAddr {
    static GIVEN: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    let mut given = GIVEN.lock().unwrap();
    loop {
        let port = 20_000 + rand::random::<u16>() % 12_000;
        if given.contains(&port) {
            continue;
        }
        if let Ok(listener) = TcpListener::bind(("127.0.0.1", port)) {
            given.push(port);
            return listener.local_addr().unwrap();
        }
    }
}

/// A child process killed if it is dropped still running: a test that
/// fails halfway leaves no process behind.
pub struct Spawned(pub Child);

impl std::borrow::Borrow<Child> for Spawned {
    fn borrow(&self) -> &Child {
        &self.0
    }
}

impl std::borrow::BorrowMut<Child> for Spawned {
    fn borrow_mut(&mut self) -> &mut Child {
        &mut self.0
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        if matches!(self.0.try_wait(), Ok(None)) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// Sends SIGTERM and waits for the process to drain and exit.
pub async fn stop(mut child: impl std::borrow::BorrowMut<Child>) {
    let child = child.borrow_mut();
    Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while child.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "caravan did not stop");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits until the server at `addr` reports SERVING.
pub async fn serving(addr: SocketAddr) {
    let up = eventually(Duration::from_secs(30), || async {
        matches!(health_status(addr, "").await, Ok(ServingStatus::Serving))
    })
    .await;
    assert!(up, "{addr} became SERVING");
}

/// The four services, each a `caravan serve` process with its own database,
/// the test keys, its /metrics on a port of its own, started callees first.
pub struct Services {
    /// Where each serves gRPC.
    pub addrs: HashMap<ServiceKind, SocketAddr>,
    /// Where each serves /metrics.
    pub metrics: HashMap<ServiceKind, SocketAddr>,
    children: Vec<Child>,
    _databases: Vec<TestDatabase>,
}

impl Services {
    /// Starts them, each with `env` added to its environment; keys go to `dir`.
    pub async fn start(dir: &Path, env: &[(&str, String)]) -> Services {
        let keys = write_test_keys(dir).unwrap().display().to_string();
        let mut addrs: HashMap<ServiceKind, SocketAddr> =
            ServiceKind::ALL.into_iter().map(|k| (k, free_addr())).collect();
        let mut metrics: HashMap<ServiceKind, SocketAddr> =
            ServiceKind::ALL.into_iter().map(|k| (k, free_addr())).collect();
        let (mut databases, mut children) = (Vec::new(), Vec::new());
        for kind in caravan::suite::START_ORDER {
            let database = database(kind).await;
            let mut attempts = 0;
            let child = loop {
                attempts += 1;
                match Self::spawn(kind, dir, env, &keys, &database, &addrs, &metrics).await {
                    Ok(child) => break child,
                    // A parallel test took a port between its choice and the bind.
                    Err(log) if attempts < 3 && log.contains("Address already in use") => {
                        addrs.insert(kind, free_addr());
                        metrics.insert(kind, free_addr());
                    }
                    Err(log) => panic!("caravan serve {kind} did not serve:\n{log}"),
                }
            };
            children.push(child);
            databases.push(database);
        }
        Services { addrs, metrics, children, _databases: databases }
    }

    /// Starts `kind` and waits until it serves; answers its log if it does not.
    async fn spawn(
        kind: ServiceKind,
        dir: &Path,
        env: &[(&str, String)],
        keys: &str,
        database: &TestDatabase,
        addrs: &HashMap<ServiceKind, SocketAddr>,
        metrics: &HashMap<ServiceKind, SocketAddr>,
    ) -> Result<Child, String> {
        let mut command = serve(kind, addrs[&kind], database, Path::new(keys));
        command
            .env("CARAVAN_METRICS_ADDR", metrics[&kind].to_string())
            .env("CARAVAN_DRAIN_DELAY", "0s")
            .env("CARAVAN_SERVICE_KEY_FILE", dir.join(format!("{kind}.key")));
        for upstream in kind.upstreams() {
            command.env(upstream.url_variable(), format!("http://{}", addrs[upstream]));
        }
        for (name, value) in env {
            command.env(name, value);
        }
        let log = dir.join(format!("{kind}.log"));
        command.stderr(std::fs::File::create(&log).unwrap());
        let mut child = command.spawn().unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut exited = None;
        while Instant::now() < deadline && exited.is_none() {
            if matches!(health_status(addrs[&kind], "").await, Ok(ServingStatus::Serving)) {
                break;
            }
            exited = child.try_wait().unwrap();
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        if exited.is_none() && Instant::now() < deadline {
            return Ok(child);
        }
        let _ = child.kill();
        let _ = child.wait();
        Err(format!("({exited:?})\n{}", std::fs::read_to_string(&log).unwrap_or_default()))
    }

    /// Stops them, callers first (exit flushes their exporters).
    pub async fn stop(mut self) {
        while let Some(child) = self.children.pop() {
            stop(child).await;
        }
    }
}

impl Drop for Services {
    /// A test that failed before `stop` leaves no process behind.
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A live show with one hot product of `stock` units, set up through the
/// services' APIs as an operator (the load generator's own setup).
pub async fn live_show(addrs: &HashMap<ServiceKind, SocketAddr>, operator: &str, stock: i64) -> Order {
    let channel = |kind: ServiceKind| Authed::new(&addrs[&kind].to_string(), Some(operator), None).unwrap();
    let setup = OrderSetup {
        catalog: channel(ServiceKind::Catalog),
        scheduling: channel(ServiceKind::Scheduling),
        inventory: channel(ServiceKind::Inventory),
        orders: channel(ServiceKind::Orders),
    };
    Order::prepare(Vec::new(), setup, stock).await.unwrap()
}

/// A PlaceOrder of `quantity` units for `buyer`, in the partner's trace
/// `traceparent` when given; answers the order's name.
pub async fn place(
    orders: SocketAddr,
    partner: &str,
    sale: &Order,
    buyer: &str,
    quantity: i64,
    traceparent: Option<&str>,
) -> Result<String, tonic::Status> {
    let channel = Authed::new(&orders.to_string(), Some(partner), None).unwrap();
    let mut request = tonic::Request::new(PlaceOrderRequest {
        buyer: buyer.to_owned(),
        show: sale.show().to_owned(),
        lines: vec![PlaceOrderLine { product: sale.product(), quantity }],
        request_id: format!("req-{buyer}"),
    });
    if let Some(traceparent) = traceparent {
        request.metadata_mut().insert("traceparent", traceparent.parse().unwrap());
    }
    OrdersServiceClient::new(channel).place_order(request).await.map(|o| o.into_inner().name)
}

/// A fresh, migrated test database for one service.
pub async fn database(kind: ServiceKind) -> TestDatabase {
    match kind {
        ServiceKind::Catalog => TestDatabase::new::<caravan_catalog::Migrator>(kind).await,
        ServiceKind::Scheduling => TestDatabase::new::<caravan_scheduling::Migrator>(kind).await,
        ServiceKind::Inventory => TestDatabase::new::<caravan_inventory::Migrator>(kind).await,
        ServiceKind::Orders => TestDatabase::new::<caravan_orders::Migrator>(kind).await,
    }
    .unwrap()
}

/// The four services in this process (a `caravan::suite::Suite`, as
/// `caravan up` runs them), each on a fresh test database, for tests that
/// run a `caravan` command against them.
pub struct InProcess {
    /// The running services.
    pub suite: caravan::suite::Suite,
    token: caravan_platform::CancellationToken,
    _databases: HashMap<ServiceKind, TestDatabase>,
}

impl InProcess {
    /// Starts the four services.
    pub async fn start() -> Self {
        let mut databases = HashMap::new();
        for kind in ServiceKind::ALL {
            databases.insert(kind, database(kind).await);
        }
        let token = caravan_platform::CancellationToken::new();
        let suite = caravan::suite::Suite::start(
            |kind| caravan_testkit::service_config(kind, databases[&kind].config(), &[]),
            &Default::default(),
            None,
            token.clone(),
        )
        .await
        .unwrap();
        InProcess { suite, token, _databases: databases }
    }

    /// `--catalog <addr> --scheduling <addr> …`: where a `caravan` command
    /// finds the four services.
    pub fn addr_args(&self) -> Vec<String> {
        [
            ("--catalog", ServiceKind::Catalog),
            ("--scheduling", ServiceKind::Scheduling),
            ("--inventory", ServiceKind::Inventory),
            ("--orders", ServiceKind::Orders),
        ]
        .into_iter()
        .flat_map(|(flag, kind)| [flag.to_owned(), self.suite.addr(kind).to_string()])
        .collect()
    }

    /// Stops the services and waits for them to drain.
    pub async fn stop(self) {
        self.token.cancel();
        self.suite.wait().await.unwrap();
    }
}
