//! Where finished spans go: each arrives already encoded as an OTLP `Span`
//! ([`super::spans`] writes it as it records it), and the exporter sends
//! those bytes as they are — no span structs, no conversion to protobuf
//! messages, no copy of a batch for its retries.
//!
//! [`OtlpExporter`] keeps one buffer of encoded spans per service of the
//! process (and one for work of no service), each with its service's
//! resource. A span closing appends its bytes under one short lock; a batch
//! of `OTEL_BSP_MAX_EXPORT_BATCH_SIZE` spans wakes the export thread, which
//! otherwise sends what is there every `OTEL_BSP_SCHEDULE_DELAY`. The thread
//! has its own single-threaded runtime, so exporting never competes with
//! calls for the services' runtime, and holds at most
//! `OTEL_BSP_MAX_QUEUE_SIZE` spans: beyond that a span is dropped (and
//! counted) rather than waited for. Each request is an OTLP/gRPC `Export`
//! to the collector, retried with backoff on the codes the OTLP
//! specification calls retryable, for at most `OTEL_BSP_EXPORT_TIMEOUT`.
//!
//! [`SpanCollector`] keeps them in memory, for tests.

use std::{
    collections::VecDeque,
    sync::{Arc, Mutex, MutexGuard},
    time::Duration,
};

use bytes::{Buf as _, BufMut as _, Bytes};
use opentelemetry_proto::tonic::{collector::trace::v1::ExportTraceServiceResponse, trace::v1::Span};
use prost::Message as _;
use tokio::time::Instant;
use tonic::{
    Code, Status,
    codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder},
    metadata::{AsciiMetadataKey, AsciiMetadataValue},
    transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity},
};

use super::{
    OtelConfig,
    wire::{self, field},
};
use crate::{config::ServiceKind, metrics::metrics};

/// Where the span layer hands each finished, sampled span.
pub(crate) trait SpanSink: Send + Sync + std::fmt::Debug {
    /// `span` is an encoded OTLP `Span` of `service`'s work (or of no
    /// service's: start-up, tools).
    fn push(&self, service: Option<ServiceKind>, span: &[u8]);

    /// Sends what is held and stops, within `timeout`.
    fn shutdown(&self, timeout: Duration) -> anyhow::Result<()>;
}

/// The spans of a test, kept in memory as they end.
#[derive(Debug, Clone, Default)]
pub struct SpanCollector {
    spans: Arc<Mutex<Vec<Collected>>>,
}

/// A span as it ended: whose work it was, and its encoded OTLP `Span`.
type Collected = (Option<ServiceKind>, Vec<u8>);

impl SpanCollector {
    /// Every span so far, decoded, in the order they ended.
    pub fn spans(&self) -> Result<Vec<Span>, prost::DecodeError> {
        self.with_service().map(|spans| spans.into_iter().map(|(_, span)| span).collect())
    }

    /// Every span so far with the service whose work it was.
    pub fn with_service(&self) -> Result<Vec<(Option<ServiceKind>, Span)>, prost::DecodeError> {
        let spans = self.spans.lock().unwrap_or_else(|e| e.into_inner());
        spans.iter().map(|(service, bytes)| Ok((*service, Span::decode(bytes.as_slice())?))).collect()
    }
}

impl SpanSink for SpanCollector {
    fn push(&self, service: Option<ServiceKind>, span: &[u8]) {
        self.spans.lock().unwrap_or_else(|e| e.into_inner()).push((service, span.to_vec()));
    }

    fn shutdown(&self, _timeout: Duration) -> anyhow::Result<()> {
        Ok(())
    }
}

/// The process's OTLP/gRPC exporter.
#[derive(Debug)]
pub(crate) struct OtlpExporter {
    shared: Arc<Shared>,
    /// Told, when the export thread has stopped, how many of the spans it
    /// held at the stop it could not send.
    stopped: Mutex<Option<std::sync::mpsc::Receiver<u64>>>,
}

#[derive(Debug)]
struct Shared {
    queue: Mutex<Queue>,
    wake: tokio::sync::Notify,
    /// Spans per request.
    batch: usize,
    /// Most spans held (open, ready, being sent).
    capacity: usize,
    /// Each slot's `service.name`, for metrics.
    names: Vec<String>,
}

#[derive(Debug)]
struct Queue {
    /// Per slot (the services in [`ServiceKind::ALL`] order, then the
    /// process's): encoded spans, each already a `ScopeSpans.spans` entry,
    /// and how many.
    open: Vec<(Vec<u8>, usize)>,
    /// Full batches waiting for the export thread.
    ready: VecDeque<Chunk>,
    /// Spans in `open`, `ready` and in flight.
    held: usize,
    /// When shutdown asked the thread to finish by.
    stop_by: Option<Instant>,
}

#[derive(Debug)]
struct Chunk {
    slot: usize,
    spans: Vec<u8>,
    count: usize,
}

fn slot_of(service: Option<ServiceKind>) -> usize {
    match service {
        Some(service) => ServiceKind::ALL.iter().position(|s| *s == service).unwrap_or(ServiceKind::ALL.len()),
        None => ServiceKind::ALL.len(),
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// What the export thread needs to reach the collector.
struct Target {
    endpoint: Endpoint,
    headers: Vec<(AsciiMetadataKey, AsciiMetadataValue)>,
    gzip: bool,
    /// Each attempt's limit (`OTEL_EXPORTER_OTLP_TIMEOUT`).
    attempt_timeout: Duration,
    /// A request's limit, retries included (`OTEL_BSP_EXPORT_TIMEOUT`).
    export_timeout: Duration,
    schedule_delay: Duration,
    /// Encoded `Resource` and `InstrumentationScope` of each slot.
    resources: Vec<Vec<u8>>,
    scope: Vec<u8>,
}

impl OtlpExporter {
    /// Starts the export thread. Slot by slot, spans carry each service's
    /// `service.name`, and the rest `process_name`. Fails on settings that
    /// cannot work (an unreadable certificate, a bad header): the process
    /// should not start without the traces it was asked to send.
    pub(crate) fn start(config: &OtelConfig, endpoint: &str, process_name: &str) -> anyhow::Result<Self> {
        let names: Vec<String> = ServiceKind::ALL
            .iter()
            .map(|s| s.as_str().to_owned())
            .chain(std::iter::once(process_name.to_owned()))
            .collect();
        let resources = names.iter().map(|name| encoded_resource(&super::resource(name))).collect();
        let target = Target {
            endpoint: endpoint_of(config, endpoint)?,
            headers: config
                .headers
                .iter()
                .map(|(k, v)| Ok((k.parse()?, v.expose().parse()?)))
                .collect::<anyhow::Result<_>>()
                .map_err(|e: anyhow::Error| anyhow::anyhow!("OTEL_EXPORTER_OTLP_HEADERS: {e}"))?,
            gzip: config.gzip,
            attempt_timeout: config.timeout,
            export_timeout: config.export_timeout,
            schedule_delay: config.schedule_delay,
            resources,
            scope: encoded_scope(),
        };
        let shared = Arc::new(Shared {
            queue: Mutex::new(Queue {
                open: vec![(Vec::new(), 0); names.len()],
                ready: VecDeque::new(),
                held: 0,
                stop_by: None,
            }),
            wake: tokio::sync::Notify::new(),
            batch: config.export_batch,
            capacity: config.queue,
            names,
        });
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| anyhow::anyhow!("the trace exporter's runtime: {e}"))?;
        let (done, stopped) = std::sync::mpsc::channel();
        let thread_shared = shared.clone();
        std::thread::Builder::new()
            .name("otlp-export".into())
            .spawn(move || {
                let lost = runtime.block_on(export_loop(thread_shared, target));
                let _ = done.send(lost);
            })
            .map_err(|e| anyhow::anyhow!("the trace exporter's thread: {e}"))?;
        Ok(OtlpExporter { shared, stopped: Mutex::new(Some(stopped)) })
    }
}

impl SpanSink for OtlpExporter {
    fn push(&self, service: Option<ServiceKind>, span: &[u8]) {
        let slot = slot_of(service);
        let mut queue = self.shared.lock();
        if queue.held >= self.shared.capacity || queue.stop_by.is_some() {
            drop(queue);
            spans_counter(&self.shared.names[slot], "dropped").inc();
            return;
        }
        queue.held += 1;
        let (spans, count) = &mut queue.open[slot];
        wire::bytes(spans, field::scope_spans::SPANS, span);
        *count += 1;
        if *count < self.shared.batch {
            return;
        }
        let full = Chunk { slot, spans: sized_like(spans), count: std::mem::take(count) };
        queue.ready.push_back(full);
        drop(queue);
        self.shared.wake.notify_one();
    }

    fn shutdown(&self, timeout: Duration) -> anyhow::Result<()> {
        let Some(stopped) = self.stopped.lock().unwrap_or_else(|e| e.into_inner()).take() else {
            return Ok(());
        };
        self.shared.lock().stop_by = Some(Instant::now() + timeout);
        self.shared.wake.notify_one();
        // A little longer than the thread's own limit: it gives up on the
        // collector by then.
        match stopped.recv_timeout(timeout + Duration::from_millis(200)) {
            Ok(0) => Ok(()),
            Ok(lost) => anyhow::bail!("{lost} spans could not be exported at exit"),
            Err(_) => anyhow::bail!("the trace exporter did not finish within {timeout:?}"),
        }
    }
}

/// What `spans` holds, leaving in its place an empty buffer as large as it
/// was: the next batch is about as large, and growing one from nothing
/// copies it over and over.
fn sized_like(spans: &mut Vec<u8>) -> Vec<u8> {
    let capacity = spans.len();
    std::mem::replace(spans, Vec::with_capacity(capacity))
}

fn spans_counter(service: &str, outcome: &str) -> prometheus::IntCounter {
    metrics().spans.with_label_values(&[service, outcome])
}

/// The collector's channel: plaintext for `http://`, TLS for `https://`
/// (the `OTEL_EXPORTER_OTLP_CERTIFICATE` CA, else the public roots; a client
/// certificate and key for mutual TLS).
fn endpoint_of(config: &OtelConfig, url: &str) -> anyhow::Result<Endpoint> {
    let read = |variable: &str, path: &std::path::Path| {
        std::fs::read(path).map_err(|e| anyhow::anyhow!("{variable}: cannot read {}: {e}", path.display()))
    };
    let mut endpoint = Endpoint::from_shared(url.to_owned())
        .map_err(|e| anyhow::anyhow!("OTEL_EXPORTER_OTLP_ENDPOINT: `{url}`: {e}"))?
        .connect_timeout(config.timeout)
        .tcp_nodelay(true);
    if url.starts_with("https://") {
        let mut tls = ClientTlsConfig::new();
        tls = match &config.certificate {
            Some(ca) => tls.ca_certificate(Certificate::from_pem(read("OTEL_EXPORTER_OTLP_CERTIFICATE", ca)?)),
            None => tls.with_webpki_roots(),
        };
        if let (Some(cert), Some(key)) = (&config.client_certificate, &config.client_key) {
            tls = tls.identity(Identity::from_pem(
                read("OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE", cert)?,
                read("OTEL_EXPORTER_OTLP_CLIENT_KEY", key)?,
            ));
        }
        endpoint = endpoint.tls_config(tls).map_err(|e| anyhow::anyhow!("OTEL_EXPORTER_OTLP_ENDPOINT: TLS: {e}"))?;
    }
    Ok(endpoint)
}

/// The `InstrumentationScope` of every span: this crate.
fn encoded_scope() -> Vec<u8> {
    let mut scope = Vec::new();
    wire::string(&mut scope, field::scope::NAME, env!("CARGO_PKG_NAME"));
    wire::string(&mut scope, field::scope::VERSION, env!("CARGO_PKG_VERSION"));
    scope
}

/// A `Resource` message: its attributes.
fn encoded_resource(resource: &opentelemetry_sdk::Resource) -> Vec<u8> {
    let mut buf = Vec::new();
    for (key, value) in resource.iter() {
        wire::attribute_value(&mut buf, field::resource::ATTRIBUTES, key.as_str(), value);
    }
    buf
}

/// The export thread: sends full batches as they come, everything every
/// schedule delay, and everything it holds when asked to stop; answers how
/// many spans held at the stop were lost.
async fn export_loop(shared: Arc<Shared>, target: Target) -> u64 {
    let mut lost_at_exit = 0;
    let channel = target.endpoint.connect_lazy();
    let mut failing = Failures::default();
    let mut next_flush = Instant::now() + target.schedule_delay;
    loop {
        let (chunks, stop_by) = {
            let mut queue = shared.lock();
            let stop_by = queue.stop_by;
            if stop_by.is_some() || Instant::now() >= next_flush {
                let queue = &mut *queue;
                for (slot, (spans, count)) in queue.open.iter_mut().enumerate() {
                    if *count > 0 {
                        queue.ready.push_back(Chunk { slot, spans: sized_like(spans), count: std::mem::take(count) });
                    }
                }
                next_flush = Instant::now() + target.schedule_delay;
            }
            (queue.ready.drain(..).collect::<Vec<_>>(), stop_by)
        };
        if chunks.is_empty() {
            if stop_by.is_some() {
                return lost_at_exit;
            }
            tokio::select! {
                () = shared.wake.notified() => {}
                () = tokio::time::sleep_until(next_flush) => {}
            }
            continue;
        }
        for request in requests(chunks, shared.batch) {
            let deadline = match stop_by {
                Some(stop_by) => stop_by.min(Instant::now() + target.export_timeout),
                None => Instant::now() + target.export_timeout,
            };
            let body = encode_request(&request, &target);
            let stopping = || shared.lock().stop_by.is_some();
            let outcome = send(&channel, &target, body, deadline, stopping).await;
            for (slot, count) in request.iter().map(|c| (c.slot, c.count)) {
                let name = &shared.names[slot];
                match &outcome {
                    Ok(rejected) => {
                        let rejected = (*rejected).min(count as u64);
                        spans_counter(name, "exported").inc_by(count as u64 - rejected);
                        spans_counter(name, "rejected").inc_by(rejected);
                    }
                    Err(_) => spans_counter(name, "failed").inc_by(count as u64),
                }
            }
            let count: usize = request.iter().map(|c| c.count).sum();
            if outcome.is_err() && shared.lock().stop_by.is_some() {
                lost_at_exit += count as u64;
            }
            failing.note(&outcome, count);
            shared.lock().held -= count;
        }
    }
}

/// Chunks grouped into requests of at most `batch` spans (a full chunk is a
/// request of its own; the partial ones of a flush travel together).
fn requests(chunks: Vec<Chunk>, batch: usize) -> Vec<Vec<Chunk>> {
    let mut requests: Vec<Vec<Chunk>> = Vec::new();
    let mut current_count = 0;
    for chunk in chunks {
        match requests.last_mut() {
            Some(current) if current_count + chunk.count <= batch => {
                current_count += chunk.count;
                current.push(chunk);
            }
            _ => {
                current_count = chunk.count;
                requests.push(vec![chunk]);
            }
        }
    }
    requests
}

/// An `ExportTraceServiceRequest` of `chunks`: one `ResourceSpans` each.
fn encode_request(chunks: &[Chunk], target: &Target) -> Bytes {
    let scope_field = wire::len_field_len(field::scope_spans::SCOPE, target.scope.len());
    let sizes: Vec<(usize, usize)> = chunks
        .iter()
        .map(|chunk| {
            let scope_spans = scope_field + chunk.spans.len();
            let resource = &target.resources[chunk.slot];
            let resource_spans = wire::len_field_len(field::resource_spans::RESOURCE, resource.len())
                + wire::len_field_len(field::resource_spans::SCOPE_SPANS, scope_spans);
            (resource_spans, scope_spans)
        })
        .collect();
    let total = sizes.iter().map(|(rs, _)| wire::len_field_len(field::request::RESOURCE_SPANS, *rs)).sum::<usize>();
    let mut buf = Vec::with_capacity(total);
    for (chunk, (resource_spans, scope_spans)) in chunks.iter().zip(sizes) {
        wire::len_header(&mut buf, field::request::RESOURCE_SPANS, resource_spans);
        wire::bytes(&mut buf, field::resource_spans::RESOURCE, &target.resources[chunk.slot]);
        wire::len_header(&mut buf, field::resource_spans::SCOPE_SPANS, scope_spans);
        wire::bytes(&mut buf, field::scope_spans::SCOPE, &target.scope);
        buf.extend_from_slice(&chunk.spans);
    }
    Bytes::from(buf)
}

const EXPORT_PATH: &str = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";

/// Sends one request, retrying what the OTLP specification calls
/// retryable until `deadline` — but not once the process is `stopping`: then
/// what the collector does not take at once is lost rather than holding up
/// the exit. Answers how many spans the collector rejected (a partial
/// success).
async fn send(
    channel: &Channel,
    target: &Target,
    body: Bytes,
    deadline: Instant,
    stopping: impl Fn() -> bool,
) -> Result<u64, Status> {
    let mut backoff = Duration::from_millis(100);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(Status::deadline_exceeded("the export timeout passed before the collector answered"));
        }
        let mut grpc = tonic::client::Grpc::new(channel.clone());
        if target.gzip {
            grpc = grpc.send_compressed(tonic::codec::CompressionEncoding::Gzip);
        }
        // `Bytes` clones share the buffer: a retry sends the same bytes.
        let mut request = tonic::Request::new(body.clone());
        request.set_timeout(target.attempt_timeout.min(left));
        for (key, value) in &target.headers {
            request.metadata_mut().insert(key.clone(), value.clone());
        }
        let attempt = async {
            grpc.ready().await.map_err(|e| Status::unavailable(format!("the collector: {e}")))?;
            grpc.unary(request, http::uri::PathAndQuery::from_static(EXPORT_PATH), RawCodec).await
        };
        let status = match tokio::time::timeout(target.attempt_timeout.min(left), attempt).await {
            Ok(Ok(response)) => {
                let partial = response.into_inner().partial_success;
                return Ok(partial.map_or(0, |p| u64::try_from(p.rejected_spans).unwrap_or(0)));
            }
            Ok(Err(status)) => status,
            Err(_) => Status::deadline_exceeded("the collector did not answer in time"),
        };
        if !retryable(&status) || Instant::now() + backoff >= deadline || stopping() {
            return Err(status);
        }
        tokio::time::sleep(jittered(backoff)).await;
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}

/// The OTLP specification's retryable codes. RESOURCE_EXHAUSTED is retried
/// only when the collector says when (RetryInfo), which it does when it
/// means "later"; without it the batch is too big and never will be.
fn retryable(status: &Status) -> bool {
    match status.code() {
        Code::Cancelled
        | Code::DeadlineExceeded
        | Code::Aborted
        | Code::OutOfRange
        | Code::Unavailable
        | Code::DataLoss => true,
        Code::ResourceExhausted => tonic_types::StatusExt::get_details_retry_info(status).is_some(),
        _ => false,
    }
}

/// Between half and all of `backoff`, so exporters that failed together do
/// not retry together.
fn jittered(backoff: Duration) -> Duration {
    backoff.mul_f64(0.5 + rand::random::<f64>() / 2.0)
}

/// How exporting goes, logged when it changes: the first failure, then at
/// most one line a minute while it lasts, and the recovery.
#[derive(Debug, Default)]
struct Failures {
    since: Option<std::time::Instant>,
    lost: u64,
    last_logged: Option<std::time::Instant>,
}

impl Failures {
    fn note(&mut self, outcome: &Result<u64, Status>, count: usize) {
        let now = std::time::Instant::now();
        match outcome {
            Ok(_) => {
                if let Some(since) = self.since.take() {
                    tracing::info!(
                        lost_spans = self.lost,
                        failing_for_s = since.elapsed().as_secs(),
                        "exporting traces again"
                    );
                    self.lost = 0;
                }
            }
            Err(status) => {
                self.since.get_or_insert(now);
                self.lost += count as u64;
                if self.last_logged.is_none_or(|at| now.duration_since(at) >= Duration::from_secs(60)) {
                    self.last_logged = Some(now);
                    tracing::warn!(
                        code = crate::metrics::code_name(status.code()),
                        error = status.message(),
                        lost_spans = self.lost,
                        "cannot export traces to the collector"
                    );
                }
            }
        }
    }
}

/// Sends an already encoded request; decodes the collector's answer.
#[derive(Debug, Clone, Copy)]
struct RawCodec;

impl Codec for RawCodec {
    type Encode = Bytes;
    type Decode = ExportTraceServiceResponse;
    type Encoder = RawCodec;
    type Decoder = RawCodec;

    fn encoder(&mut self) -> Self::Encoder {
        RawCodec
    }

    fn decoder(&mut self) -> Self::Decoder {
        RawCodec
    }
}

impl Encoder for RawCodec {
    type Item = Bytes;
    type Error = Status;

    fn encode(&mut self, item: Bytes, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put(item);
        Ok(())
    }
}

impl Decoder for RawCodec {
    type Item = ExportTraceServiceResponse;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Self::Item>, Status> {
        let response = ExportTraceServiceResponse::decode(src.copy_to_bytes(src.remaining()))
            .map_err(|e| Status::internal(format!("the collector's answer: {e}")))?;
        Ok(Some(response))
    }
}

#[cfg(test)]
mod tests {
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;

    use super::*;
    use caravan_testkit::OtlpReceiver;

    use crate::telemetry::SamplerConfig;

    fn config(batch: usize, queue: usize) -> OtelConfig {
        OtelConfig {
            endpoint: None,
            sampler: SamplerConfig::AlwaysOn,
            headers: Vec::new(),
            timeout: Duration::from_secs(1),
            gzip: false,
            certificate: None,
            client_certificate: None,
            client_key: None,
            schedule_delay: Duration::from_secs(60),
            export_timeout: Duration::from_secs(5),
            export_batch: batch,
            queue,
        }
    }

    fn encoded(name: &str) -> Vec<u8> {
        Span { name: name.to_owned(), trace_id: vec![1; 16], span_id: vec![2; 8], ..Span::default() }.encode_to_vec()
    }

    fn counted(process: &str, outcome: &str) -> u64 {
        spans_counter(process, outcome).get()
    }

    async fn shut(exporter: OtlpExporter, timeout: Duration) -> (anyhow::Result<()>, Duration) {
        let started = std::time::Instant::now();
        let result = tokio::task::spawn_blocking(move || exporter.shutdown(timeout)).await.unwrap();
        (result, started.elapsed())
    }

    #[tokio::test]
    async fn spans_reach_the_collector_with_their_services_resource() {
        let (receiver, addr) = OtlpReceiver::start().await.unwrap();
        let mut config = config(3, 100);
        config.gzip = true;
        let process = "otlp-test-delivery";
        let exporter = OtlpExporter::start(&config, &format!("http://{addr}"), process).unwrap();
        for i in 0..4 {
            exporter.push(Some(ServiceKind::Orders), &encoded(&format!("order {i}")));
        }
        exporter.push(None, &encoded("start-up"));
        // A full batch (three spans) leaves at once, without waiting for the
        // schedule delay (a minute).
        let sent = caravan_testkit::eventually(Duration::from_secs(5), || async { receiver.spans().len() >= 3 }).await;
        assert!(sent, "a full batch was sent at once");
        let (result, _) = shut(exporter, Duration::from_secs(5)).await;
        result.unwrap();
        let mut got: Vec<(String, String)> =
            receiver.spans().into_iter().map(|(service, span)| (service, span.name)).collect();
        got.sort();
        let expected = [
            ("orders", "order 0"),
            ("orders", "order 1"),
            ("orders", "order 2"),
            ("orders", "order 3"),
            (process, "start-up"),
        ];
        assert_eq!(got, expected.map(|(s, n)| (s.to_owned(), n.to_owned())), "everything, the rest at shutdown");
        assert_eq!(counted(process, "exported"), 1);
    }

    #[tokio::test]
    async fn a_full_queue_drops_spans_instead_of_waiting_and_exit_is_not_held_up() {
        // A collector that accepts connections and never answers: the first
        // batch hangs in flight until its attempt times out.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let _silent = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((socket, _)) = listener.accept().await {
                held.push(socket);
            }
        });
        let process = "otlp-test-full";
        let exporter = OtlpExporter::start(&config(2, 2), &format!("http://{addr}"), process).unwrap();
        let started = std::time::Instant::now();
        for i in 0..5 {
            exporter.push(None, &encoded(&format!("span {i}")));
        }
        assert!(started.elapsed() < Duration::from_millis(500), "pushing never waits for the collector");
        assert_eq!(counted(process, "dropped"), 3, "the queue holds two; the rest are dropped and counted");
        let (result, took) = shut(exporter, Duration::from_secs(3)).await;
        let error = result.unwrap_err().to_string();
        assert!(error.contains("2 spans"), "{error}");
        assert!(took < Duration::from_secs(3), "gave up at the attempt's timeout, without retrying: {took:?}");
        assert_eq!(counted(process, "failed"), 2);
    }

    fn chunk(slot: usize, count: usize) -> Chunk {
        let mut spans = Vec::new();
        for i in 0..count {
            let span = Span { name: format!("span {slot}.{i}"), ..Span::default() };
            wire::bytes(&mut spans, field::scope_spans::SPANS, &span.encode_to_vec());
        }
        Chunk { slot, spans, count }
    }

    #[test]
    fn requests_are_otlp_export_requests_with_each_slots_resource() {
        let names = ["catalog", "scheduling", "inventory", "orders", "caravan"];
        let target = Target {
            endpoint: Endpoint::from_static("http://127.0.0.1:4317"),
            headers: Vec::new(),
            gzip: false,
            attempt_timeout: Duration::from_secs(1),
            export_timeout: Duration::from_secs(1),
            schedule_delay: Duration::from_secs(1),
            resources: names.iter().map(|n| encoded_resource(&super::super::resource(n))).collect(),
            scope: encoded_scope(),
        };
        let body = encode_request(&[chunk(3, 2), chunk(4, 1)], &target);
        let request = ExportTraceServiceRequest::decode(body).unwrap();
        let got: Vec<(String, String, Vec<String>)> = request
            .resource_spans
            .into_iter()
            .map(|rs| {
                let service = rs
                    .resource
                    .unwrap()
                    .attributes
                    .into_iter()
                    .find(|kv| kv.key == "service.name")
                    .and_then(|kv| kv.value?.value)
                    .map(|v| format!("{v:?}"))
                    .unwrap();
                let [scope_spans] = <[_; 1]>::try_from(rs.scope_spans).unwrap();
                let scope = scope_spans.scope.unwrap().name;
                (service, scope, scope_spans.spans.into_iter().map(|s| s.name).collect())
            })
            .collect();
        assert_eq!(
            got,
            [
                (
                    r#"StringValue("orders")"#.to_owned(),
                    "caravan-platform".to_owned(),
                    vec!["span 3.0".to_owned(), "span 3.1".to_owned()]
                ),
                (r#"StringValue("caravan")"#.to_owned(), "caravan-platform".to_owned(), vec!["span 4.0".to_owned()]),
            ]
        );
    }

    #[test]
    fn a_request_holds_at_most_a_batch() {
        let sizes = |chunks: Vec<Chunk>| -> Vec<Vec<usize>> {
            requests(chunks, 10).into_iter().map(|r| r.into_iter().map(|c| c.count).collect()).collect()
        };
        assert_eq!(sizes(vec![chunk(0, 10), chunk(1, 10)]), [vec![10], vec![10]]);
        assert_eq!(sizes(vec![chunk(0, 3), chunk(1, 4), chunk(2, 3), chunk(3, 1)]), [vec![3, 4, 3], vec![1]]);
        assert_eq!(sizes(Vec::new()), Vec::<Vec<usize>>::new());
    }

    #[test]
    fn only_what_may_succeed_later_is_retried() {
        for code in [Code::Unavailable, Code::DeadlineExceeded, Code::Aborted, Code::Cancelled] {
            assert!(retryable(&Status::new(code, "")), "{code:?}");
        }
        for code in [Code::InvalidArgument, Code::Unauthenticated, Code::PermissionDenied, Code::Unimplemented] {
            assert!(!retryable(&Status::new(code, "")), "{code:?}");
        }
        assert!(!retryable(&Status::resource_exhausted("too big")), "no RetryInfo: never");
        let later = <Status as tonic_types::StatusExt>::with_error_details(
            Code::ResourceExhausted,
            "later",
            tonic_types::ErrorDetails::with_retry_info(Some(Duration::from_secs(1))),
        );
        assert!(retryable(&later));
    }
}
