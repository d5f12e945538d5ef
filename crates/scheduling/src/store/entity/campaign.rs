//! `campaigns`. Dates are `yyyymmdd` integers in the campaign's zone; the
//! window is `i64` microseconds since the epoch (UTC).

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "campaigns")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub title_zh_cn: String,
    pub title_en: String,
    pub title_ru: String,
    pub title_origin: String,
    pub title_origin_language: String,
    pub organiser: String,
    pub start_date: i32,
    pub end_date: i32,
    pub time_zone: String,
    pub window_start: i64,
    pub window_end: i64,
    pub version: i64,
    pub create_time: i64,
    pub update_time: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
