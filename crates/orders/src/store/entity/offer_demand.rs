//! `offer_demand`: when each offer of a show sold out and how many buyers
//! (and units) it turned away after; written by the additive upsert of
//! `store::demand`, read by the sales report.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "offer_demand")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub show: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub product: String,
    pub sold_out_time: Option<i64>,
    pub turned_away: i64,
    pub units_turned_away: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
