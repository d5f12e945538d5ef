//! Who is calling, and may they: API keys, the access table, per-principal
//! rate limits. The server layer does all of it once per call, before any
//! handler runs; handlers get the caller as a typed [`Principal`] from the
//! request's extensions ([`principal`]).

pub mod access;
pub mod keys;
pub mod rate;

use std::{fmt, str::FromStr};

use tonic::Status;

/// What kind of caller a principal is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// A partner platform (a shopping app, a livestream app), acting for its buyers.
    Partner,
    /// The organiser's staff and embassy trade offices.
    Operator,
    /// Another caravan service.
    Service,
}

impl Kind {
    /// All kinds.
    pub const ALL: [Kind; 3] = [Kind::Partner, Kind::Operator, Kind::Service];

    /// `partner`, `operator` or `service`.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Partner => "partner",
            Kind::Operator => "operator",
            Kind::Service => "service",
        }
    }
}

impl FromStr for Kind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Kind::ALL
            .into_iter()
            .find(|kind| kind.as_str() == s)
            .ok_or_else(|| format!("`{s}` is not a kind (partner, operator, service)"))
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Principal {
    /// Stable id, for audit logs and rate limits (e.g. `hema-shop`, `svc-orders`).
    pub id: String,
    /// What kind of caller.
    pub kind: Kind,
    /// For partners: the partner whose data this caller may see (e.g. `hema`).
    pub partner: Option<String>,
}

impl Principal {
    /// A partner's principal.
    pub fn partner(id: &str, partner: &str) -> Self {
        Principal { id: id.to_owned(), kind: Kind::Partner, partner: Some(partner.to_owned()) }
    }

    /// An operator's principal.
    pub fn operator(id: &str) -> Self {
        Principal { id: id.to_owned(), kind: Kind::Operator, partner: None }
    }

    /// A service's principal.
    pub fn service(id: &str) -> Self {
        Principal { id: id.to_owned(), kind: Kind::Service, partner: None }
    }

    /// The principal every call has when authentication is switched off
    /// (`--insecure-no-auth`, development only): an operator.
    pub fn insecure() -> Self {
        Principal::operator("insecure-no-auth")
    }
}

/// The caller of a request, as the server layer put it there. Every request
/// that reaches a handler has one.
pub fn principal<T>(request: &tonic::Request<T>) -> Result<&Principal, Status> {
    request
        .extensions()
        .get::<Principal>()
        .ok_or_else(|| Status::unauthenticated("no authenticated caller"))
}

/// The header carrying the key.
pub const AUTHORIZATION: &str = "authorization";
/// The header a service adds to say on whose behalf it calls (for audit logs
/// and spans; never authority).
pub const ON_BEHALF_OF: &str = "x-caravan-on-behalf-of";

/// The key in `authorization: Bearer <key>`, if well-formed.
pub fn bearer(headers: &http::HeaderMap) -> Option<&str> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, key) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| key.trim()).filter(|k| !k.is_empty())
}
