//! `tonic::Status` with rich details (google.rpc error model), built the same
//! way in every service: field violations for bad input, `ResourceInfo` for
//! missing resources, `ErrorInfo` + `PreconditionFailure` for refusals.

use std::{borrow::Cow, collections::HashMap, error::Error as StdError, fmt::Write as _};

pub use caravan_proto::r#type::v1::ErrorReason as Reason;
use sea_orm::DbErr;
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, FieldViolation, StatusExt};

/// The `ErrorInfo.domain` of every caravan error.
pub const ERROR_DOMAIN: &str = "caravan";

/// The most bytes of a caller's input an error reply repeats (in its
/// message and again in its details): enough to recognise the value, never
/// enough to turn a 1 MB bad field into megabytes of trailers.
pub const ECHO_LIMIT: usize = 128;

/// The most field violations one `INVALID_ARGUMENT` lists.
const MAX_VIOLATIONS: usize = 16;

/// The most field violations the message of an `INVALID_ARGUMENT` spells out
/// (the `BadRequest` lists up to [`MAX_VIOLATIONS`]).
const MESSAGE_VIOLATIONS: usize = 4;

/// `text` as an error reply may repeat it: at most [`ECHO_LIMIT`] bytes, cut
/// on a character boundary and marked with `…` and the full length.
pub fn clip(text: &str) -> Cow<'_, str> {
    if text.len() <= ECHO_LIMIT {
        return Cow::Borrowed(text);
    }
    let mut end = ECHO_LIMIT;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    Cow::Owned(format!("{}… ({} bytes)", &text[..end], text.len()))
}

/// `metadata` with every value [clipped](clip).
fn clipped(metadata: HashMap<String, String>) -> HashMap<String, String> {
    metadata.into_iter().map(|(k, v)| (k, clip(&v).into_owned())).collect()
}

/// `ErrorInfo` with caravan's domain and `reason`'s wire name.
pub fn error_info(reason: Reason, metadata: HashMap<String, String>) -> ErrorDetails {
    ErrorDetails::with_error_info(reason.as_str_name(), ERROR_DOMAIN, metadata)
}

/// The reason of a caravan error, if it carries one caravan declares.
pub fn reason_of(status: &Status) -> Option<Reason> {
    let details = status.get_error_details();
    let info = details.error_info()?;
    (info.domain == ERROR_DOMAIN).then(|| Reason::from_str_name(&info.reason)).flatten()
}

/// Collects every problem of a request before answering, so a partner fixes
/// all of them in one round trip.
#[derive(Debug, Default)]
pub struct FieldViolations(Vec<FieldViolation>);

impl FieldViolations {
    /// No violations yet.
    pub fn new() -> Self {
        FieldViolations::default()
    }

    /// Records that `field` (a path like `product.title.en` or `lines[2].quantity`) is invalid.
    /// Both are [clipped](clip): either may repeat the caller's input.
    pub fn add(&mut self, field: impl Into<String>, description: impl Into<String>) {
        if self.0.len() >= MAX_VIOLATIONS {
            return;
        }
        let (field, description) = (field.into(), description.into());
        self.0.push(FieldViolation::new(clip(&field), clip(&description)));
    }

    /// Records a violation unless `ok`.
    pub fn check(&mut self, ok: bool, field: impl Into<String>, description: impl Into<String>) {
        if !ok {
            self.add(field, description);
        }
    }

    /// The value of `checked`, or `None` with its field violations recorded
    /// (for a helper that validates one field and answers `INVALID_ARGUMENT`).
    pub fn take<T>(&mut self, checked: Result<T, Status>) -> Option<T> {
        match checked {
            Ok(value) => Some(value),
            Err(status) => {
                let details = status.get_error_details();
                let violations = details.bad_request().map(|b| b.field_violations.clone()).unwrap_or_default();
                if violations.is_empty() {
                    self.add("request", status.message());
                }
                for v in violations {
                    self.add(v.field, v.description);
                }
                None
            }
        }
    }

    /// Whether nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// `Ok` when nothing was recorded, else `INVALID_ARGUMENT` with every violation.
    pub fn into_result(self) -> Result<(), Status> {
        if self.0.is_empty() {
            return Ok(());
        }
        let mut message = String::from("invalid request: ");
        for (i, v) in self.0.iter().take(MESSAGE_VIOLATIONS).enumerate() {
            if i > 0 {
                message.push_str("; ");
            }
            let _ = write!(message, "{}: {}", v.field, v.description);
        }
        if self.0.len() > MESSAGE_VIOLATIONS {
            let _ = write!(message, "; and {} more (see BadRequest)", self.0.len() - MESSAGE_VIOLATIONS);
        }
        let mut details = ErrorDetails::with_bad_request(self.0);
        details.set_error_info(Reason::InvalidArgument.as_str_name(), ERROR_DOMAIN, HashMap::new());
        Err(Status::with_error_details(Code::InvalidArgument, message, details))
    }
}

/// `INVALID_ARGUMENT` for one field.
pub fn invalid_argument(field: impl Into<String>, description: impl Into<String>) -> Status {
    let mut violations = FieldViolations::new();
    violations.add(field, description);
    match violations.into_result() {
        Err(status) => status,
        Ok(()) => unreachable!("one violation was added"),
    }
}

/// `NOT_FOUND` with `ResourceInfo` naming the resource.
pub fn not_found(resource_type: &str, name: &str) -> Status {
    let name = clip(name);
    Status::with_error_details(
        Code::NotFound,
        format!("{resource_type} `{name}` not found"),
        ErrorDetails::with_resource_info(resource_type, name, "", "does not exist"),
    )
}

/// `ALREADY_EXISTS` with `ResourceInfo` naming the resource.
pub fn already_exists(resource_type: &str, name: &str) -> Status {
    let name = clip(name);
    Status::with_error_details(
        Code::AlreadyExists,
        format!("{resource_type} `{name}` already exists"),
        ErrorDetails::with_resource_info(resource_type, name, "", "already exists"),
    )
}

/// `code` with `ErrorInfo{reason, metadata}` (values [clipped](clip)).
pub fn refusal(code: Code, reason: Reason, message: impl Into<String>, metadata: HashMap<String, String>) -> Status {
    Status::with_error_details(code, message, error_info(reason, clipped(metadata)))
}

/// `FAILED_PRECONDITION` with `ErrorInfo{reason}` and one precondition
/// violation on `subject`.
pub fn failed_precondition(
    reason: Reason,
    subject: &str,
    message: impl Into<String>,
    metadata: HashMap<String, String>,
) -> Status {
    let message = message.into();
    let mut metadata = clipped(metadata);
    // The subject is in the metadata too, under the key every reason uses
    // for its kind of resource (`orders/x` → `order`).
    if let Some(key) = subject.split_once('/').and_then(|(collection, _)| metadata_key(collection)) {
        metadata.entry(key.to_owned()).or_insert_with(|| clip(subject).into_owned());
    }
    let mut details = error_info(reason, metadata);
    details.add_precondition_failure_violation(reason.as_str_name(), clip(subject), message.clone());
    Status::with_error_details(Code::FailedPrecondition, message, details)
}

/// The `ErrorInfo.metadata` key of a resource of `collection`.
fn metadata_key(collection: &str) -> Option<&'static str> {
    Some(match collection {
        "products" => "product",
        "countries" => "country",
        "campaigns" => "campaign",
        "channels" => "channel",
        "hosts" => "host",
        "shows" => "show",
        "warehouses" => "warehouse",
        "allocations" => "allocation",
        "reservations" => "reservation",
        "orders" => "order",
        _ => return None,
    })
}

/// `ABORTED` with `ErrorInfo{reason: "ETAG_MISMATCH"}`: the client read a stale
/// version; it should read again and retry.
pub fn etag_mismatch(resource_type: &str, name: &str) -> Status {
    let name = clip(name);
    let metadata = HashMap::from([("resource".to_owned(), name.clone().into_owned())]);
    Status::with_error_details(
        Code::Aborted,
        format!("{resource_type} `{name}` changed since it was read (etag mismatch); read it again"),
        error_info(Reason::EtagMismatch, metadata),
    )
}

/// A failure of ours: the whole cause chain goes to the log (with the trace
/// ids of the current span), the client gets a short message, never SQL.
pub fn internal(context: &str, error: &(dyn StdError + 'static)) -> Status {
    tracing::error!(error = %chain(error), "{context}");
    Status::internal(format!("internal error: {context}"))
}

/// A resource a request names that does not exist, or an id that is taken:
/// every service's `NOT_FOUND` and `ALREADY_EXISTS`, with the resource's
/// message type and name. Service errors wrap it (`#[from]`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Resource {
    /// A resource that does not exist.
    #[error("{kind} `{name}` not found")]
    NotFound {
        /// Fully qualified message name of the resource.
        kind: &'static str,
        /// Its resource name, e.g. `shows/{id}`.
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
}

impl Resource {
    /// `kind` named `name` does not exist.
    pub fn not_found(kind: &'static str, name: String) -> Self {
        Resource::NotFound { kind, name }
    }

    /// `kind` named `name` exists already.
    pub fn already_exists(kind: &'static str, name: String) -> Self {
        Resource::AlreadyExists { kind, name }
    }
}

impl From<Resource> for Status {
    fn from(error: Resource) -> Status {
        match error {
            Resource::NotFound { kind, name } => not_found(kind, &name),
            Resource::AlreadyExists { kind, name } => already_exists(kind, &name),
        }
    }
}

/// The store's failures as a service's own error: `Error::db(context)`
/// wraps a database error (and marks the store operation it failed in as
/// failed, [`crate::db::failed`]); `Error::corrupt` a stored value caravan's
/// code could not have written. Every error that wraps a [`StoreError`] has
/// both.
pub trait StoreFailure: From<StoreError> + Sized {
    /// Wraps a database error with what the store was doing.
    fn db(context: &'static str) -> impl FnOnce(DbErr) -> Self {
        move |source| Self::from(StoreError::db(context)(source))
    }

    /// A stored value caravan's code could not have written.
    fn corrupt(what: String) -> Self {
        Self::from(StoreError::Corrupt(what))
    }
}

impl<E: From<StoreError>> StoreFailure for E {}

/// What a store fails with that is never the caller's doing: the database
/// failed, or a stored value is one caravan's code could not have written.
/// Every service's error type wraps it (`#[from]`), so both map to a status
/// in one place.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A stored value that our own code could not have written.
    #[error("corrupt data: {0}")]
    Corrupt(String),
    /// The database failed.
    #[error("database error while {context}")]
    Database {
        /// What the store was doing.
        context: &'static str,
        /// The cause.
        #[source]
        source: DbErr,
    },
}

impl StoreError {
    /// Wraps a database error with what the store was doing, and marks the
    /// store operation it failed in as failed ([`crate::db::failed`]).
    pub fn db(context: &'static str) -> impl FnOnce(DbErr) -> StoreError {
        move |source| {
            crate::db::failed(&source);
            StoreError::Database { context, source }
        }
    }
}

impl From<StoreError> for Status {
    /// Corrupt data is a bug (`INTERNAL`); a database failure is
    /// `UNAVAILABLE` when it may pass ([`database`]).
    fn from(error: StoreError) -> Status {
        match error {
            e @ StoreError::Corrupt(_) => internal("reading stored data", &e),
            StoreError::Database { context, source } => database(context, source),
        }
    }
}

/// Maps a database error: one that may pass ([`crate::db::is_transient`]:
/// a lost connection, a shutdown, a timeout, a deadlock) is `UNAVAILABLE`,
/// which callers retry with the same request id; anything else is a bug,
/// `INTERNAL`.
pub fn database(context: &str, error: DbErr) -> Status {
    if crate::db::is_transient(&error) {
        tracing::warn!(error = %chain(&error), "{context}: database unavailable");
        return Status::unavailable(format!("database unavailable: {context}; retry with the same request_id"));
    }
    internal(context, &error)
}

/// `error: cause: cause`, the whole `source()` chain on one line.
pub fn chain(error: &(dyn StdError + 'static)) -> String {
    let mut out = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let _ = write!(out, ": {cause}");
        source = cause.source();
    }
    out
}

/// `RESOURCE_EXHAUSTED` answered by load shedding: the server is at its
/// concurrency limit. `RetryInfo` tells a client how soon to try again.
pub fn resource_exhausted_overload(limit: usize) -> Status {
    let mut details = ErrorDetails::with_retry_info(Some(std::time::Duration::from_millis(100)));
    details.set_error_info(
        Reason::Overloaded.as_str_name(),
        ERROR_DOMAIN,
        HashMap::from([("max_concurrency".to_owned(), limit.to_string())]),
    );
    Status::with_error_details(
        Code::ResourceExhausted,
        format!("server busy ({limit} calls in flight); retry shortly"),
        details,
    )
}

/// The fields named by the `BadRequest` of an error, in order.
pub fn violated_fields(status: &tonic::Status) -> Vec<String> {
    use tonic_types::StatusExt as _;
    status
        .get_error_details()
        .bad_request()
        .map(|b| b.field_violations.iter().map(|v| v.field.clone()).collect())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wrapped_database_error_marks_the_store_operation_it_failed_in() {
        /// A service's error, as every service declares it.
        #[derive(Debug, thiserror::Error)]
        enum ServiceError {
            #[error(transparent)]
            Store(#[from] StoreError),
        }
        caravan_testkit::assert_wrapping_marks_db_failure(|e| drop(ServiceError::db("testing")(e)));
        let corrupt = Status::from(match ServiceError::corrupt("state 9".into()) {
            ServiceError::Store(e) => e,
        });
        assert_eq!(corrupt.code(), Code::Internal);
    }

    #[test]
    fn a_missing_or_taken_resource_names_its_type_and_name() {
        let missing = Status::from(Resource::not_found("caravan.scheduling.v1.Show", "shows/x".into()));
        assert_eq!(missing.code(), Code::NotFound);
        let info = missing.get_error_details().resource_info().cloned().unwrap();
        assert_eq!(
            (info.resource_type.as_str(), info.resource_name.as_str()),
            ("caravan.scheduling.v1.Show", "shows/x")
        );
        let taken = Status::from(Resource::already_exists("caravan.scheduling.v1.Show", "shows/x".into()));
        assert_eq!(taken.code(), Code::AlreadyExists);
    }

    #[test]
    fn violations_carry_every_field() {
        let mut v = FieldViolations::new();
        v.check(true, "ok", "never recorded");
        v.add("product.title.en", "required");
        v.add("lines[1].quantity", "must be at least 1");
        let status = v.into_result().unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument);
        let details = status.get_error_details();
        let fields: Vec<_> = details.bad_request().unwrap().field_violations.iter().map(|f| f.field.as_str()).collect();
        assert_eq!(fields, ["product.title.en", "lines[1].quantity"]);
        assert_eq!(details.error_info().unwrap().domain, ERROR_DOMAIN);
        assert!(status.message().contains("lines[1].quantity: must be at least 1"));
    }

    #[test]
    fn empty_violations_are_ok() {
        assert!(FieldViolations::new().into_result().is_ok());
    }

    #[test]
    fn not_found_names_the_resource() {
        let status = not_found("caravan.catalog.v1.Product", "products/walnuts");
        assert_eq!(status.code(), Code::NotFound);
        let info = status.get_error_details().resource_info().cloned().unwrap();
        assert_eq!(info.resource_name, "products/walnuts");
    }

    #[test]
    fn failed_precondition_has_reason() {
        let status = failed_precondition(Reason::InsufficientStock, "products/raisins", "only 2 left", HashMap::new());
        assert_eq!(status.code(), Code::FailedPrecondition);
        let details = status.get_error_details();
        assert_eq!(details.error_info().unwrap().reason, "INSUFFICIENT_STOCK");
        assert_eq!(details.precondition_failure().unwrap().violations[0].subject, "products/raisins");
    }

    #[test]
    fn internal_hides_the_cause_from_the_client() {
        let err = std::io::Error::other("SELECT * FROM secret_table failed");
        let status = internal("loading product", &err);
        assert_eq!(status.code(), Code::Internal);
        assert!(!status.message().contains("secret_table"));
    }
}
