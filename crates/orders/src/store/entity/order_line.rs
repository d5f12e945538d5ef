//! `order_lines`: one row per product of an order, with its price snapshot.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "order_lines")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub order_id: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub line_no: i32,
    pub product: String,
    pub quantity: i64,
    pub currency: String,
    pub unit_price_minor: i64,
    /// The product's origin country (ISO 3166-1 alpha-2), as catalog said.
    pub country: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
