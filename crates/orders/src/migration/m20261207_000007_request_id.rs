//! The request id a partner placed each order with (`request_id`; empty
//! without one), so `Order.request_id` lets a partner match an order it
//! finds by listing to the request that placed it. Additive: a binary that
//! does not know the column ignores it.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Alias::new("orders"))
                    .add_column(string_len_null(
                        Alias::new("request_id"),
                        caravan_platform::idempotency::MAX_REQUEST_ID as u32,
                    ))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(Table::alter().table(Alias::new("orders")).drop_column(Alias::new("request_id")).to_owned())
            .await
    }
}
