//! `offers`: a show's line-up, one row per product.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "offers")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub show_id: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub product_id: String,
    pub currency: String,
    pub price_minor: i64,
    pub allocated_quantity: i64,
    pub per_buyer_limit: i64,
    pub display_order: i32,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
