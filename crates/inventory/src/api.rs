//! gRPC handlers: protobuf in, domain values through the store, protobuf out.
//! The only module of the crate that sees prost types.

use std::{collections::HashMap, time::Duration};

use caravan_platform::{
    auth::principal,
    error::{FieldViolations, invalid_argument},
    idempotency::{ANONYMOUS, Idempotency, Scope},
    paging,
    resource::{self, ID_RULE},
    stream::{Delivery, Feed as _, Hub},
    telemetry::current_traceparent,
    time::SharedClock,
};
use caravan_proto::{
    inventory::v1::{self as pb, inventory_service_server::InventoryService},
    timestamp_from_micros,
};
use futures::{StreamExt as _, stream::BoxStream};
use tonic::{Request, Response, Status};

use crate::{
    batcher::Batcher,
    domain::{
        self, Allocation, AllocationLine, AllocationState, Movement, MovementKind, Reservation, ReservationState,
        ReserveRequest, StockLevel, Warehouse, WarehouseFields,
    },
    store::{BatchItem, Batched, Correction, Ending, Store},
    watch::{StockFeed, WatchKey, Watched},
};

/// Default and largest page of list methods.
const PAGE: (u64, u64) = (50, 500);
/// Default and largest page of ListMovements.
const MOVEMENT_PAGE: (u64, u64) = (100, 1000);
/// Most names in one BatchGetStock.
const MAX_BATCH: usize = 1000;
/// Longest free-text reference or note.
const MAX_NOTE: usize = 200;

/// Inventory's gRPC service.
#[derive(Debug, Clone)]
pub struct InventoryApi {
    store: Store,
    idempotency: Idempotency,
    clock: SharedClock,
    hub: Hub<StockFeed>,
    batcher: Batcher,
}

impl InventoryApi {
    /// Handlers over `store`, with request ids kept by `idempotency`, reading
    /// the time from `clock`, streaming stock through `hub`, batching
    /// one-line reservations of a product through `batcher`.
    pub fn new(
        store: Store,
        idempotency: Idempotency,
        clock: SharedClock,
        hub: Hub<StockFeed>,
        batcher: Batcher,
    ) -> Self {
        InventoryApi { store, idempotency, clock, hub, batcher }
    }

    /// A reservation: one line through the product's batch, several alone.
    async fn reserve(&self, request: &ReserveRequest, traceparent: &str) -> Result<Reservation, Status> {
        if request.lines.len() != 1 || !self.batcher.enabled() {
            return Ok(self.store.reserve(request, traceparent, self.clock.now()).await?);
        }
        let item = BatchItem { request: request.clone(), traceparent: traceparent.to_owned() };
        match self.batcher.reserve(item).await? {
            Batched::Granted(reservation) => Ok(reservation),
            Batched::Existing => Ok(self.store.reserve(request, traceparent, self.clock.now()).await?),
            Batched::Short { requested, available } => {
                let product = request.lines.first().map(|(p, _)| p.clone()).unwrap_or_default();
                let pool = request.show_id.as_ref().map(|s| format!("shows/{s}"));
                let short = crate::error::Error::InsufficientStock { product, requested, available, pool };
                Err(self.store.explain_shortage(request, short).await.into())
            }
        }
    }

    /// Tells this replica's streams to look now rather than at the next poll
    /// (other replicas see the change at theirs).
    fn changed(&self) {
        self.hub.wake();
    }

    /// Runs a mutation at most once per `(caller, method, request_id)`.
    async fn once<Req, Resp, Fut>(
        &self,
        request: &Request<Req>,
        method: &'static str,
        request_id: &str,
        handler: impl FnOnce() -> Fut,
    ) -> Result<Resp, Status>
    where
        Req: prost::Message,
        Resp: prost::Message + Default,
        Fut: Future<Output = Result<Resp, Status>>,
    {
        self.idempotency.run_for(request, method, request_id, handler).await
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
const RECEIVE_STOCK: &str = "caravan.inventory.v1.InventoryService/ReceiveStock";
const ADJUST_STOCK: &str = "caravan.inventory.v1.InventoryService/AdjustStock";
const ALLOCATE_STOCK: &str = "caravan.inventory.v1.InventoryService/AllocateStock";
const RETURN_ALLOCATION: &str = "caravan.inventory.v1.InventoryService/ReturnAllocation";
const RESERVE_STOCK: &str = "caravan.inventory.v1.InventoryService/ReserveStock";
const COMMIT_RESERVATION: &str = "caravan.inventory.v1.InventoryService/CommitReservation";
const RELEASE_RESERVATION: &str = "caravan.inventory.v1.InventoryService/ReleaseReservation";

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
        let warehouses =
            self.store.warehouses(after.as_ref().map(|(p, id)| (*p, id.as_str())), paging::one_more(size)).await?;
        let (warehouses, next_page_token) =
            paging::page(warehouses, size, |w| paging::encode_token(&format!("{}/{}", w.fields.priority, w.id)));
        Ok(Response::new(pb::ListWarehousesResponse {
            warehouses: warehouses.into_iter().map(warehouse_to_pb).collect(),
            next_page_token,
        }))
    }

    #[tracing::instrument(level = "debug", skip_all, fields(product = %request.get_ref().product))]
    async fn receive_stock(
        &self,
        request: Request<pb::ReceiveStockRequest>,
    ) -> Result<Response<pb::StockLevel>, Status> {
        let pb::ReceiveStockRequest { product, warehouse, quantity, request_id, reference } = request.get_ref().clone();
        let mut violations = FieldViolations::new();
        let product = product_id(&mut violations, "product", &product);
        let warehouse = named_id(&mut violations, "warehouse", &warehouse, "warehouses");
        violations.check(
            (1..=domain::MAX_QUANTITY).contains(&quantity),
            "quantity",
            format!("must be between 1 and {}", domain::MAX_QUANTITY),
        );
        violations.check(
            !request_id.is_empty(),
            "request_id",
            "is required: a repeated receipt would double the stock",
        );
        check_note(&mut violations, "reference", &reference);
        violations.into_result()?;
        let caller = principal(&request)?.id.clone();
        let level = self
            .once(&request, RECEIVE_STOCK, &request_id, || async {
                let correction = Correction {
                    product: &product,
                    warehouse: &warehouse,
                    delta: quantity,
                    reason: 0,
                    request_key: &format!("receive/{caller}/{request_id}"),
                    reference: if reference.is_empty() { &request_id } else { &reference },
                };
                let level = self.store.correct(MovementKind::Receive, correction, self.clock.now()).await?;
                Ok(level_to_pb(level))
            })
            .await?;
        self.changed();
        Ok(Response::new(level))
    }

    #[tracing::instrument(level = "debug", skip_all, fields(product = %request.get_ref().product))]
    async fn adjust_stock(&self, request: Request<pb::AdjustStockRequest>) -> Result<Response<pb::StockLevel>, Status> {
        let pb::AdjustStockRequest { product, warehouse, delta, reason, request_id, note } = request.get_ref().clone();
        let mut violations = FieldViolations::new();
        let product = product_id(&mut violations, "product", &product);
        let warehouse = named_id(&mut violations, "warehouse", &warehouse, "warehouses");
        violations.check(
            delta != 0 && (-domain::MAX_QUANTITY..=domain::MAX_QUANTITY).contains(&delta),
            "delta",
            format!("must be non-zero and at most {} either way", domain::MAX_QUANTITY),
        );
        let reason = pb::AdjustmentReason::try_from(reason).unwrap_or_default();
        violations.check(reason != pb::AdjustmentReason::Unspecified, "reason", "is required (COUNT, DAMAGED, …)");
        violations.check(!request_id.is_empty(), "request_id", "is required: a repeated adjustment would apply twice");
        check_note(&mut violations, "note", &note);
        violations.into_result()?;
        let caller = principal(&request)?.id.clone();
        let level = self
            .once(&request, ADJUST_STOCK, &request_id, || async {
                let correction = Correction {
                    product: &product,
                    warehouse: &warehouse,
                    delta,
                    reason: i16::try_from(reason as i32).unwrap_or_default(),
                    request_key: &format!("adjust/{caller}/{request_id}"),
                    reference: if note.is_empty() { &request_id } else { &note },
                };
                let level = self.store.correct(MovementKind::Adjust, correction, self.clock.now()).await?;
                Ok(level_to_pb(level))
            })
            .await?;
        self.changed();
        Ok(Response::new(level))
    }

    #[tracing::instrument(level = "debug", skip_all, fields(name = %request.get_ref().name))]
    async fn get_stock(&self, request: Request<pb::GetStockRequest>) -> Result<Response<pb::StockLevel>, Status> {
        let pb::GetStockRequest { name } = request.into_inner();
        let product = resource::parse_name(&name, "stockLevels").map_err(|e| invalid_argument("name", e))?;
        let level = self.store.levels(&[product.to_owned()]).await?.pop().unwrap_or_else(|| StockLevel::empty(product));
        Ok(Response::new(level_to_pb(level)))
    }

    #[tracing::instrument(level = "debug", skip_all, fields(names = request.get_ref().names.len()))]
    async fn batch_get_stock(
        &self,
        request: Request<pb::BatchGetStockRequest>,
    ) -> Result<Response<pb::BatchGetStockResponse>, Status> {
        let pb::BatchGetStockRequest { names } = request.into_inner();
        let mut violations = FieldViolations::new();
        violations.check(!names.is_empty(), "names", "ask for at least one");
        violations.check(names.len() <= MAX_BATCH, "names", format!("at most {MAX_BATCH}"));
        let products: Vec<String> = names
            .iter()
            .enumerate()
            .map(|(i, name)| named_id(&mut violations, &format!("names[{i}]"), name, "stockLevels"))
            .collect();
        violations.into_result()?;
        let levels = self.store.levels(&products).await?;
        Ok(Response::new(pb::BatchGetStockResponse { stock_levels: levels.into_iter().map(level_to_pb).collect() }))
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn list_stock(
        &self,
        request: Request<pb::ListStockRequest>,
    ) -> Result<Response<pb::ListStockResponse>, Status> {
        let pb::ListStockRequest { page_size, page_token } = request.into_inner();
        let size = paging::page_size(page_size, PAGE.0, PAGE.1)?;
        let after = paging::decode_token(&page_token)?;
        let levels = self.store.list_levels(after.as_deref(), paging::one_more(size)).await?;
        let (levels, next_page_token) = paging::page(levels, size, |l| paging::encode_token(&l.product_id));
        Ok(Response::new(pb::ListStockResponse {
            stock_levels: levels.into_iter().map(level_to_pb).collect(),
            next_page_token,
        }))
    }

    #[tracing::instrument(level = "debug", skip_all, fields(product = %request.get_ref().product))]
    async fn list_movements(
        &self,
        request: Request<pb::ListMovementsRequest>,
    ) -> Result<Response<pb::ListMovementsResponse>, Status> {
        let pb::ListMovementsRequest { product, page_size, page_token } = request.into_inner();
        let product = if product.is_empty() {
            None
        } else {
            Some(resource::parse_name(&product, "products").map_err(|e| invalid_argument("product", e))?.to_owned())
        };
        let size = paging::page_size(page_size, MOVEMENT_PAGE.0, MOVEMENT_PAGE.1)?;
        let filter = product.clone().unwrap_or_default();
        let after = match paging::decode_bound_token(&page_token, &filter)? {
            None => 0,
            Some(key) => {
                key.parse().map_err(|_| invalid_argument("page_token", "not a token returned by ListMovements"))?
            }
        };
        let movements = self.store.movements(product.as_deref(), after, paging::one_more(size)).await?;
        let (movements, next_page_token) =
            paging::page(movements, size, |m| paging::encode_bound_token(&filter, &m.id.to_string()));
        Ok(Response::new(pb::ListMovementsResponse {
            movements: movements.into_iter().map(movement_to_pb).collect(),
            next_page_token,
        }))
    }

    #[tracing::instrument(level = "debug", skip_all, fields(show = %request.get_ref().show))]
    async fn allocate_stock(
        &self,
        request: Request<pb::AllocateStockRequest>,
    ) -> Result<Response<pb::Allocation>, Status> {
        let pb::AllocateStockRequest { show, lines, request_id } = request.get_ref().clone();
        let mut violations = FieldViolations::new();
        let show = named_id(&mut violations, "show", &show, "shows");
        let lines: Vec<(String, i64)> = lines
            .into_iter()
            .enumerate()
            .map(|(i, line)| {
                (product_id(&mut violations, &format!("lines[{i}].product"), &line.product), line.quantity)
            })
            .collect();
        for (field, problem) in domain::check_lines(&lines, 0) {
            violations.add(field, problem);
        }
        violations.into_result()?;
        let allocation = self
            .once(&request, ALLOCATE_STOCK, &request_id, || async {
                Ok(allocation_to_pb(self.store.allocate(&show, &lines, self.clock.now()).await?))
            })
            .await?;
        self.changed();
        Ok(Response::new(allocation))
    }

    #[tracing::instrument(level = "debug", skip_all, fields(show = %request.get_ref().show))]
    async fn return_allocation(
        &self,
        request: Request<pb::ReturnAllocationRequest>,
    ) -> Result<Response<pb::Allocation>, Status> {
        let pb::ReturnAllocationRequest { show, request_id } = request.get_ref().clone();
        let show = resource::parse_name(&show, "shows").map_err(|e| invalid_argument("show", e))?.to_owned();
        let allocation = self
            .once(&request, RETURN_ALLOCATION, &request_id, || async {
                Ok(allocation_to_pb(self.store.return_allocation(&show, self.clock.now()).await?))
            })
            .await?;
        self.changed();
        Ok(Response::new(allocation))
    }

    #[tracing::instrument(level = "debug", skip_all, fields(name = %request.get_ref().name))]
    async fn get_allocation(
        &self,
        request: Request<pb::GetAllocationRequest>,
    ) -> Result<Response<pb::Allocation>, Status> {
        let pb::GetAllocationRequest { name } = request.into_inner();
        let show = resource::parse_name(&name, "allocations").map_err(|e| invalid_argument("name", e))?;
        Ok(Response::new(allocation_to_pb(self.store.allocation(show).await?)))
    }

    #[tracing::instrument(level = "debug", skip_all, fields(reservation_id = %request.get_ref().reservation_id))]
    async fn reserve_stock(
        &self,
        request: Request<pb::ReserveStockRequest>,
    ) -> Result<Response<pb::Reservation>, Status> {
        let pb::ReserveStockRequest { reservation_id, show, lines, ttl_seconds, request_id } =
            request.get_ref().clone();
        let mut violations = FieldViolations::new();
        violations.check(resource::valid_id(&reservation_id), "reservation_id", ID_RULE);
        let show_id = (!show.is_empty()).then(|| named_id(&mut violations, "show", &show, "shows"));
        let lines: Vec<(String, i64)> = lines
            .into_iter()
            .enumerate()
            .map(|(i, line)| {
                (product_id(&mut violations, &format!("lines[{i}].product"), &line.product), line.quantity)
            })
            .collect();
        for (field, problem) in domain::check_lines(&lines, 1) {
            violations.add(field, problem);
        }
        let ttl = match u64::try_from(ttl_seconds) {
            Ok(0) => domain::DEFAULT_TTL,
            Ok(seconds) if Duration::from_secs(seconds) <= domain::MAX_TTL => Duration::from_secs(seconds),
            _ => {
                violations.add("ttl_seconds", format!("must be between 0 and {}", domain::MAX_TTL.as_secs()));
                domain::DEFAULT_TTL
            }
        };
        violations.into_result()?;
        let reserve = ReserveRequest { id: reservation_id, show_id, lines, ttl };
        let traceparent = current_traceparent();
        let reservation = self
            .once(&request, RESERVE_STOCK, &request_id, || async {
                Ok(reservation_to_pb(self.reserve(&reserve, &traceparent).await?))
            })
            .await?;
        self.changed();
        Ok(Response::new(reservation))
    }

    #[tracing::instrument(level = "debug", skip_all, fields(name = %request.get_ref().name))]
    async fn commit_reservation(
        &self,
        request: Request<pb::CommitReservationRequest>,
    ) -> Result<Response<pb::Reservation>, Status> {
        let pb::CommitReservationRequest { name, request_id } = request.get_ref().clone();
        let id = resource::parse_name(&name, "reservations").map_err(|e| invalid_argument("name", e))?.to_owned();
        let reservation = self
            .once(&request, COMMIT_RESERVATION, &request_id, || async {
                Ok(reservation_to_pb(self.store.commit(&id, self.clock.now()).await?))
            })
            .await?;
        self.changed();
        Ok(Response::new(reservation))
    }

    #[tracing::instrument(level = "debug", skip_all, fields(name = %request.get_ref().name))]
    async fn release_reservation(
        &self,
        request: Request<pb::ReleaseReservationRequest>,
    ) -> Result<Response<pb::Reservation>, Status> {
        let pb::ReleaseReservationRequest { name, request_id } = request.get_ref().clone();
        let id = resource::parse_name(&name, "reservations").map_err(|e| invalid_argument("name", e))?.to_owned();
        let reservation = self
            .once(&request, RELEASE_RESERVATION, &request_id, || async {
                Ok(reservation_to_pb(self.store.release(&id, Ending::Release, self.clock.now()).await?))
            })
            .await?;
        self.changed();
        Ok(Response::new(reservation))
    }

    #[tracing::instrument(level = "debug", skip_all, fields(name = %request.get_ref().name))]
    async fn get_reservation(
        &self,
        request: Request<pb::GetReservationRequest>,
    ) -> Result<Response<pb::Reservation>, Status> {
        let pb::GetReservationRequest { name } = request.into_inner();
        let id = resource::parse_name(&name, "reservations").map_err(|e| invalid_argument("name", e))?;
        Ok(Response::new(reservation_to_pb(self.store.reservation(id).await?)))
    }

    #[tracing::instrument(level = "debug", skip_all, fields(products = request.get_ref().products.len(), show = %request.get_ref().show))]
    async fn watch_stock(
        &self,
        request: Request<pb::WatchStockRequest>,
    ) -> Result<Response<Self::WatchStockStream>, Status> {
        let pb::WatchStockRequest { products, cursors, show } = request.into_inner();
        let mut violations = FieldViolations::new();
        let show = (!show.is_empty()).then(|| named_id(&mut violations, "show", &show, "shows"));
        let mut products: Vec<String> = products
            .iter()
            .enumerate()
            .map(|(i, p)| product_id(&mut violations, &format!("products[{i}]"), p))
            .collect();
        violations.into_result()?;
        if products.is_empty()
            && let Some(show) = &show
        {
            products = self.store.allocation(show).await?.lines.into_iter().map(|l| l.product_id).collect();
            if products.is_empty() {
                return Err(invalid_argument(
                    "show",
                    "its allocation holds no products yet; name the products to watch",
                ));
            }
        }
        if products.is_empty() {
            return Err(invalid_argument("products", "watch at least one product, or a show"));
        }
        let mut resume = HashMap::new();
        for (i, cursor) in cursors.iter().enumerate() {
            let product = resource::parse_name(&cursor.product, "products")
                .map_err(|e| invalid_argument(format!("cursors[{i}].product"), e))?;
            if !products.iter().any(|p| p == product) {
                return Err(invalid_argument(format!("cursors[{i}].product"), "is not one of the watched products"));
            }
            if cursor.version < 0 {
                return Err(invalid_argument(format!("cursors[{i}].version"), "must not be negative"));
            }
            resume.insert(WatchKey { show: show.clone(), product: product.to_owned() }, cursor.version);
        }
        if !resume.is_empty() {
            // A cursor the server never issued (from another deployment, or
            // made up) would wait for versions that may never come.
            let resumed: Vec<WatchKey> = resume.keys().cloned().collect();
            for state in StockFeed::new(self.store.clone()).states(&resumed).await? {
                let (key, current) = (StockFeed::key(&state), StockFeed::version(&state));
                if resume.get(&key).is_some_and(|cursor| *cursor > current) {
                    let i = cursors
                        .iter()
                        .position(|c| resource::parse_name(&c.product, "products").ok() == Some(key.product.as_str()))
                        .unwrap_or_default();
                    return Err(invalid_argument(
                        format!("cursors[{i}].version"),
                        format!("products/{} is at version {current}", key.product),
                    ));
                }
            }
        }
        products.sort();
        products.dedup();
        let keys = products.into_iter().map(|product| WatchKey { show: show.clone(), product }).collect();
        let subscription = self.hub.subscribe(keys, resume)?;
        let stream = subscription.map(|item| {
            item.map(|(delivery, watched)| {
                let kind = match delivery {
                    Delivery::Snapshot => pb::watch_stock_response::Kind::Snapshot,
                    Delivery::Change => pb::watch_stock_response::Kind::Change,
                };
                let (stock_level, allocation_line) = match watched {
                    Watched::Level(level) => (Some(level_to_pb(level)), None),
                    Watched::Line { line, .. } => (None, Some(line_to_pb(line))),
                };
                pb::WatchStockResponse { kind: kind as i32, stock_level, allocation_line }
            })
        });
        Ok(Response::new(stream.boxed()))
    }
}

/// The id in a `products/{id}` field, recording a violation if malformed.
fn product_id(violations: &mut FieldViolations, field: &str, name: &str) -> String {
    named_id(violations, field, name, "products")
}

/// The id in a `{collection}/{id}` field, recording a violation if malformed.
fn named_id(violations: &mut FieldViolations, field: &str, name: &str, collection: &str) -> String {
    match resource::parse_name(name, collection) {
        Ok(id) => id.to_owned(),
        Err(problem) => {
            violations.add(field, problem);
            String::new()
        }
    }
}

fn check_note(violations: &mut FieldViolations, field: &str, text: &str) {
    violations.check(text.chars().count() <= MAX_NOTE, field, format!("must be at most {MAX_NOTE} characters"));
    violations.check(!text.chars().any(char::is_control), field, "must not contain control characters");
}

fn level_to_pb(level: StockLevel) -> pb::StockLevel {
    pb::StockLevel {
        name: format!("stockLevels/{}", level.product_id),
        product: format!("products/{}", level.product_id),
        on_hand: level.on_hand(),
        reserved: level.reserved(),
        allocated: level.allocated(),
        available: level.available(),
        version: level.version(),
        sold_out: level.available() == 0,
        warehouses: level
            .warehouses
            .iter()
            .map(|w| pb::WarehouseStock {
                warehouse: format!("warehouses/{}", w.warehouse_id),
                on_hand: w.on_hand,
                reserved: w.reserved,
                allocated: w.allocated,
                available: w.available(),
                version: w.version,
            })
            .collect(),
    }
}

fn movement_to_pb(movement: Movement) -> pb::Movement {
    use pb::movement::Kind;
    let kind = match movement.kind {
        MovementKind::Receive => Kind::Receive,
        MovementKind::Adjust => Kind::Adjust,
        MovementKind::Allocate => Kind::Allocate,
        MovementKind::Return => Kind::Return,
        MovementKind::Reserve => Kind::Reserve,
        MovementKind::Commit => Kind::Commit,
        MovementKind::Release => Kind::Release,
        MovementKind::Expire => Kind::Expire,
    };
    pb::Movement {
        name: format!("movements/{}", movement.id),
        kind: kind as i32,
        product: format!("products/{}", movement.product_id),
        warehouse: format!("warehouses/{}", movement.warehouse_id),
        on_hand_delta: movement.on_hand_delta,
        reserved_delta: movement.reserved_delta,
        allocated_delta: movement.allocated_delta,
        reference: movement.reference,
        reason: i32::from(movement.reason),
        create_time: Some(timestamp_from_micros(movement.create_time.0)),
    }
}

fn line_to_pb(line: AllocationLine) -> pb::AllocationLine {
    pb::AllocationLine {
        product: format!("products/{}", line.product_id),
        quantity: line.quantity(),
        used: line.used(),
        available: line.available(),
        sold_out: line.available() == 0,
        closed: line.closed,
        version: line.version,
        sources: line
            .sources
            .iter()
            .filter(|(_, quantity, _)| *quantity > 0)
            .map(|(warehouse, quantity, _)| pb::AllocationSource {
                warehouse: format!("warehouses/{warehouse}"),
                quantity: *quantity,
            })
            .collect(),
    }
}

fn allocation_to_pb(allocation: Allocation) -> pb::Allocation {
    let state = match allocation.state {
        AllocationState::Open => pb::allocation::State::Open,
        AllocationState::Closed => pb::allocation::State::Closed,
    };
    pb::Allocation {
        name: format!("allocations/{}", allocation.show_id),
        show: format!("shows/{}", allocation.show_id),
        lines: allocation.lines.into_iter().map(line_to_pb).collect(),
        state: state as i32,
        close_time: allocation.close_time.map(|t| timestamp_from_micros(t.0)),
    }
}

fn reservation_to_pb(reservation: Reservation) -> pb::Reservation {
    use pb::reservation::State;
    let state = match reservation.state {
        ReservationState::Active => State::Active,
        ReservationState::Committed => State::Committed,
        ReservationState::Released => State::Released,
        ReservationState::Expired => State::Expired,
    };
    pb::Reservation {
        name: format!("reservations/{}", reservation.id),
        show: reservation.show_id.map(|s| format!("shows/{s}")).unwrap_or_default(),
        lines: reservation
            .lines
            .into_iter()
            .map(|line| pb::ReservationLine {
                product: format!("products/{}", line.product_id),
                quantity: line.quantity,
                sources: line
                    .sources
                    .into_iter()
                    .map(|s| pb::AllocationSource {
                        warehouse: format!("warehouses/{}", s.warehouse_id),
                        quantity: s.quantity,
                    })
                    .collect(),
            })
            .collect(),
        state: state as i32,
        expire_time: (reservation.state == ReservationState::Active)
            .then(|| timestamp_from_micros(reservation.expire_time.0)),
        create_time: Some(timestamp_from_micros(reservation.create_time.0)),
        close_time: reservation.close_time.map(|t| timestamp_from_micros(t.0)),
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
