//! `caravan`: run the whole suite in one process (`up`), one service as in
//! production (`serve`), or only its migrations (`serve <service> migrate`).

use std::{collections::HashMap, net::SocketAddr, path::PathBuf, process::ExitCode};

use caravan::suite::{self, Suite};
use caravan_platform::{
    CancellationToken,
    config::{ConfigError, EXIT_CONFIG, LogConfig, MigrateMode, ServiceConfig, ServiceKind, VARIABLES},
    shutdown, telemetry,
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

fn main() -> ExitCode {
    let mut help = String::from("Environment variables (`caravan serve`; `up` reads the CARAVAN_LOG* ones):\n");
    for (name, meaning) in VARIABLES {
        help.push_str(&format!("  {name:<32} {meaning}\n"));
    }
    let matches = Cli::command().after_long_help(help).get_matches();
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    let env: HashMap<String, String> = std::env::vars().collect();
    let log = match LogConfig::from_env(&env) {
        Ok(log) => log,
        Err(e) => return config_failure(&e),
    };
    if let Err(e) = telemetry::init(&log) {
        eprintln!("caravan: {e:#}");
        return ExitCode::from(EXIT_CONFIG as u8);
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("caravan: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Up(args) => up(args).await,
            Command::Serve { service, action } => {
                let config = match ServiceConfig::from_env(service, &env) {
                    Ok(config) => config,
                    Err(e) => return Ok(config_failure(&e)),
                };
                if action.is_some() {
                    let applied = suite::migrate(&config).await?;
                    tracing::info!(%service, applied, "migrations applied");
                    return Ok(ExitCode::SUCCESS);
                }
                serve(config).await
            }
        }
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

async fn serve(config: ServiceConfig) -> anyhow::Result<ExitCode> {
    let token = CancellationToken::new();
    shutdown::cancel_on_signal(token.clone());
    suite::build(config).await?.run(token).await?;
    Ok(ExitCode::SUCCESS)
}

async fn up(args: UpArgs) -> anyhow::Result<ExitCode> {
    let token = CancellationToken::new();
    shutdown::cancel_on_signal(token.clone());
    let config_for = |kind: ServiceKind| {
        let mut config = ServiceConfig::local(kind, &args.data_dir);
        config.listen_addr = SocketAddr::new(args.host, args.port(kind));
        config.migrate = MigrateMode::Apply;
        config
    };
    let suite = Suite::start(config_for, token).await?;
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
