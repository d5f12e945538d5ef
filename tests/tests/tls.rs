//! TLS and mutual TLS, on a partner's call and between services, with
//! certificates made for the test; health stays plaintext for probes.

#![allow(clippy::unwrap_used)] // Test helpers fail loudly; that is their job.

use std::net::SocketAddr;

use caravan_platform::config::{ClientTls, Secret, ServerTls, ServiceKind};
use caravan_proto::{
    catalog::v1::{GetCountryRequest, catalog_service_client::CatalogServiceClient},
    scheduling::v1::{CreateHostRequest, Host, scheduling_service_client::SchedulingServiceClient},
};
use caravan_testkit::{Caller, TestDatabase, TestServer, health_status, service_config};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use tonic::{
    Request,
    transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity},
};
use tonic_health::pb::health_check_response::ServingStatus;

struct Pki {
    ca_pem: String,
    server: (String, String),
    client: (String, String),
}

fn pki() -> Pki {
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    let leaf = |names: Vec<String>| {
        let key = KeyPair::generate().unwrap();
        let cert = CertificateParams::new(names).unwrap().signed_by(&key, &ca).unwrap();
        (cert.pem(), key.serialize_pem())
    };
    Pki {
        ca_pem: ca.pem(),
        server: leaf(vec!["localhost".into()]),
        client: leaf(vec!["svc-scheduling.caravan".into()]),
    }
}

async fn catalog_with_tls(pki: &Pki, mutual: bool) -> TestServer {
    let database = TestDatabase::new::<caravan_catalog::Migrator>(ServiceKind::Catalog).await.unwrap();
    let mut config = service_config(ServiceKind::Catalog, database.config(), &[]);
    config.tls = Some(ServerTls {
        files: None,
        cert_pem: pki.server.0.clone(),
        key_pem: Secret::new(pki.server.1.clone()),
        client_ca_pem: mutual.then(|| pki.ca_pem.clone()),
    });
    config.health_addr = Some(SocketAddr::from(([127, 0, 0, 1], 0)));
    TestServer::start_with::<caravan_catalog::Catalog>(config, database).await.unwrap()
}

async fn tls_channel(addr: SocketAddr, pki: &Pki, with_cert: bool) -> Result<Channel, tonic::transport::Error> {
    let mut tls = ClientTlsConfig::new().domain_name("localhost").ca_certificate(Certificate::from_pem(&pki.ca_pem));
    if with_cert {
        tls = tls.identity(Identity::from_pem(&pki.client.0, &pki.client.1));
    }
    Endpoint::from_shared(format!("https://localhost:{}", addr.port()))?.tls_config(tls)?.connect().await
}

async fn get_country(channel: Channel) -> Result<String, tonic::Status> {
    let key = format!("Bearer {}", Caller::Hema.key());
    let mut client = CatalogServiceClient::with_interceptor(channel, move |mut request: Request<()>| {
        request.metadata_mut().insert("authorization", key.parse().unwrap());
        Ok(request)
    });
    let request = GetCountryRequest { name: "countries/UZ".into(), as_of: None };
    client.get_country(request).await.map(|r| r.into_inner().name)
}

#[tokio::test]
async fn a_partner_calls_over_tls_and_probes_stay_plaintext() {
    let pki = pki();
    let server = catalog_with_tls(&pki, false).await;
    let channel = tls_channel(server.addr(), &pki, false).await.unwrap();
    assert_eq!(get_country(channel).await.unwrap(), "countries/UZ");

    // Plaintext on the TLS port does not get through.
    let plain = Endpoint::from_shared(format!("http://{}", server.addr())).unwrap().connect_lazy();
    assert!(get_country(plain).await.is_err());
    // Probes use the plaintext health port.
    let health = server.health_addr().expect("a plaintext health port");
    assert_eq!(health_status(health, "").await.unwrap(), ServingStatus::Serving);
}

#[tokio::test]
async fn mutual_tls_requires_a_client_certificate_and_services_present_theirs() {
    let pki = pki();
    let catalog = catalog_with_tls(&pki, true).await;
    let without = match tls_channel(catalog.addr(), &pki, false).await {
        Err(_) => true,
        Ok(channel) => get_country(channel).await.is_err(),
    };
    assert!(without, "no client certificate, no call");
    let with = tls_channel(catalog.addr(), &pki, true).await.unwrap();
    assert_eq!(get_country(with).await.unwrap(), "countries/UZ");

    // Scheduling reaches catalog over mutual TLS with its own certificate.
    let database = TestDatabase::new::<caravan_scheduling::Migrator>(ServiceKind::Scheduling).await.unwrap();
    let mut config = service_config(ServiceKind::Scheduling, database.config(), &[]);
    config
        .upstreams
        .insert(ServiceKind::Catalog, format!("https://localhost:{}", catalog.addr().port()).parse().unwrap());
    config.upstream_tls = Some(ClientTls {
        ca_pem: pki.ca_pem.clone(),
        identity: Some((pki.client.0.clone(), Secret::new(pki.client.1.clone()))),
    });
    let scheduling = TestServer::start_with::<caravan_scheduling::Scheduling>(config, database).await.unwrap();
    let mut client = SchedulingServiceClient::new(scheduling.channel());
    let host =
        Host { display_name: "Akmalkhon Olimkhonov".into(), country: "countries/UZ".into(), ..Default::default() };
    let created = client
        .create_host(CreateHostRequest { host: Some(host), host_id: "olimkhonov".into(), request_id: String::new() })
        .await
        .unwrap();
    assert_eq!(created.into_inner().country, "countries/UZ");
}

#[tokio::test]
async fn a_rotated_certificate_is_served_to_new_connections_without_a_restart() {
    use std::time::Duration;

    use caravan_platform::config::Authentication;
    use caravan_testkit::{eventually, test_key_store};

    // Two authorities: a client trusting only the second one connects once
    // the server presents the second certificate.
    let (old, new) = (pki(), pki());
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("tls.crt"), dir.path().join("tls.key"));
    std::fs::write(&cert, &old.server.0).unwrap();
    std::fs::write(&key, &old.server.1).unwrap();
    let database = TestDatabase::new::<caravan_catalog::Migrator>(ServiceKind::Catalog).await.unwrap();
    let mut config = service_config(ServiceKind::Catalog, database.config(), &[]);
    config.tls = Some(ServerTls {
        cert_pem: old.server.0.clone(),
        key_pem: Secret::new(old.server.1.clone()),
        client_ca_pem: None,
        files: Some((cert.clone(), key.clone())),
    });
    config.health_addr = Some(SocketAddr::from(([127, 0, 0, 1], 0)));
    config.auth = Authentication::Keys { store: test_key_store(), file: None, reload: Duration::from_millis(50) };
    let server = TestServer::start_with::<caravan_catalog::Catalog>(config, database).await.unwrap();

    let old_channel = tls_channel(server.addr(), &old, false).await.unwrap();
    assert_eq!(get_country(old_channel.clone()).await.unwrap(), "countries/UZ");
    assert!(tls_channel(server.addr(), &new, false).await.is_err(), "the new certificate is not served yet");

    // What a renewed Secret does: new files in place (key first, then the
    // certificate, as a renewal tool writes them).
    std::fs::write(&key, &new.server.1).unwrap();
    std::fs::write(&cert, &new.server.0).unwrap();
    let rotated = eventually(Duration::from_secs(10), || async {
        match tls_channel(server.addr(), &new, false).await {
            Ok(channel) => get_country(channel).await.is_ok(),
            Err(_) => false,
        }
    })
    .await;
    assert!(rotated, "new connections get the renewed certificate");
    assert_eq!(get_country(old_channel).await.unwrap(), "countries/UZ", "an open connection keeps its session");
}
