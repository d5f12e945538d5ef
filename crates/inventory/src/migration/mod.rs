#![allow(elided_lifetimes_in_paths)] // MigrationTrait is an async_trait whose `SchemaManager` lifetime must stay elided.

//! Inventory's schema, one migration per file. Append-only.

use sea_orm_migration::prelude::*;

mod m20261129_000001_create_warehouses;
mod m20261129_000002_create_stock;

/// Every inventory migration, in order.
#[derive(Debug)]
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261129_000001_create_warehouses::Migration),
            caravan_platform::idempotency::migration(),
            Box::new(m20261129_000002_create_stock::Migration),
            caravan_platform::schema::migration(),
        ]
    }

    fn migration_table_name() -> DynIden {
        "inventory_migrations".into_iden()
    }
}
