//! Who may call what: every RPC of every service × {no key, bad key, partner,
//! operator, service}, against the four running services.

#![allow(clippy::unwrap_used)] // Test helpers fail loudly; that is their job.

mod common;

use std::net::SocketAddr;

use caravan_platform::{
    auth::{Kind, access},
    config::ServiceKind,
};
use caravan_testkit::{Caller, KeyedChannel, TestDatabase, service_config};
use tonic::{Code, codegen::http::uri::PathAndQuery};

/// Any message: an empty body decodes as the default of every request type,
/// and a response decodes as this, its fields skipped.
#[derive(Clone, PartialEq, prost::Message)]
struct Anything {}

/// How a test presents itself.
#[derive(Debug, Clone, Copy)]
enum Presented {
    NoKey,
    BadKey,
    As(Caller),
}

async fn call(addr: SocketAddr, method: &str, presented: Presented) -> Code {
    let channel = match presented {
        Presented::NoKey => KeyedChannel::new(addr, None),
        Presented::BadKey => {
            KeyedChannel::with_header(addr, Some(format!("Bearer {}", caravan_platform::auth::keys::generate())))
        }
        Presented::As(caller) => KeyedChannel::new(addr, Some(caller)),
    };
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.unwrap();
    let path = PathAndQuery::try_from(format!("/{method}")).unwrap();
    let codec = tonic_prost::ProstCodec::<Anything, Anything>::default();
    let result = if method.rsplit('/').next().is_some_and(|m| m.starts_with("Watch")) {
        match grpc.server_streaming(tonic::Request::new(Anything {}), path, codec).await {
            Ok(response) => match response.into_inner().message().await {
                Ok(_) => Ok(()),
                Err(status) => Err(status),
            },
            Err(status) => Err(status),
        }
    } else {
        grpc.unary(tonic::Request::new(Anything {}), path, codec).await.map(|_| ())
    };
    match result {
        Ok(()) => Code::Ok,
        Err(status) => status.code(),
    }
}

fn service_of(method: &str) -> ServiceKind {
    match method.split('.').nth(1) {
        Some("catalog") => ServiceKind::Catalog,
        Some("scheduling") => ServiceKind::Scheduling,
        Some("inventory") => ServiceKind::Inventory,
        Some("orders") => ServiceKind::Orders,
        other => panic!("no service for {method} ({other:?})"),
    }
}

#[tokio::test]
async fn every_rpc_admits_exactly_the_kinds_in_the_access_table() {
    // Bound first, so the databases (the fields left in `running`) live as
    // long as the test: destructuring the call's result would drop them at
    // once, and every answer would come from a service without its database.
    let running = common::start_suite().await;
    let common::RunningSuite { suite, token, .. } = running;

    let callers = [
        (Presented::As(Caller::Hema), Kind::Partner),
        (Presented::As(Caller::Operator), Kind::Operator),
        (Presented::As(Caller::Service(ServiceKind::Orders)), Kind::Service),
    ];
    let mut failures = Vec::new();
    // The four services' RPCs (the echo baseline is served only by `caravan loadgen`).
    for (method, allowed) in access::TABLE.iter().filter(|(m, _)| !m.starts_with("caravan.loadgen.")) {
        let addr = suite.addr(service_of(method));
        for presented in [Presented::NoKey, Presented::BadKey] {
            let code = call(addr, method, presented).await;
            if code != Code::Unauthenticated {
                failures.push(format!("{method} with {presented:?}: {code:?}, expected UNAUTHENTICATED"));
            }
        }
        for (presented, kind) in callers {
            let code = call(addr, method, presented).await;
            assert_ne!(code, Code::Unavailable, "{method} as {kind}: the suite is up");
            let admitted = !matches!(code, Code::Unauthenticated | Code::PermissionDenied);
            if admitted != allowed.contains(&kind) {
                failures.push(format!("{method} as {kind}: {code:?}, allowed kinds {allowed:?}"));
            }
        }
    }
    assert!(failures.is_empty(), "{} wrong answers:\n{}", failures.len(), failures.join("\n"));
    token.cancel();
    suite.wait().await.unwrap();
}

#[tokio::test]
async fn a_principal_over_its_rate_is_refused_with_retry_info_then_recovers() {
    use caravan_platform::auth::rate::RateConfig;
    use caravan_proto::catalog::v1::{GetCountryRequest, catalog_service_client::CatalogServiceClient};
    use caravan_testkit::TestServer;
    use tonic_types::StatusExt as _;

    let database = TestDatabase::new::<caravan_catalog::Migrator>(ServiceKind::Catalog).await.unwrap();
    let mut config = service_config(ServiceKind::Catalog, database.config(), &[]);
    config.rate = RateConfig { per_second: 2, burst: 3 };
    let server = TestServer::start_with::<caravan_catalog::Catalog>(config, database).await.unwrap();
    let request = || GetCountryRequest { name: "countries/UZ".into(), as_of: None };
    let mut hema = CatalogServiceClient::new(server.channel_as(Caller::Hema));

    let mut refused = None;
    for _ in 0..10 {
        if let Err(status) = hema.get_country(request()).await {
            refused = Some(status);
            break;
        }
    }
    let status = refused.expect("a burst beyond the limit is refused");
    assert_eq!(status.code(), Code::ResourceExhausted);
    let details = status.get_error_details();
    assert_eq!(details.error_info().unwrap().reason, "RATE_LIMITED");
    let wait = details.retry_info().unwrap().retry_delay.unwrap();
    assert!(wait <= std::time::Duration::from_secs(1), "{wait:?}");

    // Other principals have their own bucket; services are exempt.
    let mut douyin = CatalogServiceClient::new(server.channel_as(Caller::Douyin));
    douyin.get_country(request()).await.unwrap();
    let mut service = CatalogServiceClient::new(server.channel_as(Caller::Service(ServiceKind::Scheduling)));
    for _ in 0..10 {
        service.get_country(request()).await.unwrap();
    }
    // After the advised wait, the partner may call again.
    tokio::time::sleep(wait).await;
    hema.get_country(request()).await.unwrap();
}

#[tokio::test]
async fn keys_added_to_or_removed_from_the_keys_file_take_effect_without_a_restart() {
    use caravan_platform::{
        auth::keys::{KeyEntry, KeyStore},
        config::Authentication,
    };
    use caravan_proto::catalog::v1::{GetCountryRequest, catalog_service_client::CatalogServiceClient};
    use caravan_testkit::{TestServer, eventually};

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("keys.txt");
    let line = |caller: Caller| KeyEntry::for_key(caller.key(), caller.principal()).to_line();
    std::fs::write(&file, format!("{}\n", line(Caller::Hema))).unwrap();

    let database = TestDatabase::new::<caravan_catalog::Migrator>(ServiceKind::Catalog).await.unwrap();
    let mut config = service_config(ServiceKind::Catalog, database.config(), &[]);
    let reload = std::time::Duration::from_millis(50);
    config.auth = Authentication::Keys { store: KeyStore::load(&file).unwrap(), file: Some(file.clone()), reload };
    let server = TestServer::start_with::<caravan_catalog::Catalog>(config, database).await.unwrap();
    let code_for = |caller: Caller| {
        let mut client = CatalogServiceClient::new(server.channel_as(caller));
        async move {
            match client.get_country(GetCountryRequest { name: "countries/UZ".into(), as_of: None }).await {
                Ok(_) => Code::Ok,
                Err(status) => status.code(),
            }
        }
    };
    assert_eq!(code_for(Caller::Hema).await, Code::Ok);
    assert_eq!(code_for(Caller::Douyin).await, Code::Unauthenticated);

    // Revoke hema, add douyin.
    std::fs::write(&file, format!("# rotated\n{}\n", line(Caller::Douyin))).unwrap();
    let rotated = eventually(std::time::Duration::from_secs(10), || async {
        code_for(Caller::Hema).await == Code::Unauthenticated && code_for(Caller::Douyin).await == Code::Ok
    })
    .await;
    assert!(rotated, "the running server picked up the new keys file");

    // A broken file is not half-applied: the last good keys stay, once the
    // server has seen it (and said so in its metrics).
    let refused = || caravan_platform::metrics::metrics().keys_reloads.with_label_values(&["refused"]).get();
    let before = refused();
    std::fs::write(&file, "this is not a keys file\n").unwrap();
    assert!(eventually(reload * 100, || async { refused() > before }).await, "the broken file was seen and refused");
    assert_eq!(code_for(Caller::Douyin).await, Code::Ok);
    assert_eq!(code_for(Caller::Hema).await, Code::Unauthenticated);
}

#[tokio::test]
async fn a_revoked_key_ends_its_open_streams_at_the_next_reload() {
    use caravan_platform::{
        auth::keys::{KeyEntry, KeyStore},
        config::Authentication,
    };
    use caravan_proto::inventory::v1::{WatchStockRequest, inventory_service_client::InventoryServiceClient};
    use caravan_testkit::TestServer;

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("keys.txt");
    let line = |caller: Caller| KeyEntry::for_key(caller.key(), caller.principal()).to_line();
    std::fs::write(&file, format!("{}\n{}\n", line(Caller::Hema), line(Caller::Douyin))).unwrap();

    let database = TestDatabase::new::<caravan_inventory::Migrator>(ServiceKind::Inventory).await.unwrap();
    let mut config = service_config(ServiceKind::Inventory, database.config(), &[]);
    let reload = std::time::Duration::from_millis(50);
    config.auth = Authentication::Keys { store: KeyStore::load(&file).unwrap(), file: Some(file.clone()), reload };
    let server = TestServer::start_with::<caravan_inventory::Inventory>(config, database).await.unwrap();
    let watch = |caller: Caller| {
        let mut client = InventoryServiceClient::new(server.channel_as(caller));
        async move {
            let request = WatchStockRequest { products: vec!["products/tea".into()], ..Default::default() };
            let mut stream = client.watch_stock(request).await.unwrap().into_inner();
            stream.message().await.unwrap().expect("the snapshot");
            stream
        }
    };
    let (mut hema, mut douyin) = (watch(Caller::Hema).await, watch(Caller::Douyin).await);

    std::fs::write(&file, format!("# hema revoked\n{}\n", line(Caller::Douyin))).unwrap();
    let ended = tokio::time::timeout(std::time::Duration::from_secs(10), hema.message())
        .await
        .expect("the revoked key's stream ends at the reload, not at its lifetime");
    assert_eq!(ended.unwrap_err().code(), Code::Unauthenticated);
    let still = tokio::time::timeout(std::time::Duration::from_millis(300), douyin.message()).await;
    assert!(still.is_err(), "a stream of a key still valid stays open: {still:?}");
}
