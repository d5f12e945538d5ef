//! `orders`. Instants are `i64` microseconds since the epoch (UTC).

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "orders")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub partner: String,
    pub buyer: String,
    pub show: String,
    pub state: String,
    pub state_reason: String,
    pub payment_deadline: Option<i64>,
    pub payment_reference: String,
    pub traceparent: String,
    pub create_time: i64,
    pub update_time: i64,
    /// When the order driver next looks at it (recovery, expiry, release).
    pub due_at: Option<i64>,
    /// Digest of the partner and the request id that placed it, if any.
    pub request_key: Option<String>,
    /// The request id that placed it, if any.
    pub request_id: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
