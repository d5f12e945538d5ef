//! Logs and traces.
//!
//! One subscriber per process, installed as the global default: logs (pretty
//! or JSON, filtered by `CARAVAN_LOG`) and, when `OTEL_EXPORTER_OTLP_ENDPOINT`
//! is set, an OpenTelemetry layer exporting over OTLP/gRPC with the sampler
//! of `OTEL_TRACES_SAMPLER`. Under `caravan serve` its `service.name` is the
//! service; under `caravan up`, four services share the process and the name
//! `caravan`, and the span attribute `rpc.service` tells them apart (see
//! ARCHITECTURE.md: one registry per process, because libraries such as the
//! SQLite driver carry span handles across threads, which is unsafe across
//! several registries).
//!
//! The OTLP exporter's own gRPC calls do not pass through caravan's client
//! layer, the libraries underneath are filtered out of the exported spans, and
//! the batch processor's thread suppresses telemetry: exporting makes no spans.

use std::{collections::HashMap, sync::Mutex, time::Duration};

use opentelemetry::{KeyValue, trace::TracerProvider as _};
use opentelemetry_otlp::WithExportConfig as _;
use opentelemetry_sdk::{
    Resource,
    trace::{Sampler, SdkTracerProvider},
};
use tracing::Dispatch;
use tracing_subscriber::{EnvFilter, Layer, Registry, fmt, layer::SubscriberExt as _};

use crate::config::{ConfigError, LogConfig, LogFormat, ServiceKind};

/// OpenTelemetry settings, from the standard `OTEL_*` variables.
#[derive(Debug, Clone, PartialEq)]
pub struct OtelConfig {
    /// `OTEL_EXPORTER_OTLP_ENDPOINT`: OTLP/gRPC collector; no export when unset.
    pub endpoint: Option<String>,
    /// From `OTEL_TRACES_SAMPLER` and `OTEL_TRACES_SAMPLER_ARG`.
    pub sampler: SamplerConfig,
}

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
    /// Reads `OTEL_EXPORTER_OTLP_ENDPOINT`, `OTEL_TRACES_SAMPLER`, `OTEL_TRACES_SAMPLER_ARG`.
    pub fn from_env(env: &HashMap<String, String>) -> Result<Self, ConfigError> {
        let get = |name: &str| env.get(name).map(|v| v.trim()).filter(|v| !v.is_empty());
        let endpoint = match get("OTEL_EXPORTER_OTLP_ENDPOINT") {
            None => None,
            Some(raw) => {
                let url = url::Url::parse(raw).map_err(|e| {
                    ConfigError::new("OTEL_EXPORTER_OTLP_ENDPOINT", format!("`{raw}` is not a URL: {e}"))
                })?;
                if !matches!(url.scheme(), "http" | "https") {
                    return Err(ConfigError::new("OTEL_EXPORTER_OTLP_ENDPOINT", "must be http:// or https://"));
                }
                Some(raw.to_owned())
            }
        };
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
        Ok(OtelConfig { endpoint, sampler })
    }

    fn sampler(&self) -> Sampler {
        match self.sampler {
            SamplerConfig::AlwaysOn => Sampler::AlwaysOn,
            SamplerConfig::AlwaysOff => Sampler::AlwaysOff,
            SamplerConfig::Ratio(r) => Sampler::TraceIdRatioBased(r),
            SamplerConfig::ParentBasedAlwaysOn => Sampler::ParentBased(Box::new(Sampler::AlwaysOn)),
            SamplerConfig::ParentBasedAlwaysOff => Sampler::ParentBased(Box::new(Sampler::AlwaysOff)),
            SamplerConfig::ParentBasedRatio(r) => Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(r))),
        }
    }
}

/// The process's telemetry: create once in `main`, then call
/// [`Telemetry::shutdown`] before exiting so the last spans are exported.
#[derive(Debug)]
pub struct Telemetry {
    provider: Mutex<Option<SdkTracerProvider>>,
}

/// The dispatch a service's requests and background work run under: the
/// process's global subscriber in production; tests may give a service one of
/// its own (for instance with an in-memory span exporter).
#[derive(Debug, Clone)]
pub struct ServiceTelemetry {
    /// Logs, and traces when export is on.
    pub dispatch: Dispatch,
}

impl ServiceTelemetry {
    /// The global default subscriber.
    pub fn global() -> Self {
        ServiceTelemetry { dispatch: tracing::dispatcher::get_default(Dispatch::clone) }
    }

    /// A dispatch with logs (per `log`) and traces into `provider`, for tests
    /// that collect spans in memory.
    pub fn with_provider(service: ServiceKind, log: &LogConfig, provider: &SdkTracerProvider) -> anyhow::Result<Self> {
        let tracer = provider.tracer(service.as_str());
        let otel = tracing_opentelemetry::layer().with_tracer(tracer).with_filter(otel_filter());
        let subscriber = Registry::default().with(log_layer(log)?).with(otel);
        Ok(ServiceTelemetry { dispatch: Dispatch::new(subscriber) })
    }
}

impl Telemetry {
    /// Installs the process's subscriber; spans carry `service_name`. Call
    /// inside the tokio runtime when export is on: the exporter's channel is
    /// created here.
    pub fn init(log: &LogConfig, otel: &OtelConfig, service_name: &str) -> anyhow::Result<Self> {
        let provider = match &otel.endpoint {
            None => None,
            Some(endpoint) => {
                let exporter = opentelemetry_otlp::SpanExporter::builder()
                    .with_tonic()
                    .with_endpoint(endpoint.clone())
                    .with_timeout(Duration::from_secs(5))
                    .build()?;
                Some(
                    SdkTracerProvider::builder()
                        .with_batch_exporter(exporter)
                        .with_sampler(otel.sampler())
                        .with_resource(resource(service_name))
                        .build(),
                )
            }
        };
        let otel_layer = provider.as_ref().map(|provider| {
            tracing_opentelemetry::layer()
                .with_tracer(provider.tracer(service_name.to_owned()))
                .with_filter(otel_filter())
        });
        let subscriber = Registry::default().with(log_layer(log)?).with(otel_layer);
        tracing::subscriber::set_global_default(subscriber)
            .map_err(|e| anyhow::anyhow!("a global subscriber is already installed: {e}"))?;
        Ok(Telemetry { provider: Mutex::new(provider) })
    }

    /// The telemetry of one service of this process.
    pub fn service(&self, _service: ServiceKind) -> ServiceTelemetry {
        ServiceTelemetry::global()
    }

    /// Flushes and stops the exporter, so the last spans leave before exit.
    pub fn shutdown(&self) {
        let provider = self.provider.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(provider) = provider
            && let Err(e) = provider.shutdown_with_timeout(Duration::from_secs(5))
        {
            tracing::warn!(error = %e, "flushing traces at exit");
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

/// Spans exported: ours at info and above, never the per-query or HTTP/2
/// internals of the libraries underneath.
fn otel_filter() -> EnvFilter {
    EnvFilter::new("info,h2=off,hyper=off,tower=off,tonic=off,sqlx=off,sea_orm=off,opentelemetry=off")
}

fn log_layer<S>(log: &LogConfig) -> anyhow::Result<Box<dyn Layer<S> + Send + Sync>>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    let filter = EnvFilter::try_new(&log.filter)
        .map_err(|e| anyhow::anyhow!("CARAVAN_LOG: `{}` is not a valid filter: {e}", log.filter))?;
    Ok(match log.format {
        LogFormat::Pretty => fmt::layer().with_target(true).with_filter(filter).boxed(),
        LogFormat::Json => fmt::layer()
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .with_filter(filter)
            .boxed(),
    })
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
}
