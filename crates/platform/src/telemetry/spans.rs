//! The OpenTelemetry span layer: each exported `tracing` span becomes one
//! OpenTelemetry span, built straight from what the span recorded.
//!
//! As a span opens, the layer gives it its OpenTelemetry identity (trace id,
//! span id, sampled flag — from its parent, or a new trace) and the service
//! whose work it is, and, when it is sampled, starts recording: name, kind,
//! attributes, events, links, status. As it closes, the recording becomes the
//! `SpanData` the batch processor of its service exports. Nothing else runs
//! per span: no tracer, no SDK span behind a lock, no span processor's
//! `on_start`, no context objects — the per-span work of a bridge built on
//! the SDK's tracer was most of what tracing cost a busy server.
//!
//! Fields follow the conventions `tracing-opentelemetry` set: `otel.name` is
//! the span's name (else the `tracing` name), `otel.kind` its kind,
//! `otel.status_code` (`ok`, `error`) and `otel.status_description` (an error
//! with that description) its status; every other field is an attribute. An
//! event inside a span is a span event named by its message, and an
//! `ERROR`-level event marks the span failed.
//!
//! Sampling follows the standard samplers ([`SamplerConfig`]) with the SDK's
//! rules, decided as a span opens (spans that start a trace in this process
//! may be decided again by [`continue_trace`], which gives them their remote
//! parent).

use std::{borrow::Cow, time::SystemTime};

use opentelemetry::{
    InstrumentationScope, KeyValue, Value,
    trace::{Event, Link, SpanContext, SpanId, SpanKind, Status, TraceFlags, TraceId, TraceState},
};
use opentelemetry_sdk::{
    error::OTelSdkResult,
    trace::{IdGenerator as _, RandomIdGenerator, SpanData, SpanEvents, SpanLinks, SpanProcessor},
};
use tracing::{Dispatch, field::Field, span};
use tracing_subscriber::{Layer, Registry, layer, registry::LookupSpan};

use super::SamplerConfig;
use crate::config::ServiceKind;

/// Most events and links one span keeps (the SDK's default limits); more are
/// counted as dropped.
const MAX_EVENTS: usize = 128;
const MAX_LINKS: usize = 128;

/// Where finished spans go: each service's to its own processor (whose
/// exporter carries that service's resource, so its `service.name`), the
/// rest (start-up, tools) to the process's.
pub(crate) struct Sinks {
    services: Vec<(ServiceKind, Box<dyn SpanProcessor>)>,
    rest: Box<dyn SpanProcessor>,
}

impl Sinks {
    /// One processor per service, and one for work of no service.
    pub(crate) fn by_service(
        services: Vec<(ServiceKind, Box<dyn SpanProcessor>)>,
        rest: Box<dyn SpanProcessor>,
    ) -> Self {
        Sinks { services, rest }
    }

    /// Every span to `processor` (tests).
    pub(crate) fn one(processor: Box<dyn SpanProcessor>) -> Self {
        Sinks { services: Vec::new(), rest: processor }
    }

    fn of(&self, service: Option<ServiceKind>) -> &dyn SpanProcessor {
        service
            .and_then(|service| self.services.iter().find(|(kind, _)| *kind == service))
            .map_or(self.rest.as_ref(), |(_, processor)| processor.as_ref())
    }

    fn all(&self) -> impl Iterator<Item = &dyn SpanProcessor> {
        self.services.iter().map(|(_, p)| p.as_ref()).chain(std::iter::once(self.rest.as_ref()))
    }

    /// Exports what is queued and stops every processor; the first failure is
    /// returned, after all were asked.
    pub(crate) fn shutdown(&self, timeout: std::time::Duration) -> OTelSdkResult {
        self.all().map(|p| p.shutdown_with_timeout(timeout)).fold(Ok(()), Result::and)
    }
}

impl std::fmt::Debug for Sinks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sinks").field("services", &self.services.iter().map(|(k, _)| k).collect::<Vec<_>>()).finish()
    }
}

/// The layer. Wrap it in the exported spans' filter; it needs no span entries
/// or exits.
pub(crate) struct SpanLayer {
    sampler: SamplerConfig,
    scope: InstrumentationScope,
    ids: RandomIdGenerator,
    sinks: std::sync::Arc<Sinks>,
}

impl SpanLayer {
    pub(crate) fn new(sampler: SamplerConfig, sinks: std::sync::Arc<Sinks>) -> Self {
        let scope =
            InstrumentationScope::builder(env!("CARGO_PKG_NAME")).with_version(env!("CARGO_PKG_VERSION")).build();
        SpanLayer { sampler, scope, ids: RandomIdGenerator::default(), sinks }
    }
}

/// What the layer keeps of a span it traces, in the span's extensions.
#[derive(Debug)]
struct Traced {
    context: SpanContext,
    parent: SpanId,
    parent_is_remote: bool,
    /// Whose work the span is: its parent's service, else the service running
    /// when it opened. Kept here because spans may close on other threads (the
    /// SQLite driver's).
    service: Option<ServiceKind>,
    /// What is exported when it closes; `None` when not sampled.
    recording: Option<Recording>,
}

#[derive(Debug)]
struct Recording {
    name: Cow<'static, str>,
    kind: SpanKind,
    start: SystemTime,
    attributes: Vec<KeyValue>,
    events: Vec<Event>,
    dropped_events: u32,
    links: Vec<Link>,
    dropped_links: u32,
    status: Status,
}

impl Recording {
    fn new(name: &'static str, fields: usize) -> Self {
        Recording {
            name: Cow::Borrowed(name),
            kind: SpanKind::Internal,
            start: SystemTime::now(),
            attributes: Vec::with_capacity(fields),
            events: Vec::new(),
            dropped_events: 0,
            links: Vec::new(),
            dropped_links: 0,
            status: Status::Unset,
        }
    }

    /// A later status never takes a failure's description away.
    fn set_status(&mut self, status: Status) {
        match (&self.status, &status) {
            (Status::Error { description }, Status::Error { description: new })
                if new.is_empty() && !description.is_empty() => {}
            _ => self.status = status,
        }
    }

    fn link(&mut self, span_context: SpanContext) {
        if self.links.len() < MAX_LINKS {
            self.links.push(Link::with_context(span_context));
        } else {
            self.dropped_links += 1;
        }
    }
}

/// The standard samplers' decision for a span opening in trace `trace_id`
/// under `parent` (the SDK's rules: a parent-based sampler follows a valid
/// parent's sampled flag; a ratio is read from the trace id's low bits).
fn sampled(sampler: SamplerConfig, parent: Option<&SpanContext>, trace_id: TraceId) -> bool {
    let ratio = |r: f64| {
        if r >= 1.0 {
            return true;
        }
        let bound = (r.max(0.0) * (1u64 << 63) as f64) as u64;
        let low = u64::from_be_bytes(trace_id.to_bytes()[8..].try_into().unwrap_or([0xff; 8]));
        (low >> 1) < bound
    };
    let parent = parent.filter(|p| p.is_valid());
    match sampler {
        SamplerConfig::AlwaysOn => true,
        SamplerConfig::AlwaysOff => false,
        SamplerConfig::Ratio(r) => ratio(r),
        SamplerConfig::ParentBasedAlwaysOn => parent.is_none_or(SpanContext::is_sampled),
        SamplerConfig::ParentBasedAlwaysOff => parent.is_some_and(SpanContext::is_sampled),
        SamplerConfig::ParentBasedRatio(r) => parent.map_or_else(|| ratio(r), SpanContext::is_sampled),
    }
}

fn flags(sampled: bool) -> TraceFlags {
    if sampled { TraceFlags::SAMPLED } else { TraceFlags::NOT_SAMPLED }
}

impl<S> Layer<S> for SpanLayer
where
    S: tracing::Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &span::Attributes<'_>, id: &span::Id, cx: layer::Context<'_, S>) {
        let Some(span) = cx.span(id) else { return };
        let parent = span.parent().and_then(|parent| {
            parent.extensions().get::<Traced>().map(|traced| (traced.context.clone(), traced.service))
        });
        let service = parent.as_ref().and_then(|(_, service)| *service).or_else(super::current_service);
        let (trace_id, parent_id, state) = match &parent {
            Some((parent, _)) => (parent.trace_id(), parent.span_id(), parent.trace_state().clone()),
            None => (self.ids.new_trace_id(), SpanId::INVALID, TraceState::NONE),
        };
        let is_sampled = sampled(self.sampler, parent.as_ref().map(|(p, _)| p), trace_id);
        // A span that starts a trace here may still be given a remote parent
        // ([`continue_trace`]) that decides otherwise: record it either way.
        let recording = (is_sampled || parent.is_none()).then(|| {
            let mut recording = Recording::new(attrs.metadata().name(), attrs.fields().len());
            attrs.record(&mut SpanFields(&mut recording));
            recording
        });
        let context = SpanContext::new(trace_id, self.ids.new_span_id(), flags(is_sampled), false, state);
        let traced = Traced { context, parent: parent_id, parent_is_remote: false, service, recording };
        span.extensions_mut().insert(traced);
    }

    fn on_record(&self, id: &span::Id, values: &span::Record<'_>, cx: layer::Context<'_, S>) {
        let Some(span) = cx.span(id) else { return };
        let mut extensions = span.extensions_mut();
        if let Some(recording) = extensions.get_mut::<Traced>().and_then(|t| t.recording.as_mut()) {
            values.record(&mut SpanFields(recording));
        }
    }

    fn on_follows_from(&self, id: &span::Id, follows: &span::Id, cx: layer::Context<'_, S>) {
        let Some(linked) = cx.span(follows).and_then(|f| f.extensions().get::<Traced>().map(|t| t.context.clone()))
        else {
            return;
        };
        if let Some(span) = cx.span(id)
            && let Some(recording) = span.extensions_mut().get_mut::<Traced>().and_then(|t| t.recording.as_mut())
        {
            recording.link(linked);
        }
    }

    fn on_event(&self, event: &tracing::Event<'_>, cx: layer::Context<'_, S>) {
        let Some(span) = cx.event_span(event) else { return };
        let mut extensions = span.extensions_mut();
        let Some(recording) = extensions.get_mut::<Traced>().and_then(|t| t.recording.as_mut()) else { return };
        let metadata = event.metadata();
        if *metadata.level() == tracing::Level::ERROR && matches!(recording.status, Status::Unset) {
            recording.status = Status::error("");
        }
        if recording.events.len() >= MAX_EVENTS {
            recording.dropped_events += 1;
            return;
        }
        let mut fields = EventFields {
            name: None,
            attributes: vec![
                KeyValue::new("level", metadata.level().as_str()),
                KeyValue::new("target", metadata.target()),
            ],
        };
        event.record(&mut fields);
        let name = fields.name.map_or(Cow::Borrowed(metadata.name()), Cow::Owned);
        recording.events.push(Event::new(name, SystemTime::now(), fields.attributes, 0));
    }

    fn on_close(&self, id: span::Id, cx: layer::Context<'_, S>) {
        let Some(span) = cx.span(&id) else { return };
        // Taken out first: the processor is called with no lock held.
        let Some(traced) = span.extensions_mut().remove::<Traced>() else { return };
        let Some(recording) = traced.recording else { return };
        if !traced.context.is_sampled() {
            return;
        }
        let mut events = SpanEvents::default();
        events.events = recording.events;
        events.dropped_count = recording.dropped_events;
        let mut links = SpanLinks::default();
        links.links = recording.links;
        links.dropped_count = recording.dropped_links;
        self.sinks.of(traced.service).on_end(SpanData {
            span_context: traced.context,
            parent_span_id: traced.parent,
            parent_span_is_remote: traced.parent_is_remote,
            span_kind: recording.kind,
            name: recording.name,
            start_time: recording.start,
            end_time: SystemTime::now(),
            attributes: recording.attributes,
            dropped_attributes_count: 0,
            events,
            links,
            status: recording.status,
            instrumentation_scope: self.scope.clone(),
        });
    }
}

/// A span's fields: the `otel.*` conventions, and attributes.
struct SpanFields<'a>(&'a mut Recording);

impl SpanFields<'_> {
    fn text(&mut self, field: &Field, value: Cow<'_, str>) {
        let recording = &mut *self.0;
        match field.name() {
            "otel.name" => recording.name = Cow::Owned(value.into_owned()),
            "otel.kind" => recording.kind = kind_of(&value),
            "otel.status_code" => recording.set_status(status_of(&value)),
            "otel.status_description" => recording.set_status(Status::error(value.into_owned())),
            name => recording.attributes.push(KeyValue::new(name, value.into_owned())),
        }
    }
}

impl tracing::field::Visit for SpanFields<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.text(field, Cow::Borrowed(value));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.text(field, Cow::Owned(format!("{value:?}")));
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.text(field, Cow::Owned(value.to_string()));
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.attributes.push(KeyValue::new(field.name(), value));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        let value = i64::try_from(value).map_or_else(|_| Value::from(value.to_string()), Value::from);
        self.0.attributes.push(KeyValue::new(field.name(), value));
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        self.0.attributes.push(KeyValue::new(field.name(), value));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.attributes.push(KeyValue::new(field.name(), value));
    }
}

fn kind_of(value: &str) -> SpanKind {
    match value.to_ascii_lowercase().as_str() {
        "server" => SpanKind::Server,
        "client" => SpanKind::Client,
        "producer" => SpanKind::Producer,
        "consumer" => SpanKind::Consumer,
        _ => SpanKind::Internal,
    }
}

fn status_of(value: &str) -> Status {
    match value.to_ascii_lowercase().as_str() {
        "ok" => Status::Ok,
        "error" => Status::error(""),
        _ => Status::Unset,
    }
}

/// An event's fields: its message names it, the rest are attributes.
struct EventFields {
    name: Option<String>,
    attributes: Vec<KeyValue>,
}

impl tracing::field::Visit for EventFields {
    fn record_str(&mut self, field: &Field, value: &str) {
        match field.name() {
            "message" => self.name = Some(value.to_owned()),
            name => self.attributes.push(KeyValue::new(name, value.to_owned())),
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        match field.name() {
            "message" => self.name = Some(format!("{value:?}")),
            name => self.attributes.push(KeyValue::new(name, format!("{value:?}"))),
        }
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.attributes.push(KeyValue::new(field.name(), value));
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        self.attributes.push(KeyValue::new(field.name(), value));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.attributes.push(KeyValue::new(field.name(), value));
    }
}

/// Runs `f` on what the layer keeps of `span`, if it traces it.
fn with_traced<R>(span: &tracing::Span, f: impl FnOnce(&mut Traced, Option<&SpanLayer>) -> R) -> Option<R> {
    span.with_subscriber(|(id, dispatch): (&span::Id, &Dispatch)| {
        let registry = dispatch.downcast_ref::<Registry>()?;
        let data = registry.span(id)?;
        let mut extensions = data.extensions_mut();
        let traced = extensions.get_mut::<Traced>()?;
        Some(f(traced, dispatch.downcast_ref::<SpanLayer>()))
    })
    .flatten()
}

/// The OpenTelemetry span context of `span`, when it is traced (sampled or
/// not): what is propagated to a callee, stored with an item, or written in a
/// log line.
pub fn span_context(span: &tracing::Span) -> Option<SpanContext> {
    span.with_subscriber(|(id, dispatch): (&span::Id, &Dispatch)| {
        let registry = dispatch.downcast_ref::<Registry>()?;
        let data = registry.span(id)?;
        let extensions = data.extensions();
        extensions.get::<Traced>().map(|traced| traced.context.clone())
    })
    .flatten()
}

/// The span context of a span the layer traces, from the registry's span
/// (log lines).
pub(crate) fn context_of<'a, R: LookupSpan<'a>>(
    span: &tracing_subscriber::registry::SpanRef<'a, R>,
) -> Option<SpanContext> {
    span.extensions().get::<Traced>().map(|traced| traced.context.clone())
}

/// Makes `span` — just opened, before any child — `service`'s part of the
/// trace `parent` was propagated in (a caller's, from its `traceparent`), or
/// the root of a new trace when there is none; its sampling is decided again
/// with that parent.
pub fn continue_trace(span: &tracing::Span, parent: Option<&SpanContext>, service: ServiceKind) {
    with_traced(span, |traced, layer| {
        traced.service = Some(service);
        let Some(parent) = parent.filter(|p| p.is_valid()) else { return };
        traced.context = SpanContext::new(
            parent.trace_id(),
            traced.context.span_id(),
            flags(layer.is_some_and(|layer| sampled(layer.sampler, Some(parent), parent.trace_id()))),
            false,
            parent.trace_state().clone(),
        );
        traced.parent = parent.span_id();
        traced.parent_is_remote = parent.is_remote();
    });
}

/// Links `span` to a span of another trace (the one a background run acts
/// for, or a batch's other callers).
pub fn add_link(span: &tracing::Span, linked: SpanContext) {
    if !linked.is_valid() {
        return;
    }
    with_traced(span, |traced, _| {
        if let Some(recording) = traced.recording.as_mut() {
            recording.link(linked);
        }
    });
}

#[cfg(test)]
mod tests {
    use opentelemetry::{
        Context,
        trace::{SpanKind as Kind, TraceContextExt as _},
    };
    use opentelemetry_sdk::trace::{Sampler, SamplingDecision, ShouldSample as _};

    use super::*;

    /// The SDK's sampler of the same name.
    fn sdk(config: SamplerConfig) -> Sampler {
        match config {
            SamplerConfig::AlwaysOn => Sampler::AlwaysOn,
            SamplerConfig::AlwaysOff => Sampler::AlwaysOff,
            SamplerConfig::Ratio(r) => Sampler::TraceIdRatioBased(r),
            SamplerConfig::ParentBasedAlwaysOn => Sampler::ParentBased(Box::new(Sampler::AlwaysOn)),
            SamplerConfig::ParentBasedAlwaysOff => Sampler::ParentBased(Box::new(Sampler::AlwaysOff)),
            SamplerConfig::ParentBasedRatio(r) => Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(r))),
        }
    }

    #[test]
    fn sampling_decides_as_the_sdk_samplers_do() {
        let ids = RandomIdGenerator::default();
        let configs = [
            SamplerConfig::AlwaysOn,
            SamplerConfig::AlwaysOff,
            SamplerConfig::Ratio(0.25),
            SamplerConfig::Ratio(0.0),
            SamplerConfig::ParentBasedAlwaysOn,
            SamplerConfig::ParentBasedAlwaysOff,
            SamplerConfig::ParentBasedRatio(0.5),
        ];
        for config in configs {
            let sampler = sdk(config);
            for i in 0..400 {
                let trace_id = ids.new_trace_id();
                let parent = match i % 3 {
                    0 => None,
                    n => Some(SpanContext::new(trace_id, ids.new_span_id(), flags(n == 1), true, TraceState::NONE)),
                };
                let cx = parent.clone().map(|p| Context::new().with_remote_span_context(p));
                let theirs = sampler.should_sample(cx.as_ref(), trace_id, "span", &Kind::Internal, &[], &[]);
                let expected = theirs.decision == SamplingDecision::RecordAndSample;
                assert_eq!(sampled(config, parent.as_ref(), trace_id), expected, "{config:?} {parent:?}");
            }
        }
    }

    /// A subscriber exporting through the layer (behind its filter), and
    /// what it exported.
    fn exporting(sampler: SamplerConfig) -> (Dispatch, opentelemetry_sdk::trace::InMemorySpanExporter) {
        use tracing_subscriber::layer::SubscriberExt as _;
        let exporter = opentelemetry_sdk::trace::InMemorySpanExporter::default();
        let processor = opentelemetry_sdk::trace::SimpleSpanProcessor::new(exporter.clone());
        let layer = SpanLayer::new(sampler, std::sync::Arc::new(Sinks::one(Box::new(processor))));
        (Dispatch::new(Registry::default().with(super::super::otel_layer(layer))), exporter)
    }

    fn remote(sampled: bool) -> SpanContext {
        let ids = RandomIdGenerator::default();
        SpanContext::new(ids.new_trace_id(), ids.new_span_id(), flags(sampled), true, TraceState::NONE)
    }

    #[test]
    fn a_call_follows_its_callers_trace_and_sampling() {
        let (dispatch, exporter) = exporting(SamplerConfig::ParentBasedAlwaysOn);
        for parent in [remote(false), remote(true)] {
            tracing::dispatcher::with_default(&dispatch, || {
                let call = tracing::info_span!("rpc.server", otel.name = "Svc/Method", otel.kind = "server");
                continue_trace(&call, Some(&parent), ServiceKind::Orders);
                assert_eq!(span_context(&call).map(|c| c.is_sampled()), Some(parent.is_sampled()));
                let _entered = call.enter();
                tracing::info_span!("work").in_scope(|| {});
            });
        }
        let spans = exporter.get_finished_spans().unwrap();
        let names: Vec<_> = spans.iter().map(|s| s.name.as_ref()).collect();
        assert_eq!(names, ["work", "Svc/Method"], "only the sampled caller's trace is exported");
        let (work, call) = (&spans[0], &spans[1]);
        assert_eq!(call.span_kind, SpanKind::Server);
        assert!(call.parent_span_is_remote);
        assert_eq!(work.span_context.trace_id(), call.span_context.trace_id());
        assert_eq!(work.parent_span_id, call.span_context.span_id());
        assert_eq!(work.span_kind, SpanKind::Internal);
    }

    #[test]
    fn events_are_named_by_their_message_and_an_error_marks_the_span() {
        let (dispatch, exporter) = exporting(SamplerConfig::AlwaysOn);
        tracing::dispatcher::with_default(&dispatch, || {
            let span = tracing::info_span!("job", item = "orders/o-1", attempt = 2_i64);
            let _entered = span.enter();
            tracing::info!(step = "reserve", "reserving");
            tracing::error!("run failed");
        });
        let spans = exporter.get_finished_spans().unwrap();
        let [span] = spans.as_slice() else { panic!("one span: {spans:?}") };
        let events: Vec<_> = span.events.iter().map(|e| e.name.as_ref()).collect();
        assert_eq!(events, ["reserving", "run failed"]);
        assert!(span.events[0].attributes.contains(&KeyValue::new("step", "reserve")));
        assert_eq!(span.status, Status::error(""));
        assert!(span.attributes.contains(&KeyValue::new("item", "orders/o-1")));
        assert!(span.attributes.contains(&KeyValue::new("attempt", 2_i64)));
    }

    #[test]
    fn a_described_failure_keeps_its_description() {
        let mut recording = Recording::new("db", 0);
        recording.set_status(Status::error("no such table: orders"));
        recording.set_status(status_of("ERROR"));
        assert_eq!(recording.status, Status::error("no such table: orders"));
        recording.set_status(Status::error("deadlock"));
        assert_eq!(recording.status, Status::error("deadlock"));
    }
}
