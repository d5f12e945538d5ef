//! The order saga (ARCHITECTURE.md, code map of `crates/orders`): every step of PlaceOrder,
//! ConfirmPayment and CancelOrder, and the steps the order driver re-drives.
//!
//! There is no distributed transaction. Each step is one conditional change
//! in orders' database or one idempotent call keyed by the order id
//! (reservation id = order id), so running a step twice is harmless and a
//! crash between any two steps converges:
//!
//! - PlaceOrder writes the order PENDING (due for recovery at twice the call
//!   limit) with its request id's claim, reserves, then moves it to
//!   AWAITING_PAYMENT with the reply recorded under the claim — two commits,
//!   the second shared by concurrent orders. Refused by inventory, the order
//!   is forgotten (deleted with its claim): a refusal leaves no row, and a
//!   retry is evaluated afresh. A retry of an order that exists finds it and
//!   resumes it. An offer this replica knows is sold out is refused before
//!   any of this, from memory ([`crate::sellout`]).
//! - Recovery rejects an order still PENDING at its recovery time *first*
//!   and only then releases its hold, so an order the partner was told failed
//!   can never be left holding stock, and a late ReserveStock meets a
//!   released reservation (inventory's tombstone) and fails.
//! - ConfirmPayment records the payment reference before it commits, so a
//!   payment cut short is finished by a retry, or by the driver when it finds
//!   the reservation already committed.
//! - When two actors race (a retry and recovery, a payment and expiry), the
//!   conditional state change picks one; the other reads what the order is
//!   now and answers that.

use std::{collections::HashMap, time::Duration};

use caravan_platform::{
    error::{Reason, failed_precondition, invalid_argument, reason_of},
    failpoint::Failpoints,
    idempotency::{Claim, Idempotency},
    time::{Micros, SharedClock},
};
use tonic::Status;

use crate::{
    domain::{Order, OrderLine, OrderState},
    error::Error,
    sellout::{Placed, SellOut, Shortage},
    store::{BuyerLimits, StateChange, Store},
    upstream::{LiveShow, Refusal, Upstream},
};

/// The saga's timings.
#[derive(Debug, Clone, Copy)]
pub struct Timers {
    /// The longest a PlaceOrder call runs.
    pub call_limit: Duration,
    /// How long a buyer has to pay.
    pub payment_window: Duration,
    /// How long inventory holds the stock: longer than the payment window
    /// plus the call limit, so every payment made in time finds its hold.
    pub reservation_ttl: Duration,
}

impl Timers {
    /// When a PENDING order is recovered: twice the call limit after it was
    /// written — the call limit, plus as much again for the partner's
    /// retries to resume it.
    pub fn recover_at(&self, order: &Order) -> Micros {
        order.create_time.plus(self.call_limit * 2)
    }
}

/// An order as PlaceOrder was asked for it, validated.
#[derive(Debug, Clone)]
pub struct NewOrder {
    /// Its id (derived from the partner's request id, or generated).
    pub id: String,
    /// Which request placed it: the partner and its request id, digested;
    /// `None` without a request id.
    pub request_key: Option<String>,
    /// The partner's request id, or empty.
    pub request_id: String,
    /// The partner placing it.
    pub partner: String,
    /// The partner's buyer reference.
    pub buyer: String,
    /// The show id, if any.
    pub show: Option<String>,
    /// Product ids and quantities, each product once.
    pub lines: Vec<(String, i64)>,
}

/// The steps, over orders' store and the channels to the services it calls.
#[derive(Debug, Clone)]
pub struct Saga {
    store: Store,
    upstream: Upstream,
    sellout: SellOut,
    idempotency: Idempotency,
    clock: SharedClock,
    failpoints: Failpoints,
    timers: Timers,
}

/// What the saga runs on.
#[derive(Debug, Clone)]
pub struct Parts {
    /// Orders' store.
    pub store: Store,
    /// Channels to the services it calls.
    pub upstream: Upstream,
    /// The memory of what live shows have left.
    pub sellout: SellOut,
    /// Request ids (claims written with the order).
    pub idempotency: Idempotency,
    /// The time.
    pub clock: SharedClock,
    /// Crash drills.
    pub failpoints: Failpoints,
    /// The timings.
    pub timers: Timers,
}

/// A refusal on state; `subject` (`orders/{id}`, `products/{id}`, …) is in
/// the metadata under its singular key, `extra` with it.
fn precondition(reason: Reason, subject: &str, message: String, extra: &[(&str, &str)]) -> Status {
    let metadata = extra.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect::<HashMap<_, _>>();
    failed_precondition(reason, subject, message, metadata)
}

fn rejected(order: &Order) -> Status {
    precondition(
        Reason::OrderRejected,
        &format!("orders/{}", order.id),
        format!("orders/{} was rejected: {}", order.id, order.state_reason),
        &[],
    )
}

/// What an `INSUFFICIENT_STOCK` refusal of inventory says: the product
/// (its id), the units asked for and those left.
fn shortage_of(status: &Status) -> Option<Shortage> {
    use tonic_types::StatusExt as _;
    let details = status.get_error_details();
    let info = details.error_info()?;
    if Reason::from_str_name(&info.reason) != Some(Reason::InsufficientStock) {
        return None;
    }
    let product = info.metadata.get("product")?;
    Some(Shortage {
        product: product.strip_prefix("products/").unwrap_or(product).to_owned(),
        requested: info.metadata.get("requested")?.parse().ok()?,
        available: info.metadata.get("available")?.parse().ok()?,
    })
}

/// Encodes the answer to an accepted order, to record under its request id.
pub type Reply<'a> = &'a (dyn Fn(&Order) -> Vec<u8> + Sync);

/// A callee's answer as the partner sees it: refusals as they are, transient
/// failures as `UNAVAILABLE` (retry with the same request id).
pub fn upstream_status(refusal: Refusal) -> Status {
    match refusal {
        Refusal::Final(status) => status,
        Refusal::Transient(status) => {
            tracing::warn!(code = ?status.code(), message = status.message(), "a call of the order saga failed");
            Status::unavailable("a service the order needs did not answer; retry with the same request_id")
        }
    }
}

/// Inventory's refusal of a reservation as the partner is told it: a closed
/// allocation means the show has ended (EndShow closes it before the show
/// leaves LIVE, so an order refused so was placed as the show closed).
fn partner_facing(status: Status, show: Option<&str>) -> Status {
    match (reason_of(&status), show) {
        (Some(Reason::AllocationClosed), Some(show)) => precondition(
            Reason::ShowNotLive,
            &format!("shows/{show}"),
            format!("shows/{show} is not live: it has ended"),
            &[],
        ),
        _ => status,
    }
}

/// A transient failure of a background step, to be retried by the driver.
fn transient(step: &str, refusal: Refusal) -> anyhow::Error {
    match refusal {
        Refusal::Final(status) | Refusal::Transient(status) => {
            anyhow::anyhow!("{step}: {:?}: {}", status.code(), status.message())
        }
    }
}

impl Saga {
    /// The saga over its parts.
    pub fn new(parts: Parts) -> Self {
        let Parts { store, upstream, sellout, idempotency, clock, failpoints, timers } = parts;
        Saga { store, upstream, sellout, idempotency, clock, failpoints, timers }
    }

    /// The request ids' mechanism.
    pub fn idempotency(&self) -> &Idempotency {
        &self.idempotency
    }

    /// The saga's timings.
    pub fn timers(&self) -> Timers {
        self.timers
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// `NOT_FOUND` unless scheduling knows show `show` (its id).
    pub async fn show_exists(&self, show: &str) -> Result<(), Status> {
        match self.upstream.live_offers(show, &[]).await {
            Ok(_) => Ok(()),
            Err(Refusal::Final(status)) if status.code() == tonic::Code::NotFound => {
                Err(caravan_platform::error::not_found("caravan.scheduling.v1.Show", &format!("shows/{show}")))
            }
            Err(refusal) => Err(upstream_status(refusal)),
        }
    }

    /// The first line of an order for `show` (its id) that this replica
    /// knows the show cannot sell (see [`crate::sellout`]); `None` when
    /// every line may be had or nothing is known yet.
    pub fn shortage(&self, show: &str, partner: &str, lines: &[(String, i64)]) -> Option<Shortage> {
        self.sellout.shortage(show, partner, lines)
    }

    /// Whether the request placed an order in `show` before `product` ran
    /// short, as the memory knows ([`SellOut::placed`]); `None` when it
    /// does not know yet.
    pub fn placed_before(&self, show: &str, product: &str, request_key: &str, order_id: &str) -> Option<Placed> {
        self.sellout.placed(show, product, request_key, order_id)
    }

    /// Turns an order away for `shortage` in `show` without writing
    /// anything: counted as demand, answered as inventory would.
    pub fn turn_away(&self, show: &str, shortage: Shortage) -> Status {
        let Shortage { product, requested, available } = shortage;
        self.sellout.turned_away(show, &product, requested);
        crate::metrics::turned_away(crate::metrics::From::Memory);
        crate::metrics::show_event(show, crate::metrics::ShowEvent::TurnedAway);
        Error::SoldOut { product: format!("products/{product}"), show: format!("shows/{show}"), requested, available }
            .into()
    }

    /// PlaceOrder for a first attempt that writes its request id's `claim`
    /// with the order, and its outcome with the acceptance (two commits for
    /// an accepted order, none for a refusal); `reply` encodes the answer
    /// to record. `None` when the request id is already claimed or the
    /// order already exists (a retry, a concurrent repeat): then run
    /// [`Self::place`] under the idempotency mechanism, which waits,
    /// replays or takes over.
    pub async fn place_claimed(
        &self,
        new: NewOrder,
        claim: &Claim,
        traceparent: &str,
        reply: Reply<'_>,
    ) -> Option<Result<Order, Status>> {
        let (id, request_key) = (new.id.clone(), new.request_key.clone());
        let (order, limits) = match self.priced(new).await {
            Ok(priced) => priced,
            Err(refused) => {
                // An earlier attempt may have written the order before the
                // checks began to fail (the show ended since): its answer
                // is the order, found by the retry path.
                return match self.store.order(&id, None).await {
                    Ok(_) => None,
                    Err(Error::OrderNotFound(_)) => Some(Err(refused)),
                    Err(e) => Some(Err(e.into())),
                };
            }
        };
        let recover_at = self.timers.recover_at(&order);
        match self
            .store
            .insert_order(&order, traceparent, recover_at, &limits, Some(claim), request_key.as_deref())
            .await
        {
            Ok(true) => {}
            Ok(false) => return None,
            Err(e) => return Some(Err(e.into())),
        }
        self.failpoints.hit("orders.place.after_insert");
        Some(self.reserve(order, Some((claim, reply))).await)
    }

    /// PlaceOrder: the order `new.id` names, resumed if it exists (a retry),
    /// else checked, priced, written PENDING and reserved.
    ///
    /// A first attempt does not look for its order first: the insert finds
    /// an earlier one (a conflict on the id), and a retry whose checks now
    /// fail (the show ended since, an upstream is down) looks for it then.
    /// So a retry still resumes what the first attempt wrote, and a new
    /// order costs one statement less.
    pub async fn place(&self, new: NewOrder, traceparent: &str) -> Result<Order, Status> {
        let (id, partner, request_key) = (new.id.clone(), new.partner.clone(), new.request_key.clone());
        let (order, limits) = match self.priced(new).await {
            Ok(priced) => priced,
            Err(refused) => {
                return match self.store.order(&id, Some(&partner)).await {
                    Ok(existing) => self.resume(existing).await,
                    Err(Error::OrderNotFound(_)) => Err(refused),
                    Err(e) => Err(e.into()),
                };
            }
        };
        let recover_at = self.timers.recover_at(&order);
        if !self.store.insert_order(&order, traceparent, recover_at, &limits, None, request_key.as_deref()).await? {
            // A concurrent attempt with the same request id wrote it first.
            let existing = self.store.order(&order.id, None).await?;
            return self.resume(existing).await;
        }
        self.failpoints.hit("orders.place.after_insert");
        self.reserve(order, None).await
    }

    /// A retried PlaceOrder finds its order: a PENDING one is driven on,
    /// any other answers what it is.
    async fn resume(&self, order: Order) -> Result<Order, Status> {
        match order.state {
            OrderState::Pending => self.reserve(order, None).await,
            _ => self.answer(order),
        }
    }

    /// What PlaceOrder answers for an order that is past its first step.
    fn answer(&self, order: Order) -> Result<Order, Status> {
        match order.state {
            OrderState::Rejected => Err(rejected(&order)),
            OrderState::Pending => Err(Status::unavailable(format!(
                "orders/{} is still being placed; retry with the same request_id",
                order.id
            ))),
            OrderState::AwaitingPayment | OrderState::Paid | OrderState::Cancelled | OrderState::Expired => Ok(order),
        }
    }

    /// Checks the products (catalog) and the show (scheduling), and takes
    /// the price snapshot: the show price when the order names a show, else
    /// the list price. Returns the PENDING order and its offers' per-buyer
    /// limits.
    async fn priced(&self, new: NewOrder) -> Result<(Order, BuyerLimits), Status> {
        let NewOrder { id, request_key: _, request_id, partner, buyer, show, lines } = new;
        let ids: Vec<String> = lines.iter().map(|(p, _)| p.clone()).collect();
        // Both checks at once (an order waits for the slower, not the sum);
        // their answers are then read in order, the catalog's first.
        let live_offers = async {
            match &show {
                Some(show) => Some(self.upstream.live_offers(show, &ids).await),
                None => None,
            }
        };
        let (products, live_offers) = futures::join!(self.upstream.products(&ids), live_offers);
        if let (Some(show), Some(Ok(live))) = (&show, &live_offers)
            && live.live
        {
            // A live show and its offers: worth following their stock.
            let offered: Vec<String> =
                ids.iter().filter(|id| live.offers.iter().any(|o| &o.product == *id)).cloned().collect();
            self.sellout.watch(show, &live.partner, &offered);
        }
        let products = products.map_err(upstream_status)?;
        let mut priced = Vec::with_capacity(products.len());
        for (i, product) in products.into_iter().enumerate() {
            match product {
                None => return Err(invalid_argument(format!("lines[{i}].product"), "is not in the catalog")),
                Some(p) if !p.active => {
                    return Err(precondition(
                        Reason::ProductNotAvailable,
                        &format!("products/{}", p.id),
                        format!("products/{} is not for sale", p.id),
                        &[],
                    ));
                }
                Some(p) => priced.push(p),
            }
        }
        let mut limits = BuyerLimits::new();
        if let (Some(show), Some(live_offers)) = (&show, live_offers) {
            let LiveShow { live, partner: show_partner, offers } = live_offers.map_err(upstream_status)?;
            if show_partner != partner {
                let metadata = HashMap::from([("show".to_owned(), format!("shows/{show}"))]);
                return Err(caravan_platform::error::refusal(
                    tonic::Code::PermissionDenied,
                    Reason::ShowOfAnotherPartner,
                    format!("shows/{show} is on another partner's channel; a partner orders only in its own shows"),
                    metadata,
                ));
            }
            if !live {
                return Err(precondition(
                    Reason::ShowNotLive,
                    &format!("shows/{show}"),
                    format!("shows/{show} is not live"),
                    &[],
                ));
            }
            for ((product, quantity), priced) in lines.iter().zip(priced.iter_mut()) {
                let Some(offer) = offers.iter().find(|o| &o.product == product) else {
                    return Err(precondition(
                        Reason::NotOnLineUp,
                        &format!("products/{product}"),
                        format!("products/{product} is not offered in shows/{show}"),
                        &[("show", &format!("shows/{show}"))],
                    ));
                };
                if offer.per_buyer_limit > 0 && *quantity > offer.per_buyer_limit {
                    return Err(Error::BuyerLimit {
                        product: format!("products/{product}"),
                        show: format!("shows/{show}"),
                        limit: offer.per_buyer_limit,
                        held: 0,
                        requested: *quantity,
                    }
                    .into());
                }
                limits.insert(format!("products/{product}"), offer.per_buyer_limit);
                priced.price = offer.price.clone();
            }
        }
        let now = self.clock.now();
        let order = Order {
            id,
            partner,
            buyer,
            show: show.map(|s| format!("shows/{s}")).unwrap_or_default(),
            lines: lines
                .into_iter()
                .zip(priced)
                .map(|((product, quantity), priced)| OrderLine {
                    product: format!("products/{product}"),
                    quantity,
                    unit_price: priced.price,
                    country: priced.country,
                })
                .collect(),
            state: OrderState::Pending,
            state_reason: String::new(),
            payment_deadline: None,
            payment_reference: String::new(),
            request_id,
            create_time: now,
            update_time: now,
        };
        Ok((order, limits))
    }

    /// The reserve step of a PENDING order: AWAITING_PAYMENT, or — refused
    /// by inventory — forgotten, as if never placed; a transient failure
    /// leaves it PENDING. If someone else moved the order meanwhile
    /// (recovery), answers what it is now. With `claimed`, the request id's
    /// claim is settled in the same transactions: its reply recorded with
    /// the acceptance, let go with a refusal or a failure.
    async fn reserve(&self, order: Order, claimed: Option<(&Claim, Reply<'_>)>) -> Result<Order, Status> {
        let lines: Vec<(String, i64)> = order
            .lines
            .iter()
            .map(|l| (l.product.strip_prefix("products/").unwrap_or(&l.product).to_owned(), l.quantity))
            .collect();
        let show = order.show.strip_prefix("shows/").filter(|s| !s.is_empty());
        // What the memory held when the reservation was sent: a refusal
        // may lower a level only if it has not changed since.
        let versions: Vec<Option<i64>> =
            lines.iter().map(|(p, _)| show.and_then(|s| self.sellout.version(s, p))).collect();
        let reserved = self.upstream.reserve(&order.id, show, &lines, self.timers.reservation_ttl).await;
        let now = self.clock.now();
        let claim = claimed.as_ref().map(|(claim, _)| *claim);
        match reserved {
            Ok(_) => {
                self.failpoints.hit("orders.place.after_reserve");
                let deadline = now.plus(self.timers.payment_window);
                let accepted = Order {
                    state: OrderState::AwaitingPayment,
                    payment_deadline: Some(deadline),
                    update_time: now,
                    ..order.clone()
                };
                let outcome = claimed.map(|(claim, reply)| (claim.clone(), reply(&accepted)));
                if self.store.accept(&order.id, deadline, now, outcome).await? {
                    self.failpoints.hit("orders.place.after_accept");
                    // The conditional update changed exactly these: no need
                    // to read the order back.
                    return Ok(accepted);
                }
            }
            Err(Refusal::Final(status)) if reason_of(&status) == Some(Reason::OrderRejected) => {
                // The hold ended before the order was accepted (recovery
                // released it while a retry resumed the order, or it
                // expired): rejected, as recovery would, so every retry
                // hears the same.
                let change = StateChange {
                    reason: "its stock hold ended before it was accepted; nothing is held",
                    due_at: Some(now),
                    ..StateChange::default()
                };
                self.store.move_state(&order.id, OrderState::Pending, OrderState::Rejected, change, now).await?;
            }
            Err(Refusal::Final(status)) => {
                if let (Some(show), Some(short)) = (show, shortage_of(&status)) {
                    let version = lines.iter().position(|(p, _)| p == &short.product).and_then(|i| versions[i]);
                    self.sellout.refused(show, &short.product, short.available, version);
                    self.sellout.turned_away(show, &short.product, short.requested);
                    crate::metrics::turned_away(crate::metrics::From::Inventory);
                    crate::metrics::show_event(show, crate::metrics::ShowEvent::TurnedAway);
                }
                self.failpoints.hit("orders.place.after_refusal");
                if self.store.forget(&order, claim).await? {
                    return Err(partner_facing(status, show));
                }
            }
            Err(transient @ Refusal::Transient(_)) => {
                if let Some(claim) = claim {
                    self.idempotency.release(claim).await;
                }
                return Err(upstream_status(transient));
            }
        }
        // Moved by someone else (recovery rejected it): its answer is what
        // it is now, and the claim is let go so a retry asks again.
        if let Some(claim) = claim {
            self.idempotency.release(claim).await;
        }
        self.answer(self.store.order(&order.id, None).await?)
    }

    /// ConfirmPayment: records the payment reference, commits the
    /// reservation, marks the order PAID. A payment after the deadline is
    /// refused as ORDER_EXPIRED and recorded for a refund; a retry of a
    /// payment recorded in time finishes it even after the deadline.
    pub async fn confirm_payment(&self, id: &str, partner: &str, reference: &str) -> Result<Order, Status> {
        // Twice at most: once more if the order changed under us.
        for _ in 0..2 {
            let order = self.store.order(id, Some(partner)).await?;
            let now = self.clock.now();
            let in_time = order.payment_deadline.is_some_and(|d| now < d);
            match order.state {
                OrderState::Paid if order.payment_reference == reference => return Ok(order),
                OrderState::Paid => {
                    return Err(precondition(
                        Reason::OrderAlreadyPaid,
                        &format!("orders/{id}"),
                        format!("orders/{id} was paid with another payment reference"),
                        &[],
                    ));
                }
                OrderState::AwaitingPayment if order.payment_reference == reference => {
                    return self.commit(id, reference).await;
                }
                OrderState::AwaitingPayment if !order.payment_reference.is_empty() => {
                    return Err(precondition(
                        Reason::PaymentInProgress,
                        &format!("orders/{id}"),
                        format!("another payment of orders/{id} is being confirmed"),
                        &[],
                    ));
                }
                OrderState::AwaitingPayment if in_time => {
                    if self.store.record_payment(id, reference, now).await? {
                        self.failpoints.hit("orders.pay.after_record");
                        return self.commit(id, reference).await;
                    }
                }
                OrderState::AwaitingPayment | OrderState::Expired => return self.expire_late(id, reference).await,
                state => {
                    return Err(precondition(
                        Reason::OrderState,
                        &format!("orders/{id}"),
                        format!("an order in state {} cannot be paid", state.as_db()),
                        &[],
                    ));
                }
            }
        }
        Err(Status::aborted(format!("orders/{id} kept changing; retry")))
    }

    /// Sells the reservation of an order whose payment `reference` is recorded.
    async fn commit(&self, id: &str, reference: &str) -> Result<Order, Status> {
        match self.upstream.commit(id).await {
            Ok(()) => {
                self.failpoints.hit("orders.pay.after_commit");
                let now = self.clock.now();
                self.store
                    .move_state(id, OrderState::AwaitingPayment, OrderState::Paid, StateChange::default(), now)
                    .await?;
                let order = self.store.order(id, None).await?;
                match order.state {
                    OrderState::Paid => Ok(order),
                    state => Err(Status::internal(format!(
                        "orders/{id} was committed in inventory but is {}",
                        state.as_db()
                    ))),
                }
            }
            Err(Refusal::Final(status)) => {
                tracing::info!(order = id, reason = status.message(), "the hold is gone: the payment is late");
                self.expire_late(id, reference).await
            }
            Err(transient) => Err(upstream_status(transient)),
        }
    }

    /// A payment after the deadline: the order expires (its hold is given
    /// back), the late payment is recorded for a refund, and the partner is
    /// told ORDER_EXPIRED.
    async fn expire_late(&self, id: &str, reference: &str) -> Result<Order, Status> {
        self.upstream.release(id).await.map_err(upstream_status)?;
        let now = self.clock.now();
        let change = StateChange { reason: "not paid before the payment deadline", ..StateChange::default() };
        self.store.move_state(id, OrderState::AwaitingPayment, OrderState::Expired, change, now).await?;
        self.store.record_late_payment(id, reference, now).await?;
        Err(precondition(
            Reason::OrderExpired,
            &format!("orders/{id}"),
            format!("orders/{id} expired before it was paid; payment {reference} is recorded for a refund"),
            &[],
        ))
    }

    /// CancelOrder: gives the hold back and marks the order CANCELLED.
    pub async fn cancel(&self, id: &str, partner: &str, reason: &str) -> Result<Order, Status> {
        let order = self.store.order(id, Some(partner)).await?;
        match order.state {
            OrderState::Cancelled => Ok(order),
            OrderState::AwaitingPayment => {
                match self.upstream.release(id).await {
                    Ok(()) => {}
                    Err(Refusal::Final(status)) if reason_of(&status) == Some(Reason::ReservationCommitted) => {
                        return Err(precondition(
                            Reason::OrderState,
                            &format!("orders/{id}"),
                            format!("orders/{id} is being paid and can no longer be cancelled"),
                            &[],
                        ));
                    }
                    Err(refusal) => return Err(upstream_status(refusal)),
                }
                self.failpoints.hit("orders.cancel.after_release");
                let reason = if reason.is_empty() { "cancelled by the partner" } else { reason };
                let change = StateChange { reason, ..StateChange::default() };
                let now = self.clock.now();
                self.store.move_state(id, OrderState::AwaitingPayment, OrderState::Cancelled, change, now).await?;
                let order = self.store.order(id, None).await?;
                match order.state {
                    OrderState::Cancelled => Ok(order),
                    state => Err(precondition(
                        Reason::OrderState,
                        &format!("orders/{id}"),
                        format!("orders/{id} became {} while being cancelled", state.as_db()),
                        &[],
                    )),
                }
            }
            state => Err(precondition(
                Reason::OrderState,
                &format!("orders/{id}"),
                format!("an order in state {} cannot be cancelled", state.as_db()),
                &[],
            )),
        }
    }

    /// Recovery of an order still PENDING at its recovery time: REJECTED
    /// first (kept due, so a crash here is re-driven), then its hold
    /// released. `false` if the order had moved on meanwhile.
    pub async fn recover(&self, id: &str) -> anyhow::Result<bool> {
        let now = self.clock.now();
        let change = StateChange {
            reason: "not completed in time (the call failed and was not retried); nothing is held",
            due_at: Some(now),
            ..StateChange::default()
        };
        if !self.store.move_state(id, OrderState::Pending, OrderState::Rejected, change, now).await? {
            return Ok(false);
        }
        tracing::info!(order = id, "recovered a stuck order: rejected, releasing any hold");
        self.failpoints.hit("orders.recovery.after_reject");
        self.release(id).await?;
        Ok(true)
    }

    /// Expiry of an order not paid by its deadline: the hold given back,
    /// then EXPIRED. A hold already committed means the payment went
    /// through (its reference was recorded first): the order becomes PAID.
    /// `false` if the order had moved on meanwhile.
    pub async fn expire(&self, id: &str) -> anyhow::Result<bool> {
        let to = match self.upstream.release(id).await {
            Ok(()) => OrderState::Expired,
            Err(Refusal::Final(status)) if reason_of(&status) == Some(Reason::ReservationCommitted) => OrderState::Paid,
            Err(Refusal::Final(status)) => {
                tracing::warn!(order = id, reason = status.message(), "expiring an order whose hold is gone");
                OrderState::Expired
            }
            Err(refusal) => return Err(transient("releasing an unpaid order's hold", refusal)),
        };
        self.failpoints.hit("orders.expiry.after_release");
        let reason = if to == OrderState::Expired { "not paid before the payment deadline" } else { "" };
        let change = StateChange { reason, ..StateChange::default() };
        Ok(self.store.move_state(id, OrderState::AwaitingPayment, to, change, self.clock.now()).await?)
    }

    /// Makes sure inventory holds nothing for an order that sells nothing.
    pub async fn release(&self, id: &str) -> anyhow::Result<()> {
        match self.upstream.release(id).await {
            Ok(()) => Ok(()),
            Err(Refusal::Final(status)) => {
                tracing::warn!(order = id, reason = status.message(), "the hold of an unsold order cannot be released");
                Ok(())
            }
            Err(refusal) => Err(transient("releasing a hold", refusal)),
        }
    }
}
