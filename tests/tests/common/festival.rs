//! The festival every cross-service test starts from: the four services,
//! the 2022 Nianhuo Festival with a Hema channel and two hosts, a dozen Uzbek
//! specialties of the shipped dataset (active) with stock, and the clock on
//! the festival's first morning.

#![allow(dead_code)] // Each test binary uses what it needs.

use caravan::{festival::Timetable, suite::Suite};
use caravan_platform::{
    config::ServiceKind,
    time::{ManualClock, Micros},
};
use caravan_proto::{
    inventory::v1::{
        CreateWarehouseRequest, ReceiveStockRequest, Warehouse, inventory_service_client::InventoryServiceClient,
    },
    scheduling::v1::{
        Campaign, CreateShowRequest, Host, Offer, Show, scheduling_service_client::SchedulingServiceClient,
    },
    timestamp_from_micros,
    r#type::v1::{Date, LocalizedText, Money},
};
use caravan_testkit::{Caller, KeyedChannel};

use super::RunningSuite;

pub type Scheduling = SchedulingServiceClient<KeyedChannel>;
pub type Inventory = InventoryServiceClient<KeyedChannel>;

/// 2022-01-10T00:00+08:00, the festival's first midnight, in UTC micros.
pub const FESTIVAL_START: i64 = 1_641_744_000_000_000;
pub const HOUR: i64 = 3_600_000_000;

/// An instant `hours` after the festival's first midnight.
pub fn at(hours: f64) -> i64 {
    FESTIVAL_START + (hours * HOUR as f64) as i64
}

pub struct Festival {
    pub running: RunningSuite,
    pub clock: ManualClock,
    pub scheduling: Scheduling,
    pub inventory: Inventory,
}

pub fn client_of(suite: &Suite, kind: ServiceKind) -> KeyedChannel {
    KeyedChannel::new(suite.addr(kind), Some(Caller::Operator))
}

/// The suite with the Nianhuo festival, a Hema channel, two hosts, a dozen
/// Uzbek products (active) with stock, and the clock on the festival's first morning.
pub async fn festival() -> Festival {
    festival_adjusted(|_, _| {}).await
}

/// [`festival`], each service's configuration passed through `adjust`.
pub async fn festival_adjusted(adjust: impl Fn(ServiceKind, &mut caravan_platform::config::ServiceConfig)) -> Festival {
    let clock = ManualClock::new(Micros(at(9.0)));
    let running = super::start_suite_adjusted(Some(&clock), adjust).await;
    let suite = &running.suite;
    let dataset =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../crates/caravan/data/products.jsonl")).unwrap();
    let uzbek: Vec<&str> = dataset.lines().filter(|l| l.contains("\"id\":\"uz-")).take(12).collect();
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), uzbek.join("\n")).unwrap();
    caravan::catalog_import::import(
        file.path(),
        &suite.addr(ServiceKind::Catalog).to_string(),
        Caller::Operator.key(),
        50,
        true,
    )
    .await
    .unwrap();

    let scheduling = SchedulingServiceClient::new(client_of(suite, ServiceKind::Scheduling));
    let mut inventory = InventoryServiceClient::new(client_of(suite, ServiceKind::Inventory));
    let mut timetable = Timetable::new(client_of(suite, ServiceKind::Scheduling));
    let campaign = Campaign {
        title: Some(LocalizedText { en: "2022 National Nianhuo Festival".into(), ..Default::default() }),
        organiser: "MOFCOM".into(),
        start_date: Some(Date { year: 2022, month: 1, day: 10 }),
        end_date: Some(Date { year: 2022, month: 2, day: 7 }),
        time_zone: "Asia/Shanghai".into(),
        ..Default::default()
    };
    timetable.campaign("nianhuo-2022", campaign).await.unwrap();
    timetable.channel("hema-sco", "hema", "盒马 上合好物", "hema").await.unwrap();
    for (id, country) in [("olimkhonov", "countries/UZ"), ("khan", "countries/PK")] {
        timetable
            .host(id, Host { display_name: id.into(), country: country.into(), ..Default::default() })
            .await
            .unwrap();
    }
    inventory
        .create_warehouse(CreateWarehouseRequest {
            warehouse: Some(Warehouse { display_name: "Shanghai bonded".into(), priority: 1, ..Default::default() }),
            warehouse_id: "sh-bonded".into(),
            request_id: String::new(),
        })
        .await
        .unwrap();
    for product in uzbek_products().iter().take(3) {
        inventory
            .receive_stock(ReceiveStockRequest {
                product: format!("products/{product}"),
                warehouse: "warehouses/sh-bonded".into(),
                quantity: 100,
                request_id: format!("receipt-{product}"),
                reference: String::new(),
            })
            .await
            .unwrap();
    }
    Festival { running, clock, scheduling, inventory }
}

pub fn uzbek_products() -> Vec<String> {
    let dataset =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../crates/caravan/data/products.jsonl")).unwrap();
    dataset
        .lines()
        .filter_map(|l| l.split("\"id\":\"").nth(1).and_then(|rest| rest.split('"').next()))
        .filter(|id| id.starts_with("uz-"))
        .take(12)
        .map(str::to_owned)
        .collect()
}

pub fn show(host: &str, from: f64, to: f64, offers: &[(&str, i64)]) -> Show {
    Show {
        campaign: "campaigns/nianhuo-2022".into(),
        channel: "channels/hema-sco".into(),
        host: format!("hosts/{host}"),
        title: Some(LocalizedText { en: "Uzbekistan on Hema".into(), ..Default::default() }),
        start_time: Some(timestamp_from_micros(at(from))),
        end_time: Some(timestamp_from_micros(at(to))),
        offers: offers
            .iter()
            .enumerate()
            .map(|(i, (product, quantity))| Offer {
                product: format!("products/{product}"),
                show_price: Some(Money { currency_code: "CNY".into(), minor_units: 2990 }),
                allocated_quantity: *quantity,
                per_buyer_limit: 2,
                display_order: i32::try_from(i).unwrap(),
            })
            .collect(),
        ..Default::default()
    }
}

pub fn create(id: &str, show: Show) -> CreateShowRequest {
    CreateShowRequest { show: Some(show), show_id: id.into(), request_id: String::new() }
}
