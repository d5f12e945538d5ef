//! Where finished spans go: the SDK's batch span processor, exporting
//! through `opentelemetry-otlp` — OTLP/gRPC or OTLP/HTTP with protobuf, as
//! `OTEL_EXPORTER_OTLP_PROTOCOL` says.
//!
//! One processor per service of the process, each with that service's
//! resource (`caravan up` runs four; `caravan serve` one), and one for work
//! of no service (start-up, tools). The SDK reads its standard variables
//! itself: the collector's address, headers, timeout and compression
//! (`OTEL_EXPORTER_OTLP_*`), the batches (`OTEL_BSP_*`) and the resource
//! (`OTEL_RESOURCE_ATTRIBUTES`, `OTEL_SERVICE_NAME`). The exporter retries
//! what OTLP calls retryable, honouring a collector's `RetryInfo` (gRPC) or
//! `Retry-After` (HTTP); a span that finds the processor's queue full is
//! dropped, never waited for.
//!
//! caravan adds what the SDK does not read: the CA and client certificate of
//! an `https://` collector (`OTEL_EXPORTER_OTLP_CERTIFICATE`,
//! `…_CLIENT_CERTIFICATE`, `…_CLIENT_KEY`), and `caravan_spans_total`.
//!
//! [`SpanCollector`] keeps spans in memory instead, for tests.

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use opentelemetry::KeyValue;
use opentelemetry_otlp::{WithExportConfig as _, WithHttpConfig as _, WithTonicConfig as _};
use opentelemetry_sdk::{
    Resource,
    error::OTelSdkResult,
    trace::{BatchSpanProcessor, SpanData, SpanExporter, SpanProcessor as _},
};

use super::config::{OtelConfig, Protocol};
use crate::{config::ServiceKind, metrics::metrics};

/// Where the span layer hands each finished, sampled span.
pub(crate) trait SpanSink: Send + Sync + std::fmt::Debug {
    /// `span` is `service`'s work (or no service's: start-up, tools).
    fn push(&self, service: Option<ServiceKind>, span: SpanData);
}

/// The spans of a test, kept in memory as they end.
#[derive(Debug, Clone, Default)]
pub struct SpanCollector {
    spans: Arc<Mutex<Vec<Collected>>>,
}

/// A span as it ended, and whose work it was.
type Collected = (Option<ServiceKind>, SpanData);

impl SpanCollector {
    /// Every span so far, as OTLP writes it, in the order they ended.
    pub fn spans(&self) -> Vec<opentelemetry_proto::tonic::trace::v1::Span> {
        self.with_service().into_iter().map(|(_, span)| span).collect()
    }

    /// Every span so far with the service whose work it was.
    pub fn with_service(&self) -> Vec<(Option<ServiceKind>, opentelemetry_proto::tonic::trace::v1::Span)> {
        let spans = self.spans.lock().unwrap_or_else(|e| e.into_inner());
        spans.iter().map(|(service, span)| (*service, span.clone().into())).collect()
    }
}

impl SpanSink for SpanCollector {
    fn push(&self, service: Option<ServiceKind>, span: SpanData) {
        self.spans.lock().unwrap_or_else(|e| e.into_inner()).push((service, span));
    }
}

/// The process's export: a batch span processor per service.
#[derive(Debug)]
pub(crate) struct Pipeline {
    /// The services' processors, in [`ServiceKind::ALL`] order, where the
    /// process runs that service apart from its own name.
    services: Vec<(ServiceKind, BatchSpanProcessor)>,
    /// The process's own (its name, or `OTEL_SERVICE_NAME`).
    process: BatchSpanProcessor,
}

impl Pipeline {
    /// Starts the processors (each a thread of the SDK's): one for
    /// `process_name`, and one per service of `services` with its own name.
    /// Call within the async runtime: the gRPC exporter's channel runs on
    /// it.
    pub(crate) fn start(config: &OtelConfig, process_name: &str, services: &[ServiceKind]) -> anyhow::Result<Self> {
        // The environment's resource, read once for every processor.
        let base = Resource::builder().build();
        let (process, _) = process_processor(config, &base, process_name)?;
        let services = services
            .iter()
            .map(|&service| {
                let resource = resource(&base, Some(service.as_str()));
                Ok((service, processor(config, service.as_str().to_owned(), &resource)?))
            })
            .collect::<anyhow::Result<_>>()?;
        Ok(Pipeline { services, process })
    }

    /// Exports what is queued and stops, within `timeout` in all: the
    /// processors stop side by side (the exit budget counts one flush).
    pub(crate) fn shutdown(&self, timeout: Duration) -> anyhow::Result<()> {
        let failures: Vec<String> = std::thread::scope(|scope| {
            let stopping: Vec<_> = self
                .services
                .iter()
                .map(|(_, p)| p)
                .chain([&self.process])
                .map(|processor| scope.spawn(move || processor.shutdown_with_timeout(timeout)))
                .collect();
            stopping
                .into_iter()
                .filter_map(|stopping| match stopping.join() {
                    Ok(Ok(())) => None,
                    Ok(Err(e)) => Some(e.to_string()),
                    Err(_) => Some("a span processor panicked while stopping".to_owned()),
                })
                .collect()
        });
        anyhow::ensure!(failures.is_empty(), "{}", failures.join("; "));
        Ok(())
    }
}

impl SpanSink for Pipeline {
    fn push(&self, service: Option<ServiceKind>, span: SpanData) {
        let processor = service
            .and_then(|service| self.services.iter().find(|(s, _)| *s == service))
            .map_or(&self.process, |(_, processor)| processor);
        processor.on_end(span);
    }
}

/// The processor of the process's own spans, and its resource (`base`, the
/// environment's, with caravan's attributes): named
/// `process_name`, unless `OTEL_SERVICE_NAME` (or `service.name` in
/// `OTEL_RESOURCE_ATTRIBUTES`) names the process.
pub(super) fn process_processor(
    config: &OtelConfig,
    base: &Resource,
    process_name: &str,
) -> anyhow::Result<(BatchSpanProcessor, Resource)> {
    let named = service_name(base).is_some_and(|name| !name.starts_with("unknown_service"));
    let resource = resource(base, (!named).then_some(process_name));
    let processor = processor(config, service_name(&resource).unwrap_or_default(), &resource)?;
    Ok((processor, resource))
}

fn service_name(resource: &Resource) -> Option<String> {
    resource.get(&opentelemetry::Key::from_static_str("service.name")).map(|name| name.to_string())
}

/// The base resource (the SDK's detectors: `OTEL_RESOURCE_ATTRIBUTES`,
/// `OTEL_SERVICE_NAME`, the SDK's own attributes) with caravan's namespace
/// and version, named `name` when given.
fn resource(base: &Resource, name: Option<&str>) -> Resource {
    let mut builder = Resource::builder_empty()
        .with_attributes([
            KeyValue::new("service.namespace", "caravan"),
            KeyValue::new("service.version", env!("CARGO_PKG_VERSION")),
        ])
        .with_attributes(base.iter().map(|(k, v)| KeyValue::new(k.clone(), v.clone())));
    if let Some(name) = name {
        builder = builder.with_service_name(name.to_owned());
    }
    builder.build()
}

/// A batch span processor exporting to the collector with `resource`.
fn processor(config: &OtelConfig, service: String, resource: &Resource) -> anyhow::Result<BatchSpanProcessor> {
    let exporter = Counted { inner: exporter(config)?, service };
    let mut processor = BatchSpanProcessor::builder(exporter).build();
    processor.set_resource(resource);
    Ok(processor)
}

/// The OTLP exporter of `config.protocol`; everything else it reads from
/// the standard variables.
fn exporter(config: &OtelConfig) -> anyhow::Result<opentelemetry_otlp::SpanExporter> {
    let tls = config.endpoint.as_deref().is_some_and(|url| url.starts_with("https://"));
    let exporter = match config.protocol {
        Protocol::Grpc => {
            let mut builder = opentelemetry_otlp::SpanExporter::builder().with_tonic();
            if tls {
                builder = builder.with_tls_config(tonic_tls(config)?);
            }
            builder.build()
        }
        Protocol::HttpProtobuf => {
            let client = http_client(config, tls)?;
            opentelemetry_otlp::SpanExporter::builder()
                .with_http()
                .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
                .with_http_client(client)
                .build()
        }
    };
    exporter.map_err(|e| anyhow::anyhow!("the OTLP exporter: {e}"))
}

fn read(variable: &str, path: &std::path::Path) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| anyhow::anyhow!("{variable}: cannot read {}: {e}", path.display()))
}

/// TLS to an `https://` collector over gRPC: the configured CA, else the
/// public roots; a client certificate for mutual TLS.
fn tonic_tls(config: &OtelConfig) -> anyhow::Result<tonic::transport::ClientTlsConfig> {
    use tonic::transport::{Certificate, ClientTlsConfig, Identity};
    let mut tls = match &config.certificate {
        Some(ca) => ClientTlsConfig::new().ca_certificate(Certificate::from_pem(read(CERTIFICATE, ca)?)),
        None => ClientTlsConfig::new().with_webpki_roots(),
    };
    if let Some((cert, key)) = &config.client_identity {
        tls = tls.identity(Identity::from_pem(read(CLIENT_CERTIFICATE, cert)?, read(CLIENT_KEY, key)?));
    }
    Ok(tls)
}

const CERTIFICATE: &str = "OTEL_EXPORTER_OTLP_CERTIFICATE";
const CLIENT_CERTIFICATE: &str = "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE";
const CLIENT_KEY: &str = "OTEL_EXPORTER_OTLP_CLIENT_KEY";

/// The HTTP exporter's client: reqwest's blocking client (the batch
/// processor exports from a thread of its own), with rustls on ring and the
/// same certificates as over gRPC.
fn http_client(config: &OtelConfig, tls: bool) -> anyhow::Result<reqwest::blocking::Client> {
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject as _};
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    match (&config.certificate, tls) {
        (Some(ca), true) => {
            for cert in CertificateDer::pem_slice_iter(&read(CERTIFICATE, ca)?) {
                roots.add(cert.map_err(|e| anyhow::anyhow!("{CERTIFICATE}: {e}"))?)?;
            }
        }
        _ => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
    }
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| anyhow::anyhow!("TLS: {e}"))?
        .with_root_certificates(roots);
    let rustls = match &config.client_identity {
        Some((cert, key)) if tls => {
            let chain = CertificateDer::pem_slice_iter(&read(CLIENT_CERTIFICATE, cert)?)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| anyhow::anyhow!("{CLIENT_CERTIFICATE}: {e}"))?;
            let key = PrivateKeyDer::from_pem_slice(&read(CLIENT_KEY, key)?)
                .map_err(|e| anyhow::anyhow!("{CLIENT_KEY}: {e}"))?;
            builder.with_client_auth_cert(chain, key).map_err(|e| anyhow::anyhow!("{CLIENT_KEY}: {e}"))?
        }
        _ => builder.with_no_client_auth(),
    };
    // reqwest's blocking client runs a runtime of its own on a thread of its
    // own, and must not be built (or dropped) inside another runtime.
    std::thread::scope(|scope| {
        scope
            .spawn(|| reqwest::blocking::Client::builder().tls_backend_preconfigured(rustls).build())
            .join()
            .map_err(|_| anyhow::anyhow!("building the HTTP exporter's client panicked"))?
            .map_err(|e| anyhow::anyhow!("the HTTP exporter's client: {e}"))
    })
}

/// The exporter, counting in `caravan_spans_total` what became of each span.
#[derive(Debug)]
struct Counted<E> {
    inner: E,
    service: String,
}

impl<E: SpanExporter> SpanExporter for Counted<E> {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        let spans = batch.len() as u64;
        let result = self.inner.export(batch).await;
        let outcome = if result.is_ok() { "exported" } else { "failed" };
        metrics().spans.with_label_values(&[self.service.as_str(), outcome]).inc_by(spans);
        result
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.inner.set_resource(resource);
    }
}
