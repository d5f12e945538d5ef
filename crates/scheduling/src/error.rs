//! Scheduling's errors and their gRPC mapping.

use caravan_platform::error as rpc;
use sea_orm::DbErr;
use tonic::{Code, Status};

/// What can go wrong in scheduling.
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
    /// A field refers to something that does not exist elsewhere.
    #[error("{field}: {message}")]
    InvalidReference {
        /// The request field.
        field: &'static str,
        /// What is wrong.
        message: String,
    },
    /// A service we call failed.
    #[error("{service} answered {}: {}", .status.code(), .status.message())]
    Upstream {
        /// Which service.
        service: &'static str,
        /// Its answer.
        status: Status,
    },
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
            Error::NotFound { kind, name } => rpc::not_found(kind, &name),
            Error::AlreadyExists { kind, name } => rpc::already_exists(kind, &name),
            Error::InvalidReference { field, message } => rpc::invalid_argument(field, message),
            Error::Upstream { service, status } => {
                // The caller may retry what was transient for us too; anything
                // else from a callee is our bug, not the caller's.
                let code = match status.code() {
                    Code::Unavailable | Code::DeadlineExceeded | Code::ResourceExhausted => status.code(),
                    _ => Code::Internal,
                };
                tracing::warn!(service, code = ?status.code(), message = status.message(), "upstream call failed");
                Status::new(code, format!("call to {service} failed ({:?})", status.code()))
            }
            e @ Error::Corrupt(_) => rpc::internal("reading scheduling data", &e),
            Error::Database { context, source } => rpc::database(context, source),
        }
    }
}
