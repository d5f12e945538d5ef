//! Orders' storage: sea-orm entities and queries. The only module that sees
//! sea-orm.

mod entity;

use std::collections::HashMap;

use caravan_platform::time::Micros;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, Condition, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
    TransactionTrait,
};

use crate::{
    domain::{Money, Order, OrderLine, OrderState},
    error::Error,
};
use entity::{order, order_line};

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
}

/// One group of a show's sales.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SalesLine {
    /// `products/{id}`.
    pub product: String,
    /// Paid (else awaiting payment).
    pub paid: bool,
    /// Currency of the prices.
    pub currency: String,
    /// Orders holding the product.
    pub orders: i64,
    /// Units.
    pub units: i64,
    /// Units × unit price, in minor units.
    pub revenue: i64,
}

/// A show's sales, as the store computes them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sales {
    /// By product, state and currency.
    pub lines: Vec<SalesLine>,
    /// Paid or awaiting-payment orders.
    pub order_count: i64,
    /// Per product (`products/{id}`), the first refusal for lack of stock.
    pub sold_out: Vec<(String, Micros)>,
}

/// What a state change also records (empty / `None`: unchanged).
#[derive(Debug, Default, Clone, Copy)]
pub struct StateChange<'a> {
    /// Why (rejections, cancellations, expiries).
    pub reason: &'a str,
    /// When payment is due.
    pub payment_deadline: Option<Micros>,
    /// The partner's payment reference.
    pub payment_reference: &'a str,
}

/// Queries against orders' own database.
#[derive(Debug, Clone)]
pub struct Store {
    db: DatabaseConnection,
}

impl Store {
    /// A store on `db`.
    pub fn new(db: DatabaseConnection) -> Self {
        Store { db }
    }

    /// Writes a new order and its lines in one transaction.
    pub async fn insert_order(&self, order: &Order, traceparent: &str) -> Result<(), Error> {
        let txn = self.db.begin().await.map_err(Error::db("starting a transaction"))?;
        order::Entity::insert(order::ActiveModel {
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
        })
        .exec(&txn)
        .await
        .map_err(Error::db("inserting an order"))?;
        let lines = order.lines.iter().enumerate().map(|(i, line)| order_line::ActiveModel {
            order_id: Set(order.id.clone()),
            line_no: Set(i32::try_from(i).unwrap_or(i32::MAX)),
            product: Set(line.product.clone()),
            quantity: Set(line.quantity),
            currency: Set(line.unit_price.currency.clone()),
            unit_price_minor: Set(line.unit_price.minor),
        });
        order_line::Entity::insert_many(lines).exec(&txn).await.map_err(Error::db("inserting order lines"))?;
        txn.commit().await.map_err(Error::db("committing an order"))
    }

    /// Moves an order from `from` to `to` if it is still in `from` (one
    /// conditional UPDATE: of two racing callers, one moves it); sets the
    /// reason, the payment deadline or the payment reference when given. The
    /// order is due for the expiry job at its new payment deadline, if any.
    pub async fn move_state(
        &self,
        id: &str,
        from: OrderState,
        to: OrderState,
        change: StateChange<'_>,
        now: Micros,
    ) -> Result<bool, Error> {
        let StateChange { reason, payment_deadline, payment_reference } = change;
        let changed = caravan_platform::db::exec(
            &self.db,
            "UPDATE orders SET state = $3, update_time = $4, \
             state_reason = CASE WHEN $5 = '' THEN state_reason ELSE $5 END, \
             payment_deadline = CASE WHEN $6 = 0 THEN payment_deadline ELSE $6 END, \
             due_at = CASE WHEN $6 = 0 THEN NULL ELSE $6 END, \
             payment_reference = CASE WHEN $7 = '' THEN payment_reference ELSE $7 END \
             WHERE id = $1 AND state = $2",
            vec![
                id.into(),
                from.as_db().into(),
                to.as_db().into(),
                now.0.into(),
                reason.into(),
                payment_deadline.map_or(0, |t| t.0).into(),
                payment_reference.into(),
            ],
        )
        .await
        .map_err(Error::db("changing an order's state"))?;
        Ok(changed == 1)
    }

    /// Records which product an order was refused for lack of stock of.
    pub async fn record_rejected_product(&self, id: &str, product: &str) -> Result<(), Error> {
        caravan_platform::db::exec(
            &self.db,
            "UPDATE orders SET rejected_product = $2 WHERE id = $1",
            vec![id.into(), product.into()],
        )
        .await
        .map_err(Error::db("recording a refusal"))?;
        Ok(())
    }

    /// A show's sales, from its orders (the `orders_by_show` index; no
    /// counter row that every order would update): per product and state
    /// (`paid` or `awaiting_payment`) and currency — orders, units, revenue —
    /// and per product the first refusal for lack of stock. With `partner`,
    /// only that partner's orders.
    pub async fn sales(&self, show: &str, partner: Option<&str>) -> Result<Sales, Error> {
        let context = "computing a sales report";
        let partner_filter = if partner.is_some() { "AND o.partner = $2" } else { "" };
        let mut values: Vec<sea_orm::Value> = vec![show.into()];
        if let Some(partner) = partner {
            values.push(partner.into());
        }
        let rows = caravan_platform::db::query(
            &self.db,
            &format!(
                "SELECT l.product, o.state, l.currency, CAST(COUNT(DISTINCT o.id) AS BIGINT), \
                 CAST(SUM(l.quantity) AS BIGINT), CAST(SUM(l.quantity * l.unit_price_minor) AS BIGINT) \
                 FROM orders o JOIN order_lines l ON l.order_id = o.id \
                 WHERE o.show = $1 AND o.state IN ('paid', 'awaiting_payment') {partner_filter} \
                 GROUP BY l.product, o.state, l.currency ORDER BY l.product"
            ),
            values.clone(),
        )
        .await
        .map_err(Error::db(context))?;
        let mut lines = Vec::with_capacity(rows.len());
        for row in &rows {
            let read = || -> Result<SalesLine, sea_orm::DbErr> {
                Ok(SalesLine {
                    product: row.try_get_by_index(0)?,
                    paid: row.try_get_by_index::<String>(1)? == OrderState::Paid.as_db(),
                    currency: row.try_get_by_index(2)?,
                    orders: row.try_get_by_index(3)?,
                    units: row.try_get_by_index(4)?,
                    revenue: row.try_get_by_index(5)?,
                })
            };
            lines.push(read().map_err(Error::db(context))?);
        }
        let count = caravan_platform::db::query(
            &self.db,
            &format!(
                "SELECT CAST(COUNT(*) AS BIGINT) FROM orders o WHERE o.show = $1 \
                 AND o.state IN ('paid', 'awaiting_payment') {partner_filter}"
            ),
            values.clone(),
        )
        .await
        .map_err(Error::db(context))?;
        let order_count = match count.first() {
            Some(row) => row.try_get_by_index(0).map_err(Error::db(context))?,
            None => 0,
        };
        // Sold out is a fact of the show, not of one partner's orders.
        let sold_out = caravan_platform::db::query(
            &self.db,
            "SELECT rejected_product, CAST(MIN(update_time) AS BIGINT) FROM orders WHERE show = $1 \
             AND state = 'rejected' AND rejected_product <> '' GROUP BY rejected_product",
            vec![show.into()],
        )
        .await
        .map_err(Error::db(context))?
        .iter()
        .map(|r| Ok((r.try_get_by_index(0)?, Micros(r.try_get_by_index(1)?))))
        .collect::<Result<_, sea_orm::DbErr>>()
        .map_err(Error::db(context))?;
        Ok(Sales { lines, order_count, sold_out })
    }

    /// Records a payment that came too late, for the partner's refund.
    pub async fn record_late_payment(&self, id: &str, reference: &str, now: Micros) -> Result<(), Error> {
        caravan_platform::db::exec(
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
    } = row;
    let state = OrderState::from_db(&state).ok_or_else(|| Error::Corrupt(format!("orders.state `{state}` of {id}")))?;
    let lines = lines
        .into_iter()
        .map(|l| OrderLine {
            product: l.product,
            quantity: l.quantity,
            unit_price: Money { currency: l.currency, minor: l.unit_price_minor },
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
        create_time: Micros(create_time),
        update_time: Micros(update_time),
    })
}
