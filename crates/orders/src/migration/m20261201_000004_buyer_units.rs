//! What each buyer holds of each show offer, for the per-buyer limit, and the
//! origin country of every order line, for the sales report's country totals.
//!
//! `buyer_units` has one row per (partner, buyer, show, product): the units
//! of that buyer's live orders (pending, awaiting payment, paid) in that
//! show. It is raised by one conditional upsert in the transaction that
//! writes an order, and lowered in the transaction that rejects, cancels or
//! expires one, so concurrent orders of one buyer cannot pass the limit
//! together. Rows are per buyer: never a hot row.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(BuyerUnits::Table)
                    .col(string_len(BuyerUnits::Partner, 63))
                    .col(string_len(BuyerUnits::Buyer, 128))
                    .col(string_len(BuyerUnits::Show, 80))
                    .col(string_len(BuyerUnits::Product, 80))
                    .col(big_integer(BuyerUnits::Units))
                    .primary_key(
                        Index::create()
                            .col(BuyerUnits::Partner)
                            .col(BuyerUnits::Buyer)
                            .col(BuyerUnits::Show)
                            .col(BuyerUnits::Product),
                    )
                    .check(Expr::col(BuyerUnits::Units).gte(0))
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Alias::new("order_lines"))
                    .add_column(string_len(Alias::new("country"), 2).default(""))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(Table::alter().table(Alias::new("order_lines")).drop_column(Alias::new("country")).to_owned())
            .await?;
        manager.drop_table(Table::drop().table(BuyerUnits::Table).to_owned()).await
    }
}

#[derive(DeriveIden)]
enum BuyerUnits {
    Table,
    Partner,
    Buyer,
    Show,
    Product,
    Units,
}
