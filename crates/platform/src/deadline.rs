//! The deadline of the call being served, so calls it makes to other services
//! carry what is left of it (gRPC deadline propagation).
//!
//! The server layer parses the caller's `grpc-timeout` into an instant and
//! runs the handler inside [`scope`]; the client layer reads [`remaining`].

use std::{future::Future, time::Duration};

use tokio::time::Instant;

tokio::task_local! {
    static DEADLINE: Option<Instant>;
}

/// Runs `fut` with `deadline` as the deadline of the call being served.
pub fn scope<F: Future>(deadline: Option<Instant>, fut: F) -> impl Future<Output = F::Output> {
    DEADLINE.scope(deadline, fut)
}

/// Time left until the deadline of the call being served; `None` when the
/// caller set none (or outside a call).
pub fn remaining() -> Option<Duration> {
    DEADLINE.try_with(|deadline| deadline.map(|d| d.saturating_duration_since(Instant::now()))).ok().flatten()
}

/// What a call bounded by [`within`] answers when its time is up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the call ran out of time")]
pub struct Elapsed;

/// Runs `fut` for at most `limit`, and ending a little before the caller's
/// own deadline, so the caller hears why instead of timing out blind; calls
/// `fut` makes to other services inherit that shorter deadline.
pub async fn within<F: Future>(limit: Duration, fut: F) -> Result<F::Output, Elapsed> {
    let budget = remaining().map_or(limit, |left| left.min(limit));
    // Leave a tenth (at most 250 ms) for the answer to travel back, also
    // from a busy machine whose scheduler runs the answer late.
    let budget = budget.saturating_sub((budget / 10).min(Duration::from_millis(250)));
    let deadline = Instant::now() + budget;
    tokio::time::timeout_at(deadline, scope(Some(deadline), fut)).await.map_err(|_| Elapsed)
}

/// Parses a `grpc-timeout` header value: up to 8 digits and a unit
/// (`H`, `M`, `S`, `m`, `u`, `n`).
pub fn parse_grpc_timeout(value: &str) -> Option<Duration> {
    if value.len() < 2 || value.len() > 9 {
        return None;
    }
    let (digits, unit) = value.split_at(value.len() - 1);
    let n: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(n.checked_mul(3600)?),
        "M" => Duration::from_secs(n.checked_mul(60)?),
        "S" => Duration::from_secs(n),
        "m" => Duration::from_millis(n),
        "u" => Duration::from_micros(n),
        "n" => Duration::from_nanos(n),
        _ => return None,
    })
}

/// Formats a `grpc-timeout` header value (milliseconds, rounded up, at least 1).
pub fn format_grpc_timeout(timeout: Duration) -> String {
    let millis = timeout.as_micros().div_ceil(1000).clamp(1, 99_999_999);
    format!("{millis}m")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_timeouts() {
        assert_eq!(parse_grpc_timeout("1500m"), Some(Duration::from_millis(1500)));
        assert_eq!(parse_grpc_timeout("2S"), Some(Duration::from_secs(2)));
        assert_eq!(parse_grpc_timeout("1H"), Some(Duration::from_secs(3600)));
        assert_eq!(parse_grpc_timeout("250u"), Some(Duration::from_micros(250)));
        for bad in ["", "m", "12x", "123456789m", "-1S"] {
            assert_eq!(parse_grpc_timeout(bad), None, "{bad}");
        }
        assert_eq!(format_grpc_timeout(Duration::from_micros(1500)), "2m");
        assert_eq!(format_grpc_timeout(Duration::ZERO), "1m");
        assert_eq!(parse_grpc_timeout(&format_grpc_timeout(Duration::from_secs(3))), Some(Duration::from_secs(3)));
    }

    #[tokio::test]
    async fn remaining_is_scoped_to_the_call() {
        assert_eq!(remaining(), None);
        let deadline = Instant::now() + Duration::from_secs(10);
        let left = scope(Some(deadline), async { remaining() }).await.unwrap();
        assert!(left <= Duration::from_secs(10) && left > Duration::from_secs(9));
        assert_eq!(scope(None, async { remaining() }).await, None);
    }

    #[tokio::test]
    async fn within_ends_before_the_callers_deadline_and_passes_it_on() {
        let limit = Duration::from_secs(10);
        let inner = within(limit, async { remaining() }).await.unwrap().unwrap();
        assert!(inner <= limit - Duration::from_millis(250) && inner > Duration::from_secs(9), "{inner:?}");

        let caller = Instant::now() + Duration::from_millis(500);
        let inner = scope(Some(caller), within(limit, async { remaining() })).await.unwrap().unwrap();
        assert!(inner <= Duration::from_millis(450), "a tenth is kept for the answer: {inner:?}");

        let started = Instant::now();
        let outcome = scope(Some(caller), within(limit, std::future::pending::<()>())).await;
        assert_eq!(outcome, Err(Elapsed));
        assert!(started.elapsed() < Duration::from_millis(500), "answered before the caller gave up");
    }
}
