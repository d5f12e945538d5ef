//! gRPC handlers: protobuf in, domain values through the store, protobuf out.
//! The only module of the crate that sees prost types.

use caravan_platform::{
    error::{FieldViolations, invalid_argument},
    idempotency::{ANONYMOUS, Idempotency, Scope},
    paging,
    resource::{self, ID_RULE},
    time::SharedClock,
};
use caravan_proto::{
    inventory::v1::{self as pb, inventory_service_server::InventoryService},
    timestamp_from_micros,
};
use futures::stream::BoxStream;
use tonic::{Request, Response, Status};

use crate::{
    domain::{Warehouse, WarehouseFields},
    store::Store,
};

/// Default and largest page of list methods.
const PAGE: (u64, u64) = (50, 500);

/// Inventory's gRPC service.
#[derive(Debug, Clone)]
pub struct InventoryApi {
    store: Store,
    idempotency: Idempotency,
    clock: SharedClock,
}

impl InventoryApi {
    /// Handlers over `store`, with request ids kept by `idempotency`, reading
    /// the time from `clock`.
    pub fn new(store: Store, idempotency: Idempotency, clock: SharedClock) -> Self {
        InventoryApi { store, idempotency, clock }
    }

    /// CreateWarehouse itself, run at most once per request id.
    async fn create_warehouse_once(&self, request: pb::CreateWarehouseRequest) -> Result<pb::Warehouse, Status> {
        let pb::CreateWarehouseRequest { warehouse, warehouse_id, request_id: _ } = request;
        let mut violations = FieldViolations::new();
        violations.check(resource::valid_id(&warehouse_id), "warehouse_id", ID_RULE);
        let fields = match warehouse {
            None => {
                violations.add("warehouse", "is required");
                None
            }
            Some(pb::Warehouse { name: _, display_name, location, priority, create_time: _ }) => {
                WarehouseFields::parse(display_name, location, priority)
                    .map_err(|problems| {
                        for (field, problem) in problems {
                            violations.add(format!("warehouse.{field}"), problem);
                        }
                    })
                    .ok()
            }
        };
        violations.into_result()?;
        let Some(fields) = fields else {
            return Err(invalid_argument("warehouse", "is invalid"));
        };
        let warehouse = self.store.insert_warehouse(&warehouse_id, &fields, self.clock.now()).await?;
        Ok(warehouse_to_pb(warehouse))
    }
}

const CREATE_WAREHOUSE: &str = "caravan.inventory.v1.InventoryService/CreateWarehouse";

/// Stock, allocations and reservations arrive with the inventory issue; until
/// then their RPCs answer UNIMPLEMENTED rather than pretend.
fn not_yet(method: &str) -> Status {
    Status::unimplemented(format!("{method} is not available yet in this version of caravan"))
}

#[tonic::async_trait]
impl InventoryService for InventoryApi {
    type WatchStockStream = BoxStream<'static, Result<pb::WatchStockResponse, Status>>;

    #[tracing::instrument(level = "debug", skip_all, fields(warehouse_id = %request.get_ref().warehouse_id))]
    async fn create_warehouse(
        &self,
        request: Request<pb::CreateWarehouseRequest>,
    ) -> Result<Response<pb::Warehouse>, Status> {
        let request = request.into_inner();
        let request_id = request.request_id.clone();
        let scope = Scope { principal: ANONYMOUS, method: CREATE_WAREHOUSE, request_id: &request_id };
        let create = self.create_warehouse_once(request.clone());
        self.idempotency.run(scope, &request, || create).await.map(Response::new)
    }

    #[tracing::instrument(level = "debug", skip_all, fields(name = %request.get_ref().name))]
    async fn get_warehouse(
        &self,
        request: Request<pb::GetWarehouseRequest>,
    ) -> Result<Response<pb::Warehouse>, Status> {
        let pb::GetWarehouseRequest { name } = request.into_inner();
        let id = resource::parse_name(&name, "warehouses").map_err(|e| invalid_argument("name", e))?;
        Ok(Response::new(warehouse_to_pb(self.store.warehouse(id).await?)))
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn list_warehouses(
        &self,
        request: Request<pb::ListWarehousesRequest>,
    ) -> Result<Response<pb::ListWarehousesResponse>, Status> {
        let pb::ListWarehousesRequest { page_size, page_token } = request.into_inner();
        let size = paging::page_size(page_size, PAGE.0, PAGE.1)?;
        let after = match paging::decode_token(&page_token)? {
            None => None,
            Some(key) => Some(
                parse_warehouse_key(&key)
                    .ok_or_else(|| invalid_argument("page_token", "not a token returned by ListWarehouses"))?,
            ),
        };
        let mut warehouses = self.store.warehouses(after.as_ref().map(|(p, id)| (*p, id.as_str())), size + 1).await?;
        let next_page_token = if warehouses.len() as u64 > size {
            warehouses.truncate(usize::try_from(size).unwrap_or(usize::MAX));
            warehouses
                .last()
                .map(|w| paging::encode_token(&format!("{}/{}", w.fields.priority, w.id)))
                .unwrap_or_default()
        } else {
            String::new()
        };
        Ok(Response::new(pb::ListWarehousesResponse {
            warehouses: warehouses.into_iter().map(warehouse_to_pb).collect(),
            next_page_token,
        }))
    }

    async fn receive_stock(&self, _: Request<pb::ReceiveStockRequest>) -> Result<Response<pb::StockLevel>, Status> {
        Err(not_yet("ReceiveStock"))
    }

    async fn adjust_stock(&self, _: Request<pb::AdjustStockRequest>) -> Result<Response<pb::StockLevel>, Status> {
        Err(not_yet("AdjustStock"))
    }

    async fn get_stock(&self, _: Request<pb::GetStockRequest>) -> Result<Response<pb::StockLevel>, Status> {
        Err(not_yet("GetStock"))
    }

    async fn batch_get_stock(
        &self,
        _: Request<pb::BatchGetStockRequest>,
    ) -> Result<Response<pb::BatchGetStockResponse>, Status> {
        Err(not_yet("BatchGetStock"))
    }

    async fn list_stock(&self, _: Request<pb::ListStockRequest>) -> Result<Response<pb::ListStockResponse>, Status> {
        Err(not_yet("ListStock"))
    }

    async fn list_movements(
        &self,
        _: Request<pb::ListMovementsRequest>,
    ) -> Result<Response<pb::ListMovementsResponse>, Status> {
        Err(not_yet("ListMovements"))
    }

    async fn allocate_stock(&self, _: Request<pb::AllocateStockRequest>) -> Result<Response<pb::Allocation>, Status> {
        Err(not_yet("AllocateStock"))
    }

    async fn return_allocation(
        &self,
        _: Request<pb::ReturnAllocationRequest>,
    ) -> Result<Response<pb::Allocation>, Status> {
        Err(not_yet("ReturnAllocation"))
    }

    async fn get_allocation(&self, _: Request<pb::GetAllocationRequest>) -> Result<Response<pb::Allocation>, Status> {
        Err(not_yet("GetAllocation"))
    }

    async fn reserve_stock(&self, _: Request<pb::ReserveStockRequest>) -> Result<Response<pb::Reservation>, Status> {
        Err(not_yet("ReserveStock"))
    }

    async fn commit_reservation(
        &self,
        _: Request<pb::CommitReservationRequest>,
    ) -> Result<Response<pb::Reservation>, Status> {
        Err(not_yet("CommitReservation"))
    }

    async fn release_reservation(
        &self,
        _: Request<pb::ReleaseReservationRequest>,
    ) -> Result<Response<pb::Reservation>, Status> {
        Err(not_yet("ReleaseReservation"))
    }

    async fn get_reservation(
        &self,
        _: Request<pb::GetReservationRequest>,
    ) -> Result<Response<pb::Reservation>, Status> {
        Err(not_yet("GetReservation"))
    }

    async fn watch_stock(&self, _: Request<pb::WatchStockRequest>) -> Result<Response<Self::WatchStockStream>, Status> {
        Err(not_yet("WatchStock"))
    }
}

/// `{priority}/{id}`, the key of a ListWarehouses page token.
fn parse_warehouse_key(key: &str) -> Option<(i32, String)> {
    let (priority, id) = key.split_once('/')?;
    Some((priority.parse().ok()?, id.to_owned()))
}

fn warehouse_to_pb(warehouse: Warehouse) -> pb::Warehouse {
    let Warehouse { id, fields: WarehouseFields { display_name, location, priority }, create_time } = warehouse;
    pb::Warehouse {
        name: format!("warehouses/{id}"),
        display_name,
        location,
        priority,
        create_time: Some(timestamp_from_micros(create_time.0)),
    }
}
