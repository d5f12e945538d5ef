//! `allocation_lines`: what a show holds of one product in one warehouse.
//! Quantities change only through the conditional statements of
//! `store::sql` and `store::allocations`; this entity reads.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "allocation_lines")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub show_id: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub product_id: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub warehouse_id: String,
    pub priority: i32,
    pub quantity: i64,
    pub used: i64,
    pub closed: i16,
    pub version: i64,
    pub last_delta: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
