//! Product queries. Every change bumps `version` in the same conditional
//! statement that makes it, so a stale etag or a state that moved meanwhile
//! changes nothing.

use std::sync::Arc;

use caravan_macros::store_op;
use caravan_platform::error::StoreFailure as _;
use caravan_platform::time::Micros;
use sea_orm::{
    ActiveValue::Set,
    ColumnTrait, EntityTrait, QueryFilter, SqlErr,
    sea_query::{Expr, ExprTrait as _},
};

use super::{Store, entity::product};
use crate::{
    domain::{
        CountryCode,
        product::{Category, Localized, Price, Product, ProductFields, ProductState},
    },
    error::Error,
};

/// Which products a list returns.
#[derive(Debug, Clone, Default)]
pub struct ProductFilter {
    /// Only of this origin.
    pub country: Option<CountryCode>,
    /// Only of this category.
    pub category: Option<Category>,
    /// Only in this state.
    pub state: Option<ProductState>,
    /// Only with this text in a title (any locale).
    pub query: Option<String>,
}

impl ProductFilter {
    /// A canonical text of the filter, to bind page tokens to it.
    pub fn canonical(&self) -> String {
        format!(
            "country={};category={};state={};query={}",
            self.country.as_ref().map(CountryCode::as_str).unwrap_or(""),
            self.category.map(Category::as_db).unwrap_or(""),
            self.state.map(ProductState::as_db).unwrap_or(""),
            self.query.as_deref().unwrap_or(""),
        )
    }
}

/// What a conditional change found.
#[derive(Debug)]
pub enum Changed {
    /// Done; the product as it is now.
    Yes(Product),
    /// Not done: the product is in another version or state; as it is now.
    Conflict(Product),
}

impl Store {
    /// Inserts a new product; a taken id is `ProductExists`.
    #[store_op]
    pub async fn insert_product(
        &self,
        id: &str,
        fields: &ProductFields,
        state: ProductState,
        now: Micros,
    ) -> Result<Product, Error> {
        let product = Product {
            id: id.to_owned(),
            fields: fields.clone(),
            state,
            version: 1,
            create_time: now,
            update_time: now,
        };
        match product::Entity::insert(to_row(&product)).exec(&self.db).await {
            Ok(_) => {
                self.evict([id]);
                Ok(product)
            }
            Err(e) if matches!(e.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) => {
                Err(Error::ProductExists(id.to_owned()))
            }
            Err(e) => Err(Error::db("inserting a product")(e)),
        }
    }

    /// One product, from memory when read within [`super::PRODUCT_CACHE_TTL`]
    /// (shared, not copied: this is the hottest partner read). Only a miss
    /// is database work, and only then is there a `db` span (the one of
    /// [`Self::product_from_db`]).
    pub async fn product(&self, id: &str) -> Result<Arc<Product>, Error> {
        if let Some(product) = self.products.get(id) {
            return Ok(product);
        }
        let product = Arc::new(self.product_from_db(id).await?);
        self.products.insert(id.to_owned(), product.clone());
        Ok(product)
    }

    /// One product, from the database: what a write reads before its
    /// conditional update (never a cached copy, which may be another
    /// replica's past).
    #[store_op]
    pub async fn product_from_db(&self, id: &str) -> Result<Product, Error> {
        product::Entity::find_by_id(id.to_owned())
            .one(&self.db)
            .await
            .map_err(Error::db("reading a product"))?
            .ok_or_else(|| Error::ProductNotFound(id.to_owned()))
            .and_then(to_domain)
    }

    /// Forgets cached products after a write through this replica.
    fn evict<'a>(&self, ids: impl IntoIterator<Item = &'a str>) {
        for id in ids {
            self.products.invalidate(id);
        }
    }

    /// The products that exist among `ids`, in no particular order (cached
    /// ones from memory, the rest in one query). Only that query is a `db`
    /// span ([`Self::products_from_db`]): an order of a flash sale finds its
    /// product in memory, and a span there would show database work that
    /// never happened (and cost a span per order).
    pub async fn products(&self, ids: &[String]) -> Result<Vec<Arc<Product>>, Error> {
        let mut found = Vec::with_capacity(ids.len());
        let mut missing = Vec::new();
        for id in ids {
            match self.products.get(id) {
                Some(product) => found.push(product),
                None => missing.push(id.clone()),
            }
        }
        if missing.is_empty() {
            return Ok(found);
        }
        for row in self.products_from_db(missing).await? {
            let product = Arc::new(to_domain(row)?);
            self.products.insert(product.id.clone(), product.clone());
            found.push(product);
        }
        Ok(found)
    }

    /// The rows of the products among `ids`, from the database.
    #[store_op(operation = "products")]
    async fn products_from_db(&self, ids: Vec<String>) -> Result<Vec<product::Model>, Error> {
        product::Entity::find()
            .filter(product::Column::Id.is_in(ids))
            .all(&self.db)
            .await
            .map_err(Error::db("reading products"))
    }

    /// Up to `limit` products matching `filter`, ordered by id, after `after`
    /// (keyset pagination: the cost of a page does not grow with the catalog
    /// for the indexed filters).
    #[store_op]
    pub async fn list_products(
        &self,
        filter: &ProductFilter,
        after: Option<&str>,
        limit: u64,
    ) -> Result<Vec<Product>, Error> {
        use sea_orm::{Condition, QueryOrder, QuerySelect};
        let mut query = product::Entity::find().order_by_asc(product::Column::Id).limit(limit);
        if let Some(after) = after {
            query = query.filter(product::Column::Id.gt(after));
        }
        if let Some(country) = &filter.country {
            query = query.filter(product::Column::Country.eq(country.as_str()));
        }
        if let Some(category) = filter.category {
            query = query.filter(product::Column::Category.eq(category.as_db()));
        }
        if let Some(state) = filter.state {
            query = query.filter(product::Column::State.eq(state.as_db()));
        }
        if let Some(text) = &filter.query {
            let pattern = format!("%{}%", escape_like(&text.to_lowercase()));
            let mut any = Condition::any();
            for column in [
                product::Column::TitleZhCn,
                product::Column::TitleEn,
                product::Column::TitleRu,
                product::Column::TitleOrigin,
            ] {
                any = any.add(
                    Expr::expr(sea_orm::sea_query::Func::lower(Expr::col(column)))
                        .like(sea_orm::sea_query::LikeExpr::new(pattern.clone()).escape('\\')),
                );
            }
            query = query.filter(any);
        }
        query.all(&self.db).await.map_err(Error::db("listing products"))?.into_iter().map(to_domain).collect()
    }

    /// Creates or updates `rows` in one transaction: all or nothing. New
    /// products start in `initial`; existing ones keep their state and change
    /// only if their fields differ. Returns (created, updated, unchanged).
    #[store_op]
    pub async fn import_products(
        &self,
        rows: &[(String, ProductFields)],
        initial: ProductState,
        now: Micros,
    ) -> Result<(u32, u32, u32), Error> {
        use sea_orm::TransactionTrait as _;
        let txn = self.db.begin().await.map_err(Error::db("starting an import"))?;
        let ids: Vec<String> = rows.iter().map(|(id, _)| id.clone()).collect();
        let existing: std::collections::HashMap<String, Product> = product::Entity::find()
            .filter(product::Column::Id.is_in(ids))
            .all(&txn)
            .await
            .map_err(Error::db("reading products to import"))?
            .into_iter()
            .map(|row| to_domain(row).map(|p| (p.id.clone(), p)))
            .collect::<Result<_, _>>()?;
        let (mut created, mut updated, mut unchanged) = (0, 0, 0);
        for (id, fields) in rows {
            match existing.get(id) {
                None => {
                    let product = Product {
                        id: id.clone(),
                        fields: fields.clone(),
                        state: initial,
                        version: 1,
                        create_time: now,
                        update_time: now,
                    };
                    product::Entity::insert(to_row(&product))
                        .exec(&txn)
                        .await
                        .map_err(Error::db("importing a product"))?;
                    created += 1;
                }
                Some(current) if current.fields == *fields => unchanged += 1,
                Some(_) => {
                    let mut update = product::Entity::update_many()
                        .col_expr(product::Column::Version, Expr::col(product::Column::Version).add(1))
                        .col_expr(product::Column::UpdateTime, Expr::value(now.0))
                        .filter(product::Column::Id.eq(id.as_str()));
                    for (column, value) in field_values(fields) {
                        update = update.col_expr(column, Expr::value(value));
                    }
                    update.exec(&txn).await.map_err(Error::db("updating an imported product"))?;
                    updated += 1;
                }
            }
        }
        txn.commit().await.map_err(Error::db("committing an import"))?;
        self.evict(rows.iter().map(|(id, _)| id.as_str()));
        Ok((created, updated, unchanged))
    }

    /// Replaces the fields of version `version` (any version when `None`).
    #[store_op]
    pub async fn update_product(
        &self,
        id: &str,
        version: Option<i64>,
        fields: &ProductFields,
        now: Micros,
    ) -> Result<Changed, Error> {
        let mut update = product::Entity::update_many()
            .col_expr(product::Column::Version, Expr::col(product::Column::Version).add(1))
            .col_expr(product::Column::UpdateTime, Expr::value(now.0))
            .filter(product::Column::Id.eq(id));
        if let Some(version) = version {
            update = update.filter(product::Column::Version.eq(version));
        }
        for (column, value) in field_values(fields) {
            update = update.col_expr(column, Expr::value(value));
        }
        let result = update.exec(&self.db).await.map_err(Error::db("updating a product"))?;
        self.evict([id]);
        let now_stored = self.product_from_db(id).await?;
        Ok(if result.rows_affected == 1 { Changed::Yes(now_stored) } else { Changed::Conflict(now_stored) })
    }

    /// Moves the product to `to` if it is in one of `from` (and at `version`
    /// when given).
    #[store_op]
    pub async fn set_product_state(
        &self,
        id: &str,
        from: &[ProductState],
        to: ProductState,
        version: Option<i64>,
        now: Micros,
    ) -> Result<Changed, Error> {
        let mut update = product::Entity::update_many()
            .col_expr(product::Column::State, Expr::value(to.as_db()))
            .col_expr(product::Column::Version, Expr::col(product::Column::Version).add(1))
            .col_expr(product::Column::UpdateTime, Expr::value(now.0))
            .filter(product::Column::Id.eq(id))
            .filter(product::Column::State.is_in(from.iter().map(|s| s.as_db())));
        if let Some(version) = version {
            update = update.filter(product::Column::Version.eq(version));
        }
        let result = update.exec(&self.db).await.map_err(Error::db("changing a product's state"))?;
        self.evict([id]);
        let now_stored = self.product_from_db(id).await?;
        Ok(if result.rows_affected == 1 { Changed::Yes(now_stored) } else { Changed::Conflict(now_stored) })
    }
}

/// The columns an update of the fields writes, with their values.
fn field_values(fields: &ProductFields) -> Vec<(product::Column, sea_orm::Value)> {
    use product::Column as C;
    let ProductFields { country, category, title, description, list_price, unit, image_urls, tags } = fields;
    vec![
        (C::Country, country.to_string().into()),
        (C::Category, category.as_db().into()),
        (C::TitleZhCn, title.zh_cn.clone().into()),
        (C::TitleEn, title.en.clone().into()),
        (C::TitleRu, title.ru.clone().into()),
        (C::TitleOrigin, title.origin.clone().into()),
        (C::TitleOriginLanguage, title.origin_language.clone().into()),
        (C::DescriptionZhCn, description.zh_cn.clone().into()),
        (C::DescriptionEn, description.en.clone().into()),
        (C::DescriptionRu, description.ru.clone().into()),
        (C::DescriptionOrigin, description.origin.clone().into()),
        (C::DescriptionOriginLanguage, description.origin_language.clone().into()),
        (C::PriceCurrency, list_price.currency.clone().into()),
        (C::PriceMinor, list_price.minor.into()),
        (C::Unit, unit.clone().into()),
        (C::ImageUrls, json_list(image_urls).into()),
        (C::Tags, json_list(tags).into()),
    ]
}

/// Escapes LIKE's wildcards in user text.
fn escape_like(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

fn json_list(items: &[String]) -> String {
    serde_json::to_string(items).unwrap_or_else(|_| "[]".to_owned())
}

fn to_row(p: &Product) -> product::ActiveModel {
    let ProductFields { country, category, title, description, list_price, unit, image_urls, tags } = &p.fields;
    product::ActiveModel {
        id: Set(p.id.clone()),
        country: Set(country.to_string()),
        category: Set(category.as_db().to_owned()),
        title_zh_cn: Set(title.zh_cn.clone()),
        title_en: Set(title.en.clone()),
        title_ru: Set(title.ru.clone()),
        title_origin: Set(title.origin.clone()),
        title_origin_language: Set(title.origin_language.clone()),
        description_zh_cn: Set(description.zh_cn.clone()),
        description_en: Set(description.en.clone()),
        description_ru: Set(description.ru.clone()),
        description_origin: Set(description.origin.clone()),
        description_origin_language: Set(description.origin_language.clone()),
        price_currency: Set(list_price.currency.clone()),
        price_minor: Set(list_price.minor),
        unit: Set(unit.clone()),
        image_urls: Set(json_list(image_urls)),
        tags: Set(json_list(tags)),
        state: Set(p.state.as_db().to_owned()),
        version: Set(p.version),
        create_time: Set(p.create_time.0),
        update_time: Set(p.update_time.0),
    }
}

fn to_domain(row: product::Model) -> Result<Product, Error> {
    let product::Model {
        id,
        country,
        category,
        title_zh_cn,
        title_en,
        title_ru,
        title_origin,
        title_origin_language,
        description_zh_cn,
        description_en,
        description_ru,
        description_origin,
        description_origin_language,
        price_currency,
        price_minor,
        unit,
        image_urls,
        tags,
        state,
        version,
        create_time,
        update_time,
    } = row;
    let corrupt = |what: &str| Error::corrupt(format!("products.{what} of {id}"));
    let fields = ProductFields {
        country: CountryCode::parse(&country).map_err(|_| corrupt("country"))?,
        category: Category::from_db(&category).ok_or_else(|| corrupt("category"))?,
        title: Localized {
            zh_cn: title_zh_cn,
            en: title_en,
            ru: title_ru,
            origin: title_origin,
            origin_language: title_origin_language,
        },
        description: Localized {
            zh_cn: description_zh_cn,
            en: description_en,
            ru: description_ru,
            origin: description_origin,
            origin_language: description_origin_language,
        },
        list_price: Price { currency: price_currency, minor: price_minor },
        unit,
        image_urls: serde_json::from_str(&image_urls).map_err(|_| corrupt("image_urls"))?,
        tags: serde_json::from_str(&tags).map_err(|_| corrupt("tags"))?,
    };
    let state = ProductState::from_db(&state).ok_or_else(|| corrupt("state"))?;
    Ok(Product { id, fields, state, version, create_time: Micros(create_time), update_time: Micros(update_time) })
}
