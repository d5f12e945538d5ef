//! Orders and their lines.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Orders::Table)
                    .col(string_len(Orders::Id, 63).primary_key())
                    .col(string_len(Orders::Partner, 63))
                    .col(string_len(Orders::Buyer, 128))
                    .col(string_len(Orders::Show, 80))
                    .col(string_len(Orders::State, 20))
                    .col(string(Orders::StateReason))
                    .col(big_integer_null(Orders::PaymentDeadline))
                    .col(string_len(Orders::PaymentReference, 128))
                    .col(string_len(Orders::Traceparent, 64))
                    .col(big_integer(Orders::CreateTime))
                    .col(big_integer(Orders::UpdateTime))
                    .to_owned(),
            )
            .await?;
        // ListOrders: a partner's orders, newest first.
        manager
            .create_index(
                Index::create()
                    .name("orders_by_partner_time")
                    .table(Orders::Table)
                    .col(Orders::Partner)
                    .col(Orders::CreateTime)
                    .col(Orders::Id)
                    .to_owned(),
            )
            .await?;
        // The sales report and per-buyer limits read a show's orders.
        manager
            .create_index(
                Index::create()
                    .name("orders_by_show")
                    .table(Orders::Table)
                    .col(Orders::Show)
                    .col(Orders::State)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(OrderLines::Table)
                    .col(string_len(OrderLines::OrderId, 63))
                    .col(integer(OrderLines::LineNo))
                    .col(string_len(OrderLines::Product, 80))
                    .col(big_integer(OrderLines::Quantity))
                    .col(string_len(OrderLines::Currency, 3))
                    .col(big_integer(OrderLines::UnitPriceMinor))
                    .primary_key(Index::create().col(OrderLines::OrderId).col(OrderLines::LineNo))
                    .foreign_key(
                        ForeignKey::create()
                            .from(OrderLines::Table, OrderLines::OrderId)
                            .to(Orders::Table, Orders::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(OrderLines::Table).to_owned()).await?;
        manager.drop_table(Table::drop().table(Orders::Table).to_owned()).await
    }
}

#[derive(DeriveIden)]
enum Orders {
    Table,
    Id,
    Partner,
    Buyer,
    Show,
    State,
    StateReason,
    PaymentDeadline,
    PaymentReference,
    /// W3C traceparent of the request that created the order, so background
    /// work on it can link to that trace.
    Traceparent,
    CreateTime,
    UpdateTime,
}

#[derive(DeriveIden)]
enum OrderLines {
    Table,
    OrderId,
    LineNo,
    Product,
    Quantity,
    Currency,
    UnitPriceMinor,
}
