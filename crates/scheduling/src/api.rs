//! gRPC handlers: protobuf in, domain values through the store, protobuf out.
//! The only module of the crate that sees prost types.

mod hosts;
mod resources;
mod shows;

use caravan_platform::{
    error::{FieldViolations, invalid_argument},
    idempotency::Idempotency,
    paging, resource,
    stream::{Delivery, Hub},
    time::SharedClock,
};
use caravan_proto::scheduling::v1::{self as pb, scheduling_service_server::SchedulingService};
use futures::stream::BoxStream;
use tonic::{Request, Response, Status};

use self::hosts::host_to_pb;
use crate::{
    domain::CountryName,
    lineup::LineUp,
    store::{Store, Transition},
    upstream::Upstream,
    watch::ShowFeed,
};

/// Default and largest page of list methods.
const PAGE: (u64, u64) = (50, 500);

/// Scheduling's gRPC service.
#[derive(Debug, Clone)]
pub struct SchedulingApi {
    store: Store,
    upstream: Upstream,
    idempotency: Idempotency,
    clock: SharedClock,
    hub: Hub<ShowFeed>,
    line_up: LineUp,
}

impl SchedulingApi {
    /// Handlers over `store`, calling `upstream`, with request ids kept by
    /// `idempotency`, reading the time from `clock`, streaming shows through `hub`.
    pub fn new(
        store: Store,
        upstream: Upstream,
        idempotency: Idempotency,
        clock: SharedClock,
        hub: Hub<ShowFeed>,
    ) -> Self {
        let line_up = LineUp::new(store.clone(), upstream.clone(), clock.clone());
        SchedulingApi { store, upstream, idempotency, clock, hub, line_up }
    }
}

const CREATE_HOST: &str = "caravan.scheduling.v1.SchedulingService/CreateHost";
const UPDATE_HOST: &str = "caravan.scheduling.v1.SchedulingService/UpdateHost";
const CREATE_CAMPAIGN: &str = "caravan.scheduling.v1.SchedulingService/CreateCampaign";
const UPDATE_CAMPAIGN: &str = "caravan.scheduling.v1.SchedulingService/UpdateCampaign";
const CREATE_CHANNEL: &str = "caravan.scheduling.v1.SchedulingService/CreateChannel";
const UPDATE_CHANNEL: &str = "caravan.scheduling.v1.SchedulingService/UpdateChannel";
const CREATE_SHOW: &str = "caravan.scheduling.v1.SchedulingService/CreateShow";
const START_SHOW: &str = "caravan.scheduling.v1.SchedulingService/StartShow";
const END_SHOW: &str = "caravan.scheduling.v1.SchedulingService/EndShow";
const CANCEL_SHOW: &str = "caravan.scheduling.v1.SchedulingService/CancelShow";
const PIN_PRODUCT: &str = "caravan.scheduling.v1.SchedulingService/PinProduct";
const UPDATE_SHOW: &str = "caravan.scheduling.v1.SchedulingService/UpdateShow";

#[tonic::async_trait]
impl SchedulingService for SchedulingApi {
    type WatchShowStream = BoxStream<'static, Result<pb::WatchShowResponse, Status>>;

    #[tracing::instrument(level = "debug", skip_all, fields(host_id = %request.get_ref().host_id))]
    async fn create_host(&self, request: Request<pb::CreateHostRequest>) -> Result<Response<pb::Host>, Status> {
        // A retry with the same request id gets the same host, even a generated id.
        let create = Box::pin(self.create_host_once(request.get_ref().clone()));
        self.idempotency
            .run_for(&request, CREATE_HOST, &request.get_ref().request_id, || create)
            .await
            .map(Response::new)
    }

    #[tracing::instrument(level = "debug", skip_all, fields(name = %request.get_ref().name))]
    async fn get_host(&self, request: Request<pb::GetHostRequest>) -> Result<Response<pb::Host>, Status> {
        let pb::GetHostRequest { name } = request.into_inner();
        let id =
            resource::parse_name(&name, "hosts").map_err(|e| caravan_platform::error::invalid_argument("name", e))?;
        let host = self.store.host(id).await?;
        Ok(Response::new(host_to_pb(host)))
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn list_hosts(
        &self,
        request: Request<pb::ListHostsRequest>,
    ) -> Result<Response<pb::ListHostsResponse>, Status> {
        let pb::ListHostsRequest { page_size, page_token, country } = request.into_inner();
        let mut violations = FieldViolations::new();
        let size = paging::page_size(page_size, PAGE.0, PAGE.1)
            .map_err(|_| violations.add("page_size", "must not be negative"))
            .ok();
        // A token is valid only with the filter it was issued for.
        let after = violations.take(paging::decode_bound_token(&page_token, &country));
        let filter = country.clone();
        let country = if country.is_empty() {
            Some(None)
        } else {
            CountryName::parse(&country).map(Some).map_err(|e| violations.add("country", e)).ok()
        };
        violations.into_result()?;
        let (Some(size), Some(after), Some(country)) = (size, after, country) else {
            return Err(Status::invalid_argument("request is invalid"));
        };
        let hosts = self.store.hosts(after.as_deref(), country.as_ref(), paging::one_more(size)).await?;
        let (hosts, next_page_token) = paging::page(hosts, size, |h| paging::encode_bound_token(&filter, &h.id));
        Ok(Response::new(pb::ListHostsResponse { hosts: hosts.into_iter().map(host_to_pb).collect(), next_page_token }))
    }

    #[tracing::instrument(level = "debug", skip_all, fields(campaign_id = %request.get_ref().campaign_id))]
    async fn create_campaign(
        &self,
        request: Request<pb::CreateCampaignRequest>,
    ) -> Result<Response<pb::Campaign>, Status> {
        let create = Box::pin(self.create_campaign_once(request.get_ref().clone()));
        self.idempotency
            .run_for(&request, CREATE_CAMPAIGN, &request.get_ref().request_id, || create)
            .await
            .map(Response::new)
    }

    #[tracing::instrument(level = "debug", skip_all, fields(name = %request.get_ref().name))]
    async fn get_campaign(&self, request: Request<pb::GetCampaignRequest>) -> Result<Response<pb::Campaign>, Status> {
        let pb::GetCampaignRequest { name } = request.into_inner();
        let id = resource::parse_name(&name, "campaigns").map_err(|e| invalid_argument("name", e))?;
        Ok(Response::new(resources::campaign_to_pb(self.store.campaign(id).await?)))
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn list_campaigns(
        &self,
        request: Request<pb::ListCampaignsRequest>,
    ) -> Result<Response<pb::ListCampaignsResponse>, Status> {
        let pb::ListCampaignsRequest { page_size, page_token } = request.into_inner();
        let size = paging::page_size(page_size, PAGE.0, PAGE.1)?;
        let bad_token = || invalid_argument("page_token", "not a token returned by ListCampaigns");
        let after = match paging::decode_token(&page_token)? {
            None => None,
            Some(key) => {
                let (start, id) = key.split_once('/').ok_or_else(bad_token)?;
                Some((start.parse::<i32>().map_err(|_| bad_token())?, id.to_owned()))
            }
        };
        let campaigns =
            self.store.campaigns(after.as_ref().map(|(s, id)| (*s, id.as_str())), paging::one_more(size)).await?;
        let (campaigns, next_page_token) = paging::page(campaigns, size, |c| {
            paging::encode_token(&format!("{}/{}", crate::domain::date_key(c.fields.start_date), c.id))
        });
        Ok(Response::new(pb::ListCampaignsResponse {
            campaigns: campaigns.into_iter().map(resources::campaign_to_pb).collect(),
            next_page_token,
        }))
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn update_campaign(
        &self,
        request: Request<pb::UpdateCampaignRequest>,
    ) -> Result<Response<pb::Campaign>, Status> {
        let update = Box::pin(self.update_campaign_once(request.get_ref().clone()));
        self.idempotency
            .run_for(&request, UPDATE_CAMPAIGN, &request.get_ref().request_id, || update)
            .await
            .map(Response::new)
    }

    #[tracing::instrument(level = "debug", skip_all, fields(channel_id = %request.get_ref().channel_id))]
    async fn create_channel(
        &self,
        request: Request<pb::CreateChannelRequest>,
    ) -> Result<Response<pb::Channel>, Status> {
        let create = Box::pin(self.create_channel_once(request.get_ref().clone()));
        self.idempotency
            .run_for(&request, CREATE_CHANNEL, &request.get_ref().request_id, || create)
            .await
            .map(Response::new)
    }

    #[tracing::instrument(level = "debug", skip_all, fields(name = %request.get_ref().name))]
    async fn get_channel(&self, request: Request<pb::GetChannelRequest>) -> Result<Response<pb::Channel>, Status> {
        let pb::GetChannelRequest { name } = request.into_inner();
        let id = resource::parse_name(&name, "channels").map_err(|e| invalid_argument("name", e))?;
        Ok(Response::new(resources::channel_to_pb(self.store.channel(id).await?)))
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn list_channels(
        &self,
        request: Request<pb::ListChannelsRequest>,
    ) -> Result<Response<pb::ListChannelsResponse>, Status> {
        let pb::ListChannelsRequest { page_size, page_token, partner } = request.into_inner();
        let mut violations = FieldViolations::new();
        if !partner.is_empty()
            && let Err(problem) = crate::domain::check_slug(&partner)
        {
            violations.add("partner", problem);
        }
        violations.into_result()?;
        let size = paging::page_size(page_size, PAGE.0, PAGE.1)?;
        let after = paging::decode_bound_token(&page_token, &partner)?;
        let partner_filter = (!partner.is_empty()).then_some(partner.as_str());
        let channels = self.store.channels(after.as_deref(), partner_filter, paging::one_more(size)).await?;
        let (channels, next_page_token) = paging::page(channels, size, |c| paging::encode_bound_token(&partner, &c.id));
        Ok(Response::new(pb::ListChannelsResponse {
            channels: channels.into_iter().map(resources::channel_to_pb).collect(),
            next_page_token,
        }))
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn update_channel(
        &self,
        request: Request<pb::UpdateChannelRequest>,
    ) -> Result<Response<pb::Channel>, Status> {
        let update = Box::pin(self.update_channel_once(request.get_ref().clone()));
        self.idempotency
            .run_for(&request, UPDATE_CHANNEL, &request.get_ref().request_id, || update)
            .await
            .map(Response::new)
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn update_host(&self, request: Request<pb::UpdateHostRequest>) -> Result<Response<pb::Host>, Status> {
        let update = Box::pin(self.update_host_once(request.get_ref().clone()));
        self.idempotency
            .run_for(&request, UPDATE_HOST, &request.get_ref().request_id, || update)
            .await
            .map(Response::new)
    }

    #[tracing::instrument(level = "debug", skip_all, fields(show_id = %request.get_ref().show_id))]
    async fn create_show(&self, request: Request<pb::CreateShowRequest>) -> Result<Response<pb::Show>, Status> {
        let caller = caravan_platform::auth::principal(&request)?.id.clone();
        let traceparent = caravan_platform::telemetry::current_traceparent();
        let create = Box::pin(self.create_show_once(request.get_ref().clone(), &caller, &traceparent));
        self.idempotency.run_for(&request, CREATE_SHOW, &request.get_ref().request_id, || create).await.map(|show| {
            self.hub.wake();
            Response::new(show)
        })
    }

    #[tracing::instrument(level = "debug", skip_all, fields(name = %request.get_ref().name))]
    async fn get_show(&self, request: Request<pb::GetShowRequest>) -> Result<Response<pb::Show>, Status> {
        let pb::GetShowRequest { name } = request.into_inner();
        let id = resource::parse_name(&name, "shows").map_err(|e| invalid_argument("name", e))?;
        Ok(Response::new(shows::show_to_pb(self.store.show(id).await?)))
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn list_shows(
        &self,
        request: Request<pb::ListShowsRequest>,
    ) -> Result<Response<pb::ListShowsResponse>, Status> {
        self.list_shows_page(request.into_inner()).await.map(Response::new)
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn update_show(&self, request: Request<pb::UpdateShowRequest>) -> Result<Response<pb::Show>, Status> {
        let update = Box::pin(self.update_show_once(request.get_ref().clone()));
        let show = self.idempotency.run_for(&request, UPDATE_SHOW, &request.get_ref().request_id, || update).await?;
        self.hub.wake();
        Ok(Response::new(show))
    }

    #[tracing::instrument(level = "debug", skip_all, fields(name = %request.get_ref().name))]
    async fn start_show(&self, request: Request<pb::StartShowRequest>) -> Result<Response<pb::Show>, Status> {
        let start = Box::pin(self.change_state(&request.get_ref().name, Transition::Start { by_clock: false }));
        let show = self.idempotency.run_for(&request, START_SHOW, &request.get_ref().request_id, || start).await?;
        self.hub.wake();
        Ok(Response::new(show))
    }

    #[tracing::instrument(level = "debug", skip_all, fields(name = %request.get_ref().name))]
    async fn end_show(&self, request: Request<pb::EndShowRequest>) -> Result<Response<pb::Show>, Status> {
        let end = Box::pin(self.change_state(&request.get_ref().name, Transition::End { by_clock: false }));
        let show = self.idempotency.run_for(&request, END_SHOW, &request.get_ref().request_id, || end).await?;
        self.hub.wake();
        Ok(Response::new(show))
    }

    #[tracing::instrument(level = "debug", skip_all, fields(name = %request.get_ref().name))]
    async fn cancel_show(&self, request: Request<pb::CancelShowRequest>) -> Result<Response<pb::Show>, Status> {
        let pb::CancelShowRequest { name, reason, request_id } = request.get_ref();
        crate::domain::check_text(reason, false).map_err(|e| invalid_argument("reason", e))?;
        let cancel = Box::pin(self.change_state(name, Transition::Cancel));
        let show = self.idempotency.run_for(&request, CANCEL_SHOW, request_id, || cancel).await?;
        self.hub.wake();
        tracing::info!(show = %show.name, reason = %reason, "show cancelled");
        Ok(Response::new(show))
    }

    #[tracing::instrument(level = "debug", skip_all, fields(name = %request.get_ref().name))]
    async fn pin_product(&self, request: Request<pb::PinProductRequest>) -> Result<Response<pb::Show>, Status> {
        let pin = Box::pin(self.pin(request.get_ref().clone()));
        let show = self.idempotency.run_for(&request, PIN_PRODUCT, &request.get_ref().request_id, || pin).await?;
        self.hub.wake();
        Ok(Response::new(show))
    }

    #[tracing::instrument(level = "debug", skip_all, fields(show = %request.get_ref().show))]
    async fn get_live_offers(
        &self,
        request: Request<pb::GetLiveOffersRequest>,
    ) -> Result<Response<pb::GetLiveOffersResponse>, Status> {
        self.live_offers(request.into_inner()).await.map(Response::new)
    }

    #[tracing::instrument(level = "debug", skip_all, fields(name = %request.get_ref().name))]
    async fn watch_show(
        &self,
        request: Request<pb::WatchShowRequest>,
    ) -> Result<Response<Self::WatchShowStream>, Status> {
        use futures::StreamExt as _;
        let pb::WatchShowRequest { name, after_version } = request.into_inner();
        let id = resource::parse_name(&name, "shows").map_err(|e| invalid_argument("name", e))?.to_owned();
        if after_version < 0 {
            return Err(invalid_argument("after_version", "must not be negative"));
        }
        let current = self.store.show(&id).await?;
        if after_version > current.version {
            return Err(invalid_argument("after_version", format!("the show is at version {}", current.version)));
        }
        let cursors = if after_version > 0 {
            std::collections::HashMap::from([(id.clone(), after_version)])
        } else {
            std::collections::HashMap::new()
        };
        let subscription = self.hub.subscribe(vec![id], cursors)?;
        let stream = subscription.map(|item| {
            item.map(|(delivery, show)| {
                let kind = match delivery {
                    Delivery::Snapshot => pb::watch_show_response::Kind::Snapshot,
                    Delivery::Change => pb::watch_show_response::Kind::Change,
                };
                pb::WatchShowResponse { kind: kind as i32, show: Some(shows::show_to_pb(show)) }
            })
        });
        Ok(Response::new(stream.boxed()))
    }
}
