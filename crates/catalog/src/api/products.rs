//! Product handlers and their protobuf conversions.

use caravan_platform::{
    error::{FieldViolations, etag_mismatch, failed_precondition, invalid_argument},
    idempotency::{ANONYMOUS, Scope},
    paging,
    resource::{self, ID_RULE},
};
use caravan_proto::{catalog::v1 as pb, timestamp_from_micros, r#type::v1 as types};
use tonic::Status;

use super::CatalogApi;
use crate::{
    domain::{
        CountryCode,
        product::{self, Category, Localized, Price, Product, ProductFields, ProductState, limits},
    },
    error::Error,
    store::{Changed, ProductFilter},
};

const PRODUCT: &str = "caravan.catalog.v1.Product";
/// Fields UpdateProduct may change; state changes only through Activate/Retire.
const MUTABLE: [&str; 8] = ["country", "category", "title", "description", "list_price", "unit", "image_urls", "tags"];
const OUTPUT_ONLY: [&str; 5] = ["name", "state", "etag", "create_time", "update_time"];
/// Default and largest page of ListProducts.
const PAGE: (u64, u64) = (50, 500);
/// Longest text query.
const MAX_QUERY: usize = 100;

impl CatalogApi {
    pub(super) async fn create_product(&self, request: pb::CreateProductRequest) -> Result<pb::Product, Status> {
        let request_id = request.request_id.clone();
        let scope = Scope {
            principal: ANONYMOUS,
            method: "caravan.catalog.v1.CatalogService/CreateProduct",
            request_id: &request_id,
        };
        let create = self.create_product_once(request.clone());
        self.idempotency.run(scope, &request, || create).await
    }

    async fn create_product_once(&self, request: pb::CreateProductRequest) -> Result<pb::Product, Status> {
        let pb::CreateProductRequest { product, product_id, request_id: _ } = request;
        let mut violations = FieldViolations::new();
        if !product_id.is_empty() && !product::valid_id(&product_id) {
            violations.add("product_id", ID_RULE);
        }
        let fields = match product {
            None => {
                violations.add("product", "is required");
                None
            }
            Some(product) => self.fields("product.", product, &mut violations).await?,
        };
        violations.into_result()?;
        let fields = fields.ok_or_else(|| invalid_argument("product", "is invalid"))?;
        let id = if product_id.is_empty() { resource::new_id('p') } else { product_id };
        let product = self.store.insert_product(&id, &fields, ProductState::Draft, self.clock.now()).await?;
        Ok(product_to_pb(&product))
    }

    pub(super) async fn get_product(&self, request: pb::GetProductRequest) -> Result<pb::Product, Status> {
        let pb::GetProductRequest { name } = request;
        let id = resource::parse_name(&name, "products").map_err(|e| invalid_argument("name", e))?;
        let product = self.store.product(id).await?;
        Ok(product_to_pb(&product))
    }

    pub(super) async fn batch_get_products(
        &self,
        request: pb::BatchGetProductsRequest,
    ) -> Result<pb::BatchGetProductsResponse, Status> {
        let pb::BatchGetProductsRequest { names } = request;
        let mut violations = FieldViolations::new();
        if names.len() > limits::BATCH_GET {
            violations.add("names", format!("at most {} names per call", limits::BATCH_GET));
        }
        let mut ids = Vec::with_capacity(names.len());
        for (i, name) in names.iter().enumerate() {
            match resource::parse_name(name, "products") {
                Ok(id) => ids.push(id.to_owned()),
                Err(e) => violations.add(format!("names[{i}]"), e),
            }
        }
        violations.into_result()?;
        let mut unique = ids.clone();
        unique.sort();
        unique.dedup();
        let found: std::collections::HashMap<String, std::sync::Arc<Product>> =
            self.store.products(&unique).await?.into_iter().map(|p| (p.id.clone(), p)).collect();
        let mut products = Vec::new();
        let mut missing = Vec::new();
        for (name, id) in names.into_iter().zip(ids) {
            match found.get(&id) {
                Some(product) => products.push(product_to_pb(product)),
                None => missing.push(name),
            }
        }
        Ok(pb::BatchGetProductsResponse { products, missing })
    }

    pub(super) async fn list_products(
        &self,
        request: pb::ListProductsRequest,
    ) -> Result<pb::ListProductsResponse, Status> {
        let pb::ListProductsRequest { page_size, page_token, country, category, state, query } = request;
        let mut violations = FieldViolations::new();
        let size = paging::page_size(page_size, PAGE.0, PAGE.1)
            .map_err(|_| violations.add("page_size", "must not be negative"))
            .ok();
        let country = if country.is_empty() {
            None
        } else {
            CountryCode::from_resource_name(&country).map_err(|e| violations.add("country", e)).ok()
        };
        let category = match category {
            0 => None,
            value => {
                let parsed = category_from_pb(value);
                if parsed.is_none() {
                    violations.add("category", format!("unknown category value {value}"));
                }
                parsed
            }
        };
        let state = match pb::product::State::try_from(state) {
            Ok(pb::product::State::Unspecified) => None,
            Ok(pb::product::State::Draft) => Some(ProductState::Draft),
            Ok(pb::product::State::Active) => Some(ProductState::Active),
            Ok(pb::product::State::Retired) => Some(ProductState::Retired),
            Err(_) => {
                violations.add("state", format!("unknown state value {state}"));
                None
            }
        };
        let query = query.trim().to_owned();
        if query.chars().count() > MAX_QUERY {
            violations.add("query", format!("must be at most {MAX_QUERY} characters"));
        }
        let filter = ProductFilter { country, category, state, query: (!query.is_empty()).then_some(query) };
        let after = paging::decode_bound_token(&page_token, &filter.canonical())
            .map_err(|_| violations.add("page_token", "not a token of ListProducts with these filters"))
            .ok();
        violations.into_result()?;
        let (Some(size), Some(after)) = (size, after) else {
            return Err(invalid_argument("request", "is invalid"));
        };
        let products = self.store.list_products(&filter, after.as_deref(), paging::one_more(size)).await?;
        let (products, next_page_token) =
            paging::page(products, size, |p| paging::encode_bound_token(&filter.canonical(), &p.id));
        Ok(pb::ListProductsResponse { products: products.iter().map(product_to_pb).collect(), next_page_token })
    }

    pub(super) async fn import_products(
        &self,
        request: pb::ImportProductsRequest,
    ) -> Result<pb::ImportProductsResponse, Status> {
        let request_id = request.request_id.clone();
        let scope = Scope {
            principal: ANONYMOUS,
            method: "caravan.catalog.v1.CatalogService/ImportProducts",
            request_id: &request_id,
        };
        let import = self.import_products_once(request.clone());
        self.idempotency.run(scope, &request, || import).await
    }

    async fn import_products_once(
        &self,
        request: pb::ImportProductsRequest,
    ) -> Result<pb::ImportProductsResponse, Status> {
        let pb::ImportProductsRequest { products, initial_state, request_id: _ } = request;
        let mut violations = FieldViolations::new();
        if products.is_empty() || products.len() > limits::IMPORT {
            violations.add("products", format!("send 1 to {} products per call", limits::IMPORT));
        }
        let initial = match pb::product::State::try_from(initial_state) {
            Ok(pb::product::State::Unspecified | pb::product::State::Draft) => ProductState::Draft,
            Ok(pb::product::State::Active) => ProductState::Active,
            _ => {
                violations.add("initial_state", "must be STATE_DRAFT or STATE_ACTIVE");
                ProductState::Draft
            }
        };
        let mut rows = Vec::with_capacity(products.len());
        let mut seen = std::collections::HashSet::new();
        for (i, product) in products.into_iter().enumerate() {
            let id = match resource::parse_name(&product.name, "products") {
                Ok(id) => Some(id.to_owned()),
                Err(e) => {
                    violations.add(format!("products[{i}].name"), e);
                    None
                }
            };
            if let Some(id) = &id
                && !seen.insert(id.clone())
            {
                violations.add(format!("products[{i}].name"), format!("{} appears twice in this call", product.name));
            }
            let fields = self.fields(&format!("products[{i}]."), product, &mut violations).await?;
            if let (Some(id), Some(fields)) = (id, fields) {
                rows.push((id, fields));
            }
        }
        // All or nothing: one bad row sends the whole call back, every problem named.
        violations.into_result()?;
        let (created_count, updated_count, unchanged_count) =
            self.store.import_products(&rows, initial, self.clock.now()).await?;
        let count = |n: u32| i32::try_from(n).unwrap_or(i32::MAX);
        Ok(pb::ImportProductsResponse {
            created_count: count(created_count),
            updated_count: count(updated_count),
            unchanged_count: count(unchanged_count),
        })
    }

    pub(super) async fn update_product(&self, request: pb::UpdateProductRequest) -> Result<pb::Product, Status> {
        let pb::UpdateProductRequest { product, update_mask, request_id: _ } = request;
        let Some(product) = product else {
            return Err(invalid_argument("product", "is required"));
        };
        let id = resource::parse_name(&product.name, "products")
            .map_err(|e| invalid_argument("product.name", e))?
            .to_owned();
        let paths = resource::mask_paths(update_mask.map(|m| m.paths), &MUTABLE, &OUTPUT_ONLY, "Product")?;
        let etag = product.etag.clone();
        // Read, merge the masked fields, write only if nothing changed meanwhile.
        for _ in 0..3 {
            let current = self.store.product_from_db(&id).await?;
            if !etag.is_empty() && etag != current.etag() {
                return Err(etag_mismatch(PRODUCT, &format!("products/{id}")));
            }
            let mut merged = product_to_pb(&current);
            for path in &paths {
                copy_field(&mut merged, &product, path);
            }
            let mut violations = FieldViolations::new();
            let fields = self.fields("product.", merged, &mut violations).await?;
            violations.into_result()?;
            let fields = fields.ok_or_else(|| invalid_argument("product", "is invalid"))?;
            match self.store.update_product(&id, Some(current.version), &fields, self.clock.now()).await? {
                Changed::Yes(updated) => return Ok(product_to_pb(&updated)),
                Changed::Conflict(_) if !etag.is_empty() => {
                    return Err(etag_mismatch(PRODUCT, &format!("products/{id}")));
                }
                Changed::Conflict(_) => continue,
            }
        }
        Err(Status::aborted("the product kept changing; read it again and retry"))
    }

    pub(super) async fn change_state(&self, name: &str, etag: &str, to: ProductState) -> Result<pb::Product, Status> {
        let id = resource::parse_name(name, "products").map_err(|e| invalid_argument("name", e))?.to_owned();
        let current = self.store.product_from_db(&id).await?;
        if !etag.is_empty() && etag != current.etag() {
            return Err(etag_mismatch(PRODUCT, name));
        }
        if current.state == to {
            return Ok(product_to_pb(&current));
        }
        let from: &[ProductState] = match to {
            ProductState::Active => &[ProductState::Draft],
            ProductState::Retired => &[ProductState::Draft, ProductState::Active],
            ProductState::Draft => &[],
        };
        if !from.contains(&current.state) {
            return Err(failed_precondition(
                caravan_platform::error::Reason::ProductRetired,
                name,
                format!("a {} product cannot become {to}", current.state),
                std::collections::HashMap::from([("state".to_owned(), current.state.to_string())]),
            ));
        }
        match self.store.set_product_state(&id, from, to, Some(current.version), self.clock.now()).await? {
            Changed::Yes(product) => Ok(product_to_pb(&product)),
            Changed::Conflict(_) => Err(etag_mismatch(PRODUCT, name)),
        }
    }

    /// Validates a product's settable fields (all problems at once), checking
    /// its country against the countries this catalog knows.
    async fn fields(
        &self,
        prefix: &str,
        product: pb::Product,
        violations: &mut FieldViolations,
    ) -> Result<Option<ProductFields>, Status> {
        let pb::Product {
            name: _,
            country,
            category,
            title,
            description,
            list_price,
            unit,
            image_urls,
            tags,
            state: _,
            etag: _,
            create_time: _,
            update_time: _,
        } = product;
        let country = if country.is_empty() {
            None
        } else {
            Some(match CountryCode::from_resource_name(&country) {
                Ok(code) => match self.store.country(&code).await {
                    Ok(_) => Ok(code),
                    Err(Error::CountryNotFound(_)) => Err(format!("{country} is not a country of the festival")),
                    Err(e) => return Err(e.into()),
                },
                Err(e) => Err(e),
            })
        };
        let category = category_from_pb(category);
        let title = localized(title);
        let description = localized(description);
        let price = list_price.map(|m| Price { currency: m.currency_code, minor: m.minor_units });
        let problems = product::validate(
            prefix,
            country.clone(),
            category,
            &title,
            &description,
            price.as_ref(),
            &unit,
            &image_urls,
            &tags,
        );
        let ok = problems.is_empty();
        for (field, problem) in problems {
            violations.add(field, problem);
        }
        Ok(match (ok, country, category, price) {
            (true, Some(Ok(country)), Some(category), Some(list_price)) => {
                Some(ProductFields { country, category, title, description, list_price, unit, image_urls, tags })
            }
            _ => None,
        })
    }
}

fn copy_field(into: &mut pb::Product, from: &pb::Product, path: &str) {
    match path {
        "country" => into.country = from.country.clone(),
        "category" => into.category = from.category,
        "title" => into.title = from.title.clone(),
        "description" => into.description = from.description.clone(),
        "list_price" => into.list_price = from.list_price.clone(),
        "unit" => into.unit = from.unit.clone(),
        "image_urls" => into.image_urls = from.image_urls.clone(),
        "tags" => into.tags = from.tags.clone(),
        _ => {}
    }
}

fn localized(text: Option<types::LocalizedText>) -> Localized {
    let types::LocalizedText { zh_cn, en, ru, origin, origin_language } = text.unwrap_or_default();
    Localized { zh_cn, en, ru, origin, origin_language }
}

fn localized_to_pb(text: Localized) -> types::LocalizedText {
    let Localized { zh_cn, en, ru, origin, origin_language } = text;
    types::LocalizedText { zh_cn, en, ru, origin, origin_language }
}

fn category_from_pb(value: i32) -> Option<Category> {
    Some(match pb::Category::try_from(value).ok()? {
        pb::Category::Unspecified => return None,
        pb::Category::Food => Category::Food,
        pb::Category::Beverage => Category::Beverage,
        pb::Category::Confectionery => Category::Confectionery,
        pb::Category::Handicraft => Category::Handicraft,
        pb::Category::HomeDecor => Category::HomeDecor,
        pb::Category::Textile => Category::Textile,
        pb::Category::Jewelry => Category::Jewelry,
        pb::Category::Cosmetics => Category::Cosmetics,
        pb::Category::Health => Category::Health,
    })
}

fn category_to_pb(category: Category) -> pb::Category {
    match category {
        Category::Food => pb::Category::Food,
        Category::Beverage => pb::Category::Beverage,
        Category::Confectionery => pb::Category::Confectionery,
        Category::Handicraft => pb::Category::Handicraft,
        Category::HomeDecor => pb::Category::HomeDecor,
        Category::Textile => pb::Category::Textile,
        Category::Jewelry => pb::Category::Jewelry,
        Category::Cosmetics => pb::Category::Cosmetics,
        Category::Health => pb::Category::Health,
    }
}

fn state_to_pb(state: ProductState) -> pb::product::State {
    match state {
        ProductState::Draft => pb::product::State::Draft,
        ProductState::Active => pb::product::State::Active,
        ProductState::Retired => pb::product::State::Retired,
    }
}

pub(super) fn product_to_pb(product: &Product) -> pb::Product {
    let Product { id, fields, state, version: _, create_time, update_time } = product;
    let ProductFields { country, category, title, description, list_price, unit, image_urls, tags } = fields;
    pb::Product {
        name: format!("products/{id}"),
        country: format!("countries/{country}"),
        category: category_to_pb(*category).into(),
        title: Some(localized_to_pb(title.clone())),
        description: Some(localized_to_pb(description.clone())),
        list_price: Some(types::Money { currency_code: list_price.currency.clone(), minor_units: list_price.minor }),
        unit: unit.clone(),
        image_urls: image_urls.clone(),
        tags: tags.clone(),
        state: state_to_pb(*state).into(),
        etag: product.etag(),
        create_time: Some(timestamp_from_micros(create_time.0)),
        update_time: Some(timestamp_from_micros(update_time.0)),
    }
}
