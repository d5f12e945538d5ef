//! `caravan loadgen`: the one measuring instrument. It drives a scenario (one
//! call or a short sequence, plus a check of the result) at a concurrency, or
//! at a fixed offered rate, and reports throughput, latency percentiles from an
//! HDR histogram, errors by gRPC code, and the CPU seconds the servers and the
//! load generator itself spent in the measured window. Baselines run in the
//! same invocation, so figures are ratios on a noisy shared machine.

pub mod baseline;
pub mod cpu;
pub mod engine;
pub mod report;
pub mod scenario;
pub mod storm;
mod suites;
pub mod svg;

use std::{path::PathBuf, sync::Arc, time::Duration};

use anyhow::Context as _;
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;

use crate::channel::Authed;

use self::{
    baseline::{EchoChild, EchoMode},
    engine::{LoadConfig, Measurement},
    report::{CpuUsed, Ratio, Report},
    scenario::Scenario,
};

/// A baseline to measure in the same run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Baseline {
    /// A bare tonic echo server (no middleware).
    Echo,
    /// The same echo through caravan's full server stack.
    EchoPlatform,
    /// The database's single-row conditional UPDATE rate (needs --database-url).
    Db,
}

/// `caravan loadgen` flags.
#[derive(Debug, Clone, clap::Args)]
pub struct LoadgenArgs {
    /// Scenario to drive against a running suite: `read` (GetProduct),
    /// `list` (the first page of ListProducts, see --list-country),
    /// `reserve` (ReserveStock of one unit of one hot product, checked for
    /// oversell; --key must be a service key, see --operator-key) or `order`
    /// (PlaceOrder of one unit of one hot product in a live show, through
    /// all four services, checked against the sales report and inventory;
    /// --key must be a partner key, see --operator-key) or `storm` (the
    /// sell-out storm: `order` until --stock is sold, measured apart, then
    /// --duration of buyers pressing buy on a sold-out offer, with
    /// --storm-cancel orders cancelled midway; see --pg-stats).
    #[arg(long)]
    pub scenario: Option<String>,
    /// For `list`: filter by this country (`countries/XX`).
    #[arg(long, default_value = "")]
    pub list_country: String,
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
    /// For `reserve` and `order`: units of the hot product received (and,
    /// for `order`, offered in the show) before the run; fewer than the
    /// calls makes it sell out mid-run.
    #[arg(long, default_value_t = 1_000_000_000)]
    pub stock: i64,
    /// API key for the scenario's calls.
    #[arg(long, env = "CARAVAN_LOADGEN_API_KEY", hide_env_values = true)]
    pub key: Option<String>,
    /// Operator key for a scenario's setup (`reserve` receives its stock;
    /// `order` also creates the product and its show).
    #[arg(long, env = "CARAVAN_LOADGEN_OPERATOR_KEY", hide_env_values = true)]
    pub operator_key: Option<String>,
    /// PEM CA to verify the suite's TLS certificates (turns TLS on).
    #[arg(long)]
    pub tls_ca: Option<PathBuf>,
    /// Baselines measured in the same run (repeatable).
    #[arg(long = "baseline", value_enum)]
    pub baselines: Vec<Baseline>,
    /// Database of the `db` baseline: sqlite://… or postgres://….
    #[arg(long)]
    pub database_url: Option<String>,
    /// Calls in flight at once.
    #[arg(long, default_value_t = 32)]
    pub concurrency: usize,
    /// Measured calls per run (default: run for --duration).
    #[arg(long, conflicts_with = "duration")]
    pub count: Option<u64>,
    /// Measured window per run, e.g. 10s.
    #[arg(long, value_parser = humantime::parse_duration)]
    pub duration: Option<Duration>,
    /// Unmeasured warm-up before each run.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "2s")]
    pub warmup: Duration,
    /// Open loop: offer this many calls per second whatever the latency.
    #[arg(long)]
    pub rate: Option<f64>,
    /// Client connections (HTTP/2 channels) to spread calls over.
    #[arg(long, default_value_t = 4)]
    pub channels: usize,
    /// Server processes whose CPU the scenario is charged (repeatable).
    #[arg(long = "server-pid")]
    pub server_pids: Vec<u32>,
    /// For `storm`: orders cancelled midway through the storm, whose units
    /// must sell again.
    #[arg(long, default_value_t = 20)]
    pub storm_cancel: usize,
    /// For `storm` against a suite on PostgreSQL: a URL of that server (any
    /// database on it, e.g. postgres://postgres@127.0.0.1:5432/postgres);
    /// each phase then reports the suite's transactions per call.
    #[arg(long)]
    pub pg_stats: Option<String>,
    /// With --pg-stats: the suite's databases' name prefix (`<prefix>_<service>`,
    /// as `caravan up --postgres-prefix`).
    #[arg(long, default_value = "caravan")]
    pub pg_prefix: String,
    /// Print figures as JSON on stdout.
    #[arg(long)]
    pub json: bool,
    /// Draw throughput and latency over time to this SVG file.
    #[arg(long)]
    pub svg: Option<PathBuf>,
    /// Print every run's ratios to the first baseline (or the scenario's to each baseline).
    #[arg(long)]
    pub compare: bool,
    /// The cost of tracing: run the scenario against two `caravan up` suites
    /// of this binary's own (temporary data, free ports, no rate limit), one
    /// exporting its sampled spans over OTLP/gRPC to a receiver in the load
    /// generator, one not tracing, and compare them per server CPU-second.
    #[arg(long)]
    pub tracing_cost: bool,
    /// With --tracing-cost: the share of traces the traced suite samples
    /// (`parentbased_traceidratio`; 1 is `always_on`). Production samples 0.1.
    #[arg(long, default_value_t = 1.0, requires = "tracing_cost", value_parser = ratio)]
    pub tracing_ratio: f64,
    /// With --tracing-cost: trace through the standard tracing-opentelemetry
    /// bridge instead of caravan's span layer (a binary built with
    /// `--features bridge-comparison`).
    #[arg(long, requires = "tracing_cost")]
    pub tracing_bridge: bool,
    /// The cost of a transaction pooler: run the scenario against two
    /// `caravan up` suites of this binary's own on the --suite-postgres
    /// server, one reaching it directly and one through the transaction-
    /// pooling PgBouncer at this URL (CARAVAN_DB_POOLER=transaction), and
    /// compare them per server CPU-second, in latency, and in database
    /// transactions per call (pg_stat_database).
    #[arg(long, requires = "suite_postgres", conflicts_with = "tracing_cost")]
    pub pooler_cost: Option<String>,
    /// With --tracing-cost or --pooler-cost: measured rounds per suite, alternating between
    /// them (off, on, on, off, …) so the machine's drift hits both alike;
    /// each round lasts --duration (or --count).
    #[arg(long, default_value_t = 4)]
    pub rounds: usize,
    /// With --tracing-cost: the suites keep their data on this PostgreSQL
    /// server (databases `caravan_lg_off_*` and `caravan_lg_on_*`, made
    /// afresh) instead of SQLite files. With --pooler-cost: the server
    /// (databases `caravan_lg_direct_*` and `caravan_lg_pooled_*`).
    #[arg(long)]
    pub suite_postgres: Option<String>,
}

/// Everything `--json` prints.
#[derive(Debug, Serialize)]
pub struct Output {
    /// One per run, baselines first.
    pub reports: Vec<Report>,
    /// `--compare` lines.
    pub ratios: Vec<Ratio>,
}

/// Runs what the flags ask for and prints the figures.
pub async fn run(args: LoadgenArgs) -> anyhow::Result<Output> {
    anyhow::ensure!(
        args.scenario.is_some() || !args.baselines.is_empty(),
        "nothing to run: give --scenario and/or --baseline"
    );
    anyhow::ensure!(args.concurrency > 0, "--concurrency must be at least 1");
    let config = LoadConfig {
        concurrency: args.concurrency,
        count: args.count,
        duration: if args.count.is_some() { None } else { Some(args.duration.unwrap_or(Duration::from_secs(10))) },
        warmup: args.warmup,
        rate: args.rate,
    };
    let mut runs: Vec<(Report, Measurement)> = Vec::new();
    for baseline in &args.baselines {
        runs.push(match baseline {
            Baseline::Echo | Baseline::EchoPlatform => {
                let mode = if *baseline == Baseline::Echo { EchoMode::Bare } else { EchoMode::Platform };
                let key = caravan_platform::auth::keys::generate();
                let server = EchoChild::spawn(mode, &key)?;
                let channels = Authed::many(&server.addr.to_string(), Some(&key), None, args.channels)?;
                let name = if mode == EchoMode::Bare { "baseline echo" } else { "baseline echo-platform" };
                measure(name, Arc::new(scenario::Echo::new(channels)), &config, ServerCpu::Pids(vec![server.pid()]))
                    .await?
            }
            Baseline::Db => {
                let url = args.database_url.as_deref().context("--baseline db needs --database-url")?;
                let mut database = caravan_platform::config::DatabaseConfig::new(url);
                database.max_connections = u32::try_from(args.concurrency).unwrap_or(u32::MAX);
                let db = caravan_platform::db::connect(&database).await.context("connecting to --database-url")?;
                let scenario = Arc::new(scenario::DbDecrement::prepare(db, i64::MAX / 2).await?);
                // PostgreSQL on this machine is charged by its backends' CPU;
                // SQLite runs inside the generator, so it has no server CPU.
                let server = if url.starts_with("postgres") { ServerCpu::Command("postgres") } else { ServerCpu::None };
                let result = measure("baseline db", scenario.clone(), &config, server).await;
                scenario.cleanup().await?;
                result?
            }
        });
    }
    let ca = args.tls_ca.as_ref().map(std::fs::read_to_string).transpose()?;
    let comparing = args.tracing_cost || args.pooler_cost.is_some();
    match (&args.scenario, comparing) {
        (Some(name), false) => {
            let target = Target {
                catalog: args.catalog.clone(),
                scheduling: args.scheduling.clone(),
                inventory: args.inventory.clone(),
                orders: args.orders.clone(),
                key: args.key.clone(),
                operator_key: args.operator_key.clone(),
                ca,
                server: ServerCpu::Pids(args.server_pids.clone()),
            };
            if name == "storm" {
                runs.extend(run_storm(&target, &args, &config).await?);
            } else {
                runs.push(run_scenario(name, name, &target, &args, &config).await?);
            }
        }
        (Some(name), true) if args.tracing_cost => runs.extend(tracing_cost(name, &args, &config).await?),
        (Some(name), true) => runs.extend(pooler_cost(name, &args, &config).await?),
        (None, true) => anyhow::bail!("--tracing-cost and --pooler-cost need a --scenario"),
        (None, false) => {}
    }

    let reports: Vec<Report> = runs.iter().map(|(r, _)| r.clone()).collect();
    let mut ratios = Vec::new();
    if comparing && reports.len() >= 2 {
        // Tracing on against off, pooled against direct, whatever else ran.
        let (on, rest) = reports.split_last().context("reports")?;
        ratios.push(Ratio::between(on, rest.last().context("reports")?));
    } else if args.compare && reports.len() > 1 {
        match args.scenario {
            Some(_) => {
                // Every scenario run (the storm has two) against each baseline.
                let (baselines, scenarios) = reports.split_at(args.baselines.len().min(reports.len()));
                for scenario in scenarios {
                    ratios.extend(baselines.iter().map(|b| Ratio::between(scenario, b)));
                }
            }
            None => ratios.extend(reports[1..].iter().map(|r| Ratio::between(r, &reports[0]))),
        }
    }
    if let Some(path) = &args.svg {
        let series: Vec<(String, &Measurement)> = runs.iter().map(|(r, m)| (r.name.clone(), m)).collect();
        svg::draw(path, &series)?;
    }
    Ok(Output { reports, ratios })
}

/// The suite a scenario drives, and who is charged its CPU.
#[derive(Debug, Clone)]
pub struct Target {
    /// Catalog's address.
    pub catalog: String,
    /// Scheduling's address.
    pub scheduling: String,
    /// Inventory's address.
    pub inventory: String,
    /// Orders' address.
    pub orders: String,
    /// Key of the scenario's calls.
    pub key: Option<String>,
    /// Operator key of its setup.
    pub operator_key: Option<String>,
    /// PEM CA of the suite's TLS.
    pub ca: Option<String>,
    server: ServerCpu,
}

/// `--tracing-cost`: scenario `name` against two suites of this binary's
/// own, one exporting the spans of `--tracing-ratio` of its traces to a
/// receiver in the generator and one not tracing, both running throughout, measured in alternating rounds; answers
/// each suite's rounds combined, tracing off first.
async fn tracing_cost(
    name: &str,
    args: &LoadgenArgs,
    config: &LoadConfig,
) -> anyhow::Result<Vec<(Report, Measurement)>> {
    anyhow::ensure!(
        !args.tracing_bridge || cfg!(feature = "bridge-comparison"),
        "--tracing-bridge needs a binary built with --features bridge-comparison"
    );
    let sink = suites::SpanSink::start().await?;
    let server = args.suite_postgres.as_deref();
    let tracing =
        crate::spawned::Tracing { collector: sink.addr(), ratio: args.tracing_ratio, bridge: args.tracing_bridge };
    let off = crate::spawned::SpawnedSuite::launch(None, server.map(|url| (url, "caravan_lg_off")), None).await?;
    let on =
        crate::spawned::SpawnedSuite::launch(Some(tracing), server.map(|url| (url, "caravan_lg_on")), None).await?;
    let spans_before = sink.spans();
    let traced = format!(
        "tracing {} % ({})",
        args.tracing_ratio * 100.0,
        if args.tracing_bridge { "tracing-opentelemetry" } else { "caravan's layer" }
    );
    let variants = [
        Variant { label: format!("{name}, tracing off"), target: suites::target(&off, name), counters: None },
        Variant { label: format!("{name}, {traced}"), target: suites::target(&on, name), counters: None },
    ];
    let runs = alternate(name, variants, &format!("{traced} / off"), args, config).await?;
    let exported = sink.spans() - spans_before;
    off.stop().await;
    on.stop().await;
    anyhow::ensure!(exported > 0, "the traced suite exported no spans");
    eprintln!("{} spans exported by the traced suite to the load generator's OTLP receiver", exported);
    Ok(runs)
}

/// `--pooler-cost`: scenario `name` against two suites on the
/// `--suite-postgres` server, one reaching it directly and one through the
/// transaction-pooling PgBouncer of `--pooler-cost`, measured in alternating
/// rounds; answers each suite's rounds combined, direct first, and prints
/// each suite's database transactions per call.
async fn pooler_cost(
    name: &str,
    args: &LoadgenArgs,
    config: &LoadConfig,
) -> anyhow::Result<Vec<(Report, Measurement)>> {
    let server = args.suite_postgres.as_deref().context("--pooler-cost needs --suite-postgres")?;
    let pooler = args.pooler_cost.as_deref().context("--pooler-cost")?;
    let (direct_prefix, pooled_prefix) = ("caravan_lg_direct", "caravan_lg_pooled");
    let direct = crate::spawned::SpawnedSuite::launch(None, Some((server, direct_prefix)), None).await?;
    let pooled = crate::spawned::SpawnedSuite::launch(None, Some((server, pooled_prefix)), Some(pooler)).await?;
    let variants = [
        Variant {
            label: format!("{name}, PostgreSQL directly"),
            target: suites::target(&direct, name),
            counters: Some(storm::PgCounters::connect(server, direct_prefix).await?),
        },
        Variant {
            label: format!("{name}, through PgBouncer"),
            target: suites::target(&pooled, name),
            counters: Some(storm::PgCounters::connect(server, pooled_prefix).await?),
        },
    ];
    let runs = alternate(name, variants, "through PgBouncer / directly", args, config).await?;
    direct.stop().await;
    pooled.stop().await;
    Ok(runs)
}

/// One of the two suites [`alternate`] compares.
struct Variant {
    label: String,
    target: Target,
    /// Its databases' transaction counters, when it runs on PostgreSQL.
    counters: Option<storm::PgCounters>,
}

/// Measures `name` against both variants in `--rounds` alternating rounds
/// (A, B, then B, A, …, so the machine's drift hits both alike), after one
/// unmeasured round each; prints how the rounds agree (`what`: B over A)
/// and, where counters are given, each variant's database transactions per
/// call over all its rounds (the background work of the time included).
async fn alternate(
    name: &str,
    variants: [Variant; 2],
    what: &str,
    args: &LoadgenArgs,
    config: &LoadConfig,
) -> anyhow::Result<Vec<(Report, Measurement)>> {
    anyhow::ensure!(args.rounds > 0, "--rounds must be at least 1");
    // Warm both up (connections, caches, the scenario's setup), then
    // measure rounds without a warm-up of their own, so every call of a
    // round is counted and the counters' delta is the rounds' alone.
    let warm_up = LoadConfig {
        count: None,
        duration: Some(config.warmup.max(Duration::from_secs(1))),
        warmup: Duration::ZERO,
        ..config.clone()
    };
    for variant in &variants {
        run_scenario(name, &format!("{}, warm-up", variant.label), &variant.target, args, &warm_up).await?;
    }
    let measured = LoadConfig { warmup: Duration::ZERO, ..config.clone() };
    let mut before = Vec::new();
    for variant in &variants {
        before.push(match &variant.counters {
            Some(counters) => Some(counters.settled().await?),
            None => None,
        });
    }
    let mut rounds: [Vec<(Report, Measurement)>; 2] = [Vec::new(), Vec::new()];
    for round in 0..args.rounds {
        let order = if round % 2 == 0 { [0, 1] } else { [1, 0] };
        for i in order {
            let variant = &variants[i];
            let label = format!("{}, round {}", variant.label, round + 1);
            let run = run_scenario(name, &label, &variant.target, args, &measured).await?;
            if let Some(rate) = run.0.calls_per_server_cpu_second {
                eprintln!("{}: {:.0} ok/s, {rate:.0} calls per server CPU-second", run.0.name, run.0.throughput);
            }
            rounds[i].push(run);
        }
    }
    for ((variant, before), runs) in variants.iter().zip(before).zip(&rounds) {
        if let (Some(counters), Some(before)) = (&variant.counters, before) {
            let after = counters.settled().await?;
            let calls: u64 = runs.iter().map(|(report, _)| report.calls).sum();
            if calls > 0 {
                let per_call = (after.transactions - before.transactions) as f64 / calls as f64;
                eprintln!("{}: {per_call:.2} database transactions per call", variant.label);
            }
        }
    }
    let rates = |runs: &[(Report, Measurement)]| -> Option<Vec<f64>> {
        runs.iter().map(|(report, _)| report.calls_per_server_cpu_second).collect()
    };
    if let (Some(a), Some(b)) = (rates(&rounds[0]), rates(&rounds[1]))
        && let Some(spread) = RoundSpread::of(&a, &b)
    {
        eprintln!("per round, {what} per server CPU-second: {spread}");
    }
    let [a_runs, b_runs] = rounds;
    let [a, b] = variants;
    Ok(vec![combine(&a.label, a_runs), combine(&b.label, b_runs)])
}

/// How the rounds of an A/B comparison agree: each round's ratio of calls
/// per server CPU-second, B over A (the two ran back to back), by median
/// and range. The machine's noise shows here; the combined ratio
/// alone hides it.
#[derive(Debug, Clone, PartialEq)]
struct RoundSpread {
    ratios: Vec<f64>,
}

impl RoundSpread {
    /// `None` unless every round has both rates.
    fn of(a: &[f64], b: &[f64]) -> Option<RoundSpread> {
        if a.is_empty() || a.len() != b.len() || a.iter().any(|r| *r <= 0.0) {
            return None;
        }
        Some(RoundSpread { ratios: b.iter().zip(a).map(|(b, a)| b / a).collect() })
    }

    fn median(&self) -> f64 {
        let mut sorted = self.ratios.clone();
        sorted.sort_by(f64::total_cmp);
        let mid = sorted.len() / 2;
        if sorted.len().is_multiple_of(2) { (sorted[mid - 1] + sorted[mid]) / 2.0 } else { sorted[mid] }
    }
}

impl std::fmt::Display for RoundSpread {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let min = self.ratios.iter().copied().fold(f64::INFINITY, f64::min);
        let max = self.ratios.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let each: Vec<String> = self.ratios.iter().map(|r| format!("{r:.3}")).collect();
        write!(f, "median ×{:.3}, ×{min:.3}–{max:.3} ({})", self.median(), each.join(", "))
    }
}

/// One report of several runs of one scenario: their calls, latencies, errors
/// and CPU added up.
fn combine(name: &str, runs: Vec<(Report, Measurement)>) -> (Report, Measurement) {
    let mut runs = runs.into_iter();
    let Some((first, mut merged)) = runs.next() else {
        return (Report::new(name, &Measurement::default(), CpuUsed::default(), None), Measurement::default());
    };
    let (mut server, mut client) = (first.server_cpu_seconds, first.client_cpu_seconds);
    let mut correctness = first.correctness;
    for (report, measurement) in runs {
        merged.elapsed += measurement.elapsed;
        if let Err(e) = merged.latency.add(&measurement.latency) {
            tracing::warn!(error = %e, "merging latency histograms");
        }
        merged.ok += measurement.ok;
        for (code, n) in measurement.errors {
            *merged.errors.entry(code).or_insert(0) += n;
        }
        merged.timeline.extend(measurement.timeline);
        server = server.zip(report.server_cpu_seconds).map(|(a, b)| a + b);
        client = client.zip(report.client_cpu_seconds).map(|(a, b)| a + b);
        correctness = report.correctness.or(correctness);
    }
    let cpu = CpuUsed {
        server: server.map(Duration::from_secs_f64),
        client: client.map(Duration::from_secs_f64),
        cores: std::thread::available_parallelism().map(usize::from).unwrap_or(1),
        offered_rate: None,
    };
    (Report::new(name, &merged, cpu, correctness), merged)
}

/// Prepares scenario `name` against `target` and measures it as `label`.
async fn run_scenario(
    name: &str,
    label: &str,
    target: &Target,
    args: &LoadgenArgs,
    config: &LoadConfig,
) -> anyhow::Result<(Report, Measurement)> {
    let ca = target.ca.as_deref();
    let channels = |addr: &str| Authed::many(addr, target.key.as_deref(), ca, args.channels);
    let server = target.server.clone();
    match name {
        "read" => {
            let scenario = scenario::Read::prepare(channels(&target.catalog)?).await?;
            measure(label, Arc::new(scenario), config, server).await
        }
        "list" => {
            let scenario = scenario::List::new(channels(&target.catalog)?, args.list_country.clone());
            measure(label, Arc::new(scenario), config, server).await
        }
        "reserve" => {
            anyhow::ensure!(args.stock > 0, "--stock must be at least 1");
            let operator =
                target.operator_key.as_deref().context("`reserve` needs --operator-key to receive its stock")?;
            let setup = Authed::new(&target.inventory, Some(operator), ca)?;
            let scenario = scenario::Reserve::prepare(channels(&target.inventory)?, setup, args.stock).await?;
            measure(label, Arc::new(scenario), config, server).await
        }
        "order" => {
            anyhow::ensure!(args.stock > 0, "--stock must be at least 1");
            let operator = target.operator_key.as_deref().context("`order` needs --operator-key for its setup")?;
            let setup = scenario::OrderSetup {
                catalog: Authed::new(&target.catalog, Some(operator), ca)?,
                scheduling: Authed::new(&target.scheduling, Some(operator), ca)?,
                inventory: Authed::new(&target.inventory, Some(operator), ca)?,
                orders: Authed::new(&target.orders, Some(operator), ca)?,
            };
            let scenario = scenario::Order::prepare(channels(&target.orders)?, setup, args.stock).await?;
            measure(label, Arc::new(scenario), config, server).await
        }
        other => anyhow::bail!("unknown scenario `{other}` (known: read, list, reserve, order, storm)"),
    }
}

/// `--scenario storm` against `target`: its show set up as `order`'s, then
/// both phases.
async fn run_storm(
    target: &Target,
    args: &LoadgenArgs,
    config: &LoadConfig,
) -> anyhow::Result<Vec<(Report, Measurement)>> {
    anyhow::ensure!(args.stock > 0, "--stock must be at least 1");
    anyhow::ensure!(
        args.stock < 10_000_000,
        "--stock is what the storm sells before it storms: give a show's stock (say 1000), not the default"
    );
    let ca = target.ca.as_deref();
    let operator = target.operator_key.as_deref().context("`storm` needs --operator-key for its setup")?;
    let setup = scenario::OrderSetup {
        catalog: Authed::new(&target.catalog, Some(operator), ca)?,
        scheduling: Authed::new(&target.scheduling, Some(operator), ca)?,
        inventory: Authed::new(&target.inventory, Some(operator), ca)?,
        orders: Authed::new(&target.orders, Some(operator), ca)?,
    };
    let channels = Authed::many(&target.orders, target.key.as_deref(), ca, args.channels)?;
    let order = scenario::Order::prepare(channels, setup, args.stock).await?;
    let options = storm::StormOptions {
        stock: args.stock,
        cancel: args.storm_cancel,
        pg_stats: args.pg_stats.clone().map(|url| (url, args.pg_prefix.clone())),
        services: storm::services(&target.catalog, &target.scheduling, &target.inventory, &target.orders),
    };
    storm::run(order, options, config, target.server.clone()).await
}

/// Whose CPU a run is charged.
#[derive(Debug, Clone)]
pub(crate) enum ServerCpu {
    /// Nobody known.
    None,
    /// These processes.
    Pids(Vec<u32>),
    /// Every process with this command name.
    Command(&'static str),
}

impl ServerCpu {
    fn sample(&self) -> Option<std::collections::HashMap<u32, Duration>> {
        match self {
            ServerCpu::None => None,
            ServerCpu::Pids(pids) if pids.is_empty() => None,
            ServerCpu::Pids(pids) => pids.iter().map(|pid| Some((*pid, cpu::cpu_time(*pid)?))).collect(),
            ServerCpu::Command(name) => Some(cpu::by_command(name)).filter(|m| !m.is_empty()),
        }
    }
}

pub(crate) async fn measure<S: Scenario>(
    name: &str,
    scenario: Arc<S>,
    config: &LoadConfig,
    server: ServerCpu,
) -> anyhow::Result<(Report, Measurement)> {
    let progress = match config.count {
        Some(count) => ProgressBar::new(count),
        None => ProgressBar::new_spinner(),
    };
    progress.set_style(
        ProgressStyle::with_template("{prefix:>24} {spinner} [{elapsed_precise}] {wide_bar} {pos} calls ({per_sec})")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    progress.set_prefix(name.to_owned());
    progress.enable_steady_tick(Duration::from_millis(200));

    // CPU is sampled over the measured window only: warm-up first.
    let warmup_config = LoadConfig { count: None, duration: Some(Duration::ZERO), ..config.clone() };
    if !config.warmup.is_zero() {
        engine::run(scenario.clone(), &warmup_config, None).await;
    }
    let measured_config = LoadConfig { warmup: Duration::ZERO, ..config.clone() };
    let server_before = server.sample();
    let client_before = cpu::own_cpu_time();
    let measurement = engine::run(scenario.clone(), &measured_config, Some(progress.clone())).await;
    let server_after = server.sample();
    let client_after = cpu::own_cpu_time();
    progress.finish_and_clear();

    let cpu = CpuUsed {
        server: server_before.zip(server_after).map(|(b, a)| cpu::used_between(&b, &a)),
        client: client_before.zip(client_after).map(|(b, a)| a.saturating_sub(b)),
        cores: std::thread::available_parallelism().map(usize::from).unwrap_or(1),
        offered_rate: config.rate,
    };
    let correctness = scenario.check().await?;
    Ok((Report::new(name, &measurement, cpu, correctness), measurement))
}

/// A share in (0, 1].
fn ratio(raw: &str) -> Result<f64, String> {
    raw.parse::<f64>().ok().filter(|r| *r > 0.0 && *r <= 1.0).ok_or_else(|| format!("`{raw}` is not a share in (0, 1]"))
}

#[cfg(test)]
mod tests {
    use super::RoundSpread;

    #[test]
    fn rounds_are_compared_pairwise_by_median_and_range() {
        let spread = RoundSpread::of(&[800.0, 1000.0, 900.0, 500.0], &[720.0, 950.0, 900.0, 400.0]).unwrap();
        // ×0.90, ×0.95, ×1.0, ×0.80: the median of an even count is the mean of the middle two.
        assert!((spread.median() - 0.925).abs() < 1e-9, "{spread}");
        let printed = spread.to_string();
        assert!(printed.contains("median ×0.925, ×0.800–1.000 (0.900, 0.950, 1.000, 0.800)"), "{printed}");
        let odd = RoundSpread::of(&[100.0, 100.0, 100.0], &[90.0, 70.0, 95.0]).unwrap();
        assert!((odd.median() - 0.9).abs() < 1e-9);
    }

    #[test]
    fn rounds_missing_a_rate_give_no_spread() {
        assert_eq!(RoundSpread::of(&[], &[]), None);
        assert_eq!(RoundSpread::of(&[800.0, 900.0], &[700.0]), None, "a round without its pair");
        assert_eq!(RoundSpread::of(&[0.0], &[700.0]), None, "no CPU charged");
    }
}
