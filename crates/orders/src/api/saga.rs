//! PlaceOrder, ConfirmPayment and CancelOrder: the order saga (DESIGN.md
//! "Placing an order"). Each step is keyed by the order id, so a retry with
//! the same request id resumes the same order.

use std::{collections::HashMap, time::Duration};

use caravan_platform::{
    error::{FieldViolations, failed_precondition, invalid_argument},
    resource,
    time::Micros,
};
use caravan_proto::orders::v1 as pb;
use sha2::{Digest as _, Sha256};
use tonic::Status;

use super::{OrdersApi, order_to_pb};
use crate::{
    domain::{Order, OrderLine, OrderState},
    store::StateChange,
    upstream::Refusal,
};

/// How long a buyer has to pay.
pub const PAYMENT_WINDOW: Duration = Duration::from_secs(10 * 60);
/// How long inventory holds the stock: longer than the payment window, so
/// the hold outlives every payment that is still on time.
pub const RESERVATION_TTL: Duration = Duration::from_secs(15 * 60);
/// Most lines in one order.
const MAX_LINES: usize = 50;
/// Most units of one line.
const MAX_QUANTITY: i64 = 1_000_000;

fn precondition(reason: &str, subject: &str, message: String) -> Status {
    failed_precondition(reason, subject, message, HashMap::new())
}

/// The order id: derived from the partner and its request id (so a retry
/// finds the same order), or generated.
fn order_id(partner: &str, request_id: &str) -> String {
    if request_id.is_empty() {
        return resource::new_id('o');
    }
    let digest = Sha256::digest(format!("{partner}\n{request_id}").as_bytes());
    format!("o{}", &hex::encode(digest)[..24])
}

impl OrdersApi {
    /// PlaceOrder for `partner`.
    pub(super) async fn place_order_once(
        &self,
        request: pb::PlaceOrderRequest,
        partner: &str,
        traceparent: &str,
    ) -> Result<pb::Order, Status> {
        let pb::PlaceOrderRequest { buyer, show, lines, request_id } = request;
        let mut violations = FieldViolations::new();
        let buyer_chars = buyer.chars().count();
        violations.check(
            (1..=128).contains(&buyer_chars) && !buyer.chars().any(char::is_control),
            "buyer",
            "must be 1 to 128 printable characters",
        );
        let show_id = if show.is_empty() {
            None
        } else {
            resource::parse_name(&show, "shows").map(str::to_owned).map_err(|e| violations.add("show", e)).ok()
        };
        violations.check(!lines.is_empty() && lines.len() <= MAX_LINES, "lines", format!("1 to {MAX_LINES} lines"));
        let mut wanted: Vec<(String, i64)> = Vec::with_capacity(lines.len());
        for (i, pb::PlaceOrderLine { product, quantity }) in lines.into_iter().enumerate() {
            match resource::parse_name(&product, "products") {
                Ok(id) if wanted.iter().any(|(p, _)| p == id) => {
                    violations.add(format!("lines[{i}].product"), "appears in an earlier line");
                }
                Ok(id) => wanted.push((id.to_owned(), quantity)),
                Err(e) => violations.add(format!("lines[{i}].product"), e),
            }
            violations.check(
                (1..=MAX_QUANTITY).contains(&quantity),
                format!("lines[{i}].quantity"),
                format!("must be between 1 and {MAX_QUANTITY}"),
            );
        }
        violations.into_result()?;

        let id = order_id(partner, &request_id);
        let order = match self.store.order(&id, Some(partner)).await {
            // A retry of an order that did not finish: resume it.
            Ok(existing) => existing,
            Err(crate::error::Error::OrderNotFound(_)) => {
                let order = self.priced_order(&id, partner, buyer, show_id.as_deref(), &wanted).await?;
                self.store.insert_order(&order, traceparent).await?;
                order
            }
            Err(e) => return Err(e.into()),
        };
        match order.state {
            OrderState::Pending => self.reserve(order).await,
            OrderState::Rejected => Err(precondition(
                "ORDER_REJECTED",
                &format!("orders/{}", order.id),
                format!("the order was rejected: {}", order.state_reason),
            )),
            _ => Ok(order_to_pb(order)),
        }
    }

    /// Checks the products (catalog) and the show (scheduling), and takes the
    /// price snapshot: the show price when the order names a show, else the
    /// list price.
    async fn priced_order(
        &self,
        id: &str,
        partner: &str,
        buyer: String,
        show: Option<&str>,
        wanted: &[(String, i64)],
    ) -> Result<Order, Status> {
        let ids: Vec<String> = wanted.iter().map(|(p, _)| p.clone()).collect();
        let products = self.upstream.products(&ids).await.map_err(upstream_status)?;
        for (i, product) in products.iter().enumerate() {
            match product {
                None => return Err(invalid_argument(format!("lines[{i}].product"), "is not in the catalog")),
                Some(p) if !p.active => {
                    return Err(precondition(
                        "PRODUCT_NOT_AVAILABLE",
                        &format!("products/{}", p.id),
                        format!("products/{} is not for sale", p.id),
                    ));
                }
                Some(_) => {}
            }
        }
        let mut prices: Vec<_> = products.into_iter().flatten().map(|p| p.price).collect();
        if let Some(show) = show {
            let (live, offers) = self.upstream.live_offers(show, &ids).await.map_err(upstream_status)?;
            if !live {
                return Err(precondition(
                    "SHOW_NOT_LIVE",
                    &format!("shows/{show}"),
                    format!("shows/{show} is not live"),
                ));
            }
            for (i, (product, quantity)) in wanted.iter().enumerate() {
                let Some(offer) = offers.iter().find(|o| &o.product == product) else {
                    return Err(precondition(
                        "NOT_ON_LINE_UP",
                        &format!("products/{product}"),
                        format!("products/{product} is not offered in shows/{show}"),
                    ));
                };
                if offer.per_buyer_limit > 0 && *quantity > offer.per_buyer_limit {
                    return Err(precondition(
                        "PER_BUYER_LIMIT",
                        &format!("products/{product}"),
                        format!("at most {} of products/{product} per buyer in this show", offer.per_buyer_limit),
                    ));
                }
                prices[i] = offer.price.clone();
            }
        }
        let now = self.clock.now();
        Ok(Order {
            id: id.to_owned(),
            partner: partner.to_owned(),
            buyer,
            show: show.map(|s| format!("shows/{s}")).unwrap_or_default(),
            lines: wanted
                .iter()
                .zip(prices)
                .map(|((product, quantity), unit_price)| OrderLine {
                    product: format!("products/{product}"),
                    quantity: *quantity,
                    unit_price,
                })
                .collect(),
            state: OrderState::Pending,
            state_reason: String::new(),
            payment_deadline: None,
            payment_reference: String::new(),
            create_time: now,
            update_time: now,
        })
    }

    /// The reserve step of a PENDING order: AWAITING_PAYMENT, or REJECTED
    /// with inventory's refusal; a transient failure leaves it PENDING.
    async fn reserve(&self, order: Order) -> Result<pb::Order, Status> {
        let lines: Vec<(String, i64)> = order
            .lines
            .iter()
            .map(|l| (l.product.strip_prefix("products/").unwrap_or(&l.product).to_owned(), l.quantity))
            .collect();
        let show = order.show.strip_prefix("shows/").filter(|s| !s.is_empty());
        match self.upstream.reserve(&order.id, show, &lines, RESERVATION_TTL).await {
            Ok(_) => {
                let deadline = self.clock.now().plus(PAYMENT_WINDOW);
                let change = StateChange { payment_deadline: Some(deadline), ..StateChange::default() };
                self.store
                    .move_state(&order.id, OrderState::Pending, OrderState::AwaitingPayment, change, self.clock.now())
                    .await?;
                Ok(order_to_pb(self.store.order(&order.id, None).await?))
            }
            Err(Refusal::Final(status)) => {
                let reason = status.message().to_owned();
                let change = StateChange { reason: &reason, ..StateChange::default() };
                let rejected = self
                    .store
                    .move_state(&order.id, OrderState::Pending, OrderState::Rejected, change, self.clock.now())
                    .await?;
                if rejected && let Some(product) = short_product(&status) {
                    self.store.record_rejected_product(&order.id, &product).await?;
                }
                Err(status)
            }
            Err(Refusal::Transient(status)) => Err(upstream_status(Refusal::Transient(status))),
        }
    }

    /// ConfirmPayment: commits the reservation and marks the order PAID; a
    /// payment after the deadline is refused as ORDER_EXPIRED and recorded.
    pub(super) async fn confirm_payment_once(
        &self,
        request: pb::ConfirmPaymentRequest,
        partner: &str,
    ) -> Result<pb::Order, Status> {
        let pb::ConfirmPaymentRequest { name, payment_reference, request_id: _ } = request;
        let mut violations = FieldViolations::new();
        let id = resource::parse_name(&name, "orders").map(str::to_owned).map_err(|e| violations.add("name", e)).ok();
        violations.check(
            (1..=128).contains(&payment_reference.chars().count()) && !payment_reference.chars().any(char::is_control),
            "payment_reference",
            "must be 1 to 128 printable characters",
        );
        violations.into_result()?;
        let id = id.ok_or_else(|| invalid_argument("name", "is invalid"))?;
        let order = self.store.order(&id, Some(partner)).await?;
        let now = self.clock.now();
        match order.state {
            OrderState::Paid if order.payment_reference == payment_reference => Ok(order_to_pb(order)),
            OrderState::AwaitingPayment if order.payment_deadline.is_some_and(|d| now < d) => {
                match self.upstream.commit(&id).await {
                    Ok(()) => {
                        let change = StateChange { payment_reference: &payment_reference, ..StateChange::default() };
                        self.store.move_state(&id, OrderState::AwaitingPayment, OrderState::Paid, change, now).await?;
                        Ok(order_to_pb(self.store.order(&id, None).await?))
                    }
                    Err(Refusal::Final(_)) => self.expire_late(&id, &payment_reference, now).await,
                    Err(transient) => Err(upstream_status(transient)),
                }
            }
            OrderState::AwaitingPayment | OrderState::Expired => self.expire_late(&id, &payment_reference, now).await,
            state => Err(precondition(
                "ORDER_STATE",
                &format!("orders/{id}"),
                format!("an order in state {} cannot be paid", state.as_db()),
            )),
        }
    }

    /// A payment after the deadline: the order expires (its hold is given
    /// back), the late payment is recorded for a refund, and the partner is
    /// told ORDER_EXPIRED.
    async fn expire_late(&self, id: &str, reference: &str, now: Micros) -> Result<pb::Order, Status> {
        self.upstream.release(id).await.map_err(upstream_status)?;
        let change = StateChange { reason: "not paid before the payment deadline", ..StateChange::default() };
        self.store.move_state(id, OrderState::AwaitingPayment, OrderState::Expired, change, now).await?;
        self.store.record_late_payment(id, reference, now).await?;
        Err(precondition(
            "ORDER_EXPIRED",
            &format!("orders/{id}"),
            format!("orders/{id} expired before it was paid; payment {reference} is recorded for a refund"),
        ))
    }

    /// CancelOrder: gives the hold back and marks the order CANCELLED.
    pub(super) async fn cancel_order_once(
        &self,
        request: pb::CancelOrderRequest,
        partner: &str,
    ) -> Result<pb::Order, Status> {
        let pb::CancelOrderRequest { name, reason, request_id: _ } = request;
        let mut violations = FieldViolations::new();
        let id = resource::parse_name(&name, "orders").map(str::to_owned).map_err(|e| violations.add("name", e)).ok();
        violations.check(
            reason.chars().count() <= 200 && !reason.chars().any(char::is_control),
            "reason",
            "must be at most 200 printable characters",
        );
        violations.into_result()?;
        let id = id.ok_or_else(|| invalid_argument("name", "is invalid"))?;
        let order = self.store.order(&id, Some(partner)).await?;
        match order.state {
            OrderState::Cancelled => Ok(order_to_pb(order)),
            OrderState::AwaitingPayment => {
                self.upstream.release(&id).await.map_err(upstream_status)?;
                let reason = if reason.is_empty() { "cancelled by the partner".to_owned() } else { reason };
                let change = StateChange { reason: &reason, ..StateChange::default() };
                let now = self.clock.now();
                self.store.move_state(&id, OrderState::AwaitingPayment, OrderState::Cancelled, change, now).await?;
                Ok(order_to_pb(self.store.order(&id, None).await?))
            }
            state => Err(precondition(
                "ORDER_STATE",
                &format!("orders/{id}"),
                format!("an order in state {} cannot be cancelled", state.as_db()),
            )),
        }
    }
}

/// The product an `INSUFFICIENT_STOCK` refusal names.
fn short_product(status: &Status) -> Option<String> {
    use tonic_types::StatusExt as _;
    let details = status.get_error_details();
    let info = details.error_info()?;
    (info.reason == "INSUFFICIENT_STOCK").then(|| info.metadata.get("product").cloned()).flatten()
}

/// A callee's answer as the partner sees it: refusals as they are, transient
/// failures as `UNAVAILABLE` (retry with the same request id).
fn upstream_status(refusal: Refusal) -> Status {
    match refusal {
        Refusal::Final(status) => status,
        Refusal::Transient(status) => {
            tracing::warn!(code = ?status.code(), message = status.message(), "a call of the order saga failed");
            Status::unavailable("a service the order needs did not answer; retry with the same request_id")
        }
    }
}
