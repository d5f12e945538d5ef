//! sea-orm entities of inventory's tables.

pub mod warehouse;
