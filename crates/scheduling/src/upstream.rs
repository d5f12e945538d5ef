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
    inventory::v1::inventory_service_client::InventoryServiceClient,
};
use tonic::Code;

use crate::{Migrator, domain::CountryName, error::Error};

/// Deadline of a catalog read when the caller sent none.
const CATALOG_READ_DEADLINE: Duration = Duration::from_secs(2);
/// Deadline of an inventory call when the caller sent none.
const INVENTORY_DEADLINE: Duration = Duration::from_secs(5);

/// Channels to catalog and inventory, shared by all handlers.
#[derive(Debug, Clone)]
pub struct Upstream {
    catalog: CatalogServiceClient<TracedChannel>,
    // Line-up allocation arrives with the scheduling issue.
    #[allow(dead_code)]
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
            .idempotent(|| {
                let mut client = self.catalog.clone();
                let request = request.clone();
                async move { client.get_country(request).await }
            })
            .await;
        match answer {
            Ok(_) => Ok(true),
            Err(status) if status.code() == Code::NotFound => Ok(false),
            Err(status) => Err(Error::Upstream { service: "catalog", status }),
        }
    }
}
