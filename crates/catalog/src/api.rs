//! gRPC handlers: protobuf in, domain values through the store, protobuf out.
//! The only module of the crate that sees prost types.

mod products;

use caravan_platform::{
    error::{FieldViolations, invalid_argument},
    idempotency::Idempotency,
    paging,
    time::SharedClock,
};
use caravan_proto::{
    catalog::v1::{self as pb, catalog_service_server::CatalogService},
    r#type::v1 as types,
};
use chrono::{Datelike as _, NaiveDate};
use tonic::{Request, Response, Status};

use crate::{
    domain::{Country, CountryCode, ScoStatus, product::ProductState},
    store::Store,
};

/// Default and largest page of ListCountries.
const COUNTRY_PAGE: (u64, u64) = (100, 500);

/// The catalog's gRPC service.
#[derive(Debug, Clone)]
pub struct CatalogApi {
    store: Store,
    idempotency: Idempotency,
    clock: SharedClock,
}

impl CatalogApi {
    /// Handlers over `store`, with request ids kept by `idempotency`,
    /// reading the time from `clock`.
    pub fn new(store: Store, idempotency: Idempotency, clock: SharedClock) -> Self {
        CatalogApi { store, idempotency, clock }
    }

    fn today(&self) -> NaiveDate {
        self.clock.now().to_datetime().date_naive()
    }
}

#[tonic::async_trait]
impl CatalogService for CatalogApi {
    #[tracing::instrument(level = "debug", skip_all, fields(name = %request.get_ref().name))]
    async fn get_country(&self, request: Request<pb::GetCountryRequest>) -> Result<Response<pb::Country>, Status> {
        let pb::GetCountryRequest { name, as_of } = request.into_inner();
        let mut violations = FieldViolations::new();
        let code = CountryCode::from_resource_name(&name).map_err(|e| violations.add("name", e)).ok();
        let as_of = parse_date(as_of, "as_of", &mut violations);
        violations.into_result()?;
        let (Some(code), Some(as_of)) = (code, as_of) else {
            return Err(invalid_argument("name", "invalid"));
        };
        let country = self.store.country(&code).await?;
        Ok(Response::new(country_to_pb(&country, as_of.unwrap_or_else(|| self.today()))))
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn list_countries(
        &self,
        request: Request<pb::ListCountriesRequest>,
    ) -> Result<Response<pb::ListCountriesResponse>, Status> {
        let pb::ListCountriesRequest { page_size, page_token, status, as_of } = request.into_inner();
        let mut violations = FieldViolations::new();
        let size = paging::page_size(page_size, COUNTRY_PAGE.0, COUNTRY_PAGE.1)
            .map_err(|_| violations.add("page_size", "must not be negative"))
            .ok();
        let status_filter = status;
        let status = match pb::ScoStatus::try_from(status) {
            Ok(pb::ScoStatus::Unspecified) => Some(None),
            Ok(s) => Some(Some(status_from_pb(s))),
            Err(_) => {
                violations.add("status", format!("unknown status value {status}"));
                None
            }
        };
        let as_of = parse_date(as_of, "as_of", &mut violations);
        // A token is valid only with the filters it was issued for.
        let filter = format!("status={status_filter};as_of={:?}", as_of.flatten());
        let after = violations.take(paging::decode_bound_token(&page_token, &filter));
        violations.into_result()?;
        let (Some(size), Some(after), Some(status), Some(as_of)) = (size, after, status, as_of) else {
            return Err(invalid_argument("request", "invalid"));
        };
        let as_of = as_of.unwrap_or_else(|| self.today());

        let matching: Vec<Country> = self
            .store
            .countries()
            .await?
            .into_iter()
            .filter(|c| after.as_deref().is_none_or(|after| c.code.as_str() > after))
            .filter(|c| status.is_none_or(|wanted| c.status_on(as_of) == Some(wanted)))
            .take(usize::try_from(paging::one_more(size)).unwrap_or(usize::MAX))
            .collect();
        let (page, next_page_token) =
            paging::page(matching, size, |c| paging::encode_bound_token(&filter, c.code.as_str()));
        let countries = page.iter().map(|c| country_to_pb(c, as_of)).collect();
        Ok(Response::new(pb::ListCountriesResponse { countries, next_page_token }))
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn get_product(&self, request: Request<pb::GetProductRequest>) -> Result<Response<pb::Product>, Status> {
        self.get_product(request.into_inner()).await.map(Response::new)
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn batch_get_products(
        &self,
        request: Request<pb::BatchGetProductsRequest>,
    ) -> Result<Response<pb::BatchGetProductsResponse>, Status> {
        self.batch_get_products(request.into_inner()).await.map(Response::new)
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn list_products(
        &self,
        request: Request<pb::ListProductsRequest>,
    ) -> Result<Response<pb::ListProductsResponse>, Status> {
        self.list_products(request.into_inner()).await.map(Response::new)
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn create_product(
        &self,
        request: Request<pb::CreateProductRequest>,
    ) -> Result<Response<pb::Product>, Status> {
        Box::pin(self.create_product(request.into_inner())).await.map(Response::new)
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn update_product(
        &self,
        request: Request<pb::UpdateProductRequest>,
    ) -> Result<Response<pb::Product>, Status> {
        self.update_product(request.into_inner()).await.map(Response::new)
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn activate_product(
        &self,
        request: Request<pb::ActivateProductRequest>,
    ) -> Result<Response<pb::Product>, Status> {
        let pb::ActivateProductRequest { name, etag, request_id: _ } = request.into_inner();
        self.change_state(&name, &etag, ProductState::Active).await.map(Response::new)
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn retire_product(
        &self,
        request: Request<pb::RetireProductRequest>,
    ) -> Result<Response<pb::Product>, Status> {
        let pb::RetireProductRequest { name, etag, request_id: _ } = request.into_inner();
        self.change_state(&name, &etag, ProductState::Retired).await.map(Response::new)
    }

    #[tracing::instrument(level = "debug", skip_all, fields(products = request.get_ref().products.len()))]
    async fn import_products(
        &self,
        request: Request<pb::ImportProductsRequest>,
    ) -> Result<Response<pb::ImportProductsResponse>, Status> {
        self.import_products(request.into_inner()).await.map(Response::new)
    }
}

/// `Ok(None)` when unset; records a violation and answers `None` when invalid.
fn parse_date(date: Option<types::Date>, field: &str, violations: &mut FieldViolations) -> Option<Option<NaiveDate>> {
    let Some(types::Date { year, month, day }) = date else {
        return Some(None);
    };
    let parsed = u32::try_from(month)
        .ok()
        .zip(u32::try_from(day).ok())
        .and_then(|(m, d)| NaiveDate::from_ymd_opt(year, m, d))
        .filter(|d| (1..=9999).contains(&d.year()));
    match parsed {
        Some(d) => Some(Some(d)),
        None => {
            violations.add(field, format!("{year:04}-{month:02}-{day:02} is not a calendar date"));
            None
        }
    }
}

fn status_to_pb(status: ScoStatus) -> pb::ScoStatus {
    match status {
        ScoStatus::Member => pb::ScoStatus::Member,
        ScoStatus::Observer => pb::ScoStatus::Observer,
        ScoStatus::DialoguePartner => pb::ScoStatus::DialoguePartner,
        ScoStatus::Guest => pb::ScoStatus::Guest,
    }
}

fn status_from_pb(status: pb::ScoStatus) -> ScoStatus {
    match status {
        pb::ScoStatus::Member => ScoStatus::Member,
        pb::ScoStatus::Observer => ScoStatus::Observer,
        pb::ScoStatus::DialoguePartner => ScoStatus::DialoguePartner,
        pb::ScoStatus::Guest | pb::ScoStatus::Unspecified => ScoStatus::Guest,
    }
}

fn country_to_pb(country: &Country, as_of: NaiveDate) -> pb::Country {
    pb::Country {
        name: format!("countries/{}", country.code),
        code: country.code.to_string(),
        display_name: Some(types::LocalizedText {
            zh_cn: country.name_zh_cn.clone(),
            en: country.name_en.clone(),
            ru: country.name_ru.clone(),
            origin: String::new(),
            origin_language: String::new(),
        }),
        status_history: country
            .history
            .iter()
            .map(|p| pb::ScoStatusPeriod { status: status_to_pb(p.status).into(), since_year: p.since_year })
            .collect(),
        current_status: country.status_on(as_of).map_or(pb::ScoStatus::Unspecified, status_to_pb).into(),
    }
}
