//! `show_history`: every version of a show, as JSON.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "show_history")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub show_id: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub version: i64,
    pub snapshot: String,
    pub create_time: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
