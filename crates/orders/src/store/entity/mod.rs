//! sea-orm entities of orders' tables.

pub mod order;
pub mod order_line;
