//! Stock levels, receipts, adjustments and the ledger.

use std::collections::HashMap;

use caravan_macros::store_op;
use caravan_platform::time::Micros;
use sea_orm::{ConnectionTrait, TransactionTrait, Value};

use super::{
    Store,
    sql::{NewMovement, append_movement, exec, params, query, shift},
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
        let rows = query(
            &self.db,
            "SELECT DISTINCT product_id FROM stock WHERE product_id > $1 ORDER BY product_id LIMIT $2",
            vec![after.unwrap_or("").into(), i64::try_from(limit).unwrap_or(i64::MAX).into()],
        )
        .await
        .map_err(Error::db("listing stock"))?;
        let products = rows
            .iter()
            .map(|r| r.try_get::<String>("", "product_id"))
            .collect::<Result<Vec<_>, _>>()
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
        let columns = "id, product_id, warehouse_id, kind, on_hand_delta, reserved_delta, allocated_delta, reference, \
                       reason, create_time";
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = match product {
            Some(product) => {
                query(
                    &self.db,
                    &format!("SELECT {columns} FROM movements WHERE product_id = $1 AND id > $2 ORDER BY id LIMIT $3"),
                    vec![product.into(), after.into(), limit.into()],
                )
                .await
            }
            None => {
                query(
                    &self.db,
                    &format!("SELECT {columns} FROM movements WHERE id > $1 ORDER BY id LIMIT $2"),
                    vec![after.into(), limit.into()],
                )
                .await
            }
        }
        .map_err(Error::db("listing movements"))?;
        rows.iter()
            .map(|row| {
                let code: i16 = row.try_get("", "kind")?;
                Ok(Movement {
                    id: row.try_get("", "id")?,
                    product_id: row.try_get("", "product_id")?,
                    warehouse_id: row.try_get("", "warehouse_id")?,
                    kind: MovementKind::from_code(code)
                        .ok_or_else(|| sea_orm::DbErr::Custom(format!("unknown movement kind {code}")))?,
                    on_hand_delta: row.try_get("", "on_hand_delta")?,
                    reserved_delta: row.try_get("", "reserved_delta")?,
                    allocated_delta: row.try_get("", "allocated_delta")?,
                    reference: row.try_get("", "reference")?,
                    reason: row.try_get("", "reason")?,
                    create_time: Micros(row.try_get("", "create_time")?),
                })
            })
            .collect::<Result<_, sea_orm::DbErr>>()
            .map_err(Error::db("reading movements"))
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
    query(
        c,
        "SELECT warehouse_id FROM stock WHERE product_id = $1 ORDER BY priority, warehouse_id",
        vec![product.into()],
    )
    .await?
    .iter()
    .map(|r| r.try_get("", "warehouse_id"))
    .collect()
}

/// The levels of `products` (each read by one statement, so consistent).
pub(super) async fn levels(c: &impl ConnectionTrait, products: &[String]) -> Result<Vec<StockLevel>, Error> {
    let mut by_product: HashMap<&str, StockLevel> = HashMap::new();
    for chunk in products.chunks(500) {
        let rows = query(
            c,
            &format!(
                "SELECT product_id, warehouse_id, on_hand, reserved, allocated, version FROM stock \
                 WHERE product_id IN ({}) ORDER BY product_id, priority, warehouse_id",
                params(1, chunk.len())
            ),
            chunk.iter().map(|p| Value::from(p.as_str())).collect(),
        )
        .await
        .map_err(Error::db("reading stock"))?;
        for row in rows {
            let read = || -> Result<(String, WarehouseStock), sea_orm::DbErr> {
                Ok((
                    row.try_get("", "product_id")?,
                    WarehouseStock {
                        warehouse_id: row.try_get("", "warehouse_id")?,
                        on_hand: row.try_get("", "on_hand")?,
                        reserved: row.try_get("", "reserved")?,
                        allocated: row.try_get("", "allocated")?,
                        version: row.try_get("", "version")?,
                    },
                ))
            };
            let (product, stock) = read().map_err(Error::db("reading stock"))?;
            if let Some(key) = chunk.iter().find(|p| **p == product) {
                by_product.entry(key.as_str()).or_insert_with(|| StockLevel::empty(key)).warehouses.push(stock);
            }
        }
    }
    Ok(products.iter().map(|p| by_product.get(p.as_str()).cloned().unwrap_or_else(|| StockLevel::empty(p))).collect())
}
