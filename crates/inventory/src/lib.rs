//! The inventory service: warehouses, stock levels and their ledger, show
//! allocations and order reservations. It calls no one.
//!
//! `api` converts protobuf to domain values and back, `domain` holds the
//! rules (pure), `store` the sea-orm entities and queries, `migration` the
//! schema.

pub mod api;
pub mod domain;
pub mod error;
pub mod migration;
pub mod store;

use std::sync::Arc;

use caravan_platform::{
    app::{self, ServiceHost},
    config::ServiceKind,
    time::SystemClock,
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

    fn routes(host: &ServiceHost<Migrator>) -> anyhow::Result<Routes> {
        let api = api::InventoryApi::new(
            store::Store::new(host.db().clone()),
            host.start_idempotency(),
            Arc::new(SystemClock),
        );
        let server = InventoryServiceServer::new(api).max_decoding_message_size(host.config().max_request_bytes);
        Ok(Routes::new(server))
    }
}

/// The inventory service, built and bound: `Application::build(config)`,
/// then `port()` and `run_until_stopped(shutdown)`.
pub type Application = app::Application<Inventory>;
