//! The RPC layers between real servers on loopback: load shedding, deadline
//! propagation, W3C trace context and metrics.

#![allow(clippy::unwrap_used)] // Test helpers fail loudly; that is their job.
#![allow(elided_lifetimes_in_paths)] // MigrationTrait is an async_trait.

use std::{
    net::SocketAddr,
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use caravan_platform::{
    auth::{
        Check, ServerAuth,
        rate::{RateConfig, RateLimits},
    },
    chaos::Chaos,
    client::{ChannelOptions, TracedChannel},
    config::{LogConfig, LogFormat, ServiceKind, loopback_url},
    deadline::parse_grpc_timeout,
    metrics::metrics,
    server::{GrpcServer, ServeOptions},
    telemetry::{ServiceTelemetry, SpanCollector},
};
use caravan_proto::orders::v1::{
    self as pb,
    orders_service_client::OrdersServiceClient,
    orders_service_server::{OrdersService, OrdersServiceServer},
};
use caravan_testkit::{TestDatabase, eventually, health_status};
use opentelemetry::trace::{SpanId, TraceId};
use opentelemetry_proto::tonic::{
    common::v1::any_value::Value as AnyValue,
    trace::v1::{Span as OtlpSpan, span::SpanKind as OtlpKind},
};
use sea_orm_migration::prelude::*;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tonic::{Code, Request, Response, Status, service::Routes};
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_types::StatusExt;

#[derive(Debug)]
struct NoMigrations;

#[async_trait::async_trait]
impl MigratorTrait for NoMigrations {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        Vec::new()
    }
}

/// What the test service does with GetOrder.
#[derive(Clone)]
enum Mode {
    /// Counts the call, then waits to be released.
    Hold { entered: Arc<AtomicUsize>, release: Arc<Notify> },
    /// Remembers the metadata it was called with.
    Record(Arc<Mutex<Option<tonic::metadata::MetadataMap>>>),
    /// Calls another server's GetOrder.
    Forward(Box<OrdersServiceClient<TracedChannel>>),
}

struct TestOrders(Mode);

#[tonic::async_trait]
impl OrdersService for TestOrders {
    async fn get_order(&self, request: Request<pb::GetOrderRequest>) -> Result<Response<pb::Order>, Status> {
        match &self.0 {
            Mode::Hold { entered, release } => {
                entered.fetch_add(1, Ordering::SeqCst);
                release.notified().await;
            }
            Mode::Record(seen) => {
                *seen.lock().unwrap() = Some(request.metadata().clone());
            }
            Mode::Forward(client) => {
                client.clone().get_order(pb::GetOrderRequest { name: request.into_inner().name }).await?;
            }
        }
        Ok(Response::new(pb::Order { name: "orders/o-1".into(), ..Default::default() }))
    }

    async fn place_order(&self, _: Request<pb::PlaceOrderRequest>) -> Result<Response<pb::Order>, Status> {
        Err(Status::unimplemented("test"))
    }

    async fn list_orders(&self, _: Request<pb::ListOrdersRequest>) -> Result<Response<pb::ListOrdersResponse>, Status> {
        Err(Status::unimplemented("test"))
    }

    async fn confirm_payment(&self, _: Request<pb::ConfirmPaymentRequest>) -> Result<Response<pb::Order>, Status> {
        Err(Status::unimplemented("test"))
    }

    async fn cancel_order(&self, _: Request<pb::CancelOrderRequest>) -> Result<Response<pb::Order>, Status> {
        Err(Status::unimplemented("test"))
    }

    async fn get_show_sales_report(
        &self,
        _: Request<pb::GetShowSalesReportRequest>,
    ) -> Result<Response<pb::ShowSalesReport>, Status> {
        Err(Status::unimplemented("test"))
    }
}

struct Running {
    addr: SocketAddr,
    token: CancellationToken,
    _database: TestDatabase,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.token.cancel();
    }
}

async fn start(mode: Mode, telemetry: ServiceTelemetry, max_concurrent_calls: usize) -> Running {
    caravan_platform::telemetry::init_for_tests();
    let database = TestDatabase::new::<NoMigrations>(ServiceKind::Orders).await.unwrap();
    let server = GrpcServer::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await.unwrap();
    let addr = server.local_addr();
    let options = ServeOptions {
        service: ServiceKind::Orders,
        telemetry,
        max_concurrent_calls,
        auth: ServerAuth { check: Check::Insecure, rate: RateLimits::new(RateConfig { per_second: 0, burst: 0 }) },
        tls: None,
        service_name: "caravan.orders.v1.OrdersService",
        db: database.connect().await.unwrap(),
        probe: database.connect().await.unwrap(),
        health_check_interval: Duration::from_secs(1),
        shutdown_grace: Duration::from_secs(1),
        drain_delay: Duration::ZERO,
    };
    let token = CancellationToken::new();
    let routes = Routes::new(OrdersServiceServer::new(TestOrders(mode)));
    tokio::spawn(server.serve::<NoMigrations>(routes, options, token.clone()));
    Running { addr, token, _database: database }
}

fn client(addr: SocketAddr) -> OrdersServiceClient<tonic::transport::Channel> {
    OrdersServiceClient::new(tonic::transport::Endpoint::from_shared(format!("http://{addr}")).unwrap().connect_lazy())
}

fn traced_client(addr: SocketAddr, default_deadline: Duration) -> OrdersServiceClient<TracedChannel> {
    client_with(addr, ServiceKind::Orders, default_deadline, Chaos::default())
}

/// A client of `target` through which `chaos`'s drill reaches its calls.
fn drilled_client(addr: SocketAddr, target: ServiceKind, chaos: Chaos) -> OrdersServiceClient<TracedChannel> {
    client_with(addr, target, Duration::from_secs(5), chaos)
}

/// Scheduling's traced client of `target` at `addr`.
fn client_with(
    addr: SocketAddr,
    target: ServiceKind,
    default_deadline: Duration,
    chaos: Chaos,
) -> OrdersServiceClient<TracedChannel> {
    let options = ChannelOptions {
        caller: ServiceKind::Scheduling,
        target,
        connect_timeout: Duration::from_secs(1),
        default_deadline,
        service_key: None,
        tls: None,
        balancing: caravan_platform::client::Balancing::default(),
        chaos,
    };
    OrdersServiceClient::new(TracedChannel::new(&loopback_url(addr.port()), options).unwrap())
}

fn get(name: &str) -> pb::GetOrderRequest {
    pb::GetOrderRequest { name: name.into() }
}

#[tokio::test]
async fn calls_beyond_the_limit_are_refused_at_once_not_queued() {
    let entered = Arc::new(AtomicUsize::new(0));
    let release = Arc::new(Notify::new());
    let mode = Mode::Hold { entered: entered.clone(), release: release.clone() };
    let server = start(mode, ServiceTelemetry::global(), 2).await;

    let held: Vec<_> = (0..2)
        .map(|_| {
            let mut client = client(server.addr);
            tokio::spawn(async move { client.get_order(get("orders/o-1")).await })
        })
        .collect();
    assert!(eventually(Duration::from_secs(10), || async { entered.load(Ordering::SeqCst) == 2 }).await);

    // Both slots are taken and their calls still wait: a third call is refused
    // now, while they are blocked, not after them.
    let status = client(server.addr).get_order(get("orders/o-1")).await.unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted);
    let details = status.get_error_details();
    assert_eq!(details.error_info().unwrap().reason, "OVERLOADED");
    assert!(details.retry_info().is_some());
    assert_eq!(entered.load(Ordering::SeqCst), 2, "the refused call never reached the handler");
    assert!(held.iter().all(|h| !h.is_finished()));
    // Probes are never shed.
    assert_eq!(health_status(server.addr, "").await.unwrap(), ServingStatus::Serving);

    release.notify_waiters();
    for call in held {
        call.await.unwrap().unwrap();
    }
    // The slots are free again.
    release.notify_one();
    client(server.addr).get_order(get("orders/o-1")).await.unwrap();
}

fn timeout_seen(seen: &Mutex<Option<tonic::metadata::MetadataMap>>) -> Duration {
    let metadata = seen.lock().unwrap().take().expect("the callee was called");
    parse_grpc_timeout(metadata.get("grpc-timeout").unwrap().to_str().unwrap()).unwrap()
}

#[tokio::test]
async fn the_callers_deadline_reaches_the_callee() {
    let seen = Arc::new(Mutex::new(None));
    let back = start(Mode::Record(seen.clone()), ServiceTelemetry::global(), 0).await;
    let front = start(
        Mode::Forward(Box::new(traced_client(back.addr, Duration::from_secs(30)))),
        ServiceTelemetry::global(),
        0,
    )
    .await;

    // The partner gave 1.5 s: the callee gets what is left of it, not the 30 s default.
    let mut request = Request::new(get("orders/o-1"));
    request.set_timeout(Duration::from_millis(1500));
    client(front.addr).get_order(request).await.unwrap();
    let left = timeout_seen(&seen);
    assert!(left <= Duration::from_millis(1500) && left > Duration::ZERO, "{left:?}");

    // No deadline from the partner: the method's default applies.
    client(front.addr).get_order(get("orders/o-1")).await.unwrap();
    let left = timeout_seen(&seen);
    assert!(left > Duration::from_secs(20) && left <= Duration::from_secs(30), "{left:?}");

    // Both hops were measured, by method and code.
    let text = metrics().render();
    for line in [
        r#"rpc_server_duration_seconds_count{code="OK",method="caravan.orders.v1.OrdersService/GetOrder",service="orders"}"#,
        r#"rpc_client_duration_seconds_count{code="OK",method="caravan.orders.v1.OrdersService/GetOrder",service="scheduling"}"#,
    ] {
        assert!(text.contains(line), "{line} missing from\n{text}");
    }
}

fn collecting(service: ServiceKind) -> (ServiceTelemetry, SpanCollector) {
    let log = LogConfig { format: LogFormat::Pretty, filter: "off".into() };
    ServiceTelemetry::collecting(service, &log).unwrap()
}

fn only(spans: &[OtlpSpan], kind: OtlpKind) -> OtlpSpan {
    let matching: Vec<_> = spans.iter().filter(|s| s.kind == kind as i32).cloned().collect();
    assert_eq!(matching.len(), 1, "{kind:?} spans: {matching:#?}");
    matching.into_iter().next().unwrap()
}

#[tokio::test]
async fn trace_context_crosses_every_hop() {
    let seen = Arc::new(Mutex::new(None));
    let (back_telemetry, back_spans) = collecting(ServiceKind::Inventory);
    let (front_telemetry, front_spans) = collecting(ServiceKind::Scheduling);
    let back = start(Mode::Record(seen.clone()), back_telemetry, 0).await;
    let front =
        start(Mode::Forward(Box::new(traced_client(back.addr, Duration::from_secs(5)))), front_telemetry, 0).await;

    // A partner call that is part of its own trace.
    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let parent_id = "00f067aa0ba902b7";
    let mut request = Request::new(get("orders/o-1"));
    request.metadata_mut().insert("traceparent", format!("00-{trace_id}-{parent_id}-01").parse().unwrap());
    client(front.addr).get_order(request).await.unwrap();
    // Health checks are not traced.
    health_status(front.addr, "").await.unwrap();

    let front_spans = front_spans.spans();
    let back_spans = back_spans.spans();
    let front_server = only(&front_spans, OtlpKind::Server);
    let front_client = only(&front_spans, OtlpKind::Client);
    let back_server = only(&back_spans, OtlpKind::Server);

    let trace = TraceId::from_hex(trace_id).unwrap().to_bytes();
    assert_eq!(front_server.trace_id, trace);
    assert_eq!(front_server.parent_span_id, SpanId::from_hex(parent_id).unwrap().to_bytes());
    assert_eq!(front_client.trace_id, trace);
    assert_eq!(front_client.parent_span_id, front_server.span_id);
    assert_eq!(back_server.trace_id, trace);
    assert_eq!(back_server.parent_span_id, front_client.span_id);

    assert_eq!(front_server.name, "caravan.orders.v1.OrdersService/GetOrder");
    let attribute = |span: &OtlpSpan, key: &str| {
        span.attributes.iter().find(|kv| kv.key == key).and_then(|kv| kv.value.clone()?.value)
    };
    let text = |s: &str| Some(AnyValue::StringValue(s.to_owned()));
    assert_eq!(attribute(&back_server, "rpc.system"), text("grpc"));
    assert_eq!(attribute(&back_server, "rpc.service"), text("caravan.orders.v1.OrdersService"));
    assert_eq!(attribute(&back_server, "rpc.method"), text("GetOrder"));
    assert_eq!(attribute(&back_server, "rpc.grpc.status_code"), Some(AnyValue::IntValue(0)));
    assert_eq!(attribute(&front_client, "server.port"), Some(AnyValue::IntValue(i64::from(back.addr.port()))));

    let metadata = seen.lock().unwrap().take().unwrap();
    let traceparent = metadata.get("traceparent").unwrap().to_str().unwrap().to_owned();
    assert!(traceparent.contains(trace_id), "{traceparent}");
}

#[tokio::test]
async fn a_drilled_call_says_on_its_span_which_fault_it_met() {
    let dir = tempfile::tempdir().unwrap();
    let drill = dir.path().join("drill.json");
    let until = chrono::Utc::now() + chrono::Duration::minutes(5);
    let faults = r#"[{"service": "scheduling", "calls_to": "inventory", "error_rate": 1}]"#;
    std::fs::write(&drill, format!(r#"{{"until": "{}", "faults": {faults}}}"#, until.to_rfc3339())).unwrap();
    let token = CancellationToken::new();
    let chaos = Chaos::watch(ServiceKind::Scheduling, drill, Duration::from_secs(60), token.clone());
    let (back_telemetry, back_spans) = collecting(ServiceKind::Inventory);
    let (front_telemetry, front_spans) = collecting(ServiceKind::Scheduling);
    let back = start(Mode::Record(Arc::default()), back_telemetry, 0).await;
    let forward = drilled_client(back.addr, ServiceKind::Inventory, chaos);
    let front = start(Mode::Forward(Box::new(forward)), front_telemetry, 0).await;

    let status = client(front.addr).get_order(get("orders/o-1")).await.unwrap_err();
    assert_eq!(status.code(), Code::Unavailable, "the drill failed the forwarded call: {status:?}");
    let front_spans = front_spans.spans();
    let drilled = only(&front_spans, OtlpKind::Client);
    let fault = drilled.attributes.iter().find(|kv| kv.key == "chaos.fault").and_then(|kv| kv.value.clone()?.value);
    assert_eq!(fault, Some(AnyValue::StringValue("error".into())), "{drilled:#?}");
    assert!(back_spans.spans().is_empty(), "an injected error is never sent");
    token.cancel();
}
