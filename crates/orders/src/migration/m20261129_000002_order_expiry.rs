//! The worker's columns on orders: an order awaiting payment is due at its
//! payment deadline, when the expiry job releases its hold.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One column per statement: SQLite adds one at a time.
        for column in [
            big_integer_null(Alias::new("due_at")),
            string_null(Alias::new("lease_owner")),
            big_integer_null(Alias::new("lease_until")),
        ] {
            manager.alter_table(Table::alter().table(Alias::new("orders")).add_column(column).to_owned()).await?;
        }
        manager
            .create_index(
                Index::create().name("orders_due").table(Alias::new("orders")).col(Alias::new("due_at")).to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_index(Index::drop().name("orders_due").table(Alias::new("orders")).to_owned()).await?;
        for column in ["lease_until", "lease_owner", "due_at"] {
            manager
                .alter_table(Table::alter().table(Alias::new("orders")).drop_column(Alias::new(column)).to_owned())
                .await?;
        }
        Ok(())
    }
}
