//! sea-orm entities of orders' tables.

pub mod buyer_units;
pub mod offer_demand;
pub mod order;
pub mod order_line;
