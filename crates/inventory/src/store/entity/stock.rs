//! `stock`: one row per product and warehouse. Its levels change only
//! through the conditional statements of `store::sql`; this entity reads.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "stock")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub product_id: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub warehouse_id: String,
    pub priority: i32,
    pub on_hand: i64,
    pub reserved: i64,
    pub allocated: i64,
    pub version: i64,
    pub last_delta: i64,
    pub update_time: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
