//! Campaigns (with their window in UTC, for show checks) and channels.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Campaigns::Table)
                    .col(string_len(Campaigns::Id, 63).primary_key())
                    .col(string(Campaigns::TitleZhCn))
                    .col(string(Campaigns::TitleEn))
                    .col(string(Campaigns::TitleRu))
                    .col(string(Campaigns::TitleOrigin))
                    .col(string(Campaigns::TitleOriginLanguage))
                    .col(string(Campaigns::Organiser))
                    .col(integer(Campaigns::StartDate))
                    .col(integer(Campaigns::EndDate))
                    .col(string(Campaigns::TimeZone))
                    .col(big_integer(Campaigns::WindowStart))
                    .col(big_integer(Campaigns::WindowEnd))
                    .col(big_integer(Campaigns::Version))
                    .col(big_integer(Campaigns::CreateTime))
                    .col(big_integer(Campaigns::UpdateTime))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("campaigns_by_start")
                    .table(Campaigns::Table)
                    .col(Campaigns::StartDate)
                    .col(Campaigns::Id)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Channels::Table)
                    .col(string_len(Channels::Id, 63).primary_key())
                    .col(string(Channels::Platform))
                    .col(string(Channels::DisplayName))
                    .col(string(Channels::Partner))
                    .col(big_integer(Channels::Version))
                    .col(big_integer(Channels::CreateTime))
                    .col(big_integer(Channels::UpdateTime))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("channels_by_partner")
                    .table(Channels::Table)
                    .col(Channels::Partner)
                    .col(Channels::Id)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(Channels::Table).to_owned()).await?;
        manager.drop_table(Table::drop().table(Campaigns::Table).to_owned()).await
    }
}

#[derive(DeriveIden)]
enum Campaigns {
    Table,
    Id,
    TitleZhCn,
    TitleEn,
    TitleRu,
    TitleOrigin,
    TitleOriginLanguage,
    Organiser,
    StartDate,
    EndDate,
    TimeZone,
    WindowStart,
    WindowEnd,
    Version,
    CreateTime,
    UpdateTime,
}

#[derive(DeriveIden)]
enum Channels {
    Table,
    Id,
    Platform,
    DisplayName,
    Partner,
    Version,
    CreateTime,
    UpdateTime,
}
