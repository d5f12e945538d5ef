//! Orders' errors and their gRPC mapping.

use std::collections::HashMap;

use caravan_platform::error as rpc;
use tonic::Status;

/// What can go wrong in orders.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An order that does not exist (or that the caller may not see).
    #[error("order `{0}` not found")]
    OrderNotFound(String),
    /// The order would take a buyer past an offer's per-buyer limit.
    #[error("{}", buyer_limit_message(product, *limit, *held, *requested))]
    BuyerLimit {
        /// `products/{id}`.
        product: String,
        /// `shows/{id}`.
        show: String,
        /// The offer's limit.
        limit: i64,
        /// What the buyer's other orders hold.
        held: i64,
        /// Units this order asks for.
        requested: i64,
    },
    /// The show has fewer units of the product left than the line asks for:
    /// known from this replica's memory of the show's stock, so refused
    /// without asking inventory (the same answer inventory would give).
    #[error("not enough stock of `{product}`: {requested} requested, {available} available")]
    SoldOut {
        /// `products/{id}`.
        product: String,
        /// `shows/{id}`.
        show: String,
        /// Units asked for.
        requested: i64,
        /// Units the show has left.
        available: i64,
    },
    /// The store failed: the database, or data our code could not have written.
    #[error(transparent)]
    Store(#[from] rpc::StoreError),
}

/// What a buyer past an offer's limit is told: what the order asks for, and
/// what the buyer's other orders already hold only when they hold some.
fn buyer_limit_message(product: &str, limit: i64, held: i64, requested: i64) -> String {
    let head = format!("at most {limit} units of {product} per buyer in this show");
    if held == 0 {
        format!("{head}; this order asks for {requested}")
    } else {
        format!("{head}; the buyer's orders already hold {held} and this order asks for {requested} more")
    }
}

impl From<Error> for Status {
    fn from(error: Error) -> Status {
        let message = error.to_string();
        match error {
            Error::OrderNotFound(id) => rpc::not_found("caravan.orders.v1.Order", &format!("orders/{id}")),
            Error::BuyerLimit { product, show, limit, held, requested } => {
                let metadata = HashMap::from([
                    ("product".to_owned(), product.clone()),
                    ("show".to_owned(), show),
                    ("limit".to_owned(), limit.to_string()),
                    ("held".to_owned(), held.to_string()),
                    ("requested".to_owned(), requested.to_string()),
                ]);
                rpc::failed_precondition(rpc::Reason::PerBuyerLimit, &product, message, metadata)
            }
            Error::SoldOut { product, show, requested, available } => {
                let metadata = HashMap::from([
                    ("product".to_owned(), product.clone()),
                    ("show".to_owned(), show),
                    ("requested".to_owned(), requested.to_string()),
                    ("available".to_owned(), available.to_string()),
                ]);
                rpc::failed_precondition(rpc::Reason::InsufficientStock, &product, message, metadata)
            }
            Error::Store(e) => e.into(),
        }
    }
}
