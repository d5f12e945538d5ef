//! OTLP trace receivers, as a collector is: over gRPC or HTTP (protobuf),
//! keeping every span with its resource, and able to refuse the first
//! exports the way a collector under pressure does (gRPC `UNAVAILABLE` with
//! `RetryInfo`; HTTP 503 with `Retry-After`).

use std::{
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use opentelemetry_proto::tonic::{
    collector::trace::v1::{
        ExportTraceServiceRequest, ExportTraceServiceResponse,
        trace_service_server::{TraceService, TraceServiceServer},
    },
    common::v1::any_value::Value,
    trace::v1::Span,
};
use prost::Message as _;

/// One export the receiver was sent.
#[derive(Debug, Clone)]
pub struct Export {
    /// When it arrived.
    pub at: Instant,
    /// Whether the receiver took it (or refused it, asking for a retry).
    pub accepted: bool,
}

/// A receiver: spans with their resource's attributes, and every export.
#[derive(Debug, Clone, Default)]
pub struct OtlpReceiver(Arc<Mutex<Received>>);

#[derive(Debug, Default)]
struct Received {
    spans: Vec<(Vec<(String, String)>, Span)>,
    exports: Vec<Export>,
    /// Exports still to refuse, and the delay each refusal asks for.
    refuse: usize,
    retry_after: Duration,
}

impl OtlpReceiver {
    /// Starts an OTLP/gRPC receiver (taking gzip) on a free loopback port.
    pub async fn start() -> std::io::Result<(OtlpReceiver, SocketAddr)> {
        Self::start_refusing(0, Duration::ZERO).await
    }

    /// An OTLP/gRPC receiver that answers its first `refuse` exports
    /// `UNAVAILABLE`, with a `RetryInfo` asking for `retry_after`.
    pub async fn start_refusing(refuse: usize, retry_after: Duration) -> std::io::Result<(OtlpReceiver, SocketAddr)> {
        let receiver = OtlpReceiver::refusing(refuse, retry_after);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(
                    TraceServiceServer::new(receiver.clone())
                        .accept_compressed(tonic::codec::CompressionEncoding::Gzip),
                )
                .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener)),
        );
        Ok((receiver, addr))
    }

    /// An OTLP/HTTP receiver (`POST /v1/traces`, protobuf) that answers its
    /// first `refuse` exports 503 with `Retry-After` (whole seconds).
    pub async fn start_http(refuse: usize, retry_after: Duration) -> std::io::Result<(OtlpReceiver, SocketAddr)> {
        let receiver = OtlpReceiver::refusing(refuse, retry_after);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let state = receiver.clone();
        let app = axum::Router::new().route(
            "/v1/traces",
            axum::routing::post(move |body: bytes::Bytes| {
                let state = state.clone();
                async move { state.http_export(&body) }
            }),
        );
        tokio::spawn(async move { axum::serve(listener, app).await });
        Ok((receiver, addr))
    }

    fn refusing(refuse: usize, retry_after: Duration) -> Self {
        OtlpReceiver(Arc::new(Mutex::new(Received { refuse, retry_after, ..Received::default() })))
    }

    /// Every span received so far, with the `service.name` of its resource.
    pub fn spans(&self) -> Vec<(String, Span)> {
        self.received()
            .spans
            .iter()
            .map(|(resource, span)| {
                let service = resource.iter().find(|(k, _)| k == "service.name").map(|(_, v)| v.clone());
                (service.unwrap_or_default(), span.clone())
            })
            .collect()
    }

    /// Every span received so far, with all its resource's attributes.
    pub fn spans_with_resource(&self) -> Vec<(Vec<(String, String)>, Span)> {
        self.received().spans.clone()
    }

    /// Every export so far, refused or taken, in order.
    pub fn exports(&self) -> Vec<Export> {
        self.received().exports.clone()
    }

    fn received(&self) -> std::sync::MutexGuard<'_, Received> {
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Takes `request`, or refuses it (answering the delay to ask for).
    fn take(&self, request: ExportTraceServiceRequest) -> Result<(), Duration> {
        let mut received = self.received();
        let accepted = received.refuse == 0;
        received.exports.push(Export { at: Instant::now(), accepted });
        if !accepted {
            received.refuse -= 1;
            return Err(received.retry_after);
        }
        for resource_spans in request.resource_spans {
            let resource: Vec<(String, String)> = resource_spans
                .resource
                .into_iter()
                .flat_map(|r| r.attributes)
                .map(|kv| {
                    let value = match kv.value.and_then(|v| v.value) {
                        Some(Value::StringValue(s)) => s,
                        Some(other) => format!("{other:?}"),
                        None => String::new(),
                    };
                    (kv.key, value)
                })
                .collect();
            for scope_spans in resource_spans.scope_spans {
                received.spans.extend(scope_spans.spans.into_iter().map(|span| (resource.clone(), span)));
            }
        }
        Ok(())
    }

    fn http_export(&self, body: &[u8]) -> axum::response::Response {
        use axum::response::IntoResponse as _;
        let request = match ExportTraceServiceRequest::decode(body) {
            Ok(request) => request,
            Err(e) => return (http::StatusCode::BAD_REQUEST, e.to_string()).into_response(),
        };
        match self.take(request) {
            Ok(()) => {
                let body = ExportTraceServiceResponse::default().encode_to_vec();
                ([(http::header::CONTENT_TYPE, "application/x-protobuf")], body).into_response()
            }
            Err(delay) => (
                http::StatusCode::SERVICE_UNAVAILABLE,
                [(http::header::RETRY_AFTER, delay.as_secs().to_string())],
                "busy",
            )
                .into_response(),
        }
    }
}

#[tonic::async_trait]
impl TraceService for OtlpReceiver {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        match self.take(request.into_inner()) {
            Ok(()) => Ok(tonic::Response::new(ExportTraceServiceResponse::default())),
            Err(delay) => {
                use tonic_types::{ErrorDetails, StatusExt as _};
                Err(tonic::Status::with_error_details(
                    tonic::Code::Unavailable,
                    "the collector is busy",
                    ErrorDetails::with_retry_info(Some(delay)),
                ))
            }
        }
    }
}
