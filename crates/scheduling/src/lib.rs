//! The scheduling service: the festival's timetable (campaigns, channels,
//! hosts, shows and their line-ups). It calls catalog and inventory.
//!
//! `api` converts protobuf to domain values and back, `domain` holds the
//! rules (pure), `store` the sea-orm entities and queries, `migration` the
//! schema, `upstream` the clients of the services it calls, `lineup` the
//! saga that books a show and allocates its line-up, `clock` the worker
//! that moves shows through their day.

pub mod api;
pub mod clock;
pub mod domain;
pub mod error;
pub mod lineup;
pub mod metrics;
pub mod migration;
pub mod settings;
pub mod store;
pub mod upstream;
pub mod watch;

use caravan_platform::{
    app::{self, ServiceHost},
    config::ServiceKind,
    stream::{Hub, HubConfig},
    worker::{Worker, WorkerConfig, spawn_sampler},
};
use caravan_proto::scheduling::v1::scheduling_service_server::{SERVICE_NAME, SchedulingServiceServer};
use tonic::service::Routes;

pub use migration::Migrator;

/// Scheduling as the platform runs it.
#[derive(Debug)]
pub struct Scheduling;

impl app::Service for Scheduling {
    const KIND: ServiceKind = ServiceKind::Scheduling;
    const NAME: &'static str = SERVICE_NAME;
    type Migrator = Migrator;
    type Settings = settings::Settings;

    fn routes(host: &ServiceHost<Migrator>, settings: &settings::Settings) -> anyhow::Result<Routes> {
        metrics::register_all();
        let upstream = upstream::Upstream::connect(host)?;
        let store = store::Store::new(host.db().clone());
        let clock = Worker::new(
            clock::ShowClock::new(store.clone(), upstream.clone(), host.clock()),
            host.db().clone(),
            host.clock(),
            WorkerConfig::default(),
            host.telemetry().clone(),
        );
        tokio::spawn(clock.run(host.background()));
        let (counting, now, lead) = (store.clone(), host.clock(), settings.scale_lead);
        spawn_sampler(std::time::Duration::from_secs(2), host.background(), move || {
            let (store, now) = (counting.clone(), now.now());
            async move {
                metrics::shows_live().set(store.live_shows().await?);
                metrics::shows_starting().set(store.shows_starting(now, now.plus(lead)).await?);
                Ok(())
            }
        });
        let hub = Hub::start(watch::ShowFeed::new(store.clone()), HubConfig::default(), host.background());
        let api = api::SchedulingApi::new(store, upstream, host.start_idempotency(), host.clock(), hub);
        let server = SchedulingServiceServer::new(api).max_decoding_message_size(host.config().max_request_bytes);
        Ok(Routes::new(server))
    }
}

/// The scheduling service, built and bound: `Application::build(config)`,
/// then `port()` and `run_until_stopped(shutdown)`.
pub type Application = app::Application<Scheduling>;
