//! Catalog rules, free of I/O.

pub mod product;

use std::fmt;

use chrono::NaiveDate;

/// An ISO 3166-1 alpha-2 code: two upper-case ASCII letters.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CountryCode(String);

impl CountryCode {
    /// Parses a code; lower case is refused rather than guessed, because
    /// resource names are case-sensitive (AIP-122).
    pub fn parse(s: &str) -> Result<Self, String> {
        if s.len() == 2 && s.bytes().all(|b| b.is_ascii_uppercase()) {
            Ok(CountryCode(s.to_owned()))
        } else {
            Err(format!("`{s}` is not an ISO 3166-1 alpha-2 code (two upper-case letters, e.g. UZ)"))
        }
    }

    /// Parses a resource name `countries/{alpha2}`.
    pub fn from_resource_name(name: &str) -> Result<Self, String> {
        let code = name.strip_prefix("countries/").ok_or_else(|| {
            format!("`{name}` is not a country name (expected countries/{{alpha2}}, e.g. countries/UZ)")
        })?;
        CountryCode::parse(code)
    }

    /// The code.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for CountryCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A country's relation to the Shanghai Cooperation Organisation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ScoStatus {
    /// Full member.
    Member,
    /// Observer state.
    Observer,
    /// Dialogue partner.
    DialoguePartner,
    /// Festival guest without SCO status.
    Guest,
}

impl ScoStatus {
    /// The value stored in the database.
    pub fn as_db(self) -> &'static str {
        match self {
            ScoStatus::Member => "member",
            ScoStatus::Observer => "observer",
            ScoStatus::DialoguePartner => "dialogue_partner",
            ScoStatus::Guest => "guest",
        }
    }

    /// Reads the stored value.
    pub fn from_db(s: &str) -> Option<Self> {
        [ScoStatus::Member, ScoStatus::Observer, ScoStatus::DialoguePartner, ScoStatus::Guest]
            .into_iter()
            .find(|status| status.as_db() == s)
    }
}

/// One status and the year it began.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatusPeriod {
    /// The status.
    pub status: ScoStatus,
    /// The year it began; it lasts until the next period begins.
    pub since_year: i32,
}

/// A country of the festival.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Country {
    /// ISO code.
    pub code: CountryCode,
    /// Name in Simplified Chinese.
    pub name_zh_cn: String,
    /// Name in English.
    pub name_en: String,
    /// Name in Russian.
    pub name_ru: String,
    /// Status history, oldest first.
    pub history: Vec<StatusPeriod>,
}

impl Country {
    /// The status in force on `date`: the latest period that began in or
    /// before its year. `None` before the country had any status.
    pub fn status_on(&self, date: NaiveDate) -> Option<ScoStatus> {
        use chrono::Datelike as _;
        self.history.iter().filter(|p| p.since_year <= date.year()).max_by_key(|p| p.since_year).map(|p| p.status)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn country(history: &[(ScoStatus, i32)]) -> Country {
        Country {
            code: CountryCode::parse("IR").unwrap(),
            name_zh_cn: "伊朗".into(),
            name_en: "Iran".into(),
            name_ru: "Иран".into(),
            history: history.iter().map(|&(status, since_year)| StatusPeriod { status, since_year }).collect(),
        }
    }

    fn day(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    #[test]
    fn status_follows_history() {
        let iran = country(&[(ScoStatus::Observer, 2005), (ScoStatus::Member, 2023)]);
        assert_eq!(iran.status_on(day(2004, 12, 31)), None);
        assert_eq!(iran.status_on(day(2022, 1, 10)), Some(ScoStatus::Observer));
        assert_eq!(iran.status_on(day(2023, 1, 1)), Some(ScoStatus::Member));
        assert_eq!(iran.status_on(day(2026, 11, 29)), Some(ScoStatus::Member));
    }

    #[test]
    fn codes_are_two_upper_case_letters() {
        for ok in ["UZ", "CN"] {
            assert!(CountryCode::parse(ok).is_ok());
        }
        for bad in ["", "uz", "UZB", "U1", "ÜZ"] {
            assert!(CountryCode::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(CountryCode::from_resource_name("countries/PK").unwrap().as_str(), "PK");
        assert!(CountryCode::from_resource_name("country/PK").is_err());
    }

    #[test]
    fn statuses_round_trip_through_the_database_form() {
        for s in [ScoStatus::Member, ScoStatus::Observer, ScoStatus::DialoguePartner, ScoStatus::Guest] {
            assert_eq!(ScoStatus::from_db(s.as_db()), Some(s));
        }
        assert_eq!(ScoStatus::from_db("president"), None);
    }
}
