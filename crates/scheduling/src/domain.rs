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
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
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

/// `yyyymmdd`: sorts like the date, on every engine (how campaigns store
/// their dates, and the key of ListCampaigns pages).
pub fn date_key(date: NaiveDate) -> i32 {
    use chrono::Datelike as _;
    date.year() * 10_000 + i32::try_from(date.month() * 100 + date.day()).unwrap_or(0)
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

/// Lifecycle of a show.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[repr(i16)]
pub enum ShowState {
    /// Planned; its stock is allocated.
    Scheduled = 1,
    /// On air.
    Live = 2,
    /// Over.
    Ended = 3,
    /// Called off before going live.
    Cancelled = 4,
}

impl ShowState {
    /// From its stored code.
    pub fn from_code(code: i16) -> Option<Self> {
        use ShowState::*;
        [Scheduled, Live, Ended, Cancelled].into_iter().find(|s| *s as i16 == code)
    }
}

/// Where a show's allocation in inventory stands (the saga's state).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[repr(i16)]
pub enum AllocationSync {
    /// Inventory holds what the line-up says.
    Synced = 0,
    /// The line-up's quantities are being allocated (re-driven if we crash).
    Allocating = 1,
    /// The show is over: its allocation is being returned (re-driven).
    Returning = 2,
    /// Returned.
    Returned = 3,
}

impl AllocationSync {
    /// From its stored code.
    pub fn from_code(code: i16) -> Option<Self> {
        use AllocationSync::*;
        [Synced, Allocating, Returning, Returned].into_iter().find(|s| *s as i16 == code)
    }
}

/// An amount of money: ISO 4217 code and integer minor units.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Money {
    /// E.g. "CNY".
    pub currency: String,
    /// E.g. 2990 for 29.90.
    pub minor_units: i64,
}

/// A product on a show's line-up.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Offer {
    /// The product id.
    pub product_id: String,
    /// Price during the show.
    pub price: Money,
    /// Units allocated to the show.
    pub allocated_quantity: i64,
    /// Most units per buyer (0: no limit).
    pub per_buyer_limit: i64,
    /// Position on the line-up.
    pub display_order: i32,
}

/// Most offers on one line-up.
pub const MAX_OFFERS: usize = 100;

use caravan_platform::money::MAX_PRICE_MINOR;
/// Longest show.
pub const MAX_SHOW: std::time::Duration = std::time::Duration::from_secs(24 * 3600);
/// Largest allocated quantity of one offer.
pub const MAX_QUANTITY: i64 = 1_000_000_000;

/// Checks a line-up; problems are `(field under offers[i], message)`.
pub fn check_offers(offers: &[Offer]) -> Vec<(String, String)> {
    let mut problems = Vec::new();
    if offers.len() > MAX_OFFERS {
        problems.push(("offers".to_owned(), format!("at most {MAX_OFFERS} offers")));
    }
    for (i, offer) in offers.iter().enumerate() {
        if offers[..i].iter().any(|o| o.product_id == offer.product_id) {
            problems.push((format!("offers[{i}].product"), "appears in an earlier offer".to_owned()));
        }
        let currency = &offer.price.currency;
        if currency.len() != 3 || !currency.bytes().all(|b| b.is_ascii_uppercase()) {
            problems.push((
                format!("offers[{i}].show_price.currency_code"),
                "must be an ISO 4217 code, e.g. CNY".to_owned(),
            ));
        }
        if !(0..=MAX_PRICE_MINOR).contains(&offer.price.minor_units) {
            problems.push((
                format!("offers[{i}].show_price.minor_units"),
                format!("must be between 0 and {MAX_PRICE_MINOR}"),
            ));
        }
        if !(0..=MAX_QUANTITY).contains(&offer.allocated_quantity) {
            problems.push((format!("offers[{i}].allocated_quantity"), format!("must be between 0 and {MAX_QUANTITY}")));
        }
        if offer.per_buyer_limit < 0 {
            problems.push((format!("offers[{i}].per_buyer_limit"), "must not be negative (0: no limit)".to_owned()));
        }
    }
    problems
}

/// A show's fields as given by an operator, validated.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ShowFields {
    /// The campaign id.
    pub campaign_id: String,
    /// The channel id.
    pub channel_id: String,
    /// The host id.
    pub host_id: String,
    /// Title shown to viewers.
    pub title: Text,
    /// Scheduled start.
    pub start_time: Micros,
    /// Scheduled end (after the start).
    pub end_time: Micros,
    /// The line-up, by display order.
    pub offers: Vec<Offer>,
}

/// A stored show.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Show {
    /// The id in `shows/{id}`.
    pub id: String,
    /// Its fields.
    pub fields: ShowFields,
    /// Lifecycle state.
    pub state: ShowState,
    /// The product being presented.
    pub pinned_product: Option<String>,
    /// When it went live.
    pub live_time: Option<Micros>,
    /// When it ended or was cancelled.
    pub close_time: Option<Micros>,
    /// Where its allocation stands.
    pub allocation: AllocationSync,
    /// Incremented on every change.
    pub version: i64,
    /// When it was created.
    pub create_time: Micros,
    /// When it last changed.
    pub update_time: Micros,
}

#[cfg(test)]
mod tests {
    #[test]
    fn line_ups_are_checked_offer_by_offer() {
        let offer = |product: &str, currency: &str, quantity| Offer {
            product_id: product.into(),
            price: Money { currency: currency.into(), minor_units: 2990 },
            allocated_quantity: quantity,
            per_buyer_limit: 2,
            display_order: 1,
        };
        assert!(check_offers(&[offer("walnuts", "CNY", 100), offer("raisins", "CNY", 0)]).is_empty());
        let problems = check_offers(&[offer("walnuts", "CNY", 100), offer("walnuts", "yuan", -1)]);
        let fields: Vec<_> = problems.iter().map(|(f, _)| f.as_str()).collect();
        assert_eq!(fields, ["offers[1].product", "offers[1].show_price.currency_code", "offers[1].allocated_quantity"]);
        assert_eq!(ShowState::from_code(2), Some(ShowState::Live));
        assert_eq!(AllocationSync::from_code(9), None);
    }

    #[test]
    fn a_show_price_is_capped_as_a_list_price_is() {
        let offer = |minor_units| Offer {
            product_id: "walnuts".into(),
            price: Money { currency: "CNY".into(), minor_units },
            allocated_quantity: 10,
            per_buyer_limit: 2,
            display_order: 1,
        };
        assert!(check_offers(&[offer(MAX_PRICE_MINOR)]).is_empty());
        for price in [MAX_PRICE_MINOR + 1, 1 << 62, i64::MAX, -1, i64::MIN] {
            let problems = check_offers(&[offer(price)]);
            let fields: Vec<_> = problems.iter().map(|(f, _)| f.as_str()).collect();
            assert_eq!(fields, ["offers[0].show_price.minor_units"], "{price}");
        }
    }

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
