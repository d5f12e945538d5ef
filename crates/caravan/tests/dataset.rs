//! The shipped catalog dataset: reproducible by its generator, shaped as the
//! festival needs, and accepted whole by a real catalog.

#![allow(clippy::unwrap_used)] // Test helpers fail loudly; that is their job.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use caravan::{catalog_import, dataset};
use caravan_proto::catalog::v1::{ListProductsRequest, catalog_service_client::CatalogServiceClient};
use caravan_testkit::{Caller, TestServer};

const SHIPPED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/data/products.jsonl");

#[test]
fn the_generator_reproduces_the_shipped_file() {
    let shipped = std::fs::read_to_string(SHIPPED).unwrap();
    assert_eq!(
        dataset::to_jsonl(&dataset::generate(dataset::SEED)).unwrap(),
        shipped,
        "run `caravan catalog dataset --out crates/caravan/data/products.jsonl`"
    );
}

#[test]
fn every_country_has_twenty_products_in_four_categories_with_unique_chinese_titles() {
    let file = catalog_import::read(std::path::Path::new(SHIPPED)).unwrap();
    assert!(file.errors.is_empty(), "{:?}", file.errors);
    let rows: Vec<_> = file.rows.into_iter().map(|(_, r)| r).collect();
    assert!(rows.len() >= 1500, "{} products", rows.len());

    let mut per_country: BTreeMap<&str, (usize, BTreeSet<&str>)> = BTreeMap::new();
    for row in &rows {
        let entry = per_country.entry(row.country.as_str()).or_default();
        entry.0 += 1;
        entry.1.insert(row.category.as_str());
    }
    assert!(per_country.len() >= 25, "{} countries", per_country.len());
    for (country, (count, categories)) in &per_country {
        assert!(*count >= 20, "{country}: {count} products");
        assert!(categories.len() >= 4, "{country}: categories {categories:?}");
    }
    let ids: HashSet<_> = rows.iter().map(|r| &r.id).collect();
    assert_eq!(ids.len(), rows.len(), "ids are unique");
    let titles: HashSet<_> = rows.iter().map(|r| &r.title_zh_cn).collect();
    assert_eq!(titles.len(), rows.len(), "zh-CN titles are unique");
    let chinese = |s: &str| s.chars().filter(|c| ('\u{4e00}'..='\u{9fff}').contains(c)).count() >= 3;
    assert!(rows.iter().all(|r| chinese(&r.title_zh_cn)), "zh-CN titles are Chinese");
    assert!(rows.iter().all(|r| r.price_currency == "CNY" && r.price_minor > 0));
    assert!(!rows.iter().any(|r| r.title_en.contains("product-")), "no placeholder names");
}

#[tokio::test]
async fn a_catalog_accepts_the_whole_dataset_and_pages_it_by_country() {
    let catalog = TestServer::start::<caravan_catalog::Catalog>(&[]).await.unwrap();
    let addr = catalog.addr().to_string();
    let totals =
        catalog_import::import(std::path::Path::new(SHIPPED), &addr, Caller::Operator.key(), 500, true).await.unwrap();
    let rows = catalog_import::read(std::path::Path::new(SHIPPED)).unwrap().rows;
    assert_eq!(totals.failed, 0);
    assert_eq!(totals.created as usize, rows.len());

    let expected = rows.iter().filter(|(_, r)| r.country == "PK").count();
    let mut client = CatalogServiceClient::new(catalog.channel_as(Caller::Hema));
    let mut request = ListProductsRequest { page_size: 17, country: "countries/PK".into(), ..Default::default() };
    let mut seen = Vec::new();
    loop {
        let page = client.list_products(request.clone()).await.unwrap().into_inner();
        seen.extend(page.products.into_iter().map(|p| p.name));
        if page.next_page_token.is_empty() {
            break;
        }
        request.page_token = page.next_page_token;
    }
    assert_eq!(seen.len(), expected);
    assert!(seen.windows(2).all(|w| w[0] < w[1]), "ordered, no repeats");

    // The whole catalog, while an operator keeps adding products between pages.
    let mut operator = CatalogServiceClient::new(catalog.channel());
    let mut request = ListProductsRequest { page_size: 97, ..Default::default() };
    let mut seen = Vec::new();
    let mut added = 0;
    loop {
        let page = client.list_products(request.clone()).await.unwrap().into_inner();
        seen.extend(page.products.into_iter().map(|p| p.name));
        let mut extra = rows[added % rows.len()].1.to_product();
        extra.name = String::new();
        let id = format!("{}-new-{added}", if added % 2 == 0 { "aa" } else { "zz" });
        operator
            .create_product(caravan_proto::catalog::v1::CreateProductRequest {
                product: Some(extra),
                product_id: id,
                request_id: String::new(),
            })
            .await
            .unwrap();
        added += 1;
        if page.next_page_token.is_empty() {
            break;
        }
        request.page_token = page.next_page_token;
    }
    let unique: HashSet<_> = seen.iter().collect();
    assert_eq!(unique.len(), seen.len(), "no product twice");
    for (_, row) in &rows {
        assert!(unique.contains(&format!("products/{}", row.id)), "{} skipped", row.id);
    }
}
