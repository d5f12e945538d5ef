//! `reservations` (the columns caravan reads; the worker's claim columns
//! belong to the platform's `Job` machinery).

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "reservations")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    /// Empty for a reservation from the general pool.
    pub show_id: String,
    pub state: i16,
    pub fingerprint: String,
    pub create_time: i64,
    pub expire_time: i64,
    pub close_time: Option<i64>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
