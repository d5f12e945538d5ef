#![allow(elided_lifetimes_in_paths)] // MigrationTrait is an async_trait whose `SchemaManager` lifetime must stay elided.

//! Orders' schema, one migration per file. Append-only.

use sea_orm_migration::prelude::*;

mod m20261129_000001_create_orders;
mod m20261129_000002_order_expiry;
mod m20261129_000003_rejected_product;
mod m20261201_000004_buyer_units;
mod m20261206_000005_offer_demand;
mod m20261206_000006_request_key;
mod m20261207_000007_request_id;

/// Every orders migration, in order.
#[derive(Debug)]
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261129_000001_create_orders::Migration),
            caravan_platform::idempotency::migration(),
            Box::new(m20261129_000002_order_expiry::Migration),
            Box::new(m20261129_000003_rejected_product::Migration),
            Box::new(m20261201_000004_buyer_units::Migration),
            Box::new(m20261206_000005_offer_demand::Migration),
            Box::new(m20261206_000006_request_key::Migration),
            Box::new(m20261207_000007_request_id::Migration),
            caravan_platform::schema::migration(),
        ]
    }

    fn migration_table_name() -> DynIden {
        "orders_migrations".into_iden()
    }
}
