//! Two `caravan serve` processes export their spans over OTLP/gRPC to a real
//! OTLP receiver in this test; one trace crosses from scheduling to catalog.

#![allow(clippy::unwrap_used)] // Test helpers fail loudly; that is their job.

use std::{
    net::{SocketAddr, TcpListener},
    process::{Child, Command, Stdio},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use caravan_platform::{
    config::ServiceKind,
    testing::{Caller, KeyedChannel, TestDatabase, eventually, health_status, write_test_keys},
};
use caravan_proto::scheduling::v1::{CreateHostRequest, Host, scheduling_service_client::SchedulingServiceClient};
use opentelemetry_proto::tonic::{
    collector::trace::v1::{
        ExportTraceServiceRequest, ExportTraceServiceResponse,
        trace_service_server::{TraceService, TraceServiceServer},
    },
    common::v1::any_value::Value,
    trace::v1::{Span, span::SpanKind},
};
use tonic_health::pb::health_check_response::ServingStatus;

/// Spans received, with the `service.name` of their resource.
#[derive(Default, Clone)]
struct Receiver(Arc<Mutex<Vec<(String, Span)>>>);

#[tonic::async_trait]
impl TraceService for Receiver {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let mut spans = self.0.lock().unwrap();
        for resource_spans in request.into_inner().resource_spans {
            let service = resource_spans
                .resource
                .iter()
                .flat_map(|r| r.attributes.iter())
                .find(|kv| kv.key == "service.name")
                .and_then(|kv| kv.value.as_ref())
                .and_then(|v| match &v.value {
                    Some(Value::StringValue(s)) => Some(s.clone()),
                    _ => None,
                })
                .unwrap_or_default();
            for scope in resource_spans.scope_spans {
                spans.extend(scope.spans.into_iter().map(|span| (service.clone(), span)));
            }
        }
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

fn free_addr() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap()
}

fn serve(service: &str, addr: SocketAddr, database_url: &str, otlp: SocketAddr, extra: &[(&str, String)]) -> Child {
    let mut command = Command::new(env!("CARGO_BIN_EXE_caravan"));
    command
        .args(["serve", service])
        .env_clear()
        .env("CARAVAN_LOG", "info")
        .env("CARAVAN_SHUTDOWN_GRACE", "5s")
        .env("CARAVAN_METRICS_ADDR", "off")
        .env("CARAVAN_LISTEN_ADDR", addr.to_string())
        .env("CARAVAN_DATABASE_URL", database_url)
        .env("CARAVAN_DB_MAX_CONNECTIONS", "2")
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", format!("http://{otlp}"))
        .env("OTEL_TRACES_SAMPLER", "always_on")
        .stdin(Stdio::null());
    for (key, value) in extra {
        command.env(key, value);
    }
    command.spawn().unwrap()
}

async fn stop(mut child: Child) {
    Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while child.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "caravan did not stop");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_trace_crosses_from_scheduling_to_catalog_between_processes() {
    let receiver = Receiver::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let otlp = listener.local_addr().unwrap();
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(TraceServiceServer::new(receiver.clone()))
            .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener)),
    );

    let catalog_db = TestDatabase::new::<caravan_catalog::Migrator>(ServiceKind::Catalog).await.unwrap();
    let scheduling_db = TestDatabase::new::<caravan_scheduling::Migrator>(ServiceKind::Scheduling).await.unwrap();
    let (catalog_addr, scheduling_addr) = (free_addr(), free_addr());
    let dir = tempfile::tempdir().unwrap();
    let keys = write_test_keys(dir.path()).unwrap().display().to_string();
    let catalog =
        serve("catalog", catalog_addr, catalog_db.config().url.expose(), otlp, &[("CARAVAN_KEYS_FILE", keys.clone())]);
    let scheduling = serve(
        "scheduling",
        scheduling_addr,
        scheduling_db.config().url.expose(),
        otlp,
        &[
            ("CARAVAN_CATALOG_URL", format!("http://{catalog_addr}")),
            ("CARAVAN_KEYS_FILE", keys),
            ("CARAVAN_SERVICE_KEY_FILE", dir.path().join("scheduling.key").display().to_string()),
        ],
    );
    for addr in [catalog_addr, scheduling_addr] {
        let up = eventually(Duration::from_secs(30), || async {
            matches!(health_status(addr, "").await, Ok(ServingStatus::Serving))
        })
        .await;
        assert!(up, "{addr} SERVING");
    }

    let channel = KeyedChannel::new(scheduling_addr, Some(Caller::Operator));
    let host =
        Host { display_name: "Akmalkhon Olimkhonov".into(), country: "countries/UZ".into(), ..Default::default() };
    SchedulingServiceClient::new(channel)
        .create_host(CreateHostRequest { host: Some(host), host_id: "olimkhonov".into(), request_id: String::new() })
        .await
        .unwrap();

    // Exit flushes the exporters.
    stop(scheduling).await;
    stop(catalog).await;

    let spans = receiver.0.lock().unwrap().clone();
    let find = |service: &str, kind: SpanKind, name: &str| {
        spans
            .iter()
            .find(|(s, span)| s == service && span.kind == kind as i32 && span.name == name)
            .map(|(_, span)| span.clone())
            .unwrap_or_else(|| {
                let seen: Vec<_> = spans.iter().map(|(s, span)| (s.clone(), span.kind, span.name.clone())).collect();
                panic!("no {kind:?} span {name} from {service}; received {seen:?}")
            })
    };
    let create = find("scheduling", SpanKind::Server, "caravan.scheduling.v1.SchedulingService/CreateHost");
    let call = find("scheduling", SpanKind::Client, "caravan.catalog.v1.CatalogService/GetCountry");
    let served = find("catalog", SpanKind::Server, "caravan.catalog.v1.CatalogService/GetCountry");

    // The client call happens inside the handler's own span, under the server span.
    let descends_from = |span: &Span, ancestor: &Span| {
        let mut parent = span.parent_span_id.clone();
        while !parent.is_empty() {
            if parent == ancestor.span_id {
                return true;
            }
            parent = spans
                .iter()
                .find(|(_, s)| s.span_id == parent)
                .map(|(_, s)| s.parent_span_id.clone())
                .unwrap_or_default();
        }
        false
    };
    assert_eq!(call.trace_id, create.trace_id);
    assert!(descends_from(&call, &create), "the GetCountry call is part of serving CreateHost");
    assert_eq!(served.trace_id, create.trace_id, "the trace crossed the process boundary");
    assert_eq!(served.parent_span_id, call.span_id);
    // The operator's id travels with the service's own credential, for audit.
    let attribute = |span: &Span, key: &str| {
        span.attributes.iter().find(|kv| kv.key == key).and_then(|kv| kv.value.as_ref()).and_then(|v| match &v.value {
            Some(Value::StringValue(s)) => Some(s.clone()),
            _ => None,
        })
    };
    assert_eq!(attribute(&create, "enduser.id").as_deref(), Some("ops-test"));
    assert_eq!(attribute(&served, "enduser.id").as_deref(), Some("svc-scheduling"));
    assert_eq!(attribute(&served, "caravan.on_behalf_of").as_deref(), Some("ops-test"));
    // Health checks are not traced, and exporting traces makes no traces.
    assert!(!spans.iter().any(|(_, span)| span.name.contains("grpc.health")), "health checks traced");
    assert!(!spans.iter().any(|(_, span)| span.name.contains("TraceService")), "the exporter traced itself");
}
