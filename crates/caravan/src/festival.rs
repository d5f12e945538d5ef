//! A festival's timetable set up through scheduling's public API, as an
//! operator does: its campaign, channels, hosts and shows. `caravan demo`
//! (the seed's festival) and the load generator's `order` scenario (a
//! one-product flash sale) both set up through it; a set-up run again finds
//! what it made before and goes on.

use caravan_proto::{
    scheduling::v1::{self as scheduling, scheduling_service_client::SchedulingServiceClient},
    r#type::v1 as types,
};
use chrono::Datelike as _;
use tonic::{
    Code,
    client::GrpcService,
    codegen::{Body, Bytes, StdError},
};

use crate::channel::Authed;

/// English text, for titles.
pub fn text(en: &str) -> Option<types::LocalizedText> {
    Some(types::LocalizedText { en: en.to_owned(), ..Default::default() })
}

/// A calendar date as the API writes it.
pub fn date(d: chrono::NaiveDate) -> Option<types::Date> {
    Some(types::Date {
        year: d.year(),
        month: i32::try_from(d.month()).unwrap_or(1),
        day: i32::try_from(d.day()).unwrap_or(1),
    })
}

/// `result` of creating `what`, where one that already exists (a set-up run
/// again) is as good as created.
pub fn created<T>(result: Result<tonic::Response<T>, tonic::Status>, what: &str) -> anyhow::Result<()> {
    match result {
        Ok(_) => Ok(()),
        Err(status) if status.code() == Code::AlreadyExists => Ok(()),
        Err(status) => anyhow::bail!("{what}: {:?}: {}", status.code(), status.message()),
    }
}

/// Scheduling, as the operator who sets up the timetable, over a channel
/// that sends the operator's key (`Authed`; the tests' own channel too).
#[derive(Debug, Clone)]
pub struct Timetable<C = Authed>(SchedulingServiceClient<C>);

impl<C> Timetable<C>
where
    C: GrpcService<tonic::body::Body>,
    C::Error: Into<StdError>,
    C::ResponseBody: Body<Data = Bytes> + Send + 'static,
    <C::ResponseBody as Body>::Error: Into<StdError> + Send,
{
    /// Over `scheduling`, a channel with the operator's key.
    pub fn new(scheduling: C) -> Self {
        Timetable(SchedulingServiceClient::new(scheduling))
    }

    /// Creates campaign `id`.
    pub async fn campaign(&mut self, id: &str, campaign: scheduling::Campaign) -> anyhow::Result<()> {
        let request = scheduling::CreateCampaignRequest {
            campaign: Some(campaign),
            campaign_id: id.to_owned(),
            request_id: String::new(),
        };
        created(self.0.create_campaign(request).await, &format!("creating the campaign {id}"))
    }

    /// Creates channel `id`: `display_name` on `platform`, sold through `partner`.
    pub async fn channel(&mut self, id: &str, platform: &str, display_name: &str, partner: &str) -> anyhow::Result<()> {
        let channel = scheduling::Channel {
            platform: platform.to_owned(),
            display_name: display_name.to_owned(),
            partner: partner.to_owned(),
            ..Default::default()
        };
        let request = scheduling::CreateChannelRequest {
            channel: Some(channel),
            channel_id: id.to_owned(),
            request_id: String::new(),
        };
        created(self.0.create_channel(request).await, &format!("creating the channel {id}"))
    }

    /// Creates host `id`.
    pub async fn host(&mut self, id: &str, host: scheduling::Host) -> anyhow::Result<()> {
        let request =
            scheduling::CreateHostRequest { host: Some(host), host_id: id.to_owned(), request_id: String::new() };
        created(self.0.create_host(request).await, &format!("creating the host {id}"))
    }

    /// Creates show `id` (booking its line-up).
    pub async fn show(&mut self, id: &str, show: scheduling::Show) -> anyhow::Result<()> {
        let request =
            scheduling::CreateShowRequest { show: Some(show), show_id: id.to_owned(), request_id: String::new() };
        created(self.0.create_show(request).await, &format!("creating the show {id}"))
    }

    /// Starts show `id` now rather than at its start time; one the show
    /// clock already started is as good.
    pub async fn start(&mut self, id: &str) -> anyhow::Result<()> {
        let request = scheduling::StartShowRequest { name: format!("shows/{id}"), request_id: String::new() };
        match self.0.start_show(request).await {
            Ok(_) => Ok(()),
            Err(status) if status.code() == Code::FailedPrecondition => Ok(()),
            Err(status) => anyhow::bail!("starting the show {id}: {:?}: {}", status.code(), status.message()),
        }
    }
}
