//! Scheduling's storage: sea-orm entities and queries. The only module that
//! sees sea-orm.

mod campaigns;
mod entity;
mod shows;

pub use shows::{ALLOCATION_GRACE, LIVE_OFFERS_TTL, Transition};

use caravan_macros::store_op;
use caravan_platform::error::{Resource, StoreFailure as _};
use caravan_platform::{db::Db, time::Micros};
use sea_orm::{ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect, SqlErr};

use crate::{
    domain::{CountryName, Host, HostFields},
    error::Error,
};
use entity::host;

const HOST: &str = "caravan.scheduling.v1.Host";

/// Queries against scheduling's own database.
#[derive(Debug, Clone)]
pub struct Store {
    db: Db,
    /// Shows read by GetLiveOffers, for at most [`LIVE_OFFERS_TTL`].
    shows: moka::sync::Cache<String, std::sync::Arc<crate::domain::Show>>,
    /// Channels' partners read by GetLiveOffers, for at most [`LIVE_OFFERS_TTL`].
    partners: moka::sync::Cache<String, String>,
}

impl Store {
    /// A store on `db`.
    pub fn new(db: Db) -> Self {
        let shows = moka::sync::Cache::builder().max_capacity(10_000).time_to_live(LIVE_OFFERS_TTL).build();
        let partners = moka::sync::Cache::builder().max_capacity(10_000).time_to_live(LIVE_OFFERS_TTL).build();
        Store { db, shows, partners }
    }

    /// Inserts a new host; a taken id is `AlreadyExists`.
    #[store_op]
    pub async fn insert_host(&self, id: &str, fields: &HostFields, now: Micros) -> Result<Host, Error> {
        let row = host::ActiveModel {
            id: Set(id.to_owned()),
            display_name: Set(fields.display_name.clone()),
            title: Set(fields.title.clone()),
            country: Set(fields.country.to_string()),
            embassy: Set(fields.embassy.clone()),
            version: Set(1),
            create_time: Set(now.0),
            update_time: Set(now.0),
        };
        match host::Entity::insert(row).exec(&self.db).await {
            Ok(_) => {}
            Err(e) if matches!(e.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) => {
                return Err(Error::from(Resource::already_exists(HOST, format!("hosts/{id}"))));
            }
            Err(e) => return Err(Error::db("inserting a host")(e)),
        }
        Ok(Host { id: id.to_owned(), fields: fields.clone(), version: 1, create_time: now, update_time: now })
    }

    /// One host.
    #[store_op]
    pub async fn host(&self, id: &str) -> Result<Host, Error> {
        host::Entity::find_by_id(id.to_owned())
            .one(&self.db)
            .await
            .map_err(Error::db("reading a host"))?
            .ok_or_else(|| Error::from(Resource::not_found(HOST, format!("hosts/{id}"))))
            .and_then(to_domain)
    }

    /// Replaces a host's fields if it is still at `version`; `None` when it
    /// changed meanwhile.
    #[store_op]
    pub async fn update_host(
        &self,
        id: &str,
        version: i64,
        fields: &HostFields,
        now: Micros,
    ) -> Result<Option<Host>, Error> {
        let row = host::ActiveModel {
            display_name: Set(fields.display_name.clone()),
            title: Set(fields.title.clone()),
            country: Set(fields.country.to_string()),
            embassy: Set(fields.embassy.clone()),
            version: Set(version + 1),
            update_time: Set(now.0),
            ..Default::default()
        };
        let result = host::Entity::update_many()
            .set(row)
            .filter(host::Column::Id.eq(id))
            .filter(host::Column::Version.eq(version))
            .exec(&self.db)
            .await
            .map_err(Error::db("updating a host"))?;
        if result.rows_affected == 1 { self.host(id).await.map(Some) } else { Ok(None) }
    }

    /// Up to `limit` hosts after `after` (by id), optionally of one country.
    #[store_op]
    pub async fn hosts(
        &self,
        after: Option<&str>,
        country: Option<&CountryName>,
        limit: u64,
    ) -> Result<Vec<Host>, Error> {
        let mut query = host::Entity::find().order_by_asc(host::Column::Id).limit(limit);
        if let Some(after) = after {
            query = query.filter(host::Column::Id.gt(after));
        }
        if let Some(country) = country {
            query = query.filter(host::Column::Country.eq(country.to_string()));
        }
        query.all(&self.db).await.map_err(Error::db("listing hosts"))?.into_iter().map(to_domain).collect()
    }
}

fn to_domain(row: host::Model) -> Result<Host, Error> {
    let host::Model { id, display_name, title, country, embassy, version, create_time, update_time } = row;
    let country = CountryName::parse(&country).map_err(|e| Error::corrupt(format!("hosts.country: {e}")))?;
    Ok(Host {
        id,
        fields: HostFields { display_name, title, country, embassy },
        version,
        create_time: Micros(create_time),
        update_time: Micros(update_time),
    })
}
