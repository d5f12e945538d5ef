#![allow(elided_lifetimes_in_paths)] // MigrationTrait is an async_trait whose `SchemaManager` lifetime must stay elided.

//! The catalog's schema, one migration per file (`DeriveMigrationName` names
//! each after its file). Migrations are append-only: never edit a released one.

use sea_orm_migration::prelude::*;

mod m20261129_000001_create_countries;
mod m20261129_000002_seed_countries;
mod m20261129_000003_create_products;

/// Every catalog migration, in order.
#[derive(Debug)]
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261129_000001_create_countries::Migration),
            Box::new(m20261129_000002_seed_countries::Migration),
            Box::new(m20261129_000003_create_products::Migration),
            caravan_platform::idempotency::migration(),
            caravan_platform::schema::migration(),
        ]
    }

    fn migration_table_name() -> DynIden {
        "catalog_migrations".into_iden()
    }
}
