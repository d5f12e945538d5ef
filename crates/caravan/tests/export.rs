//! Spans leave `caravan serve` through the OpenTelemetry SDK's exporter, over
//! either OTLP transport, to a real receiver: with the resource the standard
//! variables give, retried after the delay a refusing collector asks for,
//! and never at the cost of a call when the collector is down.

#![allow(clippy::unwrap_used)] // Test helpers fail loudly; that is their job.

mod common;

use std::{net::SocketAddr, process::Command, time::Duration};

use caravan::channel::Authed;
use caravan_platform::config::ServiceKind;
use caravan_proto::catalog::v1::{GetProductRequest, catalog_service_client::CatalogServiceClient};
use caravan_testkit::{Caller, OtlpReceiver, TestDatabase, eventually, write_test_keys};
use common::{Spawned, free_addr, serve, serving, stop};

/// A catalog exporting to `collector` over `protocol`, with the variables
/// SREs set on a pod, and a batch leaving every 100 ms.
fn catalog(
    dir: &std::path::Path,
    database: &TestDatabase,
    addr: SocketAddr,
    collector: SocketAddr,
    protocol: &str,
) -> Command {
    let keys = write_test_keys(dir).unwrap();
    let mut command = serve(ServiceKind::Catalog, addr, database, &keys);
    command
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", format!("http://{collector}"))
        .env("OTEL_EXPORTER_OTLP_PROTOCOL", protocol)
        .env("OTEL_TRACES_SAMPLER", "always_on")
        .env("OTEL_BSP_SCHEDULE_DELAY", "100")
        .env("OTEL_RESOURCE_ATTRIBUTES", "k8s.pod.name=catalog-7d9f5-x2x4q,k8s.namespace.name=festival");
    command
}

/// One call the catalog answers NOT_FOUND (a span all the same), within
/// `deadline`.
async fn call(addr: SocketAddr, deadline: Duration) -> tonic::Code {
    let channel = Authed::new(&addr.to_string(), Some(Caller::Hema.key()), None).unwrap();
    let mut request = tonic::Request::new(GetProductRequest { name: "products/uz-nowhere".into() });
    request.set_timeout(deadline);
    CatalogServiceClient::new(channel).get_product(request).await.unwrap_err().code()
}

/// Serves one call from a catalog exporting to `collector` over
/// `protocol`, and waits for its span to reach `receiver`; whether it did.
async fn one_call_exported(protocol: &str, receiver: &OtlpReceiver, collector: SocketAddr) -> bool {
    let dir = tempfile::tempdir().unwrap();
    let database = TestDatabase::new::<caravan_catalog::Migrator>(ServiceKind::Catalog).await.unwrap();
    let addr = free_addr();
    let child = Spawned(catalog(dir.path(), &database, addr, collector, protocol).spawn().unwrap());
    serving(addr).await;
    assert_eq!(call(addr, Duration::from_secs(5)).await, tonic::Code::NotFound);
    let arrived = eventually(Duration::from_secs(15), || async {
        receiver.spans().iter().any(|(_, span)| span.name.ends_with("CatalogService/GetProduct"))
    })
    .await;
    stop(child).await;
    arrived
}

async fn exported_with_the_pods_resource(protocol: &str, receiver: OtlpReceiver, collector: SocketAddr) {
    assert!(
        one_call_exported(protocol, &receiver, collector).await,
        "{protocol}: the call's span reached the collector"
    );
    let spans = receiver.spans_with_resource();
    let (resource, _) = spans.iter().find(|(_, span)| span.name.ends_with("CatalogService/GetProduct")).unwrap();
    let attribute = |key: &str| resource.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str());
    assert_eq!(attribute("service.name"), Some("catalog"), "{protocol}: {resource:?}");
    assert_eq!(attribute("service.namespace"), Some("caravan"), "{protocol}: {resource:?}");
    assert_eq!(attribute("k8s.pod.name"), Some("catalog-7d9f5-x2x4q"), "{protocol}: {resource:?}");
    assert_eq!(attribute("k8s.namespace.name"), Some("festival"), "{protocol}: {resource:?}");
}

#[tokio::test]
async fn spans_leave_over_grpc_with_the_resource_the_environment_gives() {
    let (receiver, collector) = OtlpReceiver::start().await.unwrap();
    exported_with_the_pods_resource("grpc", receiver, collector).await;
}

#[tokio::test]
async fn spans_leave_over_http_protobuf_with_the_resource_the_environment_gives() {
    let (receiver, collector) = OtlpReceiver::start_http(0, Duration::ZERO).await.unwrap();
    exported_with_the_pods_resource("http/protobuf", receiver, collector).await;
}

/// The collector refuses the first export, asking for a retry in two
/// seconds; the exporter waits that long (its own backoff would start at
/// 100 ms), then the spans arrive.
async fn retried_after_the_delay_asked_for(protocol: &str, receiver: OtlpReceiver, collector: SocketAddr) {
    let arrived = one_call_exported(protocol, &receiver, collector).await;
    assert!(arrived, "{protocol}: the spans arrived once the collector took them");
    let exports = receiver.exports();
    let refused = exports.iter().position(|e| !e.accepted).expect("an export was refused");
    let retry = &exports[refused + 1];
    assert!(retry.accepted, "{protocol}: {exports:?}");
    let waited = retry.at - exports[refused].at;
    assert!(waited >= Duration::from_millis(1900), "{protocol}: retried after {waited:?}, not the 2 s asked for");
}

#[tokio::test]
async fn a_refusing_grpc_collector_is_retried_after_its_retry_info() {
    let (receiver, collector) = OtlpReceiver::start_refusing(1, Duration::from_secs(2)).await.unwrap();
    retried_after_the_delay_asked_for("grpc", receiver, collector).await;
}

#[tokio::test]
async fn a_refusing_http_collector_is_retried_after_its_retry_after() {
    let (receiver, collector) = OtlpReceiver::start_http(1, Duration::from_secs(2)).await.unwrap();
    retried_after_the_delay_asked_for("http/protobuf", receiver, collector).await;
}

/// No collector listens: every call is answered as if tracing were off,
/// and the lost spans are counted.
#[tokio::test]
async fn a_collector_that_is_down_costs_spans_never_calls() {
    let dir = tempfile::tempdir().unwrap();
    let database = TestDatabase::new::<caravan_catalog::Migrator>(ServiceKind::Catalog).await.unwrap();
    let (addr, metrics, nobody) = (free_addr(), free_addr(), free_addr());
    let mut command = catalog(dir.path(), &database, addr, nobody, "grpc");
    command.env("CARAVAN_METRICS_ADDR", metrics.to_string()).env("OTEL_EXPORTER_OTLP_TIMEOUT", "1000");
    let child = Spawned(command.spawn().unwrap());
    serving(addr).await;
    // Each call within a deadline far below the exporter's retries: a call
    // that waited on the collector would end DEADLINE_EXCEEDED.
    for _ in 0..50 {
        assert_eq!(call(addr, Duration::from_secs(2)).await, tonic::Code::NotFound);
    }
    let failed = eventually(Duration::from_secs(15), || async {
        let text = scrape(metrics).await;
        text.lines().any(|line| {
            line.starts_with("caravan_spans_total{")
                && line.contains("outcome=\"failed\"")
                && line.rsplit(' ').next().and_then(|v| v.parse::<f64>().ok()).is_some_and(|v| v > 0.0)
        })
    })
    .await;
    stop(child).await;
    assert!(failed, "the lost spans are counted in caravan_spans_total{{outcome=\"failed\"}}");
}

/// `GET /metrics` on `addr`, as text (empty while it does not answer).
async fn scrape(addr: SocketAddr) -> String {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let Ok(mut stream) = tokio::net::TcpStream::connect(addr).await else { return String::new() };
    let request = format!("GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    if stream.write_all(request.as_bytes()).await.is_err() {
        return String::new();
    }
    let mut text = String::new();
    let _ = stream.read_to_string(&mut text).await;
    text
}
