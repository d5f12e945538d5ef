//! Clients of the services scheduling calls: catalog (products and countries
//! exist) and inventory (show allocations).

use std::time::Duration;

use caravan_platform::{
    app::ServiceHost,
    client::{Retry, TracedChannel},
    config::ServiceKind,
};
use caravan_proto::{
    catalog::v1::{self as catalog, catalog_service_client::CatalogServiceClient},
    inventory::v1::{self as inventory, inventory_service_client::InventoryServiceClient},
};
use tonic::Code;

use crate::{
    Migrator,
    domain::{CountryName, Offer},
    error::Error,
};

/// Deadline of a catalog read when the caller sent none.
const CATALOG_READ_DEADLINE: Duration = Duration::from_secs(2);
/// Deadline of an inventory call when the caller sent none.
const INVENTORY_DEADLINE: Duration = Duration::from_secs(5);

/// Channels to catalog and inventory, shared by all handlers.
#[derive(Debug, Clone)]
pub struct Upstream {
    catalog: CatalogServiceClient<TracedChannel>,
    inventory: InventoryServiceClient<TracedChannel>,
    retry: Retry,
}

impl Upstream {
    /// Lazily connected channels to the configured addresses.
    pub fn connect(host: &ServiceHost<Migrator>) -> anyhow::Result<Self> {
        Ok(Upstream {
            catalog: CatalogServiceClient::new(host.channel(ServiceKind::Catalog, CATALOG_READ_DEADLINE)?),
            inventory: InventoryServiceClient::new(host.channel(ServiceKind::Inventory, INVENTORY_DEADLINE)?),
            retry: Retry::default(),
        })
    }

    /// Whether the catalog knows the country. A read: retried on `UNAVAILABLE`.
    pub async fn country_exists(&self, country: &CountryName) -> Result<bool, Error> {
        let request = catalog::GetCountryRequest { name: country.to_string(), as_of: None };
        let answer = self
            .retry
            .call(&self.catalog, &request, |mut client, request| async move { client.get_country(request).await })
            .await;
        match answer {
            Ok(_) => Ok(true),
            Err(status) if status.code() == Code::NotFound => Ok(false),
            Err(status) => Err(Error::Upstream { service: "catalog", status }),
        }
    }

    /// Checks with catalog (one batch call) that every offered product exists
    /// and is ACTIVE; the first that is not is named in the error.
    pub async fn check_products(&self, offers: &[Offer]) -> Result<(), Error> {
        if offers.is_empty() {
            return Ok(());
        }
        let request = catalog::BatchGetProductsRequest {
            names: offers.iter().map(|o| format!("products/{}", o.product_id)).collect(),
        };
        let answer = self
            .retry
            .call(
                &self.catalog,
                &request,
                |mut client, request| async move { client.batch_get_products(request).await },
            )
            .await
            .map_err(|status| Error::Upstream { service: "catalog", status })?
            .into_inner();
        for (i, offer) in offers.iter().enumerate() {
            let name = format!("products/{}", offer.product_id);
            match answer.products.iter().find(|p| p.name == name) {
                None => {
                    return Err(Error::InvalidOffer { index: i, message: format!("{name} is not in the catalog") });
                }
                Some(product) if product.state != catalog::product::State::Active as i32 => {
                    return Err(Error::InvalidOffer {
                        index: i,
                        message: format!("{name} is not ACTIVE in the catalog and cannot be offered"),
                    });
                }
                Some(_) => {}
            }
        }
        Ok(())
    }

    /// What inventory holds for the show, per product id (empty when it has
    /// no allocation).
    pub async fn allocated(&self, show: &str) -> Result<Vec<(String, i64)>, Error> {
        let request = inventory::GetAllocationRequest { name: format!("allocations/{show}") };
        let answer = self
            .retry
            .call(&self.inventory, &request, |mut client, request| async move { client.get_allocation(request).await })
            .await;
        match answer {
            Ok(allocation) => Ok(allocation
                .into_inner()
                .lines
                .into_iter()
                .filter_map(|l| l.product.strip_prefix("products/").map(|p| (p.to_owned(), l.quantity)))
                .collect()),
            Err(status) if status.code() == Code::NotFound => Ok(Vec::new()),
            Err(status) => Err(Error::Upstream { service: "inventory", status }),
        }
    }

    /// Makes inventory hold exactly the line-up for the show: each offer's
    /// quantity, and nothing of products no longer on it (targets, so
    /// repeating it is harmless). Inventory's refusals (`INSUFFICIENT_STOCK`
    /// naming the product, a closed allocation) come back as they are.
    pub async fn allocate(&self, show: &str, offers: &[Offer]) -> Result<(), Error> {
        let mut lines: Vec<inventory::AllocationRequestLine> = offers
            .iter()
            .map(|o| inventory::AllocationRequestLine {
                product: format!("products/{}", o.product_id),
                quantity: o.allocated_quantity,
            })
            .collect();
        for (product, quantity) in self.allocated(show).await? {
            if quantity > 0 && !offers.iter().any(|o| o.product_id == product) {
                lines.push(inventory::AllocationRequestLine { product: format!("products/{product}"), quantity: 0 });
            }
        }
        if lines.is_empty() {
            return Ok(());
        }
        let request =
            inventory::AllocateStockRequest { show: format!("shows/{show}"), lines, request_id: String::new() };
        let answer = self
            .retry
            .call(&self.inventory, &request, |mut client, request| async move { client.allocate_stock(request).await })
            .await;
        match answer {
            Ok(_) => Ok(()),
            Err(status) if status.code() == Code::FailedPrecondition => {
                Err(Error::Refused { service: "inventory", status })
            }
            Err(status) => Err(Error::Upstream { service: "inventory", status }),
        }
    }

    /// Closes the show's allocation in inventory (unsold stock goes back;
    /// repeating it is harmless).
    pub async fn return_allocation(&self, show: &str) -> Result<(), Error> {
        let request = inventory::ReturnAllocationRequest { show: format!("shows/{show}"), request_id: String::new() };
        self.retry
            .call(
                &self.inventory,
                &request,
                |mut client, request| async move { client.return_allocation(request).await },
            )
            .await
            .map(drop)
            .map_err(|status| Error::Upstream { service: "inventory", status })
    }
}
