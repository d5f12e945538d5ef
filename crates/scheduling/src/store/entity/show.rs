//! `shows` (the columns caravan reads; the worker's claim columns belong to
//! the platform's `Job` machinery). States and allocation progress are
//! stored as their codes (`ShowState`, `AllocationSync`); changes are the
//! conditional statements of `store::shows`, whose WHERE clauses hold the
//! rules (version, state).

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "shows")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub campaign_id: String,
    pub channel_id: String,
    pub host_id: String,
    pub title_zh_cn: String,
    pub title_en: String,
    pub title_ru: String,
    pub title_origin: String,
    pub title_origin_language: String,
    pub start_time: i64,
    pub end_time: i64,
    pub state: i16,
    /// Empty when nothing is pinned.
    pub pinned_product: String,
    pub live_time: Option<i64>,
    pub close_time: Option<i64>,
    pub allocation: i16,
    pub version: i64,
    pub create_time: i64,
    pub update_time: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
