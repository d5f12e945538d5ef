//! The statements that change stock, shared by every operation.
//!
//! Every change of a stock or allocation row is **one conditional statement**
//! (the condition is the rule, checked by the database under the row lock);
//! application code never reads a level and writes it back. Statements are
//! written once with `$n` placeholders, which PostgreSQL and SQLite (through
//! sqlx) both bind by number. Rows are touched in one global order — product
//! id, then warehouse `(priority, id)`, and for each warehouse the allocation
//! line before the stock row — so concurrent transactions on PostgreSQL wait
//! for each other but never deadlock.

use caravan_platform::error::StoreFailure as _;
use caravan_platform::time::Micros;
use sea_orm::{ConnectionTrait, DbErr};

use crate::{domain::MovementKind, error::Error};

pub use caravan_platform::db::{exec, query};

/// Which column of a stock row a take moves units into.
#[derive(Debug, Clone, Copy)]
pub enum Hold {
    /// Held for a reservation.
    Reserved,
    /// Earmarked for a show.
    Allocated,
}

/// Moves up to `want` units of the general pool of one stock row into
/// `reserved` or `allocated`; returns how many it moved (0 when the pool is
/// empty) and how many the row has left. `last_delta` is set in the same
/// statement from the row's values before the update, which is how the
/// statement reports what it took (`RETURNING` only sees values after it).
pub async fn take_from_pool(
    c: &impl ConnectionTrait,
    product: &str,
    warehouse: &str,
    want: i64,
    into: Hold,
    now: Micros,
) -> Result<(i64, i64), DbErr> {
    let column = match into {
        Hold::Reserved => "reserved",
        Hold::Allocated => "allocated",
    };
    let take = "CASE WHEN on_hand - reserved - allocated >= $3 THEN $3 ELSE on_hand - reserved - allocated END";
    let sql = format!(
        "UPDATE stock SET {column} = {column} + {take}, last_delta = {take}, version = version + 1, update_time = $4 \
         WHERE product_id = $1 AND warehouse_id = $2 AND on_hand - reserved - allocated > 0 \
         RETURNING last_delta, on_hand - reserved - allocated AS available"
    );
    let rows = query(c, &sql, vec![product.into(), warehouse.into(), want.into(), now.0.into()]).await?;
    match rows.first() {
        Some(row) => Ok((row.try_get::<i64>("", "last_delta")?, row.try_get::<i64>("", "available")?)),
        None => Ok((0, 0)),
    }
}

/// Shifts a stock row by the given deltas if the result keeps
/// `0 <= reserved`, `0 <= allocated` and `reserved + allocated <= on_hand`;
/// returns whether it did.
pub async fn shift(
    c: &impl ConnectionTrait,
    product: &str,
    warehouse: &str,
    (on_hand, reserved, allocated): (i64, i64, i64),
    now: Micros,
) -> Result<bool, DbErr> {
    let changed = exec(
        c,
        "UPDATE stock SET on_hand = on_hand + $3, reserved = reserved + $4, allocated = allocated + $5, \
         version = version + 1, update_time = $6 \
         WHERE product_id = $1 AND warehouse_id = $2 AND reserved + $4 >= 0 AND allocated + $5 >= 0 \
         AND on_hand + $3 >= reserved + $4 + allocated + $5",
        vec![product.into(), warehouse.into(), on_hand.into(), reserved.into(), allocated.into(), now.0.into()],
    )
    .await?;
    Ok(changed == 1)
}

/// [`shift`] where failing means the books are wrong (the units being moved
/// were counted there by an earlier statement).
pub async fn shift_held(
    c: &impl ConnectionTrait,
    product: &str,
    warehouse: &str,
    deltas: (i64, i64, i64),
    now: Micros,
) -> Result<(), Error> {
    if shift(c, product, warehouse, deltas, now).await.map_err(Error::db("moving held stock"))? {
        Ok(())
    } else {
        Err(Error::Invariant(format!("stock of {product} in {warehouse} cannot move by {deltas:?}")))
    }
}

/// A ledger entry, appended in the transaction of the change it records.
#[derive(Debug)]
pub struct NewMovement<'a> {
    /// What happened.
    pub kind: MovementKind,
    /// The product id.
    pub product: &'a str,
    /// The warehouse id.
    pub warehouse: &'a str,
    /// `(on_hand, reserved, allocated)` deltas.
    pub deltas: (i64, i64, i64),
    /// What caused it.
    pub reference: &'a str,
    /// Adjustment reason code.
    pub reason: i16,
    /// For receipts and adjustments: the request it records, unique.
    pub request_key: Option<&'a str>,
}

/// Appends a movement; `false` if its request key was recorded before (the
/// request already happened).
pub async fn append_movement(c: &impl ConnectionTrait, movement: NewMovement<'_>, now: Micros) -> Result<bool, DbErr> {
    let NewMovement { kind, product, warehouse, deltas, reference, reason, request_key } = movement;
    let changed = exec(
        c,
        "INSERT INTO movements (product_id, warehouse_id, kind, on_hand_delta, reserved_delta, allocated_delta, \
         reference, reason, request_key, create_time) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
         ON CONFLICT (request_key) DO NOTHING",
        vec![
            product.into(),
            warehouse.into(),
            (kind as i16).into(),
            deltas.0.into(),
            deltas.1.into(),
            deltas.2.into(),
            reference.into(),
            reason.into(),
            request_key.map(str::to_owned).into(),
            now.0.into(),
        ],
    )
    .await?;
    Ok(changed == 1)
}

/// Moves up to `want` unused units of an open allocation line to `used`;
/// returns how many and how many the line has left (`None` when none).
pub async fn take_from_line(
    c: &impl ConnectionTrait,
    show: &str,
    product: &str,
    warehouse: &str,
    want: i64,
) -> Result<Option<(i64, i64)>, DbErr> {
    let take = "CASE WHEN quantity - used >= $4 THEN $4 ELSE quantity - used END";
    let rows = query(
        c,
        &format!(
            "UPDATE allocation_lines SET used = used + {take}, last_delta = {take}, version = version + 1 \
             WHERE show_id = $1 AND product_id = $2 AND warehouse_id = $3 AND closed = 0 AND quantity - used > 0 \
             RETURNING last_delta, quantity - used AS remaining"
        ),
        vec![show.into(), product.into(), warehouse.into(), want.into()],
    )
    .await?;
    match rows.first() {
        Some(row) => Ok(Some((row.try_get("", "last_delta")?, row.try_get("", "remaining")?))),
        None => Ok(None),
    }
}
