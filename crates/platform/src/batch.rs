//! Group commit for hot paths: concurrent callers' items queue up, and
//! whoever finds the queue idle starts a drain that runs them batch after
//! batch, one call of the batch function per batch (typically one database
//! transaction or one query). No caller waits for a timer: while one batch
//! runs, the next fills, so under load a batch holds what arrived during the
//! last one, and alone a caller's batch is just its own item.
//!
//! The drain runs as a task of its own, so a caller that gives up (its
//! deadline passed, its client went away) never stops the batch that holds
//! other callers' items; a caller gone before its batch starts is skipped.
//! Inventory's hot-product batcher is the same pattern with grants to give
//! back; this one serves plain items and answers.
//!
//! A batch is part of its callers' traces ([`batch_span`], which
//! inventory's batcher uses too): it runs in the first sampled caller's
//! trace, as a span of its own under that caller's, linked to the other
//! sampled callers' spans. When no caller is sampled it runs as the first
//! caller's work, in that caller's unsampled trace, and opens no span (nine
//! batches in ten at the deployed 10 %).

use std::{
    collections::VecDeque,
    future::Future,
    pin::Pin,
    sync::{Arc, Mutex},
};

use tokio::sync::oneshot;
use tracing::{Instrument as _, instrument::WithSubscriber as _};

use crate::telemetry::{self, Work};

type BatchFn<I, O> = dyn Fn(Vec<I>) -> Pin<Box<dyn Future<Output = Vec<O>> + Send>> + Send + Sync;

struct Waiting<I, O> {
    item: I,
    caller: Caller,
    reply: oneshot::Sender<O>,
}

/// A caller waiting for a batch, as tracing sees it: its span and its work,
/// taken as it joins the queue, which decide the trace the batch runs in
/// ([`batch_span`]).
#[derive(Debug)]
pub struct Caller {
    span: tracing::Span,
    work: Option<Work>,
}

impl Caller {
    /// The caller running here.
    pub fn current() -> Self {
        Caller { span: tracing::Span::current(), work: Work::current() }
    }
}

/// The span a batch of `callers`' items runs in and the work it runs as
/// (see the module docs): `open` opens the span under the lead caller's —
/// the first sampled one, else the first — and the others sampled are
/// linked to it. When no caller's span was opened (an unsampled trace,
/// logs that want none), neither is the batch's: a disabled span and the
/// first caller's work.
pub fn batch_span<'a, I>(
    callers: I,
    open: impl FnOnce(&tracing::Span) -> tracing::Span,
) -> (tracing::Span, Option<Work>)
where
    I: IntoIterator<Item = &'a Caller>,
    I::IntoIter: Clone,
{
    let callers = callers.into_iter();
    let Some(first) = callers.clone().next() else {
        return (tracing::Span::none(), None);
    };
    if callers.clone().all(|c| c.span.is_disabled()) {
        return (tracing::Span::none(), first.work.clone());
    }
    let traced: Vec<_> = callers.map(|c| (c, telemetry::span_context(&c.span))).collect();
    let lead = traced.iter().position(|(_, context)| context.is_some()).unwrap_or(0);
    let leader = traced[lead].0;
    let work = leader.work.clone();
    let span = Work::within_sync(work.clone(), || open(&leader.span));
    for (i, (_, context)) in traced.into_iter().enumerate() {
        if let Some(context) = context.filter(|_| i != lead) {
            telemetry::add_link(&span, context);
        }
    }
    (span, work)
}

struct Queue<I, O> {
    pending: VecDeque<Waiting<I, O>>,
    draining: bool,
}

/// Runs items in batches of at most `max`; see the module docs.
pub struct Batcher<I, O> {
    queue: Arc<Mutex<Queue<I, O>>>,
    run: Arc<BatchFn<I, O>>,
    max: usize,
    name: &'static str,
}

impl<I, O> Clone for Batcher<I, O> {
    fn clone(&self) -> Self {
        Batcher { queue: self.queue.clone(), run: self.run.clone(), max: self.max, name: self.name }
    }
}

impl<I, O> std::fmt::Debug for Batcher<I, O> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Batcher").field("name", &self.name).field("max", &self.max).finish_non_exhaustive()
    }
}

/// The batch was dropped before it answered (its task panicked, or the
/// runtime is shutting down).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the batch holding this item was dropped")]
pub struct Dropped;

impl<I: Send + 'static, O: Send + 'static> Batcher<I, O> {
    /// A batcher of at most `max` items per batch (at least 1), whose
    /// batches' spans are called `name`. `run` gets a batch's items in
    /// arrival order and answers one output per item, in the same order; a
    /// short answer drops the rest (they get [`Dropped`]).
    pub fn new<F, Fut>(name: &'static str, max: usize, run: F) -> Self
    where
        F: Fn(Vec<I>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Vec<O>> + Send + 'static,
    {
        Batcher {
            queue: Arc::new(Mutex::new(Queue { pending: VecDeque::new(), draining: false })),
            run: Arc::new(move |items| Box::pin(run(items))),
            max: max.max(1),
            name,
        }
    }

    /// Runs `item` in the next batch and answers its output.
    pub async fn submit(&self, item: I) -> Result<O, Dropped> {
        let (reply, answer) = oneshot::channel();
        let drain = {
            let mut queue = self.queue.lock().unwrap_or_else(|e| e.into_inner());
            queue.pending.push_back(Waiting { item, caller: Caller::current(), reply });
            !std::mem::replace(&mut queue.draining, true)
        };
        if drain {
            // Under the caller's subscriber, so the batch's own spans and
            // logs go where the service's do.
            tokio::spawn(self.clone().drain().with_current_subscriber());
        }
        answer.await.map_err(|_| Dropped)
    }

    async fn drain(self) {
        loop {
            let batch: Vec<Waiting<I, O>> = {
                let mut queue = self.queue.lock().unwrap_or_else(|e| e.into_inner());
                queue.pending.retain(|w| !w.reply.is_closed());
                if queue.pending.is_empty() {
                    queue.draining = false;
                    return;
                }
                let n = queue.pending.len().min(self.max);
                queue.pending.drain(..n).collect()
            };
            let (span, work) = batch_span(batch.iter().map(|w| &w.caller), |lead| {
                tracing::info_span!(
                    parent: lead,
                    "batch",
                    otel.name = self.name,
                    otel.kind = "internal",
                    size = batch.len()
                )
            });
            let (items, replies): (Vec<I>, Vec<oneshot::Sender<O>>) =
                batch.into_iter().map(|w| (w.item, w.reply)).unzip();
            let outputs = Work::within(work, (self.run)(items).instrument(span)).await;
            for (reply, output) in replies.into_iter().zip(outputs) {
                // A caller gone meanwhile no longer wants its answer.
                let _ = reply.send(output);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::{
        sync::atomic::{AtomicUsize, Ordering},
        time::Duration,
    };

    use opentelemetry::trace::{SpanContext, TraceId};

    use super::*;
    use crate::{
        config::{LogConfig, LogFormat, ServiceKind},
        telemetry::ServiceTelemetry,
    };

    #[tokio::test]
    async fn concurrent_items_share_batches_and_each_gets_its_own_answer() {
        let batches = Arc::new(Mutex::new(Vec::<usize>::new()));
        let seen = batches.clone();
        let batcher = Batcher::new("test", 8, move |items: Vec<u32>| {
            let seen = seen.clone();
            async move {
                seen.lock().unwrap_or_else(|e| e.into_inner()).push(items.len());
                tokio::time::sleep(Duration::from_millis(20)).await;
                items.into_iter().map(|i| i * 10).collect::<Vec<_>>()
            }
        });
        let answers = futures::future::join_all((0..20u32).map(|i| {
            let batcher = batcher.clone();
            async move { batcher.submit(i).await }
        }))
        .await;
        let answers: Vec<u32> = answers.into_iter().map(|a| a.unwrap_or(u32::MAX)).collect();
        assert_eq!(answers, (0..20).map(|i| i * 10).collect::<Vec<_>>());
        let batches = batches.lock().unwrap_or_else(|e| e.into_inner()).clone();
        assert_eq!(batches.iter().sum::<usize>(), 20);
        assert!(batches.iter().all(|n| *n <= 8), "{batches:?}");
        assert!(batches.len() < 20, "items waiting behind a batch share the next one: {batches:?}");
    }

    #[tokio::test]
    async fn a_caller_that_leaves_does_not_stop_the_others_batch() {
        let ran = Arc::new(AtomicUsize::new(0));
        let counted = ran.clone();
        let batcher = Batcher::new("test", 4, move |items: Vec<u32>| {
            let counted = counted.clone();
            async move {
                tokio::time::sleep(Duration::from_millis(30)).await;
                counted.fetch_add(items.len(), Ordering::SeqCst);
                items
            }
        });
        // The first caller starts the drain, then gives up.
        let first = batcher.clone();
        let leaving = tokio::spawn(async move { first.submit(1).await });
        tokio::time::sleep(Duration::from_millis(5)).await;
        let staying = batcher.submit(2);
        leaving.abort();
        assert_eq!(staying.await, Ok(2));
        assert_eq!(ran.load(Ordering::SeqCst), 2, "the drain ran both items although its starter left");
    }

    /// Three callers in one batch, each in the trace `parent` continues
    /// (`None`: a new, sampled one); what the batch exported, and the trace
    /// its work ran in.
    async fn one_batch(
        parents: [Option<SpanContext>; 3],
    ) -> ([Option<SpanContext>; 3], Vec<opentelemetry_proto::tonic::trace::v1::Span>, TraceId) {
        let log = LogConfig { format: LogFormat::Pretty, filter: "off".into() };
        let (telemetry, collector) = ServiceTelemetry::collecting(ServiceKind::Orders, &log).unwrap();
        let ran_in = Arc::new(Mutex::new(Vec::new()));
        let seen = ran_in.clone();
        let batcher = Batcher::new("test.batch", 8, move |items: Vec<u32>| {
            let seen = seen.clone();
            async move {
                let trace = telemetry::current_trace_context().map(|c| c.trace_id());
                seen.lock().unwrap_or_else(|e| e.into_inner()).push(trace);
                tracing::info_span!("db", otel.name = "test write").in_scope(|| items)
            }
        });
        let calls = parents.map(|parent| {
            let (span, work) = tracing::dispatcher::with_default(&telemetry.dispatch, || {
                telemetry::span_in_trace(parent.as_ref(), ServiceKind::Orders, || tracing::info_span!("call"))
            });
            let context = tracing::dispatcher::with_default(&telemetry.dispatch, || {
                telemetry::span_context(&span).or_else(|| work.unsampled().cloned())
            });
            let batcher = batcher.clone();
            (context, telemetry.run_as(Some(work), async move { batcher.submit(7).await }.instrument(span)))
        });
        let (contexts, calls): (Vec<_>, Vec<_>) = calls.into_iter().unzip();
        let answers = futures::future::join_all(calls).await;
        assert_eq!(answers, [Ok(7), Ok(7), Ok(7)]);
        let ran_in = ran_in.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let [Some(trace)] = ran_in.as_slice() else { panic!("one batch, in a trace: {ran_in:?}") };
        let contexts: [Option<SpanContext>; 3] = contexts.try_into().unwrap_or_else(|_| unreachable!());
        (contexts, collector.spans(), *trace)
    }

    fn unsampled() -> Option<SpanContext> {
        use opentelemetry::trace::{TraceFlags, TraceState};
        let ids = opentelemetry_sdk::trace::RandomIdGenerator::default();
        use opentelemetry_sdk::trace::IdGenerator as _;
        Some(SpanContext::new(ids.new_trace_id(), ids.new_span_id(), TraceFlags::NOT_SAMPLED, true, TraceState::NONE))
    }

    #[tokio::test]
    async fn a_batch_runs_in_its_first_sampled_callers_trace_linked_to_the_others() {
        let ([first, second, third], spans, ran_in) = one_batch([unsampled(), None, None]).await;
        let (first, second, third) = (first.unwrap(), second.unwrap(), third.unwrap());
        assert!(!first.is_sampled() && second.is_sampled() && third.is_sampled());
        assert_eq!(ran_in, second.trace_id(), "the first sampled caller's trace");
        let batch = spans.iter().find(|s| s.name == "test.batch").expect("the batch's span");
        assert_eq!(batch.trace_id, second.trace_id().to_bytes());
        assert_eq!(batch.parent_span_id, second.span_id().to_bytes(), "under that caller's span");
        let links: Vec<_> = batch.links.iter().map(|l| (l.trace_id.clone(), l.span_id.clone())).collect();
        assert_eq!(
            links,
            [(third.trace_id().to_bytes().to_vec(), third.span_id().to_bytes().to_vec())],
            "linked to the other sampled caller, not to the unsampled one"
        );
        assert!(spans.iter().any(|s| s.name == "test write" && s.parent_span_id == batch.span_id), "its work within");
        assert!(!spans.iter().any(|s| s.trace_id == first.trace_id().to_bytes()), "nothing in the unsampled trace");
    }

    #[tokio::test]
    async fn a_batch_of_unsampled_callers_runs_in_the_first_ones_trace_and_opens_no_span() {
        let ([first, _, _], spans, ran_in) = one_batch([unsampled(), unsampled(), unsampled()]).await;
        assert_eq!(ran_in, first.unwrap().trace_id(), "the first caller's unsampled trace");
        assert_eq!(spans.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(), Vec::<&str>::new());
    }

    #[tokio::test]
    async fn a_short_answer_drops_the_rest() {
        let batcher = Batcher::new("test", 4, |_items: Vec<u32>| async { Vec::<u32>::new() });
        assert_eq!(batcher.submit(1).await, Err(Dropped));
    }
}
