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

use std::{
    collections::VecDeque,
    future::Future,
    pin::Pin,
    sync::{Arc, Mutex},
};

use tokio::sync::oneshot;
use tracing::instrument::WithSubscriber as _;

type BatchFn<I, O> = dyn Fn(Vec<I>) -> Pin<Box<dyn Future<Output = Vec<O>> + Send>> + Send + Sync;

struct Waiting<I, O> {
    item: I,
    reply: oneshot::Sender<O>,
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
}

impl<I, O> Clone for Batcher<I, O> {
    fn clone(&self) -> Self {
        Batcher { queue: self.queue.clone(), run: self.run.clone(), max: self.max }
    }
}

impl<I, O> std::fmt::Debug for Batcher<I, O> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Batcher").field("max", &self.max).finish_non_exhaustive()
    }
}

/// The batch was dropped before it answered (its task panicked, or the
/// runtime is shutting down).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the batch holding this item was dropped")]
pub struct Dropped;

impl<I: Send + 'static, O: Send + 'static> Batcher<I, O> {
    /// A batcher of at most `max` items per batch (at least 1). `run` gets a
    /// batch's items in arrival order and answers one output per item, in
    /// the same order; a short answer drops the rest (they get [`Dropped`]).
    pub fn new<F, Fut>(max: usize, run: F) -> Self
    where
        F: Fn(Vec<I>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Vec<O>> + Send + 'static,
    {
        Batcher {
            queue: Arc::new(Mutex::new(Queue { pending: VecDeque::new(), draining: false })),
            run: Arc::new(move |items| Box::pin(run(items))),
            max: max.max(1),
        }
    }

    /// Runs `item` in the next batch and answers its output.
    pub async fn submit(&self, item: I) -> Result<O, Dropped> {
        let (reply, answer) = oneshot::channel();
        let drain = {
            let mut queue = self.queue.lock().unwrap_or_else(|e| e.into_inner());
            queue.pending.push_back(Waiting { item, reply });
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
            let (items, replies): (Vec<I>, Vec<oneshot::Sender<O>>) =
                batch.into_iter().map(|w| (w.item, w.reply)).unzip();
            let outputs = (self.run)(items).await;
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

    use super::*;

    #[tokio::test]
    async fn concurrent_items_share_batches_and_each_gets_its_own_answer() {
        let batches = Arc::new(Mutex::new(Vec::<usize>::new()));
        let seen = batches.clone();
        let batcher = Batcher::new(8, move |items: Vec<u32>| {
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
        let batcher = Batcher::new(4, move |items: Vec<u32>| {
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

    #[tokio::test]
    async fn a_short_answer_drops_the_rest() {
        let batcher = Batcher::new(4, |_items: Vec<u32>| async { Vec::<u32>::new() });
        assert_eq!(batcher.submit(1).await, Err(Dropped));
    }
}
