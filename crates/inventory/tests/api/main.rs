//! Inventory's gRPC API against a real database.

mod helpers;
mod warehouses;
