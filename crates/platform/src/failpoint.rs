//! Failpoints: named steps of a saga at which the process can be made to
//! abort, to prove that every step converges after a crash.
//!
//! `CARAVAN_FAILPOINT=orders.place.after_reserve` arms one; when the code
//! reaches that step the process aborts at once — no drain, no flush, no
//! reply — exactly as if it had been killed with `kill -9` there. Unarmed, a
//! failpoint costs one comparison. Only crash drills and tests arm them.

use std::sync::Arc;

/// Every failpoint of every service, so a misspelt one is a configuration
/// error instead of a drill that silently never fires.
pub const KNOWN: &[&str] = &[
    // PlaceOrder: the order is written PENDING; nothing is reserved.
    "orders.place.after_insert",
    // PlaceOrder: inventory holds the stock; the order is still PENDING.
    "orders.place.after_reserve",
    // PlaceOrder: inventory refused the stock; the PENDING order is not
    // forgotten yet.
    "orders.place.after_refusal",
    // PlaceOrder: the order is AWAITING_PAYMENT; the partner has no answer.
    "orders.place.after_accept",
    // ConfirmPayment: the payment reference is recorded; nothing committed.
    "orders.pay.after_record",
    // ConfirmPayment: inventory sold the stock; the order is not PAID yet.
    "orders.pay.after_commit",
    // CancelOrder: the hold is given back; the order is not CANCELLED yet.
    "orders.cancel.after_release",
    // Expiry: the hold of an unpaid order is given back; not EXPIRED yet.
    "orders.expiry.after_release",
    // Recovery: a stuck order is REJECTED; its hold not yet given back.
    "orders.recovery.after_reject",
];

/// Whether `name` is a failpoint.
pub fn is_known(name: &str) -> bool {
    KNOWN.contains(&name)
}

/// The failpoint armed in this process, if any.
#[derive(Debug, Clone, Default)]
pub struct Failpoints {
    armed: Option<Arc<str>>,
}

impl Failpoints {
    /// Arms `armed` (validated by the configuration).
    pub fn new(armed: Option<&str>) -> Self {
        Failpoints { armed: armed.map(Arc::from) }
    }

    /// Aborts the process if `name` is the armed failpoint.
    pub fn hit(&self, name: &'static str) {
        debug_assert!(is_known(name), "failpoint {name} is not listed in failpoint::KNOWN");
        if self.armed.as_deref() == Some(name) {
            tracing::error!(failpoint = name, "failpoint reached: aborting the process");
            eprintln!("caravan: failpoint {name} reached: aborting");
            std::process::abort();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unarmed_or_other_failpoint_does_nothing() {
        Failpoints::default().hit("orders.place.after_reserve");
        Failpoints::new(Some("orders.place.after_insert")).hit("orders.place.after_reserve");
        assert!(is_known("orders.recovery.after_reject"));
        assert!(!is_known("orders.place"));
    }
}
