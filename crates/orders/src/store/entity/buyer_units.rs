//! `buyer_units`: what each buyer holds of each product of a show, for the
//! per-buyer limit. Changed only by the conditional upsert of
//! `store::hold_for_buyer` (the limit is its WHERE clause); this entity reads.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "buyer_units")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub partner: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub buyer: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub show: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub product: String,
    pub units: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
