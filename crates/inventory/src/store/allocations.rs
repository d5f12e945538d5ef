//! Show allocations: stock earmarked for one show.
//!
//! Every operation on a show's allocation first takes the lock of its
//! `allocations` row (a conditional UPDATE on `state = OPEN`), so AllocateStock
//! and ReturnAllocation of one show run one after the other and a closed
//! allocation stays closed. Reservations do not take that lock (they would
//! all queue on one row); they draw from the per-warehouse `allocation_lines`
//! rows with a conditional statement on `closed = 0`, which ReturnAllocation
//! sets under the same row locks.

use caravan_macros::store_op;
use caravan_platform::error::{Resource, StoreFailure as _};
use caravan_platform::time::Micros;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseTransaction, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
    TransactionTrait, sea_query::Expr,
};

use super::{
    Store,
    entity::{allocation, allocation_line},
    sql::{Hold, NewMovement, append_movement, exec, query, shift_held, take_from_pool},
    stock::warehouses_of,
    total,
};
use crate::{
    domain::{Allocation, AllocationLine, AllocationState, MovementKind},
    error::Error,
};

const ALLOCATION: &str = "caravan.inventory.v1.Allocation";
const OPEN: i16 = AllocationState::Open as i16;
const CLOSED: i16 = AllocationState::Closed as i16;

impl Store {
    /// Sets the quantity the show holds of each product (a target): takes
    /// more from the general pool or gives unused units back. All lines or
    /// none.
    #[store_op]
    pub async fn allocate(&self, show: &str, targets: &[(String, i64)], now: Micros) -> Result<Allocation, Error> {
        let context = "allocating stock";
        let txn = self.db.begin().await.map_err(Error::db(context))?;
        match allocate_in(&txn, show, targets, now).await {
            Ok(()) => txn.commit().await.map_err(Error::db(context))?,
            Err(e) => {
                txn.rollback().await.map_err(Error::db(context))?;
                return Err(e);
            }
        }
        crate::metrics::allocated();
        self.allocation(show).await
    }

    /// Closes a show's allocation: unused units go back to the general pool
    /// and later reservations against it are refused. Closing an allocation
    /// that never existed records it closed, so a late AllocateStock fails.
    #[store_op]
    pub async fn return_allocation(&self, show: &str, now: Micros) -> Result<Allocation, Error> {
        let context = "returning an allocation";
        let txn = self.db.begin().await.map_err(Error::db(context))?;
        let result = close_in(&txn, show, now).await;
        match result {
            Ok(closed) => {
                txn.commit().await.map_err(Error::db(context))?;
                if closed {
                    crate::metrics::returned();
                }
            }
            Err(e) => {
                txn.rollback().await.map_err(Error::db(context))?;
                return Err(e);
            }
        }
        self.allocation(show).await
    }

    /// A show's allocation.
    #[store_op]
    pub async fn allocation(&self, show: &str) -> Result<Allocation, Error> {
        let context = "reading an allocation";
        let Some(row) = allocation::Entity::find_by_id(show).one(&self.db).await.map_err(Error::db(context))? else {
            return Err(Error::from(Resource::not_found(ALLOCATION, format!("allocations/{show}"))));
        };
        let lines = lines_of(&self.db, show, None).await?;
        Ok(Allocation {
            show_id: show.to_owned(),
            state: if row.state == CLOSED { AllocationState::Closed } else { AllocationState::Open },
            close_time: row.close_time.map(Micros),
            lines,
        })
    }

    /// The lines of `show` for `products` (all when `None`).
    #[store_op]
    pub async fn allocation_lines(
        &self,
        show: &str,
        products: Option<&[String]>,
    ) -> Result<Vec<AllocationLine>, Error> {
        lines_of(&self.db, show, products).await
    }
}

/// Locks the show's allocation row, creating it open if missing; `false` if
/// it is closed.
async fn lock_open(c: &DatabaseTransaction, show: &str, now: Micros) -> Result<bool, sea_orm::DbErr> {
    exec(
        c,
        "INSERT INTO allocations (show_id, state, version, create_time, close_time) VALUES ($1, $2, 0, $3, NULL) \
         ON CONFLICT (show_id) DO NOTHING",
        vec![show.into(), OPEN.into(), now.0.into()],
    )
    .await?;
    let locked = exec(
        c,
        "UPDATE allocations SET version = version + 1 WHERE show_id = $1 AND state = $2",
        vec![show.into(), OPEN.into()],
    )
    .await?;
    Ok(locked == 1)
}

async fn allocate_in(c: &DatabaseTransaction, show: &str, targets: &[(String, i64)], now: Micros) -> Result<(), Error> {
    let context = "allocating stock";
    if !lock_open(c, show, now).await.map_err(Error::db(context))? {
        return Err(Error::AllocationClosed { show: show.to_owned() });
    }
    let reference = format!("allocations/{show}");
    let mut targets = targets.to_vec();
    targets.sort();
    for (product, target) in &targets {
        // Quantities only change under the allocation lock we hold.
        let (current, used) = allocation_line::Entity::find()
            .select_only()
            .column_as(total(Expr::col(allocation_line::Column::Quantity)), "quantity")
            .column_as(total(Expr::col(allocation_line::Column::Used)), "used")
            .filter(allocation_line::Column::ShowId.eq(show))
            .filter(allocation_line::Column::ProductId.eq(product))
            .into_tuple::<(i64, i64)>()
            .one(c)
            .await
            .map_err(Error::db(context))?
            .unwrap_or((0, 0));
        if target > &current {
            grow(c, show, product, target - current, &reference, now).await?;
        } else if target < &current {
            if *target < used {
                return Err(Error::AllocationInUse { show: show.to_owned(), product: product.clone(), used });
            }
            let given = shrink(c, show, product, current - target, &reference, now).await?;
            if given < current - target {
                // Reservations took units between the sum and the give-back.
                return Err(Error::AllocationInUse {
                    show: show.to_owned(),
                    product: product.clone(),
                    used: current - given,
                });
            }
        }
    }
    Ok(())
}

/// Earmarks `want` more units of `product` for the show, from the general
/// pool of its warehouses in priority order.
async fn grow(
    c: &DatabaseTransaction,
    show: &str,
    product: &str,
    want: i64,
    reference: &str,
    now: Micros,
) -> Result<(), Error> {
    let context = "allocating stock";
    let mut taken = 0;
    for warehouse in warehouses_of(c, product).await.map_err(Error::db(context))? {
        if taken == want {
            break;
        }
        // The line row first (created if missing, locked if not), then the
        // stock row: the order reservations take them in.
        exec(
            c,
            "INSERT INTO allocation_lines (show_id, product_id, warehouse_id, priority, quantity, used, closed, version, \
             last_delta) SELECT $1, $2, $3, priority, 0, 0, 0, 0, 0 FROM stock WHERE product_id = $2 AND warehouse_id = $3 \
             ON CONFLICT (show_id, product_id, warehouse_id) DO NOTHING",
            vec![show.into(), product.into(), warehouse.as_str().into()],
        )
        .await
        .map_err(Error::db(context))?;
        exec(
            c,
            "UPDATE allocation_lines SET version = version + 1 WHERE show_id = $1 AND product_id = $2 AND warehouse_id = $3",
            vec![show.into(), product.into(), warehouse.as_str().into()],
        )
        .await
        .map_err(Error::db(context))?;
        let (took, _) = take_from_pool(c, product, &warehouse, want - taken, Hold::Allocated, now)
            .await
            .map_err(Error::db(context))?;
        if took == 0 {
            continue;
        }
        exec(
            c,
            "UPDATE allocation_lines SET quantity = quantity + $4 WHERE show_id = $1 AND product_id = $2 AND warehouse_id = $3",
            vec![show.into(), product.into(), warehouse.as_str().into(), took.into()],
        )
        .await
        .map_err(Error::db(context))?;
        let movement = NewMovement {
            kind: MovementKind::Allocate,
            product,
            warehouse: &warehouse,
            deltas: (0, 0, took),
            reference,
            reason: 0,
            request_key: None,
        };
        append_movement(c, movement, now).await.map_err(Error::db(context))?;
        taken += took;
    }
    if taken < want {
        return Err(Error::InsufficientStock {
            product: product.to_owned(),
            requested: want,
            available: taken,
            pool: None,
        });
    }
    Ok(())
}

/// Gives back up to `want` unused units of the show's `product`; returns how
/// many.
async fn shrink(
    c: &DatabaseTransaction,
    show: &str,
    product: &str,
    want: i64,
    reference: &str,
    now: Micros,
) -> Result<i64, Error> {
    let context = "lowering an allocation";
    let mut given = 0;
    for warehouse in line_warehouses(c, show, product).await.map_err(Error::db(context))? {
        if given == want {
            break;
        }
        let give = "CASE WHEN quantity - used >= $4 THEN $4 ELSE quantity - used END";
        let rows = query(
            c,
            &format!(
                "UPDATE allocation_lines SET quantity = quantity - {give}, last_delta = {give}, version = version + 1 \
                 WHERE show_id = $1 AND product_id = $2 AND warehouse_id = $3 AND closed = 0 AND quantity - used > 0 \
                 RETURNING last_delta"
            ),
            vec![show.into(), product.into(), warehouse.as_str().into(), (want - given).into()],
        )
        .await
        .map_err(Error::db(context))?;
        let Some(row) = rows.first() else { continue };
        let gave: i64 = row.try_get("", "last_delta").map_err(Error::db(context))?;
        shift_held(c, product, &warehouse, (0, 0, -gave), now).await?;
        let movement = NewMovement {
            kind: MovementKind::Return,
            product,
            warehouse: &warehouse,
            deltas: (0, 0, -gave),
            reference,
            reason: 0,
            request_key: None,
        };
        append_movement(c, movement, now).await.map_err(Error::db(context))?;
        given += gave;
    }
    Ok(given)
}

/// Closes an open allocation; `false` if it was closed before (returning
/// again changes nothing).
async fn close_in(c: &DatabaseTransaction, show: &str, now: Micros) -> Result<bool, Error> {
    let context = "returning an allocation";
    if !lock_open(c, show, now).await.map_err(Error::db(context))? {
        return Ok(false);
    }
    exec(
        c,
        "UPDATE allocations SET state = $2, close_time = $3 WHERE show_id = $1",
        vec![show.into(), CLOSED.into(), now.0.into()],
    )
    .await
    .map_err(Error::db(context))?;
    let reference = format!("allocations/{show}");
    let lines: Vec<(String, String)> = allocation_line::Entity::find()
        .select_only()
        .columns([allocation_line::Column::ProductId, allocation_line::Column::WarehouseId])
        .filter(allocation_line::Column::ShowId.eq(show))
        .order_by_asc(allocation_line::Column::ProductId)
        .order_by_asc(allocation_line::Column::Priority)
        .order_by_asc(allocation_line::Column::WarehouseId)
        .into_tuple()
        .all(c)
        .await
        .map_err(Error::db(context))?;
    for (product, warehouse) in lines {
        let rows = query(
            c,
            "UPDATE allocation_lines SET closed = 1, last_delta = quantity - used, version = version + 1 \
             WHERE show_id = $1 AND product_id = $2 AND warehouse_id = $3 RETURNING last_delta",
            vec![show.into(), product.as_str().into(), warehouse.as_str().into()],
        )
        .await
        .map_err(Error::db(context))?;
        let unused: i64 = match rows.first() {
            Some(row) => row.try_get("", "last_delta").map_err(Error::db(context))?,
            None => 0,
        };
        if unused > 0 {
            shift_held(c, &product, &warehouse, (0, 0, -unused), now).await?;
            let movement = NewMovement {
                kind: MovementKind::Return,
                product: &product,
                warehouse: &warehouse,
                deltas: (0, 0, -unused),
                reference: &reference,
                reason: 0,
                request_key: None,
            };
            append_movement(c, movement, now).await.map_err(Error::db(context))?;
        }
    }
    Ok(true)
}

/// The warehouses of a show's product line, in the order stock is drawn.
pub(super) async fn line_warehouses(
    c: &impl ConnectionTrait,
    show: &str,
    product: &str,
) -> Result<Vec<String>, sea_orm::DbErr> {
    Ok(line_sources(c, show, product).await?.into_iter().map(|(warehouse, _)| warehouse).collect())
}

/// `(warehouse, priority)` of each line of a show's product, in the order
/// stock is drawn.
pub(super) async fn line_sources(
    c: &impl ConnectionTrait,
    show: &str,
    product: &str,
) -> Result<Vec<(String, i32)>, sea_orm::DbErr> {
    allocation_line::Entity::find()
        .select_only()
        .columns([allocation_line::Column::WarehouseId, allocation_line::Column::Priority])
        .filter(allocation_line::Column::ShowId.eq(show))
        .filter(allocation_line::Column::ProductId.eq(product))
        .order_by_asc(allocation_line::Column::Priority)
        .order_by_asc(allocation_line::Column::WarehouseId)
        .into_tuple()
        .all(c)
        .await
}

/// A show's lines, by product (each warehouse in priority order), read by one
/// statement.
async fn lines_of(
    c: &impl ConnectionTrait,
    show: &str,
    products: Option<&[String]>,
) -> Result<Vec<AllocationLine>, Error> {
    let context = "reading allocation lines";
    let mut select = allocation_line::Entity::find().filter(allocation_line::Column::ShowId.eq(show));
    if let Some(products) = products {
        select = select.filter(allocation_line::Column::ProductId.is_in(products.iter().map(String::as_str)));
    }
    let rows = select
        .order_by_asc(allocation_line::Column::ProductId)
        .order_by_asc(allocation_line::Column::Priority)
        .order_by_asc(allocation_line::Column::WarehouseId)
        .all(c)
        .await
        .map_err(Error::db(context))?;
    let mut lines: Vec<AllocationLine> = Vec::new();
    for row in rows {
        let allocation_line::Model {
            product_id: product,
            warehouse_id: warehouse,
            quantity,
            used,
            closed,
            version,
            ..
        } = row;
        match lines.last_mut() {
            Some(line) if line.product_id == product => {
                line.sources.push((warehouse, quantity, used));
                line.version += version;
            }
            _ => lines.push(AllocationLine {
                product_id: product,
                sources: vec![(warehouse, quantity, used)],
                closed: closed != 0,
                version,
            }),
        }
    }
    Ok(lines)
}
