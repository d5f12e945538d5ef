//! The payment expiry job: an order still awaiting payment at its deadline
//! gives its hold back to inventory and becomes EXPIRED. A platform [`Job`]:
//! claimed under a lease, run in a trace linked to the order's own, and each
//! step idempotent (release by order id; a conditional UPDATE on
//! AWAITING_PAYMENT), so several replicas expire each order once.

use caravan_platform::{
    time::SharedClock,
    worker::{Claimed, ItemTable, Job, Next},
};

use crate::{
    domain::OrderState,
    error::Error,
    store::{StateChange, Store},
    upstream::{Refusal, Upstream},
};

/// Expires unpaid orders at their payment deadline.
#[derive(Debug, Clone)]
pub struct Expiry {
    store: Store,
    upstream: Upstream,
    clock: SharedClock,
}

impl Expiry {
    /// An expiry job over `store`, releasing holds through `upstream`.
    pub fn new(store: Store, upstream: Upstream, clock: SharedClock) -> Self {
        Expiry { store, upstream, clock }
    }
}

impl Job for Expiry {
    fn name(&self) -> &'static str {
        "order-expiry"
    }

    fn items(&self) -> ItemTable {
        ItemTable { table: "orders", id: "id" }
    }

    async fn run(&self, item: &Claimed) -> anyhow::Result<Next> {
        let order = match self.store.order(&item.id, None).await {
            Ok(order) => order,
            Err(Error::OrderNotFound(_)) => return Ok(Next::Done),
            Err(e) => return Err(e.into()),
        };
        let now = self.clock.now();
        match (order.state, order.payment_deadline) {
            (OrderState::AwaitingPayment, Some(deadline)) if now < deadline => Ok(Next::At(deadline)),
            (OrderState::AwaitingPayment, _) => {
                match self.upstream.release(&order.id).await {
                    Ok(()) => {}
                    Err(Refusal::Final(status)) => {
                        // Already committed means it was paid meanwhile: leave it to ConfirmPayment.
                        tracing::warn!(order = %order.id, reason = status.message(), "hold could not be released");
                        return Ok(Next::Done);
                    }
                    Err(Refusal::Transient(status)) => anyhow::bail!("inventory: {}", status.message()),
                }
                let change = StateChange { reason: "not paid before the payment deadline", ..StateChange::default() };
                self.store.move_state(&order.id, OrderState::AwaitingPayment, OrderState::Expired, change, now).await?;
                Ok(Next::Done)
            }
            _ => Ok(Next::Done),
        }
    }
}
