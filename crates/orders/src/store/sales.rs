//! A show's sales, computed from its orders: grouped queries over the
//! `orders_by_show` index, in one read-only snapshot so the figures of one
//! report agree with each other while orders keep arriving. No counter row
//! that every order would update: that would be a second hot row.

use caravan_macros::store_op;
use caravan_platform::{
    db::{query, read_snapshot},
    error::StoreFailure as _,
    time::Micros,
};
use sea_orm::{ColumnTrait, DbErr, EntityTrait, FromQueryResult, QueryFilter, QueryOrder, QueryResult, Value};

use super::{Store, entity::offer_demand};
use crate::{domain::OrderState, error::Error};

/// The figures of one group of a show's sales.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Figures {
    /// Paid (else awaiting payment).
    pub paid: bool,
    /// Currency of the prices.
    pub currency: String,
    /// Orders in the group.
    pub orders: i64,
    /// Units.
    pub units: i64,
    /// Units × unit price, in minor units.
    pub revenue: i64,
}

/// A show's sales of one product, by state and currency.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SalesLine {
    /// `products/{id}`.
    pub product: String,
    /// Its origin country (ISO 3166-1 alpha-2).
    pub country: String,
    /// Orders, units, revenue.
    pub figures: Figures,
}

/// A show's sales of one origin country's products, by state and currency.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CountrySales {
    /// ISO 3166-1 alpha-2 (empty for lines recorded without one).
    pub country: String,
    /// Orders, units, revenue.
    pub figures: Figures,
}

/// A show's sales, as the store computes them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sales {
    /// By product, state and currency.
    pub lines: Vec<SalesLine>,
    /// By country, state and currency.
    pub countries: Vec<CountrySales>,
    /// Paid orders.
    pub orders_paid: i64,
    /// Orders awaiting payment.
    pub orders_awaiting_payment: i64,
    /// Per product, what the show could not sell.
    pub unmet: Vec<Unmet>,
}

/// What a show could not sell of one product.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unmet {
    /// `products/{id}`.
    pub product: String,
    /// When it first sold out, if it did.
    pub sold_out_time: Option<Micros>,
    /// Order attempts turned away for lack of it.
    pub turned_away: i64,
    /// Units they asked for.
    pub units: i64,
}

const CONTEXT: &str = "computing a sales report";

/// The figures columns of a grouped row (its key columns are read by name
/// beside them).
#[derive(Debug, FromQueryResult)]
struct FiguresRow {
    state: String,
    currency: String,
    orders: i64,
    units: i64,
    revenue: i64,
}

impl FiguresRow {
    fn read(row: &QueryResult) -> Result<Figures, DbErr> {
        let row = FiguresRow::from_query_result(row, "")?;
        Ok(Figures {
            paid: row.state == OrderState::Paid.as_db(),
            currency: row.currency,
            orders: row.orders,
            units: row.units,
            revenue: row.revenue,
        })
    }
}

impl Store {
    /// A show's sales (`shows/{id}`) from its paid and awaiting-payment
    /// orders — per product and per origin country, by state and currency:
    /// orders, units, revenue — and per product what it could not sell (when
    /// it sold out, the attempts turned away). With `partner`, only that
    /// partner's orders; the sell-out and the demand are facts of the show
    /// and count everyone's.
    #[store_op]
    pub async fn sales(&self, show: &str, partner: Option<&str>) -> Result<Sales, Error> {
        let txn = read_snapshot(&self.db).await.map_err(Error::db(CONTEXT))?;
        // $1 the show, $2 and $3 the states that count, $4 the partner.
        let mut values: Vec<Value> =
            vec![show.into(), OrderState::Paid.as_db().into(), OrderState::AwaitingPayment.as_db().into()];
        let partner_filter = if partner.is_some() { "AND o.partner = $4" } else { "" };
        if let Some(partner) = partner {
            values.push(partner.into());
        }
        let live = "o.show = $1 AND o.state IN ($2, $3)";
        let grouped = |keys: &str, by: &str| {
            format!(
                "SELECT {keys}, o.state AS state, l.currency AS currency, \
                 CAST(COUNT(DISTINCT o.id) AS BIGINT) AS orders, CAST(SUM(l.quantity) AS BIGINT) AS units, \
                 CAST(SUM(l.quantity * l.unit_price_minor) AS BIGINT) AS revenue \
                 FROM orders o JOIN order_lines l ON l.order_id = o.id \
                 WHERE {live} {partner_filter} GROUP BY {by}, o.state, l.currency ORDER BY {by}, o.state"
            )
        };
        let sql = grouped("l.product AS product, l.country AS country", "l.product, l.country");
        let rows = query(&txn, &sql, values.clone()).await.map_err(Error::db(CONTEXT))?;
        let lines = rows
            .iter()
            .map(|row| {
                Ok(SalesLine {
                    product: row.try_get("", "product")?,
                    country: row.try_get("", "country")?,
                    figures: FiguresRow::read(row)?,
                })
            })
            .collect::<Result<_, DbErr>>()
            .map_err(Error::db(CONTEXT))?;
        let sql = grouped("l.country AS country", "l.country");
        let rows = query(&txn, &sql, values.clone()).await.map_err(Error::db(CONTEXT))?;
        let countries = rows
            .iter()
            .map(|row| Ok(CountrySales { country: row.try_get("", "country")?, figures: FiguresRow::read(row)? }))
            .collect::<Result<_, DbErr>>()
            .map_err(Error::db(CONTEXT))?;
        let counts = query(
            &txn,
            &format!(
                "SELECT o.state AS state, CAST(COUNT(*) AS BIGINT) AS orders FROM orders o \
                 WHERE {live} {partner_filter} GROUP BY o.state"
            ),
            values,
        )
        .await
        .map_err(Error::db(CONTEXT))?;
        let (mut orders_paid, mut orders_awaiting_payment) = (0, 0);
        for row in &counts {
            let state: String = row.try_get("", "state").map_err(Error::db(CONTEXT))?;
            let count: i64 = row.try_get("", "orders").map_err(Error::db(CONTEXT))?;
            if state == OrderState::Paid.as_db() {
                orders_paid = count;
            } else {
                orders_awaiting_payment = count;
            }
        }
        let unmet = offer_demand::Entity::find()
            .filter(offer_demand::Column::Show.eq(show))
            .order_by_asc(offer_demand::Column::Product)
            .all(&txn)
            .await
            .map_err(Error::db(CONTEXT))?
            .into_iter()
            .map(|row| Unmet {
                product: row.product,
                sold_out_time: row.sold_out_time.map(Micros),
                turned_away: row.turned_away,
                units: row.units_turned_away,
            })
            .collect();
        txn.commit().await.map_err(Error::db(CONTEXT))?;
        Ok(Sales { lines, countries, orders_paid, orders_awaiting_payment, unmet })
    }
}
