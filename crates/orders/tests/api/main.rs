//! Orders' gRPC API against a real database.

mod helpers;
mod orders;
