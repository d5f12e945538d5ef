//! Scheduling rules, free of I/O.

use std::fmt;

use caravan_platform::time::Micros;

/// A country reference, `countries/{alpha2}`, as the catalog names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CountryName(String);

impl CountryName {
    /// Parses `countries/{alpha2}`; whether it exists is the catalog's to say.
    pub fn parse(s: &str) -> Result<Self, String> {
        match s.strip_prefix("countries/") {
            Some(code) if code.len() == 2 && code.bytes().all(|b| b.is_ascii_uppercase()) => {
                Ok(CountryName(s.to_owned()))
            }
            _ => Err(format!("`{s}` is not a country name (expected countries/{{alpha2}}, e.g. countries/UZ)")),
        }
    }
}

impl fmt::Display for CountryName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Longest free-text field (names, titles, embassies).
pub const MAX_TEXT: usize = 200;

/// Checks a free-text field: trimmed length within bounds, no control characters.
pub fn check_text(value: &str, required: bool) -> Result<(), String> {
    let chars = value.chars().count();
    if required && value.trim().is_empty() {
        Err("is required".to_owned())
    } else if chars > MAX_TEXT {
        Err(format!("must be at most {MAX_TEXT} characters (got {chars})"))
    } else if value.chars().any(char::is_control) {
        Err("must not contain control characters".to_owned())
    } else {
        Ok(())
    }
}

/// A host's fields as given by an operator, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostFields {
    /// Name shown to viewers.
    pub display_name: String,
    /// E.g. "Economic Counselor".
    pub title: String,
    /// The country represented.
    pub country: CountryName,
    /// Embassy or office.
    pub embassy: String,
}

/// A stored host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Host {
    /// The id in `hosts/{id}`.
    pub id: String,
    /// Its fields.
    pub fields: HostFields,
    /// Incremented on every change; the etag is derived from it.
    pub version: i64,
    /// When it was created.
    pub create_time: Micros,
    /// When it last changed.
    pub update_time: Micros,
}

impl Host {
    /// The etag clients send back to detect concurrent edits.
    pub fn etag(&self) -> String {
        format!("v{}", self.version)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn country_names() {
        assert!(CountryName::parse("countries/UZ").is_ok());
        for bad in ["UZ", "countries/uz", "countries/UZB", "country/UZ", ""] {
            assert!(CountryName::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn text_rules() {
        assert!(check_text("Economic Counselor", true).is_ok());
        assert!(check_text("", false).is_ok());
        assert!(check_text("  ", true).is_err());
        assert!(check_text(&"x".repeat(MAX_TEXT + 1), false).is_err());
        assert!(check_text("a\u{0}b", false).is_err());
    }
}
