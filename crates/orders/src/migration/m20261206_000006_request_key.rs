//! Which request placed each order: a digest of the partner and its request
//! id (`request_key`; empty without a request id). Orders keeps, per live
//! show, the request keys of its orders in memory, so a buyer turned away
//! from a sold-out offer is told so without reading the database, while a
//! retry of an order placed before the sell-out still finds its order.

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
                    .add_column(string_len_null(Alias::new("request_key"), 32))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(Table::alter().table(Alias::new("orders")).drop_column(Alias::new("request_key")).to_owned())
            .await
    }
}
