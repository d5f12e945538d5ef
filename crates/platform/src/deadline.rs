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
}
