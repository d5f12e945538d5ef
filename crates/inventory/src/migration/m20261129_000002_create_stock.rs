//! Stock levels, the movement ledger, show allocations and reservations.
//!
//! The CHECK constraints are the last line of defence: even a wrong statement
//! cannot make a level negative or hold more than is on hand.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Stock::Table)
                    .col(string_len(Stock::ProductId, 63))
                    .col(string_len(Stock::WarehouseId, 63))
                    .col(integer(Stock::Priority))
                    .col(big_integer(Stock::OnHand))
                    .col(big_integer(Stock::Reserved))
                    .col(big_integer(Stock::Allocated))
                    .col(big_integer(Stock::Version))
                    .col(big_integer(Stock::LastDelta))
                    .col(big_integer(Stock::UpdateTime))
                    .primary_key(Index::create().col(Stock::ProductId).col(Stock::WarehouseId))
                    .check(Expr::cust("reserved >= 0 AND allocated >= 0 AND on_hand >= reserved + allocated"))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Movements::Table)
                    .col(big_pk_auto(Movements::Id))
                    .col(string_len(Movements::ProductId, 63))
                    .col(string_len(Movements::WarehouseId, 63))
                    .col(small_integer(Movements::Kind))
                    .col(big_integer(Movements::OnHandDelta))
                    .col(big_integer(Movements::ReservedDelta))
                    .col(big_integer(Movements::AllocatedDelta))
                    .col(string(Movements::Reference))
                    .col(small_integer(Movements::Reason))
                    .col(string_null(Movements::RequestKey))
                    .col(big_integer(Movements::CreateTime))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("movements_by_product")
                    .table(Movements::Table)
                    .col(Movements::ProductId)
                    .col(Movements::Id)
                    .to_owned(),
            )
            .await?;
        // A receipt or adjustment happens once per request id, even when the
        // caller retries after a crash between the change and its answer.
        manager
            .create_index(
                Index::create()
                    .name("movements_by_request")
                    .table(Movements::Table)
                    .col(Movements::RequestKey)
                    .unique()
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Allocations::Table)
                    .col(string_len(Allocations::ShowId, 63).primary_key())
                    .col(small_integer(Allocations::State))
                    .col(big_integer(Allocations::Version))
                    .col(big_integer(Allocations::CreateTime))
                    .col(big_integer_null(Allocations::CloseTime))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(AllocationLines::Table)
                    .col(string_len(AllocationLines::ShowId, 63))
                    .col(string_len(AllocationLines::ProductId, 63))
                    .col(string_len(AllocationLines::WarehouseId, 63))
                    .col(integer(AllocationLines::Priority))
                    .col(big_integer(AllocationLines::Quantity))
                    .col(big_integer(AllocationLines::Used))
                    .col(small_integer(AllocationLines::Closed))
                    .col(big_integer(AllocationLines::Version))
                    .col(big_integer(AllocationLines::LastDelta))
                    .primary_key(
                        Index::create()
                            .col(AllocationLines::ShowId)
                            .col(AllocationLines::ProductId)
                            .col(AllocationLines::WarehouseId),
                    )
                    .check(Expr::cust("used >= 0 AND used <= quantity"))
                    .to_owned(),
            )
            .await?;

        let mut reservations = Table::create();
        reservations
            .table(Reservations::Table)
            .col(string_len(Reservations::Id, 63).primary_key())
            .col(string_len(Reservations::ShowId, 63))
            .col(small_integer(Reservations::State))
            .col(string(Reservations::Fingerprint))
            .col(big_integer(Reservations::CreateTime))
            .col(big_integer(Reservations::ExpireTime))
            .col(big_integer_null(Reservations::CloseTime));
        for column in caravan_platform::worker::lease_columns() {
            reservations.col(column);
        }
        manager.create_table(reservations.to_owned()).await?;
        manager
            .create_index(
                Index::create()
                    .name("reservations_due")
                    .table(Reservations::Table)
                    .col(Alias::new("due_at"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(ReservationLines::Table)
                    .col(string_len(ReservationLines::ReservationId, 63))
                    .col(string_len(ReservationLines::ProductId, 63))
                    .col(string_len(ReservationLines::WarehouseId, 63))
                    .col(integer(ReservationLines::LineNo))
                    .col(integer(ReservationLines::Priority))
                    .col(big_integer(ReservationLines::Quantity))
                    .primary_key(
                        Index::create()
                            .col(ReservationLines::ReservationId)
                            .col(ReservationLines::ProductId)
                            .col(ReservationLines::WarehouseId),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            ReservationLines::Table.into_iden(),
            Reservations::Table.into_iden(),
            AllocationLines::Table.into_iden(),
            Allocations::Table.into_iden(),
            Movements::Table.into_iden(),
            Stock::Table.into_iden(),
        ] {
            manager.drop_table(Table::drop().table(table).to_owned()).await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden)]
enum Stock {
    Table,
    ProductId,
    WarehouseId,
    Priority,
    OnHand,
    Reserved,
    Allocated,
    Version,
    LastDelta,
    UpdateTime,
}

#[derive(DeriveIden)]
enum Movements {
    Table,
    Id,
    ProductId,
    WarehouseId,
    Kind,
    OnHandDelta,
    ReservedDelta,
    AllocatedDelta,
    Reference,
    Reason,
    RequestKey,
    CreateTime,
}

#[derive(DeriveIden)]
enum Allocations {
    Table,
    ShowId,
    State,
    Version,
    CreateTime,
    CloseTime,
}

#[derive(DeriveIden)]
enum AllocationLines {
    Table,
    ShowId,
    ProductId,
    WarehouseId,
    Priority,
    Quantity,
    Used,
    Closed,
    Version,
    LastDelta,
}

#[derive(DeriveIden)]
enum Reservations {
    Table,
    Id,
    ShowId,
    State,
    Fingerprint,
    CreateTime,
    ExpireTime,
    CloseTime,
}

#[derive(DeriveIden)]
enum ReservationLines {
    Table,
    ReservationId,
    ProductId,
    WarehouseId,
    LineNo,
    Priority,
    Quantity,
}
