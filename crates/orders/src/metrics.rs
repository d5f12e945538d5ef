//! Orders' domain metrics, in the process's registry (`/metrics`).

use std::sync::OnceLock;

use caravan_platform::metrics::{
    prometheus::{IntCounterVec, Opts},
    register,
};

use crate::domain::OrderState;

/// `caravan_orders_total{event}`: orders `placed` (written), then `accepted`
/// (stock held, awaiting payment), `rejected`, `paid`, `cancelled` or
/// `expired`. Counted once per order and step, by the conditional change that
/// made it, whatever the retries and replicas.
fn orders() -> &'static IntCounterVec {
    static ORDERS: OnceLock<IntCounterVec> = OnceLock::new();
    ORDERS.get_or_init(|| {
        let opts = Opts::new("caravan_orders_total", "Orders placed, and the steps they took since");
        match IntCounterVec::new(opts, &["event"]) {
            Ok(counter) => register(counter),
            Err(e) => unreachable!("a valid metric definition: {e}"),
        }
    })
}

/// An order was written.
pub fn placed() {
    orders().with_label_values(&["placed"]).inc();
}

/// An order moved into `state`.
pub fn moved(state: OrderState) {
    let event = match state {
        OrderState::Pending => return,
        OrderState::AwaitingPayment => "accepted",
        OrderState::Paid => "paid",
        OrderState::Rejected => "rejected",
        OrderState::Cancelled => "cancelled",
        OrderState::Expired => "expired",
    };
    orders().with_label_values(&[event]).inc();
}
