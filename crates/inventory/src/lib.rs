//! The inventory service: warehouses, stock levels and their ledger, show
//! allocations and order reservations. It calls no one.
//!
//! `api` converts protobuf to domain values and back, `domain` holds the
//! rules (pure), `store` the sea-orm entities and queries, `migration` the
//! schema.

pub mod api;
pub mod batcher;
pub mod domain;
pub mod error;
pub mod metrics;
pub mod migration;
pub mod reaper;
pub mod settings;
pub mod store;
pub mod watch;

use caravan_platform::{
    app::{self, ServiceHost},
    config::ServiceKind,
    stream::{Hub, HubConfig},
    worker::{Worker, WorkerConfig},
};
use caravan_proto::inventory::v1::inventory_service_server::{InventoryServiceServer, SERVICE_NAME};
use tonic::service::Routes;

pub use migration::Migrator;

/// Inventory as the platform runs it.
#[derive(Debug)]
pub struct Inventory;

impl app::Service for Inventory {
    const KIND: ServiceKind = ServiceKind::Inventory;
    const NAME: &'static str = SERVICE_NAME;
    type Migrator = Migrator;
    type Settings = settings::Settings;

    fn routes(host: &ServiceHost<Migrator>, settings: &settings::Settings) -> anyhow::Result<Routes> {
        metrics::register_all();
        let store = store::Store::new(host.db().clone());
        let hub = Hub::start(watch::StockFeed::new(store.clone()), HubConfig::default(), host.background());
        let reaper = Worker::new(
            reaper::Reaper::new(store.clone(), host.clock(), Some(hub.clone())),
            host.db().clone(),
            host.clock(),
            WorkerConfig::default(),
            host.telemetry().clone(),
        );
        tokio::spawn(reaper.run(host.background()));
        let batcher = batcher::Batcher::new(
            store.clone(),
            host.clock(),
            host.telemetry().clone(),
            usize::from(settings.reserve_batch),
        );
        let api = api::InventoryApi::new(store, host.start_idempotency(), host.clock(), hub, batcher);
        let server = InventoryServiceServer::new(api).max_decoding_message_size(host.config().max_request_bytes);
        Ok(Routes::new(server))
    }
}

/// The inventory service, built and bound: `Application::build(config)`,
/// then `port()` and `run_until_stopped(shutdown)`.
pub type Application = app::Application<Inventory>;
