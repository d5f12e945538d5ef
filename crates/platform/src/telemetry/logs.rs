//! Log lines: pretty for people, JSON for collectors, filtered by
//! `CARAVAN_LOG` (`EnvFilter` directives), each JSON line carrying the trace
//! and span ids of its span when it is traced.

use tracing::span;
use tracing_subscriber::{EnvFilter, Layer, fmt, registry::LookupSpan};

use super::{ClosesOnly, spans};
use crate::config::{LogConfig, LogFormat};

pub(super) fn log_layer<S>(log: &LogConfig) -> anyhow::Result<Box<dyn Layer<S> + Send + Sync>>
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
    Ok(if uses_span_scope(&log.filter) { layer } else { ClosesOnly::new(layer).boxed() })
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
        let span = cx.lookup_current();
        if let Some(span) = &span {
            line.insert("span".into(), span.name().into());
        }
        // The span's trace, or the unsampled trace the work belongs to (whose
        // spans are not traced).
        let traced = span.as_ref().and_then(spans::context_of).filter(|c| c.is_valid());
        if let Some(span_context) = traced.or_else(super::unsampled_context) {
            line.insert("trace_id".into(), span_context.trace_id().to_string().into());
            line.insert("span_id".into(), span_context.span_id().to_string().into());
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

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use tracing_subscriber::{Registry, layer::SubscriberExt as _};

    use super::*;

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
    fn json_lines_carry_the_trace_of_an_unsampled_call() {
        use opentelemetry_sdk::trace::{Sampler, SpanLimits};

        use crate::{config::ServiceKind, telemetry::SpanCollector};
        // Logs at info want the call's span (it is opened for them, not
        // traced); at warn nothing does, and it is not opened at all. Either
        // way a line logged in the call carries its trace.
        for (filter, span_opened) in [("info", true), ("warn", false)] {
            let captured = Captured::default();
            let writer = captured.clone();
            let log = LogConfig { format: LogFormat::Json, filter: filter.into() };
            let logs = log_layer_to(&log, move || writer.clone()).unwrap();
            let collector = SpanCollector::default();
            let never = Box::new(Sampler::TraceIdRatioBased(0.0));
            let spans = spans::SpanLayer::with_sampler(never, SpanLimits::default(), Arc::new(collector.clone()));
            let subscriber = super::super::subscriber_of(logs, Some(spans));
            let trace = tracing::subscriber::with_default(subscriber, || {
                let (span, work) =
                    spans::span_in_trace(None, ServiceKind::Orders, || tracing::info_span!("rpc.server"));
                assert_eq!(span.is_disabled(), !span_opened, "{filter}");
                let trace = work.unsampled().cloned().expect("an unsampled call");
                work.run_sync(|| {
                    let _entered = span.enter();
                    tracing::warn!("the database is slow");
                });
                trace
            });
            assert!(collector.spans().is_empty(), "nothing exported");
            let out = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
            let line: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
            assert_eq!(line["trace_id"], trace.trace_id().to_string(), "{filter}: {out}");
            assert_eq!(line["span_id"], trace.span_id().to_string(), "{filter}: {out}");
            assert_eq!(line.get("span").is_some(), span_opened, "{filter}: {out}");
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
}
