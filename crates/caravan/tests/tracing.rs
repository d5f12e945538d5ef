//! Distributed tracing end to end: the four services as separate `caravan
//! serve` processes (and, in a second test, all four inside one `caravan
//! up`) export their spans over OTLP/gRPC to a real OTLP receiver in this
//! test. One order's trace holds every hop it made, with the RPC semantic
//! conventions, parent/child links across processes, database spans, a
//! rejected order's error, and the background run linked to the order.

#![allow(clippy::unwrap_used)] // Test helpers fail loudly; that is their job.

mod common;

use std::{
    collections::HashMap,
    net::SocketAddr,
    process::{Command, Stdio},
    time::Duration,
};

use caravan::channel::Authed;
use caravan_platform::config::ServiceKind;
use caravan_testkit::{Caller, OtlpReceiver, TestDatabase, write_test_keys};
use common::{Services, Spawned, free_addr, live_show, place, serving, stop};
use opentelemetry_proto::tonic::{
    common::v1::{KeyValue, any_value::Value},
    trace::v1::{Span, span::SpanKind, status::StatusCode},
};

fn value<'a>(attributes: &'a [KeyValue], key: &str) -> Option<&'a Value> {
    attributes.iter().find(|kv| kv.key == key).and_then(|kv| kv.value.as_ref()).and_then(|v| v.value.as_ref())
}

fn text(attributes: &[KeyValue], key: &str) -> Option<String> {
    match value(attributes, key) {
        Some(Value::StringValue(s)) => Some(s.clone()),
        _ => None,
    }
}

fn int(attributes: &[KeyValue], key: &str) -> Option<i64> {
    match value(attributes, key) {
        Some(Value::IntValue(i)) => Some(*i),
        _ => None,
    }
}

/// A partner's W3C trace of its own: the trace every span of its call must join.
fn trace_of(n: u8) -> (String, String) {
    let trace_id = format!("{n:02x}{}", "4bf92f3577b34da6a3ce929d0e0e47");
    let traceparent = format!("00-{trace_id}-00f067aa0ba902b7-01");
    (trace_id, traceparent)
}

/// One trace's spans, with questions about them.
struct Trace<'a> {
    spans: Vec<&'a (String, Span)>,
    all: &'a [(String, Span)],
}

impl<'a> Trace<'a> {
    fn of(all: &'a [(String, Span)], trace_id: &str) -> Trace<'a> {
        let id = hex(trace_id);
        Trace { spans: all.iter().filter(|(_, s)| s.trace_id == id).collect(), all }
    }

    fn find(&self, service: &str, kind: SpanKind, name: &str) -> &'a Span {
        self.spans
            .iter()
            .find(|(s, span)| s == service && span.kind == kind as i32 && span.name == name)
            .map(|(_, span)| span)
            .unwrap_or_else(|| panic!("no {kind:?} span {name} from {service} in the trace; it has {:?}", self.names()))
    }

    fn names(&self) -> Vec<(String, i32, String)> {
        self.spans.iter().map(|(s, span)| (s.clone(), span.kind, span.name.clone())).collect()
    }

    /// The trace as an indented tree, `service  kind  name` per span, for a
    /// reader following one order (printed by the end-to-end test).
    fn tree(&self) -> String {
        fn walk(trace: &Trace<'_>, parent: &[u8], depth: usize, out: &mut String) {
            let mut children: Vec<_> = trace.spans.iter().filter(|(_, s)| s.parent_span_id == parent).collect();
            children.sort_by_key(|(_, s)| s.start_time_unix_nano);
            for (service, span) in children {
                let kind = SpanKind::try_from(span.kind).map_or("?", |k| k.as_str_name());
                let kind = kind.trim_start_matches("SPAN_KIND_").to_lowercase();
                out.push_str(&format!("{:indent$}{service:<10} {kind:<8} {}\n", "", span.name, indent = depth * 2));
                walk(trace, &span.span_id, depth + 1, out);
            }
        }
        // Roots: spans whose parent is not in this trace (the partner's, here).
        let ids: Vec<&[u8]> = self.spans.iter().map(|(_, s)| s.span_id.as_slice()).collect();
        let mut out = String::new();
        let mut roots: Vec<Vec<u8>> =
            self.spans.iter().map(|(_, s)| s.parent_span_id.clone()).filter(|p| !ids.contains(&p.as_slice())).collect();
        roots.sort();
        roots.dedup();
        for root in roots {
            walk(self, &root, 0, &mut out);
        }
        out
    }

    fn services(&self) -> Vec<String> {
        let mut services: Vec<String> = self.spans.iter().map(|(s, _)| s.clone()).collect();
        services.sort();
        services.dedup();
        services
    }

    /// Whether `span` descends from `ancestor` (through any spans received).
    fn descends(&self, span: &Span, ancestor: &Span) -> bool {
        let mut parent = span.parent_span_id.clone();
        while !parent.is_empty() {
            if parent == ancestor.span_id {
                return true;
            }
            parent = self
                .all
                .iter()
                .find(|(_, s)| s.span_id == parent)
                .map(|(_, s)| s.parent_span_id.clone())
                .unwrap_or_default();
        }
        false
    }

    /// The database spans of `service` that descend from `ancestor`.
    fn statements(&self, service: &str, ancestor: &Span) -> usize {
        self.spans
            .iter()
            .filter(|(s, span)| {
                s == service && text(&span.attributes, "db.system").is_some() && self.descends(span, ancestor)
            })
            .count()
    }
}

fn hex(id: &str) -> Vec<u8> {
    (0..id.len()).step_by(2).map(|i| u8::from_str_radix(&id[i..i + 2], 16).unwrap()).collect()
}

/// What every test checks of a placed and a refused order's traces.
/// The traces of three calls: `refused` (first, more than the show holds:
/// inventory refuses), `placed` (then, the whole allocation) and `storm` (a
/// second later, the offer gone: refused from orders' memory).
fn check_traces(all: &[(String, Span)], [refused, placed, storm]: [&str; 3], orders_port: u16, partner: &str) {
    let trace = Trace::of(all, placed);
    println!("the placed order's trace:\n{}", trace.tree());
    assert_eq!(trace.services(), ["catalog", "inventory", "orders", "scheduling"], "{:?}", trace.names());
    for (_, span) in &trace.spans {
        // The resource names the service; the stamp that routed it is not sent.
        assert_eq!(text(&span.attributes, "caravan.service"), None, "{}", span.name);
    }
    let served = trace.find("orders", SpanKind::Server, "caravan.orders.v1.OrdersService/PlaceOrder");
    assert_eq!(served.parent_span_id, hex("00f067aa0ba902b7"), "the partner's span is the parent");
    let attributes = &served.attributes;
    assert_eq!(text(attributes, "rpc.system").as_deref(), Some("grpc"));
    assert_eq!(text(attributes, "rpc.service").as_deref(), Some("caravan.orders.v1.OrdersService"));
    assert_eq!(text(attributes, "rpc.method").as_deref(), Some("PlaceOrder"));
    assert_eq!(int(attributes, "rpc.grpc.status_code"), Some(0));
    assert_eq!(int(attributes, "server.port"), Some(i64::from(orders_port)), "{attributes:?}");
    assert!(text(attributes, "server.address").is_some());
    assert_eq!(text(attributes, "enduser.id").as_deref(), Some(partner));

    // Each hop: orders' client span is the parent of the callee's server span.
    for (callee, method) in [
        ("catalog", "caravan.catalog.v1.CatalogService/BatchGetProducts"),
        ("scheduling", "caravan.scheduling.v1.SchedulingService/GetLiveOffers"),
        ("inventory", "caravan.inventory.v1.InventoryService/ReserveStock"),
    ] {
        let call = trace.find("orders", SpanKind::Client, method);
        let hop = trace.find(callee, SpanKind::Server, method);
        assert!(trace.descends(call, served), "{method} is part of serving PlaceOrder");
        assert_eq!(hop.parent_span_id, call.span_id, "{method}: the client span is the server span's parent");
        assert_eq!(text(&call.attributes, "peer.service").as_deref(), Some(callee));
        assert_eq!(int(&call.attributes, "rpc.grpc.status_code"), Some(0));
        let (service, name) = method.split_once('/').unwrap();
        assert_eq!(text(&hop.attributes, "rpc.service").as_deref(), Some(service));
        assert_eq!(text(&hop.attributes, "rpc.method").as_deref(), Some(name));
        assert_eq!(
            text(&hop.attributes, "caravan.on_behalf_of").as_deref(),
            Some(partner),
            "the partner travels along"
        );
        assert_eq!(text(&hop.attributes, "enduser.id").as_deref(), Some("svc-orders"), "orders calls with its own key");
    }
    // Its product was read from catalog's cache: no database work to trace.
    let products = trace.find("catalog", SpanKind::Server, "caravan.catalog.v1.CatalogService/BatchGetProducts");
    assert_eq!(trace.statements("catalog", products), 0, "a cached read is not traced as database work");
    // Spans last while their work does: each ends after it starts, and
    // serving PlaceOrder spans the whole of each call and statement it made.
    for (service, span) in &trace.spans {
        assert!(span.end_time_unix_nano >= span.start_time_unix_nano, "{service} {} ends before it starts", span.name);
        if service == "orders" && span.parent_span_id == served.span_id {
            assert!(
                served.start_time_unix_nano <= span.start_time_unix_nano
                    && span.end_time_unix_nano <= served.end_time_unix_nano,
                "{} is not within serving PlaceOrder",
                span.name
            );
        }
    }
    // Database work appears as child spans of the calls it served.
    assert!(trace.statements("orders", served) > 0, "orders' statements in the trace");
    // Orders records accepted orders in batches shared with other calls:
    // the placed order's batch runs in its trace, its transaction within.
    let batch = trace.find("orders", SpanKind::Internal, "orders.accept_batch");
    assert!(trace.descends(batch, served), "the accept batch is part of serving PlaceOrder");
    let accept = trace.find("orders", SpanKind::Client, "orders accept");
    assert_eq!(accept.parent_span_id, batch.span_id, "the batch's transaction");
    let reserve = trace.find("inventory", SpanKind::Server, "caravan.inventory.v1.InventoryService/ReserveStock");
    assert!(trace.statements("inventory", reserve) > 0, "inventory's statements in the trace");

    // A refused order: the client span of the refusing call is an error; the
    // server spans are not (a refusal is not the server failing), and carry the code.
    let trace = Trace::of(all, refused);
    let call = trace.find("orders", SpanKind::Client, "caravan.inventory.v1.InventoryService/ReserveStock");
    assert_eq!(call.status.as_ref().map(|s| s.code), Some(StatusCode::Error as i32), "{call:?}");
    assert_eq!(int(&call.attributes, "rpc.grpc.status_code"), Some(9));
    let served = trace.find("orders", SpanKind::Server, "caravan.orders.v1.OrdersService/PlaceOrder");
    assert_eq!(int(&served.attributes, "rpc.grpc.status_code"), Some(9));
    // A product catalog had not cached is read from its database, within
    // the call that asked for it.
    let products = trace.find("catalog", SpanKind::Server, "caravan.catalog.v1.CatalogService/BatchGetProducts");
    assert!(trace.statements("catalog", products) > 0, "catalog's read of an uncached product in the trace");
    assert_ne!(served.status.as_ref().map(|s| s.code), Some(StatusCode::Error as i32));

    // Once orders knows the offer is gone, a buyer pressing buy is answered
    // from its memory: no call to another service, and no database work but,
    // until the show's request keys are in memory, the request id's shared
    // read (a retry of an order placed before the sell-out gets its order).
    let trace = Trace::of(all, storm);
    let served = trace.find("orders", SpanKind::Server, "caravan.orders.v1.OrdersService/PlaceOrder");
    assert_eq!(int(&served.attributes, "rpc.grpc.status_code"), Some(9));
    let besides: Vec<_> = trace
        .names()
        .into_iter()
        .filter(|(_, _, name)| {
            name != "caravan.orders.v1.OrdersService/PlaceOrder"
                && name != "idempotency.lookup_batch"
                && name != "idempotency lookup"
        })
        .collect();
    assert_eq!(besides, [], "refused from memory, nothing else: {:?}", trace.names());

    // Health checks are not traced, and exporting traces makes no traces.
    assert!(!all.iter().any(|(_, span)| span.name.contains("grpc.health")), "health checks traced");
    assert!(!all.iter().any(|(_, span)| span.name.contains("TraceService")), "the exporter traced itself");
}

/// How soon every orders replica knows an offer sold out (inventory's
/// stream, a poll every 100 ms): what the README promises partners.
const SOLD_OUT_KNOWN: Duration = Duration::from_secs(1);

/// Waits until catalog's cache of the show's product (filled while the show
/// was set up) has expired: the refused order's read of it misses and goes
/// to the database; the placed order's, right after, is served from memory.
async fn let_catalogs_cache_expire() {
    tokio::time::sleep(caravan_catalog::store::PRODUCT_CACHE_TTL + Duration::from_millis(200)).await;
}

/// The order driver's run on the placed order: its own trace, linked to the order's.
fn check_driver_link(all: &[(String, Span)], placed: &str) {
    let link = hex(placed);
    let run = all.iter().find(|(service, span)| {
        service == "orders" && span.name == "order-driver" && span.links.iter().any(|l| l.trace_id == link)
    });
    let (_, run) = run.unwrap_or_else(|| {
        let runs: Vec<_> =
            all.iter().filter(|(_, s)| s.name == "order-driver").map(|(svc, s)| (svc, &s.links)).collect();
        panic!("no order-driver run linked to the order's trace; runs: {runs:?}")
    });
    assert_ne!(run.trace_id, link, "a run starts a trace of its own");
    assert!(run.parent_span_id.is_empty());
}

#[tokio::test]
async fn one_orders_trace_crosses_all_four_services_in_separate_processes() {
    let (receiver, otlp) = OtlpReceiver::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let env = [
        ("OTEL_EXPORTER_OTLP_ENDPOINT", format!("http://{otlp}")),
        ("OTEL_TRACES_SAMPLER", "always_on".to_owned()),
        // The unpaid order expires after a second: a background run on it.
        ("CARAVAN_PAYMENT_WINDOW", "1s".to_owned()),
        ("CARAVAN_RESERVATION_TTL", "30s".to_owned()),
    ];
    let services = Services::start(dir.path(), &env).await;
    let orders = services.addrs[&ServiceKind::Orders];
    let sale = live_show(&services.addrs, Caller::Operator.key(), 2).await;
    let_catalogs_cache_expire().await;
    let (refused, traceparent) = trace_of(2);
    let status = place(orders, Caller::Hema.key(), &sale, "buyer-2", 3, Some(&traceparent)).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::FailedPrecondition, "more than the show holds");
    let (placed, traceparent) = trace_of(1);
    place(orders, Caller::Hema.key(), &sale, "buyer-1", 2, Some(&traceparent)).await.unwrap();
    tokio::time::sleep(SOLD_OUT_KNOWN).await;
    let (storm, traceparent) = trace_of(7);
    let status = place(orders, Caller::Hema.key(), &sale, "buyer-3", 1, Some(&traceparent)).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::FailedPrecondition, "sold out");
    // The unpaid order expires after its second; wait for the driver's run
    // on it to be exported.
    let driver_ran = caravan_testkit::eventually(Duration::from_secs(15), || async {
        let link = hex(&placed);
        receiver.spans().iter().any(|(service, span)| {
            service == "orders" && span.name == "order-driver" && span.links.iter().any(|l| l.trace_id == link)
        })
    })
    .await;
    assert!(driver_ran, "the order driver's run on the unpaid order was exported");
    services.stop().await;

    let spans = receiver.spans();
    check_traces(&spans, [&refused, &placed, &storm], orders.port(), "hema-shop");
    check_driver_link(&spans, &placed);
}

#[tokio::test]
async fn under_caravan_up_each_service_still_reports_its_own_name() {
    let (receiver, otlp) = OtlpReceiver::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let addrs: HashMap<ServiceKind, SocketAddr> = ServiceKind::ALL.into_iter().map(|k| (k, free_addr())).collect();
    let port = |kind: ServiceKind| addrs[&kind].port().to_string();
    let up = Spawned(
        Command::new(env!("CARGO_BIN_EXE_caravan"))
            .args(["up", "--no-metrics", "--data-dir"])
            .arg(dir.path())
            .args(["--catalog-port", &port(ServiceKind::Catalog), "--scheduling-port", &port(ServiceKind::Scheduling)])
            .args(["--inventory-port", &port(ServiceKind::Inventory), "--orders-port", &port(ServiceKind::Orders)])
            .env_clear()
            .env("CARAVAN_LOG", "warn")
            .env("OTEL_EXPORTER_OTLP_ENDPOINT", format!("http://{otlp}"))
            .env("OTEL_TRACES_SAMPLER", "always_on")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );
    for kind in ServiceKind::ALL {
        serving(addrs[&kind]).await;
    }
    let dev_keys = std::fs::read_to_string(dir.path().join("dev-keys.txt")).unwrap();
    let key = |who: &str| dev_keys.lines().find_map(|l| l.strip_prefix(who).map(|k| k.trim().to_owned())).unwrap();
    let sale = live_show(&addrs, &key("operator "), 2).await;
    let_catalogs_cache_expire().await;
    let orders = addrs[&ServiceKind::Orders];
    let (refused, traceparent) = trace_of(4);
    place(orders, &key("partner:hema "), &sale, "buyer-2", 3, Some(&traceparent)).await.unwrap_err();
    let (placed, traceparent) = trace_of(3);
    place(orders, &key("partner:hema "), &sale, "buyer-1", 2, Some(&traceparent)).await.unwrap();
    tokio::time::sleep(SOLD_OUT_KNOWN).await;
    let (storm, traceparent) = trace_of(8);
    place(orders, &key("partner:hema "), &sale, "buyer-3", 1, Some(&traceparent)).await.unwrap_err();
    stop(up).await;

    check_traces(&receiver.spans(), [&refused, &placed, &storm], addrs[&ServiceKind::Orders].port(), "hema-dev");
}

#[tokio::test]
async fn json_logs_carry_the_trace_and_a_level_that_follows_the_code() {
    use caravan_proto::{
        catalog::v1::{GetProductRequest, catalog_service_client::CatalogServiceClient},
        scheduling::v1::{CreateHostRequest, Host, scheduling_service_client::SchedulingServiceClient},
    };
    let (receiver, otlp) = OtlpReceiver::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let keys = write_test_keys(dir.path()).unwrap().display().to_string();
    let addr = free_addr();
    let database = TestDatabase::new::<caravan_scheduling::Migrator>(ServiceKind::Scheduling).await.unwrap();
    let catalog_db = TestDatabase::new::<caravan_catalog::Migrator>(ServiceKind::Catalog).await.unwrap();
    let catalog_addr = free_addr();
    let log = |name: &str| std::fs::File::create(dir.path().join(name)).unwrap();
    let serve = |kind: &str, addr: SocketAddr, url: &str, out: std::fs::File| {
        let child = Command::new(env!("CARGO_BIN_EXE_caravan"))
            .args(["serve", kind])
            .env_clear()
            .env("CARAVAN_LOG", "info")
            .env("CARAVAN_LOG_FORMAT", "json")
            .env("CARAVAN_METRICS_ADDR", "off")
            .env("CARAVAN_LISTEN_ADDR", addr.to_string())
            .env("CARAVAN_DATABASE_URL", url)
            .env("CARAVAN_DB_MAX_CONNECTIONS", "2")
            .env("CARAVAN_KEYS_FILE", &keys)
            .env("CARAVAN_SERVICE_KEY_FILE", dir.path().join(format!("{kind}.key")))
            // Scheduling's catalog is a closed port: its calls fail UNAVAILABLE.
            .env("CARAVAN_CATALOG_URL", "http://127.0.0.1:1")
            .env("OTEL_EXPORTER_OTLP_ENDPOINT", format!("http://{otlp}"))
            .stdin(Stdio::null())
            .stdout(out)
            .spawn()
            .unwrap();
        Spawned(child)
    };
    let catalog = serve("catalog", catalog_addr, catalog_db.config().url.expose(), log("catalog.log"));
    let scheduling = serve("scheduling", addr, database.config().url.expose(), log("scheduling.log"));
    serving(catalog_addr).await;
    serving(addr).await;

    // A partner's mistake: NOT_FOUND, logged at info.
    let (missing_trace, traceparent) = trace_of(5);
    let channel = Authed::new(&catalog_addr.to_string(), Some(Caller::Hema.key()), None).unwrap();
    let mut request = tonic::Request::new(GetProductRequest { name: "products/uz-nowhere".into() });
    request.metadata_mut().insert("traceparent", traceparent.parse().unwrap());
    let status = CatalogServiceClient::new(channel).get_product(request).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::NotFound);
    // The server failing its caller: UNAVAILABLE, logged at warn.
    let (down_trace, traceparent) = trace_of(6);
    let channel = Authed::new(&addr.to_string(), Some(Caller::Operator.key()), None).unwrap();
    let host = Host { display_name: "Nobody".into(), country: "countries/UZ".into(), ..Default::default() };
    let mut request = tonic::Request::new(CreateHostRequest { host: Some(host), ..Default::default() });
    request.metadata_mut().insert("traceparent", traceparent.parse().unwrap());
    let status = SchedulingServiceClient::new(channel.clone()).create_host(request).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::Unavailable);
    // The same, in a partner's trace it does not sample (flags 00): no span
    // is exported, yet the logs of the call, and of the call it made, name
    // the trace.
    let (quiet_trace, _) = trace_of(9);
    let traceparent = format!("00-{quiet_trace}-00f067aa0ba902b7-00");
    let host = Host { display_name: "Nobody either".into(), country: "countries/UZ".into(), ..Default::default() };
    let mut request = tonic::Request::new(CreateHostRequest { host: Some(host), ..Default::default() });
    request.metadata_mut().insert("traceparent", traceparent.parse().unwrap());
    let status = SchedulingServiceClient::new(channel).create_host(request).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::Unavailable);
    stop(scheduling).await;
    stop(catalog).await;

    let lines = |name: &str| -> Vec<serde_json::Value> {
        std::fs::read_to_string(dir.path().join(name))
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON line ({e}): {l}")))
            .collect()
    };
    let outcome = |lines: &[serde_json::Value], method: &str| {
        lines
            .iter()
            .find(|l| l["method"] == method && l["message"] == "served")
            .cloned()
            .unwrap_or_else(|| panic!("no outcome line for {method}: {lines:?}"))
    };
    let catalog_lines = lines("catalog.log");
    let line = outcome(&catalog_lines, "caravan.catalog.v1.CatalogService/GetProduct");
    assert_eq!((line["level"].as_str(), line["code"].as_str()), (Some("INFO"), Some("NOT_FOUND")), "{line}");
    assert_eq!(line["trace_id"].as_str(), Some(missing_trace.as_str()), "{line}");
    assert_eq!(line["span_id"].as_str().map(str::len), Some(16), "{line}");
    assert_eq!(line["span"], "rpc.server");
    let scheduling_lines = lines("scheduling.log");
    let line = outcome(&scheduling_lines, "caravan.scheduling.v1.SchedulingService/CreateHost");
    assert_eq!((line["level"].as_str(), line["code"].as_str()), (Some("WARN"), Some("UNAVAILABLE")), "{line}");
    assert_eq!(line["trace_id"].as_str(), Some(down_trace.as_str()), "{line}");
    let quiet: Vec<_> = scheduling_lines.iter().filter(|l| l["trace_id"].as_str() == Some(&quiet_trace)).collect();
    let said = |message: &str| quiet.iter().any(|l| l["message"] == message && l["level"] == "WARN");
    assert!(said("served") && said("called"), "the unsampled call's outcome and its catalog call: {quiet:?}");
    let exported = receiver.spans();
    let exported_in = |trace: &str| exported.iter().filter(|(_, span)| span.trace_id == hex(trace)).count();
    assert!(exported_in(&down_trace) > 0, "the sampled trace is exported: {exported:?}");
    assert_eq!(exported_in(&quiet_trace), 0, "nothing of the unsampled one");
    assert!(
        !scheduling_lines.iter().chain(&catalog_lines).any(|l| l["level"] == "ERROR"),
        "nothing here is the server's own error"
    );
}
