use caravan_proto::{
    catalog::v1::{Country, GetCountryRequest, ListCountriesRequest, ScoStatus},
    r#type::v1::Date,
};
use tonic::Code;
use tonic_types::StatusExt;

use crate::helpers::spawn_app;

fn date(year: i32, month: i32, day: i32) -> Option<Date> {
    Some(Date { year, month, day })
}

async fn country(app: &mut crate::helpers::TestApp, code: &str, as_of: Option<Date>) -> Country {
    app.client
        .get_country(GetCountryRequest { name: format!("countries/{code}"), as_of })
        .await
        .unwrap_or_else(|s| panic!("GetCountry {code}: {s:?}"))
        .into_inner()
}

#[tokio::test]
async fn status_is_read_as_of_the_date_asked() {
    let mut app = spawn_app().await;
    // The 2022 festival and today read differently for the newer members.
    for (code, year, expected) in [
        ("IR", 2022, ScoStatus::Observer),
        ("IR", 2023, ScoStatus::Member),
        ("BY", 2022, ScoStatus::Observer),
        ("BY", 2024, ScoStatus::Member),
        ("BY", 2012, ScoStatus::DialoguePartner),
        ("KH", 2022, ScoStatus::DialoguePartner),
        ("UZ", 2022, ScoStatus::Member),
        ("PK", 2010, ScoStatus::Observer),
    ] {
        let c = country(&mut app, code, date(year, 6, 1)).await;
        assert_eq!(c.current_status(), expected, "{code} in {year}");
    }
    let iran = country(&mut app, "IR", None).await;
    assert_eq!(iran.name, "countries/IR");
    assert_eq!(iran.current_status(), ScoStatus::Member, "today Iran is a member");
    let names = iran.display_name.unwrap();
    assert_eq!((names.zh_cn.as_str(), names.en.as_str(), names.ru.as_str()), ("伊朗", "Iran", "Иран"));
    let history: Vec<_> = iran.status_history.iter().map(|p| (p.status(), p.since_year)).collect();
    assert_eq!(history, [(ScoStatus::Observer, 2005), (ScoStatus::Member, 2023)]);
}

#[tokio::test]
async fn unknown_country_is_not_found_with_resource_info() {
    let mut app = spawn_app().await;
    let status =
        app.client.get_country(GetCountryRequest { name: "countries/ZZ".into(), as_of: None }).await.unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
    let info = status.get_error_details().resource_info().cloned().expect("ResourceInfo");
    assert_eq!(info.resource_name, "countries/ZZ");
}

#[tokio::test]
async fn bad_requests_name_every_bad_field() {
    let mut app = spawn_app().await;
    let check = |name: &str, as_of: Option<Date>, fields: &[&str]| {
        let mut client = app.client.clone();
        let name = name.to_owned();
        let fields: Vec<String> = fields.iter().map(|f| (*f).to_owned()).collect();
        async move {
            let status = client.get_country(GetCountryRequest { name: name.clone(), as_of }).await.unwrap_err();
            assert_eq!(status.code(), Code::InvalidArgument, "{name}");
            let got: Vec<String> = status
                .get_error_details()
                .bad_request()
                .expect("BadRequest")
                .field_violations
                .iter()
                .map(|v| v.field.clone())
                .collect();
            assert_eq!(got, fields, "{name}");
        }
    };
    check("UZ", None, &["name"]).await;
    check("countries/uz", None, &["name"]).await;
    check("countries/UZ", date(2022, 2, 30), &["as_of"]).await;
    check("country/UZ", date(2022, 13, 1), &["name", "as_of"]).await;
    app.client.get_country(GetCountryRequest { name: "countries/UZ".into(), as_of: None }).await.unwrap();
}

#[tokio::test]
async fn list_pages_through_every_country_once() {
    let mut app = spawn_app().await;
    let mut seen = Vec::new();
    let mut token = String::new();
    loop {
        let page = app
            .client
            .list_countries(ListCountriesRequest { page_size: 7, page_token: token, status: 0, as_of: None })
            .await
            .unwrap()
            .into_inner();
        assert!(page.countries.len() <= 7);
        seen.extend(page.countries.into_iter().map(|c| c.code));
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    let mut sorted = seen.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(seen, sorted, "ordered by code, no repeats");
    for code in ["CN", "RU", "KZ", "KG", "TJ", "UZ", "IN", "PK", "IR", "BY", "KH", "MN"] {
        assert!(seen.iter().any(|c| c == code), "{code} missing");
    }
}

#[tokio::test]
async fn list_filters_by_status_on_a_date() {
    let mut app = spawn_app().await;
    let members = |year| {
        let mut client = app.client.clone();
        async move {
            let mut codes: Vec<String> = client
                .list_countries(ListCountriesRequest {
                    page_size: 0,
                    page_token: String::new(),
                    status: ScoStatus::Member.into(),
                    as_of: date(year, 12, 31),
                })
                .await
                .unwrap()
                .into_inner()
                .countries
                .into_iter()
                .map(|c| c.code)
                .collect();
            codes.sort();
            codes
        }
    };
    assert_eq!(members(2022).await, ["CN", "IN", "KG", "KZ", "PK", "RU", "TJ", "UZ"]);
    assert_eq!(members(2024).await, ["BY", "CN", "IN", "IR", "KG", "KZ", "PK", "RU", "TJ", "UZ"]);

    let status = app
        .client
        .list_countries(ListCountriesRequest { page_size: -1, page_token: "nope".into(), status: 99, as_of: None })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    let fields: Vec<_> =
        status.get_error_details().bad_request().unwrap().field_violations.iter().map(|v| v.field.clone()).collect();
    assert_eq!(fields, ["page_size", "status", "page_token"]);
}

#[tokio::test]
async fn a_country_page_token_holds_only_for_its_filters() {
    let mut app = spawn_app().await;
    let list = |page_token: String, status: ScoStatus, year| ListCountriesRequest {
        page_size: 2,
        page_token,
        status: status.into(),
        as_of: date(year, 12, 31),
    };
    let first = app.client.list_countries(list(String::new(), ScoStatus::Member, 2022)).await.unwrap().into_inner();
    assert_eq!(first.countries.len(), 2);
    for (status, year) in [(ScoStatus::Unspecified, 2022), (ScoStatus::Member, 2024), (ScoStatus::Observer, 2022)] {
        let status = app.client.list_countries(list(first.next_page_token.clone(), status, year)).await.unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument);
        let fields: Vec<_> = status
            .get_error_details()
            .bad_request()
            .unwrap()
            .field_violations
            .iter()
            .map(|v| v.field.clone())
            .collect();
        assert_eq!(fields, ["page_token"]);
    }
    let next = app.client.list_countries(list(first.next_page_token, ScoStatus::Member, 2022)).await.unwrap();
    let next = next.into_inner();
    assert!(next.countries.iter().all(|c| first.countries.iter().all(|f| f.code < c.code)));
}

#[tokio::test]
async fn health_reports_serving_for_the_server_and_the_service() {
    use caravan_testkit::health_status;
    use tonic_health::pb::health_check_response::ServingStatus;

    let app = spawn_app().await;
    for service in ["", "caravan.catalog.v1.CatalogService"] {
        assert_eq!(health_status(app.server.addr(), service).await.unwrap(), ServingStatus::Serving, "{service:?}");
    }
}
