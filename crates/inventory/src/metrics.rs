//! Inventory's domain metrics, in the process's registry (`/metrics`).
//! Counted after the transaction that made the change commits, once per
//! change whatever the retries (a repeated request changes nothing).

use std::sync::OnceLock;

use caravan_platform::metrics::{
    prometheus::{Histogram, HistogramOpts, IntCounterVec, IntGauge, Opts},
    register,
};

/// A counter by one label, its series for each of `values` at zero from the
/// start (a rate is then defined before the first event).
fn counter(name: &str, help: &str, label: &str, values: &[&str]) -> IntCounterVec {
    match IntCounterVec::new(Opts::new(name, help), &[label]) {
        Ok(counter) => {
            for value in values {
                counter.with_label_values(&[value]);
            }
            register(counter)
        }
        Err(e) => unreachable!("a valid metric definition: {e}"),
    }
}

/// Registers every metric of inventory, so /metrics lists them from the
/// start.
pub fn register_all() {
    units();
    allocations();
    sold_out();
    queued();
    batch_size();
}

/// `caravan_stock_units_total{event}`: units `reserved` for orders, then
/// `committed` (sold), `released` or `expired` (given back).
fn units() -> &'static IntCounterVec {
    static UNITS: OnceLock<IntCounterVec> = OnceLock::new();
    UNITS.get_or_init(|| {
        counter(
            "caravan_stock_units_total",
            "Units reserved for orders, and how their reservations ended",
            "event",
            &["reserved", "committed", "released", "expired"],
        )
    })
}

/// `caravan_allocations_total{event}`: show line-ups `allocated` (or
/// re-allocated) and allocations `returned` at the end of a show.
fn allocations() -> &'static IntCounterVec {
    static ALLOCATIONS: OnceLock<IntCounterVec> = OnceLock::new();
    ALLOCATIONS.get_or_init(|| {
        counter("caravan_allocations_total", "Show allocations made and returned", "event", &["allocated", "returned"])
    })
}

/// `caravan_sold_out_total{pool}`: a reservation took the last unit of a
/// product — of the `general` pool, or of a `show`'s allocation.
fn sold_out() -> &'static IntCounterVec {
    static SOLD_OUT: OnceLock<IntCounterVec> = OnceLock::new();
    SOLD_OUT.get_or_init(|| {
        counter("caravan_sold_out_total", "Reservations that took a product's last unit", "pool", &["show", "general"])
    })
}

/// `n` units moved by a reservation step (`reserved`, `committed`,
/// `released`, `expired`).
pub fn units_moved(event: &str, n: i64) {
    units().with_label_values(&[event]).inc_by(u64::try_from(n).unwrap_or(0));
}

/// A show's allocation was made or changed.
pub fn allocated() {
    allocations().with_label_values(&["allocated"]).inc();
}

/// A show's allocation was returned.
pub fn returned() {
    allocations().with_label_values(&["returned"]).inc();
}

/// A product sold out, in a show's allocation or in the general pool.
pub fn sold_out_in(show: bool) {
    sold_out().with_label_values(&[if show { "show" } else { "general" }]).inc();
}

/// `caravan_reservations_queued`: one-line reservations waiting for their
/// product's next batch (not yet in a transaction). A queue that only grows
/// is a hot product whose batches cannot keep up.
pub fn queued() -> &'static IntGauge {
    static QUEUED: OnceLock<IntGauge> = OnceLock::new();
    QUEUED.get_or_init(|| {
        match IntGauge::new("caravan_reservations_queued", "Reservations waiting for their product's next batch") {
            Ok(gauge) => register(gauge),
            Err(e) => unreachable!("a valid metric definition: {e}"),
        }
    })
}

/// `caravan_reservation_batch_size`: reservations per batch, observed as a
/// batch begins its transaction. Batches of one under a flash sale mean the
/// batcher is not batching.
pub fn batch_size() -> &'static Histogram {
    static SIZE: OnceLock<Histogram> = OnceLock::new();
    SIZE.get_or_init(|| {
        let opts = HistogramOpts::new("caravan_reservation_batch_size", "Reservations per batch, as it begins")
            .buckets(vec![1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0]);
        match Histogram::with_opts(opts) {
            Ok(histogram) => register(histogram),
            Err(e) => unreachable!("a valid metric definition: {e}"),
        }
    })
}
