//! The partner contract at its edges, against the four running services on
//! the test database (SQLite, or PostgreSQL with
//! `CARAVAN_TEST_DATABASE_URL`): what a caller gets for bytes that do not
//! decode, NUL characters, huge inputs, unknown methods and messages over
//! the size limit — always a precise code with an `ErrorInfo` reason, never
//! `INTERNAL`, and never megabytes of its own input back.

#![allow(clippy::unwrap_used)] // Test helpers fail loudly; that is their job.

mod common;

use caravan_platform::config::ServiceKind;
use caravan_proto::{
    catalog::v1::{
        CreateProductRequest, GetProductRequest, ListProductsRequest, Product,
        catalog_service_client::CatalogServiceClient,
    },
    orders::v1::{ListOrdersRequest, orders_service_client::OrdersServiceClient},
    r#type::v1::{LocalizedText, Money},
};
use caravan_testkit::{Caller, KeyedChannel};
use tonic::{Code, Status, codegen::http::uri::PathAndQuery};
use tonic_types::StatusExt as _;

fn reason(status: &Status) -> String {
    status.get_error_details().error_info().map(|i| i.reason.clone()).unwrap_or_default()
}

fn fields(status: &Status) -> Vec<String> {
    status
        .get_error_details()
        .bad_request()
        .map_or_else(Vec::new, |b| b.field_violations.iter().map(|v| v.field.clone()).collect())
}

/// The bytes of a reply's status as they travel: message and details.
fn reply_bytes(status: &Status) -> usize {
    status.message().len() + status.details().len()
}

fn product(id_title: &str) -> Product {
    Product {
        country: "countries/UZ".into(),
        category: caravan_proto::catalog::v1::Category::Food as i32,
        title: Some(LocalizedText { zh_cn: "核桃".into(), en: id_title.into(), ..Default::default() }),
        list_price: Some(Money { currency_code: "CNY".into(), minor_units: 1000 }),
        unit: "500 g".into(),
        ..Default::default()
    }
}

/// A request whose field 1 is bytes of our choosing: sent as any method's
/// request, it is that request with field 1 set to them.
#[derive(Clone, PartialEq, prost::Message)]
struct FieldOne {
    #[prost(bytes = "vec", tag = "1")]
    value: Vec<u8>,
}

async fn raw_call(channel: KeyedChannel, method: &str, request: FieldOne) -> Status {
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.unwrap();
    let path = PathAndQuery::try_from(format!("/{method}")).unwrap();
    let codec = tonic_prost::ProstCodec::<FieldOne, FieldOne>::default();
    grpc.unary(tonic::Request::new(request), path, codec).await.map(|_| ()).unwrap_err()
}

#[tokio::test]
async fn nul_characters_are_invalid_argument_on_every_database_and_never_stick_to_a_request_id() {
    // Kept whole: its databases live as long as it does.
    let running = common::start_suite().await;
    let suite = &running.suite;
    let mut catalog =
        CatalogServiceClient::new(KeyedChannel::new(suite.addr(ServiceKind::Catalog), Some(Caller::Operator)));

    let mut bad = product("walnuts\0");
    bad.unit = "500\u{0} g".into();
    let request =
        CreateProductRequest { product: Some(bad), product_id: "nul-walnuts".into(), request_id: "nul-1".into() };
    for attempt in 0..2 {
        // The same request id twice: the refusal is not remembered as
        // "in progress" or as a failure of ours.
        let status = catalog.create_product(request.clone()).await.unwrap_err();
        assert_eq!((status.code(), reason(&status).as_str()), (Code::InvalidArgument, "INVALID_ARGUMENT"), "{attempt}");
        assert_eq!(fields(&status), ["product.title.en", "product.unit"], "{status:?}");
    }
    let status = catalog.get_product(GetProductRequest { name: "products/nul-walnuts".into() }).await.unwrap_err();
    assert_eq!(status.code(), Code::NotFound, "nothing was written");

    // Reads too: a query, a filter, a page token.
    let status = catalog
        .list_products(ListProductsRequest { query: "wal\0nut".into(), ..Default::default() })
        .await
        .unwrap_err();
    assert_eq!((status.code(), fields(&status)), (Code::InvalidArgument, vec!["query".to_owned()]));
    let mut orders = OrdersServiceClient::new(KeyedChannel::new(suite.addr(ServiceKind::Orders), Some(Caller::Hema)));
    let status = orders
        .list_orders(ListOrdersRequest { buyer: "b\0".into(), page_token: "\0".into(), ..Default::default() })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(fields(&status), ["page_token", "buyer"], "in field order");
    running.token.cancel();
    running.suite.wait().await.unwrap();
}

#[tokio::test]
async fn an_error_reply_repeats_at_most_a_little_of_a_huge_input() {
    // Kept whole: its databases live as long as it does.
    let running = common::start_suite().await;
    let suite = &running.suite;
    let mut catalog =
        CatalogServiceClient::new(KeyedChannel::new(suite.addr(ServiceKind::Catalog), Some(Caller::Operator)));
    let huge = "x".repeat(1024 * 1024);

    let status = catalog.get_product(GetProductRequest { name: format!("products/{huge}") }).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(reply_bytes(&status) < 4096, "{} bytes of reply", reply_bytes(&status));

    let request =
        CreateProductRequest { product: Some(product(&huge)), product_id: huge.clone(), request_id: huge.clone() };
    let status = catalog.create_product(request).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(reply_bytes(&status) < 4096, "{} bytes of reply: {}", reply_bytes(&status), status.message().len());
    running.token.cancel();
    running.suite.wait().await.unwrap();
}

#[tokio::test]
async fn bytes_that_do_not_decode_unknown_methods_and_oversized_messages_get_the_codes_grpc_defines() {
    // Kept whole: its databases live as long as it does.
    let running = common::start_suite().await;
    let suite = &running.suite;
    let orders = suite.addr(ServiceKind::Orders);

    // Field 1 of ListOrdersRequest is a string: these bytes are not UTF-8.
    let status = raw_call(
        KeyedChannel::new(orders, Some(Caller::Hema)),
        "caravan.orders.v1.OrdersService/ListOrders",
        FieldOne { value: vec![0xff, 0xfe, 0xfd] },
    )
    .await;
    assert_eq!((status.code(), reason(&status).as_str()), (Code::InvalidArgument, "INVALID_ARGUMENT"), "{status:?}");

    // A method caravan does not have: UNIMPLEMENTED for a known caller,
    // UNAUTHENTICATED without a key.
    let method = "caravan.orders.v1.OrdersService/RefundOrder";
    let status = raw_call(KeyedChannel::new(orders, Some(Caller::Hema)), method, FieldOne::default()).await;
    assert_eq!(status.code(), Code::Unimplemented, "{status:?}");
    let status = raw_call(KeyedChannel::new(orders, None), method, FieldOne::default()).await;
    assert_eq!(status.code(), Code::Unauthenticated);

    // Over the receive limit (4 MiB by default): RESOURCE_EXHAUSTED, with the limit.
    let status = raw_call(
        KeyedChannel::new(orders, Some(Caller::Hema)),
        "caravan.orders.v1.OrdersService/ListOrders",
        FieldOne { value: vec![b'a'; 5 * 1024 * 1024] },
    )
    .await;
    assert_eq!((status.code(), reason(&status).as_str()), (Code::ResourceExhausted, "REQUEST_TOO_LARGE"), "{status:?}");
    let info = status.get_error_details().error_info().cloned().unwrap();
    assert_eq!(info.metadata["limit"], (4 * 1024 * 1024).to_string());
    running.token.cancel();
    running.suite.wait().await.unwrap();
}

#[test]
fn the_readme_table_of_reasons_is_the_one_errors_proto_declares() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md")).unwrap();
    let mut documented = std::collections::BTreeMap::new();
    let table = readme
        .lines()
        .skip_while(|l| !l.starts_with("| reason | code |"))
        .take_while(|l| l.starts_with('|'))
        .filter(|l| l.starts_with("| `"));
    for row in table {
        let cells: Vec<&str> = row.trim_matches('|').split(" | ").map(str::trim).collect();
        let [names, code, _when, metadata] = cells[..] else { panic!("a row of four cells: {row}") };
        for name in common::reasons::backticked(names) {
            documented.insert(name, (code.to_owned(), common::reasons::backticked(metadata)));
        }
    }
    let declared = common::reasons::declared();
    assert!(declared.len() >= 30, "errors.proto was read: {declared:?}");
    for (name, reason) in &declared {
        let Some((code, metadata)) = documented.get(name) else { panic!("the README's table lacks {name}") };
        assert_eq!(code, &reason.code, "{name}'s code: README vs errors.proto");
        assert_eq!(metadata, &reason.metadata, "{name}'s metadata keys: README vs errors.proto");
    }
    let extra: Vec<&String> = documented.keys().filter(|name| !declared.contains_key(*name)).collect();
    assert!(extra.is_empty(), "the README documents reasons errors.proto does not declare: {extra:?}");
}
