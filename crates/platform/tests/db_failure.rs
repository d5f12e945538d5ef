//! A store operation the database failed is an error span, counted by
//! service and error type; an expected conflict that is answered is neither.
//!
//! Alone in its test binary: tracing caches whether anyone wants a span
//! where it is first reached, and another test reaching the same store's
//! spans while this one's subscriber registers could leave them cached as
//! unwanted.

#![allow(clippy::unwrap_used)] // Test helpers fail loudly; that is their job.

mod common;

use caravan_platform::{config::ServiceKind, idempotency::IdempotencyConfig};

use common::{Fixture, counting, request, scope};
use opentelemetry_proto::tonic::{
    common::v1::any_value::Value as AnyValue,
    trace::v1::{Span, status::StatusCode},
};

/// The exported spans of `f`, run as orders' work inside a call's span (the
/// `db` spans of store operations are exported only within a call or job).
async fn traced<F: std::future::Future>(f: F) -> (F::Output, Vec<Span>) {
    use caravan_platform::{
        config::{LogConfig, LogFormat},
        telemetry::ServiceTelemetry,
    };
    use tracing::Instrument as _;
    let log = LogConfig { format: LogFormat::Pretty, filter: "off".into() };
    let (telemetry, collector) = ServiceTelemetry::collecting(ServiceKind::Orders, &log).unwrap();
    // The span is opened inside the telemetry, as a server opens its calls.
    let output = telemetry.run(async { f.instrument(tracing::info_span!("call")).await }).await;
    (output, collector.spans())
}

fn claim_of(spans: &[Span]) -> &Span {
    let names: Vec<_> = spans.iter().map(|s| s.name.as_str()).collect();
    spans.iter().find(|s| s.name == "idempotency insert").unwrap_or_else(|| panic!("the claim's span in {names:?}"))
}

fn attribute(span: &Span, key: &str) -> Option<String> {
    match span.attributes.iter().find(|kv| kv.key == key).and_then(|kv| kv.value.clone()?.value)? {
        AnyValue::StringValue(s) => Some(s),
        AnyValue::IntValue(i) => Some(i.to_string()),
        other => Some(format!("{other:?}")),
    }
}

#[tokio::test]
async fn a_failed_store_operation_marks_its_span_and_an_answered_retry_does_not() {
    let fixture = Fixture::new().await;
    let idempotency = fixture.idempotency(IdempotencyConfig::default()).await;

    // A retry: the claim conflicts with the first call's record, as
    // expected, and is answered from it. No span says failed.
    idempotency.run(scope("req-1"), &request("orders/a"), || counting(&fixture.runs)).await.unwrap();
    let (again, spans) =
        traced(idempotency.run(scope("req-1"), &request("orders/a"), || counting(&fixture.runs))).await;
    again.unwrap();
    let claim = claim_of(&spans);
    assert_eq!(
        claim.status.as_ref().map(|s| s.code),
        Some(StatusCode::Unset as i32),
        "an expected conflict is not a failure"
    );
    assert_eq!(attribute(claim, "error.type"), None);

    // The database fails under the store: the operation's span says so,
    // with the database's own code and the error's text.
    let db = fixture.database.connect().await.unwrap();
    caravan_platform::db::exec(&db, "DROP TABLE idempotency_records", vec![]).await.unwrap();
    let expected = if sea_orm::ConnectionTrait::get_database_backend(&db) == sea_orm::DatabaseBackend::Postgres {
        "42P01"
    } else {
        "1"
    };
    let errors = || caravan_platform::metrics::metrics().db_errors.with_label_values(&["orders", expected]).get();
    let before = errors();
    let (failed, spans) =
        traced(idempotency.run(scope("req-2"), &request("orders/a"), || counting(&fixture.runs))).await;
    // Only this test fails statements in this process (the retry's conflict
    // above is not counted).
    assert_eq!(errors() - before, 1, "one failed operation counted for its service and code");
    assert!(failed.is_err(), "{failed:?}");
    let claim = claim_of(&spans);
    let status = claim.status.clone().unwrap_or_default();
    assert_eq!(status.code, StatusCode::Error as i32, "a failed operation's span is an error: {status:?}");
    assert!(status.message.contains("idempotency_records"), "the cause, not only a code: {}", status.message);
    let code = attribute(claim, "db.response.status_code").expect("the database's code");
    assert_eq!(code, expected, "undefined table");
    assert_eq!(attribute(claim, "error.type").as_deref(), Some(expected));
}
