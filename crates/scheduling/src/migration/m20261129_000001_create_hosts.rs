//! Hosts: the people who present shows.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Hosts::Table)
                    .col(string_len(Hosts::Id, 63).primary_key())
                    .col(string(Hosts::DisplayName))
                    .col(string(Hosts::Title))
                    .col(string_len(Hosts::Country, 12))
                    .col(string(Hosts::Embassy))
                    .col(big_integer(Hosts::Version))
                    .col(big_integer(Hosts::CreateTime))
                    .col(big_integer(Hosts::UpdateTime))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("hosts_by_country")
                    .table(Hosts::Table)
                    .col(Hosts::Country)
                    .col(Hosts::Id)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(Hosts::Table).to_owned()).await
    }
}

#[derive(DeriveIden)]
enum Hosts {
    Table,
    Id,
    DisplayName,
    Title,
    Country,
    Embassy,
    Version,
    CreateTime,
    UpdateTime,
}
