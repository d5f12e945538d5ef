//! `caravan catalog import FILE`: loads products from JSON Lines or CSV into
//! a running catalog, in batches, upserting by id. A row that cannot be read
//! or that the catalog refuses is reported with its line number and left out;
//! the others are imported (a batch is all-or-nothing on the server, so a
//! refused batch is sent again without its bad rows). Re-running the same file
//! changes nothing.

use std::{collections::BTreeMap, path::Path};

use anyhow::Context as _;
use caravan_proto::{
    catalog::v1::{
        Category, ImportProductsRequest, Product, catalog_service_client::CatalogServiceClient, product::State,
    },
    r#type::v1::{LocalizedText, Money},
};
use indicatif::{ProgressBar, ProgressStyle};
use serde::Deserialize;
use tonic::Code;
use tonic_types::StatusExt as _;

use crate::channel::Authed;

/// One product as a file row.
#[derive(Debug, Clone, Deserialize, serde::Serialize, PartialEq)]
pub struct Row {
    /// Product id (`products/{id}`).
    pub id: String,
    /// ISO alpha-2 code of the origin country.
    pub country: String,
    /// Category: food, beverage, confectionery, handicraft, home_decor,
    /// textile, jewelry, cosmetics or health.
    pub category: String,
    /// Title in Simplified Chinese.
    pub title_zh_cn: String,
    /// Title in English.
    pub title_en: String,
    /// Title in Russian.
    #[serde(default)]
    pub title_ru: String,
    /// Description in Simplified Chinese.
    pub description_zh_cn: String,
    /// Description in English.
    pub description_en: String,
    /// ISO 4217 currency of the list price.
    pub price_currency: String,
    /// List price in minor units.
    pub price_minor: i64,
    /// Unit and size.
    pub unit: String,
    /// Tags, separated by `;` in CSV.
    #[serde(default, deserialize_with = "list")]
    pub tags: Vec<String>,
    /// Image URLs, separated by `;` in CSV.
    #[serde(default, deserialize_with = "list")]
    pub image_urls: Vec<String>,
}

/// Accepts a JSON array or a `;`-separated string.
fn list<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Either {
        List(Vec<String>),
        Text(String),
    }
    Ok(match Either::deserialize(deserializer)? {
        Either::List(items) => items,
        Either::Text(text) => text.split(';').map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect(),
    })
}

fn category(name: &str) -> Category {
    match name {
        "food" => Category::Food,
        "beverage" => Category::Beverage,
        "confectionery" => Category::Confectionery,
        "handicraft" => Category::Handicraft,
        "home_decor" => Category::HomeDecor,
        "textile" => Category::Textile,
        "jewelry" => Category::Jewelry,
        "cosmetics" => Category::Cosmetics,
        "health" => Category::Health,
        _ => Category::Unspecified,
    }
}

impl Row {
    /// The product this row describes.
    pub fn to_product(&self) -> Product {
        Product {
            name: format!("products/{}", self.id),
            country: format!("countries/{}", self.country),
            category: category(&self.category).into(),
            title: Some(LocalizedText {
                zh_cn: self.title_zh_cn.clone(),
                en: self.title_en.clone(),
                ru: self.title_ru.clone(),
                ..Default::default()
            }),
            description: Some(LocalizedText {
                zh_cn: self.description_zh_cn.clone(),
                en: self.description_en.clone(),
                ..Default::default()
            }),
            list_price: Some(Money { currency_code: self.price_currency.clone(), minor_units: self.price_minor }),
            unit: self.unit.clone(),
            image_urls: self.image_urls.clone(),
            tags: self.tags.clone(),
            ..Default::default()
        }
    }
}

/// A file's rows and the lines that could not be read, each with its line number.
#[derive(Debug, Default)]
pub struct ReadFile {
    /// Rows read.
    pub rows: Vec<(usize, Row)>,
    /// Lines that are not rows, with why.
    pub errors: Vec<(usize, String)>,
}

/// Reads a JSON Lines or (by extension) CSV file.
pub fn read(path: &Path) -> anyhow::Result<ReadFile> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut rows = Vec::new();
    let mut errors = Vec::new();
    if path.extension().is_some_and(|e| e.eq_ignore_ascii_case("csv")) {
        let mut reader = csv::ReaderBuilder::new().from_reader(text.as_bytes());
        for (i, record) in reader.deserialize::<Row>().enumerate() {
            // Line 1 is the header.
            match record {
                Ok(row) => rows.push((i + 2, row)),
                Err(e) => errors.push((i + 2, e.to_string())),
            }
        }
    } else {
        for (i, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            match serde_json::from_str::<Row>(line) {
                Ok(row) => rows.push((i + 1, row)),
                Err(e) => errors.push((i + 1, e.to_string())),
            }
        }
    }
    Ok(ReadFile { rows, errors })
}

/// What an import did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Totals {
    /// Products created.
    pub created: u64,
    /// Products changed.
    pub updated: u64,
    /// Products already equal to their row.
    pub unchanged: u64,
    /// Rows left out.
    pub failed: u64,
}

/// Imports `path` into the catalog at `addr`, `batch` rows per call.
pub async fn import(path: &Path, addr: &str, key: &str, batch: usize, activate: bool) -> anyhow::Result<Totals> {
    let ReadFile { rows, errors: unreadable } = read(path)?;
    let mut totals = Totals::default();
    for (line, error) in &unreadable {
        eprintln!("line {line}: {error}");
        totals.failed += 1;
    }
    let mut client = CatalogServiceClient::new(Authed::new(addr, Some(key), None)?);
    let progress = ProgressBar::new(rows.len() as u64);
    progress.set_style(
        ProgressStyle::with_template("importing {wide_bar} {pos}/{len} rows ({eta})")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let initial_state = if activate { State::Active } else { State::Draft };
    for chunk in rows.chunks(batch.max(1)) {
        let mut pending: Vec<&(usize, Row)> = chunk.iter().collect();
        while !pending.is_empty() {
            let request = ImportProductsRequest {
                products: pending.iter().map(|(_, row)| row.to_product()).collect(),
                initial_state: initial_state.into(),
                request_id: String::new(),
            };
            match client.import_products(request).await {
                Ok(response) => {
                    let r = response.into_inner();
                    totals.created += u64::try_from(r.created_count).unwrap_or(0);
                    totals.updated += u64::try_from(r.updated_count).unwrap_or(0);
                    totals.unchanged += u64::try_from(r.unchanged_count).unwrap_or(0);
                    break;
                }
                Err(status) if status.code() == Code::InvalidArgument => {
                    // Name each refused row by its line, then send the rest again.
                    let mut refused: BTreeMap<usize, Vec<String>> = BTreeMap::new();
                    for violation in
                        status.get_error_details().bad_request().map(|b| b.field_violations.clone()).unwrap_or_default()
                    {
                        let index = violation
                            .field
                            .strip_prefix("products[")
                            .and_then(|rest| rest.split(']').next())
                            .and_then(|i| i.parse::<usize>().ok());
                        match index {
                            Some(i) if i < pending.len() => {
                                let field = violation.field.split_once("].").map_or("", |(_, f)| f).to_owned();
                                refused.entry(i).or_default().push(format!("{field}: {}", violation.description));
                            }
                            _ => anyhow::bail!("the catalog refused the batch: {}", status.message()),
                        }
                    }
                    if refused.is_empty() {
                        anyhow::bail!("the catalog refused the batch: {}", status.message());
                    }
                    for (i, problems) in &refused {
                        eprintln!("line {}: {}", pending[*i].0, problems.join("; "));
                        totals.failed += 1;
                        progress.inc(1);
                    }
                    pending = pending
                        .into_iter()
                        .enumerate()
                        .filter(|(i, _)| !refused.contains_key(i))
                        .map(|(_, r)| r)
                        .collect();
                    continue;
                }
                Err(status) => anyhow::bail!("importing: {} ({:?})", status.message(), status.code()),
            }
        }
        progress.inc(pending.len() as u64);
    }
    progress.finish_and_clear();
    Ok(totals)
}
