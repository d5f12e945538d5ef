//! What show offers could not sell (`offer_demand`): attempts turned away for
//! lack of stock and when each offer first sold out, added in batches.

use caravan_macros::store_op;
use caravan_platform::error::StoreFailure as _;
use caravan_platform::{db::exec, time::Micros};
use sea_orm::TransactionTrait as _;

use super::Store;
use crate::error::Error;

/// Refusals of one offer not yet written, from one replica's memory.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Demand {
    /// Order attempts turned away for lack of stock.
    pub turned_away: i64,
    /// Units they asked for.
    pub units: i64,
    /// The earliest moment the offer was seen sold out, if it was.
    pub sold_out_at: Option<Micros>,
}

impl Demand {
    /// Adds `other`'s counts; keeps the earlier sell-out.
    pub fn merge(&mut self, other: Demand) {
        self.turned_away = self.turned_away.saturating_add(other.turned_away);
        self.units = self.units.saturating_add(other.units);
        self.sold_out_at = match (self.sold_out_at, other.sold_out_at) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
    }
}

impl Store {
    /// Adds each `(shows/{id}, products/{id})`'s refusals to what is
    /// recorded, keeping the earliest sell-out, in one transaction.
    #[store_op]
    pub async fn add_demand(&self, offers: &[((String, String), Demand)]) -> Result<(), Error> {
        let context = "recording demand";
        let txn = self.db.begin().await.map_err(Error::db(context))?;
        for ((show, product), demand) in offers {
            exec(
                &txn,
                "INSERT INTO offer_demand (show, product, sold_out_time, turned_away, units_turned_away) \
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT (show, product) DO UPDATE SET \
                 turned_away = offer_demand.turned_away + excluded.turned_away, \
                 units_turned_away = offer_demand.units_turned_away + excluded.units_turned_away, \
                 sold_out_time = CASE \
                   WHEN offer_demand.sold_out_time IS NULL THEN excluded.sold_out_time \
                   WHEN excluded.sold_out_time IS NULL THEN offer_demand.sold_out_time \
                   WHEN excluded.sold_out_time < offer_demand.sold_out_time THEN excluded.sold_out_time \
                   ELSE offer_demand.sold_out_time END",
                vec![
                    show.as_str().into(),
                    product.as_str().into(),
                    sea_orm::Value::BigInt(demand.sold_out_at.map(|t| t.0)),
                    demand.turned_away.into(),
                    demand.units.into(),
                ],
            )
            .await
            .map_err(Error::db(context))?;
        }
        txn.commit().await.map_err(Error::db(context))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merging_adds_counts_and_keeps_the_first_sell_out() {
        let mut a = Demand { turned_away: 2, units: 3, sold_out_at: Some(Micros(20)) };
        a.merge(Demand { turned_away: 1, units: 1, sold_out_at: Some(Micros(10)) });
        assert_eq!(a, Demand { turned_away: 3, units: 4, sold_out_at: Some(Micros(10)) });
        a.merge(Demand { turned_away: 0, units: 0, sold_out_at: None });
        assert_eq!(a.sold_out_at, Some(Micros(10)));
        let mut none = Demand::default();
        none.merge(Demand { turned_away: 0, units: 0, sold_out_at: Some(Micros(5)) });
        assert_eq!(none.sold_out_at, Some(Micros(5)));
    }
}
