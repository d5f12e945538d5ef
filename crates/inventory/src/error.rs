//! Inventory's errors and their gRPC mapping.

use std::collections::HashMap;

use caravan_platform::error::{self as rpc, Reason};
use tonic::{Code, Status};
use tonic_types::StatusExt as _;

use crate::domain::ReservationState;

/// What can go wrong in inventory.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A resource that does not exist, or an id that is taken.
    #[error(transparent)]
    Resource(#[from] rpc::Resource),
    /// Not enough stock for a line: nothing was changed.
    #[error("not enough stock of `products/{product}`: {requested} requested, {available} available")]
    InsufficientStock {
        /// The product id.
        product: String,
        /// Units asked for.
        requested: i64,
        /// Units that could have been had.
        available: i64,
        /// `shows/{show}` when drawing from a show's allocation.
        pool: Option<String>,
    },
    /// A reservation id used before with other lines.
    #[error("reservation `reservations/{id}` already exists with other lines")]
    ReservationReused {
        /// The reservation id.
        id: String,
    },
    /// A reservation that cannot take this step any more.
    #[error("reservation `reservations/{id}` is {state}")]
    ReservationClosed {
        /// The reservation id.
        id: String,
        /// Where it is.
        state: &'static str,
        /// The ErrorInfo reason.
        reason: Reason,
    },
    /// A show's allocation that was returned.
    #[error("the allocation of `shows/{show}` is closed")]
    AllocationClosed {
        /// The show id.
        show: String,
    },
    /// An allocation lowered below what is already reserved or sold.
    #[error("the allocation of `products/{product}` to `shows/{show}` cannot go below {used} (reserved or sold)")]
    AllocationInUse {
        /// The show id.
        show: String,
        /// The product id.
        product: String,
        /// Units reserved or sold from it.
        used: i64,
    },
    /// A bookkeeping rule broke: a bug, never the caller's fault.
    #[error("inventory invariant broken: {0}")]
    Invariant(String),
    /// The store failed: the database, or data our code could not have written.
    #[error(transparent)]
    Store(#[from] rpc::StoreError),
}

impl Error {
    /// The refusal for a reservation that cannot take a step in `state`.
    pub fn closed_reservation(id: &str, state: ReservationState) -> Error {
        let (state, reason) = match state {
            ReservationState::Active => ("active", Reason::ReservationActive),
            ReservationState::Committed => ("committed", Reason::ReservationCommitted),
            ReservationState::Released => ("released", Reason::ReservationReleased),
            ReservationState::Expired => ("expired", Reason::ReservationExpired),
        };
        Error::ReservationClosed { id: id.to_owned(), state, reason }
    }
}

impl From<Error> for Status {
    fn from(error: Error) -> Status {
        let message = error.to_string();
        match error {
            Error::Resource(e) => e.into(),
            Error::InsufficientStock { product, requested, available, pool } => {
                let mut metadata = HashMap::from([
                    ("product".to_owned(), format!("products/{product}")),
                    ("requested".to_owned(), requested.to_string()),
                    ("available".to_owned(), available.to_string()),
                ]);
                if let Some(pool) = pool {
                    metadata.insert("show".to_owned(), pool);
                }
                rpc::failed_precondition(Reason::InsufficientStock, &format!("products/{product}"), message, metadata)
            }
            Error::ReservationReused { id } => {
                let name = format!("reservations/{id}");
                let mut details = rpc::error_info(
                    Reason::ReservationIdReused,
                    HashMap::from([("reservation".to_owned(), name.clone())]),
                );
                details.set_resource_info("caravan.inventory.v1.Reservation", name, "", "exists with other lines");
                Status::with_error_details(Code::AlreadyExists, message, details)
            }
            Error::ReservationClosed { id, state, reason } => rpc::failed_precondition(
                reason,
                &format!("reservations/{id}"),
                message,
                HashMap::from([
                    ("reservation".to_owned(), format!("reservations/{id}")),
                    ("state".to_owned(), state.to_owned()),
                ]),
            ),
            Error::AllocationClosed { show } => rpc::failed_precondition(
                Reason::AllocationClosed,
                &format!("allocations/{show}"),
                message,
                HashMap::from([
                    ("allocation".to_owned(), format!("allocations/{show}")),
                    ("show".to_owned(), format!("shows/{show}")),
                ]),
            ),
            Error::AllocationInUse { show, product, used } => rpc::failed_precondition(
                Reason::AllocationInUse,
                &format!("allocations/{show}"),
                message,
                HashMap::from([
                    ("show".to_owned(), format!("shows/{show}")),
                    ("product".to_owned(), format!("products/{product}")),
                    ("used".to_owned(), used.to_string()),
                ]),
            ),
            Error::Invariant(_) => rpc::internal("keeping the stock books", &error_source(message)),
            Error::Store(e) => e.into(),
        }
    }
}

fn error_source(message: String) -> std::io::Error {
    std::io::Error::other(message)
}
