//! For measurement only (feature `bridge-comparison`): the standard
//! `tracing-opentelemetry` bridge over an SDK tracer, in place of caravan's
//! span layer, when `CARAVAN_TRACE_BRIDGE=tracing-opentelemetry`. Same
//! filter, same batch processor and exporter; one resource for the whole
//! process (the bridge has one tracer). `caravan loadgen --tracing-cost
//! --tracing-bridge` compares the two (BENCHMARKS.md, "What tracing costs").

use std::sync::atomic::{AtomicBool, Ordering};

use opentelemetry::{
    Context,
    trace::{SpanContext, TraceContextExt as _, TracerProvider as _},
};
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;
use tracing_subscriber::{Layer, registry::LookupSpan};

use super::{OtelConfig, export};

static ACTIVE: AtomicBool = AtomicBool::new(false);

/// Whether the environment asks for the bridge.
pub(crate) fn requested() -> bool {
    std::env::var("CARAVAN_TRACE_BRIDGE").is_ok_and(|v| v == "tracing-opentelemetry")
}

/// Whether this process traces through the bridge.
pub(crate) fn active() -> bool {
    ACTIVE.load(Ordering::Relaxed)
}

/// The bridge's layer and the provider to shut down at exit.
pub(crate) fn layer<S>(config: &OtelConfig, process_name: &str) -> anyhow::Result<(impl Layer<S>, SdkTracerProvider)>
where
    S: tracing::Subscriber + for<'a> LookupSpan<'a>,
{
    let (processor, resource) =
        export::process_processor(config, &opentelemetry_sdk::Resource::builder().build(), process_name)?;
    let provider = SdkTracerProvider::builder().with_span_processor(processor).with_resource(resource).build();
    let layer = tracing_opentelemetry::layer()
        .with_tracer(provider.tracer(env!("CARGO_PKG_NAME")))
        .with_tracked_inactivity(false)
        .with_threads(false)
        .with_location(false)
        .with_target(false)
        .with_level(false);
    ACTIVE.store(true, Ordering::Relaxed);
    Ok((layer, provider))
}

pub(crate) fn span_context(span: &tracing::Span) -> Option<SpanContext> {
    Some(span.context().span().span_context().clone()).filter(SpanContext::is_valid)
}

pub(crate) fn set_parent(span: &tracing::Span, parent: &SpanContext) {
    let _ = span.set_parent(Context::new().with_remote_span_context(parent.clone()));
}

pub(crate) fn add_link(span: &tracing::Span, linked: SpanContext) {
    span.add_link(linked);
}
