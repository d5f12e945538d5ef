//! `caravan`: run the whole suite in one process (`up`), one service as in
//! production (`serve`), or only its migrations (`serve <service> migrate`).

use std::{collections::HashMap, net::SocketAddr, path::PathBuf, process::ExitCode, sync::Arc};

#[cfg(feature = "loadgen")]
use caravan::loadgen::{
    LoadgenArgs,
    baseline::{self, EchoMode},
};
use caravan::{
    keys,
    suite::{self, Suite},
};
use caravan_platform::{
    CancellationToken,
    auth::{Kind, Principal},
    config::{
        Authentication, ChaosSettings, ConfigError, DataDir, EXIT_CONFIG, LimitSettings, LogConfig, MigrateMode,
        NoSettings, OwnSettings, ServiceConfig, ServiceKind, ServiceSettings, refusal, variables_table,
    },
    metrics::MetricsServer,
    shutdown,
    telemetry::{OtelSettings, Telemetry},
};
use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

/// mimalloc rather than the C library's allocator: a call allocates many
/// small, short-lived objects (messages, rows, spans) on one thread and frees
/// them on another, where glibc's malloc took about a tenth of the CPU of an
/// order under load.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// caravan: the backend of a cross-border livestream shopping festival.
#[derive(Debug, Parser)]
#[command(name = "caravan", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    #[command(flatten)]
    log: LogConfig,
    #[command(flatten)]
    otel: OtelSettings,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run all four services in one process on loopback, each with its own
    /// SQLite file, calling each other over real gRPC. For development.
    Up(UpArgs),
    /// Run one service configured by CARAVAN_* environment variables or
    /// their flags (what the Kubernetes images run).
    #[command(subcommand)]
    Serve(Box<ServeCommand>),
    /// Manage API keys.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Drive load against a running suite and/or baselines, and report
    /// throughput, latency percentiles, errors and CPU per call.
    #[cfg(feature = "loadgen")]
    Loadgen(Box<LoadgenArgs>),
    /// Catalog tools.
    #[command(subcommand)]
    Catalog(CatalogCommand),
    /// Replay the 2022 National Nianhuo Festival from now: load the catalog,
    /// stock, the festival, its channels and shows, then play the first
    /// show as a flash sale and print its sales report.
    Demo(Box<caravan::demo::DemoArgs>),
    /// An echo server for the load generator's baselines (started by it).
    #[cfg(feature = "loadgen")]
    #[command(hide = true)]
    EchoServer {
        /// bare or platform.
        #[arg(long, value_enum)]
        mode: EchoMode,
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:0")]
        addr: SocketAddr,
    },
}

#[derive(Debug, Subcommand)]
enum ServeCommand {
    /// Countries and products.
    Catalog(Serve<NoSettings>),
    /// Campaigns, channels, hosts and shows.
    Scheduling(Serve<caravan_scheduling::settings::Settings>),
    /// Warehouses, stock, allocations and reservations.
    Inventory(Serve<caravan_inventory::settings::Settings>),
    /// Orders and sales reports.
    Orders(Serve<caravan_orders::settings::Settings>),
}

/// One service's settings: every service's, then its own.
#[derive(Debug, clap::Args)]
struct Serve<S: clap::Args> {
    /// `migrate`: apply the service's pending migrations and exit.
    #[arg(value_parser = ["migrate"])]
    action: Option<String>,
    /// Accept every call without a key, as an operator. Development only;
    /// without it, `serve` refuses to start with no CARAVAN_KEYS_FILE.
    #[arg(long)]
    insecure_no_auth: bool,
    #[command(flatten)]
    settings: ServiceSettings,
    #[command(flatten)]
    own: S,
}

#[derive(Debug, Subcommand)]
enum CatalogCommand {
    /// Add synthetic products, to measure reads at a large catalog size
    /// (ids `zz-synthetic-…`; never on a real festival's catalog).
    Fill {
        /// How many.
        #[arg(long)]
        count: u64,
        /// Catalog's address.
        #[arg(long, default_value = "127.0.0.1:50051")]
        catalog: String,
        /// An operator's API key.
        #[arg(long, env = "CARAVAN_API_KEY", hide_env_values = true)]
        key: String,
    },
    /// Write the festival's catalog dataset (JSON Lines) made by the seeded
    /// generator; the repository ships the output of the default seed.
    Dataset {
        /// Generator seed.
        #[arg(long, default_value_t = caravan::dataset::SEED)]
        seed: u64,
        /// Output file (default: standard output).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Load products from a JSON Lines (.jsonl) or CSV (.csv) file into a
    /// running catalog, upserting by id; bad rows are reported by line.
    Import {
        /// The file.
        file: PathBuf,
        /// Catalog's address.
        #[arg(long, default_value = "127.0.0.1:50051")]
        catalog: String,
        /// An operator's API key (default: the operator of ./data/dev-keys.txt).
        #[arg(long, env = "CARAVAN_API_KEY", hide_env_values = true)]
        key: Option<String>,
        /// Rows per call.
        #[arg(long, default_value_t = 500)]
        batch: usize,
        /// Create new products ACTIVE (default DRAFT).
        #[arg(long)]
        activate: bool,
    },
}

#[derive(Debug, Subcommand)]
enum KeysCommand {
    /// Create a key: prints it once; only its SHA-256 hash is stored.
    Create {
        /// partner, operator or service.
        #[arg(long)]
        kind: Kind,
        /// For partner keys: the partner whose data the key may see (e.g. hema).
        #[arg(long)]
        partner: Option<String>,
        /// The principal id in logs, traces and rate limits (default: generated).
        #[arg(long)]
        id: Option<String>,
        /// Append the hash line to this keys file (else it is printed to add by hand).
        #[arg(long, env = "CARAVAN_KEYS_FILE")]
        keys_file: Option<PathBuf>,
    },
}

#[derive(Debug, clap::Args)]
struct UpArgs {
    #[command(flatten)]
    data_dir: DataDir,
    /// Address the four servers listen on.
    #[arg(long, env = "CARAVAN_UP_HOST", default_value = "127.0.0.1")]
    host: std::net::IpAddr,
    /// Port of catalog.
    #[arg(long, env = "CARAVAN_CATALOG_PORT", default_value_t = ServiceKind::Catalog.default_port())]
    catalog_port: u16,
    /// Port of scheduling.
    #[arg(long, env = "CARAVAN_SCHEDULING_PORT", default_value_t = ServiceKind::Scheduling.default_port())]
    scheduling_port: u16,
    /// Port of inventory.
    #[arg(long, env = "CARAVAN_INVENTORY_PORT", default_value_t = ServiceKind::Inventory.default_port())]
    inventory_port: u16,
    /// Port of orders.
    #[arg(long, env = "CARAVAN_ORDERS_PORT", default_value_t = ServiceKind::Orders.default_port())]
    orders_port: u16,
    /// Port of the Prometheus /metrics endpoint (all four services, a
    /// `service` label each).
    #[arg(long, env = "CARAVAN_METRICS_PORT", default_value_t = 9464)]
    metrics_port: u16,
    /// Serve no /metrics endpoint.
    #[arg(long)]
    no_metrics: bool,
    /// Keep each service's data in its own database `caravan_<service>` on
    /// this PostgreSQL server (created if missing) instead of SQLite files,
    /// e.g. postgres://postgres@127.0.0.1:5432.
    #[arg(long, env = "CARAVAN_UP_POSTGRES")]
    postgres: Option<String>,
    /// With --postgres: the databases' name prefix (`<prefix>_<service>`).
    #[arg(long, default_value = "caravan", value_parser = database_prefix)]
    postgres_prefix: String,
    /// With --postgres: the services reach their databases through this
    /// transaction-pooling PgBouncer in front of that server (as the prod
    /// overlay runs), e.g. postgres://postgres@127.0.0.1:6432.
    #[arg(long, requires = "postgres")]
    postgres_pooler: Option<String>,
    /// Each service's limits (lift the rate limit to measure a flash sale
    /// beyond one partner's share).
    #[command(flatten)]
    limits: LimitSettings,
    #[command(flatten)]
    own: suite::OwnSettings,
    /// Fault-injection drills, for rehearsing on a laptop (one drill file
    /// for the four services: each applies the faults naming it).
    #[command(flatten)]
    chaos: ChaosSettings,
}

/// A prefix of plain PostgreSQL database names.
fn database_prefix(raw: &str) -> Result<String, String> {
    let plain = !raw.is_empty()
        && raw.len() <= 40
        && raw.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if plain { Ok(raw.to_owned()) } else { Err("1 to 40 of a-z, 0-9 and _".to_owned()) }
}

impl UpArgs {
    fn port(&self, kind: ServiceKind) -> u16 {
        match kind {
            ServiceKind::Catalog => self.catalog_port,
            ServiceKind::Scheduling => self.scheduling_port,
            ServiceKind::Inventory => self.inventory_port,
            ServiceKind::Orders => self.orders_port,
        }
    }
}

/// What to run, with every setting already validated.
enum Plan {
    Up(UpArgs),
    CreateKey {
        principal: Principal,
        keys_file: Option<PathBuf>,
    },
    #[cfg(feature = "loadgen")]
    Loadgen(Box<LoadgenArgs>),
    Demo(Box<caravan::demo::DemoArgs>),
    #[cfg(feature = "loadgen")]
    EchoServer {
        mode: EchoMode,
        addr: SocketAddr,
        key: Option<String>,
    },
    Import {
        file: PathBuf,
        catalog: String,
        key: Option<String>,
        batch: usize,
        activate: bool,
    },
    Dataset {
        seed: u64,
        out: Option<PathBuf>,
    },
    Fill {
        count: u64,
        catalog: String,
        key: String,
    },
    Serve {
        config: ServiceConfig,
        own: Box<suite::OwnSettings>,
        metrics: Option<SocketAddr>,
    },
    Migrate(ServiceConfig),
}

fn main() -> ExitCode {
    let command = Cli::command();
    unset_empty_variables(&command);
    let help = format!(
        "Environment variables, each also a flag (`caravan <command> --help` shows which commands read \
         it; `serve <service>` reads the CARAVAN_* service settings):\n{}",
        variables_table(&command)
    );
    let matches = match command.clone().after_long_help(help).try_get_matches() {
        Ok(matches) => matches,
        // A value that does not parse is a configuration error naming its
        // variable, on one line, like those found below.
        Err(e) => match refusal(&command, &e) {
            Some(error) => return config_failure(&error),
            None => e.exit(),
        },
    };
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };

    // Every setting is checked before anything is bound or started.
    let settings = (|| -> Result<_, ConfigError> {
        let otel = cli.otel.into_config()?;
        let plan = match cli.command {
            Command::Serve(serve) => plan_serve_command(*serve)?,
            Command::Up(args) if args.chaos.chaos_file.is_some() && !args.chaos.chaos_allowed => {
                return Err(ConfigError::new(
                    "CARAVAN_CHAOS_FILE",
                    "refused: fault-injection drills need CARAVAN_CHAOS_ALLOWED=true (--chaos-allowed true)",
                ));
            }
            Command::Up(args) => Plan::Up(args),
            #[cfg(feature = "loadgen")]
            Command::Loadgen(args) => Plan::Loadgen(args),
            Command::Demo(args) => Plan::Demo(args),
            Command::Catalog(CatalogCommand::Dataset { seed, out }) => Plan::Dataset { seed, out },
            Command::Catalog(CatalogCommand::Fill { count, catalog, key }) => Plan::Fill { count, catalog, key },
            Command::Catalog(CatalogCommand::Import { file, catalog, key, batch, activate }) => {
                Plan::Import { file, catalog, key, batch, activate }
            }
            #[cfg(feature = "loadgen")]
            Command::EchoServer { mode, addr } => {
                Plan::EchoServer { mode, addr, key: std::env::var(baseline::KEY_VARIABLE).ok() }
            }
            Command::Keys(KeysCommand::Create { kind, partner, id, keys_file }) => {
                let principal =
                    keys::principal(kind, id, partner).map_err(|e| ConfigError::new("--kind", e.to_string()))?;
                Plan::CreateKey { principal, keys_file }
            }
        };
        Ok((cli.log, otel, plan))
    })();
    let (log, otel, plan) = match settings {
        Ok(settings) => settings,
        Err(e) => return config_failure(&e),
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("caravan: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    // Spans are named after the service `serve` runs; `up` names each
    // service's own.
    let (service_name, services): (_, &[ServiceKind]) = match &plan {
        Plan::Serve { config, .. } => (config.service.as_str(), &[]),
        Plan::Up(_) => ("caravan", &ServiceKind::ALL),
        _ => ("caravan", &[]),
    };
    // The exporter's channel needs the runtime.
    let telemetry = match runtime.block_on(async { Telemetry::init(&log, &otel, service_name, services) }) {
        Ok(telemetry) => Arc::new(telemetry),
        Err(e) => {
            eprintln!("caravan: {e:#}");
            return ExitCode::from(EXIT_CONFIG as u8);
        }
    };
    let result = runtime.block_on(async move {
        let result = match plan {
            Plan::Up(args) => up(args, &telemetry).await,
            Plan::CreateKey { principal, keys_file } => create_key(principal, keys_file.as_deref()),
            #[cfg(feature = "loadgen")]
            Plan::Loadgen(args) => loadgen(*args).await,
            Plan::Demo(args) => caravan::demo::run(*args).await.map(|()| ExitCode::SUCCESS),
            Plan::Import { file, catalog, key, batch, activate } => import(&file, &catalog, key, batch, activate).await,
            Plan::Fill { count, catalog, key } => {
                let created = caravan::dataset::fill(&catalog, &key, count, 2000).await?;
                println!("created {created} synthetic products");
                Ok(ExitCode::SUCCESS)
            }
            Plan::Dataset { seed, out } => {
                let text = caravan::dataset::to_jsonl(&caravan::dataset::generate(seed))?;
                match out {
                    Some(path) => {
                        std::fs::write(&path, text).map_err(|e| anyhow::anyhow!("writing {}: {e}", path.display()))
                    }
                    None => {
                        print!("{text}");
                        Ok(())
                    }
                }
                .map(|()| ExitCode::SUCCESS)
            }
            #[cfg(feature = "loadgen")]
            Plan::EchoServer { mode, addr, key } => {
                let token = CancellationToken::new();
                shutdown::cancel_on_signal(token.clone());
                baseline::serve_echo(mode, addr, key, token).await.map(|()| ExitCode::SUCCESS)
            }
            Plan::Serve { config, own, metrics } => serve(config, &own, metrics, &telemetry).await,
            Plan::Migrate(config) => {
                let service = config.service;
                let applied = suite::migrate(&config).await;
                applied.map(|applied| {
                    tracing::info!(%service, applied, "migrations applied");
                    ExitCode::SUCCESS
                })
            }
        };
        // The exporters need the runtime to send their last spans.
        let flushing = telemetry.clone();
        let _ = tokio::task::spawn_blocking(move || flushing.shutdown()).await;
        result
    });
    // Whatever is still running after the drain gets a moment, not forever.
    runtime.shutdown_timeout(caravan_platform::shutdown::RUNTIME_STOP);
    match result {
        Ok(code) => code,
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "caravan stopped on an error");
            eprintln!("caravan: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn plan_serve_command(command: ServeCommand) -> Result<Plan, ConfigError> {
    match command {
        ServeCommand::Catalog(serve) => plan_serve(ServiceKind::Catalog, serve, |_, _| ()),
        ServeCommand::Scheduling(serve) => {
            plan_serve(ServiceKind::Scheduling, serve, |own, settings| own.scheduling = settings)
        }
        ServeCommand::Inventory(serve) => {
            plan_serve(ServiceKind::Inventory, serve, |own, settings| own.inventory = settings)
        }
        ServeCommand::Orders(serve) => plan_serve(ServiceKind::Orders, serve, |own, settings| own.orders = settings),
    }
}

/// Declared variables that are set but empty mean unset to caravan and to
/// the OpenTelemetry specification (the dev overlay sets
/// `OTEL_EXPORTER_OTLP_ENDPOINT=` to export nothing), while clap would read
/// them as empty values: the process executes itself again without them
/// (same pid, same arguments), so the environment is never edited in place.
fn unset_empty_variables(command: &clap::Command) {
    fn declared(command: &clap::Command, names: &mut Vec<std::ffi::OsString>) {
        names.extend(command.get_arguments().filter_map(|arg| arg.get_env().map(ToOwned::to_owned)));
        command.get_subcommands().for_each(|sub| declared(sub, names));
    }
    let mut names = Vec::new();
    declared(command, &mut names);
    let empty: Vec<_> = names.into_iter().filter(|n| std::env::var_os(n).is_some_and(|v| v.is_empty())).collect();
    if empty.is_empty() {
        return;
    }
    let Ok(exe) = std::env::current_exe() else { return };
    let mut again = std::process::Command::new(exe);
    again.args(std::env::args_os().skip(1));
    for name in &empty {
        again.env_remove(name);
    }
    let error = std::os::unix::process::CommandExt::exec(&mut again);
    eprintln!("caravan: cannot execute itself without its empty variables: {error}");
}

/// `serve <service>`: its configuration, checked with its own settings.
fn plan_serve<S: OwnSettings>(
    service: ServiceKind,
    serve: Serve<S>,
    place: impl FnOnce(&mut suite::OwnSettings, S),
) -> Result<Plan, ConfigError> {
    let metrics = serve.settings.metrics_addr.0;
    let mut config = serve.settings.into_config(service)?;
    serve.own.check(&config)?;
    if serve.action.is_some() {
        return Ok(Plan::Migrate(config));
    }
    match (&config.auth, serve.insecure_no_auth) {
        (Authentication::Missing, false) => {
            return Err(ConfigError::new(
                "CARAVAN_KEYS_FILE",
                "required: the hashes of the API keys this service accepts (`caravan keys create`), or --insecure-no-auth for development",
            ));
        }
        (Authentication::Missing, true) => config.auth = Authentication::InsecureNoAuth,
        (_, true) => {
            return Err(ConfigError::new("--insecure-no-auth", "cannot be combined with CARAVAN_KEYS_FILE"));
        }
        (_, false) => {}
    }
    let mut own = Box::<suite::OwnSettings>::default();
    place(&mut own, serve.own);
    Ok(Plan::Serve { config, own, metrics })
}

fn config_failure(error: &ConfigError) -> ExitCode {
    eprintln!("caravan: configuration error: {error}");
    ExitCode::from(EXIT_CONFIG as u8)
}

/// Binds the process's /metrics endpoint and serves it until `token`.
async fn start_metrics(addr: Option<SocketAddr>, token: &CancellationToken) -> anyhow::Result<()> {
    let Some(addr) = addr else {
        return Ok(());
    };
    let server = MetricsServer::bind(addr).await.map_err(|e| anyhow::anyhow!("binding metrics on {addr}: {e}"))?;
    tracing::info!(addr = %server.local_addr()?, "serving Prometheus metrics on /metrics");
    let token = token.clone();
    tokio::spawn(async move {
        if let Err(e) = server.serve(token).await {
            tracing::error!(error = %e, "metrics endpoint failed");
        }
    });
    Ok(())
}

async fn serve(
    config: ServiceConfig,
    own: &suite::OwnSettings,
    metrics: Option<SocketAddr>,
    telemetry: &Telemetry,
) -> anyhow::Result<ExitCode> {
    let token = CancellationToken::new();
    shutdown::cancel_on_signal(token.clone());
    let service_telemetry = telemetry.service(config.service);
    let app = suite::build(config, own, service_telemetry).await?;
    start_metrics(metrics, &token).await?;
    app.run(token).await?;
    Ok(ExitCode::SUCCESS)
}

async fn import(
    file: &std::path::Path,
    catalog: &str,
    key: Option<String>,
    batch: usize,
    activate: bool,
) -> anyhow::Result<ExitCode> {
    let key = match key {
        Some(key) => key,
        None => {
            let dev = std::path::Path::new("data/dev-keys.txt");
            let text = std::fs::read_to_string(dev)
                .map_err(|_| anyhow::anyhow!("give an operator key with --key or CARAVAN_API_KEY"))?;
            eprintln!("using the development operator key of {}", dev.display());
            text.lines()
                .find_map(|l| l.strip_prefix("operator "))
                .map(|k| k.trim().to_owned())
                .ok_or_else(|| anyhow::anyhow!("{} has no operator key", dev.display()))?
        }
    };
    let totals = caravan::catalog_import::import(file, catalog, &key, batch, activate).await?;
    println!(
        "created {}, updated {}, unchanged {}, rows refused {}",
        totals.created, totals.updated, totals.unchanged, totals.failed
    );
    Ok(if totals.failed == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

#[cfg(feature = "loadgen")]
async fn loadgen(args: LoadgenArgs) -> anyhow::Result<ExitCode> {
    let json = args.json;
    let output = caravan::loadgen::run(args).await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&output)?);
    } else {
        for report in &output.reports {
            println!("{report}");
        }
        for ratio in &output.ratios {
            println!("{ratio}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn create_key(principal: Principal, keys_file: Option<&std::path::Path>) -> anyhow::Result<ExitCode> {
    let (key, entry) = keys::create(principal, keys_file)?;
    match keys_file {
        Some(path) => eprintln!("added {} ({}) to {}", entry.principal.id, entry.principal.kind, path.display()),
        None => eprintln!("add this line to the keys file (CARAVAN_KEYS_FILE):\n{}", entry.to_line()),
    }
    eprintln!("the key, shown only now (caravan keeps only its hash):");
    println!("{key}");
    Ok(ExitCode::SUCCESS)
}

async fn up(args: UpArgs, telemetry: &Telemetry) -> anyhow::Result<ExitCode> {
    let token = CancellationToken::new();
    shutdown::cancel_on_signal(token.clone());
    let data_dir = &args.data_dir.path;
    let dev = keys::dev_keys(data_dir)?;
    if dev.created {
        println!(
            "Created development API keys (their hashes in {}; the keys in {}, readable only by you):\n{}\
             Call with: grpcurl -H \"authorization: Bearer <key>\" …",
            dev.keys_file.display(),
            dev.plain_file.display(),
            keys::printable_dev_keys(&dev.plain_file)?
        );
    }
    let mut databases = HashMap::new();
    if let Some(server) = &args.postgres {
        for kind in ServiceKind::ALL {
            let name = format!("{}_{kind}", args.postgres_prefix);
            let url = caravan_platform::db::ensure_postgres_database(server, &name)
                .await
                .map_err(|e| anyhow::anyhow!("--postgres: the database of {kind}: {e}"))?;
            let mut database = caravan_platform::config::DatabaseConfig::new(url);
            if let Some(pooler) = &args.postgres_pooler {
                let url = caravan_platform::db::with_database(pooler, &name)
                    .map_err(|e| anyhow::anyhow!("--postgres-pooler: {e}"))?;
                database.url = caravan_platform::config::Secret::new(url);
                database.pooler = caravan_platform::config::Pooler::Transaction;
            }
            databases.insert(kind, database);
        }
    }
    // Checked with the other settings (main): a file here is allowed.
    let chaos_file = args.chaos.chaos_file.clone();
    let config_for = |kind: ServiceKind| {
        let mut config = ServiceConfig::local(kind, data_dir);
        if let Some(database) = databases.get(&kind) {
            config.database = database.clone();
        }
        config.listen_addr = SocketAddr::new(args.host, args.port(kind));
        config.migrate = MigrateMode::Apply;
        config.auth = Authentication::Keys {
            store: dev.store.clone(),
            file: Some(dev.keys_file.clone()),
            reload: std::time::Duration::from_secs(5),
        };
        config.service_key =
            dev.service_keys.get(&kind).and_then(|k| caravan_platform::auth::keys::ServiceKey::new(k).ok());
        config.rate = args.limits.rate();
        config.chaos_file = chaos_file.clone();
        config.max_concurrent_calls = args.limits.max_concurrent_calls;
        config
    };
    let suite = Suite::start(config_for, &args.own, Some(telemetry), token.clone()).await?;
    let metrics = (!args.no_metrics).then(|| SocketAddr::new(args.host, args.metrics_port));
    start_metrics(metrics, &token).await?;
    let data = match &args.postgres {
        Some(_) => format!("databases {}_<service> on the PostgreSQL server", args.postgres_prefix),
        None => data_dir.display().to_string(),
    };
    println!(
        "caravan is up: catalog {}, scheduling {}, inventory {}, orders {} (data in {data}). Ctrl-C stops it.",
        suite.addr(ServiceKind::Catalog),
        suite.addr(ServiceKind::Scheduling),
        suite.addr(ServiceKind::Inventory),
        suite.addr(ServiceKind::Orders),
    );
    suite.wait().await?;
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// clap checks the declarations themselves (unique ids and groups across
    /// every flattened settings struct) only when a command is parsed; this
    /// checks every subcommand at once.
    #[test]
    fn the_command_line_is_well_formed() {
        Cli::command().debug_assert();
        // Parsing a subcommand is what builds (and so checks) it.
        fn paths(command: &clap::Command, path: Vec<String>, all: &mut Vec<Vec<String>>) {
            for sub in command.get_subcommands() {
                let mut path = path.clone();
                path.push(sub.get_name().to_owned());
                paths(sub, path.clone(), all);
                all.push(path);
            }
        }
        let mut all = Vec::new();
        paths(&Cli::command(), Vec::new(), &mut all);
        for path in all {
            let args = std::iter::once("caravan".to_owned()).chain(path.iter().cloned()).chain(["--help".to_owned()]);
            let error = Cli::try_parse_from(args).expect_err("--help stops parsing");
            assert_eq!(error.kind(), clap::error::ErrorKind::DisplayHelp, "{path:?}: {error}");
        }
    }
}
