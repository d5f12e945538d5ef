//! Orders' storage: sea-orm entities and queries. The only module that sees
//! sea-orm.

mod demand;
mod entity;
mod sales;

use std::collections::HashMap;

use caravan_macros::store_op;
use caravan_platform::{
    batch::Batcher,
    db::{Db, exec, query},
    error::StoreFailure as _,
    idempotency::Claim,
    time::Micros,
};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, Condition, DatabaseTransaction, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
    TransactionTrait, sea_query::OnConflict,
};
use tonic::Status;

use crate::{
    domain::{Money, Order, OrderLine, OrderState},
    error::Error,
};
pub use demand::Demand;
use entity::{buyer_units, order, order_line};
pub use sales::{CountrySales, Figures, Sales, SalesLine, Unmet};

/// Which orders a list returns.
#[derive(Debug, Clone, Default)]
pub struct OrderFilter {
    /// Only this partner's (a partner caller only ever sees its own).
    pub partner: Option<String>,
    /// Only this show's (`shows/{id}`).
    pub show: Option<String>,
    /// Only this buyer's.
    pub buyer: Option<String>,
    /// Only in this state.
    pub state: Option<OrderState>,
    /// Only created at or after this instant.
    pub created_from: Option<Micros>,
    /// Only created before this instant.
    pub created_before: Option<Micros>,
}

/// What a state change also records (empty / `None`: unchanged), and when
/// the order driver next looks at the order (`due_at`; `None`: never).
#[derive(Debug, Default, Clone, Copy)]
pub struct StateChange<'a> {
    /// Why (rejections, cancellations, expiries).
    pub reason: &'a str,
    /// When payment is due.
    pub payment_deadline: Option<Micros>,
    /// The partner's payment reference.
    pub payment_reference: &'a str,
    /// When the driver looks at the order next.
    pub due_at: Option<Micros>,
}

/// The per-buyer limits of a new order's show offers, by `products/{id}`
/// (0: no limit).
pub type BuyerLimits = HashMap<String, i64>;

/// Queries against orders' own database.
#[derive(Debug, Clone)]
pub struct Store {
    db: Db,
    accepts: Batcher<Accept, Result<bool, Status>>,
}

/// An order whose stock is held, to be moved to AWAITING_PAYMENT.
#[derive(Debug)]
struct Accept {
    id: String,
    payment_deadline: Micros,
    now: Micros,
    /// The request id's claim and the reply to record under it.
    outcome: Option<(Claim, Vec<u8>)>,
}

/// Most accepted orders one transaction records.
const ACCEPT_BATCH: usize = 64;

impl Store {
    /// A store on `db`.
    pub fn new(db: Db) -> Self {
        let writer = db.clone();
        let accepts = Batcher::new("orders.accept_batch", ACCEPT_BATCH, move |batch: Vec<Accept>| {
            let writer = writer.clone();
            async move { accept_batch(&writer, batch).await }
        });
        Store { db, accepts }
    }

    /// Writes a new order and its lines in one transaction, due for the
    /// driver at `due_at`, with the request id's `claim` if there is one;
    /// `false` (and nothing written) if an order with its id, or a record of
    /// its request id, already exists.
    /// An order of a show also adds its units to what its buyer holds of each
    /// offer, in the same transaction and by one conditional upsert per line
    /// (so concurrent orders of one buyer cannot pass a limit together); a
    /// line beyond its offer's `limits` refuses the whole order.
    #[store_op]
    pub async fn insert_order(
        &self,
        order: &Order,
        traceparent: &str,
        due_at: Micros,
        limits: &BuyerLimits,
        claim: Option<&Claim>,
        request_key: Option<&str>,
    ) -> Result<bool, Error> {
        let txn = self.db.begin().await.map_err(Error::db("starting a transaction"))?;
        if let Some(claim) = claim
            && !claim.insert(&txn).await.map_err(Error::db("claiming a request id"))?
        {
            txn.rollback().await.map_err(Error::db("rolling back"))?;
            return Ok(false);
        }
        let inserted = order::Entity::insert(order::ActiveModel {
            id: Set(order.id.clone()),
            partner: Set(order.partner.clone()),
            buyer: Set(order.buyer.clone()),
            show: Set(order.show.clone()),
            state: Set(order.state.as_db().to_owned()),
            state_reason: Set(order.state_reason.clone()),
            payment_deadline: Set(order.payment_deadline.map(|t| t.0)),
            payment_reference: Set(order.payment_reference.clone()),
            traceparent: Set(traceparent.to_owned()),
            create_time: Set(order.create_time.0),
            update_time: Set(order.update_time.0),
            due_at: Set(Some(due_at.0)),
            request_key: Set(request_key.map(str::to_owned)),
            request_id: Set(Some(order.request_id.clone()).filter(|r| !r.is_empty())),
        })
        .on_conflict(OnConflict::column(order::Column::Id).do_nothing().to_owned())
        .exec_without_returning(&txn)
        .await
        .map_err(Error::db("inserting an order"))?;
        if inserted == 0 {
            txn.rollback().await.map_err(Error::db("rolling back"))?;
            return Ok(false);
        }
        let lines = order.lines.iter().enumerate().map(|(i, line)| order_line::ActiveModel {
            order_id: Set(order.id.clone()),
            line_no: Set(i32::try_from(i).unwrap_or(i32::MAX)),
            product: Set(line.product.clone()),
            quantity: Set(line.quantity),
            currency: Set(line.unit_price.currency.clone()),
            unit_price_minor: Set(line.unit_price.minor),
            country: Set(line.country.clone()),
        });
        order_line::Entity::insert_many(lines).exec(&txn).await.map_err(Error::db("inserting order lines"))?;
        if !order.show.is_empty()
            && let Err(e) = hold_for_buyer(&txn, order, limits).await
        {
            txn.rollback().await.map_err(Error::db("rolling back"))?;
            return Err(e);
        }
        txn.commit().await.map_err(Error::db("committing an order"))?;
        crate::metrics::placed();
        crate::metrics::show_event(&order.show, crate::metrics::ShowEvent::Placed);
        Ok(true)
    }

    /// Moves a PENDING order whose stock is held to AWAITING_PAYMENT, and
    /// records `outcome` (the request id's claim and its reply) with it;
    /// `false` if the order is no longer PENDING (recovery rejected it
    /// meanwhile), and then nothing is recorded. Concurrent acceptances
    /// share one transaction: an order costs a fraction of a commit here.
    pub async fn accept(
        &self,
        id: &str,
        payment_deadline: Micros,
        now: Micros,
        outcome: Option<(Claim, Vec<u8>)>,
    ) -> Result<bool, Status> {
        let accept = Accept { id: id.to_owned(), payment_deadline, now, outcome };
        self.accepts.submit(accept).await.map_err(|e| caravan_platform::error::internal("accepting an order", &e))?
    }

    /// The request keys of show `show`'s (`shows/{id}`) orders created at
    /// or after `since`, with their order ids.
    #[store_op]
    pub async fn request_keys(&self, show: &str, since: Micros) -> Result<Vec<(String, String)>, Error> {
        let context = "listing a show's request keys";
        order::Entity::find()
            .select_only()
            .columns([order::Column::RequestKey, order::Column::Id])
            .filter(order::Column::Show.eq(show))
            .filter(order::Column::CreateTime.gte(since.0))
            .filter(order::Column::RequestKey.is_not_null())
            .into_tuple()
            .all(&self.db)
            .await
            .map_err(Error::db(context))
    }

    /// Forgets a PENDING order that sold nothing (inventory refused it): its
    /// row and lines go, its units are given back to its buyer, and the
    /// request id's `claim` is let go, in one transaction; a refused order
    /// leaves nothing behind. `false` if the order is no longer PENDING.
    #[store_op]
    pub async fn forget(&self, order: &Order, claim: Option<&Claim>) -> Result<bool, Error> {
        let context = "forgetting a refused order";
        let txn = self.db.begin().await.map_err(Error::db(context))?;
        exec(
            &txn,
            "DELETE FROM order_lines WHERE order_id = $1 AND EXISTS \
             (SELECT 1 FROM orders WHERE id = $1 AND state = $2)",
            vec![order.id.as_str().into(), OrderState::Pending.as_db().into()],
        )
        .await
        .map_err(Error::db(context))?;
        let deleted = exec(
            &txn,
            "DELETE FROM orders WHERE id = $1 AND state = $2",
            vec![order.id.as_str().into(), OrderState::Pending.as_db().into()],
        )
        .await
        .map_err(Error::db(context))?
            == 1;
        if !deleted {
            txn.rollback().await.map_err(Error::db(context))?;
            return Ok(false);
        }
        if !order.show.is_empty() {
            for line in by_product(&order.lines) {
                give_back(&txn, &order.partner, &order.buyer, &order.show, &line.product, line.quantity).await?;
            }
        }
        if let Some(claim) = claim {
            claim.release(&txn).await.map_err(Error::db(context))?;
        }
        txn.commit().await.map_err(Error::db(context))?;
        Ok(true)
    }

    /// Moves an order from `from` to `to` if it is still in `from` (one
    /// conditional UPDATE: of two racing callers, one moves it); sets the
    /// reason, the payment deadline or the payment reference when given, and
    /// when the driver looks at it next. An order of a show that stops
    /// counting against its buyer's limit gives those units back to the
    /// buyer in the same transaction.
    #[store_op]
    pub async fn move_state(
        &self,
        id: &str,
        from: OrderState,
        to: OrderState,
        change: StateChange<'_>,
        now: Micros,
    ) -> Result<bool, Error> {
        let context = "changing an order's state";
        let StateChange { reason, payment_deadline, payment_reference, due_at } = change;
        let txn = self.db.begin().await.map_err(Error::db(context))?;
        let moved = query(
            &txn,
            "UPDATE orders SET state = $3, update_time = $4, \
             state_reason = CASE WHEN $5 = '' THEN state_reason ELSE $5 END, \
             payment_deadline = CASE WHEN $6 = 0 THEN payment_deadline ELSE $6 END, \
             payment_reference = CASE WHEN $7 = '' THEN payment_reference ELSE $7 END, \
             due_at = $8 \
             WHERE id = $1 AND state = $2 RETURNING show",
            vec![
                id.into(),
                from.as_db().into(),
                to.as_db().into(),
                now.0.into(),
                reason.into(),
                payment_deadline.map_or(0, |t| t.0).into(),
                payment_reference.into(),
                sea_orm::Value::BigInt(due_at.map(|t| t.0)),
            ],
        )
        .await
        .map_err(Error::db(context))?;
        let show: Option<String> =
            moved.first().map(|row| row.try_get("", "show")).transpose().map_err(Error::db(context))?;
        let changed = show.is_some();
        if changed && from.counts_for_limit() && !to.counts_for_limit() {
            release_for_buyer(&txn, id).await?;
        }
        txn.commit().await.map_err(Error::db(context))?;
        if let Some(show) = show {
            crate::metrics::moved(to);
            if to == OrderState::Paid {
                crate::metrics::show_event(&show, crate::metrics::ShowEvent::Paid);
            }
        }
        Ok(changed)
    }

    /// Records the partner's payment reference on an order awaiting payment,
    /// before its stock is committed, so a payment cut short by a crash is
    /// known to have been made; `false` if the order is no longer awaiting
    /// payment or already carries another reference.
    #[store_op]
    pub async fn record_payment(&self, id: &str, reference: &str, now: Micros) -> Result<bool, Error> {
        let changed = exec(
            &self.db,
            "UPDATE orders SET payment_reference = $2, update_time = $3 \
             WHERE id = $1 AND state = $4 AND payment_reference IN ('', $2)",
            vec![id.into(), reference.into(), now.0.into(), OrderState::AwaitingPayment.as_db().into()],
        )
        .await
        .map_err(Error::db("recording a payment"))?;
        Ok(changed == 1)
    }

    /// Records a payment that came too late, for the partner's refund.
    #[store_op]
    pub async fn record_late_payment(&self, id: &str, reference: &str, now: Micros) -> Result<(), Error> {
        exec(
            &self.db,
            "UPDATE orders SET payment_reference = $2, update_time = $3 WHERE id = $1 AND payment_reference = ''",
            vec![id.into(), reference.into(), now.0.into()],
        )
        .await
        .map_err(Error::db("recording a late payment"))?;
        Ok(())
    }

    /// One order with its lines; with `partner`, only if it is that
    /// partner's (another partner's order is as not found as a missing one).
    #[store_op]
    pub async fn order(&self, id: &str, partner: Option<&str>) -> Result<Order, Error> {
        let mut query = order::Entity::find_by_id(id.to_owned());
        if let Some(partner) = partner {
            query = query.filter(order::Column::Partner.eq(partner));
        }
        let row = query
            .one(&self.db)
            .await
            .map_err(Error::db("reading an order"))?
            .ok_or_else(|| Error::OrderNotFound(id.to_owned()))?;
        let mut orders = self.with_lines(vec![row]).await?;
        orders.pop().ok_or_else(|| Error::OrderNotFound(id.to_owned()))
    }

    /// Up to `limit` orders matching `filter`, newest first, after the
    /// `(create_time, id)` of the previous page's last order.
    #[store_op]
    pub async fn orders(
        &self,
        filter: &OrderFilter,
        after: Option<(Micros, &str)>,
        limit: u64,
    ) -> Result<Vec<Order>, Error> {
        let mut query = order::Entity::find()
            .order_by_desc(order::Column::CreateTime)
            .order_by_desc(order::Column::Id)
            .limit(limit);
        if let Some(partner) = &filter.partner {
            query = query.filter(order::Column::Partner.eq(partner.as_str()));
        }
        if let Some(show) = &filter.show {
            query = query.filter(order::Column::Show.eq(show.as_str()));
        }
        if let Some(buyer) = &filter.buyer {
            query = query.filter(order::Column::Buyer.eq(buyer.as_str()));
        }
        if let Some(state) = filter.state {
            query = query.filter(order::Column::State.eq(state.as_db()));
        }
        if let Some(from) = filter.created_from {
            query = query.filter(order::Column::CreateTime.gte(from.0));
        }
        if let Some(before) = filter.created_before {
            query = query.filter(order::Column::CreateTime.lt(before.0));
        }
        if let Some((time, id)) = after {
            query = query.filter(
                Condition::any()
                    .add(order::Column::CreateTime.lt(time.0))
                    .add(Condition::all().add(order::Column::CreateTime.eq(time.0)).add(order::Column::Id.lt(id))),
            );
        }
        let rows = query.all(&self.db).await.map_err(Error::db("listing orders"))?;
        self.with_lines(rows).await
    }

    #[store_op]
    async fn with_lines(&self, rows: Vec<order::Model>) -> Result<Vec<Order>, Error> {
        let ids: Vec<String> = rows.iter().map(|r| r.id.clone()).collect();
        let mut lines: HashMap<String, Vec<order_line::Model>> = HashMap::new();
        if !ids.is_empty() {
            for line in order_line::Entity::find()
                .filter(order_line::Column::OrderId.is_in(ids))
                .order_by_asc(order_line::Column::OrderId)
                .order_by_asc(order_line::Column::LineNo)
                .all(&self.db)
                .await
                .map_err(Error::db("reading order lines"))?
            {
                lines.entry(line.order_id.clone()).or_default().push(line);
            }
        }
        rows.into_iter()
            .map(|row| {
                let order_lines = lines.remove(&row.id).unwrap_or_default();
                to_domain(row, order_lines)
            })
            .collect()
    }
}

fn to_domain(row: order::Model, lines: Vec<order_line::Model>) -> Result<Order, Error> {
    let order::Model {
        id,
        partner,
        buyer,
        show,
        state,
        state_reason,
        payment_deadline,
        payment_reference,
        traceparent: _,
        create_time,
        update_time,
        due_at: _,
        request_key: _,
        request_id,
    } = row;
    let state = OrderState::from_db(&state).ok_or_else(|| Error::corrupt(format!("orders.state `{state}` of {id}")))?;
    let lines = lines
        .into_iter()
        .map(|l| OrderLine {
            product: l.product,
            quantity: l.quantity,
            unit_price: Money { currency: l.currency, minor: l.unit_price_minor },
            country: l.country,
        })
        .collect();
    Ok(Order {
        id,
        partner,
        buyer,
        show,
        lines,
        state,
        state_reason,
        payment_deadline: payment_deadline.map(Micros),
        payment_reference,
        request_id: request_id.unwrap_or_default(),
        create_time: Micros(create_time),
        update_time: Micros(update_time),
    })
}

/// The lines of `order` by product, in key order: every transaction takes
/// the buyer rows in the same order, so PostgreSQL cannot deadlock.
fn by_product(lines: &[OrderLine]) -> Vec<&OrderLine> {
    let mut lines: Vec<&OrderLine> = lines.iter().collect();
    lines.sort_by(|a, b| a.product.cmp(&b.product));
    lines
}

/// Adds a new show order's units to what its buyer holds of each offer: one
/// upsert per line whose update applies only within the offer's limit.
async fn hold_for_buyer(txn: &DatabaseTransaction, order: &Order, limits: &BuyerLimits) -> Result<(), Error> {
    let context = "counting a buyer's units";
    for line in by_product(&order.lines) {
        let limit = limits.get(&line.product).copied().filter(|l| *l > 0).unwrap_or(i64::MAX);
        if line.quantity > limit {
            return Err(Error::BuyerLimit {
                product: line.product.clone(),
                show: order.show.clone(),
                limit,
                held: 0,
                requested: line.quantity,
            });
        }
        let taken = exec(
            txn,
            "INSERT INTO buyer_units (partner, buyer, show, product, units) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (partner, buyer, show, product) DO UPDATE SET units = buyer_units.units + excluded.units \
             WHERE buyer_units.units + excluded.units <= $6",
            vec![
                order.partner.as_str().into(),
                order.buyer.as_str().into(),
                order.show.as_str().into(),
                line.product.as_str().into(),
                line.quantity.into(),
                limit.into(),
            ],
        )
        .await
        .map_err(Error::db(context))?;
        if taken == 0 {
            let held = buyer_units::Entity::find_by_id((
                order.partner.clone(),
                order.buyer.clone(),
                order.show.clone(),
                line.product.clone(),
            ))
            .one(txn)
            .await
            .map_err(Error::db(context))?
            .map_or(0, |row| row.units);
            return Err(Error::BuyerLimit {
                product: line.product.clone(),
                show: order.show.clone(),
                limit,
                held,
                requested: line.quantity,
            });
        }
    }
    Ok(())
}

/// Gives an order's units back to what its buyer holds of its show's offers.
async fn release_for_buyer(txn: &DatabaseTransaction, id: &str) -> Result<(), Error> {
    let context = "returning a buyer's units";
    let Some(row) = order::Entity::find_by_id(id.to_owned()).one(txn).await.map_err(Error::db(context))? else {
        return Err(Error::OrderNotFound(id.to_owned()));
    };
    if row.show.is_empty() {
        return Ok(());
    }
    let mut lines = order_line::Entity::find()
        .filter(order_line::Column::OrderId.eq(id))
        .all(txn)
        .await
        .map_err(Error::db(context))?;
    lines.sort_by(|a, b| a.product.cmp(&b.product));
    for line in lines {
        give_back(txn, &row.partner, &row.buyer, &row.show, &line.product, line.quantity).await?;
    }
    Ok(())
}

/// Gives `units` of `product` back to what a buyer holds in a show.
async fn give_back(
    txn: &DatabaseTransaction,
    partner: &str,
    buyer: &str,
    show: &str,
    product: &str,
    units: i64,
) -> Result<(), Error> {
    exec(
        txn,
        "UPDATE buyer_units SET units = units - $5 WHERE partner = $1 AND buyer = $2 AND show = $3 AND product = $4",
        vec![partner.into(), buyer.into(), show.into(), product.into(), units.into()],
    )
    .await
    .map_err(Error::db("returning a buyer's units"))?;
    Ok(())
}

/// One transaction for a batch of acceptances: each order moved by its own
/// conditional UPDATE (so each is as correct as alone), its reply recorded
/// only if it moved. A failed batch fails every order in it, and leaves each
/// PENDING for its caller to answer UNAVAILABLE (the retry resumes it).
#[store_op(operation = "accept", db = db, batch = batch.len())]
async fn accept_batch(db: &Db, batch: Vec<Accept>) -> Vec<Result<bool, Status>> {
    let context = "accepting orders";
    let run = async {
        let txn = db.begin().await?;
        let mut moved = Vec::with_capacity(batch.len());
        for accept in &batch {
            let changed = exec(
                &txn,
                "UPDATE orders SET state = $3, update_time = $4, payment_deadline = $5, due_at = $5 \
                 WHERE id = $1 AND state = $2",
                vec![
                    accept.id.as_str().into(),
                    OrderState::Pending.as_db().into(),
                    OrderState::AwaitingPayment.as_db().into(),
                    accept.now.0.into(),
                    accept.payment_deadline.0.into(),
                ],
            )
            .await?
                == 1;
            if changed && let Some((claim, reply)) = &accept.outcome {
                claim.finish(&txn, reply.clone()).await?;
            }
            moved.push(changed);
        }
        txn.commit().await?;
        Ok::<_, sea_orm::DbErr>(moved)
    };
    match run.await {
        Ok(moved) => {
            for _ in moved.iter().filter(|m| **m) {
                crate::metrics::moved(OrderState::AwaitingPayment);
            }
            moved.into_iter().map(Ok).collect()
        }
        Err(e) => {
            let status: Status = Error::db(context)(e).into();
            batch.iter().map(|_| Err(status.clone())).collect()
        }
    }
}
