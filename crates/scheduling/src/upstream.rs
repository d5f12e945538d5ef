//! Clients of the services scheduling calls: catalog (products and countries
//! exist) and inventory (show allocations).

use std::time::Duration;

use caravan_platform::{
    client,
    config::{ServiceConfig, ServiceKind},
};
use caravan_proto::{
    catalog::v1::{self as catalog, catalog_service_client::CatalogServiceClient},
    inventory::v1::inventory_service_client::InventoryServiceClient,
};
use tonic::{Code, transport::Channel};

use crate::{domain::CountryName, error::Error};

/// Deadline of a catalog read when the caller sent none.
const CATALOG_READ_DEADLINE: Duration = Duration::from_secs(2);

/// Channels to catalog and inventory, shared by all handlers.
#[derive(Debug, Clone)]
pub struct Upstream {
    catalog: CatalogServiceClient<Channel>,
    // Line-up allocation arrives with the scheduling issue.
    #[allow(dead_code)]
    inventory: InventoryServiceClient<Channel>,
}

impl Upstream {
    /// Lazily connected channels to the configured addresses.
    pub fn connect(config: &ServiceConfig) -> anyhow::Result<Self> {
        let catalog = client::channel(config.upstream(ServiceKind::Catalog), config.connect_timeout)?;
        let inventory = client::channel(config.upstream(ServiceKind::Inventory), config.connect_timeout)?;
        Ok(Upstream { catalog: CatalogServiceClient::new(catalog), inventory: InventoryServiceClient::new(inventory) })
    }

    /// Whether the catalog knows the country.
    pub async fn country_exists(&self, country: &CountryName) -> Result<bool, Error> {
        let mut request = tonic::Request::new(catalog::GetCountryRequest { name: country.to_string(), as_of: None });
        request.set_timeout(CATALOG_READ_DEADLINE);
        match self.catalog.clone().get_country(request).await {
            Ok(_) => Ok(true),
            Err(status) if status.code() == Code::NotFound => Ok(false),
            Err(status) => Err(Error::Upstream { service: "catalog", status }),
        }
    }
}
