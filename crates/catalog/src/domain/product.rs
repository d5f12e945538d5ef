//! Products: what a valid one is, and how its state may change.

use std::fmt;

use caravan_platform::{resource, time::Micros};

use super::CountryCode;

/// A closed set of categories.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Category {
    /// Rice, nuts, dried fruit, seafood.
    Food,
    /// Tea, juice, wine.
    Beverage,
    /// Biscuits, sweets, chocolate.
    Confectionery,
    /// Woodcraft, pottery.
    Handicraft,
    /// Salt lamps, carpets.
    HomeDecor,
    /// Silk, scarves.
    Textile,
    /// Jewellery.
    Jewelry,
    /// Cosmetics and personal care.
    Cosmetics,
    /// Honey, herbal goods.
    Health,
}

impl Category {
    /// Every category.
    pub const ALL: [Category; 9] = [
        Category::Food,
        Category::Beverage,
        Category::Confectionery,
        Category::Handicraft,
        Category::HomeDecor,
        Category::Textile,
        Category::Jewelry,
        Category::Cosmetics,
        Category::Health,
    ];

    /// The stored value.
    pub fn as_db(self) -> &'static str {
        match self {
            Category::Food => "food",
            Category::Beverage => "beverage",
            Category::Confectionery => "confectionery",
            Category::Handicraft => "handicraft",
            Category::HomeDecor => "home_decor",
            Category::Textile => "textile",
            Category::Jewelry => "jewelry",
            Category::Cosmetics => "cosmetics",
            Category::Health => "health",
        }
    }

    /// Reads the stored value.
    pub fn from_db(s: &str) -> Option<Self> {
        Category::ALL.into_iter().find(|c| c.as_db() == s)
    }
}

/// Where a product is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProductState {
    /// Being prepared.
    Draft,
    /// On sale.
    Active,
    /// Withdrawn.
    Retired,
}

impl ProductState {
    /// The stored value.
    pub fn as_db(self) -> &'static str {
        match self {
            ProductState::Draft => "draft",
            ProductState::Active => "active",
            ProductState::Retired => "retired",
        }
    }

    /// Reads the stored value.
    pub fn from_db(s: &str) -> Option<Self> {
        [ProductState::Draft, ProductState::Active, ProductState::Retired].into_iter().find(|st| st.as_db() == s)
    }

    /// Whether `ActivateProduct` may move a product in this state.
    pub fn can_activate(self) -> bool {
        matches!(self, ProductState::Draft | ProductState::Active)
    }
}

impl fmt::Display for ProductState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_db())
    }
}

/// Text in the festival's languages.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Localized {
    /// Simplified Chinese.
    pub zh_cn: String,
    /// English.
    pub en: String,
    /// Russian.
    pub ru: String,
    /// The origin language's text.
    pub origin: String,
    /// BCP 47 tag of `origin`.
    pub origin_language: String,
}

/// Money: ISO 4217 code and minor units.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Price {
    /// Currency code.
    pub currency: String,
    /// Minor units, never negative for a price.
    pub minor: i64,
}

/// The fields of a product an operator sets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProductFields {
    /// Origin country.
    pub country: CountryCode,
    /// Category.
    pub category: Category,
    /// Title.
    pub title: Localized,
    /// Description.
    pub description: Localized,
    /// List price.
    pub list_price: Price,
    /// Unit and size.
    pub unit: String,
    /// Image URLs.
    pub image_urls: Vec<String>,
    /// Tags.
    pub tags: Vec<String>,
}

/// A stored product.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Product {
    /// The id in `products/{id}`.
    pub id: String,
    /// Its fields.
    pub fields: ProductFields,
    /// Its state.
    pub state: ProductState,
    /// Incremented on every change.
    pub version: i64,
    /// Created.
    pub create_time: Micros,
    /// Last changed.
    pub update_time: Micros,
}

impl Product {
    /// The etag clients send back to detect concurrent edits.
    pub fn etag(&self) -> String {
        format!("\"v{}\"", self.version)
    }
}

/// Limits of product fields.
pub mod limits {
    /// Longest title, in characters.
    pub const TITLE: usize = 200;
    /// Longest description, in characters.
    pub const DESCRIPTION: usize = 5000;
    /// Longest unit text.
    pub const UNIT: usize = 100;
    /// Most images.
    pub const IMAGES: usize = 10;
    /// Longest image URL.
    pub const URL: usize = 2048;
    /// Most tags.
    pub const TAGS: usize = 20;
    /// Longest tag.
    pub const TAG: usize = 40;
    /// Highest price in minor units (100 million in a currency's major unit).
    pub const PRICE_MINOR: i64 = caravan_platform::money::MAX_PRICE_MINOR;
    /// Most names in one BatchGetProducts.
    pub const BATCH_GET: usize = 1000;
    /// Most products in one ImportProducts.
    pub const IMPORT: usize = 2000;
}

/// ISO 4217 codes of currencies in use.
pub const CURRENCIES: &[&str] = &[
    "AED", "AFN", "ALL", "AMD", "ANG", "AOA", "ARS", "AUD", "AWG", "AZN", "BAM", "BBD", "BDT", "BGN", "BHD", "BIF",
    "BMD", "BND", "BOB", "BRL", "BSD", "BTN", "BWP", "BYN", "BZD", "CAD", "CDF", "CHF", "CLP", "CNY", "COP", "CRC",
    "CUP", "CVE", "CZK", "DJF", "DKK", "DOP", "DZD", "EGP", "ERN", "ETB", "EUR", "FJD", "FKP", "GBP", "GEL", "GHS",
    "GIP", "GMD", "GNF", "GTQ", "GYD", "HKD", "HNL", "HTG", "HUF", "IDR", "ILS", "INR", "IQD", "IRR", "ISK", "JMD",
    "JOD", "JPY", "KES", "KGS", "KHR", "KMF", "KPW", "KRW", "KWD", "KYD", "KZT", "LAK", "LBP", "LKR", "LRD", "LSL",
    "LYD", "MAD", "MDL", "MGA", "MKD", "MMK", "MNT", "MOP", "MRU", "MUR", "MVR", "MWK", "MXN", "MYR", "MZN", "NAD",
    "NGN", "NIO", "NOK", "NPR", "NZD", "OMR", "PAB", "PEN", "PGK", "PHP", "PKR", "PLN", "PYG", "QAR", "RON", "RSD",
    "RUB", "RWF", "SAR", "SBD", "SCR", "SDG", "SEK", "SGD", "SHP", "SLE", "SOS", "SRD", "SSP", "STN", "SYP", "SZL",
    "THB", "TJS", "TMT", "TND", "TOP", "TRY", "TTD", "TWD", "TZS", "UAH", "UGX", "USD", "UYU", "UZS", "VES", "VND",
    "VUV", "WST", "XAF", "XCD", "XOF", "XPF", "YER", "ZAR", "ZMW", "ZWG",
];

/// Checks every field, collecting all problems as `(field path, problem)`.
#[allow(clippy::too_many_arguments)]
pub fn validate(
    prefix: &str,
    country: Option<Result<CountryCode, String>>,
    category: Option<Category>,
    title: &Localized,
    description: &Localized,
    price: Option<&Price>,
    unit: &str,
    image_urls: &[String],
    tags: &[String],
) -> Vec<(String, String)> {
    let mut problems = Vec::new();
    let mut add = |field: &str, problem: String| problems.push((format!("{prefix}{field}"), problem));
    match country {
        None => add("country", "is required (countries/{alpha2})".into()),
        Some(Err(e)) => add("country", e),
        Some(Ok(_)) => {}
    }
    if category.is_none() {
        add("category", "is required (one of the Category values)".into());
    }
    for (name, text, max) in [("title", title, limits::TITLE), ("description", description, limits::DESCRIPTION)] {
        for (locale, value, required) in [
            ("zh_cn", &text.zh_cn, true),
            ("en", &text.en, true),
            ("ru", &text.ru, false),
            ("origin", &text.origin, false),
        ] {
            if required && value.trim().is_empty() {
                add(&format!("{name}.{locale}"), "is required".into());
            } else if value.chars().count() > max {
                add(&format!("{name}.{locale}"), format!("must be at most {max} characters"));
            } else if value.chars().any(|c| c.is_control() && c != '\n') {
                add(&format!("{name}.{locale}"), "must not contain control characters".into());
            }
        }
        if !text.origin.is_empty() && !is_language_tag(&text.origin_language) {
            add(&format!("{name}.origin_language"), "is required with origin: a BCP 47 tag such as uz or ur".into());
        } else if text.origin.is_empty() && !text.origin_language.is_empty() {
            add(&format!("{name}.origin_language"), "is only for an origin text".into());
        }
    }
    match price {
        None => add("list_price", "is required".into()),
        Some(price) => {
            if !CURRENCIES.contains(&price.currency.as_str()) {
                add("list_price.currency_code", format!("`{}` is not an ISO 4217 currency code", price.currency));
            }
            if !(0..=limits::PRICE_MINOR).contains(&price.minor) {
                add("list_price.minor_units", format!("must be between 0 and {}", limits::PRICE_MINOR));
            }
        }
    }
    if unit.trim().is_empty() {
        add("unit", "is required, e.g. \"500 g bag\"".into());
    } else if unit.chars().count() > limits::UNIT {
        add("unit", format!("must be at most {} characters", limits::UNIT));
    }
    if image_urls.len() > limits::IMAGES {
        add("image_urls", format!("at most {} images", limits::IMAGES));
    }
    for (i, url) in image_urls.iter().enumerate() {
        let ok = url.len() <= limits::URL
            && url::Url::parse(url).is_ok_and(|u| u.scheme() == "https" && u.host_str().is_some_and(|h| !h.is_empty()));
        if !ok {
            add(&format!("image_urls[{i}]"), "must be an https:// URL of at most 2048 characters".into());
        }
    }
    if tags.len() > limits::TAGS {
        add("tags", format!("at most {} tags", limits::TAGS));
    }
    for (i, tag) in tags.iter().enumerate() {
        let ok = !tag.is_empty()
            && tag.chars().count() <= limits::TAG
            && tag.chars().all(|c| !c.is_uppercase() && !c.is_control() && !c.is_whitespace());
        if !ok {
            add(&format!("tags[{i}]"), format!("must be 1 to {} lower-case characters without spaces", limits::TAG));
        }
    }
    problems
}

fn is_language_tag(tag: &str) -> bool {
    let mut parts = tag.split('-');
    parts.next().is_some_and(|p| (2..=3).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_lowercase()))
        && parts.all(|p| (2..=8).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_alphanumeric()))
}

/// Whether `id` may name a product.
pub fn valid_id(id: &str) -> bool {
    resource::valid_id(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(zh: &str, en: &str) -> Localized {
        Localized { zh_cn: zh.into(), en: en.into(), ..Localized::default() }
    }

    fn fields_problems(title: Localized, price: Option<Price>, urls: &[&str], tags: &[&str]) -> Vec<String> {
        let urls: Vec<String> = urls.iter().map(|u| (*u).to_owned()).collect();
        let tags: Vec<String> = tags.iter().map(|u| (*u).to_owned()).collect();
        validate(
            "product.",
            Some(CountryCode::parse("UZ")),
            Some(Category::Food),
            &title,
            &text("核桃", "Walnuts"),
            price.as_ref(),
            "500 g",
            &urls,
            &tags,
        )
        .into_iter()
        .map(|(f, _)| f)
        .collect()
    }

    #[test]
    fn a_valid_product_has_no_problems() {
        let price = Price { currency: "CNY".into(), minor: 3990 };
        assert!(
            fields_problems(
                text("乌兹别克斯坦核桃", "Uzbek walnuts"),
                Some(price),
                &["https://img.example/w.jpg"],
                &["nuts"]
            )
            .is_empty()
        );
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let check = |title: Localized, price: Option<Price>, urls: &[&str], tags: &[&str], expected: &[&str]| {
            assert_eq!(fields_problems(title, price, urls, tags), expected);
        };
        let ok_price = || Some(Price { currency: "CNY".into(), minor: 100 });
        check(text("", ""), ok_price(), &[], &[], &["product.title.zh_cn", "product.title.en"]);
        check(text("核桃", "Walnuts"), None, &[], &[], &["product.list_price"]);
        check(
            text("核桃", "Walnuts"),
            Some(Price { currency: "XYZ".into(), minor: -1 }),
            &[],
            &[],
            &["product.list_price.currency_code", "product.list_price.minor_units"],
        );
        check(
            text("核桃", "Walnuts"),
            ok_price(),
            &["http://x.cn/a.jpg", "nope"],
            &["Nuts", "ok"],
            &["product.image_urls[0]", "product.image_urls[1]", "product.tags[0]"],
        );
        let mut origin = text("核桃", "Walnuts");
        origin.origin = "Yong'oq".into();
        check(origin.clone(), ok_price(), &[], &[], &["product.title.origin_language"]);
        origin.origin_language = "uz".into();
        check(origin, ok_price(), &[], &[], &[]);
    }

    #[test]
    fn states_and_categories_round_trip() {
        for c in Category::ALL {
            assert_eq!(Category::from_db(c.as_db()), Some(c));
        }
        for s in [ProductState::Draft, ProductState::Active, ProductState::Retired] {
            assert_eq!(ProductState::from_db(s.as_db()), Some(s));
        }
        assert!(!ProductState::Retired.can_activate());
    }
}
