//! sea-orm entities of inventory's tables. Plain reads go through them;
//! changes of stock and allocation levels are the conditional statements of
//! `store::sql` (the rule lives in the statement).

pub mod allocation;
pub mod allocation_line;
pub mod movement;
pub mod reservation;
pub mod reservation_line;
pub mod stock;
pub mod warehouse;
