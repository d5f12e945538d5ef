//! Live streams (WatchStock, WatchShow): one mechanism, the services only say
//! what a change is (a [`Feed`]).
//!
//! A stream first sends a snapshot, then changes, each carrying its
//! aggregate's `version` — incremented in the same statement that changes the
//! aggregate, under its row lock, so versions of one aggregate are gapless and
//! commit in order. Reading "versions after my cursor" per aggregate therefore
//! never skips a change, unlike one global auto-increment id, whose values
//! commit out of order on PostgreSQL under exactly the flash-sale load.
//!
//! One [`Hub`] per feed and replica polls the database for all its
//! subscribers at once (one query per tick, from the lowest cursor of each
//! watched aggregate) and fans the changes out. Every subscriber has a bounded
//! buffer: a state feed coalesces several changes of one aggregate into its
//! latest state; an event feed that overflows ends the stream with
//! `RESOURCE_EXHAUSTED` (the client reconnects with its cursor). A cursor older
//! than what the feed keeps is `OUT_OF_RANGE`. Streams end when the server
//! drains (`UNAVAILABLE`: reconnect elsewhere with your cursor) and after a
//! maximum lifetime (a normal end: reconnect with your cursor).

use std::{
    collections::{BTreeMap, HashMap, VecDeque},
    fmt::Debug,
    future::Future,
    hash::Hash,
    pin::Pin,
    sync::{Arc, Mutex},
    task::{Context, Poll, Waker},
    time::Duration,
};

use futures::Stream;
use tokio::sync::{Notify, mpsc};
use tokio_util::sync::CancellationToken;
use tonic::Status;

/// What a change of a watched aggregate is, and how to read them.
pub trait Feed: Send + Sync + 'static {
    /// Identifies an aggregate (a product's stock, a show).
    type Key: Clone + Eq + Hash + Ord + Debug + Send + Sync + 'static;
    /// A snapshot or a change; carries its key and version.
    type Item: Clone + Debug + Send + Sync + 'static;

    /// Whether a later item of a key replaces an earlier one not yet sent
    /// (state feeds such as stock levels). Event feeds keep every item.
    const COALESCE: bool;

    /// The key of an item.
    fn key(item: &Self::Item) -> Self::Key;

    /// The version of an item.
    fn version(item: &Self::Item) -> i64;

    /// The current state of each key (those that exist), for new subscribers.
    fn snapshot(&self, keys: &[Self::Key]) -> impl Future<Output = anyhow::Result<Vec<Self::Item>>> + Send;

    /// For each `(key, version)`, the changes after that version in version
    /// order (a state feed may answer just the latest state if it is newer).
    /// Keys whose cursor is older than what is kept are listed in `too_old`.
    fn changes(
        &self,
        after: &[(Self::Key, i64)],
    ) -> impl Future<Output = anyhow::Result<Changes<Self::Key, Self::Item>>> + Send;
}

/// An answer of [`Feed::changes`].
#[derive(Debug)]
pub struct Changes<K, I> {
    /// The changes, in version order per key.
    pub items: Vec<I>,
    /// Keys whose asked version is older than what the feed keeps.
    pub too_old: Vec<K>,
}

/// Whether an item opens the stream or follows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// State when the stream began.
    Snapshot,
    /// A change after that.
    Change,
}

/// Hub settings.
#[derive(Debug, Clone)]
pub struct HubConfig {
    /// How often the database is polled while anyone watches.
    pub poll_interval: Duration,
    /// Items a subscriber may have waiting.
    pub buffer: usize,
    /// Longest life of one stream.
    pub max_lifetime: Duration,
    /// Most keys one stream may watch.
    pub max_keys: usize,
}

impl Default for HubConfig {
    fn default() -> Self {
        HubConfig {
            poll_interval: Duration::from_millis(100),
            buffer: 1024,
            max_lifetime: Duration::from_secs(15 * 60),
            max_keys: 500,
        }
    }
}

/// One feed's poller and subscribers on this replica.
#[derive(Debug)]
pub struct Hub<F: Feed> {
    requests: mpsc::UnboundedSender<Registration<F>>,
    config: HubConfig,
    wake: Arc<Notify>,
}

impl<F: Feed> Clone for Hub<F> {
    fn clone(&self) -> Self {
        Hub { requests: self.requests.clone(), config: self.config.clone(), wake: self.wake.clone() }
    }
}

#[derive(Debug)]
struct Registration<F: Feed> {
    keys: Vec<F::Key>,
    cursors: HashMap<F::Key, i64>,
    buffer: Arc<Buffer<F>>,
}

/// A subscriber's bounded queue. The reader's waker is kept under the same
/// lock as the queue, so a push can never slip between "empty" and "asleep".
#[derive(Debug)]
struct Buffer<F: Feed> {
    state: Mutex<BufferState<F>>,
    capacity: usize,
}

#[derive(Debug)]
struct BufferState<F: Feed> {
    queue: VecDeque<(Delivery, F::Item)>,
    end: Option<Result<(), Status>>,
    closed_by_client: bool,
    waker: Option<Waker>,
}

impl<F: Feed> BufferState<F> {
    fn wake(&mut self) {
        if let Some(waker) = self.waker.take() {
            waker.wake();
        }
    }
}

impl<F: Feed> Buffer<F> {
    fn new(capacity: usize) -> Self {
        Buffer {
            state: Mutex::new(BufferState { queue: VecDeque::new(), end: None, closed_by_client: false, waker: None }),
            capacity,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BufferState<F>> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues an item; `false` if the subscriber is gone or overflowed.
    fn push(&self, delivery: Delivery, item: F::Item) -> bool {
        let mut state = self.lock();
        if state.end.is_some() || state.closed_by_client {
            return false;
        }
        if F::COALESCE {
            let key = F::key(&item);
            if let Some(slot) = state.queue.iter_mut().find(|(_, queued)| F::key(queued) == key) {
                // Stock is state: the latest level replaces the one not yet sent.
                slot.1 = item;
                state.wake();
                return true;
            }
        }
        if state.queue.len() >= self.capacity {
            state.end = Some(Err(Status::resource_exhausted(
                "this stream fell too far behind; reconnect with your last version as cursor",
            )));
            state.queue.clear();
            state.wake();
            return false;
        }
        state.queue.push_back((delivery, item));
        state.wake();
        true
    }

    fn end(&self, outcome: Result<(), Status>) {
        let mut state = self.lock();
        if state.end.is_none() {
            state.end = Some(outcome);
        }
        state.wake();
    }

    fn gone(&self) -> bool {
        let state = self.lock();
        state.closed_by_client || matches!(state.end, Some(Err(_)))
    }
}

impl<F: Feed> Hub<F> {
    /// Starts the hub's poller; it stops, ending every stream with
    /// `UNAVAILABLE`, when `shutdown` is cancelled.
    pub fn start(feed: F, config: HubConfig, shutdown: CancellationToken) -> Self {
        let (requests, inbox) = mpsc::unbounded_channel();
        let wake = Arc::new(Notify::new());
        let poller = Poller { feed, config: config.clone(), inbox, subscribers: Vec::new(), wake: wake.clone() };
        tokio::spawn(poller.run(shutdown));
        Hub { requests, config, wake }
    }

    /// Polls now rather than at the next tick (call after a local write).
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// A stream of `keys`: for each key with a cursor, the changes after it;
    /// for the others, a snapshot then the changes.
    pub fn subscribe(&self, keys: Vec<F::Key>, cursors: HashMap<F::Key, i64>) -> Result<Subscription<F>, Status> {
        if keys.is_empty() {
            return Err(crate::error::invalid_argument("keys", "watch at least one"));
        }
        if keys.len() > self.config.max_keys {
            return Err(crate::error::invalid_argument("keys", format!("watch at most {}", self.config.max_keys)));
        }
        let buffer = Arc::new(Buffer::new(self.config.buffer));
        self.requests
            .send(Registration { keys, cursors, buffer: buffer.clone() })
            .map_err(|_| Status::unavailable("the server is shutting down; reconnect elsewhere with your cursor"))?;
        self.wake.notify_one();
        let lifetime = Box::pin(tokio::time::sleep(self.config.max_lifetime));
        Ok(Subscription { buffer, lifetime })
    }
}

/// One stream: items in order, then its end.
pub struct Subscription<F: Feed> {
    buffer: Arc<Buffer<F>>,
    lifetime: Pin<Box<tokio::time::Sleep>>,
}

impl<F: Feed> Debug for Subscription<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscription").field("pending_items", &self.pending_items()).finish()
    }
}

impl<F: Feed> Subscription<F> {
    /// Items waiting to be read (bounded by the hub's buffer size).
    pub fn pending_items(&self) -> usize {
        self.buffer.lock().queue.len()
    }
}

impl<F: Feed> Stream for Subscription<F> {
    type Item = Result<(Delivery, F::Item), Status>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.lifetime.as_mut().poll(cx).is_ready() {
            self.buffer.end(Ok(()));
        }
        let mut state = self.buffer.lock();
        if let Some(item) = state.queue.pop_front() {
            return Poll::Ready(Some(Ok(item)));
        }
        match state.end.replace(Ok(())) {
            Some(Ok(())) => Poll::Ready(None),
            Some(Err(status)) => Poll::Ready(Some(Err(status))),
            None => {
                state.end = None;
                state.waker = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }
}

impl<F: Feed> Drop for Subscription<F> {
    fn drop(&mut self) {
        self.buffer.lock().closed_by_client = true;
    }
}

struct Subscriber<F: Feed> {
    cursors: BTreeMap<F::Key, i64>,
    /// Keys still waiting for their snapshot.
    unsnapshotted: Vec<F::Key>,
    buffer: Arc<Buffer<F>>,
}

struct Poller<F: Feed> {
    feed: F,
    config: HubConfig,
    inbox: mpsc::UnboundedReceiver<Registration<F>>,
    subscribers: Vec<Subscriber<F>>,
    wake: Arc<Notify>,
}

impl<F: Feed> Poller<F> {
    async fn run(mut self, shutdown: CancellationToken) {
        loop {
            while let Ok(registration) = self.inbox.try_recv() {
                self.register(registration);
            }
            self.subscribers.retain(|s| !s.buffer.gone());
            if !self.subscribers.is_empty()
                && let Err(e) = self.tick().await
            {
                tracing::warn!(error = format!("{e:#}"), "live stream poll failed; retrying");
            }
            tokio::select! {
                () = shutdown.cancelled() => break,
                () = tokio::time::sleep(self.config.poll_interval) => {}
                () = self.wake.notified() => {}
            }
        }
        self.inbox.close();
        for subscriber in self.subscribers.drain(..) {
            subscriber.buffer.end(Err(Status::unavailable("the server is shutting down; reconnect with your cursor")));
        }
        while let Ok(registration) = self.inbox.try_recv() {
            registration
                .buffer
                .end(Err(Status::unavailable("the server is shutting down; reconnect with your cursor")));
        }
    }

    fn register(&mut self, registration: Registration<F>) {
        let Registration { keys, cursors, buffer } = registration;
        let mut subscriber = Subscriber { cursors: BTreeMap::new(), unsnapshotted: Vec::new(), buffer };
        for key in keys {
            match cursors.get(&key) {
                Some(&version) => {
                    subscriber.cursors.insert(key, version);
                }
                None => subscriber.unsnapshotted.push(key),
            }
        }
        self.subscribers.push(subscriber);
    }

    async fn tick(&mut self) -> anyhow::Result<()> {
        // Snapshots for new subscribers, in the poller, so nothing can happen
        // between a snapshot and the first change it is compared with.
        for subscriber in &mut self.subscribers {
            if subscriber.unsnapshotted.is_empty() {
                continue;
            }
            let keys = std::mem::take(&mut subscriber.unsnapshotted);
            let snapshot = match self.feed.snapshot(&keys).await {
                Ok(snapshot) => snapshot,
                Err(e) => {
                    subscriber.unsnapshotted = keys;
                    return Err(e);
                }
            };
            for item in snapshot {
                subscriber.cursors.insert(F::key(&item), F::version(&item));
                subscriber.buffer.push(Delivery::Snapshot, item);
            }
            // Keys that do not exist yet start before their first version.
            for key in keys {
                subscriber.cursors.entry(key).or_insert(0);
            }
        }

        // One query for everyone: from the lowest cursor of each watched key.
        let mut lowest: BTreeMap<F::Key, i64> = BTreeMap::new();
        for subscriber in &self.subscribers {
            for (key, &version) in &subscriber.cursors {
                lowest.entry(key.clone()).and_modify(|v| *v = (*v).min(version)).or_insert(version);
            }
        }
        if lowest.is_empty() {
            return Ok(());
        }
        let after: Vec<(F::Key, i64)> = lowest.into_iter().collect();
        let Changes { items, too_old } = self.feed.changes(&after).await?;
        for subscriber in &mut self.subscribers {
            if let Some(key) = too_old.iter().find(|key| subscriber.cursors.contains_key(key)) {
                subscriber.buffer.end(Err(Status::out_of_range(format!(
                    "the changes of {key:?} after version {} are no longer kept; start again without a cursor",
                    subscriber.cursors[key]
                ))));
                continue;
            }
            for item in &items {
                let key = F::key(item);
                let version = F::version(item);
                let Some(cursor) = subscriber.cursors.get_mut(&key) else {
                    continue;
                };
                if version <= *cursor {
                    continue;
                }
                if !F::COALESCE && version != *cursor + 1 {
                    // Versions are gapless; a gap means changes were lost.
                    subscriber.buffer.end(Err(Status::data_loss(format!(
                        "{key:?} jumped from version {} to {version}; reconnect with your cursor",
                        *cursor
                    ))));
                    break;
                }
                *cursor = version;
                if !subscriber.buffer.push(Delivery::Change, item.clone()) {
                    break;
                }
            }
        }
        self.subscribers.retain(|s| !s.buffer.gone());
        Ok(())
    }
}
