//! What orders declares for itself, beyond every service's settings: the
//! buyer's payment window, how long inventory holds an order's stock, and the
//! saga's failpoints.

use std::time::Duration;

use caravan_platform::config::{ConfigError, OwnSettings, ServiceConfig, duration, duration_at_least};

/// Orders' own settings (`caravan serve orders --help`).
#[derive(Debug, Clone, clap::Args)]
#[command(next_help_heading = "Orders")]
#[group(id = "OrdersSettings")]
pub struct Settings {
    /// How long a buyer has to pay an order.
    #[arg(long, env = "CARAVAN_PAYMENT_WINDOW", default_value = "10m",
          value_parser = duration_at_least(Duration::from_secs(1)))]
    pub payment_window: Duration,
    /// How long inventory holds an order's stock; longer than the payment
    /// window plus the call limit, so every payment made in time finds its
    /// hold.
    #[arg(long, env = "CARAVAN_RESERVATION_TTL", default_value = "15m", value_parser = duration)]
    pub reservation_ttl: Duration,
    /// Crash drills only: abort the process at this saga step.
    #[arg(long, env = "CARAVAN_FAILPOINT", value_parser = clap::builder::PossibleValuesParser::new(FAILPOINTS))]
    pub failpoint: Option<String>,
}

impl OwnSettings for Settings {
    fn check(&self, common: &ServiceConfig) -> Result<(), ConfigError> {
        if self.reservation_ttl <= self.payment_window + common.call_limit {
            return Err(ConfigError::new(
                "CARAVAN_RESERVATION_TTL",
                format!(
                    "must be longer than CARAVAN_PAYMENT_WINDOW plus CARAVAN_CALL_LIMIT ({}), so a payment made in \
                     time finds its hold",
                    humantime::format_duration(self.payment_window + common.call_limit)
                ),
            ));
        }
        Ok(())
    }
}

/// Every failpoint of the saga (see [`caravan_platform::failpoint`]), so a
/// misspelt one is a configuration error instead of a drill that silently
/// never fires.
pub const FAILPOINTS: &[&str] = &[
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

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use caravan_platform::config::{Declared, ServiceKind};

    use super::*;

    fn settings(pairs: &[(&str, &str)]) -> Result<Settings, ConfigError> {
        Settings::from_vars(&pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect::<HashMap<_, _>>())
    }

    #[test]
    fn the_declared_defaults_are_valid() {
        let defaults = Settings::declared_defaults();
        assert_eq!(defaults.payment_window, Duration::from_secs(600));
        assert_eq!(defaults.failpoint, None);
        let common = ServiceConfig::local(ServiceKind::Orders, std::path::Path::new("data"));
        assert_eq!(defaults.check(&common), Ok(()));
    }

    #[test]
    fn bad_values_name_their_variable() {
        let common = ServiceConfig::local(ServiceKind::Orders, std::path::Path::new("data"));
        let err = settings(&[("CARAVAN_RESERVATION_TTL", "5m")]).unwrap().check(&common).unwrap_err();
        assert_eq!(err.variable, "CARAVAN_RESERVATION_TTL", "{err}");
        assert_eq!(settings(&[("CARAVAN_FAILPOINT", "orders.nowhere")]).unwrap_err().variable, "CARAVAN_FAILPOINT");
        assert_eq!(settings(&[("CARAVAN_PAYMENT_WINDOW", "10ms")]).unwrap_err().variable, "CARAVAN_PAYMENT_WINDOW");
        let armed = settings(&[("CARAVAN_FAILPOINT", "orders.pay.after_commit")]).unwrap();
        assert_eq!(armed.failpoint.as_deref(), Some("orders.pay.after_commit"));
    }
}
