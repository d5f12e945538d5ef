use caravan_proto::scheduling::v1::{CreateHostRequest, GetHostRequest, Host, ListHostsRequest};
use caravan_testkit::violated_fields;
use tonic::Code;
use tonic_types::StatusExt;

use crate::helpers::spawn_app;

fn host(display_name: &str, country: &str) -> Host {
    Host {
        display_name: display_name.into(),
        title: "Economic Counselor".into(),
        country: country.into(),
        embassy: "Embassy in Beijing".into(),
        ..Default::default()
    }
}

#[tokio::test]
async fn create_host_rejects_bad_fields_before_calling_anyone() {
    let app = spawn_app().await;
    let check = |request: CreateHostRequest, fields: &[&str]| {
        let mut client = app.client.clone();
        let fields: Vec<String> = fields.iter().map(|f| (*f).to_owned()).collect();
        async move {
            let status = client.create_host(request).await.unwrap_err();
            // INVALID_ARGUMENT, not UNAVAILABLE: validation happens before the
            // (unreachable) catalog is asked anything.
            assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
            assert_eq!(violated_fields(&status), fields);
        }
    };
    check(CreateHostRequest { host: None, ..Default::default() }, &["host"]).await;
    check(CreateHostRequest { host: Some(host("", "countries/UZ")), ..Default::default() }, &["host.display_name"])
        .await;
    check(CreateHostRequest { host: Some(host("A", "UZ")), ..Default::default() }, &["host.country"]).await;
    check(
        CreateHostRequest {
            host: Some(host("A", "countries/UZ")),
            host_id: "Bad_Id".into(),
            request_id: String::new(),
        },
        &["host_id"],
    )
    .await;
    let long = host(&"x".repeat(201), "countries/uz");
    check(CreateHostRequest { host: Some(long.clone()), ..Default::default() }, &["host.display_name", "host.country"])
        .await;
    // A NUL is refused as the request is decoded, before any other check.
    let mut nul = long;
    nul.embassy = "a\u{0}b".into();
    check(CreateHostRequest { host: Some(nul), ..Default::default() }, &["host.embassy"]).await;
}

#[tokio::test]
async fn create_host_is_unavailable_while_catalog_is_down_and_stores_nothing() {
    let mut app = spawn_app().await;
    let status = app
        .client
        .create_host(CreateHostRequest {
            host: Some(host("Akmalkhon Olimkhonov", "countries/UZ")),
            host_id: "olimkhonov".into(),
            request_id: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    let status = app.client.get_host(GetHostRequest { name: "hosts/olimkhonov".into() }).await.unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
}

#[tokio::test]
async fn get_and_list_validate_names_and_tokens() {
    let mut app = spawn_app().await;
    let status = app.client.get_host(GetHostRequest { name: "olimkhonov".into() }).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(violated_fields(&status), ["name"]);

    let status = app.client.get_host(GetHostRequest { name: "hosts/nobody".into() }).await.unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
    assert_eq!(status.get_error_details().resource_info().unwrap().resource_name, "hosts/nobody");

    let empty = app.client.list_hosts(ListHostsRequest::default()).await.unwrap().into_inner();
    assert!(empty.hosts.is_empty() && empty.next_page_token.is_empty());
    let status = app
        .client
        .list_hosts(ListHostsRequest { page_size: -5, page_token: "zz".into(), country: "UZ".into() })
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&status), ["page_size", "page_token", "country"]);
}
