//! `reservation_lines`: what one reservation holds of one product in one
//! warehouse.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "reservation_lines")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub reservation_id: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub product_id: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub warehouse_id: String,
    pub line_no: i32,
    pub priority: i32,
    pub quantity: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
