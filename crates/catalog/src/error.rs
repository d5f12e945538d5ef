//! The catalog's errors and their gRPC mapping.

use caravan_platform::error as rpc;
use tonic::Status;

/// What can go wrong in the catalog.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A country that is not in the reference data.
    #[error("country `{0}` not found")]
    CountryNotFound(String),
    /// A product that does not exist.
    #[error("product `{0}` not found")]
    ProductNotFound(String),
    /// A product id that is taken.
    #[error("product `{0}` already exists")]
    ProductExists(String),
    /// The store failed: the database, or data our code could not have written.
    #[error(transparent)]
    Store(#[from] rpc::StoreError),
}

impl From<Error> for Status {
    fn from(error: Error) -> Status {
        match error {
            Error::CountryNotFound(code) => rpc::not_found("caravan.catalog.v1.Country", &format!("countries/{code}")),
            Error::ProductNotFound(id) => rpc::not_found("caravan.catalog.v1.Product", &format!("products/{id}")),
            Error::ProductExists(id) => rpc::already_exists("caravan.catalog.v1.Product", &format!("products/{id}")),
            Error::Store(e) => e.into(),
        }
    }
}
