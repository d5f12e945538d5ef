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
    request.extensions().get::<Principal>().ok_or_else(|| Status::unauthenticated("no authenticated caller"))
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

/// How the server layer checks callers.
#[derive(Debug, Clone)]
pub enum Check {
    /// API keys.
    Keys(keys::KeyStore),
    /// Everyone is [`Principal::insecure`], no authorization (development only).
    Insecure,
}

/// Everything the server layer needs to admit a call.
#[derive(Debug, Clone)]
pub struct ServerAuth {
    /// Who is calling.
    pub check: Check,
    /// How often each may call.
    pub rate: rate::RateLimits,
}

impl ServerAuth {
    /// Authenticates, authorizes and rate-limits a call to `method`. The
    /// answer to a refusal never contains the key.
    pub fn admit(&self, method: &str, headers: &http::HeaderMap) -> Result<Principal, Status> {
        use std::collections::HashMap;

        use tonic_types::{ErrorDetails, StatusExt as _};

        use crate::error::ERROR_DOMAIN;

        let principal = match &self.check {
            Check::Insecure => return Ok(Principal::insecure()),
            Check::Keys(store) => {
                let key = bearer(headers)
                    .ok_or_else(|| Status::unauthenticated("send your API key as `authorization: Bearer <key>`"))?;
                store.authenticate(key).ok_or_else(|| Status::unauthenticated("unknown or revoked API key"))?
            }
        };
        // A method no service of caravan has: the same answer the router
        // would give, after the key is known good (never before: the table
        // is no secret, but a caller without a key learns nothing).
        let Some(allowed) = access::allowed(method) else {
            return Err(Status::unimplemented(format!("caravan has no method `{}`", crate::error::clip(method))));
        };
        if !allowed.contains(&principal.kind) {
            let metadata = HashMap::from([
                ("method".to_owned(), method.to_owned()),
                ("kind".to_owned(), principal.kind.as_str().to_owned()),
            ]);
            return Err(Status::with_error_details(
                tonic::Code::PermissionDenied,
                format!("a {} may not call {method}", principal.kind),
                crate::error::error_info(crate::error::Reason::KindNotAllowed, metadata),
            ));
        }
        if let Err(wait) = self.rate.check(&principal) {
            let mut details = ErrorDetails::with_retry_info(Some(wait));
            details.set_error_info(
                crate::error::Reason::RateLimited.as_str_name(),
                ERROR_DOMAIN,
                HashMap::from([("principal".to_owned(), principal.id.clone())]),
            );
            return Err(Status::with_error_details(
                tonic::Code::ResourceExhausted,
                format!("rate limit of {} exceeded; retry in {} ms", principal.id, wait.as_millis().max(1)),
                details,
            ));
        }
        Ok(principal)
    }

    /// For a stream admitted with `headers`: resolves when its key is
    /// revoked (`None` when keys are not checked).
    pub fn revoked(&self, headers: &http::HeaderMap) -> Option<impl Future<Output = ()> + Send + 'static> {
        match &self.check {
            Check::Keys(store) => bearer(headers).map(|key| store.revoked(key)),
            Check::Insecure => None,
        }
    }
}

tokio::task_local! {
    static CALLER: String;
}

/// Runs `fut` knowing on whose behalf the call it serves was made.
pub fn scope_caller<F: std::future::Future>(caller: String, fut: F) -> impl std::future::Future<Output = F::Output> {
    CALLER.scope(caller, fut)
}

/// The original caller of the call being served (a partner or operator id,
/// carried through service hops), for audit and spans.
pub fn current_caller() -> Option<String> {
    CALLER.try_with(Clone::clone).ok()
}
