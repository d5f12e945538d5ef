//! The access table: every RPC of every service, and the kinds of caller
//! allowed to call it. **This is the one place roles are declared.** A method
//! missing here is refused for everyone (deny by default), and a unit test
//! fails the build's tests when a method of the contracts has no entry.
//!
//! Partners read the catalog, the schedule and stock, watch live streams, and
//! place, read, pay and cancel their own orders (handlers scope them to their
//! partner); operators manage catalog, stock, campaigns, channels, hosts and
//! shows and read everything; services call the internal RPCs and the reads
//! the call graph needs.

use super::Kind::{self, Operator as O, Partner as P, Service as S};

/// `(full method name, kinds allowed)`.
pub const TABLE: &[(&str, &[Kind])] = &[
    // catalog
    ("caravan.catalog.v1.CatalogService/GetCountry", &[P, O, S]),
    ("caravan.catalog.v1.CatalogService/ListCountries", &[P, O, S]),
    ("caravan.catalog.v1.CatalogService/GetProduct", &[P, O, S]),
    ("caravan.catalog.v1.CatalogService/BatchGetProducts", &[P, O, S]),
    ("caravan.catalog.v1.CatalogService/ListProducts", &[P, O, S]),
    ("caravan.catalog.v1.CatalogService/CreateProduct", &[O]),
    ("caravan.catalog.v1.CatalogService/UpdateProduct", &[O]),
    ("caravan.catalog.v1.CatalogService/ActivateProduct", &[O]),
    ("caravan.catalog.v1.CatalogService/RetireProduct", &[O]),
    ("caravan.catalog.v1.CatalogService/ImportProducts", &[O]),
    // scheduling
    ("caravan.scheduling.v1.SchedulingService/CreateCampaign", &[O]),
    ("caravan.scheduling.v1.SchedulingService/GetCampaign", &[P, O, S]),
    ("caravan.scheduling.v1.SchedulingService/ListCampaigns", &[P, O, S]),
    ("caravan.scheduling.v1.SchedulingService/UpdateCampaign", &[O]),
    ("caravan.scheduling.v1.SchedulingService/CreateChannel", &[O]),
    ("caravan.scheduling.v1.SchedulingService/GetChannel", &[P, O, S]),
    ("caravan.scheduling.v1.SchedulingService/ListChannels", &[P, O, S]),
    ("caravan.scheduling.v1.SchedulingService/UpdateChannel", &[O]),
    ("caravan.scheduling.v1.SchedulingService/CreateHost", &[O]),
    ("caravan.scheduling.v1.SchedulingService/GetHost", &[P, O, S]),
    ("caravan.scheduling.v1.SchedulingService/ListHosts", &[P, O, S]),
    ("caravan.scheduling.v1.SchedulingService/UpdateHost", &[O]),
    ("caravan.scheduling.v1.SchedulingService/CreateShow", &[O]),
    ("caravan.scheduling.v1.SchedulingService/GetShow", &[P, O, S]),
    ("caravan.scheduling.v1.SchedulingService/ListShows", &[P, O, S]),
    ("caravan.scheduling.v1.SchedulingService/UpdateShow", &[O]),
    ("caravan.scheduling.v1.SchedulingService/StartShow", &[O]),
    ("caravan.scheduling.v1.SchedulingService/EndShow", &[O]),
    ("caravan.scheduling.v1.SchedulingService/CancelShow", &[O]),
    ("caravan.scheduling.v1.SchedulingService/PinProduct", &[O]),
    ("caravan.scheduling.v1.SchedulingService/GetLiveOffers", &[P, O, S]),
    ("caravan.scheduling.v1.SchedulingService/WatchShow", &[P, O]),
    // inventory
    ("caravan.inventory.v1.InventoryService/CreateWarehouse", &[O]),
    ("caravan.inventory.v1.InventoryService/GetWarehouse", &[O, S]),
    ("caravan.inventory.v1.InventoryService/ListWarehouses", &[O, S]),
    ("caravan.inventory.v1.InventoryService/ReceiveStock", &[O]),
    ("caravan.inventory.v1.InventoryService/AdjustStock", &[O]),
    ("caravan.inventory.v1.InventoryService/GetStock", &[P, O, S]),
    ("caravan.inventory.v1.InventoryService/BatchGetStock", &[P, O, S]),
    ("caravan.inventory.v1.InventoryService/ListStock", &[P, O, S]),
    ("caravan.inventory.v1.InventoryService/ListMovements", &[O]),
    ("caravan.inventory.v1.InventoryService/AllocateStock", &[S]),
    ("caravan.inventory.v1.InventoryService/ReturnAllocation", &[S]),
    ("caravan.inventory.v1.InventoryService/GetAllocation", &[O, S]),
    ("caravan.inventory.v1.InventoryService/ReserveStock", &[S]),
    ("caravan.inventory.v1.InventoryService/CommitReservation", &[S]),
    ("caravan.inventory.v1.InventoryService/ReleaseReservation", &[S]),
    ("caravan.inventory.v1.InventoryService/GetReservation", &[O, S]),
    ("caravan.inventory.v1.InventoryService/WatchStock", &[P, O, S]),
    // orders
    ("caravan.orders.v1.OrdersService/PlaceOrder", &[P]),
    ("caravan.orders.v1.OrdersService/GetOrder", &[P, O]),
    ("caravan.orders.v1.OrdersService/ListOrders", &[P, O]),
    ("caravan.orders.v1.OrdersService/ConfirmPayment", &[P]),
    ("caravan.orders.v1.OrdersService/CancelOrder", &[P]),
    ("caravan.orders.v1.OrdersService/GetShowSalesReport", &[P, O]),
    // the load generator's echo baseline, served only by `caravan loadgen`
    ("caravan.loadgen.v1.EchoService/Echo", &[P, O, S]),
];

/// The kinds allowed to call `method` (`pkg.Service/Method`); `None` for a
/// method the table does not know, which nobody may call.
pub fn allowed(method: &str) -> Option<&'static [Kind]> {
    TABLE.iter().find(|(name, _)| *name == method).map(|(_, kinds)| *kinds)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use prost::Message as _;

    use super::*;

    /// Every method of the four services, from the compiled contracts.
    fn contract_methods() -> BTreeSet<String> {
        let fds = prost_types::FileDescriptorSet::decode(caravan_proto::FILE_DESCRIPTOR_SET).unwrap();
        let mut methods = BTreeSet::new();
        for file in &fds.file {
            for service in &file.service {
                let full = format!("{}.{}", file.package(), service.name());
                if caravan_proto::SERVICE_NAMES.contains(&full.as_str()) || full == "caravan.loadgen.v1.EchoService" {
                    for method in &service.method {
                        methods.insert(format!("{full}/{}", method.name()));
                    }
                }
            }
        }
        methods
    }

    #[test]
    fn every_rpc_of_the_contracts_has_exactly_one_entry() {
        let declared: Vec<&str> = TABLE.iter().map(|(name, _)| *name).collect();
        let unique: BTreeSet<&str> = declared.iter().copied().collect();
        assert_eq!(unique.len(), declared.len(), "a method is declared twice");
        let contracts = contract_methods();
        let missing: Vec<_> = contracts.iter().filter(|m| !unique.contains(m.as_str())).collect();
        assert!(missing.is_empty(), "RPCs without roles in the access table: {missing:?}");
        let unknown: Vec<_> = unique.iter().filter(|m| !contracts.contains(**m)).collect();
        assert!(unknown.is_empty(), "access entries for RPCs that do not exist: {unknown:?}");
        assert!(TABLE.iter().all(|(_, kinds)| !kinds.is_empty()));
    }

    #[test]
    fn internal_rpcs_are_for_services_only_and_orders_for_partners() {
        for method in ["ReserveStock", "CommitReservation", "ReleaseReservation", "AllocateStock", "ReturnAllocation"] {
            assert_eq!(allowed(&format!("caravan.inventory.v1.InventoryService/{method}")), Some(&[S][..]));
        }
        assert_eq!(allowed("caravan.orders.v1.OrdersService/PlaceOrder"), Some(&[P][..]));
        assert_eq!(allowed("caravan.orders.v1.OrdersService/Nope"), None);
    }
}
