//! The order driver: the one background job of orders, a platform [`Job`]
//! over the orders table. An order is due when its next step is: recovery
//! of a PENDING order left by a failed or crashed PlaceOrder (at twice the
//! call limit), expiry of an unpaid order (at its payment deadline), and the
//! release of a rejected order's hold. Claimed under a lease, run in a trace
//! linked to the order's own, every step idempotent (ARCHITECTURE.md,
//! invariants: "Sagas and background work"), so several replicas drive each order once and a crash
//! at any step is re-driven.

use caravan_platform::{
    time::SharedClock,
    worker::{Claimed, ItemTable, Job, Next},
};

use crate::{domain::Step, error::Error, saga::Saga};

/// Drives orders whose next step is due.
#[derive(Debug, Clone)]
pub struct Driver {
    saga: Saga,
    clock: SharedClock,
}

impl Driver {
    /// A driver running `saga`'s background steps.
    pub fn new(saga: Saga, clock: SharedClock) -> Self {
        Driver { saga, clock }
    }
}

/// The job's name (its spans, its leases, `caravan_worker_sweeps_total`).
pub const NAME: &str = "order-driver";

impl Job for Driver {
    fn name(&self) -> &'static str {
        NAME
    }

    fn items(&self) -> ItemTable {
        ItemTable { table: "orders", id: "id" }
    }

    async fn run(&self, item: &Claimed) -> anyhow::Result<Next> {
        // A step that finds the order moved on (a retry, a payment, a
        // cancellation won the race) looks at it again: at most twice more.
        for _ in 0..3 {
            let order = match self.saga.store().order(&item.id, None).await {
                Ok(order) => order,
                Err(Error::OrderNotFound(_)) => return Ok(Next::Done),
                Err(e) => return Err(e.into()),
            };
            let step = order.next_step(self.clock.now(), self.saga.timers().recover_at(&order));
            tracing::debug!(order = %order.id, ?step, "driving an order");
            let finished = match step {
                Step::Wait(at) => return Ok(Next::At(at)),
                Step::Done => return Ok(Next::Done),
                Step::Recover => self.saga.recover(&order.id).await?,
                Step::Expire => self.saga.expire(&order.id).await?,
                Step::Release => {
                    self.saga.release(&order.id).await?;
                    true
                }
            };
            if finished {
                return Ok(Next::Done);
            }
        }
        anyhow::bail!("order {} kept changing while being driven", item.id)
    }
}
