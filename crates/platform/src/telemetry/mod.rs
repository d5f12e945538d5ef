//! Logs and traces.
//!
//! One subscriber per process, installed as the global default: logs
//! ([`logs`]: pretty or JSON with the trace and span ids, filtered by
//! `CARAVAN_LOG`) and, when a collector is configured ([`OtelConfig`]),
//! OpenTelemetry spans.
//!
//! `tracing` spans become OpenTelemetry spans through caravan's span layer
//! ([`spans`]), which samples with the SDK's sampler and hands each finished,
//! sampled span to the SDK's batch span processor; `opentelemetry-otlp`
//! exports them over gRPC or HTTP ([`export`]).
//!
//! Every span reports the `service.name` of the service whose work it is,
//! also under `caravan up`, where four services share the process (and one
//! registry: libraries such as the SQLite driver carry span handles across
//! threads, which is unsafe across several registries). The server layer
//! and the worker run each service's work inside [`in_service`] and open
//! their spans in it ([`span_in_trace`]); a span is its parent's service's
//! work, else the running service's, and is exported with that service's
//! resource.
//!
//! Database work is traced as child spans of the call or job it serves, one
//! per store operation (a query, or a transaction of several statements),
//! following the OpenTelemetry database conventions; work run outside any
//! call (polls, claims, health checks) is not exported.
//!
//! The exporter's own calls do not pass through caravan's client layer, and
//! the libraries underneath are filtered out of the exported spans:
//! exporting makes no spans.

#[cfg(feature = "bridge-comparison")]
mod bridge;
mod config;
mod export;
mod logs;
mod propagation;
mod spans;

use std::{
    future::Future,
    sync::{Arc, Mutex},
};

pub use config::{OtelConfig, OtelSettings, Protocol};
use export::Pipeline;
pub use export::SpanCollector;
pub use propagation::{current_traceparent, span_context_of};
pub(crate) use propagation::{extract_trace_context, inject_trace_context};
use spans::SpanLayer;
pub use spans::{add_link, span_context, span_in_trace};
use tracing::{Dispatch, Level, span, subscriber::Interest};
use tracing_subscriber::{
    EnvFilter, Layer, Registry,
    filter::{FilterExt as _, LevelFilter, Targets, dynamic_filter_fn},
    fmt,
    layer::{self, SubscriberExt as _},
    registry::LookupSpan,
};

use crate::config::{LogConfig, ServiceKind};

tokio::task_local! {
    static SERVICE: ServiceKind;
}

/// Runs `fut` as `service`'s work: the spans it starts report that service.
pub fn in_service<F: Future>(service: ServiceKind, fut: F) -> impl Future<Output = F::Output> {
    SERVICE.scope(service, fut)
}

/// Runs `f` as `service`'s work (the synchronous part of a call).
pub fn in_service_sync<R>(service: ServiceKind, f: impl FnOnce() -> R) -> R {
    SERVICE.sync_scope(service, f)
}

/// The service whose work is running here, if any.
pub fn current_service() -> Option<ServiceKind> {
    SERVICE.try_with(|s| *s).ok()
}

/// The process's telemetry: create once in `main`, then call
/// [`Telemetry::shutdown`] before exiting so the last spans are exported.
#[derive(Debug)]
pub struct Telemetry {
    pipeline: Mutex<Option<Arc<Pipeline>>>,
    #[cfg(feature = "bridge-comparison")]
    bridge: Mutex<Option<opentelemetry_sdk::trace::SdkTracerProvider>>,
}

/// The dispatch a service's requests and background work run under: the
/// process's global subscriber in production; tests may give a service one of
/// its own (for instance collecting its spans in memory).
#[derive(Debug, Clone)]
pub struct ServiceTelemetry {
    /// Logs, and traces when export is on.
    pub dispatch: Dispatch,
    /// The service whose work runs under it (set when the service is built).
    pub service: Option<ServiceKind>,
}

impl ServiceTelemetry {
    /// The global default subscriber.
    pub fn global() -> Self {
        ServiceTelemetry { dispatch: tracing::dispatcher::get_default(Dispatch::clone), service: None }
    }

    /// A dispatch with logs (per `log`) and every span kept as it ends by
    /// the returned collector (the SDK's sampler, per the standard
    /// variables: by default every trace), for tests.
    pub fn collecting(service: ServiceKind, log: &LogConfig) -> anyhow::Result<(Self, SpanCollector)> {
        let collector = SpanCollector::default();
        let otel = otel_layer(SpanLayer::new(Arc::new(collector.clone())));
        let subscriber = Registry::default().with(logs::log_layer(log)?).with(otel);
        Ok((ServiceTelemetry { dispatch: Dispatch::new(subscriber), service: Some(service) }, collector))
    }

    /// The same telemetry, for `service`'s work.
    pub fn for_service(mut self, service: ServiceKind) -> Self {
        self.service = Some(service);
        self
    }

    /// Runs `fut` under this telemetry, as its service's work.
    pub fn run<F: Future>(&self, fut: F) -> impl Future<Output = F::Output> + use<F> {
        let fut = tracing::instrument::WithSubscriber::with_subscriber(fut, self.dispatch.clone());
        let service = self.service;
        async move {
            match service {
                Some(service) => in_service(service, fut).await,
                None => fut.await,
            }
        }
    }
}

impl Telemetry {
    /// Installs the process's subscriber. Spans of a service of `services`
    /// carry that service's `service.name`; the rest (start-up, tools, and
    /// the one service of `caravan serve`) carry `process_name`, unless
    /// `OTEL_SERVICE_NAME` names the process. With export on, the batch
    /// processors' threads start here; call it within the async runtime.
    pub fn init(
        log: &LogConfig,
        otel: &OtelConfig,
        process_name: &str,
        services: &[ServiceKind],
    ) -> anyhow::Result<Self> {
        #[cfg(feature = "bridge-comparison")]
        if otel.endpoint.is_some() && bridge::requested() {
            let (layer, provider) = bridge::layer(otel, process_name)?;
            let subscriber = Registry::default().with(logs::log_layer(log)?).with(otel_layer(layer));
            tracing::subscriber::set_global_default(subscriber)
                .map_err(|e| anyhow::anyhow!("a global subscriber is already installed: {e}"))?;
            return Ok(Telemetry { pipeline: Mutex::new(None), bridge: Mutex::new(Some(provider)) });
        }
        let pipeline = match &otel.endpoint {
            None => None,
            Some(_) => Some(Arc::new(Pipeline::start(otel, process_name, services)?)),
        };
        let otel_layer = pipeline.clone().map(|pipeline| otel_layer(SpanLayer::new(pipeline)));
        let subscriber = Registry::default().with(logs::log_layer(log)?).with(otel_layer);
        tracing::subscriber::set_global_default(subscriber)
            .map_err(|e| anyhow::anyhow!("a global subscriber is already installed: {e}"))?;
        Ok(Telemetry {
            pipeline: Mutex::new(pipeline),
            #[cfg(feature = "bridge-comparison")]
            bridge: Mutex::new(None),
        })
    }

    /// The telemetry of one service of this process.
    pub fn service(&self, service: ServiceKind) -> ServiceTelemetry {
        ServiceTelemetry::global().for_service(service)
    }

    /// Exports what is queued and stops the exporters, so the last spans
    /// leave before exit. Blocks: call it off the async runtime's workers
    /// (which the gRPC exporter still needs).
    pub fn shutdown(&self) {
        let pipeline = self.pipeline.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(pipeline) = pipeline
            && let Err(e) = pipeline.shutdown(crate::shutdown::TRACE_FLUSH)
        {
            tracing::warn!(error = format!("{e:#}"), "flushing traces at exit");
        }
        #[cfg(feature = "bridge-comparison")]
        if let Some(provider) = self.bridge.lock().unwrap_or_else(|e| e.into_inner()).take() {
            let _ = provider.shutdown_with_timeout(crate::shutdown::TRACE_FLUSH);
        }
    }
}

/// The OpenTelemetry layer behind the exported spans' filter. Spans carry
/// what the conventions name, not the source location, thread or timing
/// fields tracing could add (they would only cost export bytes); they are
/// never looked at as they are entered and left, and caravan reads a span's
/// context through the span ([`span_context`]), never through
/// `Context::current`.
fn otel_layer<S, L>(layer: L) -> impl Layer<S>
where
    S: tracing::Subscriber + for<'a> LookupSpan<'a>,
    L: Layer<S>,
{
    ClosesOnly(layer.with_filter(otel_filter()))
}

/// A layer that sees spans open, change and close, but not each entry and
/// exit. Neither the OpenTelemetry layer nor the log layer (but for span
/// directives, see [`log_layer`]) uses them, and the filter in front of
/// either would look the span up at every poll of every instrumented future
/// only to pass them on. A span ends when it closes — when its last handle
/// drops, right after its future's last poll, or after the response body of
/// a call has gone out. Everything else goes to the inner layer,
/// `downcast_raw` included: per-layer filters find their state through it,
/// and so does the bridge's `tracing-opentelemetry` layer when compared.
struct ClosesOnly<L>(L);

// One of caravan's two `unsafe` blocks: `Layer::downcast_raw` is an unsafe method, and
// a wrapping layer must forward it (as tracing-subscriber's own wrappers do).
#[allow(unsafe_code)]
impl<S, L> Layer<S> for ClosesOnly<L>
where
    S: tracing::Subscriber,
    L: Layer<S>,
{
    fn on_register_dispatch(&self, subscriber: &Dispatch) {
        self.0.on_register_dispatch(subscriber);
    }

    fn on_layer(&mut self, subscriber: &mut S) {
        self.0.on_layer(subscriber);
    }

    fn register_callsite(&self, metadata: &'static tracing::Metadata<'static>) -> tracing::subscriber::Interest {
        self.0.register_callsite(metadata)
    }

    fn enabled(&self, metadata: &tracing::Metadata<'_>, cx: layer::Context<'_, S>) -> bool {
        self.0.enabled(metadata, cx)
    }

    fn on_new_span(&self, attrs: &span::Attributes<'_>, id: &span::Id, cx: layer::Context<'_, S>) {
        self.0.on_new_span(attrs, id, cx);
    }

    fn max_level_hint(&self) -> Option<LevelFilter> {
        self.0.max_level_hint()
    }

    fn on_record(&self, id: &span::Id, values: &span::Record<'_>, cx: layer::Context<'_, S>) {
        self.0.on_record(id, values, cx);
    }

    fn on_follows_from(&self, id: &span::Id, follows: &span::Id, cx: layer::Context<'_, S>) {
        self.0.on_follows_from(id, follows, cx);
    }

    fn event_enabled(&self, event: &tracing::Event<'_>, cx: layer::Context<'_, S>) -> bool {
        self.0.event_enabled(event, cx)
    }

    fn on_event(&self, event: &tracing::Event<'_>, cx: layer::Context<'_, S>) {
        self.0.on_event(event, cx);
    }

    fn on_close(&self, id: span::Id, cx: layer::Context<'_, S>) {
        self.0.on_close(id, cx);
    }

    fn on_id_change(&self, old: &span::Id, new: &span::Id, cx: layer::Context<'_, S>) {
        self.0.on_id_change(old, new, cx);
    }

    unsafe fn downcast_raw(&self, id: std::any::TypeId) -> Option<*const ()> {
        if id == std::any::TypeId::of::<Self>() {
            return Some(self as *const Self as *const ());
        }
        // SAFETY: the inner layer answers for its own types, as it would
        // unwrapped.
        unsafe { self.0.downcast_raw(id) }
    }
}

/// Spans exported: ours at info and above, the database work of a call or
/// job (never the polls, claims and health checks outside one), and never
/// the spans of the libraries underneath (HTTP/2 internals, sea-orm's and
/// sqlx's per-statement spans).
///
/// Database work is traced per store operation (one query, or one
/// transaction of several statements): the `db` spans the stores open, with
/// the database conventions' attributes. A span per statement would cost
/// more than half the tracing of an order, for little an SRE does not see
/// in the operation's span and the database's own statistics.
fn otel_filter<S>() -> impl tracing_subscriber::layer::Filter<S>
where
    S: tracing::Subscriber + for<'a> LookupSpan<'a>,
{
    // A static filter (not an `EnvFilter`, which looks up every span at every
    // enter and exit in case a span directive cares about it).
    let levels = Targets::new().with_default(Level::INFO).with_targets(
        ["h2", "hyper", "tower", "tonic", "sqlx", "sea_orm", "opentelemetry"].map(|t| (t, LevelFilter::OFF)),
    );
    // Only `db` spans depend on where they start; and with no level hint
    // of its own the pair would have none, and every `debug!` and `trace!`
    // in the process (ours and the libraries') would pass the global level
    // check only to be turned down one callsite at a time.
    let database_work_in_calls =
        dynamic_filter_fn(|metadata, cx| metadata.name() != "db" || cx.lookup_current().is_some())
            .with_max_level_hint(LevelFilter::TRACE)
            .with_callsite_filter(
                |metadata| {
                    if metadata.name() == "db" { Interest::sometimes() } else { Interest::always() }
                },
            );
    levels.and(database_work_in_calls)
}

/// For tests: logs to the test harness' captured output when `TEST_LOG` is
/// set, otherwise nothing. Safe to call from every test.
pub fn init_for_tests() {
    if std::env::var_os("TEST_LOG").is_some() {
        let filter =
            EnvFilter::try_from_env("TEST_LOG").unwrap_or_else(|_| EnvFilter::new(crate::config::DEFAULT_LOG_FILTER));
        let _ = tracing::subscriber::set_global_default(
            Registry::default().with(fmt::layer().with_test_writer().with_filter(filter)),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::LogFormat;

    #[test]
    fn tracing_does_not_lift_the_process_log_level() {
        // A `debug!` anywhere in the process is turned away by the global
        // level check, traced or not, unless a log directive asks for it.
        for (filter, level) in [("info", LevelFilter::INFO), ("warn,caravan_orders=debug", LevelFilter::DEBUG)] {
            let log = LogConfig { format: LogFormat::Pretty, filter: filter.to_owned() };
            let untraced = Registry::default().with(logs::log_layer(&log).unwrap());
            let layer = SpanLayer::new(Arc::new(SpanCollector::default()));
            let traced = Registry::default().with(logs::log_layer(&log).unwrap()).with(otel_layer(layer));
            assert_eq!(tracing::Subscriber::max_level_hint(&untraced), Some(level), "{filter}");
            assert_eq!(tracing::Subscriber::max_level_hint(&traced), Some(level), "{filter}, traced");
        }
    }
}
