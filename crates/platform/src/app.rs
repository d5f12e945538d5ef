//! What every service's `Application::build` does before it adds its own
//! handlers: connect its database, apply or verify migrations, bind its port.

use std::{marker::PhantomData, net::SocketAddr, time::Duration};

use anyhow::Context as _;
use sea_orm_migration::MigratorTrait;
use tokio_util::sync::CancellationToken;
use tonic::service::Routes;

use crate::{
    auth::{Check, ServerAuth, rate::RateLimits},
    client::{Balancing, ChannelOptions, TracedChannel},
    config::{Authentication, Declared, MigrateMode, OwnSettings, ServiceConfig, ServiceKind},
    db::{self, Db},
    idempotency::{Idempotency, IdempotencyConfig},
    schema,
    server::{GrpcServer, ServeOptions},
    telemetry::ServiceTelemetry,
    time::SharedClock,
    worker::{spawn_periodic, spawn_sampler},
};

/// A service whose database is ready and whose port is bound.
#[derive(Debug)]
pub struct ServiceHost<M> {
    config: ServiceConfig,
    telemetry: ServiceTelemetry,
    background: CancellationToken,
    db: Db,
    /// Health's own connection (see [`db::connect_probe`]).
    probe: Db,
    server: GrpcServer,
    /// Fault-injection drills on the pool and the calls (off by default).
    chaos: crate::chaos::Chaos,
    _migrator: PhantomData<fn() -> M>,
}

impl<M: MigratorTrait> ServiceHost<M> {
    /// Connects, migrates (`apply`) or checks the schema (`verify`: a schema
    /// that does not suit the binary, or a database that is unreachable, is
    /// logged and reported NOT_SERVING by health, not an error), then binds
    /// the listen address.
    pub async fn prepare(config: ServiceConfig, telemetry: ServiceTelemetry) -> anyhow::Result<Self> {
        let service = config.service;
        // A replica (verify) waits out a database outage unready; a process
        // that migrates at start (apply: development) needs the database now.
        let db = match config.migrate {
            MigrateMode::Verify => db::connect_lazy(&config.database).await,
            MigrateMode::Apply => db::connect(&config.database).await,
        }
        .with_context(|| format!("{service}: connecting to the database"))?;
        let probe = db::connect_probe(&config.database)
            .await
            .with_context(|| format!("{service}: health's connection to the database"))?;
        let schema = match config.migrate {
            MigrateMode::Apply => {
                let migrated =
                    schema::migrate::<M>(&db).await.with_context(|| format!("{service}: applying migrations"))?;
                tracing::info!(%service, applied = migrated.applied, "schema migrated");
                schema::check::<M>(&db).await.ok()
            }
            MigrateMode::Verify => match schema::check::<M>(&db).await {
                Ok(check) => Some(check),
                Err(e) => {
                    tracing::warn!(%service, error = %e, "cannot read the schema's version; health will retry");
                    None
                }
            },
        };
        if let Some(check) = schema {
            match check.verdict() {
                Ok(()) if check.newer > 0 => tracing::info!(
                    %service,
                    newer = check.newer,
                    "the schema carries migrations of a later release, compatible with this binary: serving"
                ),
                Ok(()) => {}
                Err(why) => tracing::warn!(%service, "{why}: NOT_SERVING until that changes"),
            }
        }
        let mut server = GrpcServer::bind(config.listen_addr)
            .await
            .with_context(|| format!("{service}: binding {}", config.listen_addr))?;
        if let Some(addr) = config.health_addr {
            server =
                server.with_health_port(addr).await.with_context(|| format!("{service}: binding health on {addr}"))?;
        }
        let background = CancellationToken::new();
        // A drill touches this service's pool (not health's probe, which
        // keeps telling the truth about the database) and its calls.
        let chaos = match &config.chaos_file {
            Some(file) => {
                crate::chaos::register_metrics();
                tracing::warn!(%service, file = %file.display(), "chaos drills allowed: watching the drill file");
                crate::chaos::Chaos::watch(service, file.clone(), keys_reload(&config), background.clone())
            }
            None => crate::chaos::Chaos::off(),
        };
        let db = db.with_chaos(chaos.clone());
        // A rotated service key is sent from the next reload on, like a
        // change of the keys file is honoured.
        if let Some(key) = &config.service_key {
            key.watch(keys_reload(&config), background.clone());
        }
        let telemetry = telemetry.for_service(service);
        // What the pool holds, for /metrics (a little stale at most).
        let (pool, max) = (db.clone(), if config.database.is_postgres() { config.database.max_connections } else { 1 });
        spawn_sampler(Duration::from_secs(1), background.clone(), move || {
            crate::metrics::metrics().sample_pool(service.as_str(), pool.pool(), max);
            async { Ok(()) }
        });
        Ok(ServiceHost { config, telemetry, background, db, probe, server, chaos, _migrator: PhantomData })
    }

    /// The service's configuration.
    pub fn config(&self) -> &ServiceConfig {
        &self.config
    }

    /// The service's database pool.
    pub fn db(&self) -> &Db {
        &self.db
    }

    /// The address actually bound.
    pub fn local_addr(&self) -> SocketAddr {
        self.server.local_addr()
    }

    /// The plaintext health address (with TLS on).
    pub fn health_addr(&self) -> Option<SocketAddr> {
        self.server.health_addr()
    }

    /// The service's telemetry (for its background work).
    pub fn telemetry(&self) -> &ServiceTelemetry {
        &self.telemetry
    }

    /// A channel to `target`, one of this service's upstreams, whose calls
    /// default to `default_deadline` when the caller sent none.
    pub fn channel(&self, target: ServiceKind, default_deadline: Duration) -> anyhow::Result<TracedChannel> {
        let options = ChannelOptions {
            caller: self.config.service,
            target,
            connect_timeout: self.config.connect_timeout,
            default_deadline,
            service_key: self.config.service_key.clone(),
            tls: self.config.upstream_tls.clone(),
            balancing: Balancing { interval: self.config.resolve_interval, ..Balancing::default() },
            chaos: self.chaos.clone(),
        };
        Ok(TracedChannel::new(self.config.upstream(target), options)?)
    }

    /// The service's clock (the system's, or a test's manual clock).
    pub fn clock(&self) -> SharedClock {
        self.config.clock.clone()
    }

    /// Cancelled when shutdown begins: background work (workers, purges,
    /// stream pollers) started while building stops with it.
    pub fn background(&self) -> CancellationToken {
        self.background.clone()
    }

    /// The idempotency mechanism on the service's database, with its purge
    /// running hourly in the background. A claim is leased for twice the
    /// call limit: after a crash, a retry takes the request over that soon.
    pub fn start_idempotency(&self) -> Idempotency {
        let config = IdempotencyConfig { lease: self.config.call_limit * 2, ..IdempotencyConfig::default() };
        let idempotency = Idempotency::new(self.db.clone(), self.clock(), config);
        let purging = idempotency.clone();
        spawn_periodic("idempotency-purge", Duration::from_secs(3600), &self.telemetry, self.background(), move || {
            let purging = purging.clone();
            async move {
                // Bounded batches, until a batch comes back short.
                while purging.purge(1000).await? == 1000 {}
                Ok(())
            }
        });
        idempotency
    }

    /// Serves `routes` (the service's own gRPC service) until `shutdown`.
    pub async fn run(
        self,
        service_name: &'static str,
        routes: Routes,
        shutdown: CancellationToken,
    ) -> anyhow::Result<()> {
        let background = self.background.clone();
        let stop_background = {
            let shutdown = shutdown.clone();
            tokio::spawn(async move {
                shutdown.cancelled().await;
                background.cancel();
            })
        };
        let check = match &self.config.auth {
            Authentication::Missing => {
                anyhow::bail!(
                    "{}: no API keys configured (CARAVAN_KEYS_FILE) and auth not switched off",
                    self.config.service
                )
            }
            Authentication::InsecureNoAuth => {
                tracing::warn!(
                    service = %self.config.service,
                    "AUTHENTICATION IS OFF (--insecure-no-auth): anyone who reaches this port is an operator"
                );
                Check::Insecure
            }
            Authentication::Keys { store, file, reload } => {
                if let Some(file) = file {
                    store.watch(file.clone(), *reload, self.background());
                }
                Check::Keys(store.clone())
            }
        };
        let auth = ServerAuth { check, rate: RateLimits::new(self.config.rate) };
        // The certificate is re-read like the keys file.
        let tls = match &self.config.tls {
            Some(tls) => Some(crate::tls::acceptor(tls, keys_reload(&self.config), self.background())?),
            None => None,
        };
        let options = ServeOptions {
            service: self.config.service,
            telemetry: self.telemetry,
            max_concurrent_calls: self.config.max_concurrent_calls,
            auth,
            tls,
            service_name,
            db: self.db,
            probe: self.probe,
            health_check_interval: self.config.health_check_interval,
            shutdown_grace: self.config.shutdown_grace,
            drain_delay: self.config.drain_delay,
        };
        let served = self.server.serve::<M>(routes, options, shutdown).await;
        self.background.cancel();
        stop_background.abort();
        served
    }
}

/// What a service crate tells the platform about itself; the platform does
/// the rest (see [`Application`]).
pub trait Service: Send + 'static {
    /// Which service this is.
    const KIND: ServiceKind;
    /// Fully qualified gRPC name, e.g. `caravan.catalog.v1.CatalogService`.
    const NAME: &'static str;
    /// The service's migrations.
    type Migrator: MigratorTrait;
    /// What the service declares for itself ([`crate::config::NoSettings`] when nothing).
    type Settings: OwnSettings;

    /// Builds the service's own gRPC routes on its prepared host.
    fn routes(host: &ServiceHost<Self::Migrator>, settings: &Self::Settings) -> anyhow::Result<Routes>;
}

/// How often files of secrets are re-read: the keys file's interval
/// (`CARAVAN_KEYS_RELOAD`), also for the service key and TLS files.
fn keys_reload(config: &ServiceConfig) -> Duration {
    match &config.auth {
        Authentication::Keys { reload, .. } => *reload,
        _ => Duration::from_secs(10),
    }
}

/// A service built and bound, ready to run: what `Application::build` of
/// every service crate returns.
#[derive(Debug)]
pub struct Application<S: Service> {
    host: ServiceHost<S::Migrator>,
    routes: Routes,
}

impl<S: Service> Application<S> {
    /// Connects the database, applies or verifies migrations, binds the port,
    /// builds the handlers. Nothing is served until [`Self::run_until_stopped`].
    /// Requests run under the global subscriber (logs only), with the
    /// service's own settings at their declared defaults; see
    /// [`Self::build_with`].
    pub async fn build(config: ServiceConfig) -> anyhow::Result<Self> {
        Self::build_with(config, S::Settings::declared_defaults(), ServiceTelemetry::global()).await
    }

    /// [`Self::build`] with the service's own settings, and requests and
    /// background work running under the service's own telemetry (its
    /// traces carry its `service.name`).
    pub async fn build_with(
        config: ServiceConfig,
        settings: S::Settings,
        telemetry: ServiceTelemetry,
    ) -> anyhow::Result<Self> {
        anyhow::ensure!(config.service == S::KIND, "configuration of {} given to {}", config.service, S::KIND);
        settings.check(&config)?;
        let host = ServiceHost::<S::Migrator>::prepare(config, telemetry).await?;
        let routes = S::routes(&host, &settings)?;
        Ok(Application { host, routes })
    }

    /// The port actually bound (useful with port 0).
    pub fn port(&self) -> u16 {
        self.host.local_addr().port()
    }

    /// The address actually bound.
    pub fn local_addr(&self) -> SocketAddr {
        self.host.local_addr()
    }

    /// The plaintext health address (with TLS on).
    pub fn health_addr(&self) -> Option<SocketAddr> {
        self.host.health_addr()
    }

    /// Serves until `shutdown` is cancelled, then drains.
    pub async fn run_until_stopped(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        self.host.run(S::NAME, self.routes, shutdown).await
    }
}

/// Applies every pending migration and returns (`caravan serve X migrate`, the
/// Kubernetes migration Job).
pub async fn migrate<M: MigratorTrait>(config: &ServiceConfig) -> anyhow::Result<usize> {
    let db = db::connect(&config.database)
        .await
        .with_context(|| format!("{}: connecting to the database", config.service))?;
    let applied =
        schema::migrate::<M>(&db).await.with_context(|| format!("{}: applying migrations", config.service))?;
    db.close().await?;
    Ok(applied.applied)
}
