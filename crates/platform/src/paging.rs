//! AIP-158 pagination: page sizes with a default and a maximum, and opaque
//! page tokens that carry the last key of the previous page.

use tonic::Status;

use crate::error::invalid_argument;

/// The page size to use: `requested` if positive, `default` for 0, capped at `max`.
pub fn page_size(requested: i32, default: u64, max: u64) -> Result<u64, Status> {
    match requested {
        n if n < 0 => Err(invalid_argument("page_size", "must not be negative")),
        0 => Ok(default),
        n => Ok(u64::try_from(n).unwrap_or(max).min(max)),
    }
}

/// How many rows to fetch for a page of `size`: one more than asked tells
/// whether another page exists.
pub fn one_more(size: u64) -> u64 {
    size.saturating_add(1)
}

/// The page of `items` (fetched with [`one_more`]) and the token of the next
/// page: made by `token` from the page's last item when more remained,
/// empty on the last page.
pub fn page<T>(mut items: Vec<T>, size: u64, token: impl FnOnce(&T) -> String) -> (Vec<T>, String) {
    if items.len() as u64 <= size {
        return (items, String::new());
    }
    items.truncate(usize::try_from(size).unwrap_or(usize::MAX));
    let next = items.last().map(token).unwrap_or_default();
    (items, next)
}

const TOKEN_VERSION: &str = "k1:";

/// An opaque token resuming after `last_key`.
pub fn encode_token(last_key: &str) -> String {
    hex::encode(format!("{TOKEN_VERSION}{last_key}"))
}

/// The key a token resumes after; `None` for an empty token (first page).
pub fn decode_token(token: &str) -> Result<Option<String>, Status> {
    if token.is_empty() {
        return Ok(None);
    }
    let bad = || invalid_argument("page_token", "not a token returned by this method");
    let bytes = hex::decode(token).map_err(|_| bad())?;
    let text = String::from_utf8(bytes).map_err(|_| bad())?;
    // Keys are ids and numbers: a control character (a NUL, which
    // PostgreSQL cannot hold in text) means the token was made up.
    text.strip_prefix(TOKEN_VERSION)
        .filter(|key| !key.chars().any(char::is_control))
        .map(|key| Some(key.to_owned()))
        .ok_or_else(bad)
}

/// A token resuming after `last_key` that is valid only with the same
/// `filter` (a canonical text of the request's filters).
pub fn encode_bound_token(filter: &str, last_key: &str) -> String {
    encode_token(&format!("{}|{last_key}", filter_digest(filter)))
}

/// The key a bound token resumes after; a token issued for other filters is
/// `INVALID_ARGUMENT`.
pub fn decode_bound_token(token: &str, filter: &str) -> Result<Option<String>, Status> {
    let Some(inner) = decode_token(token)? else {
        return Ok(None);
    };
    match inner.split_once('|') {
        Some((digest, key)) if digest == filter_digest(filter) => Ok(Some(key.to_owned())),
        Some(_) => Err(invalid_argument("page_token", "was issued for other filters; start again without a token")),
        None => Err(invalid_argument("page_token", "not a token returned by this method")),
    }
}

fn filter_digest(filter: &str) -> String {
    use sha2::{Digest as _, Sha256};
    hex::encode(&Sha256::digest(filter.as_bytes())[..8])
}

#[cfg(test)]
mod tests {
    use tonic::Code;

    use super::*;

    #[test]
    fn a_page_keeps_what_was_asked_and_a_token_only_when_more_remained() {
        let token = |last: &i32| format!("after {last}");
        // Fetched one more than the size: another page follows, resuming after its last.
        assert_eq!(page(vec![1, 2, 3, 4], 3, token), (vec![1, 2, 3], "after 3".to_owned()));
        // Exactly the size or fewer: the last page.
        assert_eq!(page(vec![1, 2, 3], 3, token), (vec![1, 2, 3], String::new()));
        assert_eq!(page(Vec::<i32>::new(), 3, token), (vec![], String::new()));
        assert_eq!(one_more(3), 4);
        assert_eq!(one_more(u64::MAX), u64::MAX);
    }

    #[test]
    fn tokens_round_trip_and_reject_garbage() {
        for key in ["", "UZ", "products/walnuts-500g", "名字"] {
            assert_eq!(decode_token(&encode_token(key)).unwrap(), Some(key.to_owned()));
        }
        assert_eq!(decode_token("").unwrap(), None);
        // Not hex, odd length, another version, no version, a NUL in the key.
        for garbage in ["x", "zz", "abc", "6b323a"[..4].as_ref(), "6869", &hex::encode("k1:\u{0}")] {
            assert_eq!(decode_token(garbage).unwrap_err().code(), Code::InvalidArgument, "{garbage}");
        }
    }

    #[test]
    fn bound_tokens_refuse_other_filters() {
        let token = encode_bound_token("country=UZ", "uz-walnuts");
        assert_eq!(decode_bound_token(&token, "country=UZ").unwrap(), Some("uz-walnuts".to_owned()));
        assert_eq!(decode_bound_token(&token, "country=PK").unwrap_err().code(), Code::InvalidArgument);
        assert_eq!(decode_bound_token("", "anything").unwrap(), None);
        assert_eq!(decode_bound_token(&encode_token("plain"), "x").unwrap_err().code(), Code::InvalidArgument);
    }

    #[test]
    fn page_sizes() {
        assert_eq!(page_size(0, 50, 500).unwrap(), 50);
        assert_eq!(page_size(10, 50, 500).unwrap(), 10);
        assert_eq!(page_size(10_000, 50, 500).unwrap(), 500);
        assert_eq!(page_size(-1, 50, 500).unwrap_err().code(), Code::InvalidArgument);
    }
}
