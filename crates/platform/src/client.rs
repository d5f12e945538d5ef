//! Channels to other caravan services.

use std::time::Duration;

use tonic::transport::{Channel, Endpoint};
use url::Url;

/// A lazily connected channel to `url`: the service starts even if its
/// upstream is not up yet, and a call to an unreachable upstream fails with
/// `UNAVAILABLE` after `connect_timeout` instead of hanging.
pub fn channel(url: &Url, connect_timeout: Duration) -> Result<Channel, tonic::transport::Error> {
    Ok(Endpoint::from_shared(url.as_str().trim_end_matches('/').to_owned())?
        .connect_timeout(connect_timeout)
        .tcp_nodelay(true)
        .http2_keep_alive_interval(Duration::from_secs(30))
        .keep_alive_timeout(Duration::from_secs(10))
        .keep_alive_while_idle(true)
        .connect_lazy())
}
