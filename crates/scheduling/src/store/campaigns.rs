//! Campaigns and channels.

use caravan_macros::store_op;
use caravan_platform::error::{Resource, StoreFailure as _};
use caravan_platform::time::Micros;
use chrono::NaiveDate;
use sea_orm::{ActiveValue::Set, ColumnTrait, Condition, EntityTrait, QueryFilter, QueryOrder, QuerySelect, SqlErr};

use super::{
    Store,
    entity::{campaign, channel},
};
use crate::{
    domain::{Campaign, CampaignFields, Channel, ChannelFields, Text, date_key, parse_time_zone},
    error::Error,
};

const CAMPAIGN: &str = "caravan.scheduling.v1.Campaign";
const CHANNEL: &str = "caravan.scheduling.v1.Channel";

fn date_of(key: i32) -> Result<NaiveDate, Error> {
    let (year, month, day) = (key / 10_000, (key / 100) % 100, key % 100);
    NaiveDate::from_ymd_opt(year, u32::try_from(month).unwrap_or(0), u32::try_from(day).unwrap_or(0))
        .ok_or_else(|| Error::corrupt(format!("campaign date {key}")))
}

fn campaign_row(id: &str, fields: &CampaignFields, version: i64, now: Micros) -> campaign::ActiveModel {
    let (window_start, window_end) = fields.window();
    campaign::ActiveModel {
        id: Set(id.to_owned()),
        title_zh_cn: Set(fields.title.zh_cn.clone()),
        title_en: Set(fields.title.en.clone()),
        title_ru: Set(fields.title.ru.clone()),
        title_origin: Set(fields.title.origin.clone()),
        title_origin_language: Set(fields.title.origin_language.clone()),
        organiser: Set(fields.organiser.clone()),
        start_date: Set(date_key(fields.start_date)),
        end_date: Set(date_key(fields.end_date)),
        time_zone: Set(fields.time_zone.name().to_owned()),
        window_start: Set(window_start.0),
        window_end: Set(window_end.0),
        version: Set(version),
        create_time: sea_orm::ActiveValue::NotSet,
        update_time: Set(now.0),
    }
}

impl Store {
    /// Inserts a new campaign; a taken id is `AlreadyExists`.
    #[store_op]
    pub async fn insert_campaign(&self, id: &str, fields: &CampaignFields, now: Micros) -> Result<Campaign, Error> {
        let mut row = campaign_row(id, fields, 1, now);
        row.create_time = Set(now.0);
        match campaign::Entity::insert(row).exec(&self.db).await {
            Ok(_) => self.campaign(id).await,
            Err(e) if matches!(e.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) => {
                Err(Error::from(Resource::already_exists(CAMPAIGN, format!("campaigns/{id}"))))
            }
            Err(e) => Err(Error::db("inserting a campaign")(e)),
        }
    }

    /// One campaign.
    #[store_op]
    pub async fn campaign(&self, id: &str) -> Result<Campaign, Error> {
        campaign::Entity::find_by_id(id.to_owned())
            .one(&self.db)
            .await
            .map_err(Error::db("reading a campaign"))?
            .ok_or_else(|| Error::from(Resource::not_found(CAMPAIGN, format!("campaigns/{id}"))))
            .and_then(campaign_to_domain)
    }

    /// Up to `limit` campaigns, newest start first, after `(start, id)`.
    #[store_op]
    pub async fn campaigns(&self, after: Option<(i32, &str)>, limit: u64) -> Result<Vec<Campaign>, Error> {
        let mut query = campaign::Entity::find()
            .order_by_desc(campaign::Column::StartDate)
            .order_by_asc(campaign::Column::Id)
            .limit(limit);
        if let Some((start, id)) = after {
            query = query.filter(
                Condition::any()
                    .add(campaign::Column::StartDate.lt(start))
                    .add(Condition::all().add(campaign::Column::StartDate.eq(start)).add(campaign::Column::Id.gt(id))),
            );
        }
        query.all(&self.db).await.map_err(Error::db("listing campaigns"))?.into_iter().map(campaign_to_domain).collect()
    }

    /// Replaces a campaign's fields if it is still at `version`; `None` when
    /// it changed meanwhile.
    #[store_op]
    pub async fn update_campaign(
        &self,
        id: &str,
        version: i64,
        fields: &CampaignFields,
        now: Micros,
    ) -> Result<Option<Campaign>, Error> {
        let row = campaign_row(id, fields, version + 1, now);
        let result = campaign::Entity::update_many()
            .set(row)
            .filter(campaign::Column::Id.eq(id))
            .filter(campaign::Column::Version.eq(version))
            .exec(&self.db)
            .await
            .map_err(Error::db("updating a campaign"))?;
        if result.rows_affected == 1 { self.campaign(id).await.map(Some) } else { Ok(None) }
    }

    /// Inserts a new channel; a taken id is `AlreadyExists`.
    #[store_op]
    pub async fn insert_channel(&self, id: &str, fields: &ChannelFields, now: Micros) -> Result<Channel, Error> {
        let row = channel::ActiveModel {
            id: Set(id.to_owned()),
            platform: Set(fields.platform.clone()),
            display_name: Set(fields.display_name.clone()),
            partner: Set(fields.partner.clone()),
            version: Set(1),
            create_time: Set(now.0),
            update_time: Set(now.0),
        };
        match channel::Entity::insert(row).exec(&self.db).await {
            Ok(_) => Ok(Channel {
                id: id.to_owned(),
                fields: fields.clone(),
                version: 1,
                create_time: now,
                update_time: now,
            }),
            Err(e) if matches!(e.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) => {
                Err(Error::from(Resource::already_exists(CHANNEL, format!("channels/{id}"))))
            }
            Err(e) => Err(Error::db("inserting a channel")(e)),
        }
    }

    /// One channel.
    #[store_op]
    pub async fn channel(&self, id: &str) -> Result<Channel, Error> {
        channel::Entity::find_by_id(id.to_owned())
            .one(&self.db)
            .await
            .map_err(Error::db("reading a channel"))?
            .map(channel_to_domain)
            .ok_or_else(|| Error::from(Resource::not_found(CHANNEL, format!("channels/{id}"))))
    }

    /// Up to `limit` channels after `after` (by id), optionally of one partner.
    #[store_op]
    pub async fn channels(
        &self,
        after: Option<&str>,
        partner: Option<&str>,
        limit: u64,
    ) -> Result<Vec<Channel>, Error> {
        let mut query = channel::Entity::find().order_by_asc(channel::Column::Id).limit(limit);
        if let Some(after) = after {
            query = query.filter(channel::Column::Id.gt(after));
        }
        if let Some(partner) = partner {
            query = query.filter(channel::Column::Partner.eq(partner));
        }
        Ok(query
            .all(&self.db)
            .await
            .map_err(Error::db("listing channels"))?
            .into_iter()
            .map(channel_to_domain)
            .collect())
    }

    /// Replaces a channel's fields if it is still at `version`; `None` when
    /// it changed meanwhile.
    #[store_op]
    pub async fn update_channel(
        &self,
        id: &str,
        version: i64,
        fields: &ChannelFields,
        now: Micros,
    ) -> Result<Option<Channel>, Error> {
        let row = channel::ActiveModel {
            platform: Set(fields.platform.clone()),
            display_name: Set(fields.display_name.clone()),
            partner: Set(fields.partner.clone()),
            version: Set(version + 1),
            update_time: Set(now.0),
            ..Default::default()
        };
        let result = channel::Entity::update_many()
            .set(row)
            .filter(channel::Column::Id.eq(id))
            .filter(channel::Column::Version.eq(version))
            .exec(&self.db)
            .await
            .map_err(Error::db("updating a channel"))?;
        if result.rows_affected == 1 { self.channel(id).await.map(Some) } else { Ok(None) }
    }
}

fn campaign_to_domain(row: campaign::Model) -> Result<Campaign, Error> {
    let campaign::Model {
        id,
        title_zh_cn,
        title_en,
        title_ru,
        title_origin,
        title_origin_language,
        organiser,
        start_date,
        end_date,
        time_zone,
        window_start: _,
        window_end: _,
        version,
        create_time,
        update_time,
    } = row;
    let time_zone = parse_time_zone(&time_zone).map_err(Error::corrupt)?;
    Ok(Campaign {
        id,
        fields: CampaignFields {
            title: Text {
                zh_cn: title_zh_cn,
                en: title_en,
                ru: title_ru,
                origin: title_origin,
                origin_language: title_origin_language,
            },
            organiser,
            start_date: date_of(start_date)?,
            end_date: date_of(end_date)?,
            time_zone,
        },
        version,
        create_time: Micros(create_time),
        update_time: Micros(update_time),
    })
}

fn channel_to_domain(row: channel::Model) -> Channel {
    let channel::Model { id, platform, display_name, partner, version, create_time, update_time } = row;
    Channel {
        id,
        fields: ChannelFields { platform, display_name, partner },
        version,
        create_time: Micros(create_time),
        update_time: Micros(update_time),
    }
}
