//! gRPC handlers: protobuf in, domain values through the store, protobuf out.
//! The only module of the crate that sees prost types.

mod saga;

pub use saga::order_id;

use caravan_platform::{
    auth::{self, Kind, Principal},
    deadline,
    error::{FieldViolations, invalid_argument},
    idempotency::{Idempotency, Seen},
    paging, resource,
    time::{Micros, SharedClock},
};
use caravan_proto::{
    micros_from_timestamp,
    orders::v1::{self as pb, orders_service_server::OrdersService},
    timestamp_from_micros,
    r#type::v1 as types,
};
use prost::Message as _;
use tonic::{Request, Response, Status};

use crate::{
    domain::{Money, Order, OrderState},
    saga::Saga,
    sellout::Placed,
    store::{OrderFilter, Store},
};

/// Default and largest page of ListOrders.
const PAGE: (u64, u64) = (50, 500);

/// Orders' gRPC service.
#[derive(Debug, Clone)]
pub struct OrdersApi {
    saga: Saga,
    store: Store,
    idempotency: Idempotency,
    clock: SharedClock,
}

impl OrdersApi {
    /// Handlers running `saga`, with request ids kept by `idempotency`,
    /// reading the time from `clock`.
    pub fn new(saga: Saga, idempotency: Idempotency, clock: SharedClock) -> Self {
        OrdersApi { store: saga.store().clone(), saga, idempotency, clock }
    }

    /// PlaceOrder once its request is valid (the caller bounds it by the
    /// call limit).
    async fn place_within_limit(
        &self,
        request: Request<pb::PlaceOrderRequest>,
        partner: String,
        new: crate::saga::NewOrder,
    ) -> Result<Response<pb::Order>, Status> {
        let request_id = request.get_ref().request_id.as_str();
        let mut claim = self.idempotency.claim_for(&request, PLACE_ORDER, request_id)?;
        // The sell-out storm: an offer this replica knows is sold out is
        // refused from memory — unless the request id says this request was
        // seen before (a retry of an order placed before the sell-out),
        // which one shared read tells.
        if let Some(show) = &new.show
            && let Some(shortage) = self.saga.shortage(show, &partner, &new.lines)
        {
            // What the request placed before: known in memory once the
            // show's request keys were read after the sell-out (no read per
            // refusal); until then, the request id's record.
            let known = match (&claim, &new.request_key) {
                (Some(_), Some(key)) => self.saga.placed_before(show, &shortage.product, key, &new.id),
                _ => Some(Placed::Nothing),
            };
            let seen = match (known, &claim) {
                (Some(Placed::Nothing), _) | (None, None) => Seen::New,
                (Some(Placed::This), _) => Seen::Same,
                (Some(Placed::Another), _) => Seen::Reused,
                (None, Some(claim)) => self.idempotency.seen(claim).await?,
            };
            if seen == Seen::New {
                return Err(self.saga.turn_away(show, shortage));
            }
            // The request id is taken: its record answers (a replay, or
            // REQUEST_ID_REUSED), through the mechanism below.
            claim = None;
        }
        let traceparent = caravan_platform::telemetry::current_traceparent();
        // Never longer than the call limit (the driver recovers what is left
        // after twice that), and answered before the partner's own deadline:
        // UNAVAILABLE tells it to retry with the same request id.
        let limit = self.saga.timers().call_limit;
        let too_late = place_too_late;
        if let Some(claim) = &claim {
            let reply = |order: &Order| order_to_pb(order.clone()).encode_to_vec();
            let first = deadline::within(limit, self.saga.place_claimed(new.clone(), claim, &traceparent, &reply));
            match Box::pin(first).await {
                Ok(Some(Err(failed))) if failed.code() != tonic::Code::FailedPrecondition => {
                    // A step failed after the claim may have been committed
                    // (a connection cut as a transaction committed): let go
                    // of it, so the retry this answer asks for resumes the
                    // order at once. A refusal has settled it already.
                    self.idempotency.release(claim).await;
                    return Err(failed);
                }
                Ok(Some(placed)) => return placed.map(|o| Response::new(order_to_pb(o))),
                Ok(None) => {}
                Err(deadline::Elapsed) => {
                    self.idempotency.release(claim).await;
                    return Err(too_late());
                }
            }
        }
        // No request id, or one already claimed: the idempotency mechanism
        // waits for the first call, replays its answer or takes over.
        let place = Box::pin(async {
            match deadline::within(limit, self.saga.place(new, &traceparent)).await {
                Ok(placed) => placed.map(order_to_pb),
                Err(deadline::Elapsed) => Err(too_late()),
            }
        });
        self.idempotency.run_for(&request, PLACE_ORDER, request_id, || place).await.map(Response::new)
    }
}

/// PlaceOrder's answer when the call limit is reached first.
fn place_too_late() -> Status {
    Status::unavailable("the order could not be completed in time; retry with the same request_id to resume it")
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
        let pb::ListOrdersRequest { page_size, page_token, show, buyer, state, start_time, end_time } =
            request.into_inner();
        let mut violations = FieldViolations::new();
        let size = paging::page_size(page_size, PAGE.0, PAGE.1)
            .map_err(|_| violations.add("page_size", "must not be negative"))
            .ok();
        let created_from = start_time.map(|t| micros_from_timestamp(&t).map(Micros));
        let created_before = end_time.map(|t| micros_from_timestamp(&t).map(Micros));
        let (created_from, created_before) = match (created_from, created_before) {
            (Some(None), _) => {
                violations.add("start_time", "is not a valid timestamp");
                (None, None)
            }
            (_, Some(None)) => {
                violations.add("end_time", "is not a valid timestamp");
                (None, None)
            }
            (from, before) => (from.flatten(), before.flatten()),
        };
        if let (Some(from), Some(before)) = (created_from, created_before)
            && before <= from
        {
            violations.add("end_time", "must be after start_time");
        }
        // Page tokens are bound to the filters they were issued for.
        let bound = format!(
            "{partner:?}|{show}|{buyer}|{state}|{}|{}",
            created_from.map_or(0, |t| t.0),
            created_before.map_or(0, |t| t.0)
        );
        let after = match paging::decode_bound_token(&page_token, &bound).map(|key| key.map(|k| parse_order_key(&k))) {
            Ok(None) => Some(None),
            Ok(Some(Some(key))) => Some(Some(key)),
            Err(_) if paging::decode_token(&page_token).is_ok() => {
                violations.add("page_token", "was issued for other filters; start again without a token");
                None
            }
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
            created_from,
            created_before,
        };
        let orders =
            self.store.orders(&filter, after.as_ref().map(|(t, id)| (*t, id.as_str())), paging::one_more(size)).await?;
        let (orders, next_page_token) = paging::page(orders, size, |o| {
            paging::encode_bound_token(&bound, &format!("{}/{}", o.create_time.0, o.id))
        });
        Ok(Response::new(pb::ListOrdersResponse {
            orders: orders.into_iter().map(order_to_pb).collect(),
            next_page_token,
        }))
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn place_order(&self, request: Request<pb::PlaceOrderRequest>) -> Result<Response<pb::Order>, Status> {
        let partner = acting_partner(auth::principal(&request)?)?;
        let new = saga::new_order(request.get_ref(), &partner)?;
        // Every step — the request id's record, a wait for a concurrent
        // repeat, the saga — within the call limit: a database or a service
        // that hangs makes PlaceOrder answer UNAVAILABLE in time, not late.
        let limit = self.saga.timers().call_limit;
        match deadline::within(limit, self.place_within_limit(request, partner, new)).await {
            Ok(answer) => answer,
            Err(deadline::Elapsed) => Err(place_too_late()),
        }
    }

    #[tracing::instrument(level = "debug", skip_all, fields(name = %request.get_ref().name))]
    async fn confirm_payment(
        &self,
        request: Request<pb::ConfirmPaymentRequest>,
    ) -> Result<Response<pb::Order>, Status> {
        let partner = acting_partner(auth::principal(&request)?)?;
        let (id, reference) = saga::payment(request.get_ref())?;
        let confirm = Box::pin(async { self.saga.confirm_payment(&id, &partner, &reference).await.map(order_to_pb) });
        self.idempotency
            .run_for(&request, CONFIRM_PAYMENT, &request.get_ref().request_id, || confirm)
            .await
            .map(Response::new)
    }

    #[tracing::instrument(level = "debug", skip_all, fields(name = %request.get_ref().name))]
    async fn cancel_order(&self, request: Request<pb::CancelOrderRequest>) -> Result<Response<pb::Order>, Status> {
        let partner = acting_partner(auth::principal(&request)?)?;
        let (id, reason) = saga::cancellation(request.get_ref())?;
        let cancel = Box::pin(async { self.saga.cancel(&id, &partner, &reason).await.map(order_to_pb) });
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
        if sales.lines.is_empty() && sales.unmet.is_empty() {
            // Nothing sold: a show with no sales yet, or no show at all.
            self.saga.show_exists(&id).await?;
        }
        Ok(Response::new(report_to_pb(&id, sales, self.clock.now())))
    }
}

/// Adds `minor` in `currency` to a per-currency sum.
fn add(sums: &mut std::collections::BTreeMap<String, i64>, currency: &str, minor: i64) {
    let sum = sums.entry(currency.to_owned()).or_insert(0);
    *sum = sum.saturating_add(minor);
}

/// `countries/{alpha2}`, or empty for a line recorded without its country.
fn country_name(alpha2: &str) -> String {
    if alpha2.is_empty() { String::new() } else { format!("countries/{alpha2}") }
}

fn money_list(sums: std::collections::BTreeMap<String, i64>) -> Vec<types::Money> {
    sums.into_iter().map(|(currency_code, minor_units)| types::Money { currency_code, minor_units }).collect()
}

/// A show's sales as the report shows them.
fn report_to_pb(show: &str, sales: crate::store::Sales, now: Micros) -> pb::ShowSalesReport {
    use std::collections::BTreeMap;
    let crate::store::Sales { lines, countries, orders_paid, orders_awaiting_payment, unmet } = sales;
    let mut products: BTreeMap<String, pb::ProductSales> = BTreeMap::new();
    let (mut paid_revenue, mut awaiting_revenue) = (BTreeMap::new(), BTreeMap::new());
    let (mut units_paid, mut units_awaiting) = (0, 0);
    for crate::store::SalesLine { product, country, figures: line } in lines {
        let entry = products.entry(product.clone()).or_insert_with(|| pb::ProductSales {
            product: product.clone(),
            country: country_name(&country),
            ..Default::default()
        });
        entry.order_count += line.orders;
        let revenue = if line.paid {
            entry.units_paid += line.units;
            units_paid += line.units;
            add(&mut paid_revenue, &line.currency, line.revenue);
            &mut entry.revenue_paid
        } else {
            entry.units_awaiting_payment += line.units;
            units_awaiting += line.units;
            add(&mut awaiting_revenue, &line.currency, line.revenue);
            &mut entry.revenue_awaiting_payment
        };
        let revenue = revenue.get_or_insert_with(|| types::Money { currency_code: line.currency, minor_units: 0 });
        revenue.minor_units = revenue.minor_units.saturating_add(line.revenue);
    }
    for crate::store::Unmet { product, sold_out_time, turned_away, units } in unmet {
        let entry = products
            .entry(product.clone())
            .or_insert_with(|| pb::ProductSales { product: product.clone(), ..Default::default() });
        entry.sold_out_time = sold_out_time.map(|at| timestamp_from_micros(at.0));
        entry.turned_away = turned_away;
        entry.units_turned_away = units;
    }
    type CountrySums = (pb::CountrySales, BTreeMap<String, i64>, BTreeMap<String, i64>);
    let mut by_country: BTreeMap<String, CountrySums> = BTreeMap::new();
    for crate::store::CountrySales { country, figures: group } in countries {
        let (entry, paid, awaiting) = by_country.entry(country.clone()).or_insert_with(|| {
            (
                pb::CountrySales { country: country_name(&country), ..Default::default() },
                BTreeMap::new(),
                BTreeMap::new(),
            )
        });
        entry.order_count += group.orders;
        if group.paid {
            entry.units_paid += group.units;
            add(paid, &group.currency, group.revenue);
        } else {
            entry.units_awaiting_payment += group.units;
            add(awaiting, &group.currency, group.revenue);
        }
    }
    pb::ShowSalesReport {
        name: format!("shows/{show}/salesReport"),
        show: format!("shows/{show}"),
        products: products.into_values().collect(),
        order_count: orders_paid + orders_awaiting_payment,
        units_paid,
        units_awaiting_payment: units_awaiting,
        revenue_paid: money_list(paid_revenue),
        revenue_awaiting_payment: money_list(awaiting_revenue),
        compute_time: Some(timestamp_from_micros(now.0)),
        orders_paid,
        orders_awaiting_payment,
        countries: by_country
            .into_values()
            .map(|(mut country, paid, awaiting)| {
                country.revenue_paid = money_list(paid);
                country.revenue_awaiting_payment = money_list(awaiting);
                country
            })
            .collect(),
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
        request_id,
        create_time,
        update_time,
    } = order;
    pb::Order {
        name: format!("orders/{id}"),
        request_id,
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
