//! Products: the festival's specialties.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let mut table = Table::create();
        table
            .table(Products::Table)
            .col(string_len(Products::Id, 63).primary_key())
            .col(string_len(Products::Country, 2))
            .col(string_len(Products::Category, 20));
        for column in [
            Products::TitleZhCn,
            Products::TitleEn,
            Products::TitleRu,
            Products::TitleOrigin,
            Products::TitleOriginLanguage,
            Products::DescriptionZhCn,
            Products::DescriptionEn,
            Products::DescriptionRu,
            Products::DescriptionOrigin,
            Products::DescriptionOriginLanguage,
        ] {
            table.col(text(column));
        }
        table
            .col(string_len(Products::PriceCurrency, 3))
            .col(big_integer(Products::PriceMinor))
            .col(string(Products::Unit))
            .col(text(Products::ImageUrls))
            .col(text(Products::Tags))
            .col(string_len(Products::State, 10))
            .col(big_integer(Products::Version))
            .col(big_integer(Products::CreateTime))
            .col(big_integer(Products::UpdateTime))
            .foreign_key(
                ForeignKey::create().from(Products::Table, Products::Country).to(Countries::Table, Countries::Code),
            );
        manager.create_table(table.to_owned()).await?;
        // Keyset pages filtered by an indexed field cost the same at any size.
        for (name, column) in [
            ("products_by_country", Products::Country),
            ("products_by_category", Products::Category),
            ("products_by_state", Products::State),
        ] {
            manager
                .create_index(
                    Index::create().name(name).table(Products::Table).col(column).col(Products::Id).to_owned(),
                )
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(Products::Table).to_owned()).await
    }
}

#[derive(DeriveIden)]
enum Countries {
    Table,
    Code,
}

#[derive(DeriveIden, Clone, Copy)]
enum Products {
    Table,
    Id,
    Country,
    Category,
    TitleZhCn,
    TitleEn,
    TitleRu,
    TitleOrigin,
    TitleOriginLanguage,
    DescriptionZhCn,
    DescriptionEn,
    DescriptionRu,
    DescriptionOrigin,
    DescriptionOriginLanguage,
    PriceCurrency,
    PriceMinor,
    Unit,
    ImageUrls,
    Tags,
    State,
    Version,
    CreateTime,
    UpdateTime,
}
