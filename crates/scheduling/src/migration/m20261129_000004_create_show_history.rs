//! Every version of every show, for WatchShow: a stream replays the versions
//! after its cursor in order, so a reconnecting overlay misses nothing.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(ShowHistory::Table)
                    .col(string_len(ShowHistory::ShowId, 63))
                    .col(big_integer(ShowHistory::Version))
                    .col(text(ShowHistory::Snapshot))
                    .col(big_integer(ShowHistory::CreateTime))
                    .primary_key(Index::create().col(ShowHistory::ShowId).col(ShowHistory::Version))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(ShowHistory::Table).to_owned()).await
    }
}

#[derive(DeriveIden)]
enum ShowHistory {
    Table,
    ShowId,
    Version,
    Snapshot,
    CreateTime,
}
