#![allow(elided_lifetimes_in_paths)] // MigrationTrait is an async_trait whose `SchemaManager` lifetime must stay elided.

//! Scheduling's schema, one migration per file. Append-only.

use sea_orm_migration::prelude::*;

mod m20261129_000001_create_hosts;
mod m20261129_000002_create_campaigns_and_channels;
mod m20261129_000003_create_shows;
mod m20261129_000004_create_show_history;

/// Every scheduling migration, in order.
#[derive(Debug)]
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261129_000001_create_hosts::Migration),
            caravan_platform::idempotency::migration(),
            Box::new(m20261129_000002_create_campaigns_and_channels::Migration),
            Box::new(m20261129_000003_create_shows::Migration),
            Box::new(m20261129_000004_create_show_history::Migration),
            caravan_platform::schema::migration(),
        ]
    }

    fn migration_table_name() -> DynIden {
        "scheduling_migrations".into_iden()
    }
}
