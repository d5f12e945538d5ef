//! Per-principal request rate limits (a token bucket per principal, per
//! replica: the cluster-wide limit is replicas × rate). Services are exempt.

use std::{num::NonZeroU32, sync::Arc, time::Duration};

use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter, clock::Clock as _};

use super::{Kind, Principal};

/// Rate and burst per principal (declared in [`crate::config::LimitSettings`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateConfig {
    /// Sustained calls per second.
    pub per_second: u32,
    /// Calls allowed at once above the sustained rate.
    pub burst: u32,
}

/// The limiter of one replica.
#[derive(Debug, Clone)]
pub struct RateLimits {
    limiter: Option<Arc<DefaultKeyedRateLimiter<String>>>,
}

impl RateLimits {
    /// Limits with `config`; a zero rate switches them off.
    pub fn new(config: RateConfig) -> Self {
        let limiter = NonZeroU32::new(config.per_second).map(|rate| {
            let burst = NonZeroU32::new(config.burst.max(config.per_second)).unwrap_or(rate);
            Arc::new(RateLimiter::keyed(Quota::per_second(rate).allow_burst(burst)))
        });
        RateLimits { limiter }
    }

    /// `Ok` if `principal` may call now, else how long until it may.
    pub fn check(&self, principal: &Principal) -> Result<(), Duration> {
        let Some(limiter) = &self.limiter else {
            return Ok(());
        };
        if principal.kind == Kind::Service {
            return Ok(());
        }
        limiter
            .check_key(&principal.id)
            .map_err(|not_until| not_until.wait_time_from(governor::clock::DefaultClock::default().now()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_principal_over_its_burst_is_refused_and_others_are_not() {
        let limits = RateLimits::new(RateConfig { per_second: 1, burst: 3 });
        let hema = Principal::partner("hema-shop", "hema");
        for _ in 0..3 {
            assert!(limits.check(&hema).is_ok());
        }
        let wait = limits.check(&hema).unwrap_err();
        assert!(wait > Duration::ZERO && wait <= Duration::from_secs(1), "{wait:?}");
        assert!(limits.check(&Principal::partner("douyin-live", "douyin")).is_ok(), "buckets are per principal");
        for _ in 0..100 {
            assert!(limits.check(&Principal::service("svc-orders")).is_ok(), "services are exempt");
        }
        assert!(RateLimits::new(RateConfig { per_second: 0, burst: 0 }).check(&hema).is_ok(), "0 switches limits off");
    }
}
