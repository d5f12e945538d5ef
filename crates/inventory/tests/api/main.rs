//! Inventory's gRPC API against a real database.

#![allow(clippy::unwrap_used)] // Test helpers fail loudly; that is their job.

mod allocations;
mod batch;
mod helpers;
mod reservations;
mod stock;
mod warehouses;
mod watch;
