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
            Ok(counter) => {
                for event in ["placed", "accepted", "rejected", "paid", "cancelled", "expired"] {
                    counter.with_label_values(&[event]);
                }
                register(counter)
            }
            Err(e) => unreachable!("a valid metric definition: {e}"),
        }
    })
}

/// Registers every metric of orders, each series at zero, so /metrics
/// lists them from the start.
pub fn register_all() {
    orders();
    turned_away_counter();
    show_orders();
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
            Ok(counter) => {
                for decided in ["memory", "inventory"] {
                    counter.with_label_values(&[decided]);
                }
                register(counter)
            }
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

/// What [`show_event`] counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShowEvent {
    /// An order of the show was written.
    Placed,
    /// An order of the show was paid.
    Paid,
    /// An order attempt was turned away for lack of the show's stock.
    TurnedAway,
}

/// `caravan_show_orders_total{show, event}`: each show's orders `placed`
/// and `paid`, and attempts `turned_away` — the festival dashboard's
/// figures per show. One series per show and event: a few thousand over a
/// festival, which Prometheus holds easily; the exact report is
/// GetShowSalesReport.
fn show_orders() -> &'static IntCounterVec {
    static SHOW_ORDERS: OnceLock<IntCounterVec> = OnceLock::new();
    SHOW_ORDERS.get_or_init(|| {
        let opts =
            Opts::new("caravan_show_orders_total", "Each show's orders placed and paid, and attempts turned away");
        match IntCounterVec::new(opts, &["show", "event"]) {
            Ok(counter) => register(counter),
            Err(e) => unreachable!("a valid metric definition: {e}"),
        }
    })
}

/// Counts `event` for `show` (`shows/{id}` or the bare id); nothing for an
/// order of no show.
pub fn show_event(show: &str, event: ShowEvent) {
    let show = show.strip_prefix("shows/").unwrap_or(show);
    if show.is_empty() {
        return;
    }
    let event = match event {
        ShowEvent::Placed => "placed",
        ShowEvent::Paid => "paid",
        ShowEvent::TurnedAway => "turned_away",
    };
    show_orders().with_label_values(&[show, event]).inc();
}
