//! gRPC handlers: protobuf in, domain values through the store, protobuf out.
//! The only module of the crate that sees prost types.

mod saga;

use caravan_platform::{
    auth::{self, Kind, Principal},
    error::{FieldViolations, invalid_argument},
    idempotency::Idempotency,
    paging, resource,
    time::{Micros, SharedClock},
};
use caravan_proto::{
    orders::v1::{self as pb, orders_service_server::OrdersService},
    timestamp_from_micros,
    r#type::v1 as types,
};
use tonic::{Request, Response, Status};

use crate::{
    domain::{Money, Order, OrderState},
    store::{OrderFilter, Store},
    upstream::Upstream,
};

/// Default and largest page of ListOrders.
const PAGE: (u64, u64) = (50, 500);

/// Orders' gRPC service.
#[derive(Debug, Clone)]
pub struct OrdersApi {
    store: Store,
    upstream: Upstream,
    idempotency: Idempotency,
    clock: SharedClock,
}

impl OrdersApi {
    /// Handlers over `store`, calling `upstream`, with request ids kept by
    /// `idempotency`, reading the time from `clock`.
    pub fn new(store: Store, upstream: Upstream, idempotency: Idempotency, clock: SharedClock) -> Self {
        OrdersApi { store, upstream, idempotency, clock }
    }
}

const PLACE_ORDER: &str = "caravan.orders.v1.OrdersService/PlaceOrder";
const CONFIRM_PAYMENT: &str = "caravan.orders.v1.OrdersService/ConfirmPayment";
const CANCEL_ORDER: &str = "caravan.orders.v1.OrdersService/CancelOrder";

/// The partner a partner-only call acts for.
fn acting_partner(principal: &Principal) -> Result<String, Status> {
    partner_scope(principal)?.ok_or_else(|| Status::permission_denied("only a partner may do this"))
}

#[tonic::async_trait]
impl OrdersService for OrdersApi {
    #[tracing::instrument(level = "debug", skip_all, fields(name = %request.get_ref().name))]
    async fn get_order(&self, request: Request<pb::GetOrderRequest>) -> Result<Response<pb::Order>, Status> {
        let partner = partner_scope(auth::principal(&request)?)?;
        let pb::GetOrderRequest { name } = request.into_inner();
        let id = parse_order_name(&name).map_err(|e| invalid_argument("name", e))?;
        Ok(Response::new(order_to_pb(self.store.order(id, partner.as_deref()).await?)))
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn list_orders(
        &self,
        request: Request<pb::ListOrdersRequest>,
    ) -> Result<Response<pb::ListOrdersResponse>, Status> {
        let partner = partner_scope(auth::principal(&request)?)?;
        let pb::ListOrdersRequest { page_size, page_token, show, buyer, state } = request.into_inner();
        let mut violations = FieldViolations::new();
        let size = paging::page_size(page_size, PAGE.0, PAGE.1)
            .map_err(|_| violations.add("page_size", "must not be negative"))
            .ok();
        let after = match paging::decode_token(&page_token).map(|key| key.map(|k| parse_order_key(&k))) {
            Ok(None) => Some(None),
            Ok(Some(Some(key))) => Some(Some(key)),
            Ok(Some(None)) | Err(_) => {
                violations.add("page_token", "not a token returned by ListOrders");
                None
            }
        };
        if !show.is_empty()
            && let Err(e) = resource::parse_name(&show, "shows")
        {
            violations.add("show", e);
        }
        if buyer.chars().count() > 128 {
            violations.add("buyer", "must be at most 128 characters");
        }
        let state = match pb::order::State::try_from(state) {
            Ok(pb::order::State::Unspecified) => Some(None),
            Ok(s) => Some(Some(state_from_pb(s))),
            Err(_) => {
                violations.add("state", format!("unknown state value {state}"));
                None
            }
        };
        violations.into_result()?;
        let (Some(size), Some(after), Some(state)) = (size, after, state) else {
            return Err(invalid_argument("request", "is invalid"));
        };
        let filter = OrderFilter {
            partner,
            show: (!show.is_empty()).then_some(show),
            buyer: (!buyer.is_empty()).then_some(buyer),
            state,
        };
        let mut orders = self.store.orders(&filter, after.as_ref().map(|(t, id)| (*t, id.as_str())), size + 1).await?;
        let next_page_token = if orders.len() as u64 > size {
            orders.truncate(usize::try_from(size).unwrap_or(usize::MAX));
            orders.last().map(|o| paging::encode_token(&format!("{}/{}", o.create_time.0, o.id))).unwrap_or_default()
        } else {
            String::new()
        };
        Ok(Response::new(pb::ListOrdersResponse {
            orders: orders.into_iter().map(order_to_pb).collect(),
            next_page_token,
        }))
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn place_order(&self, request: Request<pb::PlaceOrderRequest>) -> Result<Response<pb::Order>, Status> {
        let partner = acting_partner(auth::principal(&request)?)?;
        let traceparent = caravan_platform::rpc::current_traceparent();
        let place = Box::pin(self.place_order_once(request.get_ref().clone(), &partner, &traceparent));
        self.idempotency
            .run_for(&request, PLACE_ORDER, &request.get_ref().request_id, || place)
            .await
            .map(Response::new)
    }

    #[tracing::instrument(level = "debug", skip_all, fields(name = %request.get_ref().name))]
    async fn confirm_payment(
        &self,
        request: Request<pb::ConfirmPaymentRequest>,
    ) -> Result<Response<pb::Order>, Status> {
        let partner = acting_partner(auth::principal(&request)?)?;
        let confirm = Box::pin(self.confirm_payment_once(request.get_ref().clone(), &partner));
        self.idempotency
            .run_for(&request, CONFIRM_PAYMENT, &request.get_ref().request_id, || confirm)
            .await
            .map(Response::new)
    }

    #[tracing::instrument(level = "debug", skip_all, fields(name = %request.get_ref().name))]
    async fn cancel_order(&self, request: Request<pb::CancelOrderRequest>) -> Result<Response<pb::Order>, Status> {
        let partner = acting_partner(auth::principal(&request)?)?;
        let cancel = Box::pin(self.cancel_order_once(request.get_ref().clone(), &partner));
        self.idempotency
            .run_for(&request, CANCEL_ORDER, &request.get_ref().request_id, || cancel)
            .await
            .map(Response::new)
    }

    #[tracing::instrument(level = "debug", skip_all, fields(show = %request.get_ref().show))]
    async fn get_show_sales_report(
        &self,
        request: Request<pb::GetShowSalesReportRequest>,
    ) -> Result<Response<pb::ShowSalesReport>, Status> {
        let partner = partner_scope(auth::principal(&request)?)?;
        let pb::GetShowSalesReportRequest { show } = request.into_inner();
        let id = resource::parse_name(&show, "shows").map_err(|e| invalid_argument("show", e))?.to_owned();
        let sales = self.store.sales(&format!("shows/{id}"), partner.as_deref()).await?;
        Ok(Response::new(report_to_pb(&id, sales, self.clock.now())))
    }
}

/// A show's sales as the report shows them.
fn report_to_pb(show: &str, sales: crate::store::Sales, now: Micros) -> pb::ShowSalesReport {
    use std::collections::BTreeMap;
    let money = |(currency, minor): (String, i64)| types::Money { currency_code: currency, minor_units: minor };
    let mut products: BTreeMap<String, pb::ProductSales> = BTreeMap::new();
    let (mut paid_revenue, mut awaiting_revenue) = (BTreeMap::new(), BTreeMap::new());
    let (mut units_paid, mut units_awaiting) = (0, 0);
    for line in sales.lines {
        let entry = products
            .entry(line.product.clone())
            .or_insert_with(|| pb::ProductSales { product: line.product.clone(), ..Default::default() });
        entry.order_count += line.orders;
        if line.paid {
            entry.units_paid += line.units;
            units_paid += line.units;
            let revenue = entry
                .revenue_paid
                .get_or_insert_with(|| types::Money { currency_code: line.currency.clone(), minor_units: 0 });
            revenue.minor_units += line.revenue;
            *paid_revenue.entry(line.currency).or_insert(0) += line.revenue;
        } else {
            entry.units_awaiting_payment += line.units;
            units_awaiting += line.units;
            *awaiting_revenue.entry(line.currency).or_insert(0) += line.revenue;
        }
    }
    for (product, at) in sales.sold_out {
        products
            .entry(product.clone())
            .or_insert_with(|| pb::ProductSales { product: product.clone(), ..Default::default() })
            .sold_out_time = Some(timestamp_from_micros(at.0));
    }
    pb::ShowSalesReport {
        name: format!("shows/{show}/salesReport"),
        show: format!("shows/{show}"),
        products: products.into_values().collect(),
        order_count: sales.order_count,
        units_paid,
        units_awaiting_payment: units_awaiting,
        revenue_paid: paid_revenue.into_iter().map(money).collect(),
        revenue_awaiting_payment: awaiting_revenue.into_iter().map(money).collect(),
        compute_time: Some(timestamp_from_micros(now.0)),
    }
}

/// Whose orders the caller may see: a partner only its own (`Some`), an
/// operator everyone's (`None`).
fn partner_scope(principal: &Principal) -> Result<Option<String>, Status> {
    match principal.kind {
        Kind::Partner => {
            principal.partner.clone().map(Some).ok_or_else(|| Status::internal("a partner principal without a partner"))
        }
        Kind::Operator | Kind::Service => Ok(None),
    }
}

/// The id of `orders/{id}`. Order ids are generated, so any non-empty id of
/// the resource alphabet is accepted.
fn parse_order_name(name: &str) -> Result<&str, String> {
    resource::parse_name(name, "orders")
}

/// `{create_time}/{id}`, the key of a ListOrders page token.
fn parse_order_key(key: &str) -> Option<(Micros, String)> {
    let (time, id) = key.split_once('/')?;
    Some((Micros(time.parse().ok()?), id.to_owned()))
}

fn state_to_pb(state: OrderState) -> pb::order::State {
    match state {
        OrderState::Pending => pb::order::State::Pending,
        OrderState::AwaitingPayment => pb::order::State::AwaitingPayment,
        OrderState::Paid => pb::order::State::Paid,
        OrderState::Rejected => pb::order::State::Rejected,
        OrderState::Cancelled => pb::order::State::Cancelled,
        OrderState::Expired => pb::order::State::Expired,
    }
}

fn state_from_pb(state: pb::order::State) -> OrderState {
    match state {
        pb::order::State::Pending | pb::order::State::Unspecified => OrderState::Pending,
        pb::order::State::AwaitingPayment => OrderState::AwaitingPayment,
        pb::order::State::Paid => OrderState::Paid,
        pb::order::State::Rejected => OrderState::Rejected,
        pb::order::State::Cancelled => OrderState::Cancelled,
        pb::order::State::Expired => OrderState::Expired,
    }
}

fn money_to_pb(money: Money) -> types::Money {
    types::Money { currency_code: money.currency, minor_units: money.minor }
}

fn order_to_pb(order: Order) -> pb::Order {
    let totals = order.totals();
    if totals.is_none() {
        tracing::error!(order = %order.id, "order total overflows i64; totals omitted");
    }
    let Order {
        id,
        partner,
        buyer,
        show,
        lines,
        state,
        state_reason,
        payment_deadline,
        payment_reference,
        create_time,
        update_time,
    } = order;
    pb::Order {
        name: format!("orders/{id}"),
        partner,
        buyer,
        show,
        lines: lines
            .into_iter()
            .map(|line| {
                let line_total = line.total().map(money_to_pb);
                pb::OrderLine {
                    product: line.product,
                    quantity: line.quantity,
                    unit_price: Some(money_to_pb(line.unit_price)),
                    line_total,
                }
            })
            .collect(),
        totals: totals.unwrap_or_default().into_iter().map(money_to_pb).collect(),
        state: state_to_pb(state).into(),
        state_reason,
        payment_deadline: payment_deadline.map(|t| timestamp_from_micros(t.0)),
        payment_reference,
        create_time: Some(timestamp_from_micros(create_time.0)),
        update_time: Some(timestamp_from_micros(update_time.0)),
    }
}
