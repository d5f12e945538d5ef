//! Channels to other caravan services.
//!
//! [`TracedChannel`] is the client half of the RPC layers: a span per call
//! (child of the current one) whose W3C trace context is injected into the
//! request, the caller's remaining deadline (or the method's default when the
//! partner sent none), and client duration metrics. [`Retry`] retries
//! idempotent calls on `UNAVAILABLE` only, with backoff and a retry budget.

use std::{
    net::SocketAddr,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
    time::{Duration, Instant},
};

use tonic::{
    Code, Status,
    body::Body,
    transport::{Certificate, ClientTlsConfig, Endpoint, Identity},
};
use tower::{
    Service,
    retry::budget::{Budget as _, TpsBudget},
};
use tracing::{Dispatch, field::Empty};
use url::Url;

use crate::{
    auth::{self, keys::ServiceKey},
    config::{ClientTls, ServiceKind},
    deadline,
    rpc::{Kind, Outcome, observe_response, split_path},
};

/// Finds the addresses behind an upstream's host name: DNS in production
/// (a Kubernetes headless Service answers one address per ready pod); tests
/// inject their own.
pub trait Resolver: Send + Sync + std::fmt::Debug + 'static {
    /// The addresses of `host:port` now.
    fn resolve(
        &self,
        host: &str,
        port: u16,
    ) -> Pin<Box<dyn std::future::Future<Output = std::io::Result<Vec<SocketAddr>>> + Send + '_>>;
}

/// The system resolver (`getaddrinfo`, through tokio).
#[derive(Debug, Clone, Copy, Default)]
pub struct DnsResolver;

impl Resolver for DnsResolver {
    fn resolve(
        &self,
        host: &str,
        port: u16,
    ) -> Pin<Box<dyn std::future::Future<Output = std::io::Result<Vec<SocketAddr>>> + Send + '_>> {
        let target = format!("{host}:{port}");
        Box::pin(async move { Ok(tokio::net::lookup_host(target).await?.collect()) })
    }
}

/// Client-side balancing over the addresses behind an upstream's name.
#[derive(Debug, Clone)]
pub struct Balancing {
    /// Who finds the addresses.
    pub resolver: Arc<dyn Resolver>,
    /// How often they are looked up again (new pods join, gone ones leave).
    pub interval: Duration,
}

impl Default for Balancing {
    fn default() -> Self {
        Balancing { resolver: Arc::new(DnsResolver), interval: Duration::from_secs(5) }
    }
}

/// How a service reaches another.
#[derive(Debug, Clone)]
pub struct ChannelOptions {
    /// The calling service (the `service` label of client metrics).
    pub caller: ServiceKind,
    /// The callee.
    pub target: ServiceKind,
    /// Connect timeout.
    pub connect_timeout: Duration,
    /// Deadline of a call whose caller sent none.
    pub default_deadline: Duration,
    /// The calling service's own key, sent as `authorization: Bearer` (the
    /// current one: a rotated key is sent from its reload on).
    pub service_key: Option<ServiceKey>,
    /// TLS towards the callee (used for `https://` addresses).
    pub tls: Option<ClientTls>,
    /// For an upstream addressed by name: balance calls over every address
    /// the name resolves to, looked up again periodically. An IP address is
    /// one connection.
    pub balancing: Balancing,
    /// Fault-injection drills on the calls to `target` ([`crate::chaos`];
    /// off by default).
    pub chaos: crate::chaos::Chaos,
}

/// A lazily connected channel with the client RPC layer. The service starts
/// even if its upstream is not up yet; a call to an unreachable upstream fails
/// with `UNAVAILABLE` after the connect timeout instead of hanging.
///
/// An upstream addressed by a host name is balanced on the client: one
/// HTTP/2 connection to a Kubernetes ClusterIP Service would pin every call
/// to one pod, so the name (a headless Service's) is resolved to all its
/// addresses, calls are spread over them (power of two choices, by pending
/// calls), and the name is resolved again every `Balancing::interval` so
/// scaled-out pods receive load and removed ones stop receiving it.
#[derive(Debug, Clone)]
pub struct TracedChannel {
    inner: tonic::transport::Channel,
    /// The service's key, sent on every call.
    authorization: Option<ServiceKey>,
    options: Arc<ChannelOptions>,
    authority: String,
    port: u16,
}

impl TracedChannel {
    /// A channel to `url`. A host name is balanced over its addresses (this
    /// spawns the re-resolving task, so it must be called inside a tokio
    /// runtime); an IP address is one lazily connected channel.
    pub fn new(url: &Url, options: ChannelOptions) -> Result<Self, ChannelError> {
        let inner = match url.host() {
            Some(url::Host::Domain(host)) => {
                let port = url.port_or_known_default().ok_or(ChannelError::NoPort)?;
                let (channel, changes) = tonic::transport::Channel::balance_channel(64);
                let runtime = tokio::runtime::Handle::try_current().map_err(|_| ChannelError::NoRuntime)?;
                let resolving = Resolving { url: url.clone(), host: host.to_owned(), port, options: options.clone() };
                runtime.spawn(resolving.run(changes));
                channel
            }
            _ => endpoint(url.as_str(), url, &options)?.connect_lazy(),
        };
        let authorization = options.service_key.clone();
        Ok(TracedChannel {
            inner,
            authorization,
            authority: url.host_str().unwrap_or_default().to_owned(),
            port: url.port_or_known_default().unwrap_or(0),
            options: Arc::new(options),
        })
    }
}

impl Service<http::Request<Body>> for TracedChannel {
    type Response = http::Response<Body>;
    type Error = tonic::transport::Error;
    type Future = Pin<Box<dyn std::future::Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<Body>) -> Self::Future {
        let path = request.uri().path().to_owned();
        let (rpc_service, rpc_method) = split_path(&path);
        // String fields as `&str`, not `%`: the OpenTelemetry layer copies a
        // string as it is, but formats a `Display` value first.
        let span = tracing::info_span!(
            "rpc.client",
            otel.name = path.trim_start_matches('/'),
            otel.kind = "client",
            otel.status_code = Empty,
            rpc.system = "grpc",
            rpc.service = rpc_service,
            rpc.method = rpc_method,
            rpc.grpc.status_code = Empty,
            server.address = self.authority.as_str(),
            server.port = i64::from(self.port),
            peer.service = self.options.target.as_str(),
            chaos.fault = Empty,
        );
        // The call's span, or, in a trace that is not sampled (no span
        // opened), the trace the caller's work belongs to.
        if let Some(span_context) =
            crate::telemetry::span_context(&span).or_else(crate::telemetry::current_trace_context)
        {
            crate::telemetry::inject_trace_context(&span_context, request.headers_mut());
        }
        if let Some(key) = &self.authorization {
            request.headers_mut().insert(auth::AUTHORIZATION, key.header());
        }
        if let Some(caller) = auth::current_caller().and_then(|c| http::HeaderValue::from_str(&c).ok()) {
            request.headers_mut().insert(auth::ON_BEHALF_OF, caller);
        }

        // The deadline: what is left of the caller's, capped by the one this
        // call set for itself (`Request::set_timeout`), else the default.
        let own =
            request.headers().get("grpc-timeout").and_then(|v| v.to_str().ok()).and_then(deadline::parse_grpc_timeout);
        let inherited = deadline::remaining();
        let timeout = match (own, inherited) {
            (Some(own), Some(inherited)) => own.min(inherited),
            (Some(one), None) | (None, Some(one)) => one,
            (None, None) => self.options.default_deadline,
        };
        let outcome = Outcome {
            span: span.clone(),
            work: crate::telemetry::Work::current(),
            method: path.trim_start_matches('/').to_owned(),
            start: Instant::now(),
            kind: Kind::Client {
                caller: self.options.caller,
                dispatch: tracing::dispatcher::get_default(Dispatch::clone),
            },
        };
        if timeout.is_zero() {
            let status =
                Status::deadline_exceeded(format!("no time left to call {path}: the caller's deadline passed"));
            return Box::pin(async move { Ok(observe_response(status.into_http::<Body>(), outcome)) });
        }
        // A drill: the call fails at once (never sent), or its answer comes
        // later, within the same deadline.
        let drill = self.options.chaos.call(self.options.target);
        if let Some(kind) = crate::chaos::Chaos::fault_kind(&drill) {
            span.record("chaos.fault", kind);
        }
        if let Some(status) = drill.error {
            let delay = drill.delay.min(timeout);
            return Box::pin(tracing::Instrument::instrument(
                async move {
                    tokio::time::sleep(delay).await;
                    Ok(observe_response(status.into_http::<Body>(), outcome))
                },
                span,
            ));
        }
        let delay = drill.delay;
        if let Ok(value) = http::HeaderValue::from_str(&deadline::format_grpc_timeout(timeout)) {
            request.headers_mut().insert("grpc-timeout", value);
        }
        let fut = {
            let _entered = span.enter();
            self.inner.call(request)
        };
        Box::pin(tracing::Instrument::instrument(
            async move {
                // The deadline holds here too, not only at the callee: a
                // callee that never answers (or no replica to send to yet)
                // cannot hold the caller past it.
                let answer = async move {
                    let answer = fut.await;
                    if !delay.is_zero() {
                        tokio::time::sleep(delay).await;
                    }
                    answer
                };
                let response = match tokio::time::timeout(timeout, answer).await {
                    Ok(Ok(response)) => response,
                    // The connection failed, closed or went away under the
                    // call (a replica draining, say): UNAVAILABLE, as gRPC
                    // defines transport failures, so idempotent calls retry.
                    Ok(Err(e)) => Status::unavailable(format!("{path}: {e}")).into_http(),
                    Err(_) => Status::deadline_exceeded(format!("{path}: no answer within {timeout:?}")).into_http(),
                };
                Ok(observe_response(response, outcome))
            },
            span,
        ))
    }
}

/// One connection's settings: `address` with `url`'s scheme and TLS name.
fn endpoint(address: &str, url: &Url, options: &ChannelOptions) -> Result<Endpoint, ChannelError> {
    let mut endpoint = Endpoint::from_shared(address.trim_end_matches('/').to_owned())?;
    if url.scheme() == "https" {
        let mut tls = ClientTlsConfig::new().domain_name(url.host_str().unwrap_or_default());
        match &options.tls {
            Some(ClientTls { ca_pem, identity }) => {
                tls = tls.ca_certificate(Certificate::from_pem(ca_pem.as_bytes()));
                if let Some((cert, key)) = identity {
                    tls = tls.identity(Identity::from_pem(cert.as_bytes(), key.expose().as_bytes()));
                }
            }
            None => return Err(ChannelError::NoTrust),
        }
        endpoint = endpoint.tls_config(tls)?;
    }
    Ok(endpoint
        .connect_timeout(options.connect_timeout)
        .tcp_nodelay(true)
        .http2_keep_alive_interval(Duration::from_secs(30))
        .keep_alive_timeout(Duration::from_secs(10))
        .keep_alive_while_idle(true))
}

/// Keeps a balanced channel's endpoints equal to what its name resolves to.
struct Resolving {
    url: Url,
    host: String,
    port: u16,
    options: ChannelOptions,
}

impl Resolving {
    /// Resolves now and every interval; stops when the channel is gone.
    async fn run(self, changes: tokio::sync::mpsc::Sender<tonic::transport::channel::Change<SocketAddr, Endpoint>>) {
        use tonic::transport::channel::Change;
        let mut current: std::collections::BTreeSet<SocketAddr> = std::collections::BTreeSet::new();
        let mut ticker = tokio::time::interval(self.options.balancing.interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = changes.closed() => return,
                _ = ticker.tick() => {}
            }
            let found = match self.options.balancing.resolver.resolve(&self.host, self.port).await {
                Ok(found) if !found.is_empty() => found.into_iter().collect::<std::collections::BTreeSet<_>>(),
                // Keep what we have: an empty or failed lookup is likelier a
                // DNS hiccup than every replica gone at once.
                Ok(_) => {
                    tracing::warn!(upstream = %self.options.target, host = %self.host, "no addresses; keeping the last ones");
                    continue;
                }
                Err(e) => {
                    tracing::warn!(upstream = %self.options.target, host = %self.host, error = %e, "resolving failed; keeping the last addresses");
                    continue;
                }
            };
            for gone in current.difference(&found) {
                tracing::info!(upstream = %self.options.target, address = %gone, "upstream address left");
                if changes.send(Change::Remove(*gone)).await.is_err() {
                    return;
                }
            }
            for new in found.difference(&current) {
                let address = format!("{}://{new}", self.url.scheme());
                match endpoint(&address, &self.url, &self.options) {
                    Ok(endpoint) => {
                        tracing::debug!(upstream = %self.options.target, address = %new, "upstream address joined");
                        if changes.send(Change::Insert(*new, endpoint)).await.is_err() {
                            return;
                        }
                    }
                    Err(e) => {
                        tracing::warn!(upstream = %self.options.target, address = %new, error = %e, "unusable address")
                    }
                }
            }
            current = found;
        }
    }
}

/// Why a channel could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ChannelError {
    /// The address is not usable.
    #[error("invalid upstream address: {0}")]
    Address(#[from] tonic::transport::Error),
    /// An `https://` upstream but no CA to verify it with.
    #[error("an https:// upstream needs CARAVAN_UPSTREAM_CA to verify it")]
    NoTrust,
    /// A URL without a port of its own or of its scheme.
    #[error("the upstream address has no port")]
    NoPort,
    /// A balanced channel was built outside a tokio runtime.
    #[error("a balanced upstream channel needs a tokio runtime")]
    NoRuntime,
}

/// Retries of idempotent calls: only on `UNAVAILABLE`, with jittered
/// exponential backoff, within the caller's deadline, and only while the
/// retry budget (a fraction of recent calls) allows, so retries cannot
/// multiply load on a struggling upstream.
#[derive(Debug, Clone)]
pub struct Retry {
    budget: Arc<TpsBudget>,
    max_attempts: u32,
    base_backoff: Duration,
    max_backoff: Duration,
}

impl Default for Retry {
    fn default() -> Self {
        // Retries may add at most 20 % to the calls of the last 10 s, plus 10/s.
        Retry {
            budget: Arc::new(TpsBudget::new(Duration::from_secs(10), 10, 0.2)),
            max_attempts: 3,
            base_backoff: Duration::from_millis(25),
            max_backoff: Duration::from_millis(500),
        }
    }
}

/// Headers a call carries: tonic's (`te`, `content-type`, `user-agent`,
/// and `grpc-accept-encoding` were compression turned on) and
/// [`TracedChannel`]'s (`grpc-timeout`, `authorization`,
/// `caravan-on-behalf-of`, `traceparent`, at times `tracestate`).
const CALL_HEADERS: usize = 9;

/// `message` as a request whose headers have room for all a call carries:
/// a request's header map starts with room for six and would grow (its
/// table rebuilt) on the way out of every call.
fn sized_request<R>(message: R) -> tonic::Request<R> {
    tonic::Request::from_parts(
        tonic::metadata::MetadataMap::with_capacity(CALL_HEADERS),
        tonic::Extensions::default(),
        message,
    )
}

impl Retry {
    /// A policy with `max_attempts` attempts in all.
    pub fn with_attempts(max_attempts: u32) -> Self {
        Retry { max_attempts: max_attempts.max(1), ..Retry::default() }
    }

    /// [`Self::idempotent`] for one gRPC method: each attempt calls
    /// `method` on a clone of `client` with a clone of `request`.
    pub async fn call<C, R, T, F, Fut>(&self, client: &C, request: &R, method: F) -> Result<T, Status>
    where
        C: Clone,
        R: Clone,
        F: Fn(C, tonic::Request<R>) -> Fut,
        Fut: std::future::Future<Output = Result<T, Status>>,
    {
        self.idempotent(|| method(client.clone(), sized_request(request.clone()))).await
    }

    /// Runs `call`, retrying it on `UNAVAILABLE`. Use only for idempotent calls.
    pub async fn idempotent<T, F, Fut>(&self, mut call: F) -> Result<T, Status>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, Status>>,
    {
        self.budget.deposit();
        let mut attempt = 1;
        loop {
            match call().await {
                Err(status) if status.code() == Code::Unavailable && attempt < self.max_attempts => {
                    let backoff = self.backoff(attempt);
                    if deadline::remaining().is_some_and(|left| left <= backoff) {
                        return Err(status);
                    }
                    if !self.budget.withdraw() {
                        tracing::debug!("retry budget exhausted; not retrying");
                        return Err(status);
                    }
                    tracing::debug!(attempt, ?backoff, message = status.message(), "retrying after UNAVAILABLE");
                    tokio::time::sleep(backoff).await;
                    attempt += 1;
                }
                outcome => return outcome,
            }
        }
    }

    fn backoff(&self, attempt: u32) -> Duration {
        let exp = self.base_backoff.saturating_mul(1 << attempt.min(16)).min(self.max_backoff);
        // Full jitter over the upper half avoids synchronised retries.
        let half = exp / 2;
        half + half.mul_f64(rand::random::<f64>())
    }
}

/// The health status `service` (`""` for the whole server) reports at `addr`.
pub async fn health_status(
    addr: SocketAddr,
    service: &str,
) -> anyhow::Result<tonic_health::pb::health_check_response::ServingStatus> {
    use tonic_health::pb::{HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient};
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))?.connect().await?;
    let mut client = HealthClient::new(channel);
    let response = client.check(HealthCheckRequest { service: service.to_owned() }).await?;
    Ok(ServingStatus::try_from(response.into_inner().status).unwrap_or(ServingStatus::Unknown))
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    async fn attempts_until(retry: &Retry, failures: u32, code: Code) -> (Result<(), Status>, u32) {
        let attempts = AtomicU32::new(0);
        let result = retry
            .idempotent(|| {
                let n = attempts.fetch_add(1, Ordering::SeqCst) + 1;
                async move { if n <= failures { Err(Status::new(code, "no")) } else { Ok(()) } }
            })
            .await;
        (result, attempts.load(Ordering::SeqCst))
    }

    #[tokio::test]
    async fn retries_only_unavailable_and_only_so_often() {
        let retry = Retry::with_attempts(3);
        let (result, attempts) = attempts_until(&retry, 2, Code::Unavailable).await;
        assert!(result.is_ok());
        assert_eq!(attempts, 3);

        let (result, attempts) = attempts_until(&retry, 5, Code::Unavailable).await;
        assert_eq!((result.unwrap_err().code(), attempts), (Code::Unavailable, 3), "gives up after 3 attempts");

        for code in [Code::Internal, Code::DeadlineExceeded, Code::FailedPrecondition, Code::ResourceExhausted] {
            let (result, attempts) = attempts_until(&retry, 1, code).await;
            assert_eq!((result.unwrap_err().code(), attempts), (code, 1), "{code:?} is not retried");
        }
    }

    #[tokio::test]
    async fn the_budget_stops_retry_storms() {
        // A budget with no floor and 10 % of recent calls: after the first
        // calls' deposits run out, failing calls are not retried any more.
        let retry = Retry {
            budget: Arc::new(TpsBudget::new(Duration::from_secs(10), 0, 0.1)),
            max_attempts: 3,
            base_backoff: Duration::from_millis(1),
            max_backoff: Duration::from_millis(1),
        };
        let mut total = 0;
        for _ in 0..50 {
            total += attempts_until(&retry, 10, Code::Unavailable).await.1;
        }
        assert!(total < 50 + 50 / 5, "retries stayed within the budget: {total} attempts for 50 calls");
        assert!(total > 50, "some retries were allowed");
    }

    #[tokio::test]
    async fn no_retry_past_the_callers_deadline() {
        let retry =
            Retry { base_backoff: Duration::from_secs(1), max_backoff: Duration::from_secs(1), ..Retry::default() };
        let deadline = tokio::time::Instant::now() + Duration::from_millis(100);
        let (result, attempts) = deadline::scope(Some(deadline), attempts_until(&retry, 2, Code::Unavailable)).await;
        assert_eq!((result.unwrap_err().code(), attempts), (Code::Unavailable, 1));
    }
}
