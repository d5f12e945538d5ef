//! Stock levels, receipts, adjustments and the ledger.

use std::collections::HashMap;

use caravan_macros::store_op;
use caravan_platform::error::StoreFailure as _;
use caravan_platform::time::Micros;
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect, TransactionTrait};

use super::{
    Store,
    entity::{movement, stock},
    sql::{NewMovement, append_movement, exec, shift},
};
use crate::{
    domain::{Movement, MovementKind, StockLevel, WarehouseStock},
    error::Error,
};

/// A receipt or an adjustment of one product in one warehouse.
#[derive(Debug)]
pub struct Correction<'a> {
    /// The product id.
    pub product: &'a str,
    /// The warehouse id.
    pub warehouse: &'a str,
    /// Units added (negative: removed).
    pub delta: i64,
    /// Adjustment reason code (0 for receipts).
    pub reason: i16,
    /// Unique per request: a repeat changes nothing.
    pub request_key: &'a str,
    /// Recorded on the movement.
    pub reference: &'a str,
}

impl Store {
    /// The levels of `products`, in the order asked; a product never
    /// received has no rows.
    #[store_op]
    pub async fn levels(&self, products: &[String]) -> Result<Vec<StockLevel>, Error> {
        levels(&self.db, products).await
    }

    /// Up to `limit` levels of products that have stock rows, by product id,
    /// after `after`.
    #[store_op]
    pub async fn list_levels(&self, after: Option<&str>, limit: u64) -> Result<Vec<StockLevel>, Error> {
        let products: Vec<String> = stock::Entity::find()
            .select_only()
            .column(stock::Column::ProductId)
            .distinct()
            .filter(stock::Column::ProductId.gt(after.unwrap_or("")))
            .order_by_asc(stock::Column::ProductId)
            .limit(limit)
            .into_tuple()
            .all(&self.db)
            .await
            .map_err(Error::db("listing stock"))?;
        self.levels(&products).await
    }

    /// Adds (or, for adjustments, adds or removes) units of on-hand stock,
    /// once per request key. Removing more than the general pool holds is
    /// `InsufficientStock`.
    #[store_op]
    pub async fn correct(
        &self,
        kind: MovementKind,
        correction: Correction<'_>,
        now: Micros,
    ) -> Result<StockLevel, Error> {
        let Correction { product, warehouse, delta, reason, request_key, reference } = correction;
        let priority = self.warehouse(warehouse).await?.fields.priority;
        let context = "changing on-hand stock";
        let txn = self.db.begin().await.map_err(Error::db(context))?;
        ensure_row(&txn, product, warehouse, priority, now).await.map_err(Error::db(context))?;
        let movement = NewMovement {
            kind,
            product,
            warehouse,
            deltas: (delta, 0, 0),
            reference,
            reason,
            request_key: Some(request_key),
        };
        let first_time = append_movement(&txn, movement, now).await.map_err(Error::db(context))?;
        if first_time && !shift(&txn, product, warehouse, (delta, 0, 0), now).await.map_err(Error::db(context))? {
            txn.rollback().await.map_err(Error::db(context))?;
            let level = self.levels(&[product.to_owned()]).await?.pop().unwrap_or_else(|| StockLevel::empty(product));
            let available =
                level.warehouses.iter().find(|w| w.warehouse_id == warehouse).map_or(0, WarehouseStock::available);
            return Err(Error::InsufficientStock {
                product: product.to_owned(),
                requested: -delta,
                available,
                pool: None,
            });
        }
        txn.commit().await.map_err(Error::db(context))?;
        Ok(self.levels(&[product.to_owned()]).await?.pop().unwrap_or_else(|| StockLevel::empty(product)))
    }

    /// Up to `limit` movements after id `after`, oldest first, of one
    /// product or of all.
    #[store_op]
    pub async fn movements(&self, product: Option<&str>, after: i64, limit: u64) -> Result<Vec<Movement>, Error> {
        let mut select = movement::Entity::find().filter(movement::Column::Id.gt(after));
        if let Some(product) = product {
            select = select.filter(movement::Column::ProductId.eq(product));
        }
        let rows = select
            .order_by_asc(movement::Column::Id)
            .limit(limit)
            .all(&self.db)
            .await
            .map_err(Error::db("listing movements"))?;
        rows.into_iter()
            .map(|row| {
                let kind = MovementKind::from_code(row.kind)
                    .ok_or_else(|| Error::Invariant(format!("movement {} has unknown kind {}", row.id, row.kind)))?;
                Ok(Movement {
                    id: row.id,
                    product_id: row.product_id,
                    warehouse_id: row.warehouse_id,
                    kind,
                    on_hand_delta: row.on_hand_delta,
                    reserved_delta: row.reserved_delta,
                    allocated_delta: row.allocated_delta,
                    reference: row.reference,
                    reason: row.reason,
                    create_time: Micros(row.create_time),
                })
            })
            .collect()
    }
}

/// Creates the empty stock row of a product in a warehouse if missing.
pub(super) async fn ensure_row(
    c: &impl ConnectionTrait,
    product: &str,
    warehouse: &str,
    priority: i32,
    now: Micros,
) -> Result<(), sea_orm::DbErr> {
    exec(
        c,
        "INSERT INTO stock (product_id, warehouse_id, priority, on_hand, reserved, allocated, version, last_delta, \
         update_time) VALUES ($1, $2, $3, 0, 0, 0, 0, 0, $4) ON CONFLICT (product_id, warehouse_id) DO NOTHING",
        vec![product.into(), warehouse.into(), priority.into(), now.0.into()],
    )
    .await
    .map(drop)
}

/// The warehouses holding rows of `product`, in the order stock is drawn.
pub(super) async fn warehouses_of(c: &impl ConnectionTrait, product: &str) -> Result<Vec<String>, sea_orm::DbErr> {
    Ok(pool_sources(c, product).await?.into_iter().map(|(warehouse, _)| warehouse).collect())
}

/// `(warehouse, priority)` of each row of `product`, in the order stock is
/// drawn.
pub(super) async fn pool_sources(
    c: &impl ConnectionTrait,
    product: &str,
) -> Result<Vec<(String, i32)>, sea_orm::DbErr> {
    stock::Entity::find()
        .select_only()
        .columns([stock::Column::WarehouseId, stock::Column::Priority])
        .filter(stock::Column::ProductId.eq(product))
        .order_by_asc(stock::Column::Priority)
        .order_by_asc(stock::Column::WarehouseId)
        .into_tuple()
        .all(c)
        .await
}

/// The levels of `products` (each read by one statement, so consistent).
pub(super) async fn levels(c: &impl ConnectionTrait, products: &[String]) -> Result<Vec<StockLevel>, Error> {
    let mut by_product: HashMap<&str, StockLevel> = HashMap::new();
    for chunk in products.chunks(500) {
        let rows = stock::Entity::find()
            .filter(stock::Column::ProductId.is_in(chunk.iter().map(String::as_str)))
            .order_by_asc(stock::Column::ProductId)
            .order_by_asc(stock::Column::Priority)
            .order_by_asc(stock::Column::WarehouseId)
            .all(c)
            .await
            .map_err(Error::db("reading stock"))?;
        for row in rows {
            let product = row.product_id;
            let stock = WarehouseStock {
                warehouse_id: row.warehouse_id,
                on_hand: row.on_hand,
                reserved: row.reserved,
                allocated: row.allocated,
                version: row.version,
            };
            if let Some(key) = chunk.iter().find(|p| **p == product) {
                by_product.entry(key.as_str()).or_insert_with(|| StockLevel::empty(key)).warehouses.push(stock);
            }
        }
    }
    Ok(products.iter().map(|p| by_product.get(p.as_str()).cloned().unwrap_or_else(|| StockLevel::empty(p))).collect())
}
