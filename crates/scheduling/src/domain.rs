//! Scheduling rules, free of I/O.

use std::{fmt, str::FromStr as _};

use caravan_platform::time::Micros;
use chrono::{Days, NaiveDate, TimeZone as _};
use chrono_tz::Tz;

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

/// Text in the festival's languages; at least Chinese or English is given.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Text {
    /// Simplified Chinese.
    pub zh_cn: String,
    /// English.
    pub en: String,
    /// Russian.
    pub ru: String,
    /// In the original language.
    pub origin: String,
    /// BCP 47 tag of `origin`, e.g. "uz".
    pub origin_language: String,
}

impl Text {
    /// Checks every language; problems are `(sub-field, message)`.
    pub fn check(&self) -> Vec<(&'static str, String)> {
        let mut problems = Vec::new();
        if self.zh_cn.trim().is_empty() && self.en.trim().is_empty() {
            problems.push(("en", "give at least zh_cn or en".to_owned()));
        }
        for (field, value) in [("zh_cn", &self.zh_cn), ("en", &self.en), ("ru", &self.ru), ("origin", &self.origin)] {
            if let Err(e) = check_text(value, false) {
                problems.push((field, e));
            }
        }
        let tag = &self.origin_language;
        let well_formed = tag.len() <= 35
            && tag.split('-').all(|p| (1..=8).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_alphanumeric()));
        if !tag.is_empty() && !well_formed {
            problems.push(("origin_language", format!("`{tag}` is not a BCP 47 language tag (e.g. uz, ru, zh-Hans)")));
        }
        if self.origin_language.is_empty() != self.origin.is_empty() {
            problems.push(("origin_language", "origin and origin_language go together".to_owned()));
        }
        problems
    }
}

/// A campaign's fields as given by an operator, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CampaignFields {
    /// E.g. "2022 National Nianhuo Festival".
    pub title: Text,
    /// E.g. "MOFCOM".
    pub organiser: String,
    /// First day, in `time_zone`.
    pub start_date: NaiveDate,
    /// Last day, inclusive, in `time_zone`.
    pub end_date: NaiveDate,
    /// IANA name, e.g. "Asia/Shanghai".
    pub time_zone: Tz,
}

/// Longest campaign, in days.
pub const MAX_CAMPAIGN_DAYS: u64 = 366;

impl CampaignFields {
    /// Checks the dates and the zone; problems are `(field, message)`.
    pub fn check_dates(start: NaiveDate, end: NaiveDate) -> Option<String> {
        if end < start {
            Some("must not be before start_date (the end date is inclusive)".to_owned())
        } else if (end - start).num_days() >= i64::try_from(MAX_CAMPAIGN_DAYS).unwrap_or(i64::MAX) {
            Some(format!("a campaign lasts at most {MAX_CAMPAIGN_DAYS} days"))
        } else {
            None
        }
    }

    /// The campaign's window in UTC: from midnight of its first day to
    /// midnight after its last day, in its time zone. A show must lie inside.
    pub fn window(&self) -> (Micros, Micros) {
        let midnight = |date: NaiveDate| {
            let local = date.and_hms_opt(0, 0, 0).unwrap_or_default();
            // A zone that skips midnight (DST at 00:00) starts the day at the
            // first instant that exists.
            let instant = self
                .time_zone
                .from_local_datetime(&local)
                .earliest()
                .or_else(|| self.time_zone.from_local_datetime(&(local + chrono::Duration::hours(1))).earliest());
            instant.map_or(Micros(0), |t| Micros::from_datetime(t.with_timezone(&chrono::Utc)))
        };
        let after_end = self.end_date.checked_add_days(Days::new(1)).unwrap_or(self.end_date);
        (midnight(self.start_date), midnight(after_end))
    }
}

/// Parses an IANA time zone name.
pub fn parse_time_zone(name: &str) -> Result<Tz, String> {
    Tz::from_str(name).map_err(|_| format!("`{name}` is not an IANA time zone (e.g. Asia/Shanghai)"))
}

/// A stored campaign.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Campaign {
    /// The id in `campaigns/{id}`.
    pub id: String,
    /// Its fields.
    pub fields: CampaignFields,
    /// Incremented on every change; the etag is derived from it.
    pub version: i64,
    /// When it was created.
    pub create_time: Micros,
    /// When it last changed.
    pub update_time: Micros,
}

/// Checks a platform or partner id: 2 to 32 lower-case letters, digits or
/// hyphens, starting with a letter (e.g. `hema`, `douyin`).
pub fn check_slug(value: &str) -> Result<(), String> {
    let ok = (2..=32).contains(&value.len())
        && value.as_bytes()[0].is_ascii_lowercase()
        && value.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(format!("`{value}` must be 2 to 32 characters of a-z, 0-9 and '-', starting with a letter"))
    }
}

/// A channel's fields as given by an operator, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelFields {
    /// The platform, e.g. `hema`.
    pub platform: String,
    /// The room's name on the platform.
    pub display_name: String,
    /// The partner that owns the room.
    pub partner: String,
}

/// A stored channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Channel {
    /// The id in `channels/{id}`.
    pub id: String,
    /// Its fields.
    pub fields: ChannelFields,
    /// Incremented on every change; the etag is derived from it.
    pub version: i64,
    /// When it was created.
    pub create_time: Micros,
    /// When it last changed.
    pub update_time: Micros,
}

/// The etag of a resource at `version`.
pub fn etag(version: i64) -> String {
    format!("v{version}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nianhuo() -> CampaignFields {
        CampaignFields {
            title: Text { en: "2022 National Nianhuo Festival".into(), ..Text::default() },
            organiser: "MOFCOM".into(),
            start_date: NaiveDate::from_ymd_opt(2022, 1, 10).unwrap(),
            end_date: NaiveDate::from_ymd_opt(2022, 2, 7).unwrap(),
            time_zone: parse_time_zone("Asia/Shanghai").unwrap(),
        }
    }

    #[test]
    fn a_campaign_window_runs_from_its_first_midnight_to_the_midnight_after_its_last_day() {
        let (start, end) = nianhuo().window();
        // 2022-01-10T00:00+08:00 and 2022-02-08T00:00+08:00.
        assert_eq!(start.to_datetime().to_rfc3339(), "2022-01-09T16:00:00+00:00");
        assert_eq!(end.to_datetime().to_rfc3339(), "2022-02-07T16:00:00+00:00");
    }

    #[test]
    fn campaign_rules() {
        let day = |d| NaiveDate::from_ymd_opt(2022, 1, d).unwrap();
        assert!(CampaignFields::check_dates(day(10), day(10)).is_none(), "one day is a campaign");
        assert!(CampaignFields::check_dates(day(10), day(9)).is_some());
        assert!(parse_time_zone("Asia/Tashkent").is_ok());
        assert!(parse_time_zone("Mars/Olympus").is_err());
        assert!(Text::default().check().iter().any(|(f, _)| *f == "en"));
        let origin = Text { en: "x".into(), origin: "Navro'z".into(), ..Text::default() };
        assert_eq!(origin.check().iter().map(|(f, _)| *f).collect::<Vec<_>>(), ["origin_language"]);
        assert!(check_slug("hema").is_ok() && check_slug("Hema").is_err() && check_slug("h").is_err());
    }

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
