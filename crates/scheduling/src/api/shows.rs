//! Shows: booking (through the line-up saga, [`crate::lineup`]), reads, and
//! the lifecycle by hand.

use caravan_platform::{
    error::{FieldViolations, Reason, etag_mismatch, invalid_argument},
    paging,
    resource::{self, ID_RULE},
};
use caravan_proto::{micros_from_timestamp, scheduling::v1 as pb, timestamp_from_micros, r#type::v1 as types};
use sha2::{Digest as _, Sha256};
use tonic::Status;

use super::{SchedulingApi, resources::text_from_pb};
use crate::{
    domain::{self, AllocationSync, Money, Offer, Show, ShowFields, ShowState, Text},
    error::Error,
    store::Transition,
};

/// Default and largest page of ListShows.
const PAGE: (u64, u64) = (50, 500);

/// The id of a show: chosen, or derived from the caller and request id (so a
/// retry after a crash resumes the same show), or generated.
fn show_id(chosen: String, caller: &str, request_id: &str, violations: &mut FieldViolations) -> String {
    if !chosen.is_empty() {
        if !resource::valid_id(&chosen) {
            violations.add("show_id", ID_RULE);
        }
        return chosen;
    }
    if request_id.is_empty() {
        return resource::new_id('s');
    }
    let digest = Sha256::digest(format!("{caller}\n{request_id}").as_bytes());
    format!("s{}", &hex::encode(digest)[..24])
}

fn time_from_pb(time: Option<prost_types::Timestamp>, field: &str, violations: &mut FieldViolations) -> Option<i64> {
    match time.as_ref().map(micros_from_timestamp) {
        None => {
            violations.add(field, "is required");
            None
        }
        Some(None) => {
            violations.add(field, "is not a valid instant");
            None
        }
        Some(Some(micros)) => Some(micros),
    }
}

/// Validates a show from a request (fields under `show.`).
fn show_fields(show: pb::Show, violations: &mut FieldViolations) -> Option<ShowFields> {
    let pb::Show { campaign, channel, host, title, start_time, end_time, offers, .. } = show;
    let mut id = |name: &str, collection: &str, field: &str| match resource::parse_name(name, collection) {
        Ok(id) => Some(id.to_owned()),
        Err(problem) => {
            violations.add(field, problem);
            None
        }
    };
    let campaign_id = id(&campaign, "campaigns", "show.campaign");
    let channel_id = id(&channel, "channels", "show.channel");
    let host_id = id(&host, "hosts", "show.host");
    let title = text_from_pb(title, "show.title", violations);
    let start = time_from_pb(start_time, "show.start_time", violations);
    let end = time_from_pb(end_time, "show.end_time", violations);
    if let (Some(start), Some(end)) = (start, end) {
        let longest = i64::try_from(domain::MAX_SHOW.as_micros()).unwrap_or(i64::MAX);
        if end <= start {
            violations.add("show.end_time", "must be after start_time");
        } else if end - start > longest {
            violations
                .add("show.end_time", format!("a show lasts at most {} hours", domain::MAX_SHOW.as_secs() / 3600));
        }
    }
    let mut offer_list = Vec::with_capacity(offers.len());
    for (i, offer) in offers.into_iter().enumerate() {
        let pb::Offer { product, show_price, allocated_quantity, per_buyer_limit, display_order } = offer;
        let product_id = match resource::parse_name(&product, "products") {
            Ok(id) => id.to_owned(),
            Err(problem) => {
                violations.add(format!("show.offers[{i}].product"), problem);
                String::new()
            }
        };
        let price = match show_price {
            Some(types::Money { currency_code, minor_units }) => Money { currency: currency_code, minor_units },
            None => {
                violations.add(format!("show.offers[{i}].show_price"), "is required");
                Money { currency: "CNY".into(), minor_units: 0 }
            }
        };
        offer_list.push(Offer { product_id, price, allocated_quantity, per_buyer_limit, display_order });
    }
    for (field, problem) in domain::check_offers(&offer_list) {
        violations.add(format!("show.{field}"), problem);
    }
    offer_list.sort_by(|a, b| (a.display_order, &a.product_id).cmp(&(b.display_order, &b.product_id)));
    if !violations.is_empty() {
        return None;
    }
    Some(ShowFields {
        campaign_id: campaign_id?,
        channel_id: channel_id?,
        host_id: host_id?,
        title: title?,
        start_time: caravan_platform::time::Micros(start?),
        end_time: caravan_platform::time::Micros(end?),
        offers: offer_list,
    })
}

pub(super) fn show_to_pb(show: Show) -> pb::Show {
    let Show {
        id,
        fields,
        state,
        pinned_product,
        live_time,
        close_time,
        allocation: _,
        version,
        create_time,
        update_time,
    } = show;
    let Text { zh_cn, en, ru, origin, origin_language } = fields.title;
    let state = match state {
        ShowState::Scheduled => pb::show::State::Scheduled,
        ShowState::Live => pb::show::State::Live,
        ShowState::Ended => pb::show::State::Ended,
        ShowState::Cancelled => pb::show::State::Cancelled,
    };
    pb::Show {
        name: format!("shows/{id}"),
        campaign: format!("campaigns/{}", fields.campaign_id),
        channel: format!("channels/{}", fields.channel_id),
        host: format!("hosts/{}", fields.host_id),
        title: Some(types::LocalizedText { zh_cn, en, ru, origin, origin_language }),
        start_time: Some(timestamp_from_micros(fields.start_time.0)),
        end_time: Some(timestamp_from_micros(fields.end_time.0)),
        offers: fields
            .offers
            .into_iter()
            .map(|o| pb::Offer {
                product: format!("products/{}", o.product_id),
                show_price: Some(types::Money { currency_code: o.price.currency, minor_units: o.price.minor_units }),
                allocated_quantity: o.allocated_quantity,
                per_buyer_limit: o.per_buyer_limit,
                display_order: o.display_order,
            })
            .collect(),
        state: state as i32,
        pinned_product: pinned_product.map(|p| format!("products/{p}")).unwrap_or_default(),
        live_time: live_time.map(|t| timestamp_from_micros(t.0)),
        close_time: close_time.map(|t| timestamp_from_micros(t.0)),
        version,
        etag: domain::etag(version),
        create_time: Some(timestamp_from_micros(create_time.0)),
        update_time: Some(timestamp_from_micros(update_time.0)),
    }
}

fn state_name(state: ShowState) -> &'static str {
    match state {
        ShowState::Scheduled => "SCHEDULED",
        ShowState::Live => "LIVE",
        ShowState::Ended => "ENDED",
        ShowState::Cancelled => "CANCELLED",
    }
}

impl SchedulingApi {
    /// CreateShow: the request checked, then the line-up saga
    /// ([`crate::lineup`]).
    pub(super) async fn create_show_once(
        &self,
        request: pb::CreateShowRequest,
        caller: &str,
        traceparent: &str,
    ) -> Result<pb::Show, Status> {
        let pb::CreateShowRequest { show, show_id: chosen, request_id } = request;
        let mut violations = FieldViolations::new();
        let id = show_id(chosen, caller, &request_id, &mut violations);
        let fields = match show {
            None => {
                violations.add("show", "is required");
                None
            }
            Some(show) => show_fields(show, &mut violations),
        };
        violations.into_result()?;
        let fields = fields.ok_or_else(|| invalid_argument("show", "is invalid"))?;
        Ok(show_to_pb(self.line_up.book(&id, &fields, traceparent).await?))
    }

    pub(super) async fn list_shows_page(&self, request: pb::ListShowsRequest) -> Result<pb::ListShowsResponse, Status> {
        let pb::ListShowsRequest { page_size, page_token, campaign, channel, state } = request;
        let mut violations = FieldViolations::new();
        let mut filter_id = |name: &str, collection: &str, field: &str| {
            if name.is_empty() {
                return None;
            }
            resource::parse_name(name, collection).map(str::to_owned).map_err(|e| violations.add(field, e)).ok()
        };
        let campaign_id = filter_id(&campaign, "campaigns", "campaign");
        let channel_id = filter_id(&channel, "channels", "channel");
        let state = match pb::show::State::try_from(state) {
            Ok(pb::show::State::Unspecified) => None,
            Ok(pb::show::State::Scheduled) => Some(ShowState::Scheduled),
            Ok(pb::show::State::Live) => Some(ShowState::Live),
            Ok(pb::show::State::Ended) => Some(ShowState::Ended),
            Ok(pb::show::State::Cancelled) => Some(ShowState::Cancelled),
            Err(_) => {
                violations.add("state", "is not a show state");
                None
            }
        };
        violations.into_result()?;
        let size = paging::page_size(page_size, PAGE.0, PAGE.1)?;
        let filter = format!("{campaign}|{channel}|{}", state.map_or(0, |s| s as i16));
        let bad_token = || invalid_argument("page_token", "not a token returned by ListShows");
        let after = match paging::decode_bound_token(&page_token, &filter)? {
            None => None,
            Some(key) => {
                let (start, id) = key.split_once('/').ok_or_else(bad_token)?;
                Some((start.parse::<i64>().map_err(|_| bad_token())?, id.to_owned()))
            }
        };
        let shows = self
            .store
            .shows(
                after.as_ref().map(|(s, id)| (*s, id.as_str())),
                campaign_id.as_deref(),
                channel_id.as_deref(),
                state,
                paging::one_more(size),
            )
            .await?;
        let (shows, next_page_token) = paging::page(shows, size, |s| {
            paging::encode_bound_token(&filter, &format!("{}/{}", s.fields.start_time.0, s.id))
        });
        Ok(pb::ListShowsResponse { shows: shows.into_iter().map(show_to_pb).collect(), next_page_token })
    }

    /// StartShow, EndShow, CancelShow: the transition if the show is where it
    /// leaves from, the same answer if it is already where it goes.
    pub(super) async fn change_state(&self, name: &str, transition: Transition) -> Result<pb::Show, Status> {
        let id = resource::parse_name(name, "shows").map_err(|e| invalid_argument("name", e))?.to_owned();
        let (target, action) = match transition {
            Transition::Start { .. } => (ShowState::Live, "only a SCHEDULED show whose line-up is allocated can start"),
            Transition::End { .. } => (ShowState::Ended, "only a LIVE show can end"),
            Transition::Cancel => (ShowState::Cancelled, "only a SCHEDULED show can be cancelled"),
        };
        if matches!(transition, Transition::End { .. }) && self.store.show(&id).await?.state == ShowState::Live {
            crate::clock::close_first(&self.upstream, &id).await;
        }
        if !self.store.transition(&id, transition, self.clock.now()).await? {
            let show = self.store.show(&id).await?;
            if show.state == target {
                return Ok(show_to_pb(show));
            }
            let reason = if show.allocation == AllocationSync::Allocating {
                Reason::LineUpNotAllocated
            } else {
                Reason::ShowState
            };
            return Err(Error::ShowState { show: id, state: state_name(show.state), action, reason }.into());
        }
        if target != ShowState::Live {
            self.line_up.return_allocation(&id).await;
        }
        Ok(show_to_pb(self.store.show(&id).await?))
    }

    /// PinProduct: the product being presented, only while LIVE and only from
    /// the line-up; an empty product unpins.
    pub(super) async fn pin(&self, request: pb::PinProductRequest) -> Result<pb::Show, Status> {
        let pb::PinProductRequest { name, product, request_id: _ } = request;
        let mut violations = FieldViolations::new();
        let id = resource::parse_name(&name, "shows").map(str::to_owned).map_err(|e| violations.add("name", e)).ok();
        let product = if product.is_empty() {
            None
        } else {
            resource::parse_name(&product, "products").map(str::to_owned).map_err(|e| violations.add("product", e)).ok()
        };
        violations.into_result()?;
        let id = id.ok_or_else(|| invalid_argument("name", "is invalid"))?;
        if self.store.pin(&id, product.as_deref(), self.clock.now()).await? {
            return Ok(show_to_pb(self.store.show(&id).await?));
        }
        let show = self.store.show(&id).await?;
        if show.state != ShowState::Live {
            return Err(Error::ShowState {
                show: id,
                state: state_name(show.state),
                action: "only a LIVE show can pin a product",
                reason: Reason::ShowState,
            }
            .into());
        }
        let product = product.unwrap_or_default();
        Err(caravan_platform::error::failed_precondition(
            Reason::NotOnLineUp,
            &format!("products/{product}"),
            format!("products/{product} is not on the line-up of shows/{id}"),
            std::collections::HashMap::from([
                ("product".to_owned(), format!("products/{product}")),
                ("show".to_owned(), format!("shows/{id}")),
            ]),
        ))
    }

    /// GetLiveOffers: the show's state and the asked offers, from memory (at
    /// most `store::LIVE_OFFERS_TTL` old).
    pub(super) async fn live_offers(
        &self,
        request: pb::GetLiveOffersRequest,
    ) -> Result<pb::GetLiveOffersResponse, Status> {
        let pb::GetLiveOffersRequest { show, products } = request;
        let mut violations = FieldViolations::new();
        let id = resource::parse_name(&show, "shows").map(str::to_owned).map_err(|e| violations.add("show", e)).ok();
        violations.check(products.len() <= domain::MAX_OFFERS, "products", format!("at most {}", domain::MAX_OFFERS));
        let asked: Vec<String> = products
            .iter()
            .enumerate()
            .filter_map(|(i, p)| {
                resource::parse_name(p, "products")
                    .map(str::to_owned)
                    .map_err(|e| violations.add(format!("products[{i}]"), e))
                    .ok()
            })
            .collect();
        violations.into_result()?;
        let id = id.ok_or_else(|| invalid_argument("show", "is invalid"))?;
        let cached = self.store.show_cached(&id).await?;
        let partner = self.store.channel_partner_cached(&cached.fields.channel_id).await?;
        let pb::Show { name, state, offers, version, .. } = show_to_pb(Show::clone(&cached));
        let (offers, not_offered) = if asked.is_empty() {
            (offers, Vec::new())
        } else {
            let mut found = Vec::new();
            let mut missing = Vec::new();
            for product in &asked {
                let name = format!("products/{product}");
                match offers.iter().find(|o| o.product == name) {
                    Some(offer) => found.push(offer.clone()),
                    None => missing.push(name),
                }
            }
            (found, missing)
        };
        Ok(pb::GetLiveOffersResponse { show: name, state, offers, not_offered, version, partner })
    }

    /// UpdateShow: title, host, times and line-up of a SCHEDULED show. A new
    /// line-up is checked with catalog and allocated as CreateShow does; if
    /// inventory refuses it, the show keeps its previous line-up.
    pub(super) async fn update_show_once(&self, request: pb::UpdateShowRequest) -> Result<pb::Show, Status> {
        let pb::UpdateShowRequest { show, update_mask, request_id: _ } = request;
        let show = show.ok_or_else(|| invalid_argument("show", "is required"))?;
        let id = resource::parse_name(&show.name, "shows").map_err(|e| invalid_argument("show.name", e))?.to_owned();
        let paths = resource::mask_paths(
            update_mask.map(|m| m.paths),
            &["title", "host", "start_time", "end_time", "offers"],
            &[
                "name",
                "campaign",
                "channel",
                "state",
                "pinned_product",
                "live_time",
                "close_time",
                "version",
                "etag",
                "create_time",
                "update_time",
            ],
            "Show",
        )?;
        let name = format!("shows/{id}");
        let current = self.store.show(&id).await?;
        if !show.etag.is_empty() && show.etag != domain::etag(current.version) {
            return Err(etag_mismatch("caravan.scheduling.v1.Show", &name));
        }
        if current.state != ShowState::Scheduled || current.allocation != AllocationSync::Synced {
            let reason = if current.allocation == AllocationSync::Allocating {
                Reason::LineUpNotAllocated
            } else {
                Reason::ShowState
            };
            return Err(Error::ShowState {
                show: id,
                state: state_name(current.state),
                action: "only a SCHEDULED show whose line-up is allocated can be changed",
                reason,
            }
            .into());
        }
        let mut merged = show_to_pb(current.clone());
        for path in &paths {
            match path.as_str() {
                "title" => merged.title.clone_from(&show.title),
                "host" => merged.host.clone_from(&show.host),
                "start_time" => merged.start_time = show.start_time,
                "end_time" => merged.end_time = show.end_time,
                _ => merged.offers.clone_from(&show.offers),
            }
        }
        let mut violations = FieldViolations::new();
        let fields = show_fields(merged, &mut violations);
        violations.into_result()?;
        let fields = fields.ok_or_else(|| invalid_argument("show", "is invalid"))?;
        let line_up_changed = fields.offers != current.fields.offers;
        if line_up_changed {
            self.upstream.check_products(&fields.offers).await?;
        }
        let now = self.clock.now();
        let Some(updated) = self.store.update_show(&id, current.version, &fields, line_up_changed, now).await? else {
            return Err(etag_mismatch("caravan.scheduling.v1.Show", &name));
        };
        if !line_up_changed {
            return Ok(show_to_pb(updated));
        }
        match self.upstream.allocate(&id, &fields.offers).await {
            Ok(()) => {
                self.store.allocation_done(&id, self.clock.now()).await?;
                Ok(show_to_pb(self.store.show(&id).await?))
            }
            Err(refused @ Error::Refused { .. }) => {
                // Inventory changed nothing (all or nothing): so neither do we.
                self.store.settle_line_up(&id, &current.fields.offers, self.clock.now()).await?;
                Err(refused.into())
            }
            // Transient: the new line-up is re-driven by the clock worker.
            Err(e) => Err(e.into()),
        }
    }
}
