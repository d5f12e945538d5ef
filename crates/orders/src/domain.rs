//! Order rules, free of I/O.

use std::collections::BTreeMap;

use caravan_platform::time::Micros;

/// Where an order is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OrderState {
    /// Written; stock not reserved yet.
    Pending,
    /// Stock reserved; waiting for payment.
    AwaitingPayment,
    /// Paid; stock sold.
    Paid,
    /// Refused.
    Rejected,
    /// Cancelled before payment.
    Cancelled,
    /// Not paid in time.
    Expired,
}

impl OrderState {
    /// Every state.
    pub const ALL: [OrderState; 6] = [
        OrderState::Pending,
        OrderState::AwaitingPayment,
        OrderState::Paid,
        OrderState::Rejected,
        OrderState::Cancelled,
        OrderState::Expired,
    ];

    /// The value stored in the database.
    pub fn as_db(self) -> &'static str {
        match self {
            OrderState::Pending => "pending",
            OrderState::AwaitingPayment => "awaiting_payment",
            OrderState::Paid => "paid",
            OrderState::Rejected => "rejected",
            OrderState::Cancelled => "cancelled",
            OrderState::Expired => "expired",
        }
    }

    /// Reads the stored value.
    pub fn from_db(s: &str) -> Option<Self> {
        OrderState::ALL.into_iter().find(|state| state.as_db() == s)
    }

    /// Whether the order's units count against the buyer's limit: while it
    /// may still sell (pending, awaiting payment) or has sold (paid).
    pub fn counts_for_limit(self) -> bool {
        matches!(self, OrderState::Pending | OrderState::AwaitingPayment | OrderState::Paid)
    }
}

/// What the order driver does with an order that came due.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// PENDING past its recovery time: the partner was told the call failed,
    /// so reject the order, then give back any hold it got.
    Recover,
    /// AWAITING_PAYMENT past its payment deadline: give the hold back, then
    /// expire the order.
    Expire,
    /// Rejected, cancelled or expired: make sure inventory holds nothing for
    /// it (a release is idempotent, and of an id never reserved a tombstone).
    Release,
    /// Not yet: look again at this instant.
    Wait(Micros),
    /// Nothing left to do (paid).
    Done,
}

impl Order {
    /// The driver's step for this order at `now`; a PENDING order is
    /// recovered from `recover_at` on.
    pub fn next_step(&self, now: Micros, recover_at: Micros) -> Step {
        match self.state {
            OrderState::Pending if now < recover_at => Step::Wait(recover_at),
            OrderState::Pending => Step::Recover,
            OrderState::AwaitingPayment => match self.payment_deadline {
                Some(deadline) if now < deadline => Step::Wait(deadline),
                _ => Step::Expire,
            },
            OrderState::Rejected | OrderState::Cancelled | OrderState::Expired => Step::Release,
            OrderState::Paid => Step::Done,
        }
    }
}

/// An amount in one currency's minor units.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Money {
    /// ISO 4217 code.
    pub currency: String,
    /// Minor units.
    pub minor: i64,
}

/// One product of an order, with the price snapshot taken when it was placed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderLine {
    /// `products/{id}`.
    pub product: String,
    /// Units.
    pub quantity: i64,
    /// Price per unit.
    pub unit_price: Money,
    /// The product's origin country (ISO 3166-1 alpha-2; empty if unknown).
    pub country: String,
}

impl OrderLine {
    /// unit price × quantity; `None` on overflow.
    pub fn total(&self) -> Option<Money> {
        Some(Money {
            currency: self.unit_price.currency.clone(),
            minor: self.unit_price.minor.checked_mul(self.quantity)?,
        })
    }
}

/// A partner's order for one buyer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Order {
    /// The id in `orders/{id}`.
    pub id: String,
    /// The partner that placed it.
    pub partner: String,
    /// The partner's buyer reference.
    pub buyer: String,
    /// `shows/{id}`, or empty.
    pub show: String,
    /// Its lines, in the order given.
    pub lines: Vec<OrderLine>,
    /// Its state.
    pub state: OrderState,
    /// Why it was rejected, cancelled or expired.
    pub state_reason: String,
    /// Payment must arrive before this.
    pub payment_deadline: Option<Micros>,
    /// The partner's payment reference.
    pub payment_reference: String,
    /// The request id it was placed with, or empty.
    pub request_id: String,
    /// When it was placed.
    pub create_time: Micros,
    /// When it last changed.
    pub update_time: Micros,
}

impl Order {
    /// The sum of the lines per currency, by currency code; `None` on overflow.
    pub fn totals(&self) -> Option<Vec<Money>> {
        let mut sums: BTreeMap<&str, i64> = BTreeMap::new();
        for line in &self.lines {
            let total = line.total()?;
            let sum = sums.entry(line.unit_price.currency.as_str()).or_insert(0);
            *sum = sum.checked_add(total.minor)?;
        }
        Some(sums.into_iter().map(|(currency, minor)| Money { currency: currency.to_owned(), minor }).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(currency: &str, minor: i64, quantity: i64) -> OrderLine {
        OrderLine {
            product: "products/p".into(),
            quantity,
            unit_price: Money { currency: currency.into(), minor },
            country: "UZ".into(),
        }
    }

    fn order(state: OrderState, deadline: Option<i64>) -> Order {
        Order {
            id: "o".into(),
            partner: "hema".into(),
            buyer: "b".into(),
            show: String::new(),
            lines: vec![line("CNY", 1990, 2)],
            state,
            state_reason: String::new(),
            payment_deadline: deadline.map(Micros),
            payment_reference: String::new(),
            request_id: String::new(),
            create_time: Micros(0),
            update_time: Micros(0),
        }
    }

    #[test]
    fn totals_per_currency() {
        let mut order = order(OrderState::Pending, None);
        order.lines = vec![line("CNY", 1990, 2), line("USD", 500, 1), line("CNY", 10, 3)];
        assert_eq!(
            order.totals().unwrap(),
            vec![Money { currency: "CNY".into(), minor: 4010 }, Money { currency: "USD".into(), minor: 500 }]
        );
        let mut huge = order.clone();
        huge.lines = vec![line("CNY", i64::MAX, 2)];
        assert_eq!(huge.totals(), None);
    }

    #[test]
    fn the_driver_recovers_expires_releases_or_waits() {
        let (recover_at, deadline) = (Micros(100), 200);
        let check = |state, deadline, now, expected| {
            assert_eq!(order(state, deadline).next_step(Micros(now), recover_at), expected, "{state:?} at {now}");
        };
        check(OrderState::Pending, None, 99, Step::Wait(recover_at));
        check(OrderState::Pending, None, 100, Step::Recover);
        check(OrderState::AwaitingPayment, Some(deadline), 199, Step::Wait(Micros(deadline)));
        check(OrderState::AwaitingPayment, Some(deadline), 200, Step::Expire);
        check(OrderState::AwaitingPayment, None, 0, Step::Expire);
        for state in [OrderState::Rejected, OrderState::Cancelled, OrderState::Expired] {
            check(state, Some(deadline), 0, Step::Release);
        }
        check(OrderState::Paid, Some(deadline), 1_000, Step::Done);
    }

    #[test]
    fn only_live_and_sold_orders_count_against_a_buyer_limit() {
        let counting: Vec<_> = OrderState::ALL.into_iter().filter(|s| s.counts_for_limit()).collect();
        assert_eq!(counting, [OrderState::Pending, OrderState::AwaitingPayment, OrderState::Paid]);
    }

    #[test]
    fn states_round_trip() {
        for s in OrderState::ALL {
            assert_eq!(OrderState::from_db(s.as_db()), Some(s));
        }
        assert_eq!(OrderState::from_db("shipped"), None);
    }
}
