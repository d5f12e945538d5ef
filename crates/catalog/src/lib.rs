//! The catalog service: the festival's countries and specialties.
//!
//! `api` converts protobuf to domain values and back, `domain` holds the
//! rules (pure), `store` the sea-orm entities and queries, `migration` the
//! schema and reference data.

pub mod api;
pub mod domain;
pub mod error;
pub mod migration;
pub mod store;

use caravan_platform::{
    app::{self, ServiceHost},
    config::ServiceKind,
};
use caravan_proto::catalog::v1::catalog_service_server::{CatalogServiceServer, SERVICE_NAME};
use tonic::service::Routes;

pub use migration::Migrator;

/// The catalog as the platform runs it.
#[derive(Debug)]
pub struct Catalog;

impl app::Service for Catalog {
    const KIND: ServiceKind = ServiceKind::Catalog;
    const NAME: &'static str = SERVICE_NAME;
    type Migrator = Migrator;
    type Settings = caravan_platform::config::NoSettings;

    fn routes(host: &ServiceHost<Migrator>, _: &Self::Settings) -> anyhow::Result<Routes> {
        Ok(routes_on(host))
    }
}

/// The catalog's routes on a host whose schema is `M`'s: this release's
/// [`Migrator`], or — in the release tests — a later release's, to run this
/// code as the previous binary beside a newer schema.
pub fn routes_on<M: sea_orm_migration::MigratorTrait>(host: &ServiceHost<M>) -> Routes {
    let api = api::CatalogApi::new(store::Store::new(host.db().clone()), host.start_idempotency(), host.clock());
    let server = CatalogServiceServer::new(api).max_decoding_message_size(host.config().max_request_bytes);
    Routes::new(server)
}

/// The catalog service, built and bound: `Application::build(config)`, then
/// `port()` and `run_until_stopped(shutdown)`.
pub type Application = app::Application<Catalog>;
