//! Countries and their SCO status history.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Countries::Table)
                    .col(string_len(Countries::Code, 2).primary_key())
                    .col(string(Countries::NameZhCn))
                    .col(string(Countries::NameEn))
                    .col(string(Countries::NameRu))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(CountryStatuses::Table)
                    .col(string_len(CountryStatuses::CountryCode, 2))
                    .col(integer(CountryStatuses::SinceYear))
                    .col(string(CountryStatuses::Status))
                    .primary_key(Index::create().col(CountryStatuses::CountryCode).col(CountryStatuses::SinceYear))
                    .foreign_key(
                        ForeignKey::create()
                            .from(CountryStatuses::Table, CountryStatuses::CountryCode)
                            .to(Countries::Table, Countries::Code),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(CountryStatuses::Table).to_owned()).await?;
        manager.drop_table(Table::drop().table(Countries::Table).to_owned()).await
    }
}

#[derive(DeriveIden)]
pub(crate) enum Countries {
    Table,
    Code,
    NameZhCn,
    NameEn,
    NameRu,
}

#[derive(DeriveIden)]
pub(crate) enum CountryStatuses {
    Table,
    CountryCode,
    SinceYear,
    Status,
}
