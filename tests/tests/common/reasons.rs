//! The error reasons as `proto/caravan/type/v1/errors.proto` declares them:
//! each value's status code and metadata keys, read from its comment (the
//! one place they are written down).

#![allow(dead_code)] // Each test binary uses what it needs.

use std::collections::{BTreeMap, BTreeSet};

/// What a reason is answered with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Declared {
    /// The status code's name (`FAILED_PRECONDITION`).
    pub code: String,
    /// The `ErrorInfo.metadata` keys.
    pub metadata: BTreeSet<String>,
}

/// Every reason but the unspecified one, by name.
pub fn declared() -> BTreeMap<String, Declared> {
    let proto =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../proto/caravan/type/v1/errors.proto")).unwrap();
    let mut reasons = BTreeMap::new();
    let mut comment = String::new();
    let mut in_enum = false;
    for line in proto.lines().map(str::trim) {
        if line.starts_with("enum ErrorReason") {
            in_enum = true;
            continue;
        }
        if !in_enum {
            continue;
        }
        if let Some(text) = line.strip_prefix("//") {
            comment.push(' ');
            comment.push_str(text.trim());
            continue;
        }
        if let Some((name, _)) = line.split_once(" = ")
            && name.chars().all(|c| c.is_ascii_uppercase() || c == '_')
            && name != "ERROR_REASON_UNSPECIFIED"
        {
            let text = comment.trim();
            let code = text.split_once(':').map(|(code, _)| code.to_owned()).unwrap_or_default();
            let metadata = text.split_once("Metadata:").map(|(_, keys)| backticked(keys)).unwrap_or_default();
            reasons.insert(name.to_owned(), Declared { code, metadata });
        }
        comment.clear();
    }
    reasons
}

/// The words in backticks in `text`.
pub fn backticked(text: &str) -> BTreeSet<String> {
    text.split('`').skip(1).step_by(2).map(str::to_owned).collect()
}
