//! The catalog's gRPC API against a real database (SQLite, or PostgreSQL when
//! `CARAVAN_TEST_DATABASE_URL` is set), through the real migrations.

#![allow(clippy::unwrap_used)] // Test helpers fail loudly; that is their job.

mod countries;
mod helpers;
mod products;
