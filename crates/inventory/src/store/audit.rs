//! The books' audit: every invariant inventory promises (ARCHITECTURE.md
//! "Inventory"), checked against the tables. Tests run it after every
//! concurrency test, cross-service flash sale and crash drill; an operator
//! can run it against a live database (it only reads).
//!
//! Its queries stay SQL on purpose: grouped sums over whole tables, written
//! apart from the store's own reads, so a mistake in those cannot hide from
//! the audit that checks them.

use std::collections::{BTreeMap, HashMap};

use caravan_platform::db::Db;
use caravan_platform::db::{query, read_snapshot};
use sea_orm::{ConnectionTrait, DbErr, Value};

use crate::domain::ReservationState;

type Key = (String, String);

/// The rows of `sql`: `product_id`, `warehouse_id`, then figures read by
/// their names (so every computed column needs an alias of its own).
async fn sums(db: &impl ConnectionTrait, sql: &str, values: Vec<Value>) -> Result<HashMap<Key, Vec<i64>>, DbErr> {
    let rows = query(db, sql, values).await?;
    rows.iter()
        .map(|r| {
            let key = (r.try_get::<String>("", "product_id")?, r.try_get::<String>("", "warehouse_id")?);
            let values =
                r.column_names()[2..].iter().map(|name| r.try_get::<i64>("", name)).collect::<Result<_, _>>()?;
            Ok((key, values))
        })
        .collect()
}

/// Per (product, warehouse), what each stock row says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Books {
    /// Units in the warehouse.
    pub on_hand: i64,
    /// Units held by active reservations.
    pub reserved: i64,
    /// Units earmarked for open show allocations.
    pub allocated: i64,
}

/// Checks the books, per product and warehouse: on-hand, reserved and
/// allocated each equal the sum of their ledger movements; reserved is what
/// active reservations hold; allocated is what open show allocations have
/// not yet handed out; nothing is negative or held beyond what is on hand;
/// no movement lacks its stock row. Returns every violation found (none:
/// the books balance) and the stock rows read. Every figure is read in one
/// snapshot (REPEATABLE READ on PostgreSQL; one read transaction on SQLite),
/// so an audit during live traffic never mixes two moments.
pub async fn audit(db: &Db) -> Result<(Vec<String>, BTreeMap<Key, Books>), DbErr> {
    let txn = read_snapshot(db).await?;
    let db = &txn;
    let stock =
        sums(db, "SELECT product_id, warehouse_id, on_hand, reserved, allocated FROM stock", Vec::new()).await?;
    let ledger = sums(
        db,
        "SELECT product_id, warehouse_id, CAST(SUM(on_hand_delta) AS BIGINT) AS on_hand, \
         CAST(SUM(reserved_delta) AS BIGINT) AS reserved, CAST(SUM(allocated_delta) AS BIGINT) AS allocated FROM movements GROUP BY product_id, warehouse_id",
        Vec::new(),
    )
    .await?;
    let held = sums(
        db,
        "SELECT l.product_id, l.warehouse_id, CAST(SUM(l.quantity) AS BIGINT) AS held FROM reservation_lines l \
         JOIN reservations r ON r.id = l.reservation_id WHERE r.state = $1 GROUP BY l.product_id, l.warehouse_id",
        vec![(ReservationState::Active as i16).into()],
    )
    .await?;
    let earmarked = sums(
        db,
        "SELECT product_id, warehouse_id, CAST(SUM(quantity - used) AS BIGINT) AS earmarked FROM allocation_lines \
         WHERE closed = 0 GROUP BY product_id, warehouse_id",
        Vec::new(),
    )
    .await?;
    let mut violations = Vec::new();
    let mut books = BTreeMap::new();
    for (key, row) in &stock {
        let [on_hand, reserved, allocated] = row[..] else {
            violations.push(format!("{key:?}: a stock row of {} columns", row.len()));
            continue;
        };
        books.insert(key.clone(), Books { on_hand, reserved, allocated });
        if reserved < 0 || allocated < 0 || reserved + allocated > on_hand {
            violations.push(format!("{key:?}: on hand {on_hand}, reserved {reserved}, allocated {allocated}"));
        }
        let ledger = ledger.get(key).cloned().unwrap_or_else(|| vec![0, 0, 0]);
        if ledger != [on_hand, reserved, allocated] {
            violations.push(format!("{key:?}: the ledger sums to {ledger:?}, the row says {row:?}"));
        }
        let held = held.get(key).map_or(0, |v| v[0]);
        if held != reserved {
            violations.push(format!("{key:?}: active reservations hold {held}, the row says {reserved}"));
        }
        let earmarked = earmarked.get(key).map_or(0, |v| v[0]);
        if earmarked != allocated {
            violations.push(format!("{key:?}: open allocations hold {earmarked}, the row says {allocated}"));
        }
    }
    for key in ledger.keys() {
        if !stock.contains_key(key) {
            violations.push(format!("{key:?}: movements without a stock row"));
        }
    }
    txn.commit().await?;
    Ok((violations, books))
}
