//! The gRPC server every service runs: its routes plus health and reflection,
//! a health watcher that reflects the database, and a graceful drain.
//!
//! Bind first, then serve: [`GrpcServer::bind`] returns as soon as the port is
//! held (port 0 picks a free one), so tests and `caravan up` know the address
//! before anything is spawned.

use std::{io, net::SocketAddr, time::Duration};

use sea_orm_migration::MigratorTrait;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tonic::{
    service::Routes,
    transport::{Server, server::TcpIncoming},
};
use tonic_health::{ServingStatus, server::HealthReporter};

use crate::{
    auth::ServerAuth,
    config::ServiceKind,
    db::Db,
    rpc::{DatabaseCircuit, ServerLayer},
    telemetry::ServiceTelemetry,
};

/// The standard gRPC health service name.
pub const HEALTH_SERVICE: &str = "grpc.health.v1.Health";
/// The reflection service names grpcurl and other tools look for.
pub const REFLECTION_SERVICES: [&str; 2] =
    ["grpc.reflection.v1.ServerReflection", "grpc.reflection.v1alpha.ServerReflection"];

/// Health's reason while draining: planned, so logged at info.
const SHUTTING_DOWN: &str = "shutting down";

/// The health service name that answers SERVING as long as the process
/// answers at all, whatever its database says and also while it drains:
/// what a liveness (and startup) probe should ask, so a database outage
/// makes replicas unready, never restarts them.
pub const LIVENESS: &str = "liveness";

/// A bound, not yet serving, gRPC listener.
#[derive(Debug)]
pub struct GrpcServer {
    listener: TcpListener,
    local_addr: SocketAddr,
    health: Option<(TcpListener, SocketAddr)>,
}

/// What the server needs to know about the service it serves.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// Which service this is.
    pub service: ServiceKind,
    /// The dispatch its requests run under (logs, and its own traces).
    pub telemetry: ServiceTelemetry,
    /// Calls in flight beyond which new calls are refused (0: no limit).
    pub max_concurrent_calls: usize,
    /// Who may call.
    pub auth: ServerAuth,
    /// TLS on the service port ([`crate::tls::acceptor`]).
    pub tls: Option<crate::tls::Acceptor>,
    /// Fully qualified gRPC name of the service, e.g. `caravan.catalog.v1.CatalogService`.
    pub service_name: &'static str,
    /// The service's database pool, closed once the calls have drained.
    pub db: Db,
    /// Health's own connection to it ([`crate::db::connect_probe`]), so a
    /// check never queues behind requests.
    pub probe: Db,
    /// How often health re-checks.
    pub health_check_interval: Duration,
    /// How long in-flight calls may run once shutdown begins.
    pub shutdown_grace: Duration,
    /// How long calls are still served after health turns NOT_SERVING.
    pub drain_delay: Duration,
}

impl GrpcServer {
    /// Binds `addr`; port 0 picks a free port.
    pub async fn bind(addr: SocketAddr) -> io::Result<Self> {
        let listener = TcpListener::bind(addr).await?;
        let local_addr = listener.local_addr()?;
        Ok(GrpcServer { listener, local_addr, health: None })
    }

    /// Also binds `addr` for a plaintext port that serves only health (for
    /// probes that cannot speak TLS).
    pub async fn with_health_port(mut self, addr: SocketAddr) -> io::Result<Self> {
        let listener = TcpListener::bind(addr).await?;
        let bound = listener.local_addr()?;
        self.health = Some((listener, bound));
        Ok(self)
    }

    /// The plaintext health address, when there is one.
    pub fn health_addr(&self) -> Option<SocketAddr> {
        self.health.as_ref().map(|(_, addr)| *addr)
    }

    /// The address actually bound.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Serves `routes` plus health and reflection until `shutdown` is
    /// cancelled, then drains: health turns NOT_SERVING at once, calls are
    /// still served for `drain_delay` (so probes and balancing clients see it
    /// leaving while nothing is refused yet), then no new connection is
    /// accepted, in-flight calls get the rest of `shutdown_grace` to finish,
    /// and the database pool is closed.
    pub async fn serve<M: MigratorTrait>(
        self,
        routes: Routes,
        options: ServeOptions,
        shutdown: CancellationToken,
    ) -> anyhow::Result<()> {
        let ServeOptions {
            service,
            telemetry,
            max_concurrent_calls,
            auth,
            tls,
            service_name,
            db,
            probe,
            health_check_interval,
            shutdown_grace,
            drain_delay,
        } = options;
        let circuit = DatabaseCircuit::default();
        let layer = ServerLayer::new(service, telemetry.dispatch, auth, max_concurrent_calls, self.local_addr.port())
            .with_circuit(circuit.clone());
        let (reporter, health_service) = tonic_health::server::health_reporter();
        reporter.set_service_status(LIVENESS, ServingStatus::Serving).await;
        let health = Health { reporter, service_name };
        // The first verdict is known before the first connection is accepted.
        let first = check::<M>(&probe, health_check_interval).await;
        circuit.set_open(matches!(first, Verdict::DatabaseDown(_)));
        health.set(first.clone()).await;

        if let Some((listener, addr)) = self.health {
            let health_only = health_service.clone();
            let shutdown = shutdown.clone();
            tracing::info!(service = service_name, %addr, "serving plaintext health for probes");
            tokio::spawn(async move {
                let served = Server::builder()
                    .add_service(health_only)
                    .serve_with_incoming_shutdown(TcpIncoming::from(listener), shutdown.cancelled_owned())
                    .await;
                if let Err(e) = served {
                    tracing::error!(error = %e, "plaintext health port failed");
                }
            });
        }
        let reflection_v1 = reflection_builder(service_name).build_v1()?;
        let reflection_v1alpha = reflection_builder(service_name).build_v1alpha()?;
        let routes = routes.add_service(health_service).add_service(reflection_v1).add_service(reflection_v1alpha);

        let watcher = tokio::spawn({
            let health = health.clone();
            let probe = probe.clone();
            let shutdown = shutdown.clone();
            let circuit = circuit.clone();
            async move {
                let mut last = first;
                loop {
                    // While the database is down, look again sooner: the
                    // circuit closes as soon as it answers.
                    let pause =
                        if circuit.is_open() { health_check_interval.min(DOWN_RECHECK) } else { health_check_interval };
                    tokio::select! {
                        () = shutdown.cancelled() => break,
                        () = tokio::time::sleep(pause) => {}
                    }
                    let verdict = check::<M>(&probe, health_check_interval).await;
                    if shutdown.is_cancelled() {
                        break;
                    }
                    circuit.set_open(matches!(verdict, Verdict::DatabaseDown(_)));
                    if verdict != last {
                        health.set(verdict.clone()).await;
                        last = verdict;
                    }
                }
            }
        });

        let incoming = TcpIncoming::from(self.listener).with_nodelay(Some(true));
        let signal = {
            let health = health.clone();
            let shutdown = shutdown.clone();
            async move {
                shutdown.cancelled().await;
                health.set(Verdict::NotServing(SHUTTING_DOWN.into())).await;
                tracing::info!(service = service_name, delay = ?drain_delay, "shutdown: NOT_SERVING, still serving");
                tokio::time::sleep(drain_delay).await;
                tracing::info!(service = service_name, "shutdown: no new connections; draining in-flight calls");
            }
        };
        let router = Server::builder()
            .layer(layer)
            .http2_keepalive_interval(Some(Duration::from_secs(30)))
            .http2_keepalive_timeout(Some(Duration::from_secs(10)))
            .add_routes(routes);
        let serve: std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), tonic::transport::Error>> + Send>> =
            match tls {
                Some(acceptor) => {
                    Box::pin(router.serve_with_incoming_shutdown(crate::tls::incoming(incoming, acceptor), signal))
                }
                None => Box::pin(router.serve_with_incoming_shutdown(incoming, signal)),
            };
        tracing::info!(service = service_name, addr = %self.local_addr, "serving gRPC");

        let result = tokio::select! {
            result = serve => result.map_err(anyhow::Error::from),
            () = async {
                shutdown.cancelled().await;
                tokio::time::sleep(shutdown_grace).await;
            } => {
                tracing::warn!(service = service_name, grace = ?shutdown_grace, "grace period over: dropping remaining calls");
                Ok(())
            }
        };
        watcher.abort();
        let _ = probe.close().await;
        if let Err(e) = db.close().await {
            tracing::warn!(service = service_name, error = %e, "closing the database pool");
        }
        tracing::info!(service = service_name, "stopped");
        result
    }
}

fn reflection_builder(service_name: &str) -> tonic_reflection::server::Builder<'static> {
    let mut builder = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(caravan_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        // google.rpc error details, so tools like grpcurl can print them.
        .register_encoded_file_descriptor_set(tonic_types::pb::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_reflection::pb::v1::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_reflection::pb::v1alpha::FILE_DESCRIPTOR_SET)
        .with_service_name(service_name)
        .with_service_name(HEALTH_SERVICE);
    for name in REFLECTION_SERVICES {
        builder = builder.with_service_name(name);
    }
    builder
}

/// Health's verdict on the service.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Verdict {
    Serving,
    NotServing(String),
    /// The database did not answer (the database circuit opens).
    DatabaseDown(String),
}

/// How soon health looks again while the database is down.
const DOWN_RECHECK: Duration = Duration::from_millis(250);

async fn check<M: MigratorTrait>(db: &Db, limit: Duration) -> Verdict {
    let limit = limit.max(Duration::from_secs(1));
    let probe = async {
        db.ping().await.map_err(|e| Verdict::DatabaseDown(format!("database unreachable: {e}")))?;
        // Read-only (the runtime role needs no DDL right), in every mode: a
        // later release may migrate the database under a running replica.
        let schema = crate::schema::check::<M>(db)
            .await
            .map_err(|e| Verdict::DatabaseDown(format!("cannot read the schema's version: {e}")))?;
        schema.verdict().map_err(Verdict::NotServing)?;
        Ok(())
    };
    match tokio::time::timeout(limit, probe).await {
        Ok(Ok(())) => Verdict::Serving,
        Ok(Err(verdict)) => verdict,
        Err(_) => Verdict::DatabaseDown(format!("database check took longer than {limit:?}")),
    }
}

#[derive(Clone)]
struct Health {
    reporter: HealthReporter,
    service_name: &'static str,
}

impl Health {
    async fn set(&self, verdict: Verdict) {
        let status = match &verdict {
            Verdict::Serving => {
                tracing::info!(service = self.service_name, "health: SERVING");
                ServingStatus::Serving
            }
            Verdict::NotServing(reason) | Verdict::DatabaseDown(reason) => {
                if reason == SHUTTING_DOWN {
                    tracing::info!(service = self.service_name, reason, "health: NOT_SERVING");
                } else {
                    tracing::warn!(service = self.service_name, reason, "health: NOT_SERVING");
                }
                ServingStatus::NotServing
            }
        };
        // "" is the whole server (what Kubernetes probes ask by default).
        self.reporter.set_service_status("", status).await;
        self.reporter.set_service_status(self.service_name, status).await;
    }
}
