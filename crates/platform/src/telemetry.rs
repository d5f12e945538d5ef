//! Logs and traces.
//!
//! The process has one global subscriber that only writes logs. Each service
//! gets its own [`ServiceTelemetry`]: a tracing `Dispatch` with the same logs
//! plus, when `OTEL_EXPORTER_OTLP_ENDPOINT` is set, an OpenTelemetry layer whose
//! tracer provider carries that service's `service.name`. The server layer
//! enters it around every request and the worker around every run, so under
//! `caravan up` four services in one process still report four names, without
//! stacking OpenTelemetry layers on one subscriber (which panics).
//!
//! The OTLP exporter's own gRPC traffic runs in tasks of its own, under the
//! global logs-only subscriber and without the client layer, and the batch
//! processor's thread suppresses telemetry: exporting never produces spans.

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

/// The process's telemetry: create once in `main`, hand each service its
/// [`ServiceTelemetry`], call [`Telemetry::shutdown`] before exiting so the
/// last spans are exported.
#[derive(Debug)]
pub struct Telemetry {
    log: LogConfig,
    otel: OtelConfig,
    providers: Mutex<Vec<SdkTracerProvider>>,
}

/// One service's telemetry: the dispatch its requests and background work run
/// under.
#[derive(Debug, Clone)]
pub struct ServiceTelemetry {
    /// Logs, and traces with this service's `service.name` when export is on.
    pub dispatch: Dispatch,
}

impl ServiceTelemetry {
    /// Whatever subscriber is the global default (tests, tools): logs only.
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
    /// Installs the global logs-only subscriber.
    pub fn init(log: &LogConfig, otel: &OtelConfig) -> anyhow::Result<Self> {
        let subscriber = Registry::default().with(log_layer(log)?);
        tracing::subscriber::set_global_default(subscriber)
            .map_err(|e| anyhow::anyhow!("a global subscriber is already installed: {e}"))?;
        Ok(Telemetry { log: log.clone(), otel: otel.clone(), providers: Mutex::new(Vec::new()) })
    }

    /// The telemetry of one service. Call inside the tokio runtime: the OTLP
    /// exporter's channel is created here.
    pub fn service(&self, service: ServiceKind) -> anyhow::Result<ServiceTelemetry> {
        let Some(endpoint) = &self.otel.endpoint else {
            return Ok(ServiceTelemetry { dispatch: Dispatch::new(Registry::default().with(log_layer(&self.log)?)) });
        };
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_tonic()
            .with_endpoint(endpoint.clone())
            .with_timeout(Duration::from_secs(5))
            .build()?;
        let provider = SdkTracerProvider::builder()
            .with_batch_exporter(exporter)
            .with_sampler(self.otel.sampler())
            .with_resource(resource(service))
            .build();
        let telemetry = ServiceTelemetry::with_provider(service, &self.log, &provider)?;
        self.providers.lock().unwrap_or_else(|e| e.into_inner()).push(provider);
        Ok(telemetry)
    }

    /// Flushes and stops every exporter, so the last spans leave before exit.
    pub fn shutdown(&self) {
        let providers = std::mem::take(&mut *self.providers.lock().unwrap_or_else(|e| e.into_inner()));
        for provider in providers {
            if let Err(e) = provider.shutdown_with_timeout(Duration::from_secs(5)) {
                tracing::warn!(error = %e, "flushing traces at exit");
            }
        }
    }
}

/// The OpenTelemetry resource of a service: `service.name` is the service,
/// `service.namespace` is `caravan`.
pub fn resource(service: ServiceKind) -> Resource {
    Resource::builder()
        .with_service_name(service.as_str())
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
