//! This replica's memory of what each live show has left (the "sell-out
//! storm"), so a crowd pressing buy after an offer sold out is answered from
//! memory: no database write, no call to another service.
//!
//! **The signal.** The first order of a show that passes scheduling's checks
//! (the show is live, the products on its line-up) starts a WatchStock
//! subscription to that show's allocation lines (the products ordered so
//! far; a new product restarts it with the cursors kept). Every change of a line reaches
//! every replica's subscription within inventory's poll interval (100 ms), and
//! each replica keeps the latest `available` of each line it has heard of.
//!
//! **Exactness.** Inventory's conditional UPDATE still decides every
//! reservation; the memory only refuses what inventory would refuse. It may
//! be late to learn of a sell-out (an order then costs one refused
//! reservation), but never late to learn units came back: every change —
//! a cancellation, an expiry, a raised allocation — has a newer version, and
//! the stream delivers it. Inventory's own refusal sets the level early, but
//! only if the line's version has not moved since the reservation was sent:
//! a refusal can then be no older than what the memory holds, and the stream
//! replaces it with the next change. When the stream breaks, the show's
//! levels are forgotten (every order goes to inventory again) until it is
//! back; a closed allocation (the show ended) is never used to refuse, so
//! such orders hear `SHOW_NOT_LIVE` from the full path. A show nobody has
//! ordered from for [`IDLE`] is unsubscribed.
//!
//! **Retries.** A retry of an order placed before the sell-out must get its
//! order, not a refusal. After an offer's level drops, the first refusal
//! that needs to know starts one read of the show's request keys (the
//! partner and request id of each order, digested); from then on the memory
//! answers. The read covers every order written before the drop: such an
//! order committed before inventory sold the units the drop reports, which
//! is before the stream told the memory, which is before the read began.
//! Until the read is done, the request id's record is asked instead.
//!
//! **Demand.** Refusals for lack of stock — from memory or from inventory —
//! are counted per offer in memory, with the first sell-out seen (a refusal,
//! or the stream taking a line to 0), and added to `offer_demand` at most
//! once a second per replica.

use std::{
    collections::{BTreeSet, HashMap},
    sync::{Arc, Mutex},
    time::Duration,
};

use caravan_platform::{CancellationToken, telemetry::ServiceTelemetry, time::SharedClock};
use futures::StreamExt as _;
use tokio::{sync::Notify, time::Instant};

use crate::{
    store::{Demand, Store},
    upstream::{ShowStock, Upstream},
};

/// A show nobody has ordered from for this long is unsubscribed.
pub const IDLE: Duration = Duration::from_secs(60);
/// How often refusals are added to `offer_demand`.
pub const FLUSH_EVERY: Duration = Duration::from_secs(1);
/// The longest wait before subscribing again after a failure.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// A line of an order the show is known to be short of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shortage {
    /// Product id.
    pub product: String,
    /// Units asked for.
    pub requested: i64,
    /// Units the show has left.
    pub available: i64,
}

/// What the memory knows of one line: inventory's level at `version`, and
/// how often it has gone down since the subscription began.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Level {
    version: i64,
    available: i64,
    closed: bool,
    drops: u64,
}

/// What a request was to a show, as far as the memory knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placed {
    /// The request placed no order in the show.
    Nothing,
    /// It placed this very order (a retry).
    This,
    /// Its request id placed another order (another body).
    Another,
}

#[derive(Debug)]
struct ShowState {
    /// Product ids the subscription covers (or will, at its next start).
    watched: BTreeSet<String>,
    /// What the current subscription has said, per product id.
    levels: HashMap<String, Level>,
    last_used: Instant,
    /// Every line is closed: the show is over and no longer watched.
    over: bool,
    /// The partner whose channel carries the show, as scheduling last said:
    /// only its orders are refused from memory (another partner's go on to
    /// be refused by the saga for ordering in a show not theirs).
    partner: String,
    /// The show's orders by request key: each order id.
    requests: HashMap<String, String>,
    /// Per product, the `drops` of its line when the request keys were last
    /// read: they cover every order written before that drop.
    covered: HashMap<String, u64>,
    /// When the last read of request keys began (the next reads from there,
    /// less [`SellOut`]'s margin).
    listed_since: Option<caravan_platform::time::Micros>,
    /// A read of request keys is under way.
    listing: bool,
}

#[derive(Debug)]
struct Show {
    state: Mutex<ShowState>,
    /// A product was added: subscribe again with it.
    grew: Notify,
}

impl ShowState {
    /// Forgets what the subscription said (it broke): every order goes to
    /// inventory again, and request keys must be read again before a
    /// refusal trusts them (a line's drops start afresh).
    fn forget_levels(&mut self) {
        self.levels.clear();
        self.covered.clear();
    }
}

impl Show {
    fn state(&self) -> std::sync::MutexGuard<'_, ShowState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[derive(Debug)]
struct Inner {
    upstream: Upstream,
    store: Store,
    /// How long before its commit an order may have been created (twice the
    /// call limit): a read of request keys starts that far before the last.
    margin: Duration,
    clock: SharedClock,
    background: CancellationToken,
    telemetry: ServiceTelemetry,
    shows: Mutex<HashMap<String, Arc<Show>>>,
    /// Refusals not yet written, per show id and product id (nested, so a
    /// count looks its offer up without building a key).
    demand: Mutex<HashMap<String, HashMap<String, Demand>>>,
}

/// The memory of one orders replica; cheap to clone.
#[derive(Debug, Clone)]
pub struct SellOut {
    inner: Arc<Inner>,
}

impl SellOut {
    /// The memory, subscribing through `upstream`, with its demand written
    /// to `store` every [`FLUSH_EVERY`] until `background` is cancelled
    /// (and once more then).
    pub fn start(
        upstream: Upstream,
        store: Store,
        margin: Duration,
        clock: SharedClock,
        background: CancellationToken,
        telemetry: ServiceTelemetry,
    ) -> Self {
        let inner = Arc::new(Inner {
            upstream,
            store: store.clone(),
            margin,
            clock,
            background,
            telemetry,
            shows: Mutex::default(),
            demand: Mutex::default(),
        });
        let flusher = inner.clone();
        tokio::spawn(inner.telemetry.run(async move { flush_demand(flusher, store).await }));
        SellOut { inner }
    }

    fn shows(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<Show>>> {
        self.inner.shows.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The first of `lines` (product id, units) that show `show` (its id)
    /// is known to have too few units of; `None` when every line may be
    /// had, or the memory does not know.
    pub fn shortage(&self, show: &str, partner: &str, lines: &[(String, i64)]) -> Option<Shortage> {
        let watch = self.shows().get(show).cloned()?;
        let mut state = watch.state();
        if state.over || state.partner != partner {
            return None;
        }
        state.last_used = Instant::now();
        lines.iter().find_map(|(product, requested)| {
            let level = state.levels.get(product)?;
            (!level.closed && level.available < *requested).then(|| Shortage {
                product: product.clone(),
                requested: *requested,
                available: level.available,
            })
        })
    }

    /// Follows `products` (ids) of live show `show`, carried on a channel of
    /// `partner`, from now on, if it does not yet: called once an order
    /// passed scheduling's checks, so only live shows and their offers are
    /// ever watched.
    pub fn watch(&self, show: &str, partner: &str, products: &[String]) {
        if products.is_empty() {
            return;
        }
        let mut shows = self.shows();
        if let Some(watch) = shows.get(show).cloned() {
            drop(shows);
            let mut state = watch.state();
            if state.partner != partner {
                partner.clone_into(&mut state.partner);
            }
            let mut grew = false;
            for product in products {
                grew |= state.watched.insert(product.clone());
            }
            drop(state);
            if grew {
                watch.grew.notify_one();
            }
            return;
        }
        let watch = Arc::new(Show {
            state: Mutex::new(ShowState {
                watched: products.iter().cloned().collect(),
                levels: HashMap::new(),
                last_used: Instant::now(),
                over: false,
                partner: partner.to_owned(),
                requests: HashMap::new(),
                covered: HashMap::new(),
                listed_since: None,
                listing: false,
            }),
            grew: Notify::new(),
        });
        shows.insert(show.to_owned(), watch.clone());
        drop(shows);
        let (inner, show) = (self.inner.clone(), show.to_owned());
        tokio::spawn(self.inner.telemetry.run(async move { subscribe(inner, show, watch).await }));
    }

    /// Whether the request `request_key` placed an order in `show` (its id)
    /// — order `order_id`, or another — as far as every order written
    /// before `product` last ran short is known; `None` while that is not
    /// known yet (a read of the show's request keys starts, and meanwhile
    /// the request id's record tells).
    ///
    /// Exact: an order written before the offer's last drop committed
    /// before inventory sold the units the drop reports, hence before the
    /// memory heard of it, hence before a read that began after that.
    pub fn placed(&self, show: &str, product: &str, request_key: &str, order_id: &str) -> Option<Placed> {
        let watch = self.shows().get(show).cloned()?;
        let mut state = watch.state();
        let drops = state.levels.get(product)?.drops;
        if state.covered.get(product) == Some(&drops) {
            return Some(match state.requests.get(request_key) {
                None => Placed::Nothing,
                Some(id) if id == order_id => Placed::This,
                Some(_) => Placed::Another,
            });
        }
        let start = !std::mem::replace(&mut state.listing, true);
        drop(state);
        if start {
            let (inner, show) = (self.inner.clone(), show.to_owned());
            tokio::spawn(self.inner.telemetry.run(async move { list_requests(inner, show, watch).await }));
        }
        None
    }

    /// The version of `product`'s line the memory holds for `show`, to hand
    /// back with inventory's refusal ([`Self::refused`]).
    pub fn version(&self, show: &str, product: &str) -> Option<i64> {
        let watch = self.shows().get(show).cloned()?;
        watch.state().levels.get(product).map(|l| l.version)
    }

    /// Inventory refused a reservation of `product` in `show` with
    /// `available` left, for a reservation sent when the memory held
    /// `version` of the line: the level is lowered unless the line has
    /// changed since (then the stream already knows better).
    pub fn refused(&self, show: &str, product: &str, available: i64, version: Option<i64>) {
        let Some(watch) = self.shows().get(show).cloned() else { return };
        let mut state = watch.state();
        if let Some(level) = state.levels.get_mut(product)
            && Some(level.version) == version
            && available.max(0) < level.available
        {
            level.available = available.max(0);
            level.drops += 1;
        }
    }

    /// An order attempt for `units` of `product` in `show` (ids) was turned
    /// away for lack of stock: counted, and the offer's sell-out dated.
    pub fn turned_away(&self, show: &str, product: &str, units: i64) {
        let demand = Demand { turned_away: 1, units, sold_out_at: Some(self.inner.clock.now()) };
        self.inner.add_demand(show, product, demand);
    }
}

impl Inner {
    fn add_demand(&self, show: &str, product: &str, demand: Demand) {
        let mut pending = self.demand.lock().unwrap_or_else(|e| e.into_inner());
        let offers = match pending.get_mut(show) {
            Some(offers) => offers,
            None => pending.entry(show.to_owned()).or_default(),
        };
        match offers.get_mut(product) {
            Some(counted) => counted.merge(demand),
            None => {
                offers.insert(product.to_owned(), demand);
            }
        }
    }
}

/// Keeps `show`'s subscription running until the show goes idle, every line
/// closes, or the service stops.
async fn subscribe(inner: Arc<Inner>, show_id: String, show: Arc<Show>) {
    let mut backoff = Duration::from_millis(100);
    loop {
        if inner.background.is_cancelled() || retire_if_idle(&inner, &show_id, &show) {
            return;
        }
        let (products, cursors): (Vec<String>, Vec<(String, i64)>) = {
            let state = show.state();
            let cursors = state.levels.iter().map(|(p, l)| (p.clone(), l.version)).collect();
            (state.watched.iter().cloned().collect(), cursors)
        };
        let mut stream = match inner.upstream.watch_show(&show_id, &products, &cursors).await {
            Ok(stream) => stream,
            Err(status) => {
                tracing::debug!(show = %show_id, code = ?status.code(), message = status.message(), "cannot watch the show's stock yet");
                show.state().forget_levels();
                tokio::select! {
                    () = inner.background.cancelled() => return,
                    () = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(MAX_BACKOFF);
                continue;
            }
        };
        let mut idle_check = tokio::time::interval(IDLE / 4);
        idle_check.tick().await;
        loop {
            tokio::select! {
                () = inner.background.cancelled() => return,
                () = show.grew.notified() => break,
                _ = idle_check.tick() => {
                    if retire_if_idle(&inner, &show_id, &show) {
                        return;
                    }
                }
                message = stream.next() => match message {
                    Some(Ok(line)) => {
                        backoff = Duration::from_millis(100);
                        if learn(&inner, &show_id, &show, line) {
                            // Every line is closed: the show is over. Its
                            // entry stays, so later orders (answered
                            // SHOW_NOT_LIVE by the full path) start nothing.
                            show.state().over = true;
                            return;
                        }
                    }
                    Some(Err(status)) => {
                        // Not knowing is safe; a stale "sold out" is not.
                        tracing::debug!(show = %show_id, code = ?status.code(), message = status.message(), "the show's stock stream broke");
                        show.state().forget_levels();
                        break;
                    }
                    // Inventory ended the stream at its lifetime: resume at once.
                    None => break,
                },
            }
        }
    }
}

/// Takes a line's new level; `true` when every watched line is closed.
fn learn(inner: &Inner, show_id: &str, show: &Show, line: ShowStock) -> bool {
    let ShowStock { product, available, closed, version } = line;
    if version == 0 {
        // Never allocated to the show: not a sell-out. The full path
        // answers NOT_ON_LINE_UP; an allocation made later has a version.
        return false;
    }
    let mut state = show.state();
    let before = state.levels.get(&product).copied();
    if before.is_some_and(|b| b.version > version) {
        return false;
    }
    let drops = match before {
        Some(b) if available < b.available => b.drops + 1,
        Some(b) => b.drops,
        None => 0,
    };
    state.levels.insert(product.clone(), Level { version, available, closed, drops });
    let all_closed = state.watched.iter().all(|p| state.levels.get(p).is_some_and(|l| l.closed));
    drop(state);
    // Seen going to 0 (not a snapshot already at 0, whose moment is unknown).
    if available == 0 && !closed && before.is_some_and(|b| b.available > 0) {
        let demand = Demand { turned_away: 0, units: 0, sold_out_at: Some(inner.clock.now()) };
        inner.add_demand(show_id, &product, demand);
    }
    all_closed
}

/// Reads the request keys of `show`'s orders written since the last read
/// (less the margin), and marks every line as covered up to the drops it
/// had when the read began.
async fn list_requests(inner: Arc<Inner>, show_id: String, show: Arc<Show>) {
    let (covered, since) = {
        let state = show.state();
        let covered: HashMap<String, u64> = state.levels.iter().map(|(p, l)| (p.clone(), l.drops)).collect();
        let margin = i64::try_from(inner.margin.as_micros()).unwrap_or(i64::MAX);
        let since = state.listed_since.map_or(0, |at| at.0.saturating_sub(margin));
        (covered, since)
    };
    let began = inner.clock.now();
    let listed = inner.store.request_keys(&format!("shows/{show_id}"), caravan_platform::time::Micros(since)).await;
    let mut state = show.state();
    state.listing = false;
    match listed {
        Ok(requests) => {
            state.requests.extend(requests);
            state.covered = covered;
            state.listed_since = Some(began);
        }
        Err(e) => {
            tracing::warn!(show = %show_id, error = %e, "reading a show's request keys; the next refusal asks again")
        }
    }
}

/// Removes `show` if nobody ordered from it for [`IDLE`]; `true` if it did.
fn retire_if_idle(inner: &Inner, show_id: &str, show: &Arc<Show>) -> bool {
    let mut shows = inner.shows.lock().unwrap_or_else(|e| e.into_inner());
    if show.state().last_used.elapsed() < IDLE {
        return false;
    }
    if shows.get(show_id).is_some_and(|s| Arc::ptr_eq(s, show)) {
        shows.remove(show_id);
    }
    true
}

/// Writes the counted demand every [`FLUSH_EVERY`], and once more at the end.
async fn flush_demand(inner: Arc<Inner>, store: Store) {
    let mut ticker = tokio::time::interval(FLUSH_EVERY);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let stopping = tokio::select! {
            () = inner.background.cancelled() => true,
            _ = ticker.tick() => false,
        };
        let pending: Vec<((String, String), Demand)> =
            std::mem::take(&mut *inner.demand.lock().unwrap_or_else(|e| e.into_inner()))
                .into_iter()
                .flat_map(|(show, offers)| {
                    offers.into_iter().map(move |(product, demand)| {
                        ((format!("shows/{show}"), format!("products/{product}")), demand)
                    })
                })
                .collect();
        if !pending.is_empty()
            && let Err(e) = store.add_demand(&pending).await
        {
            tracing::warn!(error = %e, offers = pending.len(), "recording demand failed; keeping it for the next try");
            for ((show, product), demand) in pending {
                inner.add_demand(show.trim_start_matches("shows/"), product.trim_start_matches("products/"), demand);
            }
        }
        if stopping {
            return;
        }
    }
}
