//! Reservations of one hot product, many at once (ARCHITECTURE.md, "The hot product is batched, not sharded").
//!
//! A flash sale is thousands of one-line reservations of the same stock row.
//! One transaction each is bounded by the row's commit rate; here a batch of
//! them — all of one product in one pool, in arrival order — shares one
//! transaction: their reservation rows in a few multi-row statements
//! ([`row_chunks`]), one conditional
//! UPDATE per warehouse for the sum (the database still refuses to take
//! more than is available, so replicas batching side by side stay safe), grants in
//! arrival order, any units taken beyond the grants given straight back, the
//! lines and ledger movements of every grant likewise, and one
//! commit. Every reservation is recorded as if made alone; the books'
//! invariants hold after every batch.

use std::collections::HashSet;

use caravan_macros::store_op;
use caravan_platform::{
    db::{params, row_chunks},
    error::StoreFailure as _,
    time::Micros,
};
use sea_orm::{
    ColumnTrait, DatabaseTransaction, EntityTrait, QueryFilter, QuerySelect, TransactionTrait, Value, sea_query::Expr,
};

use super::{
    Store,
    entity::{allocation_line, stock},
    sql::{Hold, exec, query, shift_held, take_from_line, take_from_pool},
    total,
};
use crate::{
    domain::{MovementKind, Reservation, ReservationLine, ReservationState, ReserveRequest, Source},
    error::Error,
};

/// One reservation of a batch: one line of its batch's product.
#[derive(Debug, Clone)]
pub struct BatchItem {
    /// The request (one line).
    pub request: ReserveRequest,
    /// The W3C traceparent of the call that asked.
    pub traceparent: String,
}

/// What became of one reservation of a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Batched {
    /// Held, as recorded.
    Granted(Reservation),
    /// Not enough stock left for it when its turn came.
    Short {
        /// Units it asked for.
        requested: i64,
        /// Units left when its turn came.
        available: i64,
    },
    /// Its id was reserved (or released) before: answer it as a repeat.
    Existing,
}

/// What a batch did, for the caller's bookkeeping.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchOutcome {
    /// Per item, in the order given.
    pub items: Vec<Batched>,
    /// Whether the batch took the product's last unit (of the pool or show).
    pub sold_out: bool,
}

const CONTEXT: &str = "reserving stock in a batch";
const ACTIVE: i16 = ReservationState::Active as i16;

impl Store {
    /// Reserves `items` — one line each, all of `product` in the pool of
    /// `show` (or the general pool) — in one transaction, granting in the
    /// order given.
    #[store_op]
    pub async fn reserve_batch(
        &self,
        show: Option<&str>,
        product: &str,
        items: &[BatchItem],
        now: Micros,
    ) -> Result<BatchOutcome, Error> {
        let txn = self.db.begin().await.map_err(Error::db(CONTEXT))?;
        match reserve_in(&txn, show, product, items, now).await {
            Ok(outcome) => {
                txn.commit().await.map_err(Error::db(CONTEXT))?;
                let granted: i64 = outcome
                    .items
                    .iter()
                    .filter_map(|b| match b {
                        Batched::Granted(r) => Some(r.lines.iter().map(|l| l.quantity).sum::<i64>()),
                        _ => None,
                    })
                    .sum();
                crate::metrics::units_moved("reserved", granted);
                if outcome.sold_out {
                    crate::metrics::sold_out_in(show.is_some());
                }
                Ok(outcome)
            }
            Err(e) => {
                txn.rollback().await.map_err(Error::db(CONTEXT))?;
                Err(e)
            }
        }
    }
}

async fn reserve_in(
    c: &DatabaseTransaction,
    show: Option<&str>,
    product: &str,
    items: &[BatchItem],
    now: Micros,
) -> Result<BatchOutcome, Error> {
    let db = |e| Error::db(CONTEXT)(e);
    // The reservation rows, a few statements for the whole batch; the ids
    // they return are new.
    let mut inserted = HashSet::new();
    for chunk in row_chunks(items.len()) {
        inserted.extend(insert_reservations(c, &items[chunk], now).await.map_err(db)?);
    }
    // A duplicate id within the batch: only its first is new.
    let mut claimed = HashSet::new();
    let fresh: Vec<bool> = items
        .iter()
        .map(|item| inserted.contains(&item.request.id) && claimed.insert(item.request.id.clone()))
        .collect();
    let quantity = |item: &BatchItem| item.request.lines.first().map_or(0, |(_, q)| *q);
    let want: i64 = items.iter().zip(&fresh).filter(|(_, f)| **f).map(|(item, _)| quantity(item)).sum();

    // Take the sum, warehouse by warehouse in priority order.
    let warehouses = sources(c, show, product).await.map_err(db)?;
    let mut taken: Vec<(String, i32, i64)> = Vec::new();
    let (mut total, mut emptied) = (0, false);
    for (warehouse, priority) in &warehouses {
        if total == want {
            break;
        }
        let took = match show {
            None => take_from_pool(c, product, warehouse, want - total, Hold::Reserved, now).await.map_err(db)?,
            Some(show) => {
                take_from_line(c, show, product, warehouse, want - total).await.map_err(db)?.unwrap_or((0, 0))
            }
        };
        let (took, left) = took;
        if took == 0 {
            continue;
        }
        if show.is_some() {
            shift_held(c, product, warehouse, (0, took, -took), now).await?;
        }
        emptied |= left == 0;
        taken.push((warehouse.clone(), *priority, took));
        total += took;
    }

    // Grant in arrival order: each reservation whole, or not at all.
    let mut remaining = total;
    let mut outcomes = Vec::with_capacity(items.len());
    let mut stream = taken.iter().map(|(w, p, n)| (w.as_str(), *p, *n)).collect::<Vec<_>>().into_iter();
    let mut current: Option<(&str, i32, i64)> = stream.next();
    let (mut lines, mut refused) = (Vec::new(), Vec::new());
    for (item, fresh) in items.iter().zip(&fresh) {
        if !fresh {
            outcomes.push(Batched::Existing);
            continue;
        }
        let asked = quantity(item);
        if asked > remaining {
            outcomes.push(Batched::Short { requested: asked, available: remaining });
            refused.push(item.request.id.as_str());
            continue;
        }
        remaining -= asked;
        // Its units, from the warehouses in the order they were taken.
        let mut sources = Vec::new();
        let mut need = asked;
        while need > 0 {
            let Some((warehouse, priority, left)) = current.as_mut() else {
                return Err(Error::Invariant(format!("batch of {product}: granted more than it took")));
            };
            let from = need.min(*left);
            sources.push(Source { warehouse_id: (*warehouse).to_owned(), quantity: from });
            lines.push((item.request.id.as_str(), *warehouse, *priority, from));
            *left -= from;
            need -= from;
            if *left == 0 {
                current = stream.next();
            }
        }
        outcomes.push(Batched::Granted(Reservation {
            id: item.request.id.clone(),
            show_id: show.map(str::to_owned),
            lines: vec![ReservationLine { product_id: product.to_owned(), quantity: asked, sources }],
            state: ReservationState::Active,
            expire_time: now.plus(item.request.ttl),
            create_time: now,
            close_time: None,
            tombstone: false,
        }));
    }

    // What was taken beyond the grants goes straight back where it came from.
    if remaining > 0 {
        let mut back: Vec<(&str, i64)> = Vec::new();
        if let Some((warehouse, _, left)) = current {
            back.push((warehouse, left));
        }
        back.extend(stream.map(|(w, _, n)| (w, n)));
        for (warehouse, units) in back.into_iter().filter(|(_, n)| *n > 0) {
            match show {
                None => shift_held(c, product, warehouse, (0, -units, 0), now).await?,
                Some(show) => {
                    untake_from_line(c, show, product, warehouse, units).await?;
                    shift_held(c, product, warehouse, (0, -units, units), now).await?;
                }
            }
        }
        emptied = false;
    }
    for chunk in row_chunks(refused.len()) {
        let ids: Vec<Value> = refused[chunk].iter().map(|id| (*id).into()).collect();
        exec(c, &format!("DELETE FROM reservations WHERE id IN ({})", params(1, ids.len())), ids).await.map_err(db)?;
    }
    record_lines(c, product, show.is_some(), &lines, now).await?;
    let sold_out = emptied && available(c, show, product).await.map_err(db)? == 0;
    Ok(BatchOutcome { items: outcomes, sold_out })
}

/// Inserts the reservation rows of `items` (unless their id exists) and
/// returns the ids it inserted.
async fn insert_reservations(
    c: &DatabaseTransaction,
    items: &[BatchItem],
    now: Micros,
) -> Result<Vec<String>, sea_orm::DbErr> {
    let mut values: Vec<Value> = Vec::with_capacity(items.len() * 6);
    let mut rows = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let at = i * 6;
        rows.push(format!(
            "(${}, ${}, {ACTIVE}, ${}, ${}, ${}, NULL, ${}, ${})",
            at + 1,
            at + 2,
            at + 3,
            at + 4,
            at + 5,
            at + 5,
            at + 6
        ));
        let request = &item.request;
        values.extend([
            request.id.as_str().into(),
            request.show_id.as_deref().unwrap_or("").into(),
            request.fingerprint().into(),
            now.0.into(),
            now.plus(request.ttl).0.into(),
            item.traceparent.as_str().into(),
        ]);
    }
    query(
        c,
        &format!(
            "INSERT INTO reservations (id, show_id, state, fingerprint, create_time, expire_time, close_time, due_at, \
             traceparent) VALUES {} ON CONFLICT (id) DO NOTHING RETURNING id",
            rows.join(", ")
        ),
        values,
    )
    .await?
    .iter()
    .map(|r| r.try_get("", "id"))
    .collect()
}

/// Where the product's units come from, in priority order: the show's
/// allocation lines, or the general pool's stock rows.
async fn sources(
    c: &DatabaseTransaction,
    show: Option<&str>,
    product: &str,
) -> Result<Vec<(String, i32)>, sea_orm::DbErr> {
    match show {
        Some(show) => super::allocations::line_sources(c, show, product).await,
        None => super::stock::pool_sources(c, product).await,
    }
}

/// Gives `units` taken by this batch back to an allocation line.
async fn untake_from_line(
    c: &DatabaseTransaction,
    show: &str,
    product: &str,
    warehouse: &str,
    units: i64,
) -> Result<(), Error> {
    let changed = exec(
        c,
        "UPDATE allocation_lines SET used = used - $4, version = version + 1 \
         WHERE show_id = $1 AND product_id = $2 AND warehouse_id = $3 AND used >= $4",
        vec![show.into(), product.into(), warehouse.into(), units.into()],
    )
    .await
    .map_err(Error::db(CONTEXT))?;
    if changed == 1 {
        Ok(())
    } else {
        Err(Error::Invariant(format!("allocation line of {product} in {warehouse} cannot give back {units}")))
    }
}

/// The reservation lines and the ledger movements of every grant, in a few
/// multi-row statements.
async fn record_lines(
    c: &DatabaseTransaction,
    product: &str,
    from_show: bool,
    lines: &[(&str, &str, i32, i64)],
    now: Micros,
) -> Result<(), Error> {
    for chunk in row_chunks(lines.len()) {
        record_chunk(c, product, from_show, &lines[chunk], now).await.map_err(Error::db(CONTEXT))?;
    }
    Ok(())
}

/// [`record_lines`] for one run of at most
/// [`caravan_platform::db::MAX_ROWS_PER_STATEMENT`] lines.
async fn record_chunk(
    c: &DatabaseTransaction,
    product: &str,
    from_show: bool,
    lines: &[(&str, &str, i32, i64)],
    now: Micros,
) -> Result<(), sea_orm::DbErr> {
    let mut values: Vec<Value> = Vec::with_capacity(lines.len() * 5);
    let mut rows = Vec::with_capacity(lines.len());
    for (i, (id, warehouse, priority, units)) in lines.iter().enumerate() {
        let at = i * 5;
        rows.push(format!("(${}, ${}, ${}, 0, ${}, ${})", at + 1, at + 2, at + 3, at + 4, at + 5));
        values.extend([(*id).into(), product.into(), (*warehouse).into(), (*priority).into(), (*units).into()]);
    }
    exec(
        c,
        &format!(
            "INSERT INTO reservation_lines (reservation_id, product_id, warehouse_id, line_no, priority, quantity) \
             VALUES {}",
            rows.join(", ")
        ),
        values,
    )
    .await?;
    // From a show's allocation the units move from allocated to reserved.
    let mut values: Vec<Value> = Vec::with_capacity(lines.len() * 6);
    let mut rows = Vec::with_capacity(lines.len());
    for (i, (id, warehouse, _, units)) in lines.iter().enumerate() {
        let at = i * 6;
        rows.push(format!(
            "(${}, ${}, {}, 0, ${}, ${}, ${}, 0, NULL, ${})",
            at + 1,
            at + 2,
            MovementKind::Reserve as i16,
            at + 3,
            at + 4,
            at + 5,
            at + 6
        ));
        let allocated = if from_show { -units } else { 0 };
        values.extend([
            product.into(),
            (*warehouse).into(),
            (*units).into(),
            allocated.into(),
            format!("reservations/{id}").into(),
            now.0.into(),
        ]);
    }
    exec(
        c,
        &format!(
            "INSERT INTO movements (product_id, warehouse_id, kind, on_hand_delta, reserved_delta, allocated_delta, \
             reference, reason, request_key, create_time) VALUES {}",
            rows.join(", ")
        ),
        values,
    )
    .await?;
    Ok(())
}

/// Units of `product` still available: in the show's open allocation, or in
/// the general pool.
pub(super) async fn available(
    c: &impl sea_orm::ConnectionTrait,
    show: Option<&str>,
    product: &str,
) -> Result<i64, sea_orm::DbErr> {
    use sea_orm::sea_query::ExprTrait as _;
    let units = match show {
        Some(show) => {
            use allocation_line::Column;
            allocation_line::Entity::find()
                .select_only()
                .column_as(total(Expr::col(Column::Quantity).sub(Expr::col(Column::Used))), "units")
                .filter(Column::ShowId.eq(show))
                .filter(Column::ProductId.eq(product))
                .filter(Column::Closed.eq(0))
                .into_tuple::<i64>()
                .one(c)
                .await?
        }
        None => {
            use stock::Column;
            let free = Expr::col(Column::OnHand).sub(Expr::col(Column::Reserved)).sub(Expr::col(Column::Allocated));
            stock::Entity::find()
                .select_only()
                .column_as(total(free), "units")
                .filter(Column::ProductId.eq(product))
                .into_tuple::<i64>()
                .one(c)
                .await?
        }
    };
    Ok(units.unwrap_or(0))
}
