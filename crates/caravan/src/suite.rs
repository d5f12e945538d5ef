//! The four services in one process, each on its own port with its own
//! database, calling each other over real gRPC on loopback.

use std::{collections::HashMap, net::SocketAddr};

use caravan_platform::{
    CancellationToken,
    config::{Declared, NoSettings, ServiceConfig, ServiceKind, loopback_url},
    telemetry::{ServiceTelemetry, Telemetry},
};
use tokio::task::JoinSet;

/// Start order: callees before callers (the call graph has no cycles), so
/// every service is configured with the real address of what it calls, even
/// when ports are 0.
pub const START_ORDER: [ServiceKind; 4] =
    [ServiceKind::Catalog, ServiceKind::Inventory, ServiceKind::Scheduling, ServiceKind::Orders];

/// What the services declare for themselves (catalog declares nothing), at
/// their declared defaults unless set.
#[derive(Debug, Clone, clap::Args)]
pub struct OwnSettings {
    #[command(flatten)]
    pub scheduling: caravan_scheduling::settings::Settings,
    #[command(flatten)]
    pub inventory: caravan_inventory::settings::Settings,
    #[command(flatten)]
    pub orders: caravan_orders::settings::Settings,
}

impl Default for OwnSettings {
    fn default() -> Self {
        OwnSettings {
            scheduling: Declared::declared_defaults(),
            inventory: Declared::declared_defaults(),
            orders: Declared::declared_defaults(),
        }
    }
}

/// A running suite.
#[derive(Debug)]
pub struct Suite {
    addrs: HashMap<ServiceKind, SocketAddr>,
    tasks: JoinSet<(ServiceKind, anyhow::Result<()>)>,
    token: CancellationToken,
}

impl Suite {
    /// Builds and starts all four services. `config_for` gives each one's
    /// configuration; its upstream addresses are replaced by those of the
    /// services just started. Stops when `token` is cancelled.
    pub async fn start(
        mut config_for: impl FnMut(ServiceKind) -> ServiceConfig,
        own: &OwnSettings,
        telemetry: Option<&Telemetry>,
        token: CancellationToken,
    ) -> anyhow::Result<Suite> {
        let mut addrs: HashMap<ServiceKind, SocketAddr> = HashMap::new();
        let mut built = Vec::new();
        for kind in START_ORDER {
            let mut config = config_for(kind);
            for upstream in kind.upstreams() {
                let addr = addrs[upstream];
                config.upstreams.insert(*upstream, loopback_url(addr.port()));
            }
            let service_telemetry = match telemetry {
                Some(telemetry) => telemetry.service(kind),
                None => ServiceTelemetry::global(),
            };
            let app = build(config, own, service_telemetry).await?;
            addrs.insert(kind, app.local_addr());
            built.push((kind, app));
        }
        // Nothing serves until every service is built and bound: a failure
        // above leaves no half-started suite behind.
        let mut tasks = JoinSet::new();
        for (kind, app) in built {
            let token = token.clone();
            tasks.spawn(async move { (kind, app.run(token).await) });
        }
        Ok(Suite { addrs, tasks, token })
    }

    /// Where a service listens.
    pub fn addr(&self, kind: ServiceKind) -> SocketAddr {
        self.addrs[&kind]
    }

    /// Waits until every service stopped. The first one to fail stops the
    /// others: a half-running suite would only confuse.
    pub async fn wait(mut self) -> anyhow::Result<()> {
        let mut first_error = None;
        while let Some(joined) = self.tasks.join_next().await {
            let outcome = match joined {
                Ok((kind, result)) => result.map_err(|e| e.context(format!("{kind} failed"))),
                Err(e) => Err(anyhow::Error::from(e).context("a service task panicked")),
            };
            if let Err(e) = outcome {
                tracing::error!(error = format!("{e:#}"), "stopping the other services");
                self.token.cancel();
                first_error.get_or_insert(e);
            }
        }
        first_error.map_or(Ok(()), Err)
    }
}

/// Any of the four services, built and bound.
#[derive(Debug)]
pub enum Built {
    /// Catalog.
    Catalog(caravan_catalog::Application),
    /// Scheduling.
    Scheduling(caravan_scheduling::Application),
    /// Inventory.
    Inventory(caravan_inventory::Application),
    /// Orders.
    Orders(caravan_orders::Application),
}

impl Built {
    /// The address actually bound.
    pub fn local_addr(&self) -> SocketAddr {
        match self {
            Built::Catalog(app) => app.local_addr(),
            Built::Scheduling(app) => app.local_addr(),
            Built::Inventory(app) => app.local_addr(),
            Built::Orders(app) => app.local_addr(),
        }
    }

    /// Serves until `token` is cancelled, then drains.
    pub async fn run(self, token: CancellationToken) -> anyhow::Result<()> {
        match self {
            Built::Catalog(app) => app.run_until_stopped(token).await,
            Built::Scheduling(app) => app.run_until_stopped(token).await,
            Built::Inventory(app) => app.run_until_stopped(token).await,
            Built::Orders(app) => app.run_until_stopped(token).await,
        }
    }
}

/// Builds whichever service `config` is for, with its own settings, under
/// its own telemetry.
pub async fn build(config: ServiceConfig, own: &OwnSettings, telemetry: ServiceTelemetry) -> anyhow::Result<Built> {
    Ok(match config.service {
        ServiceKind::Catalog => {
            Built::Catalog(caravan_catalog::Application::build_with(config, NoSettings {}, telemetry).await?)
        }
        ServiceKind::Scheduling => Built::Scheduling(
            caravan_scheduling::Application::build_with(config, own.scheduling.clone(), telemetry).await?,
        ),
        ServiceKind::Inventory => Built::Inventory(
            caravan_inventory::Application::build_with(config, own.inventory.clone(), telemetry).await?,
        ),
        ServiceKind::Orders => {
            Built::Orders(caravan_orders::Application::build_with(config, own.orders.clone(), telemetry).await?)
        }
    })
}

/// Applies the pending migrations of whichever service `config` is for.
pub async fn migrate(config: &ServiceConfig) -> anyhow::Result<usize> {
    use caravan_platform::app::migrate;
    match config.service {
        ServiceKind::Catalog => migrate::<caravan_catalog::Migrator>(config).await,
        ServiceKind::Scheduling => migrate::<caravan_scheduling::Migrator>(config).await,
        ServiceKind::Inventory => migrate::<caravan_inventory::Migrator>(config).await,
        ServiceKind::Orders => migrate::<caravan_orders::Migrator>(config).await,
    }
}
