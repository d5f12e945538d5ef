//! Logs and traces.
//!
//! One subscriber per process, installed as the global default: logs (pretty
//! or JSON with the trace and span ids, filtered by `CARAVAN_LOG`) and, when
//! `OTEL_EXPORTER_OTLP_ENDPOINT` is set, an OpenTelemetry layer exporting
//! over OTLP/gRPC with the sampler of `OTEL_TRACES_SAMPLER`.
//!
//! Spans become OpenTelemetry spans through caravan's own layer
//! ([`spans`]), which writes each exported span in OTLP's protobuf as it
//! records it, and caravan's own OTLP/gRPC exporter ([`otlp`]), which sends
//! those bytes in batches from a thread of its own.
//!
//! Every span reports the `service.name` of the service whose work it is,
//! also under `caravan up`, where four services share the process (and one
//! registry: libraries such as the SQLite driver carry span handles across
//! threads, which is unsafe across several registries). The server layer
//! and the worker run each service's work inside [`in_service`] and give
//! their spans to it ([`continue_trace`]); a span is its parent's service's
//! work, else the running service's, and is exported with that service's
//! resource.
//!
//! Database work is traced as child spans of the call or job it serves, one
//! per store operation (a query, or a transaction of several statements),
//! following the OpenTelemetry database conventions; work run outside any
//! call (polls, claims, health checks) is not exported.
//!
//! The OTLP exporter's own gRPC calls do not pass through caravan's client
//! layer, and the libraries underneath are filtered out of the exported
//! spans: exporting makes no spans.

mod otlp;
mod spans;
mod wire;

use std::{
    collections::HashMap,
    future::Future,
    sync::{Arc, Mutex},
    time::Duration,
};

use opentelemetry::KeyValue;
use opentelemetry_sdk::Resource;
pub use otlp::SpanCollector;
use otlp::{OtlpExporter, SpanSink};
use spans::SpanLayer;
pub use spans::{add_link, continue_trace, span_context};
use tracing::{Dispatch, Level, span, subscriber::Interest};
use tracing_subscriber::{
    EnvFilter, Layer, Registry,
    filter::{FilterExt as _, LevelFilter, Targets, dynamic_filter_fn},
    fmt,
    layer::{self, SubscriberExt as _},
    registry::LookupSpan,
};

use crate::config::{ConfigError, LogConfig, LogFormat, Secret, ServiceKind};

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

/// OpenTelemetry settings, from the standard `OTEL_*` variables. Where a
/// `OTEL_EXPORTER_OTLP_TRACES_*` variable is set, it takes precedence over
/// its `OTEL_EXPORTER_OTLP_*` counterpart.
#[derive(Debug, Clone, PartialEq)]
pub struct OtelConfig {
    /// `OTEL_EXPORTER_OTLP_ENDPOINT`: OTLP/gRPC collector; no export when
    /// unset (or when `OTEL_SDK_DISABLED` is `true`).
    pub endpoint: Option<String>,
    /// From `OTEL_TRACES_SAMPLER` and `OTEL_TRACES_SAMPLER_ARG`.
    pub sampler: SamplerConfig,
    /// `OTEL_EXPORTER_OTLP_HEADERS`: metadata sent with every export
    /// (`key=value,…`, values percent-decoded), such as a collector's API
    /// key: never printed.
    pub headers: Vec<(String, Secret<String>)>,
    /// `OTEL_EXPORTER_OTLP_TIMEOUT` (milliseconds, default 10 s): one export
    /// attempt's limit.
    pub timeout: Duration,
    /// `OTEL_EXPORTER_OTLP_COMPRESSION`: `gzip`, or `none` (the default).
    pub gzip: bool,
    /// `OTEL_EXPORTER_OTLP_CERTIFICATE`: the CA (PEM) that signs an
    /// `https://` collector's certificate; the public roots when unset.
    pub certificate: Option<std::path::PathBuf>,
    /// `OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE` and `_CLIENT_KEY` (PEM), for
    /// a collector that asks for mutual TLS; both or neither.
    pub client_certificate: Option<std::path::PathBuf>,
    /// See [`OtelConfig::client_certificate`].
    pub client_key: Option<std::path::PathBuf>,
    /// `OTEL_BSP_SCHEDULE_DELAY` (milliseconds, default 5 s): the longest a
    /// finished span waits before it is sent.
    pub schedule_delay: Duration,
    /// `OTEL_BSP_EXPORT_TIMEOUT` (milliseconds, default 30 s): the longest
    /// one export is retried.
    pub export_timeout: Duration,
    /// `OTEL_BSP_MAX_EXPORT_BATCH_SIZE`: most spans per export; default
    /// [`DEFAULT_EXPORT_BATCH`].
    pub export_batch: usize,
    /// `OTEL_BSP_MAX_QUEUE_SIZE`: most finished spans waiting for export
    /// (more are dropped, and counted in `caravan_spans_total`); default
    /// [`DEFAULT_QUEUE`].
    pub queue: usize,
}

/// Spans per export unless `OTEL_BSP_MAX_EXPORT_BATCH_SIZE` says otherwise:
/// four times the SDK's 512. An export's cost is mostly per request (each
/// batch is one OTLP request per service), so at 100 % sampling fewer, larger
/// requests cut tracing's cost; at the festival's peak (~5,000 spans/s a
/// core) a batch still leaves within half a second.
pub const DEFAULT_EXPORT_BATCH: usize = 2048;
/// Queued spans unless `OTEL_BSP_MAX_QUEUE_SIZE` says otherwise: four
/// batches, so a slow collector costs spans only after seconds of backlog.
pub const DEFAULT_QUEUE: usize = 4 * DEFAULT_EXPORT_BATCH;

/// The standard samplers.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum SamplerConfig {
    /// `always_on`.
    AlwaysOn,
    /// `always_off`.
    AlwaysOff,
    /// `traceidratio` with its ratio.
    Ratio(f64),
    /// `parentbased_always_on` (the default).
    ParentBasedAlwaysOn,
    /// `parentbased_always_off`.
    ParentBasedAlwaysOff,
    /// `parentbased_traceidratio` with its ratio.
    ParentBasedRatio(f64),
}

impl OtelConfig {
    /// Reads the standard variables: `OTEL_SDK_DISABLED`,
    /// `OTEL_EXPORTER_OTLP_{ENDPOINT,HEADERS,TIMEOUT,COMPRESSION,CERTIFICATE,
    /// CLIENT_CERTIFICATE,CLIENT_KEY}` (each also as `OTEL_EXPORTER_OTLP_TRACES_…`,
    /// which wins), `OTEL_TRACES_SAMPLER`, `OTEL_TRACES_SAMPLER_ARG` and
    /// `OTEL_BSP_{SCHEDULE_DELAY,EXPORT_TIMEOUT,MAX_EXPORT_BATCH_SIZE,MAX_QUEUE_SIZE}`.
    pub fn from_env(env: &HashMap<String, String>) -> Result<Self, ConfigError> {
        let get = |name: &str| env.get(name).map(|v| v.trim()).filter(|v| !v.is_empty());
        // The traces-only variable, else the general one; with the name read,
        // for errors.
        let exporter = |suffix: &str| -> Option<(String, &str)> {
            [format!("OTEL_EXPORTER_OTLP_TRACES_{suffix}"), format!("OTEL_EXPORTER_OTLP_{suffix}")]
                .into_iter()
                .find_map(|name| get(&name).map(|value| (name, value)))
        };
        let disabled = match get("OTEL_SDK_DISABLED").map(str::to_ascii_lowercase).as_deref() {
            None | Some("false") => false,
            Some("true") => true,
            Some(other) => {
                return Err(ConfigError::new("OTEL_SDK_DISABLED", format!("`{other}` is not true or false")));
            }
        };
        let endpoint = match exporter("ENDPOINT") {
            None => None,
            Some((name, raw)) => {
                let url =
                    url::Url::parse(raw).map_err(|e| ConfigError::new(&name, format!("`{raw}` is not a URL: {e}")))?;
                if !matches!(url.scheme(), "http" | "https") {
                    return Err(ConfigError::new(&name, "must be http:// or https://"));
                }
                Some(raw.to_owned())
            }
        };
        let endpoint = endpoint.filter(|_| !disabled);
        let ratio = || -> Result<f64, ConfigError> {
            match get("OTEL_TRACES_SAMPLER_ARG") {
                None => Ok(1.0),
                Some(raw) => raw.parse::<f64>().ok().filter(|r| (0.0..=1.0).contains(r)).ok_or_else(|| {
                    ConfigError::new("OTEL_TRACES_SAMPLER_ARG", format!("`{raw}` is not a ratio in [0, 1]"))
                }),
            }
        };
        let sampler = match get("OTEL_TRACES_SAMPLER") {
            None | Some("parentbased_always_on") => SamplerConfig::ParentBasedAlwaysOn,
            Some("always_on") => SamplerConfig::AlwaysOn,
            Some("always_off") => SamplerConfig::AlwaysOff,
            Some("traceidratio") => SamplerConfig::Ratio(ratio()?),
            Some("parentbased_always_off") => SamplerConfig::ParentBasedAlwaysOff,
            Some("parentbased_traceidratio") => SamplerConfig::ParentBasedRatio(ratio()?),
            Some(other) => {
                return Err(ConfigError::new(
                    "OTEL_TRACES_SAMPLER",
                    format!(
                        "`{other}` is not one of always_on, always_off, traceidratio, parentbased_always_on, parentbased_always_off, parentbased_traceidratio"
                    ),
                ));
            }
        };
        let headers = match exporter("HEADERS") {
            None => Vec::new(),
            Some((name, raw)) => parse_headers(raw).map_err(|e| ConfigError::new(&name, e))?,
        };
        // A positive number of milliseconds in `name`, when it is set.
        let millis = |name: &str, raw: &str| -> Result<Duration, ConfigError> {
            raw.parse::<u64>()
                .ok()
                .filter(|ms| *ms > 0)
                .map(Duration::from_millis)
                .ok_or_else(|| ConfigError::new(name, format!("`{raw}` is not a positive number of milliseconds")))
        };
        let timeout = match exporter("TIMEOUT") {
            None => Duration::from_secs(10),
            Some((name, raw)) => millis(&name, raw)?,
        };
        let gzip = match exporter("COMPRESSION") {
            None => false,
            Some((_, "gzip")) => true,
            Some((_, "none")) => false,
            Some((name, other)) => {
                return Err(ConfigError::new(&name, format!("`{other}` is not gzip or none")));
            }
        };
        let path = |suffix: &str| exporter(suffix).map(|(_, raw)| std::path::PathBuf::from(raw));
        let (certificate, client_certificate, client_key) =
            (path("CERTIFICATE"), path("CLIENT_CERTIFICATE"), path("CLIENT_KEY"));
        if client_certificate.is_some() != client_key.is_some() {
            return Err(ConfigError::new(
                "OTEL_EXPORTER_OTLP_CLIENT_KEY",
                "a client certificate and its key go together: set both OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE and OTEL_EXPORTER_OTLP_CLIENT_KEY, or neither",
            ));
        }
        let bsp = |name: &str, default: Duration| get(name).map_or(Ok(default), |raw| millis(name, raw));
        let schedule_delay = bsp("OTEL_BSP_SCHEDULE_DELAY", Duration::from_secs(5))?;
        let export_timeout = bsp("OTEL_BSP_EXPORT_TIMEOUT", Duration::from_secs(30))?;
        let count = |name: &str, default: usize| -> Result<usize, ConfigError> {
            match get(name) {
                None => Ok(default),
                Some(raw) => raw
                    .parse::<usize>()
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or_else(|| ConfigError::new(name, format!("`{raw}` is not a positive number of spans"))),
            }
        };
        let queue = count("OTEL_BSP_MAX_QUEUE_SIZE", DEFAULT_QUEUE)?;
        // The SDK's rule: a batch is never larger than the queue.
        let export_batch = count("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", DEFAULT_EXPORT_BATCH)?.min(queue);
        Ok(OtelConfig {
            endpoint,
            sampler,
            headers,
            timeout,
            gzip,
            certificate,
            client_certificate,
            client_key,
            schedule_delay,
            export_timeout,
            export_batch,
            queue,
        })
    }
}

/// `key=value,key2=value2`, as the W3C baggage format writes it: values are
/// percent-decoded; keys are gRPC metadata keys (lower case).
fn parse_headers(raw: &str) -> Result<Vec<(String, Secret<String>)>, String> {
    raw.split(',')
        .map(str::trim)
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (key, value) = pair.split_once('=').ok_or_else(|| format!("`{pair}` is not key=value"))?;
            let key = key.trim().to_ascii_lowercase();
            let value = percent_encoding::percent_decode_str(value.trim())
                .decode_utf8()
                .map_err(|_| format!("the value of `{key}` is not UTF-8 once decoded"))?
                .into_owned();
            key.parse::<tonic::metadata::AsciiMetadataKey>()
                .map_err(|_| format!("`{key}` is not a valid metadata key"))?;
            value
                .parse::<tonic::metadata::AsciiMetadataValue>()
                .map_err(|_| format!("the value of `{key}` cannot be sent as metadata"))?;
            Ok((key, Secret::new(value)))
        })
        .collect()
}

/// The process's telemetry: create once in `main`, then call
/// [`Telemetry::shutdown`] before exiting so the last spans are exported.
#[derive(Debug)]
pub struct Telemetry {
    sink: Mutex<Option<Arc<OtlpExporter>>>,
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
    /// the returned collector (the default sampler), for tests.
    pub fn collecting(service: ServiceKind, log: &LogConfig) -> anyhow::Result<(Self, SpanCollector)> {
        let collector = SpanCollector::default();
        let otel = otel_layer(SpanLayer::new(SamplerConfig::ParentBasedAlwaysOn, Arc::new(collector.clone())));
        let subscriber = Registry::default().with(log_layer(log)?).with(otel);
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
    /// Installs the process's subscriber. Spans of a service's work carry
    /// that service's `service.name`; the rest (start-up, tools) carry
    /// `process_name` — the service under `caravan serve`, `caravan` under
    /// `caravan up`. With export on, the exporter's thread starts here.
    pub fn init(log: &LogConfig, otel: &OtelConfig, process_name: &str) -> anyhow::Result<Self> {
        let sink = match &otel.endpoint {
            None => None,
            Some(endpoint) => Some(Arc::new(OtlpExporter::start(otel, endpoint, process_name)?)),
        };
        let otel_layer = sink.clone().map(|sink| otel_layer(SpanLayer::new(otel.sampler, sink)));
        let subscriber = Registry::default().with(log_layer(log)?).with(otel_layer);
        tracing::subscriber::set_global_default(subscriber)
            .map_err(|e| anyhow::anyhow!("a global subscriber is already installed: {e}"))?;
        Ok(Telemetry { sink: Mutex::new(sink) })
    }

    /// The telemetry of one service of this process.
    pub fn service(&self, service: ServiceKind) -> ServiceTelemetry {
        ServiceTelemetry::global().for_service(service)
    }

    /// Flushes and stops the exporter, so the last spans leave before exit.
    pub fn shutdown(&self) {
        let sink = self.sink.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(sink) = sink
            && let Err(e) = sink.shutdown(crate::shutdown::TRACE_FLUSH)
        {
            tracing::warn!(error = format!("{e:#}"), "flushing traces at exit");
        }
    }
}

/// The OpenTelemetry resource of a process: `service.name` as given,
/// `service.namespace` is `caravan`.
pub fn resource(service_name: &str) -> Resource {
    Resource::builder()
        .with_service_name(service_name.to_owned())
        .with_attributes([
            KeyValue::new("service.namespace", "caravan"),
            KeyValue::new("service.version", env!("CARGO_PKG_VERSION")),
        ])
        .build()
}

/// The OpenTelemetry layer behind the exported spans' filter. Spans carry
/// what the conventions name, not the source location, thread or timing
/// fields tracing could add (they would only cost export bytes); they are
/// never looked at as they are entered and left, and caravan reads a span's
/// context through the span ([`span_context`]), never through
/// `Context::current`.
fn otel_layer<S>(layer: SpanLayer) -> impl Layer<S>
where
    S: tracing::Subscriber + for<'a> LookupSpan<'a>,
{
    ClosesOnly(layer.with_filter(otel_filter()))
}

/// A layer that sees spans open, change and close, but not each entry and
/// exit. Neither the OpenTelemetry layer nor the log layer (but for span
/// directives, see [`log_layer`]) uses them, and the filter in front of
/// either would look the span up at every poll of every instrumented future
/// only to pass them on. A span ends when it closes — when its last handle
/// drops, right after its future's last poll, or after the response body of
/// a call has gone out. Everything else, `downcast_raw` included (how the
/// layer is found, see [`continue_trace`]), goes to the inner layer.
struct ClosesOnly<L>(L);

// The one `unsafe` in caravan: `Layer::downcast_raw` is an unsafe method, and
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

fn log_layer<S>(log: &LogConfig) -> anyhow::Result<Box<dyn Layer<S> + Send + Sync>>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    log_layer_to(log, std::io::stdout)
}

/// [`log_layer`], writing to `writer` (tests read their lines back).
fn log_layer_to<S, W>(log: &LogConfig, writer: W) -> anyhow::Result<Box<dyn Layer<S> + Send + Sync>>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
    W: for<'w> fmt::MakeWriter<'w> + Send + Sync + 'static,
{
    let filter = EnvFilter::try_new(&log.filter)
        .map_err(|e| anyhow::anyhow!("CARAVAN_LOG: `{}` is not a valid filter: {e}", log.filter))?;
    let layer = match log.format {
        LogFormat::Pretty => fmt::layer()
            .with_writer(writer)
            .with_target(true)
            .with_ansi(colours())
            .fmt_fields(TextFields)
            .with_filter(filter)
            .boxed(),
        LogFormat::Json => fmt::layer()
            .with_writer(writer)
            .event_format(JsonLines)
            .fmt_fields(NoSpanFields)
            .with_filter(filter)
            .boxed(),
    };
    // The log layer uses span entries and exits only for directives that
    // name spans (`target[span{field}]=level`), whose filter follows the
    // spans entered; without one, it need not look each span up at every
    // poll of every instrumented future.
    Ok(if uses_span_scope(&log.filter) { layer } else { ClosesOnly(layer).boxed() })
}

/// Colours in pretty logs only for a person at a terminal, and not under
/// `NO_COLOR`: in a file or a collector escape codes are noise, and colouring
/// the fields of every span as it opens costs a busy server CPU (BENCHMARKS.md).
fn colours() -> bool {
    use std::io::IsTerminal as _;
    std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// Fields in pretty logs (a span's, prefixed to each line inside it, and an
/// event's): what tells one call or operation from another (`otel.name`, the
/// caller, the event's own fields), not the OpenTelemetry attributes that
/// restate it (`rpc.*`, `server.*`, `db.*`, `otel.kind`, status codes), which
/// the exported span and the outcome line carry. The fmt layer formats a
/// span's fields as the span opens, whether or not anything logs inside it:
/// all of them cost a busy server CPU (BENCHMARKS.md).
#[derive(Debug, Clone, Copy)]
struct TextFields;

/// Whether a field only restates its span's OpenTelemetry attributes.
fn restates_the_span(name: &str) -> bool {
    name.starts_with("rpc.")
        || name.starts_with("server.")
        || name.starts_with("db.")
        || name.starts_with("log.")
        || (name.starts_with("otel.") && name != "otel.name")
}

impl<'w> fmt::FormatFields<'w> for TextFields {
    fn format_fields<R: tracing_subscriber::field::RecordFields>(
        &self,
        writer: fmt::format::Writer<'w>,
        fields: R,
    ) -> std::fmt::Result {
        let mut visitor = TextVisitor { writer, first: true, result: Ok(()) };
        fields.record(&mut visitor);
        visitor.result
    }

    fn add_fields(&self, current: &'w mut fmt::FormattedFields<Self>, fields: &span::Record<'_>) -> std::fmt::Result {
        // Fields recorded later (a call's status) are mostly conventions:
        // append only what is left of them.
        let mut more = String::new();
        self.format_fields(fmt::format::Writer::new(&mut more), fields)?;
        if !more.is_empty() {
            if !current.fields.is_empty() {
                current.fields.push(' ');
            }
            current.fields.push_str(&more);
        }
        Ok(())
    }
}

/// `name=value` pairs separated by spaces, as tracing's default fields are;
/// an event's `message` bare.
struct TextVisitor<'w> {
    writer: fmt::format::Writer<'w>,
    first: bool,
    result: std::fmt::Result,
}

impl TextVisitor<'_> {
    fn write(&mut self, field: &tracing::field::Field, value: std::fmt::Arguments<'_>) {
        if self.result.is_err() || restates_the_span(field.name()) {
            return;
        }
        let separator = if std::mem::replace(&mut self.first, false) { "" } else { " " };
        self.result = if field.name() == "message" {
            write!(self.writer, "{separator}{value}")
        } else {
            write!(self.writer, "{separator}{}={value}", field.name())
        };
    }
}

impl tracing::field::Visit for TextVisitor<'_> {
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        if field.name() == "message" {
            self.write(field, format_args!("{value}"));
        } else {
            self.write(field, format_args!("{value:?}"));
        }
    }

    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        self.write(field, format_args!("{value:?}"));
    }
}

/// Span fields in JSON logs: none are written (a line names its span and
/// trace, see [`JsonLines`]), so none are formatted as each span opens.
#[derive(Debug, Clone, Copy)]
struct NoSpanFields;

impl<'w> fmt::FormatFields<'w> for NoSpanFields {
    fn format_fields<R: tracing_subscriber::field::RecordFields>(
        &self,
        _writer: fmt::format::Writer<'w>,
        _fields: R,
    ) -> std::fmt::Result {
        Ok(())
    }

    fn add_fields(&self, _current: &'w mut fmt::FormattedFields<Self>, _fields: &span::Record<'_>) -> std::fmt::Result {
        Ok(())
    }
}

/// Whether an `EnvFilter` directive string filters by span (`[…]`).
fn uses_span_scope(filter: &str) -> bool {
    filter.contains('[')
}

/// One JSON object per event, for log collectors: `timestamp`, `level`,
/// `target`, the event's fields (`message` among them), the current span's
/// name, and the `trace_id` / `span_id` of its trace when it is traced, so a
/// log line leads to its trace and back.
#[derive(Debug, Clone, Copy)]
struct JsonLines;

impl<S, N> fmt::FormatEvent<S, N> for JsonLines
where
    S: tracing::Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> fmt::FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        cx: &fmt::FmtContext<'_, S, N>,
        mut writer: fmt::format::Writer<'_>,
        event: &tracing::Event<'_>,
    ) -> std::fmt::Result {
        let metadata = event.metadata();
        let mut line = serde_json::Map::new();
        let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
        line.insert("timestamp".into(), now.into());
        line.insert("level".into(), metadata.level().as_str().into());
        line.insert("target".into(), metadata.target().into());
        event.record(&mut JsonFields(&mut line));
        if let Some(span) = cx.lookup_current() {
            line.insert("span".into(), span.name().into());
            if let Some(span_context) = spans::context_of(&span).filter(|c| c.is_valid()) {
                line.insert("trace_id".into(), span_context.trace_id().to_string().into());
                line.insert("span_id".into(), span_context.span_id().to_string().into());
            }
        }
        writeln!(writer, "{}", serde_json::Value::Object(line))
    }
}

/// Records an event's fields into a JSON object.
struct JsonFields<'a>(&'a mut serde_json::Map<String, serde_json::Value>);

impl tracing::field::Visit for JsonFields<'_> {
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        self.0.insert(field.name().into(), value.into());
    }

    fn record_i64(&mut self, field: &tracing::field::Field, value: i64) {
        self.0.insert(field.name().into(), value.into());
    }

    fn record_u64(&mut self, field: &tracing::field::Field, value: u64) {
        self.0.insert(field.name().into(), value.into());
    }

    fn record_f64(&mut self, field: &tracing::field::Field, value: f64) {
        self.0.insert(field.name().into(), value.into());
    }

    fn record_bool(&mut self, field: &tracing::field::Field, value: bool) {
        self.0.insert(field.name().into(), value.into());
    }

    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        self.0.insert(field.name().into(), format!("{value:?}").into());
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

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    #[test]
    fn samplers_follow_the_standard_variables() {
        assert_eq!(OtelConfig::from_env(&env(&[])).unwrap().sampler, SamplerConfig::ParentBasedAlwaysOn);
        assert_eq!(OtelConfig::from_env(&env(&[])).unwrap().endpoint, None);
        let config = OtelConfig::from_env(&env(&[
            ("OTEL_TRACES_SAMPLER", "parentbased_traceidratio"),
            ("OTEL_TRACES_SAMPLER_ARG", "0.25"),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4317"),
        ]))
        .unwrap();
        assert_eq!(config.sampler, SamplerConfig::ParentBasedRatio(0.25));
        assert_eq!(config.endpoint.as_deref(), Some("http://collector:4317"));
        for (var, value) in [("OTEL_TRACES_SAMPLER", "sometimes"), ("OTEL_EXPORTER_OTLP_ENDPOINT", "collector:4317")] {
            assert_eq!(OtelConfig::from_env(&env(&[(var, value)])).unwrap_err().variable, var);
        }
        let err =
            OtelConfig::from_env(&env(&[("OTEL_TRACES_SAMPLER", "traceidratio"), ("OTEL_TRACES_SAMPLER_ARG", "2")]))
                .unwrap_err();
        assert_eq!(err.variable, "OTEL_TRACES_SAMPLER_ARG");
    }

    /// Everything written through it, for reading back.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn pretty_lines_name_the_call_and_caller_without_restating_its_attributes() {
        let captured = Captured::default();
        let writer = captured.clone();
        let log = LogConfig { format: LogFormat::Pretty, filter: "info".into() };
        let subscriber = Registry::default().with(log_layer_to(&log, move || writer.clone()).unwrap());
        tracing::subscriber::with_default(subscriber, || {
            let span = tracing::info_span!(
                "rpc.server",
                otel.name = "caravan.catalog.v1.CatalogService/GetProduct",
                otel.kind = "server",
                otel.status_code = tracing::field::Empty,
                rpc.system = "grpc",
                rpc.grpc.status_code = tracing::field::Empty,
                server.port = 50051,
                enduser.id = "hema",
            );
            let _entered = span.enter();
            span.record("rpc.grpc.status_code", 5);
            span.record("otel.status_code", "ERROR");
            tracing::info!(product = "products/p1", "not found: {}", "p1");
        });
        let out = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
        assert!(
            out.contains(r#"rpc.server{otel.name="caravan.catalog.v1.CatalogService/GetProduct" enduser.id="hema"}: "#),
            "{out}"
        );
        assert!(out.contains(r#"not found: p1 product="products/p1""#), "{out}");
        for restated in ["otel.kind", "rpc.system", "rpc.grpc", "server.port", "otel.status_code"] {
            assert!(!out.contains(restated), "{restated} in {out}");
        }
    }

    #[test]
    fn json_lines_name_the_span_and_format_none_of_its_fields() {
        use tracing_subscriber::registry::LookupSpan as _;
        let captured = Captured::default();
        let writer = captured.clone();
        let log = LogConfig { format: LogFormat::Json, filter: "info".into() };
        let subscriber = Registry::default().with(log_layer_to(&log, move || writer.clone()).unwrap());
        let formatted = tracing::subscriber::with_default(subscriber, || {
            let span = tracing::info_span!(
                "rpc.server",
                otel.name = "caravan.catalog.v1.CatalogService/GetProduct",
                rpc.grpc.status_code = tracing::field::Empty,
                enduser.id = "hema",
            );
            let _entered = span.enter();
            span.record("rpc.grpc.status_code", 5);
            tracing::info!(product = "products/p1", "not found");
            // What the log layer keeps of the span's fields: nothing, not
            // even formatted once as it opened.
            tracing::dispatcher::get_default(|dispatch| {
                let registry = dispatch.downcast_ref::<Registry>().expect("a registry underneath");
                let id = span.id().expect("an enabled span");
                let data = registry.span(&id).expect("the span");
                let extensions = data.extensions();
                extensions.get::<fmt::FormattedFields<NoSpanFields>>().map(|f| f.fields.clone())
            })
        });
        assert_eq!(formatted.as_deref(), Some(""), "span fields formatted for JSON logs");
        let out = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
        let line: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
        assert_eq!(line["message"], "not found", "{out}");
        assert_eq!(line["product"], "products/p1");
        assert_eq!(line["span"], "rpc.server");
        assert_eq!(line["level"], "INFO");
        for field in ["hema", "enduser", "otel.name", "status_code"] {
            assert!(!out.contains(field), "{field} in {out}");
        }
    }

    #[test]
    fn only_span_directives_need_the_log_layer_to_see_entries() {
        for plain in ["warn", "info,caravan_orders=debug", "caravan_platform::rpc=trace"] {
            assert!(!uses_span_scope(plain), "{plain}");
        }
        for scoped in ["warn,[rpc.server]=debug", "info,caravan_orders[db{db.operation.name=reserve}]=trace"] {
            assert!(uses_span_scope(scoped), "{scoped}");
        }
    }

    #[test]
    fn the_batch_processor_takes_its_standard_variables() {
        let defaults = OtelConfig::from_env(&env(&[])).unwrap();
        assert_eq!((defaults.export_batch, defaults.queue), (DEFAULT_EXPORT_BATCH, DEFAULT_QUEUE));
        let set = OtelConfig::from_env(&env(&[
            ("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "100"),
            ("OTEL_BSP_MAX_QUEUE_SIZE", "1000"),
        ]))
        .unwrap();
        assert_eq!((set.export_batch, set.queue), (100, 1000));
        let clamped = OtelConfig::from_env(&env(&[("OTEL_BSP_MAX_QUEUE_SIZE", "100")])).unwrap();
        assert_eq!((clamped.export_batch, clamped.queue), (100, 100), "a batch never exceeds the queue");
        for (var, value) in [("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "0"), ("OTEL_BSP_MAX_QUEUE_SIZE", "many")] {
            assert_eq!(OtelConfig::from_env(&env(&[(var, value)])).unwrap_err().variable, var);
        }
    }

    #[test]
    fn the_exporter_takes_its_standard_variables() {
        let defaults = OtelConfig::from_env(&env(&[])).unwrap();
        assert_eq!(defaults.timeout, Duration::from_secs(10));
        assert_eq!(
            (defaults.schedule_delay, defaults.export_timeout),
            (Duration::from_secs(5), Duration::from_secs(30))
        );
        assert!(!defaults.gzip && defaults.headers.is_empty() && defaults.certificate.is_none());

        let set = OtelConfig::from_env(&env(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4317"),
            ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "https://traces.example:4317"),
            ("OTEL_EXPORTER_OTLP_HEADERS", "api-key=s%3Dcret, X-Tenant = festival ,"),
            ("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "2500"),
            ("OTEL_EXPORTER_OTLP_COMPRESSION", "gzip"),
            ("OTEL_EXPORTER_OTLP_CERTIFICATE", "/etc/otel/ca.pem"),
            ("OTEL_BSP_SCHEDULE_DELAY", "200"),
            ("OTEL_BSP_EXPORT_TIMEOUT", "1000"),
        ]))
        .unwrap();
        assert_eq!(set.endpoint.as_deref(), Some("https://traces.example:4317"), "the traces variable wins");
        let headers: Vec<_> = set.headers.iter().map(|(k, v)| (k.as_str(), v.expose().as_str())).collect();
        assert_eq!(headers, [("api-key", "s=cret"), ("x-tenant", "festival")]);
        assert!(!format!("{set:?}").contains("s=cret"), "header values are never printed");
        assert_eq!(set.timeout, Duration::from_millis(2500));
        assert!(set.gzip);
        assert_eq!(set.certificate.as_deref(), Some(std::path::Path::new("/etc/otel/ca.pem")));
        assert_eq!((set.schedule_delay, set.export_timeout), (Duration::from_millis(200), Duration::from_secs(1)));

        let disabled = env(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4317"), ("OTEL_SDK_DISABLED", "true")]);
        assert_eq!(OtelConfig::from_env(&disabled).unwrap().endpoint, None);

        for (var, value) in [
            ("OTEL_EXPORTER_OTLP_HEADERS", "no-equals-sign"),
            ("OTEL_EXPORTER_OTLP_HEADERS", "bad key=1"),
            ("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "soon"),
            ("OTEL_EXPORTER_OTLP_COMPRESSION", "zstd"),
            ("OTEL_BSP_SCHEDULE_DELAY", "0"),
            ("OTEL_SDK_DISABLED", "maybe"),
            ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "collector:4317"),
        ] {
            assert_eq!(OtelConfig::from_env(&env(&[(var, value)])).unwrap_err().variable, var, "{var}={value}");
        }
        let half_pair = env(&[("OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE", "/etc/otel/client.pem")]);
        assert_eq!(OtelConfig::from_env(&half_pair).unwrap_err().variable, "OTEL_EXPORTER_OTLP_CLIENT_KEY");
    }

    fn test_layer() -> SpanLayer {
        SpanLayer::new(SamplerConfig::AlwaysOn, Arc::new(SpanCollector::default()))
    }

    #[test]
    fn tracing_does_not_lift_the_process_log_level() {
        // A `debug!` anywhere in the process is turned away by the global
        // level check, traced or not, unless a log directive asks for it.
        for (filter, level) in [("info", LevelFilter::INFO), ("warn,caravan_orders=debug", LevelFilter::DEBUG)] {
            let log = LogConfig { format: LogFormat::Pretty, filter: filter.to_owned() };
            let untraced = Registry::default().with(log_layer(&log).unwrap());
            let traced = Registry::default().with(log_layer(&log).unwrap()).with(otel_layer(test_layer()));
            assert_eq!(tracing::Subscriber::max_level_hint(&untraced), Some(level), "{filter}");
            assert_eq!(tracing::Subscriber::max_level_hint(&traced), Some(level), "{filter}, traced");
        }
    }
}
