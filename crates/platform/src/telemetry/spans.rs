//! The OpenTelemetry span layer: each exported `tracing` span becomes one
//! OTLP span, written in protobuf as the span records it.
//!
//! As a span opens, the layer gives it its OpenTelemetry identity (trace id,
//! span id, sampled flag — from its parent, or a new trace) and the service
//! whose work it is, and, when it is sampled, starts recording: its
//! attributes, name, events and links are encoded as OTLP `Span` fields the
//! moment they are recorded, into one buffer per span ([`super::wire`]). As
//! it closes, its identity, kind, times and status are appended and the
//! buffer goes to the sink ([`super::otlp`]), which sends those very bytes.
//! Nothing else runs per span: no tracer, no SDK span behind a lock, no span
//! processor, no `SpanData` to convert into protobuf messages again, no
//! `String` per attribute — the per-span work of a bridge built on the SDK
//! was most of what tracing cost a busy server.
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

use std::{
    sync::Arc,
    time::{SystemTime, UNIX_EPOCH},
};

use opentelemetry::trace::{SpanContext, SpanId, SpanKind, Status, TraceFlags, TraceId, TraceState};
use opentelemetry_sdk::trace::{IdGenerator as _, RandomIdGenerator};
use tracing::{Dispatch, field::Field, span};
use tracing_subscriber::{Layer, Registry, layer, registry::LookupSpan};

use super::{
    SamplerConfig,
    otlp::SpanSink,
    wire::{self, Any, field},
};
use crate::config::ServiceKind;

/// Most events and links one span keeps (the SDK's default limits); more are
/// counted as dropped.
const MAX_EVENTS: u32 = 128;
const MAX_LINKS: u32 = 128;

/// The layer. Wrap it in the exported spans' filter; it needs no span entries
/// or exits.
pub(crate) struct SpanLayer {
    sampler: SamplerConfig,
    ids: RandomIdGenerator,
    sink: Arc<dyn SpanSink>,
}

impl SpanLayer {
    pub(crate) fn new(sampler: SamplerConfig, sink: Arc<dyn SpanSink>) -> Self {
        SpanLayer { sampler, ids: RandomIdGenerator::default(), sink }
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

/// A sampled span as it is recorded: its fields written as OTLP `Span`
/// fields the moment they are known (attributes, name, events, links), the
/// rest kept until it closes.
#[derive(Debug)]
struct Recording {
    /// Encoded `Span` fields so far.
    fields: Vec<u8>,
    /// The `tracing` name, unless `otel.name` gave another.
    default_name: Option<&'static str>,
    kind: SpanKind,
    /// Nanoseconds since the epoch.
    start: u64,
    events: u32,
    dropped_events: u32,
    links: u32,
    dropped_links: u32,
    status: Status,
}

/// Nanoseconds since the epoch, as OTLP writes times.
fn nanos(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH).map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

/// A span's `flags` (or a link's): its W3C trace flags, and whether the
/// other end (the parent, the linked span) is remote.
fn span_flags(trace_flags: TraceFlags, remote: bool) -> u32 {
    u32::from(trace_flags.to_u8()) | wire::HAS_IS_REMOTE | if remote { wire::IS_REMOTE } else { 0 }
}

impl Recording {
    fn new(name: &'static str, fields: usize) -> Self {
        Recording {
            // Room for the recorded attributes and what closing adds, so
            // most spans allocate once.
            fields: Vec::with_capacity(96 + 64 * fields),
            default_name: Some(name),
            kind: SpanKind::Internal,
            start: nanos(SystemTime::now()),
            events: 0,
            dropped_events: 0,
            links: 0,
            dropped_links: 0,
            status: Status::Unset,
        }
    }

    fn name(&mut self, name: &str) {
        wire::string(&mut self.fields, field::span::NAME, name);
        self.default_name = None;
    }

    fn attribute(&mut self, name: &str, value: Any<'_>) {
        wire::attribute(&mut self.fields, field::span::ATTRIBUTES, name, value);
    }

    /// A later status never takes a failure's description away.
    fn set_status(&mut self, status: Status) {
        match (&self.status, &status) {
            (Status::Error { description }, Status::Error { description: new })
                if new.is_empty() && !description.is_empty() => {}
            _ => self.status = status,
        }
    }

    fn link(&mut self, span_context: &SpanContext) {
        if self.links >= MAX_LINKS {
            self.dropped_links += 1;
            return;
        }
        self.links += 1;
        let mut link = Vec::with_capacity(48);
        wire::bytes(&mut link, field::link::TRACE_ID, &span_context.trace_id().to_bytes());
        wire::bytes(&mut link, field::link::SPAN_ID, &span_context.span_id().to_bytes());
        let state = span_context.trace_state().header();
        if !state.is_empty() {
            wire::string(&mut link, field::link::TRACE_STATE, &state);
        }
        wire::fixed32(&mut link, field::link::FLAGS, span_flags(span_context.trace_flags(), span_context.is_remote()));
        wire::bytes(&mut self.fields, field::span::LINKS, &link);
    }

    /// The whole encoded `Span`: what was recorded, then identity, kind,
    /// times, counts and status.
    fn finish(mut self, traced: &Traced) -> Vec<u8> {
        let buf = &mut self.fields;
        if let Some(name) = self.default_name {
            wire::string(buf, field::span::NAME, name);
        }
        let context = &traced.context;
        wire::bytes(buf, field::span::TRACE_ID, &context.trace_id().to_bytes());
        wire::bytes(buf, field::span::SPAN_ID, &context.span_id().to_bytes());
        if context.trace_state() != &TraceState::NONE {
            let state = context.trace_state().header();
            if !state.is_empty() {
                wire::string(buf, field::span::TRACE_STATE, &state);
            }
        }
        if traced.parent != SpanId::INVALID {
            wire::bytes(buf, field::span::PARENT_SPAN_ID, &traced.parent.to_bytes());
        }
        wire::uint(buf, field::span::KIND, kind_number(&self.kind));
        wire::fixed64(buf, field::span::START, self.start);
        wire::fixed64(buf, field::span::END, nanos(SystemTime::now()));
        wire::uint(buf, field::span::DROPPED_EVENTS, u64::from(self.dropped_events));
        wire::uint(buf, field::span::DROPPED_LINKS, u64::from(self.dropped_links));
        let (code, message) = match &self.status {
            Status::Unset => (0, ""),
            Status::Ok => (1, ""),
            Status::Error { description } => (2, description.as_ref()),
        };
        let mut status = Vec::new();
        if !message.is_empty() {
            wire::string(&mut status, field::status::MESSAGE, message);
        }
        wire::uint(&mut status, field::status::CODE, code);
        wire::bytes(buf, field::span::STATUS, &status);
        wire::fixed32(buf, field::span::FLAGS, span_flags(context.trace_flags(), traced.parent_is_remote));
        self.fields
    }
}

/// OTLP's `SpanKind` numbers.
fn kind_number(kind: &SpanKind) -> u64 {
    match kind {
        SpanKind::Internal => 1,
        SpanKind::Server => 2,
        SpanKind::Client => 3,
        SpanKind::Producer => 4,
        SpanKind::Consumer => 5,
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
            recording.link(&linked);
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
        if recording.events >= MAX_EVENTS {
            recording.dropped_events += 1;
            return;
        }
        recording.events += 1;
        let mut fields = EventFields { name: None, attributes: Vec::with_capacity(128) };
        wire::attribute(&mut fields.attributes, field::event::ATTRIBUTES, "level", Any::Str(metadata.level().as_str()));
        wire::attribute(&mut fields.attributes, field::event::ATTRIBUTES, "target", Any::Str(metadata.target()));
        event.record(&mut fields);
        let EventFields { name, attributes: mut encoded } = fields;
        wire::fixed64(&mut encoded, field::event::TIME, nanos(SystemTime::now()));
        wire::string(&mut encoded, field::event::NAME, name.as_deref().unwrap_or(metadata.name()));
        wire::bytes(&mut recording.fields, field::span::EVENTS, &encoded);
    }

    fn on_close(&self, id: span::Id, cx: layer::Context<'_, S>) {
        let Some(span) = cx.span(&id) else { return };
        // Taken out first: the sink is called with no lock of the span held.
        let Some(mut traced) = span.extensions_mut().remove::<Traced>() else { return };
        let Some(recording) = traced.recording.take() else { return };
        if !traced.context.is_sampled() {
            return;
        }
        self.sink.push(traced.service, &recording.finish(&traced));
    }
}

/// A span's fields: the `otel.*` conventions, and attributes.
struct SpanFields<'a>(&'a mut Recording);

impl SpanFields<'_> {
    fn text(&mut self, field: &Field, value: &str) {
        let recording = &mut *self.0;
        match field.name() {
            "otel.name" => recording.name(value),
            "otel.kind" => recording.kind = kind_of(value),
            "otel.status_code" => recording.set_status(status_of(value)),
            "otel.status_description" => recording.set_status(Status::error(value.to_owned())),
            name => recording.attribute(name, Any::Str(value)),
        }
    }
}

impl tracing::field::Visit for SpanFields<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.text(field, value);
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.text(field, &format!("{value:?}"));
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.text(field, &value.to_string());
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.attribute(field.name(), Any::Int(value));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        match i64::try_from(value) {
            Ok(value) => self.0.attribute(field.name(), Any::Int(value)),
            Err(_) => self.0.attribute(field.name(), Any::Str(&value.to_string())),
        }
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        self.0.attribute(field.name(), Any::Double(value));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.attribute(field.name(), Any::Bool(value));
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

/// An event's fields: its message names it, the rest are attributes,
/// written as an OTLP `Event`'s.
struct EventFields {
    name: Option<String>,
    attributes: Vec<u8>,
}

impl EventFields {
    fn attribute(&mut self, field: &Field, value: Any<'_>) {
        wire::attribute(&mut self.attributes, field::event::ATTRIBUTES, field.name(), value);
    }
}

impl tracing::field::Visit for EventFields {
    fn record_str(&mut self, field: &Field, value: &str) {
        match field.name() {
            "message" => self.name = Some(value.to_owned()),
            _ => self.attribute(field, Any::Str(value)),
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        let text = format!("{value:?}");
        match field.name() {
            "message" => self.name = Some(text),
            _ => self.attribute(field, Any::Str(&text)),
        }
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.attribute(field, Any::Int(value));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        match i64::try_from(value) {
            Ok(value) => self.attribute(field, Any::Int(value)),
            Err(_) => self.attribute(field, Any::Str(&value.to_string())),
        }
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        self.attribute(field, Any::Double(value));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.attribute(field, Any::Bool(value));
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
            recording.link(&linked);
        }
    });
}

#[cfg(test)]
mod tests {
    use opentelemetry::{
        Context,
        trace::{SpanKind as Kind, TraceContextExt as _},
    };
    use opentelemetry_proto::tonic::{
        common::v1::{KeyValue, any_value::Value as AnyValue},
        trace::v1::{Span as OtlpSpan, span::SpanKind as OtlpKind, status::StatusCode},
    };
    use opentelemetry_sdk::trace::{Sampler, SamplingDecision, ShouldSample as _};

    use super::*;
    use crate::telemetry::SpanCollector;

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
    fn exporting(sampler: SamplerConfig) -> (Dispatch, SpanCollector) {
        use tracing_subscriber::layer::SubscriberExt as _;
        let collector = SpanCollector::default();
        let layer = SpanLayer::new(sampler, Arc::new(collector.clone()));
        (Dispatch::new(Registry::default().with(super::super::otel_layer(layer))), collector)
    }

    fn remote(sampled: bool) -> SpanContext {
        let ids = RandomIdGenerator::default();
        SpanContext::new(ids.new_trace_id(), ids.new_span_id(), flags(sampled), true, TraceState::NONE)
    }

    fn attribute(span: &OtlpSpan, key: &str) -> Option<AnyValue> {
        attribute_of(&span.attributes, key)
    }

    fn attribute_of(attributes: &[KeyValue], key: &str) -> Option<AnyValue> {
        attributes.iter().find(|kv| kv.key == key).and_then(|kv| kv.value.clone()).and_then(|v| v.value)
    }

    #[test]
    fn a_call_follows_its_callers_trace_and_sampling() {
        let (dispatch, collector) = exporting(SamplerConfig::ParentBasedAlwaysOn);
        for parent in [remote(false), remote(true)] {
            tracing::dispatcher::with_default(&dispatch, || {
                let call = tracing::info_span!("rpc.server", otel.name = "Svc/Method", otel.kind = "server");
                continue_trace(&call, Some(&parent), ServiceKind::Orders);
                assert_eq!(span_context(&call).map(|c| c.is_sampled()), Some(parent.is_sampled()));
                let _entered = call.enter();
                tracing::info_span!("work").in_scope(|| {});
            });
        }
        let spans = collector.with_service().unwrap();
        let names: Vec<_> = spans.iter().map(|(_, s)| s.name.as_str()).collect();
        assert_eq!(names, ["work", "Svc/Method"], "only the sampled caller's trace is exported");
        let ((work_service, work), (call_service, call)) = (&spans[0], &spans[1]);
        assert_eq!((*work_service, *call_service), (Some(ServiceKind::Orders), Some(ServiceKind::Orders)));
        assert_eq!(call.kind, OtlpKind::Server as i32);
        assert_eq!(call.flags, 0x301, "sampled, with a remote parent");
        assert_eq!(work.flags, 0x101, "sampled, with a local parent");
        assert_eq!(work.trace_id, call.trace_id);
        assert_eq!(work.parent_span_id, call.span_id);
        assert_eq!(work.kind, OtlpKind::Internal as i32);
        assert!(work.start_time_unix_nano >= call.start_time_unix_nano);
        assert!(work.end_time_unix_nano >= work.start_time_unix_nano);
        assert!(call.end_time_unix_nano >= work.end_time_unix_nano, "the call outlives its work");
        assert_eq!(call.status.as_ref().map(|s| s.code), Some(StatusCode::Unset as i32));
    }

    #[test]
    fn a_root_span_has_no_parent_and_its_own_trace() {
        let (dispatch, collector) = exporting(SamplerConfig::AlwaysOn);
        tracing::dispatcher::with_default(&dispatch, || {
            let span = tracing::info_span!("job");
            let context = span_context(&span).unwrap();
            drop(span);
            let spans = collector.spans().unwrap();
            let [job] = spans.as_slice() else { panic!("one span: {spans:?}") };
            assert_eq!(job.trace_id, context.trace_id().to_bytes());
            assert_eq!(job.span_id, context.span_id().to_bytes());
            assert!(job.parent_span_id.is_empty(), "a root");
            assert_eq!(job.flags, 0x101);
        });
    }

    #[test]
    fn events_are_named_by_their_message_and_an_error_marks_the_span() {
        let (dispatch, collector) = exporting(SamplerConfig::AlwaysOn);
        tracing::dispatcher::with_default(&dispatch, || {
            let span = tracing::info_span!(
                "job",
                item = "orders/o-1",
                attempt = 2_i64,
                retried = true,
                share = 0.5_f64,
                big = u64::MAX,
                otel.name = "orders.drive",
            );
            let _entered = span.enter();
            tracing::info!(step = "reserve", units = 3_u64, "reserving");
            tracing::error!("run failed");
        });
        let spans = collector.spans().unwrap();
        let [span] = spans.as_slice() else { panic!("one span: {spans:?}") };
        assert_eq!(span.name, "orders.drive", "otel.name names it");
        let events: Vec<_> = span.events.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(events, ["reserving", "run failed"]);
        let reserving = &span.events[0];
        assert_eq!(attribute_of(&reserving.attributes, "step"), Some(AnyValue::StringValue("reserve".into())));
        assert_eq!(attribute_of(&reserving.attributes, "units"), Some(AnyValue::IntValue(3)));
        assert_eq!(attribute_of(&reserving.attributes, "level"), Some(AnyValue::StringValue("INFO".into())));
        assert!(reserving.time_unix_nano >= span.start_time_unix_nano);
        let status = span.status.clone().unwrap();
        assert_eq!((status.code, status.message.as_str()), (StatusCode::Error as i32, ""));
        assert_eq!(attribute(span, "item"), Some(AnyValue::StringValue("orders/o-1".into())));
        assert_eq!(attribute(span, "attempt"), Some(AnyValue::IntValue(2)));
        assert_eq!(attribute(span, "retried"), Some(AnyValue::BoolValue(true)));
        assert_eq!(attribute(span, "share"), Some(AnyValue::DoubleValue(0.5)));
        assert_eq!(attribute(span, "big"), Some(AnyValue::StringValue(u64::MAX.to_string())));
        assert_eq!(attribute(span, "otel.name"), None, "conventions are not attributes");
    }

    #[test]
    fn links_and_late_fields_are_exported() {
        let (dispatch, collector) = exporting(SamplerConfig::AlwaysOn);
        let linked = remote(true);
        tracing::dispatcher::with_default(&dispatch, || {
            let span = tracing::info_span!(
                "rpc.client",
                otel.kind = "client",
                otel.status_code = tracing::field::Empty,
                otel.status_description = tracing::field::Empty,
                rpc.grpc.status_code = tracing::field::Empty,
            );
            add_link(&span, linked.clone());
            add_link(&span, SpanContext::empty_context());
            span.record("rpc.grpc.status_code", 14);
            span.record("otel.status_description", "the callee went away");
            span.record("otel.status_code", "ERROR");
        });
        let spans = collector.spans().unwrap();
        let [span] = spans.as_slice() else { panic!("one span: {spans:?}") };
        assert_eq!(span.kind, OtlpKind::Client as i32);
        assert_eq!(attribute(span, "rpc.grpc.status_code"), Some(AnyValue::IntValue(14)));
        let status = span.status.clone().unwrap();
        assert_eq!((status.code, status.message.as_str()), (StatusCode::Error as i32, "the callee went away"));
        let [link] = span.links.as_slice() else { panic!("one link (an invalid context is none): {span:?}") };
        assert_eq!(link.trace_id, linked.trace_id().to_bytes());
        assert_eq!(link.span_id, linked.span_id().to_bytes());
        assert_eq!(link.flags, 0x301, "sampled, remote");
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
