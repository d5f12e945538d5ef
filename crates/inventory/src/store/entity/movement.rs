//! `movements`: the ledger, appended by `store::sql::append_movement`.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "movements")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub product_id: String,
    pub warehouse_id: String,
    pub kind: i16,
    pub on_hand_delta: i64,
    pub reserved_delta: i64,
    pub allocated_delta: i64,
    pub reference: String,
    pub reason: i16,
    pub request_key: Option<String>,
    pub create_time: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
