//! `caravan`: run the whole suite in one process (`up`), one service as in
//! production (`serve`), or only its migrations (`serve <service> migrate`).

use std::{collections::HashMap, net::SocketAddr, path::PathBuf, process::ExitCode, sync::Arc};

use caravan::suite::{self, Suite};
use caravan_platform::{
    CancellationToken,
    config::{
        ConfigError, EXIT_CONFIG, LogConfig, MigrateMode, ServiceConfig, ServiceKind, VARIABLES, metrics_addr_from_env,
    },
    metrics::MetricsServer,
    shutdown,
    telemetry::{OtelConfig, Telemetry},
};
use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

/// caravan: the backend of a cross-border livestream shopping festival.
#[derive(Debug, Parser)]
#[command(name = "caravan", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run all four services in one process on loopback, each with its own
    /// SQLite file, calling each other over real gRPC. For development.
    Up(UpArgs),
    /// Run one service configured by CARAVAN_* environment variables (what
    /// the Kubernetes images run).
    Serve {
        /// catalog, scheduling, inventory or orders.
        service: ServiceKind,
        /// `migrate`: apply the service's pending migrations and exit.
        #[arg(value_parser = ["migrate"])]
        action: Option<String>,
    },
}

#[derive(Debug, clap::Args)]
struct UpArgs {
    /// Folder of the four SQLite files (catalog.db, scheduling.db, …).
    #[arg(long, env = "CARAVAN_DATA_DIR", default_value = "./data")]
    data_dir: PathBuf,
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
    Serve { config: ServiceConfig, metrics: Option<SocketAddr> },
    Migrate(ServiceConfig),
}

fn main() -> ExitCode {
    let mut help = String::from("Environment variables (`caravan serve`; `up` reads CARAVAN_LOG*, OTEL_*):\n");
    for (name, meaning) in VARIABLES {
        help.push_str(&format!("  {name:<32} {meaning}\n"));
    }
    let matches = Cli::command().after_long_help(help).get_matches();
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };

    // Every setting is checked before anything is bound or started.
    let env: HashMap<String, String> = std::env::vars().collect();
    let settings = (|| -> Result<_, ConfigError> {
        let log = LogConfig::from_env(&env)?;
        let otel = OtelConfig::from_env(&env)?;
        let plan = match cli.command {
            Command::Up(args) => Plan::Up(args),
            Command::Serve { service, action: Some(_) } => Plan::Migrate(ServiceConfig::from_env(service, &env)?),
            Command::Serve { service, action: None } => {
                Plan::Serve { config: ServiceConfig::from_env(service, &env)?, metrics: metrics_addr_from_env(&env)? }
            }
        };
        Ok((log, otel, plan))
    })();
    let (log, otel, plan) = match settings {
        Ok(settings) => settings,
        Err(e) => return config_failure(&e),
    };
    let telemetry = match Telemetry::init(&log, &otel) {
        Ok(telemetry) => Arc::new(telemetry),
        Err(e) => {
            eprintln!("caravan: {e:#}");
            return ExitCode::from(EXIT_CONFIG as u8);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("caravan: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        let result = match plan {
            Plan::Up(args) => up(args, &telemetry).await,
            Plan::Serve { config, metrics } => serve(config, metrics, &telemetry).await,
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
    match result {
        Ok(code) => code,
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "caravan stopped on an error");
            eprintln!("caravan: {e:#}");
            ExitCode::FAILURE
        }
    }
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

async fn serve(config: ServiceConfig, metrics: Option<SocketAddr>, telemetry: &Telemetry) -> anyhow::Result<ExitCode> {
    let token = CancellationToken::new();
    shutdown::cancel_on_signal(token.clone());
    let service_telemetry = telemetry.service(config.service)?;
    let app = suite::build(config, service_telemetry).await?;
    start_metrics(metrics, &token).await?;
    app.run(token).await?;
    Ok(ExitCode::SUCCESS)
}

async fn up(args: UpArgs, telemetry: &Telemetry) -> anyhow::Result<ExitCode> {
    let token = CancellationToken::new();
    shutdown::cancel_on_signal(token.clone());
    let config_for = |kind: ServiceKind| {
        let mut config = ServiceConfig::local(kind, &args.data_dir);
        config.listen_addr = SocketAddr::new(args.host, args.port(kind));
        config.migrate = MigrateMode::Apply;
        config
    };
    let suite = Suite::start(config_for, Some(telemetry), token.clone()).await?;
    let metrics = (!args.no_metrics).then(|| SocketAddr::new(args.host, args.metrics_port));
    start_metrics(metrics, &token).await?;
    println!(
        "caravan is up: catalog {}, scheduling {}, inventory {}, orders {} (data in {}). Ctrl-C stops it.",
        suite.addr(ServiceKind::Catalog),
        suite.addr(ServiceKind::Scheduling),
        suite.addr(ServiceKind::Inventory),
        suite.addr(ServiceKind::Orders),
        args.data_dir.display()
    );
    suite.wait().await?;
    Ok(ExitCode::SUCCESS)
}
