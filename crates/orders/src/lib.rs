//! The orders service: partners' orders for their buyers, the saga that
//! reserves and sells their stock, and every show's sales report. It calls
//! catalog, scheduling and inventory.
//!
//! `api` converts protobuf to domain values and back, `domain` holds the
//! rules (pure), `store` the sea-orm entities and queries, `migration` the
//! schema.

pub mod api;
pub mod domain;
pub mod driver;
pub mod error;
pub mod metrics;
pub mod migration;
pub mod saga;
pub mod sellout;
pub mod settings;
pub mod store;
pub mod upstream;

use caravan_platform::{
    app::{self, ServiceHost},
    config::ServiceKind,
    failpoint::Failpoints,
    worker::{Worker, WorkerConfig},
};
use caravan_proto::orders::v1::orders_service_server::{OrdersServiceServer, SERVICE_NAME};
use tonic::service::Routes;

pub use migration::Migrator;

/// Orders as the platform runs it.
#[derive(Debug)]
pub struct Orders;

impl app::Service for Orders {
    const KIND: ServiceKind = ServiceKind::Orders;
    const NAME: &'static str = SERVICE_NAME;
    type Migrator = Migrator;
    type Settings = settings::Settings;

    fn routes(host: &ServiceHost<Migrator>, settings: &settings::Settings) -> anyhow::Result<Routes> {
        let config = host.config();
        let timers = saga::Timers {
            call_limit: config.call_limit,
            payment_window: settings.payment_window,
            reservation_ttl: settings.reservation_ttl,
        };
        metrics::register_all();
        let store = store::Store::new(host.db().clone());
        let upstream = upstream::Upstream::connect(host)?;
        let sellout = sellout::SellOut::start(
            upstream.clone(),
            store.clone(),
            config.call_limit * 2,
            host.clock(),
            host.background(),
            host.telemetry().clone(),
        );
        let idempotency = host.start_idempotency();
        let saga = saga::Saga::new(saga::Parts {
            store,
            upstream,
            sellout,
            idempotency: idempotency.clone(),
            clock: host.clock(),
            failpoints: Failpoints::new(settings::FAILPOINTS, settings.failpoint.as_deref()),
            timers,
        });
        // Runs are calls too: bounded by the call limit, leased for twice it,
        // so a crashed replica's orders are re-driven that soon.
        let worker_config = WorkerConfig { lease: config.call_limit * 2, ..WorkerConfig::default() };
        let driver = Worker::new(
            driver::Driver::new(saga.clone(), host.clock()),
            host.db().clone(),
            host.clock(),
            worker_config,
            host.telemetry().clone(),
        );
        tokio::spawn(driver.run(host.background()));
        let api = api::OrdersApi::new(saga, idempotency, host.clock());
        let server = OrdersServiceServer::new(api).max_decoding_message_size(host.config().max_request_bytes);
        Ok(Routes::new(server))
    }
}

/// The orders service, built and bound: `Application::build(config)`, then
/// `port()` and `run_until_stopped(shutdown)`.
pub type Application = app::Application<Orders>;
