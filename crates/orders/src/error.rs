//! Orders' errors and their gRPC mapping.

use caravan_platform::error as rpc;
use sea_orm::DbErr;
use tonic::Status;

/// What can go wrong in orders.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An order that does not exist (or that the caller may not see).
    #[error("order `{0}` not found")]
    OrderNotFound(String),
    /// A stored value that our own code could not have written.
    #[error("corrupt data: {0}")]
    Corrupt(String),
    /// The database failed.
    #[error("database error while {context}")]
    Database {
        /// What we were doing.
        context: &'static str,
        /// The cause.
        #[source]
        source: DbErr,
    },
}

impl Error {
    /// Wraps a database error with what we were doing.
    pub fn db(context: &'static str) -> impl FnOnce(DbErr) -> Error {
        move |source| Error::Database { context, source }
    }
}

impl From<Error> for Status {
    fn from(error: Error) -> Status {
        match error {
            Error::OrderNotFound(id) => rpc::not_found("caravan.orders.v1.Order", &format!("orders/{id}")),
            e @ Error::Corrupt(_) => rpc::internal("reading orders", &e),
            Error::Database { context, source } => rpc::database(context, source),
        }
    }
}
