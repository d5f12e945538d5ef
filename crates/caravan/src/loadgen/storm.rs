//! `--scenario storm`: the sell-out storm. A live show offers `--stock` units
//! of one product; buyers keep pressing buy far beyond it. Two measured
//! phases: **selling out** (exactly `--stock` calls: the accepted orders)
//! and **after the sell-out** (`--duration` of calls that find the offer
//! gone: the refusals), each charged the server's CPU, so each is its own
//! ratio to the `echo-platform` baseline of the same run. Midway through the
//! second phase a batch of orders is cancelled, and the storm must sell
//! those units again. With `--pg-stats`, each phase also counts the
//! suite's PostgreSQL transactions; health is sampled throughout and must
//! stay SERVING.

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use anyhow::Context as _;
use caravan_proto::orders::v1::{
    CancelOrderRequest, GetShowSalesReportRequest, PlaceOrderLine, PlaceOrderRequest, order,
};
use sea_orm::{ConnectionTrait as _, DatabaseConnection, Statement};
use tonic::{Code, Status};

use super::{
    ServerCpu,
    engine::{LoadConfig, Measurement},
    measure,
    report::Report,
    scenario::{Order, Scenario},
};

/// How long PostgreSQL may keep an idle backend's statistics before it
/// reports them (`PGSTAT_IDLE_INTERVAL`, 10 s), plus a margin.
const STATS_SETTLE: Duration = Duration::from_secs(11);
/// How often health is asked during the storm.
const HEALTH_EVERY: Duration = Duration::from_millis(200);

/// The storm's one call: a buyer's PlaceOrder of one unit. An accepted order
/// and a refusal for lack of stock are both expected answers (each counted);
/// anything else is an error.
#[derive(Debug)]
pub struct Storm {
    order: Order,
    next: AtomicU64,
    accepted: AtomicU64,
    refused: AtomicU64,
    /// Accepted orders not cancelled, by name.
    held: Mutex<Vec<String>>,
    cancelled: AtomicU64,
}

impl Storm {
    /// A storm over the `order` scenario's show.
    pub fn new(order: Order) -> Self {
        Storm {
            order,
            next: AtomicU64::new(0),
            accepted: AtomicU64::new(0),
            refused: AtomicU64::new(0),
            held: Mutex::default(),
            cancelled: AtomicU64::new(0),
        }
    }

    /// Accepted and refused calls so far, and resets both.
    fn take_counts(&self) -> (u64, u64) {
        (self.accepted.swap(0, Ordering::Relaxed), self.refused.swap(0, Ordering::Relaxed))
    }

    /// Cancels up to `n` accepted orders (the partner's buyers changing
    /// their minds); answers how many.
    async fn cancel(&self, n: usize) -> anyhow::Result<u64> {
        let names: Vec<String> = {
            let mut held = self.held.lock().unwrap_or_else(|e| e.into_inner());
            let keep = held.len().saturating_sub(n);
            held.split_off(keep)
        };
        let mut client = self.order.clients[0].clone();
        for name in &names {
            let request = CancelOrderRequest { name: name.clone(), reason: "storm".into(), request_id: String::new() };
            client.cancel_order(request).await.map_err(|s| anyhow::anyhow!("cancelling {name}: {}", s.message()))?;
        }
        let n = names.len() as u64;
        self.cancelled.fetch_add(n, Ordering::Relaxed);
        Ok(n)
    }
}

impl Scenario for Storm {
    fn name(&self) -> &str {
        "storm"
    }

    async fn call(&self, worker: usize, _seq: u64) -> Result<(), Status> {
        let mut client = self.order.clients[worker % self.order.clients.len()].clone();
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let request = PlaceOrderRequest {
            buyer: format!("storm-{}-{n}", self.order.run),
            show: self.order.show.clone(),
            lines: vec![PlaceOrderLine { product: format!("products/{}", self.order.product), quantity: 1 }],
            request_id: format!("storm-{}-{n}", self.order.run),
        };
        match client.place_order(request).await {
            Ok(placed) => {
                let placed = placed.into_inner();
                if placed.state != order::State::AwaitingPayment as i32 {
                    return Err(Status::data_loss("an accepted order that does not hold its unit"));
                }
                self.accepted.fetch_add(1, Ordering::Relaxed);
                self.held.lock().unwrap_or_else(|e| e.into_inner()).push(placed.name);
                Ok(())
            }
            Err(status)
                if status.code() == Code::FailedPrecondition
                    && caravan_platform::error::reason_of(&status)
                        == Some(caravan_platform::error::Reason::InsufficientStock) =>
            {
                self.refused.fetch_add(1, Ordering::Relaxed);
                Ok(())
            }
            Err(status) => Err(status),
        }
    }

    /// The units held (accepted less cancelled) equal the report's and
    /// inventory's, and never exceed the stock.
    async fn check(&self) -> anyhow::Result<Option<String>> {
        let mut orders = self.order.operator_orders.clone();
        let report = orders
            .get_show_sales_report(GetShowSalesReportRequest { show: self.order.show.clone() })
            .await
            .map_err(|s| anyhow::anyhow!("reading the sales report: {}", s.message()))?
            .into_inner();
        let mut inventory = self.order.inventory.clone();
        let level = inventory
            .get_stock(caravan_proto::inventory::v1::GetStockRequest {
                name: format!("stockLevels/{}", self.order.product),
            })
            .await
            .map_err(|s| anyhow::anyhow!("reading the product's stock: {}", s.message()))?
            .into_inner();
        let held = i64::try_from(self.held.lock().unwrap_or_else(|e| e.into_inner()).len()).unwrap_or(i64::MAX);
        let reported = report.units_awaiting_payment + report.units_paid;
        let oversold = (held - self.order.stock).max(0);
        anyhow::ensure!(
            reported == held && level.reserved == held && oversold == 0,
            "OVERSELL, lost order or leaked hold: {held} held, the report counts {reported}, inventory holds {}, stock {}",
            level.reserved,
            self.order.stock
        );
        Ok(Some(format!("{held} units held of {}; report and inventory agree; oversold: 0", self.order.stock)))
    }
}

/// Samples the four services' readiness in the background.
#[derive(Debug)]
struct HealthWatch {
    stop: tokio::sync::watch::Sender<bool>,
    task: tokio::task::JoinHandle<(u64, Vec<String>)>,
}

impl HealthWatch {
    fn start(addresses: Vec<(&'static str, String)>) -> anyhow::Result<HealthWatch> {
        use tonic_health::pb::{HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient};
        let clients = addresses
            .into_iter()
            .map(|(name, addr)| {
                let url = if addr.contains("://") { addr } else { format!("http://{addr}") };
                Ok((name, HealthClient::new(tonic::transport::Endpoint::from_shared(url)?.connect_lazy())))
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        let (stop, mut stopped) = tokio::sync::watch::channel(false);
        let task = tokio::spawn(async move {
            let (mut checks, mut failures) = (0, Vec::new());
            let mut ticker = tokio::time::interval(HEALTH_EVERY);
            loop {
                tokio::select! {
                    _ = ticker.tick() => {}
                    _ = stopped.changed() => return (checks, failures),
                }
                for (name, client) in &clients {
                    let mut client = client.clone();
                    let mut request = tonic::Request::new(HealthCheckRequest { service: String::new() });
                    request.set_timeout(Duration::from_secs(1));
                    checks += 1;
                    match client.check(request).await {
                        Ok(r) if r.get_ref().status == ServingStatus::Serving as i32 => {}
                        Ok(r) => failures.push(format!("{name}: status {}", r.get_ref().status)),
                        Err(s) => failures.push(format!("{name}: {:?} {}", s.code(), s.message())),
                    }
                }
            }
        });
        Ok(HealthWatch { stop, task })
    }

    async fn finish(self) -> (u64, Vec<String>) {
        let _ = self.stop.send(true);
        self.task.await.unwrap_or_default()
    }
}

/// The suite's PostgreSQL counters: transactions committed in its four
/// databases (`pg_stat_database.xact_commit`, read-only ones included) and
/// transactions that wrote (transaction ids assigned, server-wide: exact at
/// once, where the statistics lag).
#[derive(Debug)]
pub(crate) struct PgCounters {
    db: DatabaseConnection,
    databases: Vec<String>,
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct PgReading {
    at: tokio::time::Instant,
    pub(crate) transactions: i64,
    writes: i64,
}

impl PgCounters {
    pub(crate) async fn connect(url: &str, prefix: &str) -> anyhow::Result<PgCounters> {
        let db = sea_orm::Database::connect(url).await.context("connecting to --pg-stats")?;
        let databases =
            ["catalog", "scheduling", "inventory", "orders"].iter().map(|s| format!("{prefix}_{s}")).collect();
        Ok(PgCounters { db, databases })
    }

    async fn read(&self) -> anyhow::Result<PgReading> {
        let backend = self.db.get_database_backend();
        let names: Vec<String> = self.databases.iter().map(|d| format!("'{d}'")).collect();
        let row = self
            .db
            .query_one_raw(Statement::from_string(
                backend,
                format!(
                    "SELECT CAST(COALESCE(SUM(xact_commit), 0) AS BIGINT) AS transactions, \
                     CAST(CAST(pg_snapshot_xmax(pg_current_snapshot()) AS TEXT) AS BIGINT) AS writes \
                     FROM pg_stat_database WHERE datname IN ({})",
                    names.join(", ")
                ),
            ))
            .await?
            .context("pg_stat_database answered nothing")?;
        Ok(PgReading {
            at: tokio::time::Instant::now(),
            transactions: row.try_get("", "transactions")?,
            writes: row.try_get("", "writes")?,
        })
    }

    /// A reading once every backend has reported its statistics.
    pub(crate) async fn settled(&self) -> anyhow::Result<PgReading> {
        tokio::time::sleep(STATS_SETTLE).await;
        self.read().await
    }
}

/// Transactions per call of one phase, net of the suite's idle rate over
/// the time outside the phase (the statistics' settling).
#[derive(Debug, Clone, Copy)]
struct PerCall {
    transactions: f64,
    writes: f64,
}

fn per_call(before: PgReading, after: PgReading, phase: Duration, idle: (f64, f64), calls: u64) -> Option<PerCall> {
    let outside = after.at.saturating_duration_since(before.at).saturating_sub(phase).as_secs_f64();
    let calls = calls as f64;
    (calls > 0.0).then(|| PerCall {
        transactions: ((after.transactions - before.transactions) as f64 - idle.0 * outside).max(0.0) / calls,
        writes: ((after.writes - before.writes) as f64 - idle.1 * outside).max(0.0) / calls,
    })
}

/// What `caravan loadgen --scenario storm` needs besides the common flags.
#[derive(Debug, Clone)]
pub struct StormOptions {
    /// Units on offer.
    pub stock: i64,
    /// Orders cancelled midway through the storm.
    pub cancel: usize,
    /// A URL of the suite's PostgreSQL server, and its databases' prefix.
    pub pg_stats: Option<(String, String)>,
    /// The four services' addresses, for health.
    pub services: Vec<(&'static str, String)>,
}

/// Runs both phases; answers their reports, selling out first.
pub(super) async fn run(
    order: Order,
    options: StormOptions,
    config: &LoadConfig,
    server: ServerCpu,
) -> anyhow::Result<Vec<(Report, Measurement)>> {
    let storm = Arc::new(Storm::new(order));
    let pg = match &options.pg_stats {
        Some((url, prefix)) => Some(PgCounters::connect(url, prefix).await?),
        None => None,
    };
    // The suite's own rate while nobody orders (workers, stream polls).
    let idle = match &pg {
        Some(pg) => {
            let before = pg.read().await?;
            let after = pg.settled().await?;
            let seconds = after.at.saturating_duration_since(before.at).as_secs_f64().max(1e-9);
            Some((
                (after.transactions - before.transactions) as f64 / seconds,
                (after.writes - before.writes) as f64 / seconds,
            ))
        }
        None => None,
    };
    let health = HealthWatch::start(options.services.clone())?;

    // Selling out: exactly as many calls as units, no warm-up to eat them.
    let before = match &pg {
        Some(pg) => Some(pg.read().await?),
        None => None,
    };
    let selling = LoadConfig {
        count: Some(u64::try_from(options.stock).unwrap_or(0)),
        duration: None,
        warmup: Duration::ZERO,
        ..config.clone()
    };
    let (mut sold, sold_m) = measure("storm: selling out", storm.clone(), &selling, server.clone()).await?;
    let (accepted, refused) = storm.take_counts();
    let mut lines = vec![format!(
        "{accepted} accepted, {refused} refused; sold out {:.2} s after the first order",
        sold_m.elapsed.as_secs_f64()
    )];
    let after = match &pg {
        Some(pg) => Some(pg.settled().await?),
        None => None,
    };
    if let (Some(before), Some(after), Some(idle)) = (before, after, idle)
        && let Some(cost) = per_call(before, after, sold_m.elapsed, idle, accepted)
    {
        lines.push(format!(
            "{:.2} write transactions ({:.2} transactions, reads included) per accepted order",
            cost.writes, cost.transactions
        ));
    }
    sold.correctness = Some(format!("{}; {}", lines.join("; "), sold.correctness.unwrap_or_default()));

    // After the sell-out: the crowd keeps pressing buy; midway, some buyers
    // cancel, and the storm must sell their units again.
    let before = after;
    let cancelling = {
        let storm = storm.clone();
        let half = config.warmup + config.duration.unwrap_or(Duration::from_secs(10)) / 2;
        let n = options.cancel;
        tokio::spawn(async move {
            tokio::time::sleep(half).await;
            storm.cancel(n).await
        })
    };
    let (mut storming, storm_m) = measure("storm: after the sell-out", storm.clone(), config, server).await?;
    let cancelled = cancelling.await.context("the cancelling task")??;
    let (accepted, refused) = storm.take_counts();
    let mut lines = vec![format!("{refused} refused, {accepted} accepted after {cancelled} orders were cancelled")];
    let after = match &pg {
        Some(pg) => Some(pg.settled().await?),
        None => None,
    };
    if let (Some(before), Some(after), Some(idle)) = (before, after, idle)
        && let Some(cost) = per_call(before, after, storm_m.elapsed, idle, refused + accepted)
    {
        lines.push(format!(
            "{:.3} write transactions ({:.3} transactions, reads included) per call",
            cost.writes, cost.transactions
        ));
    }
    let (checks, failures) = health.finish().await;
    lines.push(if failures.is_empty() {
        format!("health: {checks} checks, every one SERVING")
    } else {
        format!("health: {} of {checks} checks not SERVING ({})", failures.len(), failures.join("; "))
    });
    storming.correctness = Some(format!("{}; {}", lines.join("; "), storming.correctness.unwrap_or_default()));
    anyhow::ensure!(
        u64::try_from(storm.held.lock().unwrap_or_else(|e| e.into_inner()).len()).unwrap_or(0)
            == u64::try_from(options.stock).unwrap_or(0),
        "the cancelled units were not all sold again: {}",
        storming.correctness.as_deref().unwrap_or_default()
    );
    anyhow::ensure!(failures.is_empty(), "readiness flapped during the storm: {}", failures.join("; "));
    Ok(vec![(sold, sold_m), (storming, storm_m)])
}

/// The services' addresses as `caravan loadgen` names them.
pub fn services(catalog: &str, scheduling: &str, inventory: &str, orders: &str) -> Vec<(&'static str, String)> {
    vec![
        ("catalog", catalog.to_owned()),
        ("scheduling", scheduling.to_owned()),
        ("inventory", inventory.to_owned()),
        ("orders", orders.to_owned()),
    ]
}
