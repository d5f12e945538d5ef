//! Shows and their offers; booking counters on channels and hosts.
//!
//! Creating or moving a show bumps `booking_version` of its channel and its
//! host (in that order) before checking for overlaps: the row locks make two
//! conflicting bookings run one after the other on PostgreSQL, so the second
//! sees the first. SQLite has one writer anyway.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [Alias::new("channels"), Alias::new("hosts")] {
            manager
                .alter_table(
                    Table::alter()
                        .table(table)
                        .add_column(big_integer(Alias::new("booking_version")).default(0))
                        .to_owned(),
                )
                .await?;
        }
        let mut shows = Table::create();
        shows
            .table(Shows::Table)
            .col(string_len(Shows::Id, 63).primary_key())
            .col(string_len(Shows::CampaignId, 63))
            .col(string_len(Shows::ChannelId, 63))
            .col(string_len(Shows::HostId, 63))
            .col(string(Shows::TitleZhCn))
            .col(string(Shows::TitleEn))
            .col(string(Shows::TitleRu))
            .col(string(Shows::TitleOrigin))
            .col(string(Shows::TitleOriginLanguage))
            .col(big_integer(Shows::StartTime))
            .col(big_integer(Shows::EndTime))
            .col(small_integer(Shows::State))
            .col(string(Shows::PinnedProduct))
            .col(big_integer_null(Shows::LiveTime))
            .col(big_integer_null(Shows::CloseTime))
            .col(small_integer(Shows::Allocation))
            .col(big_integer(Shows::Version))
            .col(big_integer(Shows::CreateTime))
            .col(big_integer(Shows::UpdateTime));
        for column in caravan_platform::worker::lease_columns() {
            shows.col(column);
        }
        manager.create_table(shows.to_owned()).await?;
        for (name, first) in
            [("shows_by_channel", Shows::ChannelId), ("shows_by_host", Shows::HostId), ("shows_by_start", Shows::Id)]
        {
            let mut index = Index::create();
            index.name(name).table(Shows::Table);
            if name == "shows_by_start" {
                index.col(Shows::StartTime).col(Shows::Id);
            } else {
                index.col(first).col(Shows::StartTime);
            }
            manager.create_index(index.to_owned()).await?;
        }
        manager
            .create_index(Index::create().name("shows_due").table(Shows::Table).col(Alias::new("due_at")).to_owned())
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Offers::Table)
                    .col(string_len(Offers::ShowId, 63))
                    .col(string_len(Offers::ProductId, 63))
                    .col(string_len(Offers::Currency, 3))
                    .col(big_integer(Offers::PriceMinor))
                    .col(big_integer(Offers::AllocatedQuantity))
                    .col(big_integer(Offers::PerBuyerLimit))
                    .col(integer(Offers::DisplayOrder))
                    .primary_key(Index::create().col(Offers::ShowId).col(Offers::ProductId))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(Offers::Table).to_owned()).await?;
        manager.drop_table(Table::drop().table(Shows::Table).to_owned()).await?;
        for table in [Alias::new("channels"), Alias::new("hosts")] {
            manager
                .alter_table(Table::alter().table(table).drop_column(Alias::new("booking_version")).to_owned())
                .await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden, Clone, Copy)]
enum Shows {
    Table,
    Id,
    CampaignId,
    ChannelId,
    HostId,
    TitleZhCn,
    TitleEn,
    TitleRu,
    TitleOrigin,
    TitleOriginLanguage,
    StartTime,
    EndTime,
    State,
    PinnedProduct,
    LiveTime,
    CloseTime,
    Allocation,
    Version,
    CreateTime,
    UpdateTime,
}

#[derive(DeriveIden)]
enum Offers {
    Table,
    ShowId,
    ProductId,
    Currency,
    PriceMinor,
    AllocatedQuantity,
    PerBuyerLimit,
    DisplayOrder,
}
