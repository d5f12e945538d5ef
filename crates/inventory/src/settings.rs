//! What inventory declares for itself, beyond every service's settings.

use caravan_platform::config::OwnSettings;

/// Inventory's own settings (`caravan serve inventory --help`).
#[derive(Debug, Clone, clap::Args)]
#[command(next_help_heading = "Inventory")]
#[group(id = "InventorySettings")]
pub struct Settings {
    /// Most one-line reservations of one product committed in one
    /// transaction (1: each alone, no batching).
    #[arg(long, env = "CARAVAN_RESERVE_BATCH", default_value = "128",
          value_parser = clap::value_parser!(u16).range(1..=1000))]
    pub reserve_batch: u16,
}

impl OwnSettings for Settings {}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use caravan_platform::config::Declared;

    use super::*;

    #[test]
    fn the_batch_is_bounded_and_named_when_refused() {
        assert_eq!(Settings::declared_defaults().reserve_batch, 128);
        for bad in ["0", "1001", "many"] {
            let vars = HashMap::from([("CARAVAN_RESERVE_BATCH".to_owned(), bad.to_owned())]);
            assert_eq!(Settings::from_vars(&vars).unwrap_err().variable, "CARAVAN_RESERVE_BATCH", "{bad}");
        }
    }
}
