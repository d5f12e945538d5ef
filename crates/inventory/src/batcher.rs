//! The hot-product batcher (ARCHITECTURE.md, "The hot product is batched, not sharded"): one-line reservations
//! of the same product in the same pool queue up, and whoever finds the
//! queue idle drains it, batch after batch, each batch one transaction
//! ([`Store::reserve_batch`]). No request waits for a timer: while one batch
//! commits, the next fills. Grants follow arrival order. A caller that gives
//! up while queued is dropped from the queue; one that gives up while its
//! batch commits has its grant released at once, so nothing is held for no
//! one. Correctness stays in the database's conditional update: replicas
//! batching side by side cannot oversell.

use std::{
    collections::{HashMap, VecDeque},
    sync::{Arc, Mutex},
};

use caravan_platform::{
    batch::{Caller, batch_span},
    telemetry::{ServiceTelemetry, Work},
    time::SharedClock,
};
use tokio::sync::oneshot;
use tonic::Status;
use tracing::Instrument as _;

use crate::store::{BatchItem, Batched, Ending, Store};

/// Which queue a reservation waits in: its pool (a show, or the general
/// pool) and its one product.
type Key = (Option<String>, String);

type Reply = Result<Batched, Status>;

struct Waiting {
    item: BatchItem,
    /// The caller, for tracing: the batch runs in the first sampled
    /// caller's trace and links to the others'; when none is sampled, in the
    /// first caller's unsampled work, and opens no span.
    caller: Caller,
    reply: oneshot::Sender<Reply>,
}

#[derive(Default)]
struct Queue {
    pending: VecDeque<Waiting>,
    draining: bool,
}

/// Batches one-line reservations per product and pool.
#[derive(Clone)]
pub struct Batcher {
    store: Store,
    clock: SharedClock,
    telemetry: ServiceTelemetry,
    max: usize,
    queues: Arc<Mutex<HashMap<Key, Arc<Mutex<Queue>>>>>,
}

impl std::fmt::Debug for Batcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Batcher").field("max", &self.max).finish_non_exhaustive()
    }
}

impl Batcher {
    /// A batcher of at most `max` reservations per transaction (1: every
    /// reservation alone, as without a batcher).
    pub fn new(store: Store, clock: SharedClock, telemetry: ServiceTelemetry, max: usize) -> Self {
        Batcher { store, clock, telemetry, max: max.max(1), queues: Arc::default() }
    }

    /// Whether reservations are batched at all.
    pub fn enabled(&self) -> bool {
        self.max > 1
    }

    /// What this batcher holds now: callers queued for a batch, and queues
    /// whose batches are running (the `inventory_batch_*` metrics add up
    /// every batcher of the process).
    pub fn load(&self) -> (usize, usize) {
        let queues = self.queues.lock().unwrap_or_else(|e| e.into_inner());
        queues.values().fold((0, 0), |(queued, draining), queue| {
            let queue = queue.lock().unwrap_or_else(|e| e.into_inner());
            (queued + queue.pending.len(), draining + usize::from(queue.draining))
        })
    }

    /// Reserves `item` (one line) in its product's next batch.
    pub async fn reserve(&self, item: BatchItem) -> Reply {
        let product = item.request.lines.first().map(|(p, _)| p.clone()).unwrap_or_default();
        let key = (item.request.show_id.clone(), product);
        let queue = {
            let mut queues = self.queues.lock().unwrap_or_else(|e| e.into_inner());
            queues.entry(key.clone()).or_default().clone()
        };
        let (reply, answer) = oneshot::channel();
        let drain = {
            let mut queue = queue.lock().unwrap_or_else(|e| e.into_inner());
            queue.pending.push_back(Waiting { item, caller: Caller::current(), reply });
            crate::metrics::queued().inc();
            !std::mem::replace(&mut queue.draining, true)
        };
        if drain {
            let batcher = self.clone();
            tokio::spawn(self.telemetry.run(async move { batcher.drain(key, queue).await }));
        }
        answer.await.unwrap_or_else(|_| Err(Status::internal("the reservation batch was dropped")))
    }

    /// Runs batches until the queue is empty.
    async fn drain(self, (show, product): Key, queue: Arc<Mutex<Queue>>) {
        loop {
            let batch: Vec<Waiting> = {
                let mut queue = queue.lock().unwrap_or_else(|e| e.into_inner());
                // Callers that gave up while queued take nothing.
                let waiting = queue.pending.len();
                queue.pending.retain(|w| !w.reply.is_closed());
                crate::metrics::queued().sub(i64::try_from(waiting - queue.pending.len()).unwrap_or(0));
                if queue.pending.is_empty() {
                    queue.draining = false;
                    return;
                }
                let n = queue.pending.len().min(self.max);
                crate::metrics::queued().sub(i64::try_from(n).unwrap_or(0));
                crate::metrics::batch_size().observe(n as f64);
                queue.pending.drain(..n).collect()
            };
            let (span, work) = batch_span(batch.iter().map(|w| &w.caller), |lead| {
                tracing::info_span!(
                    parent: lead,
                    "inventory.reserve_batch",
                    otel.kind = "internal",
                    product = %product,
                    size = batch.len()
                )
            });
            let items: Vec<BatchItem> = batch.iter().map(|w| w.item.clone()).collect();
            let reserve =
                self.store.reserve_batch(show.as_deref(), &product, &items, self.clock.now()).instrument(span);
            let outcome = Work::within(work, reserve).await;
            match outcome {
                Ok(outcome) => {
                    for (waiting, batched) in batch.into_iter().zip(outcome.items) {
                        if let Err(Ok(Batched::Granted(reservation))) = waiting.reply.send(Ok(batched)) {
                            // The caller left while its batch committed: give
                            // the hold back now rather than at its TTL.
                            if let Err(e) = self.store.release(&reservation.id, Ending::Release, self.clock.now()).await
                            {
                                tracing::warn!(reservation = %reservation.id, error = %e, "releasing an unclaimed grant");
                            }
                        }
                    }
                }
                Err(e) => {
                    let status: Status = e.into();
                    for waiting in batch {
                        let _ = waiting.reply.send(Err(status.clone()));
                    }
                }
            }
        }
    }
}
