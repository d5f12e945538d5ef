//! Warehouses, in the priority order stock is drawn from.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Warehouses::Table)
                    .col(string_len(Warehouses::Id, 63).primary_key())
                    .col(string(Warehouses::DisplayName))
                    .col(string(Warehouses::Location))
                    .col(integer(Warehouses::Priority))
                    .col(big_integer(Warehouses::CreateTime))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("warehouses_by_priority")
                    .table(Warehouses::Table)
                    .col(Warehouses::Priority)
                    .col(Warehouses::Id)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(Warehouses::Table).to_owned()).await
    }
}

#[derive(DeriveIden)]
enum Warehouses {
    Table,
    Id,
    DisplayName,
    Location,
    Priority,
    CreateTime,
}
