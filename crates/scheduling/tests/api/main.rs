//! Scheduling's gRPC API against a real database. Calls that need the catalog
//! to answer live in the workspace's `tests/` crate, which starts all four.

#![allow(clippy::unwrap_used)] // Test helpers fail loudly; that is their job.

mod campaigns;
mod channels;
mod helpers;
mod hosts;
