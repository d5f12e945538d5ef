//! Reservations: holds on stock for one order, keyed by the order id.
//!
//! The reservation row is written first (`ON CONFLICT DO NOTHING`), so of two
//! concurrent ReserveStock calls with one id exactly one proceeds; the other
//! waits for it and then reads its outcome. A reservation leaves ACTIVE by
//! one conditional UPDATE on `state = ACTIVE`, so it is committed, released
//! or expired exactly once whatever the retries and whichever replica asks.

use caravan_macros::store_op;
use caravan_platform::error::{Resource, StoreFailure as _};
use caravan_platform::time::Micros;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseTransaction, EntityTrait, QueryFilter, QueryOrder, TransactionTrait,
};

use super::{
    Store,
    allocations::line_warehouses,
    entity::{reservation, reservation_line},
    sql::{Hold, NewMovement, append_movement, exec, shift_held, take_from_line, take_from_pool},
    stock::warehouses_of,
};
use crate::{
    domain::{MovementKind, Reservation, ReservationLine, ReservationState, ReserveRequest, Source},
    error::Error,
};

const RESERVATION: &str = "caravan.inventory.v1.Reservation";
const ACTIVE: i16 = ReservationState::Active as i16;
/// The fingerprint of a tombstone (a release of an id never reserved).
const TOMBSTONE: &str = "";

/// How a reservation ends without a sale.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// Released on request.
    Release,
    /// Its TTL passed (the reaper).
    Expire,
}

impl Store {
    /// Holds the request's lines, all or none. A repeat with the same id and
    /// lines answers the existing reservation, whatever its state now.
    #[store_op]
    pub async fn reserve(
        &self,
        request: &ReserveRequest,
        traceparent: &str,
        now: Micros,
    ) -> Result<Reservation, Error> {
        let context = "reserving stock";
        let fingerprint = request.fingerprint();
        let txn = self.db.begin().await.map_err(Error::db(context))?;
        let expire_time = now.plus(request.ttl);
        let inserted = exec(
            &txn,
            "INSERT INTO reservations (id, show_id, state, fingerprint, create_time, expire_time, close_time, due_at, \
             traceparent) VALUES ($1, $2, $3, $4, $5, $6, NULL, $6, $7) ON CONFLICT (id) DO NOTHING",
            vec![
                request.id.as_str().into(),
                request.show_id.as_deref().unwrap_or("").into(),
                ACTIVE.into(),
                fingerprint.as_str().into(),
                now.0.into(),
                expire_time.0.into(),
                traceparent.into(),
            ],
        )
        .await
        .map_err(Error::db(context))?;
        if inserted == 0 {
            txn.rollback().await.map_err(Error::db(context))?;
            let existing = self.reservation(&request.id).await?;
            return if existing.tombstone {
                Err(Error::closed_reservation(&request.id, ReservationState::Released))
            } else if self.fingerprint(&request.id).await? != fingerprint {
                Err(Error::ReservationReused { id: request.id.clone() })
            } else {
                Ok(existing)
            };
        }
        match hold_lines(&txn, request, now).await {
            Ok(sold_out) => {
                txn.commit().await.map_err(Error::db(context))?;
                crate::metrics::units_moved("reserved", request.lines.iter().map(|(_, q)| q).sum());
                for _ in 0..sold_out {
                    crate::metrics::sold_out_in(request.show_id.is_some());
                }
            }
            Err(e) => {
                txn.rollback().await.map_err(Error::db(context))?;
                return Err(self.explain_shortage(request, e).await);
            }
        }
        self.reservation(&request.id).await
    }

    /// Sells a reservation: its units leave on-hand stock. Idempotent; a
    /// released or expired reservation (or one past its expiry) is refused.
    #[store_op]
    pub async fn commit(&self, id: &str, now: Micros) -> Result<Reservation, Error> {
        let context = "committing a reservation";
        let txn = self.db.begin().await.map_err(Error::db(context))?;
        let moved = exec(
            &txn,
            "UPDATE reservations SET state = $2, close_time = $3, due_at = NULL \
             WHERE id = $1 AND state = $4 AND expire_time > $3",
            vec![id.into(), (ReservationState::Committed as i16).into(), now.0.into(), ACTIVE.into()],
        )
        .await
        .map_err(Error::db(context))?;
        if moved == 0 {
            txn.rollback().await.map_err(Error::db(context))?;
            let existing = self.reservation(id).await?;
            return match existing.state {
                ReservationState::Committed => Ok(existing),
                // Past its expiry, not yet reaped: as good as expired.
                ReservationState::Active => Err(Error::closed_reservation(id, ReservationState::Expired)),
                state => Err(Error::closed_reservation(id, state)),
            };
        }
        let reference = format!("reservations/{id}");
        let mut sold = 0;
        let result = async {
            for (product, warehouse, quantity) in held_lines(&txn, id).await? {
                sold += quantity;
                shift_held(&txn, &product, &warehouse, (-quantity, -quantity, 0), now).await?;
                let movement = NewMovement {
                    kind: MovementKind::Commit,
                    product: &product,
                    warehouse: &warehouse,
                    deltas: (-quantity, -quantity, 0),
                    reference: &reference,
                    reason: 0,
                    request_key: None,
                };
                append_movement(&txn, movement, now).await.map_err(Error::db(context))?;
            }
            Ok::<_, Error>(())
        }
        .await;
        finish(txn, result, context).await?;
        crate::metrics::units_moved("committed", sold);
        self.reservation(id).await
    }

    /// Gives a reservation's units back (to its show's allocation while that
    /// is open, else to the general pool). Idempotent. Releasing an id never
    /// reserved records a tombstone; releasing a committed one is refused.
    #[store_op]
    pub async fn release(&self, id: &str, ending: Ending, now: Micros) -> Result<Reservation, Error> {
        let context = "releasing a reservation";
        let (state, kind, due) = match ending {
            Ending::Release => (ReservationState::Released, MovementKind::Release, i64::MAX),
            Ending::Expire => (ReservationState::Expired, MovementKind::Expire, now.0),
        };
        for _ in 0..2 {
            let txn = self.db.begin().await.map_err(Error::db(context))?;
            let moved = exec(
                &txn,
                "UPDATE reservations SET state = $2, close_time = $3, due_at = NULL \
                 WHERE id = $1 AND state = $4 AND expire_time <= $5",
                vec![id.into(), (state as i16).into(), now.0.into(), ACTIVE.into(), due.into()],
            )
            .await
            .map_err(Error::db(context))?;
            if moved == 1 {
                let result = give_back(&txn, id, kind, now).await;
                finish(txn, result, context).await?;
                let released = self.reservation(id).await?;
                let event = if ending == Ending::Expire { "expired" } else { "released" };
                crate::metrics::units_moved(event, released.lines.iter().map(|l| l.quantity).sum());
                return Ok(released);
            }
            // Not active (or, for the reaper, not yet due): answer what it is,
            // or leave a tombstone for an id never seen.
            let tombstone = match ending {
                Ending::Expire => 0,
                Ending::Release => exec(
                    &txn,
                    "INSERT INTO reservations (id, show_id, state, fingerprint, create_time, expire_time, close_time, \
                     due_at, traceparent) VALUES ($1, '', $2, $3, $4, $4, $4, NULL, '') ON CONFLICT (id) DO NOTHING",
                    vec![id.into(), (ReservationState::Released as i16).into(), TOMBSTONE.into(), now.0.into()],
                )
                .await
                .map_err(Error::db(context))?,
            };
            txn.commit().await.map_err(Error::db(context))?;
            let existing = self.reservation(id).await?;
            match (existing.state, ending) {
                (ReservationState::Committed, Ending::Release) => {
                    return Err(Error::closed_reservation(id, ReservationState::Committed));
                }
                // Created between our UPDATE and our INSERT: try again.
                (ReservationState::Active, Ending::Release) if tombstone == 0 => continue,
                _ => return Ok(existing),
            }
        }
        Err(Error::Invariant(format!("reservation {id} kept changing while being released")))
    }

    /// A reservation with its lines.
    #[store_op]
    pub async fn reservation(&self, id: &str) -> Result<Reservation, Error> {
        let context = "reading a reservation";
        let Some(row) = reservation::Entity::find_by_id(id).one(&self.db).await.map_err(Error::db(context))? else {
            return Err(Error::from(Resource::not_found(RESERVATION, format!("reservations/{id}"))));
        };
        let state = ReservationState::from_code(row.state)
            .ok_or_else(|| Error::Invariant(format!("reservation {id} has unknown state {}", row.state)))?;
        let rows = reservation_line::Entity::find()
            .filter(reservation_line::Column::ReservationId.eq(id))
            .order_by_asc(reservation_line::Column::LineNo)
            .order_by_asc(reservation_line::Column::Priority)
            .order_by_asc(reservation_line::Column::WarehouseId)
            .all(&self.db)
            .await
            .map_err(Error::db(context))?;
        let mut lines: Vec<ReservationLine> = Vec::new();
        for reservation_line::Model { product_id, warehouse_id, quantity, .. } in rows {
            match lines.last_mut() {
                Some(line) if line.product_id == product_id => {
                    line.quantity += quantity;
                    line.sources.push(Source { warehouse_id, quantity });
                }
                _ => lines.push(ReservationLine {
                    product_id,
                    quantity,
                    sources: vec![Source { warehouse_id, quantity }],
                }),
            }
        }
        let reservation::Model { show_id, fingerprint, create_time, expire_time, close_time, .. } = row;
        Ok(Reservation {
            id: id.to_owned(),
            show_id: (!show_id.is_empty()).then_some(show_id),
            lines,
            state,
            expire_time: Micros(expire_time),
            create_time: Micros(create_time),
            close_time: close_time.map(Micros),
            tombstone: fingerprint == TOMBSTONE,
        })
    }

    #[store_op]
    async fn fingerprint(&self, id: &str) -> Result<String, Error> {
        let found =
            reservation::Entity::find_by_id(id).one(&self.db).await.map_err(Error::db("reading a reservation"))?;
        Ok(found.map(|row| row.fingerprint).unwrap_or_default())
    }

    /// A refusal from the show's pool says why: closed, or what is left.
    #[store_op]
    pub(crate) async fn explain_shortage(&self, request: &ReserveRequest, error: Error) -> Error {
        let (Some(show), Error::InsufficientStock { .. }) = (&request.show_id, &error) else {
            return error;
        };
        match self.allocation(show).await {
            Ok(allocation) if allocation.state == crate::domain::AllocationState::Closed => {
                Error::AllocationClosed { show: show.clone() }
            }
            Err(Error::Resource(Resource::NotFound { .. })) => {
                Error::from(Resource::not_found("caravan.inventory.v1.Allocation", format!("allocations/{show}")))
            }
            _ => error,
        }
    }
}

/// Commits `txn` if `result` is Ok, else rolls it back.
async fn finish(txn: DatabaseTransaction, result: Result<(), Error>, context: &'static str) -> Result<(), Error> {
    match result {
        Ok(()) => txn.commit().await.map_err(Error::db(context)),
        Err(e) => {
            txn.rollback().await.map_err(Error::db(context))?;
            Err(e)
        }
    }
}

/// Takes every line of the request, in product order; the first line short
/// of stock fails the whole request.
/// Returns how many products it took the last unit of.
async fn hold_lines(c: &DatabaseTransaction, request: &ReserveRequest, now: Micros) -> Result<usize, Error> {
    let context = "reserving stock";
    let reference = format!("reservations/{}", request.id);
    let mut order: Vec<(usize, &(String, i64))> = request.lines.iter().enumerate().collect();
    order.sort_by(|a, b| a.1.0.cmp(&b.1.0));
    let mut sold_out = 0;
    for (line_no, (product, want)) in order {
        let (mut held, mut emptied) = (0, false);
        let warehouses = match &request.show_id {
            None => warehouses_of(c, product).await,
            Some(show) => line_warehouses(c, show, product).await,
        }
        .map_err(Error::db(context))?;
        for warehouse in warehouses {
            if held == *want {
                break;
            }
            let took = match &request.show_id {
                None => {
                    let (took, left) = take_from_pool(c, product, &warehouse, want - held, Hold::Reserved, now)
                        .await
                        .map_err(Error::db(context))?;
                    (took > 0).then_some((took, left, (0, took, 0)))
                }
                Some(show) => take_from_line(c, show, product, &warehouse, want - held)
                    .await
                    .map_err(Error::db(context))?
                    .map(|(took, left)| (took, left, (0, took, -took))),
            };
            let Some((took, left, deltas)) = took else { continue };
            emptied |= left == 0;
            if request.show_id.is_some() {
                shift_held(c, product, &warehouse, deltas, now).await?;
            }
            exec(
                c,
                "INSERT INTO reservation_lines (reservation_id, product_id, warehouse_id, line_no, priority, quantity) \
                 SELECT $1, $2, $3, $4, priority, $5 FROM stock WHERE product_id = $2 AND warehouse_id = $3",
                vec![
                    request.id.as_str().into(),
                    product.as_str().into(),
                    warehouse.as_str().into(),
                    i32::try_from(line_no).unwrap_or(i32::MAX).into(),
                    took.into(),
                ],
            )
            .await
            .map_err(Error::db(context))?;
            let movement = NewMovement {
                kind: MovementKind::Reserve,
                product,
                warehouse: &warehouse,
                deltas,
                reference: &reference,
                reason: 0,
                request_key: None,
            };
            append_movement(c, movement, now).await.map_err(Error::db(context))?;
            held += took;
        }
        if held < *want {
            return Err(Error::InsufficientStock {
                product: product.clone(),
                requested: *want,
                available: held,
                pool: request.show_id.as_ref().map(|s| format!("shows/{s}")),
            });
        }
        // A row emptied by this take: was it the product's last unit?
        if emptied
            && super::batch::available(c, request.show_id.as_deref(), product).await.map_err(Error::db(context))? == 0
        {
            sold_out += 1;
        }
    }
    Ok(sold_out)
}

/// `(product, warehouse, quantity)` of a reservation, in lock order.
async fn held_lines(c: &impl ConnectionTrait, id: &str) -> Result<Vec<(String, String, i64)>, Error> {
    let lines = reservation_line::Entity::find()
        .filter(reservation_line::Column::ReservationId.eq(id))
        .order_by_asc(reservation_line::Column::ProductId)
        .order_by_asc(reservation_line::Column::Priority)
        .order_by_asc(reservation_line::Column::WarehouseId)
        .all(c)
        .await
        .map_err(Error::db("reading reservation lines"))?;
    Ok(lines.into_iter().map(|line| (line.product_id, line.warehouse_id, line.quantity)).collect())
}

/// Returns a just-closed reservation's units: to its show's open allocation
/// line, or to the general pool.
async fn give_back(c: &DatabaseTransaction, id: &str, kind: MovementKind, now: Micros) -> Result<(), Error> {
    let context = "giving back reserved stock";
    let found = reservation::Entity::find_by_id(id).one(c).await.map_err(Error::db(context))?;
    let show = found.map(|row| row.show_id).unwrap_or_default();
    let reference = format!("reservations/{id}");
    for (product, warehouse, quantity) in held_lines(c, id).await? {
        let to_show = !show.is_empty()
            && exec(
                c,
                "UPDATE allocation_lines SET used = used - $4, version = version + 1 \
                 WHERE show_id = $1 AND product_id = $2 AND warehouse_id = $3 AND closed = 0",
                vec![show.as_str().into(), product.as_str().into(), warehouse.as_str().into(), quantity.into()],
            )
            .await
            .map_err(Error::db(context))?
                == 1;
        let deltas = if to_show { (0, -quantity, quantity) } else { (0, -quantity, 0) };
        shift_held(c, &product, &warehouse, deltas, now).await?;
        let movement = NewMovement {
            kind,
            product: &product,
            warehouse: &warehouse,
            deltas,
            reference: &reference,
            reason: 0,
            request_key: None,
        };
        append_movement(c, movement, now).await.map_err(Error::db(context))?;
    }
    Ok(())
}
