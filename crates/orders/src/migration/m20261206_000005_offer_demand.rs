//! What each show offer could not sell: `offer_demand` has one row per
//! (show, product) with the order attempts turned away for lack of its stock,
//! the units they asked for, and when it first sold out. Refused orders no
//! longer leave a row of their own; each orders replica counts refusals in
//! memory and adds them here about once a second (an additive upsert, so
//! replicas never overwrite each other).
//!
//! The rows are filled from the refused orders recorded so far, so a show's
//! report keeps its sell-out times across the upgrade.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(OfferDemand::Table)
                    .col(string_len(OfferDemand::Show, 80))
                    .col(string_len(OfferDemand::Product, 80))
                    .col(big_integer_null(OfferDemand::SoldOutTime))
                    .col(big_integer(OfferDemand::TurnedAway).default(0))
                    .col(big_integer(OfferDemand::UnitsTurnedAway).default(0))
                    .primary_key(Index::create().col(OfferDemand::Show).col(OfferDemand::Product))
                    .to_owned(),
            )
            .await?;
        manager
            .get_connection()
            .execute_unprepared(
                "INSERT INTO offer_demand (show, product, sold_out_time, turned_away, units_turned_away) \
                 SELECT o.show, o.rejected_product, MIN(o.update_time), COUNT(*), CAST(SUM(l.quantity) AS BIGINT) \
                 FROM orders o JOIN order_lines l ON l.order_id = o.id AND l.product = o.rejected_product \
                 WHERE o.state = 'rejected' AND o.rejected_product <> '' AND o.show <> '' \
                 GROUP BY o.show, o.rejected_product",
            )
            .await
            .map(drop)
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(OfferDemand::Table).to_owned()).await
    }
}

#[derive(DeriveIden)]
enum OfferDemand {
    Table,
    Show,
    Product,
    SoldOutTime,
    TurnedAway,
    UnitsTurnedAway,
}
