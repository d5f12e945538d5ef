//! Shows, their line-ups and their lifecycle.
//!
//! Every state change is one conditional UPDATE on the state it leaves
//! (`… WHERE id = $1 AND state = SCHEDULED`), so of two replicas (or a
//! replica and an operator) exactly one makes each transition. Bookings are
//! serialized per channel and per host by bumping their `booking_version`
//! (channel first, then host) before looking for overlaps in the same
//! transaction.

use caravan_macros::store_op;
use caravan_platform::error::{Resource, StoreFailure as _};
use caravan_platform::{db::exec, time::Micros};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, Condition, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder,
    QuerySelect, TransactionTrait, Value, sea_query::OnConflict,
};

use super::{
    Store,
    entity::{campaign, offer, show, show_history},
};
use crate::{
    domain::{AllocationSync, Money, Offer, Show, ShowFields, ShowState, Text},
    error::Error,
};

const SHOW: &str = "caravan.scheduling.v1.Show";

/// A state's stored code, bound as a parameter.
fn code(state: ShowState) -> Value {
    (state as i16).into()
}

/// An allocation's stored code, bound as a parameter.
fn sync(allocation: AllocationSync) -> Value {
    (allocation as i16).into()
}

/// How stale GetLiveOffers may be.
pub const LIVE_OFFERS_TTL: std::time::Duration = std::time::Duration::from_secs(1);

/// How long a show's allocation may stay "being allocated" before the worker
/// takes the saga over (the request that started it crashed or timed out).
pub const ALLOCATION_GRACE: std::time::Duration = std::time::Duration::from_secs(30);

/// A state change of a show.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    /// SCHEDULED → LIVE (by the clock only once the start time has come).
    Start {
        /// Only if the start time has come.
        by_clock: bool,
    },
    /// LIVE → ENDED, allocation to be returned.
    End {
        /// Only if the end time has come.
        by_clock: bool,
    },
    /// SCHEDULED → CANCELLED, allocation to be returned.
    Cancel,
}

impl Store {
    /// Books and stores a new show whose line-up is still to be allocated
    /// (`AllocationSync::Allocating`). Refuses a slot outside the campaign's
    /// window and overlaps on its channel or with its host.
    #[store_op]
    pub async fn insert_show(
        &self,
        id: &str,
        fields: &ShowFields,
        traceparent: &str,
        now: Micros,
    ) -> Result<Show, Error> {
        let context = "booking a show";
        let txn = self.db.begin().await.map_err(Error::db(context))?;
        let result = async {
            // Excluding its own id: a retry of this booking is not a conflict with itself.
            book(&txn, Some(id), fields).await?;
            let due = now.plus(ALLOCATION_GRACE);
            // SQL: of two bookings of one id exactly one inserts (ON CONFLICT
            // DO NOTHING), and the row is born due for the allocation `Job`
            // (its claim columns are the platform's, not the entity's).
            let inserted = exec(
                &txn,
                "INSERT INTO shows (id, campaign_id, channel_id, host_id, title_zh_cn, title_en, title_ru, \
                 title_origin, title_origin_language, start_time, end_time, state, pinned_product, live_time, \
                 close_time, allocation, version, create_time, update_time, due_at, traceparent) VALUES ($1, $2, $3, \
                 $4, $5, $6, $7, $8, $9, $10, $11, $12, '', NULL, NULL, $13, 1, $14, $14, $15, $16) \
                 ON CONFLICT (id) DO NOTHING",
                vec![
                    id.into(),
                    fields.campaign_id.as_str().into(),
                    fields.channel_id.as_str().into(),
                    fields.host_id.as_str().into(),
                    fields.title.zh_cn.as_str().into(),
                    fields.title.en.as_str().into(),
                    fields.title.ru.as_str().into(),
                    fields.title.origin.as_str().into(),
                    fields.title.origin_language.as_str().into(),
                    fields.start_time.0.into(),
                    fields.end_time.0.into(),
                    (ShowState::Scheduled as i16).into(),
                    (AllocationSync::Allocating as i16).into(),
                    now.0.into(),
                    due.0.into(),
                    traceparent.into(),
                ],
            )
            .await
            .map_err(Error::db(context))?;
            if inserted == 0 {
                return Err(Error::from(Resource::already_exists(SHOW, format!("shows/{id}"))));
            }
            replace_offers(&txn, id, &fields.offers).await?;
            record_history(&txn, id, now).await
        }
        .await;
        match result {
            Ok(()) => txn.commit().await.map_err(Error::db(context))?,
            Err(e) => {
                txn.rollback().await.map_err(Error::db(context))?;
                return Err(e);
            }
        }
        self.show(id).await
    }

    /// The line-up is allocated: the show waits for its start.
    #[store_op]
    pub async fn allocation_done(&self, id: &str, now: Micros) -> Result<bool, Error> {
        let changed = exec(
            &self.db,
            "UPDATE shows SET allocation = $2, due_at = start_time, update_time = $4 WHERE id = $1 AND allocation = $3",
            vec![
                id.into(),
                (AllocationSync::Synced as i16).into(),
                (AllocationSync::Allocating as i16).into(),
                now.0.into(),
            ],
        )
        .await
        .map_err(Error::db("finishing an allocation"))?;
        Ok(changed == 1)
    }

    /// Moves, re-titles or re-hosts a SCHEDULED show whose allocation is in
    /// sync, if it is still at `version`, re-booking its slot; a new line-up
    /// puts its allocation back to "allocating". `None` when the show changed
    /// meanwhile (or left SCHEDULED, or is allocating).
    #[store_op]
    pub async fn update_show(
        &self,
        id: &str,
        version: i64,
        fields: &ShowFields,
        line_up_changed: bool,
        now: Micros,
    ) -> Result<Option<Show>, Error> {
        let context = "updating a show";
        let txn = self.db.begin().await.map_err(Error::db(context))?;
        let result = async {
            book(&txn, Some(id), fields).await?;
            let changed = exec(
                &txn,
                "UPDATE shows SET title_zh_cn = $3, title_en = $4, title_ru = $5, title_origin = $6, \
                 title_origin_language = $7, host_id = $8, start_time = $9, end_time = $10, version = version + 1, \
                 update_time = $11, allocation = CASE WHEN $12 = 1 THEN $14 ELSE allocation END, \
                 due_at = CASE WHEN $12 = 1 THEN $13 ELSE $9 END \
                 WHERE id = $1 AND version = $2 AND state = $15 AND allocation = $16",
                vec![
                    id.into(),
                    version.into(),
                    fields.title.zh_cn.as_str().into(),
                    fields.title.en.as_str().into(),
                    fields.title.ru.as_str().into(),
                    fields.title.origin.as_str().into(),
                    fields.title.origin_language.as_str().into(),
                    fields.host_id.as_str().into(),
                    fields.start_time.0.into(),
                    fields.end_time.0.into(),
                    now.0.into(),
                    i32::from(line_up_changed).into(),
                    now.plus(ALLOCATION_GRACE).0.into(),
                    sync(AllocationSync::Allocating),
                    code(ShowState::Scheduled),
                    sync(AllocationSync::Synced),
                ],
            )
            .await
            .map_err(Error::db(context))?;
            if changed == 0 {
                return Ok(false);
            }
            if line_up_changed {
                replace_offers(&txn, id, &fields.offers).await?;
            }
            record_history(&txn, id, now).await?;
            Ok(true)
        }
        .await;
        match result {
            Ok(true) => txn.commit().await.map_err(Error::db(context))?,
            Ok(false) => {
                txn.rollback().await.map_err(Error::db(context))?;
                return Ok(None);
            }
            Err(e) => {
                txn.rollback().await.map_err(Error::db(context))?;
                return Err(e);
            }
        }
        self.show(id).await.map(Some)
    }

    /// Ends an "allocating" line-up change with `offers` as the line-up —
    /// what inventory holds after a refusal — and the allocation in sync.
    #[store_op]
    pub async fn settle_line_up(&self, id: &str, offers: &[Offer], now: Micros) -> Result<bool, Error> {
        let context = "settling a line-up";
        let txn = self.db.begin().await.map_err(Error::db(context))?;
        let changed = exec(
            &txn,
            "UPDATE shows SET allocation = $3, due_at = start_time, version = version + 1, update_time = $2 \
             WHERE id = $1 AND allocation = $4",
            vec![id.into(), now.0.into(), sync(AllocationSync::Synced), sync(AllocationSync::Allocating)],
        )
        .await
        .map_err(Error::db(context))?;
        if changed == 1 {
            let result = async {
                replace_offers(&txn, id, offers).await?;
                record_history(&txn, id, now).await
            }
            .await;
            if let Err(e) = result {
                txn.rollback().await.map_err(Error::db(context))?;
                return Err(e);
            }
        }
        txn.commit().await.map_err(Error::db(context))?;
        Ok(changed == 1)
    }

    /// Forgets a show whose line-up could not be allocated (nothing was:
    /// AllocateStock is all or nothing).
    #[store_op]
    pub async fn forget_unallocated_show(&self, id: &str) -> Result<(), Error> {
        let context = "forgetting a show";
        let txn = self.db.begin().await.map_err(Error::db(context))?;
        let deleted = exec(
            &txn,
            "DELETE FROM shows WHERE id = $1 AND allocation = $2 AND state = $3",
            vec![id.into(), sync(AllocationSync::Allocating), code(ShowState::Scheduled)],
        )
        .await
        .map_err(Error::db(context))?;
        if deleted == 1 {
            offer::Entity::delete_many()
                .filter(offer::Column::ShowId.eq(id))
                .exec(&txn)
                .await
                .map_err(Error::db(context))?;
            show_history::Entity::delete_many()
                .filter(show_history::Column::ShowId.eq(id))
                .exec(&txn)
                .await
                .map_err(Error::db(context))?;
        }
        txn.commit().await.map_err(Error::db(context))
    }

    /// Makes a transition if the show is in the state it leaves; `false` if
    /// it is not (another replica or an operator was first, or, by the
    /// clock, its time has not come).
    #[store_op]
    pub async fn transition(&self, id: &str, transition: Transition, now: Micros) -> Result<bool, Error> {
        // $1 the show, $2 now, $3 "by the clock", $4 the state it leaves,
        // $5 the state it enters, $6 the allocation it must have or enters.
        let (sql, from, to, allocation, by_clock) = match transition {
            Transition::Start { by_clock } => (
                "UPDATE shows SET state = $5, live_time = $2, version = version + 1, update_time = $2, \
                 due_at = end_time WHERE id = $1 AND state = $4 AND allocation = $6 AND ($3 = 0 OR start_time <= $2)",
                ShowState::Scheduled,
                ShowState::Live,
                AllocationSync::Synced,
                by_clock,
            ),
            Transition::End { by_clock } => (
                "UPDATE shows SET state = $5, close_time = $2, allocation = $6, version = version + 1, \
                 update_time = $2, due_at = $2 WHERE id = $1 AND state = $4 AND ($3 = 0 OR end_time <= $2)",
                ShowState::Live,
                ShowState::Ended,
                AllocationSync::Returning,
                by_clock,
            ),
            Transition::Cancel => (
                "UPDATE shows SET state = $5, close_time = $2, allocation = $6, version = version + 1, \
                 update_time = $2, due_at = $2 WHERE id = $1 AND state = $4 AND $3 = 0", // never by the clock
                ShowState::Scheduled,
                ShowState::Cancelled,
                AllocationSync::Returning,
                false,
            ),
        };
        let values = vec![id.into(), now.0.into(), i32::from(by_clock).into(), code(from), code(to), sync(allocation)];
        self.versioned(id, sql, values, now, "changing a show's state").await
    }

    /// Runs a statement that bumps the show's version and, if it changed the
    /// show, records the new version in the same transaction.
    #[store_op]
    async fn versioned(
        &self,
        id: &str,
        sql: &str,
        values: Vec<Value>,
        now: Micros,
        context: &'static str,
    ) -> Result<bool, Error> {
        let txn = self.db.begin().await.map_err(Error::db(context))?;
        let changed = exec(&txn, sql, values).await.map_err(Error::db(context))? == 1;
        if changed && let Err(e) = record_history(&txn, id, now).await {
            txn.rollback().await.map_err(Error::db(context))?;
            return Err(e);
        }
        txn.commit().await.map_err(Error::db(context))?;
        Ok(changed)
    }

    /// How many shows are live now.
    #[store_op]
    pub async fn live_shows(&self) -> Result<i64, Error> {
        let live = show::Entity::find()
            .filter(show::Column::State.eq(ShowState::Live as i16))
            .count(&self.db)
            .await
            .map_err(Error::db("counting live shows"))?;
        Ok(i64::try_from(live).unwrap_or(i64::MAX))
    }

    /// How many scheduled shows start in `[from, until)`.
    #[store_op]
    pub async fn shows_starting(&self, from: Micros, until: Micros) -> Result<i64, Error> {
        let starting = show::Entity::find()
            .filter(show::Column::State.eq(ShowState::Scheduled as i16))
            .filter(show::Column::StartTime.gte(from.0))
            .filter(show::Column::StartTime.lt(until.0))
            .count(&self.db)
            .await
            .map_err(Error::db("counting shows about to start"))?;
        Ok(i64::try_from(starting).unwrap_or(i64::MAX))
    }

    /// The versions of a show after `after`, oldest first, at most `limit`.
    #[store_op]
    pub async fn history(&self, id: &str, after: i64, limit: u64) -> Result<Vec<Show>, Error> {
        let snapshots: Vec<String> = show_history::Entity::find()
            .select_only()
            .column(show_history::Column::Snapshot)
            .filter(show_history::Column::ShowId.eq(id))
            .filter(show_history::Column::Version.gt(after))
            .order_by_asc(show_history::Column::Version)
            .limit(limit)
            .into_tuple()
            .all(&self.db)
            .await
            .map_err(Error::db("reading a show's history"))?;
        snapshots
            .iter()
            .map(|snapshot| {
                serde_json::from_str(snapshot).map_err(|e| Error::corrupt(format!("show history of {id}: {e}")))
            })
            .collect()
    }

    /// Pins `product` (on the line-up) of a LIVE show, or unpins with `None`;
    /// `false` if the show is not LIVE or the product not on its line-up.
    #[store_op]
    pub async fn pin(&self, id: &str, product: Option<&str>, now: Micros) -> Result<bool, Error> {
        self.versioned(
            id,
            "UPDATE shows SET pinned_product = $2, version = version + 1, update_time = $3 \
             WHERE id = $1 AND state = $4 AND ($2 = '' OR EXISTS \
             (SELECT 1 FROM offers WHERE offers.show_id = $1 AND offers.product_id = $2))",
            vec![id.into(), product.unwrap_or("").into(), now.0.into(), code(ShowState::Live)],
            now,
            "pinning a product",
        )
        .await
    }

    /// A show as of at most [`LIVE_OFFERS_TTL`] ago: the order path's read,
    /// one per order of a flash sale, so it is served from memory. Staleness
    /// is safe: inventory refuses reservations against a closed allocation.
    pub async fn show_cached(&self, id: &str) -> Result<std::sync::Arc<Show>, Error> {
        if let Some(show) = self.shows.get(id) {
            return Ok(show);
        }
        let show = std::sync::Arc::new(self.show(id).await?);
        self.shows.insert(id.to_owned(), show.clone());
        Ok(show)
    }

    /// The partner of a channel, at most [`LIVE_OFFERS_TTL`] old.
    pub async fn channel_partner_cached(&self, channel_id: &str) -> Result<String, Error> {
        if let Some(partner) = self.partners.get(channel_id) {
            return Ok(partner);
        }
        let partner = self.channel(channel_id).await?.fields.partner;
        self.partners.insert(channel_id.to_owned(), partner.clone());
        Ok(partner)
    }

    /// The show's allocation went back to inventory.
    #[store_op]
    pub async fn allocation_returned(&self, id: &str) -> Result<bool, Error> {
        let changed = exec(
            &self.db,
            "UPDATE shows SET allocation = $2, due_at = NULL WHERE id = $1 AND allocation = $3",
            vec![id.into(), sync(AllocationSync::Returned), sync(AllocationSync::Returning)],
        )
        .await
        .map_err(Error::db("recording a returned allocation"))?;
        Ok(changed == 1)
    }

    /// One show with its line-up.
    #[store_op]
    pub async fn show(&self, id: &str) -> Result<Show, Error> {
        show_in(&self.db, id).await
    }

    /// Up to `limit` shows by start time after `(start, id)`, filtered.
    #[store_op]
    pub async fn shows(
        &self,
        after: Option<(i64, &str)>,
        campaign: Option<&str>,
        channel: Option<&str>,
        state: Option<ShowState>,
        limit: u64,
    ) -> Result<Vec<Show>, Error> {
        let mut select = show::Entity::find();
        if let Some((start, id)) = after {
            select = select.filter(
                Condition::any()
                    .add(show::Column::StartTime.gt(start))
                    .add(Condition::all().add(show::Column::StartTime.eq(start)).add(show::Column::Id.gt(id))),
            );
        }
        if let Some(campaign) = campaign {
            select = select.filter(show::Column::CampaignId.eq(campaign));
        }
        if let Some(channel) = channel {
            select = select.filter(show::Column::ChannelId.eq(channel));
        }
        if let Some(state) = state {
            select = select.filter(show::Column::State.eq(state as i16));
        }
        let rows = select
            .order_by_asc(show::Column::StartTime)
            .order_by_asc(show::Column::Id)
            .limit(limit)
            .all(&self.db)
            .await
            .map_err(Error::db("listing shows"))?;
        let ids: Vec<String> = rows.iter().map(|row| row.id.clone()).collect();
        // The page's line-ups in one query, not one per show.
        let mut offers = offers_of_many(&self.db, &ids).await?;
        rows.into_iter()
            .map(|row| {
                let line_up = offers.remove(&row.id).unwrap_or_default();
                into_show(row, line_up)
            })
            .collect()
    }
}

async fn replace_offers(c: &impl ConnectionTrait, id: &str, offers: &[Offer]) -> Result<(), Error> {
    let context = "replacing a line-up";
    offer::Entity::delete_many().filter(offer::Column::ShowId.eq(id)).exec(c).await.map_err(Error::db(context))?;
    if offers.is_empty() {
        return Ok(());
    }
    let rows = offers.iter().map(|offer| offer::ActiveModel {
        show_id: Set(id.to_owned()),
        product_id: Set(offer.product_id.clone()),
        currency: Set(offer.price.currency.clone()),
        price_minor: Set(offer.price.minor_units),
        allocated_quantity: Set(offer.allocated_quantity),
        per_buyer_limit: Set(offer.per_buyer_limit),
        display_order: Set(offer.display_order),
    });
    offer::Entity::insert_many(rows).exec_without_returning(c).await.map_err(Error::db(context))?;
    Ok(())
}

async fn show_in(c: &impl ConnectionTrait, id: &str) -> Result<Show, Error> {
    let row = show::Entity::find_by_id(id)
        .one(c)
        .await
        .map_err(Error::db("reading a show"))?
        .ok_or_else(|| Error::from(Resource::not_found(SHOW, format!("shows/{id}"))))?;
    let offers = offers_of(c, id).await?;
    into_show(row, offers)
}

/// Appends the show's current version to its history (same transaction as
/// the change, so versions are recorded gaplessly and in commit order).
async fn record_history(c: &impl ConnectionTrait, id: &str, now: Micros) -> Result<(), Error> {
    let show = show_in(c, id).await?;
    let snapshot = serde_json::to_string(&show).map_err(|e| Error::corrupt(format!("encoding show {id}: {e}")))?;
    let version = show_history::ActiveModel {
        show_id: Set(id.to_owned()),
        version: Set(show.version),
        snapshot: Set(snapshot),
        create_time: Set(now.0),
    };
    show_history::Entity::insert(version)
        .on_conflict(
            OnConflict::columns([show_history::Column::ShowId, show_history::Column::Version]).do_nothing().to_owned(),
        )
        .exec_without_returning(c)
        .await
        .map_err(Error::db("recording a show's version"))?;
    Ok(())
}

/// Locks the channel and the host (in that order) and checks the slot: inside
/// the campaign's window, no overlap on the channel or with the host (shows
/// touching end to start do not overlap). `moving` is a show being moved.
async fn book(c: &impl ConnectionTrait, moving: Option<&str>, fields: &ShowFields) -> Result<(), Error> {
    let context = "booking a show";
    let window: Option<(i64, i64)> = campaign::Entity::find_by_id(fields.campaign_id.as_str())
        .select_only()
        .columns([campaign::Column::WindowStart, campaign::Column::WindowEnd])
        .into_tuple()
        .one(c)
        .await
        .map_err(Error::db(context))?;
    let Some((window_start, window_end)) = window else {
        return Err(Error::InvalidReference {
            field: "show.campaign",
            message: format!("campaigns/{} does not exist", fields.campaign_id),
        });
    };
    if fields.start_time.0 < window_start || fields.end_time.0 > window_end {
        return Err(Error::OutsideCampaign { campaign: fields.campaign_id.clone() });
    }
    for (table, id, field) in
        [("channels", &fields.channel_id, "show.channel"), ("hosts", &fields.host_id, "show.host")]
    {
        let locked = exec(
            c,
            &format!("UPDATE {table} SET booking_version = booking_version + 1 WHERE id = $1"),
            vec![id.as_str().into()],
        )
        .await
        .map_err(Error::db(context))?;
        if locked == 0 {
            return Err(Error::InvalidReference { field, message: format!("{table}/{id} does not exist") });
        }
    }
    for (column, id, what) in
        [(show::Column::ChannelId, &fields.channel_id, "channel"), (show::Column::HostId, &fields.host_id, "host")]
    {
        // Shows that still hold a slot (scheduled or live) and overlap it;
        // touching end to start is no overlap.
        let other: Option<String> = show::Entity::find()
            .select_only()
            .column(show::Column::Id)
            .filter(column.eq(id.as_str()))
            .filter(show::Column::State.is_in([ShowState::Scheduled as i16, ShowState::Live as i16]))
            .filter(show::Column::StartTime.lt(fields.end_time.0))
            .filter(show::Column::EndTime.gt(fields.start_time.0))
            .filter(show::Column::Id.ne(moving.unwrap_or("")))
            .order_by_asc(show::Column::StartTime)
            .into_tuple()
            .one(c)
            .await
            .map_err(Error::db(context))?;
        if let Some(other) = other {
            return Err(Error::Conflict { what, other });
        }
    }
    Ok(())
}

async fn offers_of(c: &impl ConnectionTrait, show: &str) -> Result<Vec<Offer>, Error> {
    Ok(offers_of_many(c, &[show.to_owned()]).await?.remove(show).unwrap_or_default())
}

/// The line-ups of `shows`, each by display order.
async fn offers_of_many(
    c: &impl ConnectionTrait,
    shows: &[String],
) -> Result<std::collections::HashMap<String, Vec<Offer>>, Error> {
    let context = "reading line-ups";
    let mut offers: std::collections::HashMap<String, Vec<Offer>> = std::collections::HashMap::new();
    if shows.is_empty() {
        return Ok(offers);
    }
    let rows = offer::Entity::find()
        .filter(offer::Column::ShowId.is_in(shows.iter().map(String::as_str)))
        .order_by_asc(offer::Column::ShowId)
        .order_by_asc(offer::Column::DisplayOrder)
        .order_by_asc(offer::Column::ProductId)
        .all(c)
        .await
        .map_err(Error::db(context))?;
    for row in rows {
        offers.entry(row.show_id).or_default().push(Offer {
            product_id: row.product_id,
            price: Money { currency: row.currency, minor_units: row.price_minor },
            allocated_quantity: row.allocated_quantity,
            per_buyer_limit: row.per_buyer_limit,
            display_order: row.display_order,
        });
    }
    Ok(offers)
}

/// The show of a row, with its line-up; a code no state or allocation has
/// is corrupt data.
fn into_show(row: show::Model, offers: Vec<Offer>) -> Result<Show, Error> {
    let corrupt = |what: &str, code: i16| Error::corrupt(format!("show {} has {what} code {code}", row.id));
    let state = ShowState::from_code(row.state).ok_or_else(|| corrupt("state", row.state))?;
    let allocation = AllocationSync::from_code(row.allocation).ok_or_else(|| corrupt("allocation", row.allocation))?;
    let show::Model {
        id,
        campaign_id,
        channel_id,
        host_id,
        title_zh_cn,
        title_en,
        title_ru,
        title_origin,
        title_origin_language,
        start_time,
        end_time,
        pinned_product,
        live_time,
        close_time,
        version,
        create_time,
        update_time,
        ..
    } = row;
    Ok(Show {
        id,
        fields: ShowFields {
            campaign_id,
            channel_id,
            host_id,
            title: Text {
                zh_cn: title_zh_cn,
                en: title_en,
                ru: title_ru,
                origin: title_origin,
                origin_language: title_origin_language,
            },
            start_time: Micros(start_time),
            end_time: Micros(end_time),
            offers,
        },
        state,
        pinned_product: (!pinned_product.is_empty()).then_some(pinned_product),
        live_time: live_time.map(Micros),
        close_time: close_time.map(Micros),
        allocation,
        version,
        create_time: Micros(create_time),
        update_time: Micros(update_time),
    })
}
