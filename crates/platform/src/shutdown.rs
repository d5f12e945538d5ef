//! Shutdown on SIGTERM (Kubernetes) or SIGINT (Ctrl-C).

use std::time::Duration;

use tokio_util::sync::CancellationToken;

/// After the calls have drained, how long the last spans may take to leave.
pub const TRACE_FLUSH: Duration = Duration::from_secs(2);
/// After that, how long tasks still running get before the process exits.
pub const RUNTIME_STOP: Duration = Duration::from_secs(1);

/// The longest a process takes from SIGTERM to its exit: the grace of the
/// calls in flight (the drain delay is within it), the trace flush, the
/// runtime's stop. A pod's `terminationGracePeriodSeconds` must cover this
/// plus its `preStop` sleep (`deploy/tests/check_manifests.py` checks it).
pub fn exit_budget(shutdown_grace: Duration) -> Duration {
    shutdown_grace + TRACE_FLUSH + RUNTIME_STOP
}

/// Cancels `token` on the first SIGTERM or SIGINT. A second signal while
/// draining exits at once, for an operator who does not want to wait.
pub fn cancel_on_signal(token: CancellationToken) {
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::info!("signal received: shutting down (send again to exit at once)");
        token.cancel();
        wait_for_signal().await;
        tracing::warn!("second signal: exiting without draining");
        std::process::exit(130);
    });
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGTERM; only Ctrl-C stops the server");
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
