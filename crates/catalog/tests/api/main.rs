//! The catalog's gRPC API against a real database (SQLite, or PostgreSQL when
//! `CARAVAN_TEST_DATABASE_URL` is set), through the real migrations.

mod countries;
mod helpers;
