//! Prometheus metrics: one registry and one `/metrics` endpoint per process,
//! a `service` label per service (so `caravan up` serves all four on one port).
//! The platform's own — call durations on both sides, shed calls, database
//! pool usage and errors — are defined here; a service registers its domain metrics
//! into the same registry with [`register`].

use std::{net::SocketAddr, sync::OnceLock, time::Duration};

pub use prometheus;
use prometheus::{
    Encoder as _, HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts, Registry, TextEncoder,
    core::Collector, proto::MetricType,
};
use tokio_util::sync::CancellationToken;

/// Latency buckets in seconds, from half a millisecond to ten seconds.
const BUCKETS: &[f64] = &[0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

/// The process's metrics.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    /// The `# HELP`/`# TYPE` lines of every registered family, by name, so
    /// /metrics names the families that have no series yet too (the
    /// registry's `gather` leaves them out).
    described: std::sync::Mutex<Vec<(String, String)>>,
    /// `rpc_server_duration_seconds{service, method, code}`.
    pub server_duration: HistogramVec,
    /// `rpc_client_duration_seconds{service, method, code}`; `service` is the caller.
    pub client_duration: HistogramVec,
    /// `rpc_server_shed_total{service}`: calls refused by load shedding.
    pub shed: IntCounterVec,
    /// `caravan_db_connections{service, state}`: the pool's connections in
    /// use and idle.
    pub db_connections: IntGaugeVec,
    /// `caravan_db_max_connections{service}`: the pool's size limit.
    pub db_max_connections: IntGaugeVec,
    /// `caravan_db_errors_total{service, error_type}`: store operations the
    /// database failed ([`crate::db::failed`]), by the span's `error.type`.
    pub db_errors: IntCounterVec,
    /// `caravan_spans_total{service, outcome}`: sampled spans by what became
    /// of their export — `exported`, or `failed` (for good, after the
    /// exporter's retries).
    pub spans: IntCounterVec,
    /// `caravan_keys_reloads_total{outcome}`: changes of the keys file seen
    /// while serving — `reloaded`, or `refused` (it did not parse; the
    /// previous keys stay). A refused reload is an operator's typo to fix.
    pub keys_reloads: IntCounterVec,
    /// `caravan_worker_sweeps_total{job, outcome}`: a background job's
    /// sweeps for due items, `ok` or `failed` (the database did not answer):
    /// a job whose sweeps stop growing has stopped.
    pub worker_sweeps: IntCounterVec,
}

impl Metrics {
    fn new() -> Result<Self, prometheus::Error> {
        let registry = Registry::new();
        let mut described = Vec::new();
        let server_duration = HistogramVec::new(
            HistogramOpts::new(
                "rpc_server_duration_seconds",
                "Duration of gRPC calls served, by method and status code",
            )
            .buckets(BUCKETS.to_vec()),
            &["service", "method", "code"],
        )?;
        let client_duration = HistogramVec::new(
            HistogramOpts::new(
                "rpc_client_duration_seconds",
                "Duration of gRPC calls made to other services, by method and status code",
            )
            .buckets(BUCKETS.to_vec()),
            &["service", "method", "code"],
        )?;
        let shed = IntCounterVec::new(
            Opts::new("rpc_server_shed_total", "gRPC calls refused with RESOURCE_EXHAUSTED by load shedding"),
            &["service"],
        )?;
        let db_connections = IntGaugeVec::new(
            Opts::new("caravan_db_connections", "Database connections of the service's pool, in use or idle"),
            &["service", "state"],
        )?;
        let db_max_connections = IntGaugeVec::new(
            Opts::new("caravan_db_max_connections", "Most database connections the service's pool opens"),
            &["service"],
        )?;
        let db_errors = IntCounterVec::new(
            Opts::new(
                "caravan_db_errors_total",
                "Store operations the database failed, by error type (SQLSTATE, SQLite result code or class)",
            ),
            &["service", "error_type"],
        )?;
        let spans = IntCounterVec::new(
            Opts::new("caravan_spans_total", "Sampled spans by what became of their export (exported, failed)"),
            &["service", "outcome"],
        )?;
        described.extend(describe(&server_duration));
        described.extend(describe(&client_duration));
        described.extend(describe(&shed));
        described.extend(describe(&db_connections));
        described.extend(describe(&db_max_connections));
        described.extend(describe(&db_errors));
        let keys_reloads = IntCounterVec::new(
            Opts::new(
                "caravan_keys_reloads_total",
                "Changes of the keys file seen while serving: reloaded, or refused (the previous keys stay)",
            ),
            &["outcome"],
        )?;
        described.extend(describe(&spans));
        described.extend(describe(&keys_reloads));
        let worker_sweeps = IntCounterVec::new(
            Opts::new("caravan_worker_sweeps_total", "Background jobs' sweeps for due items, ok or failed"),
            &["job", "outcome"],
        )?;
        described.extend(describe(&worker_sweeps));
        for collector in [
            Box::new(server_duration.clone()) as Box<dyn Collector>,
            Box::new(client_duration.clone()),
            Box::new(shed.clone()),
            Box::new(db_connections.clone()),
            Box::new(db_max_connections.clone()),
            Box::new(db_errors.clone()),
            Box::new(spans.clone()),
            Box::new(keys_reloads.clone()),
            Box::new(worker_sweeps.clone()),
        ] {
            registry.register(collector)?;
        }
        Ok(Metrics {
            registry,
            described: std::sync::Mutex::new(described),
            server_duration,
            client_duration,
            shed,
            db_connections,
            db_max_connections,
            db_errors,
            spans,
            keys_reloads,
            worker_sweeps,
        })
    }

    /// Records what a service's pool holds now.
    pub fn sample_pool(&self, service: &str, db: &sea_orm::DatabaseConnection, max: u32) {
        let (size, idle) = match db.get_database_backend() {
            sea_orm::DatabaseBackend::Postgres => {
                let pool = db.get_postgres_connection_pool();
                (pool.size(), pool.num_idle())
            }
            sea_orm::DatabaseBackend::Sqlite => {
                let pool = db.get_sqlite_connection_pool();
                (pool.size(), pool.num_idle())
            }
            _ => return,
        };
        let idle = i64::try_from(idle).unwrap_or(i64::MAX);
        self.db_connections.with_label_values(&[service, "idle"]).set(idle);
        self.db_connections.with_label_values(&[service, "in_use"]).set((i64::from(size) - idle).max(0));
        self.db_max_connections.with_label_values(&[service]).set(i64::from(max));
    }

    /// Everything in the Prometheus text format: every series, then the
    /// name, help and type of each family with no series yet (a counter
    /// whose labels have not occurred), so what the process exports is all
    /// on the page from its start.
    pub fn render(&self) -> String {
        let mut out = Vec::new();
        let families = self.registry.gather();
        if let Err(e) = TextEncoder::new().encode(&families, &mut out) {
            tracing::warn!(error = %e, "encoding metrics");
        }
        let mut text = String::from_utf8(out).unwrap_or_default();
        let served: std::collections::HashSet<&str> = families.iter().map(|f| f.name()).collect();
        let described = self.described.lock().unwrap_or_else(|e| e.into_inner());
        for (name, lines) in described.iter() {
            if !served.contains(name.as_str()) {
                text.push_str(lines);
            }
        }
        text
    }
}

/// Each family of `collector` with its `# HELP` and `# TYPE` lines, read
/// once when it is registered.
fn describe(collector: &dyn Collector) -> Vec<(String, String)> {
    collector
        .collect()
        .into_iter()
        .map(|family| {
            let kind = match family.get_field_type() {
                MetricType::COUNTER => "counter",
                MetricType::GAUGE => "gauge",
                MetricType::HISTOGRAM => "histogram",
                MetricType::SUMMARY => "summary",
                MetricType::UNTYPED => "untyped",
            };
            let (name, help) = (family.name(), family.help().replace('\\', "\\\\").replace('\n', "\\n"));
            (name.to_owned(), format!("# HELP {name} {help}\n# TYPE {name} {kind}\n"))
        })
        .collect()
}

/// The process-wide metrics.
pub fn metrics() -> &'static Metrics {
    static METRICS: OnceLock<Metrics> = OnceLock::new();
    METRICS.get_or_init(|| match Metrics::new() {
        Ok(metrics) => metrics,
        // Only a programming error (a duplicate name) can fail here.
        Err(e) => panic!("metric definitions are inconsistent: {e}"),
    })
}

/// Registers a service's own metric in the process's registry and returns
/// it. Call once per metric (from a `OnceLock`); a name registered twice is
/// logged and the metric counts without being served.
pub fn register<C: Collector + Clone + 'static>(collector: C) -> C {
    let metrics = metrics();
    match metrics.registry.register(Box::new(collector.clone())) {
        Ok(()) => metrics.described.lock().unwrap_or_else(|e| e.into_inner()).extend(describe(&collector)),
        Err(e) => tracing::error!(error = %e, "a metric could not be registered"),
    }
    collector
}

/// Records one call's duration.
pub fn observe(histogram: &HistogramVec, service: &str, method: &str, code: tonic::Code, elapsed: Duration) {
    histogram.with_label_values(&[service, method, code_name(code)]).observe(elapsed.as_secs_f64());
}

/// The canonical upper-case name of a gRPC code, as in `rpc.grpc.status_code` docs.
pub fn code_name(code: tonic::Code) -> &'static str {
    use tonic::Code::*;
    match code {
        Ok => "OK",
        Cancelled => "CANCELLED",
        Unknown => "UNKNOWN",
        InvalidArgument => "INVALID_ARGUMENT",
        DeadlineExceeded => "DEADLINE_EXCEEDED",
        NotFound => "NOT_FOUND",
        AlreadyExists => "ALREADY_EXISTS",
        PermissionDenied => "PERMISSION_DENIED",
        ResourceExhausted => "RESOURCE_EXHAUSTED",
        FailedPrecondition => "FAILED_PRECONDITION",
        Aborted => "ABORTED",
        OutOfRange => "OUT_OF_RANGE",
        Unimplemented => "UNIMPLEMENTED",
        Internal => "INTERNAL",
        Unavailable => "UNAVAILABLE",
        DataLoss => "DATA_LOSS",
        Unauthenticated => "UNAUTHENTICATED",
    }
}

/// A bound `/metrics` endpoint, not yet serving.
#[derive(Debug)]
pub struct MetricsServer {
    listener: tokio::net::TcpListener,
}

impl MetricsServer {
    /// Binds `addr` (port 0 picks a free port).
    pub async fn bind(addr: SocketAddr) -> std::io::Result<Self> {
        Ok(MetricsServer { listener: tokio::net::TcpListener::bind(addr).await? })
    }

    /// The address actually bound.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves `GET /metrics` until `shutdown`.
    pub async fn serve(self, shutdown: CancellationToken) -> std::io::Result<()> {
        let app = axum::Router::new().route(
            "/metrics",
            axum::routing::get(|| async {
                ([(axum::http::header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], metrics().render())
            }),
        );
        axum::serve(self.listener, app).with_graceful_shutdown(async move { shutdown.cancelled().await }).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_family_with_no_series_yet_is_still_named_on_the_page() {
        let never = register(
            IntCounterVec::new(Opts::new("caravan_test_never_total", "Never counted\\ here"), &["why"]).unwrap(),
        );
        let text = metrics().render();
        assert!(text.contains("# HELP caravan_test_never_total Never counted\\\\ here\n"), "{text}");
        assert!(text.contains("# TYPE caravan_test_never_total counter\n"), "{text}");
        never.with_label_values(&["now"]).inc();
        let text = metrics().render();
        assert_eq!(text.matches("# TYPE caravan_test_never_total counter").count(), 1, "once, with its series");
        assert!(text.contains("caravan_test_never_total{why=\"now\"} 1"), "{text}");
        // The platform's own families are there before anything happened.
        assert!(text.contains("# TYPE rpc_server_shed_total counter"), "{text}");
    }
}
