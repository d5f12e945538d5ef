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
//! and the worker open each call's or run's span with [`span_in_trace`],
//! which decides its sampling first, and run its work as the [`Work`] it
//! returns (whose service, and whose trace when it is not sampled and no
//! span holds it); a span is its parent's service's work, else the running
//! service's, and is exported with that service's resource. An unsampled
//! call opens no spans at all unless the logs want them.
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
    filter::{LevelFilter, Targets},
    fmt,
    layer::{self, SubscriberExt as _},
    registry::LookupSpan,
};

use crate::config::{LogConfig, ServiceKind};

tokio::task_local! {
    static WORK: Work;
}

/// A unit of a service's work as a task runs it: whose work it is, and the
/// trace it belongs to when no span carries that trace.
///
/// A call or background run whose trace is not sampled opens no spans at all
/// (the exported spans' layer turns them away before they exist, unless the
/// logs want them): what tracing costs at the deployed 10 % is then what it
/// costs to decide, not to build spans nobody exports. Its trace's identity
/// lives here instead, so what the trace needs outside the process still
/// holds: the `traceparent` written on each call made and stored with each
/// item ([`current_trace_context`]), and the `trace_id` of each log line.
#[derive(Debug, Clone)]
pub struct Work {
    service: ServiceKind,
    /// The trace of an unsampled call or run: its id, the span id it is
    /// known by downstream, and the unsampled flag.
    unsampled: Option<opentelemetry::trace::SpanContext>,
}

impl Work {
    /// `service`'s work, in whatever trace its spans say.
    pub fn of(service: ServiceKind) -> Self {
        Work { service, unsampled: None }
    }

    /// The work running here, if any.
    pub fn current() -> Option<Work> {
        WORK.try_with(Clone::clone).ok()
    }

    /// The trace of this work when it is not sampled.
    pub fn unsampled(&self) -> Option<&opentelemetry::trace::SpanContext> {
        self.unsampled.as_ref()
    }

    /// Runs `fut` as this work.
    pub fn run<F: Future>(self, fut: F) -> impl Future<Output = F::Output> {
        WORK.scope(self, fut)
    }

    /// Runs `f` as this work (the synchronous part of a call).
    pub fn run_sync<R>(self, f: impl FnOnce() -> R) -> R {
        WORK.sync_scope(self, f)
    }

    /// Runs `fut` as `work` when there is one, else as it is.
    pub async fn within<F: Future>(work: Option<Work>, fut: F) -> F::Output {
        match work {
            Some(work) => work.run(fut).await,
            None => fut.await,
        }
    }

    /// Runs `f` as `work` when there is one, else as it is.
    pub fn within_sync<R>(work: Option<Work>, f: impl FnOnce() -> R) -> R {
        match work {
            Some(work) => work.run_sync(f),
            None => f(),
        }
    }
}

/// The service whose work is running here, if any.
pub fn current_service() -> Option<ServiceKind> {
    WORK.try_with(|work| work.service).ok()
}

/// Whether the work running here belongs to a trace that is not sampled
/// (whose spans are not opened).
fn unsampled_here() -> bool {
    WORK.try_with(|work| work.unsampled.is_some()).unwrap_or(false)
}

/// The trace context of the work running here: the current span's when it
/// is traced, else that of the unsampled trace the work belongs to. What is
/// propagated to a callee and stored with an item.
pub fn current_trace_context() -> Option<opentelemetry::trace::SpanContext> {
    span_context(&tracing::Span::current()).or_else(unsampled_context)
}

/// The trace of the work running here when it is not sampled.
fn unsampled_context() -> Option<opentelemetry::trace::SpanContext> {
    WORK.try_with(|work| work.unsampled.clone()).ok().flatten()
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
        let subscriber = subscriber(log, Some(SpanLayer::new(Arc::new(collector.clone()))))?;
        Ok((ServiceTelemetry { dispatch: Dispatch::new(subscriber), service: Some(service) }, collector))
    }

    /// The same telemetry, for `service`'s work.
    pub fn for_service(mut self, service: ServiceKind) -> Self {
        self.service = Some(service);
        self
    }

    /// Runs `fut` under this telemetry, as its service's work.
    pub fn run<F: Future>(&self, fut: F) -> impl Future<Output = F::Output> + use<F> {
        self.run_as(self.service.map(Work::of), fut)
    }

    /// Runs `fut` under this telemetry as `work` (a run whose trace was
    /// decided as it opened, [`span_in_trace`]).
    pub fn run_as<F: Future>(&self, work: Option<Work>, fut: F) -> impl Future<Output = F::Output> + use<F> {
        Work::within(work, tracing::instrument::WithSubscriber::with_subscriber(fut, self.dispatch.clone()))
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
            tracing::subscriber::set_global_default(subscriber(log, Some(layer))?)
                .map_err(|e| anyhow::anyhow!("a global subscriber is already installed: {e}"))?;
            return Ok(Telemetry { pipeline: Mutex::new(None), bridge: Mutex::new(Some(provider)) });
        }
        let pipeline = match &otel.endpoint {
            None => None,
            Some(_) => Some(Arc::new(Pipeline::start(otel, process_name, services)?)),
        };
        let spans = pipeline.clone().map(|pipeline| SpanLayer::new(pipeline));
        tracing::subscriber::set_global_default(subscriber(log, spans)?)
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

/// The process's subscriber: logs per `log`, and `spans` (the exported
/// spans' layer, when traces are exported) behind [`otel_layer`], which
/// needs to know what the logs want.
fn subscriber<L>(log: &LogConfig, spans: Option<L>) -> anyhow::Result<impl tracing::Subscriber + Send + Sync + 'static>
where
    L: Layer<layer::Layered<LogLayer, Registry>> + Send + Sync + 'static,
{
    Ok(subscriber_of(logs::log_layer(log)?, spans))
}

/// The process's log layer, as [`logs::log_layer`] builds it.
type LogLayer = Box<dyn Layer<Registry> + Send + Sync>;

/// [`subscriber`], around a log layer already built (tests write its lines
/// somewhere they can read them back).
fn subscriber_of<L>(logs: LogLayer, spans: Option<L>) -> impl tracing::Subscriber + Send + Sync + 'static
where
    L: Layer<layer::Layered<LogLayer, Registry>> + Send + Sync + 'static,
{
    let logs_level = logs.max_level_hint().unwrap_or(LevelFilter::TRACE);
    Registry::default().with(logs).with(spans.map(|spans| otel_layer(spans, logs_level)))
}

/// The OpenTelemetry layer behind the exported spans' filter. Spans carry
/// what the conventions name, not the source location, thread or timing
/// fields tracing could add (they would only cost export bytes); they are
/// never looked at as they are entered and left, and caravan reads a span's
/// context through the span ([`span_context`]), never through
/// `Context::current`.
///
/// `logs` is the most verbose level the log layer wants anything at (its
/// level hint): a span less severe than that which the exported spans'
/// filter turns away is wanted by no one, and is not opened at all
/// ([`ClosesOnly::unwanted`]).
fn otel_layer<S, L>(layer: L, logs: LevelFilter) -> impl Layer<S>
where
    S: tracing::Subscriber + for<'a> LookupSpan<'a>,
    L: Layer<S>,
{
    ClosesOnly {
        inner: tracing_subscriber::Layer::with_filter(layer, otel_filter()),
        unwanted: Some(Unwanted { logs, exported: otel_filter() }),
    }
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
struct ClosesOnly<L> {
    inner: L,
    /// In front of the exported spans' layer: the spans it would not
    /// export and the logs would not want are not opened — for any layer.
    unwanted: Option<Unwanted>,
}

/// Spans no layer wants: less severe than anything the logs want, and
/// turned away by the exported spans' filter — those of an unsampled trace
/// ([`Work`]), and the `db` spans of work outside a call or job (a live
/// stream's polls, a batch run for no one call). A per-layer filter only
/// hides a span from its own layer: the registry still creates it (its
/// slot, its parent's reference, its filter state), every other layer is
/// asked about it and it is entered at every poll; refusing it globally
/// makes the 90 % of calls that are not sampled, and the background work
/// never exported, cost what they cost untraced.
struct Unwanted {
    logs: LevelFilter,
    exported: ExportedSpans,
}

impl<L> ClosesOnly<L> {
    fn new(inner: L) -> Self {
        ClosesOnly { inner, unwanted: None }
    }
}

// One of caravan's two `unsafe` blocks: `Layer::downcast_raw` is an unsafe method, and
// a wrapping layer must forward it (as tracing-subscriber's own wrappers do).
#[allow(unsafe_code)]
impl<S, L> Layer<S> for ClosesOnly<L>
where
    S: tracing::Subscriber,
    L: Layer<S>,
{
    fn on_register_dispatch(&self, subscriber: &Dispatch) {
        self.inner.on_register_dispatch(subscriber);
    }

    fn on_layer(&mut self, subscriber: &mut S) {
        self.inner.on_layer(subscriber);
    }

    fn register_callsite(&self, metadata: &'static tracing::Metadata<'static>) -> tracing::subscriber::Interest {
        self.inner.register_callsite(metadata)
    }

    fn enabled(&self, metadata: &tracing::Metadata<'_>, cx: layer::Context<'_, S>) -> bool {
        // Any current span counts as the call or job a `db` span belongs
        // to here (the filter itself asks for one it exports), so this
        // refuses no span the filter would keep.
        if let Some(unwanted) = &self.unwanted
            && metadata.is_span()
            && *metadata.level() > unwanted.logs
            && !unwanted.exported.exports(metadata, || cx.current_span().id().is_some())
        {
            return false;
        }
        self.inner.enabled(metadata, cx)
    }

    fn on_new_span(&self, attrs: &span::Attributes<'_>, id: &span::Id, cx: layer::Context<'_, S>) {
        self.inner.on_new_span(attrs, id, cx);
    }

    fn max_level_hint(&self) -> Option<LevelFilter> {
        self.inner.max_level_hint()
    }

    fn on_record(&self, id: &span::Id, values: &span::Record<'_>, cx: layer::Context<'_, S>) {
        self.inner.on_record(id, values, cx);
    }

    fn on_follows_from(&self, id: &span::Id, follows: &span::Id, cx: layer::Context<'_, S>) {
        self.inner.on_follows_from(id, follows, cx);
    }

    fn event_enabled(&self, event: &tracing::Event<'_>, cx: layer::Context<'_, S>) -> bool {
        self.inner.event_enabled(event, cx)
    }

    fn on_event(&self, event: &tracing::Event<'_>, cx: layer::Context<'_, S>) {
        self.inner.on_event(event, cx);
    }

    fn on_close(&self, id: span::Id, cx: layer::Context<'_, S>) {
        self.inner.on_close(id, cx);
    }

    fn on_id_change(&self, old: &span::Id, new: &span::Id, cx: layer::Context<'_, S>) {
        self.inner.on_id_change(old, new, cx);
    }

    unsafe fn downcast_raw(&self, id: std::any::TypeId) -> Option<*const ()> {
        if id == std::any::TypeId::of::<Self>() {
            return Some(self as *const Self as *const ());
        }
        // SAFETY: the inner layer answers for its own types, as it would
        // unwrapped.
        unsafe { self.inner.downcast_raw(id) }
    }
}

/// Spans exported: ours at info and above, in sampled traces; the database
/// work of a call or job (never the polls, claims and health checks outside
/// one); never the spans of the libraries underneath (HTTP/2 internals,
/// sea-orm's and sqlx's per-statement spans).
///
/// Database work is traced per store operation (one query, or one
/// transaction of several statements): the `db` spans the stores open, with
/// the database conventions' attributes. A span per statement would cost
/// more than half the tracing of an order, for little an SRE does not see
/// in the operation's span and the database's own statistics.
fn otel_filter() -> ExportedSpans {
    ExportedSpans {
        levels: Targets::new().with_default(Level::INFO).with_targets(
            ["h2", "hyper", "tower", "tonic", "sqlx", "sea_orm", "opentelemetry"].map(|t| (t, LevelFilter::OFF)),
        ),
    }
}

/// The exported spans' filter ([`otel_filter`]). A static filter for
/// levels and targets (not an `EnvFilter`, which looks up every span at
/// every enter and exit in case a span directive cares about it), and, for
/// each span as it is about to open, where it would be:
/// - opened by [`span_in_trace`]: exported when its trace is sampled;
/// - in the work of an unsampled trace ([`Work`]): not, nor its events;
/// - a `db` span: only within a call or job.
///
/// A span it turns away that the logs do not want either never exists
/// ([`Unwanted`]).
struct ExportedSpans {
    levels: Targets,
}

impl ExportedSpans {
    /// Whether the span or event `metadata` describes is exported, `in_span`
    /// telling whether it opens within a call's or job's span.
    fn exports(&self, metadata: &tracing::Metadata<'_>, in_span: impl FnOnce() -> bool) -> bool {
        // A call's own span, decided a moment ago: nine in ten are not
        // sampled, and need no look at their target.
        if let Some(sampled) = spans::opening().filter(|_| metadata.is_span()) {
            return sampled && self.levels.would_enable(metadata.target(), metadata.level());
        }
        // Likewise everything in their work: a task-local read, cheaper
        // than the scan of targets.
        if unsampled_here() {
            return false;
        }
        self.levels.would_enable(metadata.target(), metadata.level())
            && (metadata.name() != "db" || !metadata.is_span() || in_span())
    }
}

impl<S> tracing_subscriber::layer::Filter<S> for ExportedSpans
where
    S: tracing::Subscriber + for<'a> LookupSpan<'a>,
{
    fn enabled(&self, metadata: &tracing::Metadata<'_>, cx: &layer::Context<'_, S>) -> bool {
        self.exports(metadata, || cx.lookup_current().is_some())
    }

    fn callsite_enabled(&self, metadata: &'static tracing::Metadata<'static>) -> Interest {
        if self.levels.would_enable(metadata.target(), metadata.level()) {
            Interest::sometimes()
        } else {
            Interest::never()
        }
    }

    // Its own level, so that with tracing on every `debug!` and `trace!` in
    // the process (ours and the libraries') is still turned away by the
    // global level check, unless the logs want it.
    fn max_level_hint(&self) -> Option<LevelFilter> {
        Some(LevelFilter::INFO)
    }
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
            let untraced = subscriber(&log, None::<SpanLayer>).unwrap();
            let traced = subscriber(&log, Some(SpanLayer::new(Arc::new(SpanCollector::default())))).unwrap();
            assert_eq!(tracing::Subscriber::max_level_hint(&untraced), Some(level), "{filter}");
            assert_eq!(tracing::Subscriber::max_level_hint(&traced), Some(level), "{filter}, traced");
        }
    }
}
