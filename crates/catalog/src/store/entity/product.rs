//! `products`. Lists are stored as JSON text; instants as `i64` microseconds.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "products")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub country: String,
    pub category: String,
    pub title_zh_cn: String,
    pub title_en: String,
    pub title_ru: String,
    pub title_origin: String,
    pub title_origin_language: String,
    pub description_zh_cn: String,
    pub description_en: String,
    pub description_ru: String,
    pub description_origin: String,
    pub description_origin_language: String,
    pub price_currency: String,
    pub price_minor: i64,
    pub unit: String,
    pub image_urls: String,
    pub tags: String,
    pub state: String,
    pub version: i64,
    pub create_time: i64,
    pub update_time: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
