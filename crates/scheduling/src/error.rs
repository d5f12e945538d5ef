//! Scheduling's errors and their gRPC mapping.

use caravan_platform::error as rpc;
use tonic::{Code, Status};

/// What can go wrong in scheduling.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A resource that does not exist, or an id that is taken.
    #[error(transparent)]
    Resource(#[from] rpc::Resource),
    /// A field refers to something that does not exist elsewhere.
    #[error("{field}: {message}")]
    InvalidReference {
        /// The request field.
        field: &'static str,
        /// What is wrong.
        message: String,
    },
    /// An offer of a line-up that catalog does not allow.
    #[error("offers[{index}]: {message}")]
    InvalidOffer {
        /// Which offer.
        index: usize,
        /// What is wrong.
        message: String,
    },
    /// A show's slot overlaps another booked show.
    #[error("the {what} is booked by `shows/{other}` at that time")]
    Conflict {
        /// `channel` or `host`.
        what: &'static str,
        /// The show in the way.
        other: String,
    },
    /// A show's slot is not within its campaign's days.
    #[error("the show does not lie within the days of `campaigns/{campaign}`")]
    OutsideCampaign {
        /// The campaign id.
        campaign: String,
    },
    /// A show that cannot take this step in its state.
    #[error("`shows/{show}` is {state}: {action}")]
    ShowState {
        /// The show id.
        show: String,
        /// Its state.
        state: &'static str,
        /// What was refused.
        action: &'static str,
        /// The ErrorInfo reason.
        reason: rpc::Reason,
    },
    /// A callee refused the request for a reason the caller must see (e.g.
    /// inventory's `INSUFFICIENT_STOCK`, catalog's inactive product).
    #[error("{service} refused: {}", .status.message())]
    Refused {
        /// Which service.
        service: &'static str,
        /// Its answer, details included.
        status: Status,
    },
    /// A service we call failed.
    #[error("{service} answered {}: {}", .status.code(), .status.message())]
    Upstream {
        /// Which service.
        service: &'static str,
        /// Its answer.
        status: Status,
    },
    /// The store failed: the database, or data our code could not have written.
    #[error(transparent)]
    Store(#[from] rpc::StoreError),
}

impl From<Error> for Status {
    fn from(error: Error) -> Status {
        let message = error.to_string();
        match error {
            Error::Resource(e) => e.into(),
            Error::InvalidReference { field, message } => rpc::invalid_argument(field, message),
            Error::InvalidOffer { index, message: problem } => {
                rpc::invalid_argument(format!("show.offers[{index}].product"), problem)
            }
            Error::Conflict { what, other } => {
                let metadata = std::collections::HashMap::from([
                    ("show".to_owned(), format!("shows/{other}")),
                    ("booked".to_owned(), what.to_owned()),
                ]);
                rpc::failed_precondition(rpc::Reason::ShowConflict, &format!("shows/{other}"), message, metadata)
            }
            Error::OutsideCampaign { campaign } => rpc::failed_precondition(
                rpc::Reason::OutsideCampaign,
                &format!("campaigns/{campaign}"),
                message,
                std::collections::HashMap::new(),
            ),
            Error::ShowState { show, state, reason, action: _ } => {
                let metadata = std::collections::HashMap::from([("state".to_owned(), state.to_owned())]);
                rpc::failed_precondition(reason, &format!("shows/{show}"), message, metadata)
            }
            Error::Refused { status, .. } => status,
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
            Error::Store(e) => e.into(),
        }
    }
}
