//! Scheduling's domain metrics, in the process's registry (`/metrics`).

use std::sync::OnceLock;

use caravan_platform::metrics::{prometheus::IntGauge, register};

/// Registers every metric of scheduling, so /metrics lists them from the
/// start.
pub fn register_all() {
    shows_live();
    shows_starting();
}

/// `caravan_shows_live`: shows on air now, counted from the database every
/// few seconds — so every replica reports the same figure (aggregate with
/// `max`, not `sum`).
pub fn shows_live() -> &'static IntGauge {
    static LIVE: OnceLock<IntGauge> = OnceLock::new();
    LIVE.get_or_init(|| match IntGauge::new("caravan_shows_live", "Shows on air now (the same on every replica)") {
        Ok(gauge) => register(gauge),
        Err(e) => unreachable!("a valid metric definition: {e}"),
    })
}

/// `caravan_shows_starting`: scheduled shows whose start falls within the
/// next `CARAVAN_SCALE_LEAD` (15 minutes by default), counted like
/// [`shows_live`]: what the autoscalers scale orders, inventory and
/// scheduling out on ahead of a show.
pub fn shows_starting() -> &'static IntGauge {
    static STARTING: OnceLock<IntGauge> = OnceLock::new();
    STARTING.get_or_init(|| {
        match IntGauge::new(
            "caravan_shows_starting",
            "Scheduled shows starting within the scale lead time (the same on every replica)",
        ) {
            Ok(gauge) => register(gauge),
            Err(e) => unreachable!("a valid metric definition: {e}"),
        }
    })
}
