//! The idempotency tests' fixture: a migrated database, a manual clock and
//! a handler that counts its runs.

#![allow(dead_code)] // Each test binary uses what it needs.
#![allow(clippy::unwrap_used)] // Test helpers fail loudly; that is their job.

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use caravan_platform::{
    config::ServiceKind,
    idempotency::{Idempotency, IdempotencyConfig, Scope},
    time::{ManualClock, Micros},
};
use caravan_proto::orders::v1::{GetOrderRequest, Order};
use caravan_testkit::TestDatabase;
use sea_orm_migration::prelude::*;
use tonic::Status;

#[derive(Debug)]
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![caravan_platform::idempotency::migration()]
    }
}

const T0: Micros = Micros(1_700_000_000_000_000);

pub struct Fixture {
    pub database: TestDatabase,
    pub clock: ManualClock,
    pub runs: Arc<AtomicUsize>,
}

impl Fixture {
    pub async fn new() -> Self {
        Fixture {
            database: TestDatabase::new::<Migrator>(ServiceKind::Orders).await.unwrap(),
            clock: ManualClock::new(T0),
            runs: Arc::new(AtomicUsize::new(0)),
        }
    }

    pub async fn idempotency(&self, config: IdempotencyConfig) -> Idempotency {
        Idempotency::new(self.database.connect().await.unwrap(), Arc::new(self.clock.clone()), config)
    }

    pub fn runs(&self) -> usize {
        self.runs.load(Ordering::SeqCst)
    }
}

pub fn scope(request_id: &str) -> Scope<'_> {
    Scope { principal: "partner:hema", method: "caravan.orders.v1.OrdersService/PlaceOrder", request_id }
}

pub fn request(name: &str) -> GetOrderRequest {
    GetOrderRequest { name: name.into() }
}

/// A handler that counts its runs and answers an order named after the run.
pub fn counting(runs: &Arc<AtomicUsize>) -> impl std::future::Future<Output = Result<Order, Status>> + use<> {
    let runs = runs.clone();
    async move {
        let n = runs.fetch_add(1, Ordering::SeqCst) + 1;
        tokio::time::sleep(Duration::from_millis(50)).await;
        Ok(Order { name: format!("orders/run-{n}"), ..Default::default() })
    }
}
