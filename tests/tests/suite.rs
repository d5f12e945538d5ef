//! All four services in one process, each with its own fresh database,
//! talking over real gRPC on loopback, as `caravan up` runs them.

#![allow(clippy::unwrap_used)] // Test helpers fail loudly; that is their job.

mod common;

use caravan::suite::Suite;
use caravan_platform::config::ServiceKind;
use caravan_proto::scheduling::v1::{
    CreateHostRequest, GetHostRequest, Host, ListHostsRequest, UpdateHostRequest,
    scheduling_service_client::SchedulingServiceClient,
};
use caravan_testkit::{Caller, KeyedChannel, health_status, violated_fields};
use common::start_suite;
use tonic::Code;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_types::StatusExt;

fn scheduling(suite: &Suite) -> SchedulingServiceClient<KeyedChannel> {
    SchedulingServiceClient::new(KeyedChannel::new(suite.addr(ServiceKind::Scheduling), Some(Caller::Operator)))
}

#[tokio::test]
async fn every_service_reports_serving() {
    let running = start_suite().await;
    for (kind, name) in [
        (ServiceKind::Catalog, "caravan.catalog.v1.CatalogService"),
        (ServiceKind::Scheduling, "caravan.scheduling.v1.SchedulingService"),
        (ServiceKind::Inventory, "caravan.inventory.v1.InventoryService"),
        (ServiceKind::Orders, "caravan.orders.v1.OrdersService"),
    ] {
        let addr = running.suite.addr(kind);
        assert_eq!(health_status(addr, "").await.unwrap(), ServingStatus::Serving, "{kind}");
        assert_eq!(health_status(addr, name).await.unwrap(), ServingStatus::Serving, "{kind} {name}");
    }
    running.token.cancel();
    running.suite.wait().await.expect("every service drains cleanly");
}

#[tokio::test]
async fn creating_a_host_asks_catalog_about_the_country() {
    let running = start_suite().await;
    let mut client = scheduling(&running.suite);
    let host = |country: &str| Host {
        display_name: "Akmalkhon Olimkhonov".into(),
        title: "Economic Counselor".into(),
        country: country.into(),
        embassy: "Embassy of Uzbekistan in China".into(),
        ..Default::default()
    };

    // Catalog knows Uzbekistan: the host is created.
    let created = client
        .create_host(CreateHostRequest {
            host: Some(host("countries/UZ")),
            host_id: "olimkhonov".into(),
            request_id: String::new(),
        })
        .await
        .expect("create host")
        .into_inner();
    assert_eq!(created.name, "hosts/olimkhonov");
    assert_eq!(created.country, "countries/UZ");
    let read = client.get_host(GetHostRequest { name: "hosts/olimkhonov".into() }).await.unwrap().into_inner();
    assert_eq!(read, created);

    // Catalog does not know ZZ: the answer comes back across the boundary as a field violation.
    let status = client
        .create_host(CreateHostRequest {
            host: Some(host("countries/ZZ")),
            host_id: "nobody".into(),
            request_id: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    let details = status.get_error_details();
    assert_eq!(details.bad_request().unwrap().field_violations[0].field, "host.country");
    let status = client.get_host(GetHostRequest { name: "hosts/nobody".into() }).await.unwrap_err();
    assert_eq!(status.code(), Code::NotFound, "a refused host is not stored");

    // A retry of a create with a generated id gets the same host, not a second one.
    let request =
        CreateHostRequest { host: Some(host("countries/PK")), host_id: String::new(), request_id: "retry-me".into() };
    let first = client.create_host(request.clone()).await.unwrap().into_inner();
    let again = client.create_host(request).await.unwrap().into_inner();
    assert_eq!(again, first);
    assert!(first.name.starts_with("hosts/h"), "{}", first.name);

    // Updates: a new country is checked with catalog too; other fields are not.
    let update = |host: Host, paths: &[&str]| UpdateHostRequest {
        host: Some(host),
        update_mask: Some(prost_types::FieldMask { paths: paths.iter().map(|p| (*p).to_owned()).collect() }),
        request_id: String::new(),
    };
    let status = client
        .update_host(update(
            Host { name: created.name.clone(), country: "countries/ZZ".into(), ..Default::default() },
            &["country"],
        ))
        .await
        .unwrap_err();
    assert_eq!(status.get_error_details().bad_request().unwrap().field_violations[0].field, "host.country");
    let updated = client
        .update_host(update(
            Host {
                name: created.name.clone(),
                title: "Minister-Counselor".into(),
                etag: created.etag.clone(),
                ..Default::default()
            },
            &["title"],
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((updated.title.as_str(), updated.country.as_str()), ("Minister-Counselor", "countries/UZ"));
    let moved = client
        .update_host(update(
            Host { name: created.name.clone(), country: "countries/KZ".into(), ..Default::default() },
            &["country"],
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(moved.country, "countries/KZ");
    let status = client
        .update_host(update(Host { name: created.name.clone(), etag: created.etag, ..Default::default() }, &["title"]))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Aborted, "a stale etag is refused");

    running.token.cancel();
    running.suite.wait().await.unwrap();
}

#[tokio::test]
async fn a_host_page_token_holds_only_for_its_country() {
    let running = start_suite().await;
    let mut client = scheduling(&running.suite);
    for (id, country) in [("akmal", "countries/UZ"), ("bobur", "countries/UZ"), ("imran", "countries/PK")] {
        let host = Host {
            display_name: id.into(),
            title: "Economic Counselor".into(),
            country: country.into(),
            embassy: "Embassy in Beijing".into(),
            ..Default::default()
        };
        client
            .create_host(CreateHostRequest { host: Some(host), host_id: id.into(), request_id: String::new() })
            .await
            .unwrap();
    }
    let list =
        |country: &str, page_token: String| ListHostsRequest { page_size: 1, page_token, country: country.into() };
    let first = client.list_hosts(list("countries/UZ", String::new())).await.unwrap().into_inner();
    assert_eq!(first.hosts[0].name, "hosts/akmal");
    // Reused without the filter, the token would skip `imran`'s page silently.
    let status = client.list_hosts(list("", first.next_page_token.clone())).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(violated_fields(&status), ["page_token"]);
    let second = client.list_hosts(list("countries/UZ", first.next_page_token)).await.unwrap().into_inner();
    assert_eq!(second.hosts[0].name, "hosts/bobur");
    assert!(second.next_page_token.is_empty());
}
