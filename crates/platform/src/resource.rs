//! AIP-122 resource names and ids, the same rules in every service.

/// Whether `id` is a valid user-chosen resource id: 3 to 63 characters of
/// lower-case letters, digits and hyphens, starting with a letter and not
/// ending with a hyphen (RFC 1034 style, as AIP-122 recommends).
pub fn valid_id(id: &str) -> bool {
    let bytes = id.as_bytes();
    (3..=63).contains(&bytes.len())
        && bytes[0].is_ascii_lowercase()
        && bytes[bytes.len() - 1] != b'-'
        && bytes.iter().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
}

/// Explains [`valid_id`] in an error message.
pub const ID_RULE: &str = "must be 3 to 63 characters of a-z, 0-9 and '-', start with a letter and not end with '-'";

/// A generated id: time-ordered (UUIDv7), in the same alphabet as chosen ids.
pub fn new_id(prefix: char) -> String {
    format!("{prefix}{}", uuid::Uuid::now_v7().simple())
}

/// The id in `{collection}/{id}`, checked with [`valid_id`].
pub fn parse_name<'a>(name: &'a str, collection: &str) -> Result<&'a str, String> {
    match name.strip_prefix(collection).and_then(|rest| rest.strip_prefix('/')) {
        Some(id) if valid_id(id) => Ok(id),
        Some(_) => Err(format!("`{name}`: the id {ID_RULE}")),
        None => Err(format!("`{name}` is not a {collection} name (expected {collection}/{{id}})")),
    }
}

/// The paths of an update's `update_mask` (every `mutable` field when the
/// mask is absent or empty, AIP-134), each checked: an `output_only` field
/// or one `kind` does not have is a field violation naming its index.
pub fn mask_paths(
    mask: Option<Vec<String>>,
    mutable: &[&str],
    output_only: &[&str],
    kind: &str,
) -> Result<Vec<String>, tonic::Status> {
    let paths: Vec<String> = match mask {
        Some(paths) if !paths.is_empty() => paths,
        _ => mutable.iter().map(|p| (*p).to_owned()).collect(),
    };
    let mut violations = crate::error::FieldViolations::new();
    for (i, path) in paths.iter().enumerate() {
        if output_only.contains(&path.as_str()) {
            violations.add(format!("update_mask.paths[{i}]"), format!("`{path}` is output only"));
        } else if !mutable.contains(&path.as_str()) {
            violations.add(format!("update_mask.paths[{i}]"), format!("`{path}` is not a field of {kind}"));
        }
    }
    violations.into_result()?;
    Ok(paths)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids() {
        for ok in ["abc", "uz-walnuts-500g", "a1-b2"] {
            assert!(valid_id(ok), "{ok}");
        }
        for bad in ["", "ab", "Abc", "1abc", "abc-", "a_bc", "ab c", &"a".repeat(64)] {
            assert!(!valid_id(bad), "{bad}");
        }
        assert!(valid_id(&new_id('h')));
    }

    #[test]
    fn names() {
        assert_eq!(parse_name("hosts/olimkhonov", "hosts"), Ok("olimkhonov"));
        assert!(parse_name("hostsx/olimkhonov", "hosts").is_err());
        assert!(parse_name("hosts/", "hosts").is_err());
        assert!(parse_name("shows/abc", "hosts").is_err());
    }
}
