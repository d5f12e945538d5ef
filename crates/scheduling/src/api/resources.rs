//! Campaigns and channels: validation, field masks and etags.

use caravan_platform::{
    error::{FieldViolations, etag_mismatch, invalid_argument},
    resource::{self, ID_RULE},
};
use caravan_proto::{scheduling::v1 as pb, timestamp_from_micros, r#type::v1 as types};
use chrono::{Datelike as _, NaiveDate};
use tonic::Status;

use super::SchedulingApi;
use crate::domain::{
    Campaign, CampaignFields, Channel, ChannelFields, Text, check_slug, check_text, etag, parse_time_zone,
};

const CAMPAIGN: &str = "caravan.scheduling.v1.Campaign";
const CHANNEL: &str = "caravan.scheduling.v1.Channel";

/// How many times an update re-reads after losing a race to another writer.
pub(super) const UPDATE_ATTEMPTS: usize = 3;

fn date_from_pb(date: Option<types::Date>, field: &str, violations: &mut FieldViolations) -> Option<NaiveDate> {
    match date {
        None => {
            violations.add(field, "is required");
            None
        }
        Some(types::Date { year, month, day }) => {
            let date = (|| NaiveDate::from_ymd_opt(year, u32::try_from(month).ok()?, u32::try_from(day).ok()?))()
                .filter(|d| (2000..=2100).contains(&d.year()));
            if date.is_none() {
                violations.add(field, format!("{year:04}-{month:02}-{day:02} is not a date between 2000 and 2100"));
            }
            date
        }
    }
}

fn date_to_pb(date: NaiveDate) -> types::Date {
    types::Date {
        year: date.year(),
        month: i32::try_from(date.month()).unwrap_or_default(),
        day: i32::try_from(date.day()).unwrap_or_default(),
    }
}

pub(super) fn text_from_pb(
    text: Option<types::LocalizedText>,
    field: &str,
    violations: &mut FieldViolations,
) -> Option<Text> {
    let Some(types::LocalizedText { zh_cn, en, ru, origin, origin_language }) = text else {
        violations.add(field, "is required");
        return None;
    };
    let text = Text { zh_cn, en, ru, origin, origin_language };
    let problems = text.check();
    for (sub, problem) in &problems {
        violations.add(format!("{field}.{sub}"), problem.clone());
    }
    problems.is_empty().then_some(text)
}

fn text_to_pb(text: Text) -> types::LocalizedText {
    let Text { zh_cn, en, ru, origin, origin_language } = text;
    types::LocalizedText { zh_cn, en, ru, origin, origin_language }
}

/// Validates a campaign from a request (fields under `campaign.`).
fn campaign_fields(campaign: pb::Campaign, violations: &mut FieldViolations) -> Option<CampaignFields> {
    let pb::Campaign {
        name: _,
        title,
        organiser,
        start_date,
        end_date,
        time_zone,
        etag: _,
        create_time: _,
        update_time: _,
    } = campaign;
    let title = text_from_pb(title, "campaign.title", violations);
    let organiser_ok = check_text(&organiser, true).map_err(|e| violations.add("campaign.organiser", e)).is_ok();
    let start = date_from_pb(start_date, "campaign.start_date", violations);
    let end = date_from_pb(end_date, "campaign.end_date", violations);
    if let (Some(start), Some(end)) = (start, end)
        && let Some(problem) = CampaignFields::check_dates(start, end)
    {
        violations.add("campaign.end_date", problem);
        return None;
    }
    let time_zone = parse_time_zone(&time_zone).map_err(|e| violations.add("campaign.time_zone", e)).ok();
    match (title, organiser_ok, start, end, time_zone) {
        (Some(title), true, Some(start_date), Some(end_date), Some(time_zone)) => {
            Some(CampaignFields { title, organiser, start_date, end_date, time_zone })
        }
        _ => None,
    }
}

pub(super) fn campaign_to_pb(campaign: Campaign) -> pb::Campaign {
    let Campaign {
        id,
        fields: CampaignFields { title, organiser, start_date, end_date, time_zone },
        version,
        create_time,
        update_time,
    } = campaign;
    pb::Campaign {
        name: format!("campaigns/{id}"),
        title: Some(text_to_pb(title)),
        organiser,
        start_date: Some(date_to_pb(start_date)),
        end_date: Some(date_to_pb(end_date)),
        time_zone: time_zone.name().to_owned(),
        etag: etag(version),
        create_time: Some(timestamp_from_micros(create_time.0)),
        update_time: Some(timestamp_from_micros(update_time.0)),
    }
}

/// Validates a channel from a request (fields under `channel.`).
fn channel_fields(channel: pb::Channel, violations: &mut FieldViolations) -> Option<ChannelFields> {
    let pb::Channel { name: _, platform, display_name, partner, etag: _, create_time: _, update_time: _ } = channel;
    let mut ok = true;
    for (field, result) in [
        ("channel.platform", check_slug(&platform)),
        ("channel.display_name", check_text(&display_name, true)),
        ("channel.partner", check_slug(&partner)),
    ] {
        if let Err(problem) = result {
            violations.add(field, problem);
            ok = false;
        }
    }
    ok.then_some(ChannelFields { platform, display_name, partner })
}

pub(super) fn channel_to_pb(channel: Channel) -> pb::Channel {
    let Channel { id, fields: ChannelFields { platform, display_name, partner }, version, create_time, update_time } =
        channel;
    pb::Channel {
        name: format!("channels/{id}"),
        platform,
        display_name,
        partner,
        etag: etag(version),
        create_time: Some(timestamp_from_micros(create_time.0)),
        update_time: Some(timestamp_from_micros(update_time.0)),
    }
}

/// A chosen id, checked, or a generated one.
fn chosen_id(id: String, field: &str, prefix: char, violations: &mut FieldViolations) -> String {
    if id.is_empty() {
        resource::new_id(prefix)
    } else {
        if !resource::valid_id(&id) {
            violations.add(field, ID_RULE);
        }
        id
    }
}

impl SchedulingApi {
    pub(super) async fn create_campaign_once(
        &self,
        request: pb::CreateCampaignRequest,
    ) -> Result<pb::Campaign, Status> {
        let pb::CreateCampaignRequest { campaign, campaign_id, request_id: _ } = request;
        let mut violations = FieldViolations::new();
        let id = chosen_id(campaign_id, "campaign_id", 'c', &mut violations);
        let fields = match campaign {
            None => {
                violations.add("campaign", "is required");
                None
            }
            Some(campaign) => campaign_fields(campaign, &mut violations),
        };
        violations.into_result()?;
        let fields = fields.ok_or_else(|| invalid_argument("campaign", "is invalid"))?;
        Ok(campaign_to_pb(self.store.insert_campaign(&id, &fields, self.clock.now()).await?))
    }

    pub(super) async fn update_campaign_once(
        &self,
        request: pb::UpdateCampaignRequest,
    ) -> Result<pb::Campaign, Status> {
        let pb::UpdateCampaignRequest { campaign, update_mask, request_id: _ } = request;
        let campaign = campaign.ok_or_else(|| invalid_argument("campaign", "is required"))?;
        let id = resource::parse_name(&campaign.name, "campaigns")
            .map_err(|e| invalid_argument("campaign.name", e))?
            .to_owned();
        let paths = resource::mask_paths(
            update_mask.map(|m| m.paths),
            &["title", "organiser", "start_date", "end_date", "time_zone"],
            &["name", "etag", "create_time", "update_time"],
            "Campaign",
        )?;
        for _ in 0..UPDATE_ATTEMPTS {
            let current = self.store.campaign(&id).await?;
            if !campaign.etag.is_empty() && campaign.etag != etag(current.version) {
                return Err(etag_mismatch(CAMPAIGN, &format!("campaigns/{id}")));
            }
            let version = current.version;
            let mut merged = campaign_to_pb(current);
            for path in &paths {
                match path.as_str() {
                    "title" => merged.title.clone_from(&campaign.title),
                    "organiser" => merged.organiser.clone_from(&campaign.organiser),
                    "start_date" => merged.start_date = campaign.start_date,
                    "end_date" => merged.end_date = campaign.end_date,
                    _ => merged.time_zone.clone_from(&campaign.time_zone),
                }
            }
            let mut violations = FieldViolations::new();
            let fields = campaign_fields(merged, &mut violations);
            violations.into_result()?;
            let fields = fields.ok_or_else(|| invalid_argument("campaign", "is invalid"))?;
            if let Some(updated) = self.store.update_campaign(&id, version, &fields, self.clock.now()).await? {
                return Ok(campaign_to_pb(updated));
            }
            if !campaign.etag.is_empty() {
                return Err(etag_mismatch(CAMPAIGN, &format!("campaigns/{id}")));
            }
        }
        Err(Status::aborted("the campaign kept changing; read it again and retry"))
    }

    pub(super) async fn create_channel_once(&self, request: pb::CreateChannelRequest) -> Result<pb::Channel, Status> {
        let pb::CreateChannelRequest { channel, channel_id, request_id: _ } = request;
        let mut violations = FieldViolations::new();
        let id = chosen_id(channel_id, "channel_id", 'r', &mut violations);
        let fields = match channel {
            None => {
                violations.add("channel", "is required");
                None
            }
            Some(channel) => channel_fields(channel, &mut violations),
        };
        violations.into_result()?;
        let fields = fields.ok_or_else(|| invalid_argument("channel", "is invalid"))?;
        Ok(channel_to_pb(self.store.insert_channel(&id, &fields, self.clock.now()).await?))
    }

    pub(super) async fn update_channel_once(&self, request: pb::UpdateChannelRequest) -> Result<pb::Channel, Status> {
        let pb::UpdateChannelRequest { channel, update_mask, request_id: _ } = request;
        let channel = channel.ok_or_else(|| invalid_argument("channel", "is required"))?;
        let id = resource::parse_name(&channel.name, "channels")
            .map_err(|e| invalid_argument("channel.name", e))?
            .to_owned();
        let paths = resource::mask_paths(
            update_mask.map(|m| m.paths),
            &["platform", "display_name", "partner"],
            &["name", "etag", "create_time", "update_time"],
            "Channel",
        )?;
        for _ in 0..UPDATE_ATTEMPTS {
            let current = self.store.channel(&id).await?;
            if !channel.etag.is_empty() && channel.etag != etag(current.version) {
                return Err(etag_mismatch(CHANNEL, &format!("channels/{id}")));
            }
            let version = current.version;
            let mut merged = channel_to_pb(current);
            for path in &paths {
                match path.as_str() {
                    "platform" => merged.platform.clone_from(&channel.platform),
                    "display_name" => merged.display_name.clone_from(&channel.display_name),
                    _ => merged.partner.clone_from(&channel.partner),
                }
            }
            let mut violations = FieldViolations::new();
            let fields = channel_fields(merged, &mut violations);
            violations.into_result()?;
            let fields = fields.ok_or_else(|| invalid_argument("channel", "is invalid"))?;
            if let Some(updated) = self.store.update_channel(&id, version, &fields, self.clock.now()).await? {
                return Ok(channel_to_pb(updated));
            }
            if !channel.etag.is_empty() {
                return Err(etag_mismatch(CHANNEL, &format!("channels/{id}")));
            }
        }
        Err(Status::aborted("the channel kept changing; read it again and retry"))
    }
}
