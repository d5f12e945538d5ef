//! Scheduling's gRPC API against a real database. Calls that need the catalog
//! to answer live in the workspace's `tests/` crate, which starts all four.

mod helpers;
mod hosts;
