//! Keys never reach the logs: every log line of two services, at the most
//! verbose level, while calls with good, bad and refused keys go through them.

#![allow(clippy::unwrap_used)] // Test helpers fail loudly; that is their job.

use std::{
    io::Write,
    sync::{Arc, Mutex},
};

use caravan_platform::{app::Application, config::ServiceKind};
use caravan_proto::{
    catalog::v1::{GetCountryRequest, catalog_service_client::CatalogServiceClient},
    scheduling::v1::{CreateHostRequest, Host, scheduling_service_client::SchedulingServiceClient},
};
use caravan_testkit::{Caller, KeyedChannel, TestDatabase, service_config};
use tracing::Dispatch;
use tracing_subscriber::{EnvFilter, Layer, Registry, fmt, layer::SubscriberExt as _};

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn capturing(captured: &Captured) -> Dispatch {
    let captured = captured.clone();
    let layer = fmt::layer()
        .json()
        .with_writer(move || captured.clone())
        .with_filter(EnvFilter::new("debug,caravan_platform=trace,caravan_catalog=trace,caravan_scheduling=trace"));
    Dispatch::new(Registry::default().with(layer))
}

#[tokio::test]
async fn no_key_appears_in_any_log_line() {
    let captured = Captured::default();
    // One subscriber for the process, as in production.
    tracing::dispatcher::set_global_default(capturing(&captured)).unwrap();

    let catalog_db = TestDatabase::new::<caravan_catalog::Migrator>(ServiceKind::Catalog).await.unwrap();
    let catalog =
        Application::<caravan_catalog::Catalog>::build(service_config(ServiceKind::Catalog, catalog_db.config(), &[]))
            .await
            .unwrap();
    let catalog_addr = catalog.local_addr();
    let token = caravan_platform::CancellationToken::new();
    let catalog_task = tokio::spawn(catalog.run_until_stopped(token.clone()));
    let scheduling_db = TestDatabase::new::<caravan_scheduling::Migrator>(ServiceKind::Scheduling).await.unwrap();
    let scheduling = Application::<caravan_scheduling::Scheduling>::build(service_config(
        ServiceKind::Scheduling,
        scheduling_db.config(),
        &[(ServiceKind::Catalog, catalog_addr)],
    ))
    .await
    .unwrap();
    let scheduling_addr = scheduling.local_addr();
    let scheduling_task = tokio::spawn(scheduling.run_until_stopped(token.clone()));

    // A call that crosses to catalog with the service key, refusals, a bad key.
    let host =
        Host { display_name: "Akmalkhon Olimkhonov".into(), country: "countries/UZ".into(), ..Default::default() };
    let create = CreateHostRequest { host: Some(host), host_id: "olimkhonov".into(), request_id: "r-1".into() };
    let mut operator = SchedulingServiceClient::new(KeyedChannel::new(scheduling_addr, Some(Caller::Operator)));
    operator.create_host(create.clone()).await.unwrap();
    let mut partner = SchedulingServiceClient::new(KeyedChannel::new(scheduling_addr, Some(Caller::Hema)));
    partner.create_host(create.clone()).await.unwrap_err();
    let bad_key = caravan_platform::auth::keys::generate();
    let mut stranger =
        CatalogServiceClient::new(KeyedChannel::with_header(catalog_addr, Some(format!("Bearer {bad_key}"))));
    stranger.get_country(GetCountryRequest { name: "countries/UZ".into(), as_of: None }).await.unwrap_err();
    token.cancel();
    scheduling_task.await.unwrap().unwrap();
    catalog_task.await.unwrap().unwrap();

    let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(logs.lines().count() > 10, "the capture works: {logs}");
    assert!(logs.contains("ops-test"), "who called is logged");
    let mut secrets: Vec<String> = caravan_testkit::Caller::all().iter().map(|c| c.key().to_owned()).collect();
    secrets.push(bad_key);
    for secret in secrets {
        // The key, or any long piece of it.
        assert!(!logs.contains(&secret[4..20]), "a key leaked into the logs");
    }
}

#[tokio::test]
async fn a_rotated_service_key_is_sent_from_the_next_reload_without_a_restart() {
    use std::time::Duration;

    use caravan_platform::{
        auth::keys::{KeyEntry, KeyStore, ServiceKey, generate},
        config::Authentication,
    };
    use caravan_testkit::{TestServer, eventually, test_key_store};

    let dir = tempfile::tempdir().unwrap();
    let (catalog_keys, scheduling_key) = (dir.path().join("keys.txt"), dir.path().join("scheduling.key"));
    let svc = Caller::Service(ServiceKind::Scheduling).principal();
    let write_keys = |service_key: &str| {
        let lines = [
            KeyEntry::for_key(Caller::Operator.key(), Caller::Operator.principal()).to_line(),
            KeyEntry::for_key(service_key, svc.clone()).to_line(),
        ];
        std::fs::write(&catalog_keys, lines.join("\n") + "\n").unwrap();
    };
    let old = generate();
    write_keys(&old);
    std::fs::write(&scheduling_key, format!("{old}\n")).unwrap();
    let reload = Duration::from_millis(50);

    let catalog_db = TestDatabase::new::<caravan_catalog::Migrator>(ServiceKind::Catalog).await.unwrap();
    let mut config = service_config(ServiceKind::Catalog, catalog_db.config(), &[]);
    config.auth = Authentication::Keys {
        store: KeyStore::load(&catalog_keys).unwrap(),
        file: Some(catalog_keys.clone()),
        reload,
    };
    let catalog = TestServer::start_with::<caravan_catalog::Catalog>(config, catalog_db).await.unwrap();
    let scheduling_db = TestDatabase::new::<caravan_scheduling::Migrator>(ServiceKind::Scheduling).await.unwrap();
    let mut config =
        service_config(ServiceKind::Scheduling, scheduling_db.config(), &[(ServiceKind::Catalog, catalog.addr())]);
    config.auth = Authentication::Keys { store: test_key_store(), file: None, reload };
    config.service_key = Some(ServiceKey::from_file(&scheduling_key).unwrap());
    let scheduling = TestServer::start_with::<caravan_scheduling::Scheduling>(config, scheduling_db).await.unwrap();

    let mut operator = SchedulingServiceClient::new(scheduling.channel_as(Caller::Operator));
    let host = |id: &str| CreateHostRequest {
        host: Some(Host { display_name: id.into(), country: "countries/UZ".into(), ..Default::default() }),
        host_id: id.into(),
        request_id: String::new(),
    };
    operator.create_host(host("before")).await.expect("scheduling reaches catalog with its key");

    // Rotate: catalog accepts only the new key; scheduling's file holds it.
    let new = generate();
    write_keys(&new);
    // Catalog refuses the old key once it has reloaded its keys file...
    let refused = eventually(Duration::from_secs(10), || {
        let channel = KeyedChannel::with_header(catalog.addr(), Some(format!("Bearer {old}")));
        async move {
            let mut catalog = CatalogServiceClient::new(channel);
            catalog.get_country(GetCountryRequest { name: "countries/UZ".into(), as_of: None }).await.is_err()
        }
    })
    .await;
    assert!(refused, "catalog no longer accepts the old service key");
    // ...and only then does scheduling's key file change: CreateHost works
    // again only if scheduling sends the new key, unrestarted.
    std::fs::write(&scheduling_key, format!("{new}\n")).unwrap();
    let rotated = eventually(Duration::from_secs(10), || {
        let mut operator = operator.clone();
        async move { operator.create_host(host("after")).await.is_ok() }
    })
    .await;
    assert!(rotated, "scheduling sends the rotated key without a restart");
}
