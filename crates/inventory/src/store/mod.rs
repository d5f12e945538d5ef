//! Inventory's storage: sea-orm entities and queries. The only module that
//! sees sea-orm. Reads go through the entities; stock changes are
//! hand-written SQL (see [`sql`]): one conditional statement per change, the
//! rule in its WHERE clause, shown as it runs.

mod allocations;
mod audit;
mod batch;
mod entity;
mod reservations;
mod sql;
mod stock;

pub use audit::{Books, audit};
pub use batch::{BatchItem, BatchOutcome, Batched};
pub use reservations::Ending;
pub use stock::Correction;

use caravan_macros::store_op;
use caravan_platform::error::{Resource, StoreFailure as _};
use caravan_platform::{db::Db, time::Micros};
use sea_orm::{
    ActiveValue::Set,
    ColumnTrait, Condition, EntityTrait, QueryFilter, QueryOrder, QuerySelect, SqlErr,
    sea_query::{Alias, Expr, Func},
};

use crate::{
    domain::{Warehouse, WarehouseFields},
    error::Error,
};
use entity::warehouse;

const WAREHOUSE: &str = "caravan.inventory.v1.Warehouse";

/// `SUM(units)` as a BIGINT, 0 over no rows (PostgreSQL sums BIGINTs to a
/// NUMERIC).
fn total(units: Expr) -> Expr {
    Expr::from(Func::cast_as(Func::coalesce([Expr::from(Func::sum(units)), Expr::val(0i64)]), Alias::new("BIGINT")))
}

/// Queries against inventory's own database.
#[derive(Debug, Clone)]
pub struct Store {
    db: Db,
}

impl Store {
    /// A store on `db`.
    pub fn new(db: Db) -> Self {
        Store { db }
    }

    /// Inserts a warehouse; a taken id is `AlreadyExists`.
    #[store_op]
    pub async fn insert_warehouse(&self, id: &str, fields: &WarehouseFields, now: Micros) -> Result<Warehouse, Error> {
        let row = warehouse::ActiveModel {
            id: Set(id.to_owned()),
            display_name: Set(fields.display_name.clone()),
            location: Set(fields.location.clone()),
            priority: Set(fields.priority),
            create_time: Set(now.0),
        };
        match warehouse::Entity::insert(row).exec(&self.db).await {
            Ok(_) => Ok(Warehouse { id: id.to_owned(), fields: fields.clone(), create_time: now }),
            Err(e) if matches!(e.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) => {
                Err(Error::from(Resource::already_exists(WAREHOUSE, format!("warehouses/{id}"))))
            }
            Err(e) => Err(Error::db("inserting a warehouse")(e)),
        }
    }

    /// One warehouse.
    #[store_op]
    pub async fn warehouse(&self, id: &str) -> Result<Warehouse, Error> {
        warehouse::Entity::find_by_id(id.to_owned())
            .one(&self.db)
            .await
            .map_err(Error::db("reading a warehouse"))?
            .map(to_domain)
            .ok_or_else(|| Error::from(Resource::not_found(WAREHOUSE, format!("warehouses/{id}"))))
    }

    /// Up to `limit` warehouses in priority order, after `(priority, id)`.
    #[store_op]
    pub async fn warehouses(&self, after: Option<(i32, &str)>, limit: u64) -> Result<Vec<Warehouse>, Error> {
        let mut query = warehouse::Entity::find()
            .order_by_asc(warehouse::Column::Priority)
            .order_by_asc(warehouse::Column::Id)
            .limit(limit);
        if let Some((priority, id)) = after {
            query =
                query.filter(Condition::any().add(warehouse::Column::Priority.gt(priority)).add(
                    Condition::all().add(warehouse::Column::Priority.eq(priority)).add(warehouse::Column::Id.gt(id)),
                ));
        }
        Ok(query.all(&self.db).await.map_err(Error::db("listing warehouses"))?.into_iter().map(to_domain).collect())
    }
}

fn to_domain(row: warehouse::Model) -> Warehouse {
    let warehouse::Model { id, display_name, location, priority, create_time } = row;
    Warehouse { id, fields: WarehouseFields { display_name, location, priority }, create_time: Micros(create_time) }
}
