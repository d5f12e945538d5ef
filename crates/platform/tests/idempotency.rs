//! Request ids (AIP-155) against a real database: concurrent duplicates run
//! once, outcomes replay, transient failures do not stick, reuse with another
//! body is refused, dead first calls are taken over, old records are purged.

#![allow(clippy::unwrap_used)] // Test helpers fail loudly; that is their job.

mod common;

use std::{collections::HashMap, sync::Arc, time::Duration};

use caravan_platform::{
    error::ERROR_DOMAIN,
    idempotency::{IdempotencyConfig, Scope},
};
use caravan_proto::orders::v1::Order;
use tokio::sync::Notify;
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

use common::{Fixture, counting, request, scope};

#[tokio::test]
async fn concurrent_duplicates_run_once_and_all_get_the_first_result() {
    let fixture = Fixture::new().await;
    // Two replicas, each with its own pool.
    let replicas = [
        fixture.idempotency(IdempotencyConfig::default()).await,
        fixture.idempotency(IdempotencyConfig::default()).await,
    ];
    let calls: Vec<_> = (0..10)
        .map(|i| {
            let idempotency = replicas[i % 2].clone();
            let runs = fixture.runs.clone();
            tokio::spawn(async move { idempotency.run(scope("req-1"), &request("orders/a"), || counting(&runs)).await })
        })
        .collect();
    let mut names = Vec::new();
    for call in calls {
        names.push(call.await.unwrap().unwrap().name);
    }
    assert_eq!(fixture.runs(), 1, "one execution for ten duplicates");
    assert!(names.iter().all(|n| n == "orders/run-1"), "{names:?}");
}

#[tokio::test]
async fn a_finished_request_replays_and_another_body_is_refused() {
    let fixture = Fixture::new().await;
    let idempotency = fixture.idempotency(IdempotencyConfig::default()).await;
    let first = idempotency.run(scope("req-1"), &request("orders/a"), || counting(&fixture.runs)).await.unwrap();
    fixture.clock.advance(Duration::from_secs(3600));
    let again = idempotency.run(scope("req-1"), &request("orders/a"), || counting(&fixture.runs)).await.unwrap();
    assert_eq!(again, first);
    assert_eq!(fixture.runs(), 1);

    let status = idempotency.run(scope("req-1"), &request("orders/b"), || counting(&fixture.runs)).await.unwrap_err();
    assert_eq!(status.code(), Code::AlreadyExists);
    let info = status.get_error_details().error_info().cloned().unwrap();
    assert_eq!((info.reason.as_str(), info.domain.as_str()), ("REQUEST_ID_REUSED", ERROR_DOMAIN));
    assert_eq!(fixture.runs(), 1, "the other body never ran");

    // Another caller's id is its own.
    let other = Scope { principal: "partner:douyin", ..scope("req-1") };
    idempotency.run(other, &request("orders/b"), || counting(&fixture.runs)).await.unwrap();
    assert_eq!(fixture.runs(), 2);
    // No request id: no protection, runs every time.
    for _ in 0..2 {
        idempotency.run(scope(""), &request("orders/a"), || counting(&fixture.runs)).await.unwrap();
    }
    assert_eq!(fixture.runs(), 4);
}

#[tokio::test]
async fn transient_failures_are_not_outcomes_but_refusals_are() {
    let fixture = Fixture::new().await;
    let idempotency = fixture.idempotency(IdempotencyConfig::default()).await;

    let status = idempotency
        .run(scope("req-t"), &request("orders/a"), || async { Err::<Order, _>(Status::unavailable("inventory down")) })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unavailable);
    let retried = idempotency.run(scope("req-t"), &request("orders/a"), || counting(&fixture.runs)).await.unwrap();
    assert_eq!((retried.name.as_str(), fixture.runs()), ("orders/run-1", 1), "the retry ran");

    let refuse = || async {
        let details = ErrorDetails::with_error_info("ORDER_MISSING", ERROR_DOMAIN, HashMap::new());
        Err::<Order, _>(Status::with_error_details(Code::NotFound, "no such order", details))
    };
    let first = idempotency.run(scope("req-r"), &request("orders/a"), refuse).await.unwrap_err();
    let replayed = idempotency.run(scope("req-r"), &request("orders/a"), || counting(&fixture.runs)).await.unwrap_err();
    assert_eq!(fixture.runs(), 1, "a refusal is replayed, not re-run");
    assert_eq!(replayed.code(), Code::NotFound);
    assert_eq!(replayed.message(), first.message());
    assert_eq!(replayed.get_error_details().error_info().unwrap().reason, "ORDER_MISSING");

    // A refusal on state that moves (sold out) is re-evaluated by a retry.
    let sold_out = || async {
        let details = ErrorDetails::with_error_info("INSUFFICIENT_STOCK", ERROR_DOMAIN, HashMap::new());
        Err::<Order, _>(Status::with_error_details(Code::FailedPrecondition, "sold out", details))
    };
    let first = idempotency.run(scope("req-s"), &request("orders/a"), sold_out).await.unwrap_err();
    assert_eq!(first.code(), Code::FailedPrecondition);
    let retried = idempotency.run(scope("req-s"), &request("orders/a"), || counting(&fixture.runs)).await.unwrap();
    assert_eq!((retried.name.as_str(), fixture.runs()), ("orders/run-2", 2), "the retry ran again, and succeeded");

    let status =
        idempotency.run(scope(&"x".repeat(129)), &request("orders/a"), || counting(&fixture.runs)).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
}

#[tokio::test]
async fn a_repeat_during_the_first_call_waits_then_aborts() {
    let fixture = Fixture::new().await;
    let config = IdempotencyConfig { wait: Duration::from_millis(200), ..IdempotencyConfig::default() };
    let idempotency = fixture.idempotency(config).await;
    let started = Arc::new(Notify::new());
    let release = Arc::new(Notify::new());
    let first = {
        let (idempotency, started, release) = (idempotency.clone(), started.clone(), release.clone());
        tokio::spawn(async move {
            idempotency
                .run(scope("req-slow"), &request("orders/a"), || async move {
                    started.notify_one();
                    release.notified().await;
                    Ok(Order { name: "orders/slow".into(), ..Default::default() })
                })
                .await
        })
    };
    started.notified().await;
    let status =
        idempotency.run(scope("req-slow"), &request("orders/a"), || counting(&fixture.runs)).await.unwrap_err();
    assert_eq!(status.code(), Code::Aborted);
    assert_eq!(status.get_error_details().error_info().unwrap().reason, "REQUEST_IN_PROGRESS");
    assert_eq!(fixture.runs(), 0);

    release.notify_one();
    assert_eq!(first.await.unwrap().unwrap().name, "orders/slow");
    let replayed = idempotency.run(scope("req-slow"), &request("orders/a"), || counting(&fixture.runs)).await.unwrap();
    assert_eq!(replayed.name, "orders/slow");
}

#[tokio::test]
async fn a_first_call_that_died_is_taken_over_after_its_lease() {
    let fixture = Fixture::new().await;
    let config = IdempotencyConfig {
        wait: Duration::from_millis(50),
        lease: Duration::from_secs(60),
        ..IdempotencyConfig::default()
    };
    let idempotency = fixture.idempotency(config).await;
    let started = Arc::new(Notify::new());
    let dying = {
        let (idempotency, started) = (idempotency.clone(), started.clone());
        tokio::spawn(async move {
            idempotency
                .run(scope("req-crash"), &request("orders/a"), || async move {
                    started.notify_one();
                    std::future::pending::<Result<Order, Status>>().await
                })
                .await
        })
    };
    started.notified().await;
    dying.abort(); // The process died mid-call: its claim stays behind.
    let _ = dying.await;

    let status =
        idempotency.run(scope("req-crash"), &request("orders/a"), || counting(&fixture.runs)).await.unwrap_err();
    assert_eq!(status.code(), Code::Aborted, "within the lease the claim is respected");
    fixture.clock.advance(Duration::from_secs(61));
    let taken_over =
        idempotency.run(scope("req-crash"), &request("orders/a"), || counting(&fixture.runs)).await.unwrap();
    assert_eq!((taken_over.name.as_str(), fixture.runs()), ("orders/run-1", 1));
}

#[tokio::test]
async fn records_are_kept_for_the_retention_then_purged() {
    let fixture = Fixture::new().await;
    let idempotency = fixture.idempotency(IdempotencyConfig::default()).await;
    idempotency.run(scope("req-old"), &request("orders/a"), || counting(&fixture.runs)).await.unwrap();
    fixture.clock.advance(Duration::from_secs(23 * 3600));
    idempotency.run(scope("req-new"), &request("orders/a"), || counting(&fixture.runs)).await.unwrap();
    assert_eq!(idempotency.purge(100).await.unwrap(), 0, "nothing is 24 h old yet");

    fixture.clock.advance(Duration::from_secs(2 * 3600));
    assert_eq!(idempotency.purge(100).await.unwrap(), 1, "only the 25 h old record");
    // A purged request id is a new request.
    let again = idempotency.run(scope("req-old"), &request("orders/b"), || counting(&fixture.runs)).await.unwrap();
    assert_eq!((again.name.as_str(), fixture.runs()), ("orders/run-3", 3));
    // The other one is still remembered.
    let kept = idempotency.run(scope("req-new"), &request("orders/a"), || counting(&fixture.runs)).await.unwrap();
    assert_eq!((kept.name.as_str(), fixture.runs()), ("orders/run-2", 3));
}

/// A request of `name` from partner hema, authenticated as the server layer does.
fn grpc_request(name: &str) -> tonic::Request<caravan_proto::orders::v1::GetOrderRequest> {
    let mut request = tonic::Request::new(request(name));
    request.extensions_mut().insert(caravan_platform::auth::Principal::partner("hema-shop", "hema"));
    request
}

const PLACE: &str = "caravan.orders.v1.OrdersService/PlaceOrder";

#[tokio::test]
async fn a_claim_written_in_the_handlers_transaction_is_a_request_id_like_any_other() {
    use caravan_platform::idempotency::Seen;
    use prost::Message as _;
    use sea_orm::TransactionTrait as _;

    let fixture = Fixture::new().await;
    let idempotency = fixture.idempotency(IdempotencyConfig::default()).await;
    let db = fixture.database.connect().await.unwrap();
    assert!(idempotency.claim_for(&grpc_request("orders/a"), PLACE, "").unwrap().is_none(), "no id, no claim");
    let status = idempotency.claim_for(&grpc_request("orders/a"), PLACE, &"x".repeat(129)).unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);

    // Rolled back with the handler's work: as if never claimed.
    let claim = idempotency.claim_for(&grpc_request("orders/a"), PLACE, "req-1").unwrap().unwrap();
    assert_eq!(idempotency.seen(&claim).await.unwrap(), Seen::New);
    let txn = db.begin().await.unwrap();
    assert!(claim.insert(&txn).await.unwrap());
    txn.rollback().await.unwrap();
    assert_eq!(idempotency.seen(&claim).await.unwrap(), Seen::New);

    // Committed, then finished with the work's last transaction: a repeat
    // (through the mechanism) replays the recorded reply and runs nothing.
    let txn = db.begin().await.unwrap();
    assert!(claim.insert(&txn).await.unwrap());
    txn.commit().await.unwrap();
    assert_eq!(idempotency.seen(&claim).await.unwrap(), Seen::Same);
    let other = idempotency.claim_for(&grpc_request("orders/b"), PLACE, "req-1").unwrap().unwrap();
    assert_eq!(idempotency.seen(&other).await.unwrap(), Seen::Reused, "the same id, another body");
    let txn = db.begin().await.unwrap();
    assert!(!other.insert(&txn).await.unwrap(), "the id is taken; nothing written");
    txn.rollback().await.unwrap();
    let reply = Order { name: "orders/placed".into(), ..Default::default() };
    let txn = db.begin().await.unwrap();
    claim.finish(&txn, reply.encode_to_vec()).await.unwrap();
    txn.commit().await.unwrap();
    let request = grpc_request("orders/a");
    let replayed = idempotency.run_for(&request, PLACE, "req-1", || counting(&fixture.runs)).await.unwrap();
    assert_eq!((replayed.name.as_str(), fixture.runs()), ("orders/placed", 0));
    let request = grpc_request("orders/b");
    let status = idempotency.run_for(&request, PLACE, "req-1", || counting(&fixture.runs)).await.unwrap_err();
    assert_eq!(status.code(), Code::AlreadyExists);

    // Let go in the refusal's transaction: the id is new again, and a
    // repeat runs.
    let refused = idempotency.claim_for(&grpc_request("orders/c"), PLACE, "req-2").unwrap().unwrap();
    assert!(refused.insert(&db).await.unwrap());
    refused.release(&db).await.unwrap();
    assert_eq!(idempotency.seen(&refused).await.unwrap(), Seen::New);
    let request = grpc_request("orders/c");
    idempotency.run_for(&request, PLACE, "req-2", || counting(&fixture.runs)).await.unwrap();
    assert_eq!(fixture.runs(), 1);

    // Let go after a failure: the request stays known (its retry is no new
    // request), and the retry takes the claim over and runs at once, not
    // after the lease.
    let failed = idempotency.claim_for(&grpc_request("orders/d"), PLACE, "req-3").unwrap().unwrap();
    assert!(failed.insert(&db).await.unwrap());
    idempotency.release(&failed).await;
    assert_eq!(idempotency.seen(&failed).await.unwrap(), Seen::Same);
    let request = grpc_request("orders/d");
    idempotency.run_for(&request, PLACE, "req-3", || counting(&fixture.runs)).await.unwrap();
    assert_eq!(fixture.runs(), 2);
}

#[tokio::test]
async fn concurrent_lookups_share_reads_and_each_gets_its_own_answer() {
    use caravan_platform::idempotency::Seen;

    let fixture = Fixture::new().await;
    let idempotency = fixture.idempotency(IdempotencyConfig::default()).await;
    let db = fixture.database.connect().await.unwrap();
    let claims: Vec<_> = (0..100)
        .map(|i| idempotency.claim_for(&grpc_request("orders/a"), PLACE, &format!("req-{i}")).unwrap().unwrap())
        .collect();
    for claim in claims.iter().step_by(3) {
        assert!(claim.insert(&db).await.unwrap());
    }
    let seen = futures::future::join_all(claims.iter().map(|c| idempotency.seen(c))).await;
    for (i, seen) in seen.into_iter().enumerate() {
        let expected = if i % 3 == 0 { Seen::Same } else { Seen::New };
        assert_eq!(seen.unwrap(), expected, "req-{i}");
    }
}
