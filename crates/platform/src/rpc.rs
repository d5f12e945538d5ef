//! The tower layers every gRPC call passes through, once, for every service:
//! on the server [`ServerLayer`] (load shedding, the service's telemetry
//! dispatch, W3C trace context extraction, a span per call following the
//! OpenTelemetry RPC conventions, the caller's deadline, duration metrics and
//! an outcome log line whose level follows the code); on client channels
//! [`TracedChannel`](crate::client::TracedChannel) does the mirror image.

use std::{
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
    time::{Duration, Instant},
};

use bytes::Bytes;
use http_body::{Body as HttpBody, Frame, SizeHint};
use tokio::sync::Semaphore;
use tonic::{Code, Status, body::Body};
use tonic_types::StatusExt as _;
use tower::{Layer, Service};
use tracing::{Dispatch, Span, field::Empty};

use crate::{
    auth::ServerAuth,
    config::ServiceKind,
    deadline,
    metrics::{code_name, metrics, observe},
    telemetry::Work,
};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Paths that are never traced, measured or shed: probes and tooling.
pub fn is_infrastructure(path: &str) -> bool {
    path.starts_with("/grpc.health.v1.Health/") || path.starts_with("/grpc.reflection.")
}

/// `/pkg.Service/Method` → (`pkg.Service`, `Method`).
pub fn split_path(path: &str) -> (&str, &str) {
    let trimmed = path.trim_start_matches('/');
    trimmed.split_once('/').unwrap_or((trimmed, ""))
}

/// Server-side settings of the layer.
#[derive(Debug, Clone)]
pub struct ServerLayer {
    shared: Arc<ServerShared>,
}

#[derive(Debug)]
pub(crate) struct ServerShared {
    service: ServiceKind,
    dispatch: Dispatch,
    auth: ServerAuth,
    limit: Option<Arc<Semaphore>>,
    max_concurrency: usize,
    port: u16,
    circuit: DatabaseCircuit,
}

/// Whether the service's database is known to be unreachable: opened by a
/// failed health check, closed by the next one that reaches it. While open,
/// calls are answered `UNAVAILABLE` at once instead of each waiting out the
/// pool's acquire timeout.
#[derive(Debug, Clone, Default)]
pub struct DatabaseCircuit(Arc<std::sync::atomic::AtomicBool>);

impl DatabaseCircuit {
    /// Opens (`true`: the database is down) or closes it.
    pub fn set_open(&self, open: bool) {
        let was = self.0.swap(open, std::sync::atomic::Ordering::Relaxed);
        if was != open {
            tracing::info!(
                open,
                "database circuit {}",
                if open { "opened: calls answer UNAVAILABLE" } else { "closed" }
            );
        }
    }

    /// Whether it is open.
    pub fn is_open(&self) -> bool {
        self.0.load(std::sync::atomic::Ordering::Relaxed)
    }
}

impl ServerLayer {
    /// A layer for `service` listening on `port`, running requests under
    /// `dispatch`, refusing calls beyond `max_concurrency` in flight across all
    /// connections (0 means no limit).
    pub fn new(service: ServiceKind, dispatch: Dispatch, auth: ServerAuth, max_concurrency: usize, port: u16) -> Self {
        let limit = (max_concurrency > 0).then(|| Arc::new(Semaphore::new(max_concurrency)));
        let circuit = DatabaseCircuit::default();
        ServerLayer {
            shared: Arc::new(ServerShared { service, dispatch, auth, limit, max_concurrency, port, circuit }),
        }
    }

    /// The layer, answering `UNAVAILABLE` at once while `circuit` is open.
    pub fn with_circuit(self, circuit: DatabaseCircuit) -> Self {
        let s = &self.shared;
        let shared = ServerShared {
            service: s.service,
            dispatch: s.dispatch.clone(),
            auth: s.auth.clone(),
            limit: s.limit.clone(),
            max_concurrency: s.max_concurrency,
            port: s.port,
            circuit,
        };
        ServerLayer { shared: Arc::new(shared) }
    }
}

impl<S> Layer<S> for ServerLayer {
    type Service = ServerService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        ServerService { inner, shared: self.shared.clone() }
    }
}

/// See [`ServerLayer`].
#[derive(Debug, Clone)]
pub struct ServerService<S> {
    inner: S,
    shared: Arc<ServerShared>,
}

impl ServerShared {
    /// Load shedding: a permit for the call, or `RESOURCE_EXHAUSTED` at once
    /// beyond the limit (never queued into timeouts).
    fn shed(&self) -> Result<Option<tokio::sync::OwnedSemaphorePermit>, Status> {
        let Some(limit) = &self.limit else { return Ok(None) };
        limit.clone().try_acquire_owned().map(Some).map_err(|_| {
            metrics().shed.with_label_values(&[self.service.as_str()]).inc();
            crate::error::resource_exhausted_overload(self.max_concurrency)
        })
    }

    /// Who is calling and whether they may call `method`, before any handler
    /// runs: the principal, and on whose behalf (a service says so; that is
    /// recorded, never trusted).
    fn admit(&self, method: &str, headers: &http::HeaderMap) -> Result<(crate::auth::Principal, String), Status> {
        self.auth.admit(method, headers).map(|principal| {
            let caller = match principal.kind {
                crate::auth::Kind::Service => headers
                    .get(crate::auth::ON_BEHALF_OF)
                    .and_then(|v| v.to_str().ok())
                    .map_or_else(|| principal.id.clone(), str::to_owned),
                _ => principal.id.clone(),
            };
            (principal, caller)
        })
    }

    /// `UNAVAILABLE` with a retry delay: the database is known unreachable.
    fn database_down(&self) -> Status {
        Status::with_error_details(
            Code::Unavailable,
            format!("{}'s database is unreachable; retry with the same request_id", self.service),
            tonic_types::ErrorDetails::with_retry_info(Some(Duration::from_secs(1))),
        )
    }

    /// The call's `rpc.server` span, in the caller's trace (whose sampling it
    /// follows), carrying who called from the start (fields recorded later
    /// each cost a lookup of the span); and the work the call runs as, which
    /// holds that trace when it is not sampled (and the span is not opened).
    fn server_span<B>(
        &self,
        request: &http::Request<B>,
        path: &str,
        admitted: &Result<(crate::auth::Principal, String), Status>,
    ) -> (Span, Work) {
        let method = path.trim_start_matches('/');
        let (rpc_service, rpc_method) = split_path(path);
        // The name the client addressed this server by (HTTP/2 `:authority`).
        let authority = request.uri().authority().map_or("", |a| a.host());
        let (id, kind, on_behalf_of) = match admitted {
            Ok((principal, caller)) => {
                (Some(principal.id.as_str()), Some(principal.kind.as_str()), Some(caller.as_str()))
            }
            Err(_) => (None, None, None),
        };
        let parent = crate::telemetry::extract_trace_context(request.headers());
        // String fields as `&str`, not `%`: the OpenTelemetry layer copies a
        // string as it is, but formats a `Display` value first.
        tracing::dispatcher::with_default(&self.dispatch, || {
            crate::telemetry::span_in_trace(parent.as_ref(), self.service, || {
                tracing::info_span!(
                    "rpc.server",
                    otel.name = method,
                    otel.kind = "server",
                    otel.status_code = Empty,
                    rpc.system = "grpc",
                    rpc.service = rpc_service,
                    rpc.method = rpc_method,
                    rpc.grpc.status_code = Empty,
                    server.address = authority,
                    server.port = i64::from(self.port),
                    enduser.id = id,
                    caravan.principal.kind = kind,
                    caravan.on_behalf_of = on_behalf_of,
                )
            })
        })
    }
}

impl<S, ReqBody, ResBody> Service<http::Request<ReqBody>> for ServerService<S>
where
    S: Service<http::Request<ReqBody>, Response = http::Response<ResBody>> + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    ResBody: HttpBody<Data = Bytes> + Send + 'static,
    ResBody::Error: Into<BoxError>,
{
    type Response = http::Response<Body>;
    type Error = S::Error;
    type Future = Pin<Box<dyn std::future::Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<ReqBody>) -> Self::Future {
        let shared = self.shared.clone();
        let path = request.uri().path().to_owned();
        if is_infrastructure(&path) {
            let fut = self.inner.call(request);
            return Box::pin(async move { fut.await.map(|r| r.map(Body::new)) });
        }

        let permit = match shared.shed() {
            Ok(permit) => permit,
            Err(status) => return Box::pin(async move { Ok(status.into_http()) }),
        };
        let method = path.trim_start_matches('/');
        let admitted = shared.admit(method, request.headers());
        let (span, work) = shared.server_span(&request, &path, &admitted);
        let method = method.to_owned();
        let start = Instant::now();

        // Refused before any handler runs: not admitted, or the database is
        // known down (another replica, or this one once a health check
        // reaches the database again, serves the retry).
        let admitted = match admitted {
            Ok(_) if shared.circuit.is_open() => Err(shared.database_down()),
            admitted => admitted,
        };
        let (principal, caller) = match admitted {
            Ok(admitted) => admitted,
            Err(status) => {
                let outcome = Outcome { span, work: Some(work), method, start, kind: Kind::Server(shared) };
                return Box::pin(async move { Ok(observe_response(status.into_http::<Body>(), outcome)) });
            }
        };
        request.extensions_mut().insert(principal);
        // A stream outlives its admission: it ends when its key is revoked.
        let revoked = if caravan_proto::codec::is_server_streaming(&path) {
            shared.auth.revoked(request.headers()).map(|revoked| Box::pin(revoked) as Revocation)
        } else {
            None
        };

        let deadline = request
            .headers()
            .get("grpc-timeout")
            .and_then(|v| v.to_str().ok())
            .and_then(deadline::parse_grpc_timeout)
            .map(|timeout| tokio::time::Instant::now() + timeout);

        let fut = work.clone().run_sync(|| {
            let _dispatch = tracing::dispatcher::set_default(&shared.dispatch);
            let _entered = span.enter();
            self.inner.call(request)
        });
        let fut = tracing::instrument::WithSubscriber::with_subscriber(
            work.clone().run(tracing::Instrument::instrument(
                crate::auth::scope_caller(caller, deadline::scope(deadline, fut)),
                span.clone(),
            )),
            shared.dispatch.clone(),
        );
        Box::pin(async move {
            let mut response = too_large_is_exhausted(fut.await?);
            drop(permit);
            if let Some(revoked) = revoked {
                response = response.map(|inner| Body::new(Revocable { inner, revoked: Some(revoked) }));
            }
            let outcome = Outcome { span, work: Some(work), method, start, kind: Kind::Server(shared) };
            Ok(observe_response(response, outcome))
        })
    }
}

/// tonic answers a request over the receive limit `OUT_OF_RANGE`; gRPC's
/// own servers (and its spec of status codes) say `RESOURCE_EXHAUSTED`,
/// which is what clients expect for "too big". Rewritten here, with an
/// `ErrorInfo{reason: REQUEST_TOO_LARGE, metadata: {limit}}`.
fn too_large_is_exhausted<B>(response: http::Response<B>) -> http::Response<Body>
where
    B: HttpBody<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    const TONIC_TOO_LARGE: &str = "Error, decoded message length too large";
    if status_in(response.headers()) != Some(Code::OutOfRange) {
        return response.map(Body::new);
    }
    let message = grpc_message(response.headers());
    if !message.starts_with(TONIC_TOO_LARGE) {
        return response.map(Body::new);
    }
    // "…: found {len} bytes, the limit is: {limit} bytes"
    let number_after = |marker: &str| {
        message.split(marker).nth(1).and_then(|rest| rest.split_whitespace().next()).unwrap_or("").to_owned()
    };
    let (found, limit) = (number_after("found "), number_after("the limit is: "));
    let status = crate::error::refusal(
        Code::ResourceExhausted,
        crate::error::Reason::RequestTooLarge,
        format!("the request is {found} bytes; this server accepts at most {limit} bytes per message"),
        std::collections::HashMap::from([("limit".to_owned(), limit)]),
    );
    status.into_http()
}

/// Resolves when the key that opened a stream is revoked.
type Revocation = Pin<Box<dyn Future<Output = ()> + Send>>;

/// A streaming response that ends with `UNAUTHENTICATED` once its key is
/// revoked, at the next reload of the keys rather than when the stream would
/// have ended by itself.
struct Revocable {
    inner: Body,
    revoked: Option<Revocation>,
}

impl HttpBody for Revocable {
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let Some(revoked) = self.revoked.as_mut() else {
            return Poll::Ready(None);
        };
        if revoked.as_mut().poll(cx).is_ready() {
            self.revoked = None;
            let status = Status::unauthenticated("the API key of this stream was revoked");
            let mut trailers = http::HeaderMap::new();
            return Poll::Ready(Some(match status.add_header(&mut trailers) {
                Ok(()) => Ok(Frame::trailers(trailers)),
                Err(status) => Err(status),
            }));
        }
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if matches!(&polled, Poll::Ready(None) | Poll::Ready(Some(Err(_)))) {
            self.revoked = None;
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.revoked.is_none() || self.inner.is_end_stream()
    }
}

/// Which side of a call an [`Outcome`] is recorded for.
#[derive(Debug)]
pub(crate) enum Kind {
    Server(Arc<ServerShared>),
    Client { caller: ServiceKind, dispatch: Dispatch },
}

/// What is recorded when a call finishes: when its status is known (headers
/// of a trailers-only response, or trailers), or when its body is dropped
/// unfinished (the peer went away: CANCELLED).
#[derive(Debug)]
pub(crate) struct Outcome {
    pub(crate) span: Span,
    /// The work the call is part of: its outcome's log line carries its
    /// trace even when the span was not opened.
    pub(crate) work: Option<Work>,
    pub(crate) method: String,
    pub(crate) start: Instant,
    pub(crate) kind: Kind,
}

impl Outcome {
    fn finish(self, code: Code, message: &str) {
        let elapsed = self.start.elapsed();
        self.span.record("rpc.grpc.status_code", code as i32);
        let (service, dispatch, histogram) = match &self.kind {
            Kind::Server(shared) => (shared.service, &shared.dispatch, &metrics().server_duration),
            Kind::Client { caller, dispatch } => (*caller, dispatch, &metrics().client_duration),
        };
        let server_side = matches!(self.kind, Kind::Server(_));
        if is_error(code, server_side) {
            self.span.record("otel.status_code", "ERROR");
        }
        observe(histogram, service.as_str(), &self.method, code, elapsed);
        // Most outcomes log at a level no subscriber wants (OK is debug):
        // then skip switching subscriber and entering the span for nothing.
        if tracing::level_filters::LevelFilter::current() >= outcome_level(code) {
            let log = || {
                tracing::dispatcher::with_default(dispatch, || {
                    let _entered = self.span.enter();
                    log_outcome(&self.method, code, message, elapsed, server_side);
                })
            };
            Work::within_sync(self.work.clone(), log);
        }
    }
}

/// OpenTelemetry RPC conventions: on the server, only codes that mean the
/// server failed are errors; on the client, every non-OK code is.
fn is_error(code: Code, server_side: bool) -> bool {
    if !server_side {
        return code != Code::Ok;
    }
    matches!(
        code,
        Code::Unknown
            | Code::DeadlineExceeded
            | Code::Unimplemented
            | Code::Internal
            | Code::Unavailable
            | Code::DataLoss
    )
}

/// The log level follows the code: a client's mistake is not our error.
/// Shed or rate-limited calls come in floods exactly when the server is
/// busiest, and so do refusals on state (`FAILED_PRECONDITION`: a sold-out
/// offer, with tens of thousands of buyers still pressing buy); one log line
/// each would add to the load, so they are debug (the metrics count them:
/// code label, `rpc_server_shed_total`, `caravan_orders_turned_away_total`).
fn outcome_level(code: Code) -> tracing::Level {
    match code {
        Code::Ok | Code::ResourceExhausted | Code::FailedPrecondition => tracing::Level::DEBUG,
        Code::Internal | Code::Unknown | Code::DataLoss => tracing::Level::ERROR,
        Code::Unavailable | Code::DeadlineExceeded | Code::Unimplemented => tracing::Level::WARN,
        _ => tracing::Level::INFO,
    }
}

/// One line per call's outcome, at [`outcome_level`].
fn log_outcome(method: &str, code: Code, message: &str, elapsed: Duration, server_side: bool) {
    let side = if server_side { "served" } else { "called" };
    let code_name = code_name(code);
    let millis = elapsed.as_secs_f64() * 1000.0;
    match outcome_level(code) {
        tracing::Level::ERROR => {
            tracing::error!(method, code = code_name, status_message = message, elapsed_ms = millis, "{side}")
        }
        tracing::Level::WARN => {
            tracing::warn!(method, code = code_name, status_message = message, elapsed_ms = millis, "{side}")
        }
        tracing::Level::INFO => {
            tracing::info!(method, code = code_name, status_message = message, elapsed_ms = millis, "{side}")
        }
        _ if code == Code::Ok => tracing::debug!(method, code = code_name, elapsed_ms = millis, "{side}"),
        _ => tracing::debug!(method, code = code_name, status_message = message, elapsed_ms = millis, "{side}"),
    }
}

/// Wraps a response so its outcome is recorded when its status is known.
pub(crate) fn observe_response<B>(response: http::Response<B>, outcome: Outcome) -> http::Response<Body>
where
    B: HttpBody<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    let (parts, body) = response.into_parts();
    if let Some(code) = status_in(&parts.headers) {
        // Trailers-only response: the status is already known.
        let message = grpc_message(&parts.headers);
        outcome.finish(code, &message);
        return http::Response::from_parts(parts, Body::new(body));
    }
    http::Response::from_parts(parts, Body::new(ObservedBody { inner: Box::pin(body), outcome: Some(outcome) }))
}

/// The `grpc-message` of a response, percent-decoded as the protocol encodes it.
fn grpc_message(headers: &http::HeaderMap) -> String {
    headers
        .get("grpc-message")
        .and_then(|v| v.to_str().ok())
        .map(|m| percent_encoding::percent_decode_str(m).decode_utf8_lossy().into_owned())
        .unwrap_or_default()
}

fn status_in(headers: &http::HeaderMap) -> Option<Code> {
    headers.get("grpc-status").and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<i32>().ok()).map(Code::from_i32)
}

struct ObservedBody<B> {
    inner: Pin<Box<B>>,
    outcome: Option<Outcome>,
}

impl<B> HttpBody for ObservedBody<B>
where
    B: HttpBody<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let polled = self.inner.as_mut().poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(trailers) = frame.trailers_ref() {
                    let code = status_in(trailers).unwrap_or(Code::Unknown);
                    let message = grpc_message(trailers);
                    if let Some(outcome) = self.outcome.take() {
                        outcome.finish(code, &message);
                    }
                }
            }
            Poll::Ready(Some(Err(_))) => {
                if let Some(outcome) = self.outcome.take() {
                    outcome.finish(Code::Internal, "response body failed");
                }
            }
            Poll::Ready(None) => {
                if let Some(outcome) = self.outcome.take() {
                    outcome.finish(Code::Unknown, "response ended without a status");
                }
            }
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl<B> Drop for ObservedBody<B> {
    fn drop(&mut self) {
        if let Some(outcome) = self.outcome.take() {
            outcome.finish(Code::Cancelled, "the peer went away before the call finished");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floods_log_at_debug_and_failures_louder() {
        use tracing::Level;
        for code in [Code::Ok, Code::ResourceExhausted, Code::FailedPrecondition] {
            assert_eq!(outcome_level(code), Level::DEBUG, "{code:?} comes in floods");
        }
        assert_eq!(outcome_level(Code::InvalidArgument), Level::INFO);
        assert_eq!(outcome_level(Code::NotFound), Level::INFO);
        assert_eq!(outcome_level(Code::Unavailable), Level::WARN);
        assert_eq!(outcome_level(Code::Internal), Level::ERROR);
    }
}
