//! What scheduling declares for itself, beyond every service's settings.

use std::time::Duration;

use caravan_platform::config::{OwnSettings, duration_at_least};

/// Scheduling's own settings (`caravan serve scheduling --help`).
#[derive(Debug, Clone, clap::Args)]
#[command(next_help_heading = "Scheduling")]
#[group(id = "SchedulingSettings")]
pub struct Settings {
    /// How far ahead `caravan_shows_starting` counts scheduled shows: the
    /// autoscalers' lead time, longer than a replica takes to start and
    /// become ready.
    #[arg(long, env = "CARAVAN_SCALE_LEAD", default_value = "15m",
          value_parser = duration_at_least(Duration::from_secs(60)))]
    pub scale_lead: Duration,
}

impl OwnSettings for Settings {}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use caravan_platform::config::Declared;

    use super::*;

    #[test]
    fn the_lead_is_at_least_a_minute() {
        assert_eq!(Settings::declared_defaults().scale_lead, Duration::from_secs(15 * 60));
        let vars = HashMap::from([("CARAVAN_SCALE_LEAD".to_owned(), "10s".to_owned())]);
        assert_eq!(Settings::from_vars(&vars).unwrap_err().variable, "CARAVAN_SCALE_LEAD");
    }
}
