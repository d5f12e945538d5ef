//! TLS on the service port with a certificate that can be rotated while
//! serving: the certificate and key are re-read from their files when they
//! change, and new connections get the new certificate (connections already
//! open keep theirs). With a client CA, clients must present a certificate
//! it signed (mutual TLS).

use std::{
    fmt,
    path::PathBuf,
    sync::{Arc, RwLock},
    time::Duration,
};

use futures::{Stream, StreamExt as _};
use rustls::{
    RootCertStore, ServerConfig,
    crypto::CryptoProvider,
    pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject as _},
    server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier},
    sign::CertifiedKey,
};
use tokio::net::TcpStream;
use tokio_rustls::{TlsAcceptor, server::TlsStream};
use tokio_util::sync::CancellationToken;

use crate::config::ServerTls;

/// How long a client may take over its TLS handshake.
const HANDSHAKE: Duration = Duration::from_secs(10);

/// The certificate served now.
struct Reloading {
    current: RwLock<Arc<CertifiedKey>>,
}

impl fmt::Debug for Reloading {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Reloading").finish_non_exhaustive()
    }
}

impl ResolvesServerCert for Reloading {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current.read().unwrap_or_else(|e| e.into_inner()).clone())
    }
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The certificate chain and key in PEM, ready to serve.
fn certified(provider: &CryptoProvider, cert_pem: &str, key_pem: &str) -> Result<CertifiedKey, String> {
    let chain = CertificateDer::pem_slice_iter(cert_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("the certificate is not PEM: {e}"))?;
    if chain.is_empty() {
        return Err("no certificate in the certificate file".into());
    }
    let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).map_err(|e| format!("the key is not PEM: {e}"))?;
    let key = provider.key_provider.load_private_key(key).map_err(|e| format!("the key cannot sign: {e}"))?;
    let certified = CertifiedKey::new(chain, key);
    certified.keys_match().map_err(|e| format!("the key is not the certificate's: {e}"))?;
    Ok(certified)
}

/// The service port's TLS handshakes.
#[derive(Clone)]
pub struct Acceptor(TlsAcceptor);

impl fmt::Debug for Acceptor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Acceptor").finish_non_exhaustive()
    }
}

/// An acceptor for `tls`; with its files known, it re-reads them every
/// `reload` until `shutdown`, keeping the previous certificate if the new
/// files do not make one.
pub fn acceptor(tls: &ServerTls, reload: Duration, shutdown: CancellationToken) -> anyhow::Result<Acceptor> {
    let provider = provider();
    let first = certified(&provider, &tls.cert_pem, tls.key_pem.expose()).map_err(anyhow::Error::msg)?;
    let resolver = Arc::new(Reloading { current: RwLock::new(Arc::new(first)) });
    let builder = ServerConfig::builder_with_provider(provider.clone()).with_safe_default_protocol_versions()?;
    let builder = match &tls.client_ca_pem {
        None => builder.with_no_client_auth(),
        Some(ca) => {
            let mut roots = RootCertStore::empty();
            for cert in CertificateDer::pem_slice_iter(ca.as_bytes()) {
                roots.add(cert?)?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone()).build()?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut config = builder.with_cert_resolver(resolver.clone());
    config.alpn_protocols = vec![b"h2".to_vec()];
    if let Some((cert, key)) = tls.files.clone() {
        watch(cert, key, reload, resolver, provider, shutdown);
    }
    Ok(Acceptor(TlsAcceptor::from(Arc::new(config))))
}

/// Swaps in the certificate and key of `cert` and `key` whenever they change.
fn watch(
    cert: PathBuf,
    key: PathBuf,
    every: Duration,
    resolver: Arc<Reloading>,
    provider: Arc<CryptoProvider>,
    shutdown: CancellationToken,
) {
    crate::auth::keys::on_change(vec![cert.clone(), key.clone()], every, shutdown, move || {
        let read = std::fs::read_to_string(&cert)
            .and_then(|c| std::fs::read_to_string(&key).map(|k| (c, k)))
            .map_err(|e| e.to_string())
            .and_then(|(c, k)| certified(&provider, &c, &k));
        match read {
            Ok(certified) => {
                *resolver.current.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(certified);
                tracing::info!(cert = %cert.display(), "TLS certificate reloaded: new connections get it");
            }
            Err(e) => {
                tracing::error!(cert = %cert.display(), error = %e, "TLS certificate not reloaded; keeping the previous one")
            }
        }
    });
}

/// The TLS connections of `tcp`: each handshake on its own task (a slow
/// client never holds up the others), failed ones dropped.
pub fn incoming<S>(
    tcp: S,
    Acceptor(acceptor): Acceptor,
) -> impl Stream<Item = Result<TlsStream<TcpStream>, std::io::Error>>
where
    S: Stream<Item = Result<TcpStream, std::io::Error>> + Send + 'static,
{
    let (sender, receiver) = tokio::sync::mpsc::channel(64);
    tokio::spawn(async move {
        let mut tcp = std::pin::pin!(tcp);
        while let Some(accepted) = tcp.next().await {
            let Ok(stream) = accepted else { continue };
            let (acceptor, sender) = (acceptor.clone(), sender.clone());
            tokio::spawn(async move {
                match tokio::time::timeout(HANDSHAKE, acceptor.accept(stream)).await {
                    Ok(Ok(tls)) => {
                        let _ = sender.send(Ok(tls)).await;
                    }
                    Ok(Err(e)) => tracing::debug!(error = %e, "TLS handshake failed"),
                    Err(_) => tracing::debug!("TLS handshake timed out"),
                }
            });
        }
    });
    tokio_stream::wrappers::ReceiverStream::new(receiver)
}
