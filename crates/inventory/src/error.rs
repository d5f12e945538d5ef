//! Inventory's errors and their gRPC mapping.

use caravan_platform::error as rpc;
use sea_orm::DbErr;
use tonic::Status;

/// What can go wrong in inventory.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A resource that does not exist.
    #[error("{kind} `{name}` not found")]
    NotFound {
        /// Fully qualified message name of the resource.
        kind: &'static str,
        /// Its resource name.
        name: String,
    },
    /// A resource id that is taken.
    #[error("{kind} `{name}` already exists")]
    AlreadyExists {
        /// Fully qualified message name of the resource.
        kind: &'static str,
        /// Its resource name.
        name: String,
    },
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
            Error::NotFound { kind, name } => rpc::not_found(kind, &name),
            Error::AlreadyExists { kind, name } => rpc::already_exists(kind, &name),
            Error::Database { context, source } => rpc::database(context, source),
        }
    }
}
