//! The OpenTelemetry span layer: each exported `tracing` span becomes one
//! OpenTelemetry span, handed as it closes to the SDK's batch span processor
//! of its service ([`super::export`]).
//!
//! As a span opens, the layer gives it its OpenTelemetry identity (trace id,
//! span id, sampled flag — from its parent, a caller's propagated context
//! ([`span_in_trace`]), or a new trace) and the service whose work it is.
//! The SDK's sampler (`OTEL_TRACES_SAMPLER`, as the SDK reads it) decides,
//! once, as the span opens; only a sampled span records anything: its
//! attributes, events and links go straight into the SDK's `SpanData`
//! within the SDK's span limits (`OTEL_SPAN_*_COUNT_LIMIT`).
//!
//! A call or background run decides *before* its span opens
//! ([`span_in_trace`]): when its trace is not sampled — nine in ten at the
//! deployed 10 % — neither its span nor any span of its work is opened
//! (unless the logs want them), and the trace's identity travels in its
//! [`Work`] instead, for the `traceparent` of the calls it makes and the
//! `trace_id` of its log lines. That is the cost that matters at 10 %.
//!
//! Why a layer of its own rather than `tracing-opentelemetry` over an SDK
//! tracer: that bridge builds every span's attributes whether or not it is
//! sampled, and cannot give four services of one process (`caravan up`)
//! their own resource. BENCHMARKS.md, "What tracing costs", measures both.
//!
//! Fields follow the conventions `tracing-opentelemetry` set: `otel.name` is
//! the span's name (else the `tracing` name), `otel.kind` its kind,
//! `otel.status_code` (`ok`, `error`) and `otel.status_description` (an error
//! with that description) its status; every other field is an attribute. An
//! event inside a span is a span event named by its message, and an
//! `ERROR`-level event marks the span failed.

use std::{borrow::Cow, cell::RefCell, sync::Arc, time::SystemTime};

use opentelemetry::{
    Context, InstrumentationScope, KeyValue, Value,
    trace::{
        Event, Link, SpanContext, SpanId, SpanKind, Status, TraceContextExt as _, TraceFlags, TraceId, TraceState,
    },
};
use opentelemetry_sdk::trace::{
    IdGenerator as _, RandomIdGenerator, SamplingDecision, ShouldSample, SpanData, SpanEvents, SpanLimits, SpanLinks,
};
use tracing::{Dispatch, field::Field, span};
use tracing_subscriber::{Layer, Registry, layer, registry::LookupSpan};

use super::{Work, export::SpanSink};
use crate::config::ServiceKind;

/// The layer. Wrap it in the exported spans' filter; it needs no span entries
/// or exits.
pub(crate) struct SpanLayer {
    sampler: Box<dyn ShouldSample>,
    limits: SpanLimits,
    ids: RandomIdGenerator,
    scope: InstrumentationScope,
    sink: Arc<dyn SpanSink>,
}

impl SpanLayer {
    /// With the SDK's sampler and span limits, from the standard variables
    /// as the SDK reads them.
    pub(crate) fn new(sink: Arc<dyn SpanSink>) -> Self {
        let config = opentelemetry_sdk::trace::Config::default();
        Self::with_sampler(config.sampler, config.span_limits, sink)
    }

    pub(crate) fn with_sampler(sampler: Box<dyn ShouldSample>, limits: SpanLimits, sink: Arc<dyn SpanSink>) -> Self {
        let scope =
            InstrumentationScope::builder(env!("CARGO_PKG_NAME")).with_version(env!("CARGO_PKG_VERSION")).build();
        SpanLayer { sampler, limits, ids: RandomIdGenerator::default(), scope, sink }
    }

    /// The sampler's decision for a span opening under `parent` (its trace
    /// id, and whether it is sampled).
    fn decide(&self, parent: Option<&SpanContext>, name: &str) -> (TraceId, bool) {
        let trace_id = parent.map_or_else(|| self.ids.new_trace_id(), SpanContext::trace_id);
        let cx = parent.map(|p| Context::new().with_remote_span_context(p.clone()));
        let result = self.sampler.should_sample(cx.as_ref(), trace_id, name, &SpanKind::Internal, &[], &[]);
        (trace_id, result.decision == SamplingDecision::RecordAndSample)
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
    recording: Option<Box<Recording>>,
}

/// A sampled span as it is recorded.
#[derive(Debug)]
struct Recording {
    name: Cow<'static, str>,
    kind: SpanKind,
    start: SystemTime,
    attributes: Vec<KeyValue>,
    dropped_attributes: u32,
    events: SpanEvents,
    links: SpanLinks,
    status: Status,
    limits: SpanLimits,
}

impl Recording {
    fn new(name: &'static str, fields: usize, limits: SpanLimits) -> Self {
        Recording {
            name: Cow::Borrowed(name),
            kind: SpanKind::Internal,
            start: SystemTime::now(),
            attributes: Vec::with_capacity(fields),
            dropped_attributes: 0,
            events: SpanEvents::default(),
            links: SpanLinks::default(),
            status: Status::Unset,
            limits,
        }
    }

    fn attribute(&mut self, key: &'static str, value: impl Into<Value>) {
        if self.attributes.len() >= self.limits.max_attributes_per_span as usize {
            self.dropped_attributes += 1;
            return;
        }
        self.attributes.push(KeyValue::new(key, value));
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
        if self.links.links.len() >= self.limits.max_links_per_span as usize {
            self.links.dropped_count += 1;
            return;
        }
        self.links.links.push(Link::with_context(span_context));
    }

    fn finish(self, traced: &Traced, scope: &InstrumentationScope) -> SpanData {
        SpanData {
            span_context: traced.context.clone(),
            parent_span_id: traced.parent,
            parent_span_is_remote: traced.parent_is_remote,
            span_kind: self.kind,
            name: self.name,
            start_time: self.start,
            end_time: SystemTime::now(),
            attributes: self.attributes,
            dropped_attributes_count: self.dropped_attributes,
            events: self.events,
            links: self.links,
            status: self.status,
            instrumentation_scope: scope.clone(),
        }
    }
}

fn flags(sampled: bool) -> TraceFlags {
    if sampled { TraceFlags::SAMPLED } else { TraceFlags::NOT_SAMPLED }
}

/// Where the next span opened on this thread belongs, and the sampler's
/// decision for it, set by [`span_in_trace`] for the span it opens.
#[derive(Debug, Clone)]
struct Pending {
    parent: Option<SpanContext>,
    trace_id: TraceId,
    sampled: bool,
    service: ServiceKind,
}

thread_local! {
    static PENDING: RefCell<Option<Pending>> = const { RefCell::new(None) };
}

/// Whether the span opening on this thread, if [`span_in_trace`] opens it,
/// is sampled: the exported spans' filter lets only a sampled one exist.
pub(super) fn opening() -> Option<bool> {
    PENDING.with_borrow(|pending| pending.as_ref().map(|p| p.sampled))
}

/// Opens `service`'s part of the trace `parent` was propagated in (a
/// caller's, from its `traceparent`), or the root of a new trace when there
/// is none: the sampler decides first, once, with that parent; then `open`
/// runs (`info_span!`, on this thread).
///
/// A sampled trace gets its span. An unsampled one gets none from the span
/// layer (the exported spans' filter turns it and everything under it away,
/// so it is a disabled span unless the logs want it): its identity is in the
/// returned [`Work`], which the call or run must run as, so that its calls
/// propagate it and its log lines carry it. Without the span layer (tracing
/// off) the span is only what the logs make of it.
///
/// The sampler is given no span name or attributes: the SDK's samplers, the
/// ones `OTEL_TRACES_SAMPLER` names, decide by trace id and parent alone.
pub fn span_in_trace(
    parent: Option<&SpanContext>,
    service: ServiceKind,
    open: impl FnOnce() -> tracing::Span,
) -> (tracing::Span, Work) {
    #[cfg(feature = "bridge-comparison")]
    if super::bridge::active() {
        let span = open();
        if let Some(parent) = parent {
            super::bridge::set_parent(&span, parent);
        }
        return (span, Work::of(service));
    }
    let decided = tracing::dispatcher::get_default(|dispatch| {
        dispatch.downcast_ref::<SpanLayer>().map(|layer| {
            let (trace_id, sampled) = layer.decide(parent, "");
            (trace_id, sampled, (!sampled).then(|| layer.ids.new_span_id()))
        })
    });
    let Some((trace_id, sampled, unsampled_id)) = decided else {
        return (open(), Work::of(service));
    };
    PENDING.with_borrow_mut(|pending| {
        *pending = Some(Pending { parent: parent.cloned(), trace_id, sampled, service });
    });
    let span = open();
    // Taken by the span, unless no layer traced it.
    PENDING.with_borrow_mut(|pending| *pending = None);
    let unsampled = unsampled_id.map(|span_id| {
        let state = parent.map(|p| p.trace_state().clone()).unwrap_or_default();
        SpanContext::new(trace_id, span_id, TraceFlags::NOT_SAMPLED, false, state)
    });
    (span, Work { service, unsampled })
}

impl<S> Layer<S> for SpanLayer
where
    S: tracing::Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &span::Attributes<'_>, id: &span::Id, cx: layer::Context<'_, S>) {
        let Some(span) = cx.span(id) else { return };
        let metadata = attrs.metadata();
        let (parent, parent_is_remote, service, (trace_id, is_sampled)) = match PENDING.with_borrow_mut(Option::take) {
            Some(Pending { parent, trace_id, sampled, service }) => {
                (parent.filter(SpanContext::is_valid), true, Some(service), (trace_id, sampled))
            }
            None => {
                let (parent, service) = match span
                    .parent()
                    .and_then(|p| p.extensions().get::<Traced>().map(|t| (t.context.clone(), t.service)))
                {
                    Some((parent, service)) => (Some(parent), service.or_else(super::current_service)),
                    None => (None, super::current_service()),
                };
                let decided = self.decide(parent.as_ref(), metadata.name());
                (parent, false, service, decided)
            }
        };
        let (parent_id, state) = match &parent {
            Some(parent) => (parent.span_id(), parent.trace_state().clone()),
            None => (SpanId::INVALID, TraceState::NONE),
        };
        let recording = is_sampled.then(|| {
            let mut recording = Box::new(Recording::new(metadata.name(), attrs.fields().len(), self.limits));
            attrs.record(&mut SpanFields(&mut recording));
            recording
        });
        let context = SpanContext::new(trace_id, self.ids.new_span_id(), flags(is_sampled), false, state);
        let traced = Traced {
            context,
            parent: parent_id,
            parent_is_remote: parent_is_remote && parent.is_some(),
            service,
            recording,
        };
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
        if recording.events.events.len() >= recording.limits.max_events_per_span as usize {
            recording.events.dropped_count += 1;
            return;
        }
        let mut fields = EventFields {
            name: None,
            attributes: vec![
                KeyValue::new("level", metadata.level().as_str()),
                KeyValue::new("target", metadata.target()),
            ],
            limit: recording.limits.max_attributes_per_event as usize,
            dropped: 0,
        };
        event.record(&mut fields);
        let name = fields.name.map_or(Cow::Borrowed(metadata.name()), Cow::Owned);
        recording.events.events.push(Event::new(name, SystemTime::now(), fields.attributes, fields.dropped));
    }

    fn on_close(&self, id: span::Id, cx: layer::Context<'_, S>) {
        let Some(span) = cx.span(&id) else { return };
        // Taken out first: the sink is called with no lock of the span held.
        let Some(mut traced) = span.extensions_mut().remove::<Traced>() else { return };
        let Some(recording) = traced.recording.take() else { return };
        self.sink.push(traced.service, recording.finish(&traced, &self.scope));
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
            name => recording.attribute(name, value.into_owned()),
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
        self.0.attribute(field.name(), value);
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        match i64::try_from(value) {
            Ok(value) => self.0.attribute(field.name(), value),
            Err(_) => self.0.attribute(field.name(), value.to_string()),
        }
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        self.0.attribute(field.name(), value);
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.attribute(field.name(), value);
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
    limit: usize,
    dropped: u32,
}

impl EventFields {
    fn attribute(&mut self, field: &Field, value: impl Into<Value>) {
        if self.attributes.len() >= self.limit {
            self.dropped += 1;
            return;
        }
        self.attributes.push(KeyValue::new(field.name(), value));
    }
}

impl tracing::field::Visit for EventFields {
    fn record_str(&mut self, field: &Field, value: &str) {
        match field.name() {
            "message" => self.name = Some(value.to_owned()),
            _ => self.attribute(field, value.to_owned()),
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        let text = format!("{value:?}");
        match field.name() {
            "message" => self.name = Some(text),
            _ => self.attribute(field, text),
        }
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.attribute(field, value);
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        match i64::try_from(value) {
            Ok(value) => self.attribute(field, value),
            Err(_) => self.attribute(field, value.to_string()),
        }
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        self.attribute(field, value);
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.attribute(field, value);
    }
}

/// Runs `f` on what the layer keeps of `span`, if it traces it.
fn with_traced<R>(span: &tracing::Span, f: impl FnOnce(&mut Traced) -> R) -> Option<R> {
    span.with_subscriber(|(id, dispatch): (&span::Id, &Dispatch)| {
        let registry = dispatch.downcast_ref::<Registry>()?;
        let data = registry.span(id)?;
        let mut extensions = data.extensions_mut();
        let traced = extensions.get_mut::<Traced>()?;
        Some(f(traced))
    })
    .flatten()
}

/// The OpenTelemetry span context of `span`, when the span layer traces it:
/// what is propagated to a callee, stored with an item, or written in a log
/// line. A span of an unsampled call is not traced (often not even opened):
/// [`current_trace_context`](super::current_trace_context) also finds the
/// trace such a call's work belongs to.
pub fn span_context(span: &tracing::Span) -> Option<SpanContext> {
    #[cfg(feature = "bridge-comparison")]
    if super::bridge::active() {
        return super::bridge::span_context(span);
    }
    with_traced(span, |traced| traced.context.clone())
}

/// The span context of a span the layer traces, from the registry's span
/// (log lines).
pub(crate) fn context_of<'a, R: LookupSpan<'a>>(
    span: &tracing_subscriber::registry::SpanRef<'a, R>,
) -> Option<SpanContext> {
    span.extensions().get::<Traced>().map(|traced| traced.context.clone())
}

/// Links `span` to a span of another trace (the one a background run acts
/// for, or a batch's other callers).
pub fn add_link(span: &tracing::Span, linked: SpanContext) {
    if !linked.is_valid() {
        return;
    }
    #[cfg(feature = "bridge-comparison")]
    if super::bridge::active() {
        return super::bridge::add_link(span, linked);
    }
    with_traced(span, |traced| {
        if let Some(recording) = traced.recording.as_mut() {
            recording.link(linked);
        }
    });
}

#[cfg(test)]
mod tests {
    use opentelemetry_proto::tonic::{
        common::v1::{KeyValue as OtlpKeyValue, any_value::Value as AnyValue},
        trace::v1::{Span as OtlpSpan, span::SpanKind as OtlpKind, status::StatusCode},
    };
    use opentelemetry_sdk::trace::Sampler;

    use super::*;
    use crate::telemetry::SpanCollector;

    /// A subscriber exporting through the layer (behind its filter), and
    /// what it exported.
    fn exporting(sampler: Sampler) -> (Dispatch, SpanCollector) {
        exporting_within(sampler, SpanLimits::default())
    }

    fn exporting_within(sampler: Sampler, limits: SpanLimits) -> (Dispatch, SpanCollector) {
        use tracing_subscriber::layer::SubscriberExt as _;
        let collector = SpanCollector::default();
        let layer = SpanLayer::with_sampler(Box::new(sampler), limits, Arc::new(collector.clone()));
        (
            Dispatch::new(
                Registry::default().with(super::super::otel_layer(layer, tracing_subscriber::filter::LevelFilter::OFF)),
            ),
            collector,
        )
    }

    fn remote(sampled: bool) -> SpanContext {
        let ids = RandomIdGenerator::default();
        SpanContext::new(ids.new_trace_id(), ids.new_span_id(), flags(sampled), true, TraceState::NONE)
    }

    fn attribute(span: &OtlpSpan, key: &str) -> Option<AnyValue> {
        attribute_of(&span.attributes, key)
    }

    fn attribute_of(attributes: &[OtlpKeyValue], key: &str) -> Option<AnyValue> {
        attributes.iter().find(|kv| kv.key == key).and_then(|kv| kv.value.clone()).and_then(|v| v.value)
    }

    #[test]
    fn a_call_follows_its_callers_trace_and_sampling() {
        let (dispatch, collector) = exporting(Sampler::ParentBased(Box::new(Sampler::AlwaysOn)));
        for parent in [remote(false), remote(true)] {
            tracing::dispatcher::with_default(&dispatch, || {
                let (call, work) = span_in_trace(Some(&parent), ServiceKind::Orders, || {
                    tracing::info_span!("rpc.server", otel.name = "Svc/Method", otel.kind = "server")
                });
                // Sampled: the span carries the trace. Not: no span, the work does.
                let traced = span_context(&call).or_else(|| work.unsampled().cloned());
                assert_eq!(traced.as_ref().map(|c| c.is_sampled()), Some(parent.is_sampled()));
                assert_eq!(traced.as_ref().map(|c| c.trace_id()), Some(parent.trace_id()));
                assert_eq!(call.is_disabled(), !parent.is_sampled());
                work.run_sync(|| {
                    let _entered = call.enter();
                    tracing::info_span!("work").in_scope(|| {});
                });
            });
        }
        let spans = collector.with_service();
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
    fn an_unsampled_trace_opens_no_spans_yet_propagates_its_identity() {
        let (dispatch, collector) = exporting(Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(0.0))));
        let parent = SpanContext::new(
            RandomIdGenerator::default().new_trace_id(),
            RandomIdGenerator::default().new_span_id(),
            TraceFlags::NOT_SAMPLED,
            true,
            TraceState::from_key_value([("vendor", "v")]).unwrap(),
        );
        for parent in [None, Some(&parent)] {
            tracing::dispatcher::with_default(&dispatch, || {
                let (root, work) =
                    span_in_trace(parent, ServiceKind::Catalog, || tracing::info_span!("rpc.server", big = "x"));
                assert!(root.is_disabled(), "an unsampled call opens no span");
                let context = work.unsampled().cloned().expect("its work holds the trace");
                assert!(context.is_valid() && !context.is_sampled());
                if let Some(parent) = parent {
                    assert_eq!(context.trace_id(), parent.trace_id(), "the caller's trace");
                    assert_ne!(context.span_id(), parent.span_id(), "known downstream by an id of its own");
                    assert_eq!(context.trace_state(), parent.trace_state(), "the caller's vendor state passes on");
                }
                assert_eq!(super::super::current_trace_context(), None, "outside the work, no trace");
                work.run_sync(|| {
                    let _entered = root.enter();
                    let child = tracing::info_span!("work");
                    assert!(child.is_disabled(), "nor do the spans of its work");
                    let _entered = child.enter();
                    tracing::info!("an event in it");
                    assert_eq!(super::super::current_trace_context(), Some(context.clone()));
                    let traceparent = super::super::current_traceparent();
                    assert_eq!(traceparent, format!("00-{}-{}-00", context.trace_id(), context.span_id()));
                });
            });
        }
        assert!(collector.spans().is_empty());
    }

    #[test]
    fn store_work_outside_a_call_or_job_opens_no_span() {
        let (dispatch, collector) = exporting(Sampler::AlwaysOn);
        tracing::dispatcher::with_default(&dispatch, || {
            // A live stream's poll, a batch run for no one call: never
            // exported, so never opened while the logs do not want it.
            let alone = tracing::info_span!("db", otel.name = "SELECT stock");
            assert!(alone.is_disabled(), "a store operation outside a call or job is not opened");
            drop(alone);
            let job = tracing::info_span!("job");
            job.in_scope(|| {
                let within = tracing::info_span!("db", otel.name = "UPDATE stock");
                assert!(!within.is_disabled(), "within a job it is");
            });
        });
        let spans = collector.spans();
        let names: Vec<_> = spans.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["UPDATE stock", "job"]);
        assert_eq!(spans[0].parent_span_id, spans[1].span_id, "the job's store work is its child");
    }

    #[test]
    fn a_root_span_has_no_parent_and_its_own_trace() {
        let (dispatch, collector) = exporting(Sampler::AlwaysOn);
        tracing::dispatcher::with_default(&dispatch, || {
            let span = tracing::info_span!("job");
            let context = span_context(&span).unwrap();
            drop(span);
            let spans = collector.spans();
            let [job] = spans.as_slice() else { panic!("one span: {spans:?}") };
            assert_eq!(job.trace_id, context.trace_id().to_bytes());
            assert_eq!(job.span_id, context.span_id().to_bytes());
            assert!(job.parent_span_id.is_empty(), "a root");
            assert_eq!(job.flags, 0x101);
        });
    }

    #[test]
    fn events_are_named_by_their_message_and_an_error_marks_the_span() {
        let (dispatch, collector) = exporting(Sampler::AlwaysOn);
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
        let spans = collector.spans();
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
        let (dispatch, collector) = exporting(Sampler::AlwaysOn);
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
        let spans = collector.spans();
        let [span] = spans.as_slice() else { panic!("one span: {spans:?}") };
        assert_eq!(span.kind, OtlpKind::Client as i32);
        assert_eq!(attribute(span, "rpc.grpc.status_code"), Some(AnyValue::IntValue(14)));
        let status = span.status.clone().unwrap();
        assert_eq!((status.code, status.message.as_str()), (StatusCode::Error as i32, "the callee went away"));
        let [link] = span.links.as_slice() else { panic!("one link (an invalid context is none): {span:?}") };
        assert_eq!(link.trace_id, linked.trace_id().to_bytes());
        assert_eq!(link.span_id, linked.span_id().to_bytes());
    }

    #[test]
    fn the_span_limits_hold_and_what_they_drop_is_counted() {
        let limits = SpanLimits {
            max_attributes_per_span: 2,
            max_events_per_span: 1,
            max_links_per_span: 1,
            ..SpanLimits::default()
        };
        let (dispatch, collector) = exporting_within(Sampler::AlwaysOn, limits);
        tracing::dispatcher::with_default(&dispatch, || {
            let span = tracing::info_span!("job", a = 1_i64, b = 2_i64, c = 3_i64);
            add_link(&span, remote(true));
            add_link(&span, remote(true));
            let _entered = span.enter();
            tracing::info!("first");
            tracing::info!("second");
        });
        let spans = collector.spans();
        let [span] = spans.as_slice() else { panic!("one span: {spans:?}") };
        assert_eq!((span.attributes.len(), span.dropped_attributes_count), (2, 1));
        assert_eq!((span.events.len(), span.dropped_events_count), (1, 1));
        assert_eq!((span.links.len(), span.dropped_links_count), (1, 1));
    }

    #[test]
    fn a_described_failure_keeps_its_description() {
        let mut recording = Recording::new("db", 0, SpanLimits::default());
        recording.set_status(Status::error("no such table: orders"));
        recording.set_status(status_of("ERROR"));
        assert_eq!(recording.status, Status::error("no such table: orders"));
        recording.set_status(Status::error("deadlock"));
        assert_eq!(recording.status, Status::error("deadlock"));
    }
}
