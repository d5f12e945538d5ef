//! The catalog's storage: sea-orm entities and queries. The only module that
//! sees sea-orm.

mod entity;
mod products;

pub use products::{Changed, ProductFilter};

use std::collections::BTreeMap;

use caravan_macros::store_op;
use caravan_platform::db::Db;
use caravan_platform::error::StoreFailure as _;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};

use crate::{
    domain::{Country, CountryCode, ScoStatus, StatusPeriod},
    error::Error,
};
use entity::{country, country_status};

/// How long a product read from the database may be answered from memory.
/// A change made through another replica is visible here within this long;
/// changes made through this replica are visible at once (they evict it).
pub const PRODUCT_CACHE_TTL: std::time::Duration = std::time::Duration::from_secs(1);

/// Queries against the catalog's own database.
#[derive(Debug, Clone)]
pub struct Store {
    db: Db,
    /// Products by id, for the hottest partner read (GetProduct, BatchGet).
    products: moka::sync::Cache<String, std::sync::Arc<crate::domain::product::Product>>,
}

impl Store {
    /// A store on `db`.
    pub fn new(db: Db) -> Self {
        let products = moka::sync::Cache::builder().max_capacity(200_000).time_to_live(PRODUCT_CACHE_TTL).build();
        Store { db, products }
    }

    /// One country with its history.
    #[store_op]
    pub async fn country(&self, code: &CountryCode) -> Result<Country, Error> {
        let row = country::Entity::find_by_id(code.as_str().to_owned())
            .one(&self.db)
            .await
            .map_err(Error::db("reading a country"))?
            .ok_or_else(|| Error::CountryNotFound(code.to_string()))?;
        let history = country_status::Entity::find()
            .filter(country_status::Column::CountryCode.eq(code.as_str()))
            .order_by_asc(country_status::Column::SinceYear)
            .all(&self.db)
            .await
            .map_err(Error::db("reading a country's status history"))?;
        to_domain(row, history)
    }

    /// Every country, ordered by code. Reference data is bounded by the
    /// number of countries in the world, so callers filter and page in memory.
    #[store_op]
    pub async fn countries(&self) -> Result<Vec<Country>, Error> {
        let rows = country::Entity::find()
            .order_by_asc(country::Column::Code)
            .all(&self.db)
            .await
            .map_err(Error::db("listing countries"))?;
        let mut histories: BTreeMap<String, Vec<country_status::Model>> = BTreeMap::new();
        for status in country_status::Entity::find()
            .order_by_asc(country_status::Column::SinceYear)
            .all(&self.db)
            .await
            .map_err(Error::db("listing country statuses"))?
        {
            histories.entry(status.country_code.clone()).or_default().push(status);
        }
        rows.into_iter()
            .map(|row| {
                let history = histories.remove(&row.code).unwrap_or_default();
                to_domain(row, history)
            })
            .collect()
    }
}

fn to_domain(row: country::Model, history: Vec<country_status::Model>) -> Result<Country, Error> {
    let country::Model { code, name_zh_cn, name_en, name_ru } = row;
    let code = CountryCode::parse(&code).map_err(|e| Error::corrupt(format!("countries.code: {e}")))?;
    let history = history
        .into_iter()
        .map(|s| {
            let status = ScoStatus::from_db(&s.status).ok_or_else(|| {
                Error::corrupt(format!("country_statuses.status `{}` of {}", s.status, s.country_code))
            })?;
            Ok(StatusPeriod { status, since_year: s.since_year })
        })
        .collect::<Result<_, Error>>()?;
    Ok(Country { code, name_zh_cn, name_en, name_ru, history })
}
