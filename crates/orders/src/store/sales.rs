//! A show's sales, computed from its orders: grouped queries over the
//! `orders_by_show` index, in one read-only snapshot so the figures of one
//! report agree with each other while orders keep arriving. No counter row
//! that every order would update: that would be a second hot row.

use caravan_macros::store_op;
use caravan_platform::{
    db::{query, read_snapshot},
    time::Micros,
};
use sea_orm::{DbErr, QueryResult, Value};

use super::Store;
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

/// A grouped row's figures, after its `keys` key columns.
fn figures(row: &QueryResult, keys: usize) -> Result<Figures, DbErr> {
    Ok(Figures {
        paid: row.try_get_by_index::<String>(keys)? == OrderState::Paid.as_db(),
        currency: row.try_get_by_index(keys + 1)?,
        orders: row.try_get_by_index(keys + 2)?,
        units: row.try_get_by_index(keys + 3)?,
        revenue: row.try_get_by_index(keys + 4)?,
    })
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
        let partner_filter = if partner.is_some() { "AND o.partner = $2" } else { "" };
        let mut values: Vec<Value> = vec![show.into()];
        if let Some(partner) = partner {
            values.push(partner.into());
        }
        let live = "o.show = $1 AND o.state IN ('paid', 'awaiting_payment')";
        let grouped = |key: &str| {
            format!(
                "SELECT {key}, o.state, l.currency, CAST(COUNT(DISTINCT o.id) AS BIGINT), \
                 CAST(SUM(l.quantity) AS BIGINT), CAST(SUM(l.quantity * l.unit_price_minor) AS BIGINT) \
                 FROM orders o JOIN order_lines l ON l.order_id = o.id \
                 WHERE {live} {partner_filter} GROUP BY {key}, o.state, l.currency ORDER BY {key}, o.state"
            )
        };
        let rows = query(&txn, &grouped("l.product, l.country"), values.clone()).await.map_err(Error::db(CONTEXT))?;
        let lines = rows
            .iter()
            .map(|row| {
                Ok(SalesLine {
                    product: row.try_get_by_index(0)?,
                    country: row.try_get_by_index(1)?,
                    figures: figures(row, 2)?,
                })
            })
            .collect::<Result<_, DbErr>>()
            .map_err(Error::db(CONTEXT))?;
        let rows = query(&txn, &grouped("l.country"), values.clone()).await.map_err(Error::db(CONTEXT))?;
        let countries = rows
            .iter()
            .map(|row| Ok(CountrySales { country: row.try_get_by_index(0)?, figures: figures(row, 1)? }))
            .collect::<Result<_, DbErr>>()
            .map_err(Error::db(CONTEXT))?;
        let counts = query(
            &txn,
            &format!(
                "SELECT o.state, CAST(COUNT(*) AS BIGINT) FROM orders o WHERE {live} {partner_filter} GROUP BY o.state"
            ),
            values,
        )
        .await
        .map_err(Error::db(CONTEXT))?;
        let (mut orders_paid, mut orders_awaiting_payment) = (0, 0);
        for row in &counts {
            let state: String = row.try_get_by_index(0).map_err(Error::db(CONTEXT))?;
            let count: i64 = row.try_get_by_index(1).map_err(Error::db(CONTEXT))?;
            if state == OrderState::Paid.as_db() {
                orders_paid = count;
            } else {
                orders_awaiting_payment = count;
            }
        }
        let unmet = query(
            &txn,
            "SELECT product, sold_out_time, turned_away, units_turned_away FROM offer_demand WHERE show = $1 \
             ORDER BY product",
            vec![show.into()],
        )
        .await
        .map_err(Error::db(CONTEXT))?
        .iter()
        .map(|r| {
            Ok(Unmet {
                product: r.try_get_by_index(0)?,
                sold_out_time: r.try_get_by_index::<Option<i64>>(1)?.map(Micros),
                turned_away: r.try_get_by_index(2)?,
                units: r.try_get_by_index(3)?,
            })
        })
        .collect::<Result<_, DbErr>>()
        .map_err(Error::db(CONTEXT))?;
        txn.commit().await.map_err(Error::db(CONTEXT))?;
        Ok(Sales { lines, countries, orders_paid, orders_awaiting_payment, unmet })
    }
}
