//! Client channels of the load generator: each sends the API key.

use std::net::SocketAddr;

use tonic::{
    body::Body,
    transport::{Certificate, ClientTlsConfig, Endpoint},
};

/// A channel that sends `authorization: Bearer <key>` with every call.
#[derive(Debug, Clone)]
pub struct Authed {
    inner: tonic::transport::Channel,
    authorization: Option<http::HeaderValue>,
}

impl Authed {
    /// A lazily connected channel to `addr` (TLS when `ca_pem` is given).
    pub fn new(addr: &str, key: Option<&str>, ca_pem: Option<&str>) -> anyhow::Result<Self> {
        let scheme = if ca_pem.is_some() { "https" } else { "http" };
        let url = if addr.contains("://") { addr.to_owned() } else { format!("{scheme}://{addr}") };
        let mut endpoint = Endpoint::from_shared(url)?.tcp_nodelay(true);
        if let Some(ca) = ca_pem {
            endpoint = endpoint.tls_config(ClientTlsConfig::new().ca_certificate(Certificate::from_pem(ca)))?;
        }
        let authorization = match key {
            None => None,
            Some(key) => {
                let mut value = http::HeaderValue::from_str(&format!("Bearer {key}"))?;
                value.set_sensitive(true);
                Some(value)
            }
        };
        Ok(Authed { inner: endpoint.connect_lazy(), authorization })
    }

    /// Channels to the same address: each is its own HTTP/2 connection.
    pub fn many(addr: &str, key: Option<&str>, ca_pem: Option<&str>, n: usize) -> anyhow::Result<Vec<Self>> {
        (0..n.max(1)).map(|_| Authed::new(addr, key, ca_pem)).collect()
    }

    /// A plaintext channel to a socket address.
    pub fn plaintext(addr: SocketAddr, key: Option<&str>) -> anyhow::Result<Self> {
        Authed::new(&addr.to_string(), key, None)
    }
}

impl tower::Service<http::Request<Body>> for Authed {
    type Response = http::Response<Body>;
    type Error = tonic::transport::Error;
    type Future = <tonic::transport::Channel as tower::Service<http::Request<Body>>>::Future;

    fn poll_ready(&mut self, cx: &mut std::task::Context<'_>) -> std::task::Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<Body>) -> Self::Future {
        if let Some(value) = &self.authorization {
            request.headers_mut().insert("authorization", value.clone());
        }
        self.inner.call(request)
    }
}
