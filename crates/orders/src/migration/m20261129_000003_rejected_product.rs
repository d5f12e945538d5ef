//! The product an order was refused for lack of stock of: the sales report
//! dates a show's sell-out of a product by its first such refusal.

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
                    .add_column(string(Alias::new("rejected_product")).default(""))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter().table(Alias::new("orders")).drop_column(Alias::new("rejected_product")).to_owned(),
            )
            .await
    }
}
