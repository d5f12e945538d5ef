//! Clients of the services orders calls: catalog (products and list prices),
//! scheduling (is the show live, its offers) and inventory (reservations).

use std::time::Duration;

use caravan_platform::{
    app::ServiceHost,
    client::{Retry, TracedChannel},
    config::ServiceKind,
    error::Reason,
};
use caravan_proto::{
    catalog::v1::{self as catalog, catalog_service_client::CatalogServiceClient},
    inventory::v1::{self as inventory, inventory_service_client::InventoryServiceClient},
    scheduling::v1::{self as scheduling, scheduling_service_client::SchedulingServiceClient},
};
use tonic::{Code, Status};

use crate::{Migrator, domain::Money};

/// Deadline of a read when the caller sent none.
const READ_DEADLINE: Duration = Duration::from_secs(2);
/// Deadline of an inventory call when the caller sent none.
const INVENTORY_DEADLINE: Duration = Duration::from_secs(5);

/// Deadline of a WatchStock stream: past inventory's own stream lifetime.
const WATCH_DEADLINE: Duration = Duration::from_secs(20 * 60);

/// What a callee answered, sorted for the saga.
#[derive(Debug)]
pub enum Refusal {
    /// A deterministic refusal the partner must see as it is (e.g.
    /// inventory's `INSUFFICIENT_STOCK`, with its details).
    Final(Status),
    /// Transient (`UNAVAILABLE`, deadline): the order stays PENDING and a
    /// retry with the same request id resumes it.
    Transient(Status),
}

impl Refusal {
    fn of(status: Status) -> Refusal {
        match status.code() {
            Code::Unavailable
            | Code::DeadlineExceeded
            | Code::ResourceExhausted
            | Code::Aborted
            | Code::Internal
            | Code::Unknown
            | Code::Cancelled => Refusal::Transient(status),
            _ => Refusal::Final(status),
        }
    }
}

/// A product as orders needs it.
#[derive(Debug, Clone)]
pub struct Priced {
    /// Product id.
    pub id: String,
    /// Whether it can be sold.
    pub active: bool,
    /// List price.
    pub price: Money,
    /// Origin country (ISO 3166-1 alpha-2).
    pub country: String,
}

/// A show as GetLiveOffers tells it.
#[derive(Debug, Clone)]
pub struct LiveShow {
    /// Whether it is LIVE now.
    pub live: bool,
    /// The partner whose channel carries it.
    pub partner: String,
    /// The asked offers that are on its line-up.
    pub offers: Vec<LiveOffer>,
}

/// An offer of a live show as orders needs it.
#[derive(Debug, Clone)]
pub struct LiveOffer {
    /// Product id.
    pub product: String,
    /// Show price.
    pub price: Money,
    /// Most units per buyer (0: no limit).
    pub per_buyer_limit: i64,
}

/// What is left of a product in a show's allocation, as WatchStock says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShowStock {
    /// Product id.
    pub product: String,
    /// Units the show can still sell.
    pub available: i64,
    /// The allocation is closed (the show ended).
    pub closed: bool,
    /// The line's version: grows with every change.
    pub version: i64,
}

/// Channels to catalog, scheduling and inventory, shared by all handlers.
#[derive(Debug, Clone)]
pub struct Upstream {
    catalog: CatalogServiceClient<TracedChannel>,
    scheduling: SchedulingServiceClient<TracedChannel>,
    inventory: InventoryServiceClient<TracedChannel>,
    retry: Retry,
}

impl Upstream {
    /// Lazily connected channels to the configured addresses.
    pub fn connect(host: &ServiceHost<Migrator>) -> anyhow::Result<Self> {
        Ok(Upstream {
            catalog: CatalogServiceClient::new(host.channel(ServiceKind::Catalog, READ_DEADLINE)?),
            scheduling: SchedulingServiceClient::new(host.channel(ServiceKind::Scheduling, READ_DEADLINE)?),
            inventory: InventoryServiceClient::new(host.channel(ServiceKind::Inventory, INVENTORY_DEADLINE)?),
            retry: Retry::default(),
        })
    }

    /// The products (one batch call), in the order asked; `None` for one the
    /// catalog does not have.
    pub async fn products(&self, ids: &[String]) -> Result<Vec<Option<Priced>>, Refusal> {
        let request =
            catalog::BatchGetProductsRequest { names: ids.iter().map(|id| format!("products/{id}")).collect() };
        let answer = self
            .retry
            .call(
                &self.catalog,
                &request,
                |mut client, request| async move { client.batch_get_products(request).await },
            )
            .await
            .map_err(Refusal::of)?
            .into_inner();
        Ok(ids
            .iter()
            .map(|id| {
                let name = format!("products/{id}");
                answer.products.iter().find(|p| p.name == name).map(|p| Priced {
                    id: id.clone(),
                    active: p.state == catalog::product::State::Active as i32,
                    price: p
                        .list_price
                        .as_ref()
                        .map(|m| Money { currency: m.currency_code.clone(), minor: m.minor_units })
                        .unwrap_or(Money { currency: String::new(), minor: 0 }),
                    country: p.country.strip_prefix("countries/").unwrap_or(&p.country).to_owned(),
                })
            })
            .collect())
    }

    /// Whether the show is LIVE, and its offers of `products`.
    pub async fn live_offers(&self, show: &str, products: &[String]) -> Result<LiveShow, Refusal> {
        let request = scheduling::GetLiveOffersRequest {
            show: format!("shows/{show}"),
            products: products.iter().map(|p| format!("products/{p}")).collect(),
        };
        let answer = self
            .retry
            .call(
                &self.scheduling,
                &request,
                |mut client, request| async move { client.get_live_offers(request).await },
            )
            .await
            .map_err(Refusal::of)?
            .into_inner();
        let live = answer.state == scheduling::show::State::Live as i32;
        let offers = answer
            .offers
            .into_iter()
            .filter_map(|o| {
                let product = o.product.strip_prefix("products/")?.to_owned();
                let price = o.show_price.map(|m| Money { currency: m.currency_code, minor: m.minor_units })?;
                Some(LiveOffer { product, price, per_buyer_limit: o.per_buyer_limit })
            })
            .collect();
        Ok(LiveShow { live, partner: answer.partner, offers })
    }

    /// Holds the lines' stock for the order (reservation id = order id;
    /// idempotent, so retried on `UNAVAILABLE`); returns its expiry.
    pub async fn reserve(
        &self,
        order: &str,
        show: Option<&str>,
        lines: &[(String, i64)],
        ttl: Duration,
    ) -> Result<Option<prost_types::Timestamp>, Refusal> {
        let request = inventory::ReserveStockRequest {
            reservation_id: order.to_owned(),
            show: show.map(|s| format!("shows/{s}")).unwrap_or_default(),
            lines: lines
                .iter()
                .map(|(p, q)| inventory::ReservationRequestLine { product: format!("products/{p}"), quantity: *q })
                .collect(),
            ttl_seconds: i32::try_from(ttl.as_secs()).unwrap_or(i32::MAX),
            request_id: String::new(),
        };
        let reservation = self
            .retry
            .call(&self.inventory, &request, |mut client, request| async move { client.reserve_stock(request).await })
            .await
            .map_err(Refusal::of)?
            .into_inner();
        if reservation.state != inventory::reservation::State::Active as i32 {
            // Released by recovery, or expired, before the order was
            // accepted: the order cannot be accepted any more.
            return Err(Refusal::Final(caravan_platform::error::failed_precondition(
                Reason::OrderRejected,
                &format!("orders/{order}"),
                format!("orders/{order} was rejected: its stock hold ended before it was accepted"),
                std::collections::HashMap::new(),
            )));
        }
        Ok(reservation.expire_time)
    }

    /// Streams what is left of `products` (ids) in a show's allocation
    /// (WatchStock): a snapshot, then every change; `cursors` resume where
    /// an earlier stream left off. The stream runs until inventory ends it
    /// (its lifetime, a drain) or the connection breaks.
    pub async fn watch_show(
        &self,
        show: &str,
        products: &[String],
        cursors: &[(String, i64)],
    ) -> Result<futures::stream::BoxStream<'static, Result<ShowStock, Status>>, Status> {
        use futures::StreamExt as _;
        let mut request = tonic::Request::new(inventory::WatchStockRequest {
            products: products.iter().map(|p| format!("products/{p}")).collect(),
            cursors: cursors
                .iter()
                .map(|(p, version)| inventory::StockCursor { product: format!("products/{p}"), version: *version })
                .collect(),
            show: format!("shows/{show}"),
        });
        // Longer than inventory keeps a stream open: it ends the stream, not
        // the deadline.
        request.set_timeout(WATCH_DEADLINE);
        let mut client = self.inventory.clone();
        let stream = client.watch_stock(request).await?.into_inner();
        Ok(stream
            .map(|message| {
                let line = message?
                    .allocation_line
                    .ok_or_else(|| Status::internal("a WatchStock message of a show without its allocation line"))?;
                Ok(ShowStock {
                    product: line.product.strip_prefix("products/").unwrap_or(&line.product).to_owned(),
                    available: line.available,
                    closed: line.closed,
                    version: line.version,
                })
            })
            .boxed())
    }

    /// Sells the order's reservation (idempotent).
    pub async fn commit(&self, order: &str) -> Result<(), Refusal> {
        let request =
            inventory::CommitReservationRequest { name: format!("reservations/{order}"), request_id: String::new() };
        self.retry
            .call(
                &self.inventory,
                &request,
                |mut client, request| async move { client.commit_reservation(request).await },
            )
            .await
            .map(drop)
            .map_err(Refusal::of)
    }

    /// Gives the order's reservation back (idempotent; a tombstone if it was
    /// never made).
    pub async fn release(&self, order: &str) -> Result<(), Refusal> {
        let request =
            inventory::ReleaseReservationRequest { name: format!("reservations/{order}"), request_id: String::new() };
        self.retry
            .call(
                &self.inventory,
                &request,
                |mut client, request| async move { client.release_reservation(request).await },
            )
            .await
            .map(drop)
            .map_err(Refusal::of)
    }
}
