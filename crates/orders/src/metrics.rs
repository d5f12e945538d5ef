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

/// Where a refusal for lack of stock was decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum From {
    /// This replica's memory of the show's stock: no write, no call.
    Memory,
    /// Inventory refused the reservation.
    Inventory,
}

/// `caravan_orders_turned_away_total{decided}`: order attempts turned away
/// for lack of a show's stock, `memory` (the sell-out storm, answered from
/// what the replica knows) or `inventory` (its refusal of a reservation).
fn turned_away_counter() -> &'static IntCounterVec {
    static TURNED_AWAY: OnceLock<IntCounterVec> = OnceLock::new();
    TURNED_AWAY.get_or_init(|| {
        let opts =
            Opts::new("caravan_orders_turned_away_total", "Order attempts turned away for lack of a show's stock");
        match IntCounterVec::new(opts, &["decided"]) {
            Ok(counter) => register(counter),
            Err(e) => unreachable!("a valid metric definition: {e}"),
        }
    })
}

/// An order attempt was turned away for lack of stock, as `from` decided.
pub fn turned_away(from: From) {
    let decided = match from {
        From::Memory => "memory",
        From::Inventory => "inventory",
    };
    turned_away_counter().with_label_values(&[decided]).inc();
}
