//! `caravan demo`: the 2022 National Nianhuo Festival, replayed from now.
//!
//! Against a running `caravan up` (or one it starts itself), the demo loads
//! the festival's catalog, receives stock, creates the festival (its four
//! weeks rebased to start today, in Asia/Shanghai), channels on Hema and
//! Douyin, and the seed's shows — Uzbekistan on Hema with nine specialties,
//! then Pakistan, Cambodia, Russia, Kazakhstan — on a timetable compressed by
//! `--time-scale`. Then it plays the first show as a flash sale: simulated
//! buyers order while the host presents (pins) each specialty in turn, most
//! pay, and the show's sales report is printed with each offer's sell-out.

use std::{
    collections::{BTreeMap, HashMap},
    path::PathBuf,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use anyhow::Context as _;
use caravan_platform::config::ServiceKind;
use caravan_proto::{
    inventory::v1::{self as inventory, inventory_service_client::InventoryServiceClient},
    micros_from_timestamp,
    orders::v1::{self as orders, orders_service_client::OrdersServiceClient},
    scheduling::v1::{self as scheduling, scheduling_service_client::SchedulingServiceClient},
    timestamp_from_micros,
    r#type::v1 as types,
};
use indicatif::{ProgressBar, ProgressStyle};
use rand::{Rng as _, SeedableRng as _};

use crate::{
    channel::Authed,
    festival::{Timetable, created, date, text},
    spawned::SpawnedSuite,
};

/// The festival's catalog dataset, shipped in the binary.
const DATASET: &str = include_str!("../data/products.jsonl");
/// The festival's time zone.
const ZONE: chrono_tz::Tz = chrono_tz::Asia::Shanghai;

/// `caravan demo` flags.
#[derive(Debug, Clone, clap::Args)]
pub struct DemoArgs {
    /// How much faster than life the timetable runs: at 120 a one-hour show
    /// lasts 30 s.
    #[arg(long, default_value_t = 120.0)]
    pub time_scale: f64,
    /// Buyers in the flash sale.
    #[arg(long, default_value_t = 300)]
    pub buyers: usize,
    /// Folder of the running suite's development keys (`caravan up`'s data folder).
    #[arg(long, default_value = "./data")]
    pub data_dir: PathBuf,
    /// Start a suite of its own (temporary data, free ports) instead of
    /// using the one on the default ports.
    #[arg(long)]
    pub own_suite: bool,
    /// Catalog's address.
    #[arg(long, default_value = "127.0.0.1:50051")]
    pub catalog: String,
    /// Scheduling's address.
    #[arg(long, default_value = "127.0.0.1:50052")]
    pub scheduling: String,
    /// Inventory's address.
    #[arg(long, default_value = "127.0.0.1:50053")]
    pub inventory: String,
    /// Orders' address.
    #[arg(long, default_value = "127.0.0.1:50054")]
    pub orders: String,
    /// An operator key (default: the development keys of --data-dir).
    #[arg(long, env = "CARAVAN_DEMO_OPERATOR_KEY", hide_env_values = true)]
    pub operator_key: Option<String>,
    /// Hema's partner key (default: the development keys).
    #[arg(long, env = "CARAVAN_DEMO_HEMA_KEY", hide_env_values = true)]
    pub hema_key: Option<String>,
    /// Random seed of the buyers.
    #[arg(long, default_value_t = 2022)]
    pub seed: u64,
}

/// Where the demo runs, and as whom.
struct Suite {
    catalog: String,
    scheduling: String,
    inventory: String,
    orders: String,
    operator: String,
    hema: String,
    _own: Option<crate::spawned::ReadySuite>,
}

/// One show of the seed's timetable.
struct Slot {
    country: &'static str,
    title: &'static str,
    host: (&'static str, &'static str, &'static str),
    channel: &'static str,
    /// Festival hours after the first show's start.
    at: f64,
}

/// The seed: Uzbekistan's counselor opens on Hema; envoys of Pakistan and
/// Cambodia follow; Russia's officials on Hema; others after.
const TIMETABLE: [Slot; 5] = [
    Slot {
        country: "uz",
        title: "Uzbekistan on Hema",
        host: ("olimkhonov", "Akmalkhon Olimkhonov", "Economic Counselor, Embassy of Uzbekistan"),
        channel: "hema-sco",
        at: 0.0,
    },
    Slot {
        country: "pk",
        title: "Pakistan on Douyin: rice and woodcrafts",
        host: ("rehman", "Habib-ur-Rehman", "Embassy of Pakistan"),
        channel: "douyin-sco",
        at: 1.0,
    },
    Slot {
        country: "kh",
        title: "Cambodia on Hema: a seafood salad",
        host: ("sovann", "Sovann Chea", "Embassy of Cambodia"),
        channel: "hema-sco",
        at: 2.0,
    },
    Slot {
        country: "ru",
        title: "Russia on Hema: New Year greetings",
        host: ("ivanova", "Elena Ivanova", "Trade Representation of Russia"),
        channel: "hema-sco",
        at: 24.0,
    },
    Slot {
        country: "kz",
        title: "Kazakhstan on Douyin",
        host: ("nurlanov", "Arman Nurlanov", "Embassy of Kazakhstan"),
        channel: "douyin-sco",
        at: 48.0,
    },
];

/// A product of the dataset.
#[derive(Debug, Clone, serde::Deserialize)]
struct Product {
    id: String,
    title_en: String,
}

fn products() -> anyhow::Result<Vec<Product>> {
    DATASET.lines().map(|l| serde_json::from_str(l).context("the shipped dataset")).collect()
}

/// A show's line-up: one product of each kind of specialty of `country`
/// (its second walnuts too for Uzbekistan: nine), most popular first.
fn line_up(all: &[Product], country: &str) -> Vec<Product> {
    let mut kinds: Vec<&str> = Vec::new();
    let mut picked = Vec::new();
    let prefix = format!("{country}-");
    for p in all.iter().filter(|p| p.id.starts_with(&prefix)) {
        let kind = p.id.split('-').nth(1).unwrap_or_default();
        if !kinds.contains(&kind) {
            kinds.push(kind);
            picked.push(p.clone());
        }
    }
    if country == "uz"
        && let Some(second) =
            all.iter().find(|p| p.id.starts_with("uz-walnuts") && !picked.iter().any(|q| q.id == p.id))
    {
        picked.push(second.clone());
    }
    // The seed's stars first: walnuts, raisins, biscuits.
    picked.sort_by_key(|p| ["walnuts", "raisins", "biscuits"].iter().position(|k| p.id.contains(k)).unwrap_or(9));
    picked
}

fn key_from(data_dir: &std::path::Path, who: &str) -> Option<String> {
    let text = std::fs::read_to_string(data_dir.join("dev-keys.txt")).ok()?;
    text.lines().find_map(|l| {
        let (name, key) = l.split_once(char::is_whitespace)?;
        (name == who).then(|| key.trim().to_owned())
    })
}

async fn connect(args: &DemoArgs) -> anyhow::Result<Suite> {
    let reachable = !args.own_suite
        && caravan_platform::client::health_status(
            args.orders.parse().context("--orders must be HOST:PORT with an IP address")?,
            "",
        )
        .await
        .is_ok();
    let operator = args.operator_key.clone().or_else(|| key_from(&args.data_dir, "operator"));
    let hema = args.hema_key.clone().or_else(|| key_from(&args.data_dir, "partner:hema"));
    if reachable && let (Some(operator), Some(hema)) = (operator, hema) {
        return Ok(Suite {
            catalog: args.catalog.clone(),
            scheduling: args.scheduling.clone(),
            inventory: args.inventory.clone(),
            orders: args.orders.clone(),
            operator,
            hema,
            _own: None,
        });
    }
    println!("No caravan on {} with keys in {}: starting one of its own.", args.orders, args.data_dir.display());
    let own = SpawnedSuite::launch(None, None, None).await?;
    let key = |who: &str| own.key(who).map(str::to_owned).with_context(|| format!("the suite's {who} key"));
    let addr = |kind| own.addr(kind).to_string();
    Ok(Suite {
        catalog: addr(ServiceKind::Catalog),
        scheduling: addr(ServiceKind::Scheduling),
        inventory: addr(ServiceKind::Inventory),
        orders: addr(ServiceKind::Orders),
        operator: key("operator")?,
        hema: key("partner:hema")?,
        _own: Some(own),
    })
}

/// Tolerates "it is there already": the demo can run again on the same suite.
/// Runs the demo.
pub async fn run(args: DemoArgs) -> anyhow::Result<()> {
    anyhow::ensure!(args.time_scale >= 1.0, "--time-scale must be at least 1");
    anyhow::ensure!(args.buyers > 0, "--buyers must be at least 1");
    let suite = connect(&args).await?;
    let operator = |addr: &str| Authed::new(addr, Some(&suite.operator), None);
    let run = format!("{:06x}", rand::random::<u32>() >> 8);
    let all = products()?;
    println!(
        "caravan demo — the 2022 National Nianhuo Festival, replayed from now; one festival hour lasts {:.0} s.",
        3600.0 / args.time_scale
    );

    // The catalog: every specialty of the dataset, active.
    let file = tempfile::NamedTempFile::new()?;
    std::fs::write(file.path(), DATASET)?;
    let totals = crate::catalog_import::import(file.path(), &suite.catalog, &suite.operator, 500, true).await?;
    let countries: std::collections::BTreeSet<&str> = all.iter().filter_map(|p| p.id.split('-').next()).collect();
    println!(
        "  catalog    {} specialties of {} countries (created {}, updated {}, unchanged {})",
        all.len(),
        countries.len(),
        totals.created,
        totals.updated,
        totals.unchanged
    );

    // Stock for every line-up, in the Shanghai bonded warehouse.
    let mut stock = InventoryServiceClient::new(operator(&suite.inventory)?);
    let warehouse = inventory::Warehouse {
        display_name: "Shanghai bonded warehouse".into(),
        location: "Waigaoqiao, Shanghai".into(),
        priority: 1,
        ..Default::default()
    };
    created(
        stock
            .create_warehouse(inventory::CreateWarehouseRequest {
                warehouse: Some(warehouse),
                warehouse_id: "sh-bonded".into(),
                request_id: String::new(),
            })
            .await,
        "creating the warehouse",
    )?;
    let line_ups: Vec<Vec<Product>> = TIMETABLE.iter().map(|slot| line_up(&all, slot.country)).collect();
    // The first show's offers are small: popular goods sell out within minutes.
    let offer_units =
        |show: usize, i: usize| if show == 0 { [60, 30, 25, 20, 20, 20, 20, 20, 20][i.min(8)] } else { 100 };
    let mut received = 0;
    for (show, line_up) in line_ups.iter().enumerate() {
        for (i, product) in line_up.iter().enumerate() {
            stock
                .receive_stock(inventory::ReceiveStockRequest {
                    product: format!("products/{}", product.id),
                    warehouse: "warehouses/sh-bonded".into(),
                    quantity: offer_units(show, i),
                    request_id: format!("demo-{run}-{}", product.id),
                    reference: "caravan demo".into(),
                })
                .await
                .map_err(|s| anyhow::anyhow!("receiving stock of {}: {}", product.id, s.message()))?;
            received += 1;
        }
    }
    println!("  stock      {received} line-up products received into the Shanghai bonded warehouse");

    // The festival, its channels, hosts and shows.
    let mut timetable = Timetable::new(operator(&suite.scheduling)?);
    let now = chrono::Utc::now();
    let today = now.with_timezone(&ZONE).date_naive();
    let campaign_id = format!("nianhuo-{}", today.format("%Y%m%d"));
    let end = today + chrono::Days::new(28);
    let campaign = scheduling::Campaign {
        title: Some(types::LocalizedText {
            zh_cn: "全国网上年货节".into(),
            en: "National Nianhuo Festival".into(),
            ..Default::default()
        }),
        organiser: "MOFCOM".into(),
        start_date: date(today),
        end_date: date(end),
        time_zone: ZONE.name().into(),
        ..Default::default()
    };
    timetable.campaign(&campaign_id, campaign).await?;
    for (id, platform, name, partner) in
        [("hema-sco", "hema", "盒马 上合好物", "hema"), ("douyin-sco", "douyin", "抖音 上合直播间", "douyin")]
    {
        timetable.channel(id, platform, name, partner).await?;
    }
    println!("  festival   {} … {} ({}), channels on Hema and Douyin", today, end, ZONE.name());
    let scale = |hours: f64| Duration::from_secs_f64(hours * 3600.0 / args.time_scale);
    // Setup takes a moment: the first show goes live a few seconds from now.
    let first = caravan_platform::time::Micros::from_datetime(now).plus(Duration::from_secs(4));
    let mut names = Vec::new();
    for (slot, line_up) in TIMETABLE.iter().zip(&line_ups) {
        let (host_id, host_name, title) = slot.host;
        let host = scheduling::Host {
            display_name: host_name.into(),
            title: title.into(),
            country: format!("countries/{}", slot.country.to_uppercase()),
            embassy: title.into(),
            ..Default::default()
        };
        timetable.host(host_id, host).await?;
        let start = first.plus(scale(slot.at));
        let show_end = start.plus(scale(1.0));
        let offers = line_up
            .iter()
            .enumerate()
            .map(|(i, p)| scheduling::Offer {
                product: format!("products/{}", p.id),
                show_price: Some(types::Money {
                    currency_code: "CNY".into(),
                    minor_units: 1990 + 500 * i64::try_from(i).unwrap_or(0),
                }),
                allocated_quantity: offer_units(names.len(), i),
                per_buyer_limit: 2,
                display_order: i32::try_from(i).unwrap_or(0),
            })
            .collect();
        let id = format!("{}-{run}", slot.country);
        let show = scheduling::Show {
            campaign: format!("campaigns/{campaign_id}"),
            channel: format!("channels/{}", slot.channel),
            host: format!("hosts/{host_id}"),
            title: text(slot.title),
            start_time: Some(timestamp_from_micros(start.0)),
            end_time: Some(timestamp_from_micros(show_end.0)),
            offers,
            ..Default::default()
        };
        timetable.show(&id, show).await.with_context(|| format!("the show {}", slot.title))?;
        let local = start.to_datetime().with_timezone(&ZONE);
        println!(
            "  show       {} ({})  {:<40} {} ({} specialties)",
            local.format("%H:%M:%S"),
            ZONE.name(),
            slot.title,
            host_name,
            line_up.len()
        );
        names.push((id, start, show_end));
    }

    let (show_id, start, show_end) = names.into_iter().next().context("the timetable has a first show")?;
    play(&suite, &args, &run, &show_id, (start, show_end), &line_ups[0]).await
}

/// The first show as a flash sale: buyers arrive over its first half, the
/// host pins each specialty in turn, most buyers pay; then the report.
async fn play(
    suite: &Suite,
    args: &DemoArgs,
    run: &str,
    show_id: &str,
    (start, end): (caravan_platform::time::Micros, caravan_platform::time::Micros),
    line_up: &[Product],
) -> anyhow::Result<()> {
    let show = format!("shows/{show_id}");
    let mut shows = SchedulingServiceClient::new(Authed::new(&suite.scheduling, Some(&suite.operator), None)?);
    let state = |shows: &mut SchedulingServiceClient<Authed>| {
        let mut shows = shows.clone();
        let name = show.clone();
        async move {
            shows
                .get_show(scheduling::GetShowRequest { name })
                .await
                .map(|s| s.into_inner().state())
                .map_err(|s| anyhow::anyhow!("reading the show: {}", s.message()))
        }
    };
    // The show clock puts it live at its start time.
    while state(&mut shows).await? != scheduling::show::State::Live {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let length = Duration::from_micros(u64::try_from(end.0 - start.0).unwrap_or(0));
    println!(
        "\n▶ {} is live: {} buyers on Hema for {:.0} s",
        line_up_title(show_id),
        args.buyers,
        length.as_secs_f64()
    );

    let progress = ProgressBar::new(args.buyers as u64);
    progress.set_style(
        ProgressStyle::with_template("  {spinner} [{elapsed_precise}] {bar:40} {pos}/{len} buyers  {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    // The host presents the specialties one after another.
    let pinning = {
        let mut shows = shows.clone();
        let progress = progress.clone();
        let (show, products) = (show.clone(), line_up.to_vec());
        let every = length / u32::try_from(products.len().max(1)).unwrap_or(1);
        tokio::spawn(async move {
            for p in products {
                let request = scheduling::PinProductRequest {
                    name: show.clone(),
                    product: format!("products/{}", p.id),
                    request_id: String::new(),
                };
                if shows.pin_product(request).await.is_err() {
                    break; // The show ended.
                }
                let line = format!("  📌 the host presents {}", p.title_en);
                if progress.is_hidden() {
                    println!("{line}");
                } else {
                    progress.println(line);
                }
                tokio::time::sleep(every).await;
            }
        })
    };

    let orders_client = OrdersServiceClient::new(Authed::new(&suite.orders, Some(&suite.hema), None)?);
    let counts: Arc<[AtomicU64; 4]> = Arc::new(Default::default()); // accepted, paid, sold out, limit
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(args.seed);
    // Buyers arrive over the first half of the show.
    let gap = length / 2 / u32::try_from(args.buyers).unwrap_or(u32::MAX);
    let mut buyers = tokio::task::JoinSet::new();
    for i in 0..args.buyers {
        // The stars sell best: the first products of the line-up are picked most.
        let pick = (rng.random::<f64>().powi(2) * line_up.len() as f64) as usize;
        let product = line_up[pick.min(line_up.len() - 1)].id.clone();
        let quantity = if rng.random_bool(0.3) { 2 } else { 1 };
        let pays = rng.random_bool(0.85);
        let (mut client, counts, progress, show, run) =
            (orders_client.clone(), counts.clone(), progress.clone(), show.clone(), run.to_owned());
        buyers.spawn(async move {
            let request = orders::PlaceOrderRequest {
                buyer: format!("buyer-{i:04}"),
                show,
                lines: vec![orders::PlaceOrderLine { product: format!("products/{product}"), quantity }],
                request_id: format!("demo-{run}-{i}"),
            };
            match client.place_order(request).await {
                Ok(order) => {
                    counts[0].fetch_add(1, Ordering::Relaxed);
                    if pays {
                        let pay = orders::ConfirmPaymentRequest {
                            name: order.into_inner().name,
                            payment_reference: format!("alipay-{run}-{i}"),
                            request_id: String::new(),
                        };
                        if client.confirm_payment(pay).await.is_ok() {
                            counts[1].fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
                Err(status) => {
                    use caravan_platform::error::{Reason, reason_of};
                    let slot = if reason_of(&status) == Some(Reason::PerBuyerLimit) { 3 } else { 2 };
                    counts[slot].fetch_add(1, Ordering::Relaxed);
                }
            }
            progress.inc(1);
            progress.set_message(format!(
                "{} placed, {} paid, {} refused (sold out)",
                counts[0].load(Ordering::Relaxed),
                counts[1].load(Ordering::Relaxed),
                counts[2].load(Ordering::Relaxed)
            ));
        });
        tokio::time::sleep(gap).await;
    }
    while buyers.join_next().await.is_some() {}
    progress.finish();
    let [placed, paid, sold_out, limited] = [0, 1, 2, 3].map(|i| counts[i].load(Ordering::Relaxed));
    println!(
        "  {placed} orders placed, {paid} paid; {sold_out} buyers found it sold out, {limited} hit the per-buyer limit"
    );
    // Wait out the show: the clock ends it and returns what is unsold.
    while state(&mut shows).await? == scheduling::show::State::Live {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    pinning.abort();

    let mut report_client = OrdersServiceClient::new(Authed::new(&suite.orders, Some(&suite.operator), None)?);
    let report = report_client
        .get_show_sales_report(orders::GetShowSalesReportRequest { show: show.clone() })
        .await
        .map_err(|s| anyhow::anyhow!("reading the sales report: {}", s.message()))?
        .into_inner();
    print_report(&report, line_up, start, args.time_scale);
    Ok(())
}

fn line_up_title(show_id: &str) -> &'static str {
    TIMETABLE.iter().find(|s| show_id.starts_with(s.country)).map_or("The show", |s| s.title)
}

fn yuan(minor: i64) -> String {
    format!("¥{}.{:02}", minor / 100, minor % 100)
}

/// The organiser's numbers of the show.
fn print_report(
    report: &orders::ShowSalesReport,
    line_up: &[Product],
    start: caravan_platform::time::Micros,
    scale: f64,
) {
    let titles: HashMap<String, &str> =
        line_up.iter().map(|p| (format!("products/{}", p.id), p.title_en.as_str())).collect();
    println!("\nSales report — {}", line_up_title(report.show.trim_start_matches("shows/")));
    println!("  {:<46} {:>5} {:>9} {:>12} {:>11}  sold out", "specialty", "paid", "awaiting", "revenue", "turned away");
    let mut by_order: BTreeMap<usize, &orders::ProductSales> = BTreeMap::new();
    for sales in &report.products {
        let position = line_up.iter().position(|p| format!("products/{}", p.id) == sales.product).unwrap_or(usize::MAX);
        by_order.insert(position, sales);
    }
    for sales in by_order.values() {
        let title = titles.get(&sales.product).copied().unwrap_or(sales.product.as_str());
        let revenue = sales.revenue_paid.as_ref().map_or(0, |m| m.minor_units);
        let sold_out = sales.sold_out_time.as_ref().and_then(micros_from_timestamp).map_or_else(
            || "—".to_owned(),
            |at| {
                // In festival time: how far into the one-hour show.
                let minutes = (at - start.0) as f64 / 60_000_000.0 * scale;
                format!("after {minutes:.0} min")
            },
        );
        println!(
            "  {:<46} {:>5} {:>9} {:>12} {:>11}  {sold_out}",
            title.chars().take(46).collect::<String>(),
            sales.units_paid,
            sales.units_awaiting_payment,
            yuan(revenue),
            sales.units_turned_away
        );
    }
    let paid: i64 = report.revenue_paid.iter().filter(|m| m.currency_code == "CNY").map(|m| m.minor_units).sum();
    let awaiting: i64 =
        report.revenue_awaiting_payment.iter().filter(|m| m.currency_code == "CNY").map(|m| m.minor_units).sum();
    println!(
        "  {} orders: {} paid, {} awaiting payment; {} units sold; revenue {} paid, {} awaiting",
        report.order_count,
        report.orders_paid,
        report.orders_awaiting_payment,
        report.units_paid,
        yuan(paid),
        yuan(awaiting)
    );
    for country in &report.countries {
        println!(
            "  {}: {} units paid, {} awaiting",
            country.country.trim_start_matches("countries/"),
            country.units_paid,
            country.units_awaiting_payment
        );
    }
}
