//! What the load generator adds to the suites it spawns
//! ([`crate::spawned`]): where a scenario goes in one, and the OTLP/gRPC
//! receiver a traced one exports to, inside the generator (so its CPU is
//! not the server's).

use std::{
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
};

use caravan_platform::config::ServiceKind;
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
    trace_service_server::{TraceService, TraceServiceServer},
};

use super::{ServerCpu, Target};
use crate::spawned::ReadySuite;

/// Where scenario `scenario` goes, with the key it needs (a partner's for
/// orders and reads, orders' own for reservations) and the operator's.
pub fn target(suite: &ReadySuite, scenario: &str) -> Target {
    let addr = |kind: ServiceKind| suite.addr(kind).to_string();
    let who = if scenario == "reserve" { "service:orders" } else { "partner:hema" };
    Target {
        catalog: addr(ServiceKind::Catalog),
        scheduling: addr(ServiceKind::Scheduling),
        inventory: addr(ServiceKind::Inventory),
        orders: addr(ServiceKind::Orders),
        key: suite.key(who).map(str::to_owned),
        operator_key: suite.key("operator").map(str::to_owned),
        ca: None,
        server: ServerCpu::Pids(vec![suite.pid()]),
    }
}

/// An OTLP/gRPC trace receiver that counts the spans it is sent.
#[derive(Debug, Clone)]
pub struct SpanSink {
    addr: SocketAddr,
    spans: Arc<AtomicU64>,
}

#[derive(Debug, Clone)]
struct Counting(Arc<AtomicU64>);

#[tonic::async_trait]
impl TraceService for Counting {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let spans: usize =
            request.into_inner().resource_spans.iter().flat_map(|r| &r.scope_spans).map(|s| s.spans.len()).sum();
        self.0.fetch_add(spans as u64, Ordering::Relaxed);
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

impl SpanSink {
    /// Starts the receiver on a free loopback port.
    pub async fn start() -> anyhow::Result<SpanSink> {
        Self::start_on(SocketAddr::from(([127, 0, 0, 1], 0))).await
    }

    /// Starts the receiver on `addr`.
    pub async fn start_on(addr: SocketAddr) -> anyhow::Result<SpanSink> {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let spans = Arc::new(AtomicU64::new(0));
        let service = TraceServiceServer::new(Counting(spans.clone()));
        tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(service)
                .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener)),
        );
        Ok(SpanSink { addr, spans })
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Spans received so far.
    pub fn spans(&self) -> u64 {
        self.spans.load(Ordering::Relaxed)
    }
}
