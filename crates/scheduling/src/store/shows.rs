//! Shows, their line-ups and their lifecycle.
//!
//! Every state change is one conditional UPDATE on the state it leaves
//! (`… WHERE id = $1 AND state = SCHEDULED`), so of two replicas (or a
//! replica and an operator) exactly one makes each transition. Bookings are
//! serialized per channel and per host by bumping their `booking_version`
//! (channel first, then host) before looking for overlaps in the same
//! transaction.

use caravan_macros::store_op;
use caravan_platform::{
    db::{exec, query},
    time::Micros,
};
use sea_orm::{ConnectionTrait, FromQueryResult, TransactionTrait, Value};

use super::Store;
use crate::{
    domain::{AllocationSync, Money, Offer, Show, ShowFields, ShowState, Text},
    error::Error,
};

const SHOW: &str = "caravan.scheduling.v1.Show";
/// The columns of a show, as [`ShowRow`] reads them by name.
const COLUMNS: &str = "id, campaign_id, channel_id, host_id, title_zh_cn, title_en, title_ru, title_origin, \
                       title_origin_language, start_time, end_time, state, pinned_product, live_time, close_time, \
                       allocation, version, create_time, update_time";

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
            let inserted = exec(
                &txn,
                &format!(
                    "INSERT INTO shows ({COLUMNS}, due_at, traceparent) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, \
                     $10, $11, $12, '', NULL, NULL, $13, 1, $14, $14, $15, $16) ON CONFLICT (id) DO NOTHING"
                ),
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
                return Err(Error::AlreadyExists { kind: SHOW, name: format!("shows/{id}") });
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
            exec(&txn, "DELETE FROM offers WHERE show_id = $1", vec![id.into()]).await.map_err(Error::db(context))?;
            exec(&txn, "DELETE FROM show_history WHERE show_id = $1", vec![id.into()])
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
        let context = "counting live shows";
        let rows = query(
            &self.db,
            "SELECT CAST(COUNT(*) AS BIGINT) AS live FROM shows WHERE state = $1",
            vec![code(ShowState::Live)],
        )
        .await
        .map_err(Error::db(context))?;
        rows.first().map_or(Ok(0), |row| row.try_get("", "live")).map_err(Error::db(context))
    }

    /// The versions of a show after `after`, oldest first, at most `limit`.
    #[store_op]
    pub async fn history(&self, id: &str, after: i64, limit: u64) -> Result<Vec<Show>, Error> {
        let rows = query(
            &self.db,
            "SELECT snapshot FROM show_history WHERE show_id = $1 AND version > $2 ORDER BY version LIMIT $3",
            vec![id.into(), after.into(), i64::try_from(limit).unwrap_or(i64::MAX).into()],
        )
        .await
        .map_err(Error::db("reading a show's history"))?;
        rows.iter()
            .map(|row| {
                let snapshot: String = row.try_get("", "snapshot").map_err(Error::db("reading a show's history"))?;
                serde_json::from_str(&snapshot).map_err(|e| Error::corrupt(format!("show history of {id}: {e}")))
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
        let mut sql = format!("SELECT {COLUMNS} FROM shows WHERE 1 = 1");
        let mut values: Vec<Value> = Vec::new();
        let mut bind = |sql: &mut String, clause: &str, value: Value| {
            values.push(value);
            sql.push_str(&clause.replace('?', &format!("${}", values.len())));
        };
        if let Some((start, id)) = after {
            bind(&mut sql, " AND (start_time > ?", start.into());
            bind(&mut sql, " OR (start_time = ?", start.into());
            bind(&mut sql, " AND id > ?))", id.into());
        }
        if let Some(campaign) = campaign {
            bind(&mut sql, " AND campaign_id = ?", campaign.into());
        }
        if let Some(channel) = channel {
            bind(&mut sql, " AND channel_id = ?", channel.into());
        }
        if let Some(state) = state {
            bind(&mut sql, " AND state = ?", code(state));
        }
        bind(&mut sql, " ORDER BY start_time, id LIMIT ?", i64::try_from(limit).unwrap_or(i64::MAX).into());
        let rows = query(&self.db, &sql, values).await.map_err(Error::db("listing shows"))?;
        let rows = rows
            .iter()
            .map(|row| ShowRow::from_query_result(row, ""))
            .collect::<Result<Vec<_>, _>>()
            .map_err(Error::db("listing shows"))?;
        let ids: Vec<String> = rows.iter().map(|row| row.id.clone()).collect();
        // The page's line-ups in one query, not one per show.
        let mut offers = offers_of_many(&self.db, &ids).await?;
        rows.into_iter()
            .map(|row| {
                let line_up = offers.remove(&row.id).unwrap_or_default();
                row.into_show(line_up)
            })
            .collect()
    }
}

async fn replace_offers(c: &impl ConnectionTrait, id: &str, offers: &[Offer]) -> Result<(), Error> {
    let context = "replacing a line-up";
    exec(c, "DELETE FROM offers WHERE show_id = $1", vec![id.into()]).await.map_err(Error::db(context))?;
    for offer in offers {
        exec(
            c,
            "INSERT INTO offers (show_id, product_id, currency, price_minor, allocated_quantity, per_buyer_limit, \
             display_order) VALUES ($1, $2, $3, $4, $5, $6, $7)",
            vec![
                id.into(),
                offer.product_id.as_str().into(),
                offer.price.currency.as_str().into(),
                offer.price.minor_units.into(),
                offer.allocated_quantity.into(),
                offer.per_buyer_limit.into(),
                offer.display_order.into(),
            ],
        )
        .await
        .map_err(Error::db(context))?;
    }
    Ok(())
}

async fn show_in(c: &impl ConnectionTrait, id: &str) -> Result<Show, Error> {
    let rows = query(c, &format!("SELECT {COLUMNS} FROM shows WHERE id = $1"), vec![id.into()])
        .await
        .map_err(Error::db("reading a show"))?;
    let row = rows.first().ok_or_else(|| Error::NotFound { kind: SHOW, name: format!("shows/{id}") })?;
    let row = ShowRow::from_query_result(row, "").map_err(Error::db("reading a show"))?;
    let offers = offers_of(c, id).await?;
    row.into_show(offers)
}

/// Appends the show's current version to its history (same transaction as
/// the change, so versions are recorded gaplessly and in commit order).
async fn record_history(c: &impl ConnectionTrait, id: &str, now: Micros) -> Result<(), Error> {
    let show = show_in(c, id).await?;
    let snapshot = serde_json::to_string(&show).map_err(|e| Error::corrupt(format!("encoding show {id}: {e}")))?;
    exec(
        c,
        "INSERT INTO show_history (show_id, version, snapshot, create_time) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (show_id, version) DO NOTHING",
        vec![id.into(), show.version.into(), snapshot.into(), now.0.into()],
    )
    .await
    .map_err(Error::db("recording a show's version"))?;
    Ok(())
}

/// Locks the channel and the host (in that order) and checks the slot: inside
/// the campaign's window, no overlap on the channel or with the host (shows
/// touching end to start do not overlap). `moving` is a show being moved.
async fn book(c: &impl ConnectionTrait, moving: Option<&str>, fields: &ShowFields) -> Result<(), Error> {
    let context = "booking a show";
    let window = query(
        c,
        "SELECT window_start, window_end FROM campaigns WHERE id = $1",
        vec![fields.campaign_id.as_str().into()],
    )
    .await
    .map_err(Error::db(context))?;
    let Some(window) = window.first() else {
        return Err(Error::InvalidReference {
            field: "show.campaign",
            message: format!("campaigns/{} does not exist", fields.campaign_id),
        });
    };
    let window = Window::from_query_result(window, "").map_err(Error::db(context))?;
    if fields.start_time.0 < window.window_start || fields.end_time.0 > window.window_end {
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
    for (column, id, what) in [("channel_id", &fields.channel_id, "channel"), ("host_id", &fields.host_id, "host")] {
        // Shows that still hold a slot: scheduled or live.
        let rows = query(
            c,
            &format!(
                "SELECT id FROM shows WHERE {column} = $1 AND state IN ($5, $6) AND start_time < $2 AND $3 < end_time \
                 AND id <> $4 ORDER BY start_time LIMIT 1"
            ),
            vec![
                id.as_str().into(),
                fields.end_time.0.into(),
                fields.start_time.0.into(),
                moving.unwrap_or("").into(),
                code(ShowState::Scheduled),
                code(ShowState::Live),
            ],
        )
        .await
        .map_err(Error::db(context))?;
        if let Some(row) = rows.first() {
            let other: String = row.try_get("", "id").map_err(Error::db(context))?;
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
    let rows = query(
        c,
        &format!(
            "SELECT show_id, product_id, currency, price_minor, allocated_quantity, per_buyer_limit, display_order \
             FROM offers WHERE show_id IN ({}) ORDER BY show_id, display_order, product_id",
            caravan_platform::db::params(1, shows.len())
        ),
        shows.iter().map(|s| Value::from(s.as_str())).collect(),
    )
    .await
    .map_err(Error::db(context))?;
    for row in &rows {
        let row = OfferRow::from_query_result(row, "").map_err(Error::db(context))?;
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

/// A campaign's window, as `book` reads it.
#[derive(Debug, FromQueryResult)]
struct Window {
    window_start: i64,
    window_end: i64,
}

/// A row of `offers`.
#[derive(Debug, FromQueryResult)]
struct OfferRow {
    show_id: String,
    product_id: String,
    currency: String,
    price_minor: i64,
    allocated_quantity: i64,
    per_buyer_limit: i64,
    display_order: i32,
}

/// A row of `shows` ([`COLUMNS`]).
#[derive(Debug, FromQueryResult)]
struct ShowRow {
    id: String,
    campaign_id: String,
    channel_id: String,
    host_id: String,
    title_zh_cn: String,
    title_en: String,
    title_ru: String,
    title_origin: String,
    title_origin_language: String,
    start_time: i64,
    end_time: i64,
    state: i16,
    pinned_product: String,
    live_time: Option<i64>,
    close_time: Option<i64>,
    allocation: i16,
    version: i64,
    create_time: i64,
    update_time: i64,
}

impl ShowRow {
    /// The show, with its line-up; a code no state or allocation has is corrupt data.
    fn into_show(self, offers: Vec<Offer>) -> Result<Show, Error> {
        let corrupt = |what: &str, code: i16| Error::corrupt(format!("show {} has {what} code {code}", self.id));
        let state = ShowState::from_code(self.state).ok_or_else(|| corrupt("state", self.state))?;
        let allocation =
            AllocationSync::from_code(self.allocation).ok_or_else(|| corrupt("allocation", self.allocation))?;
        Ok(Show {
            id: self.id,
            fields: ShowFields {
                campaign_id: self.campaign_id,
                channel_id: self.channel_id,
                host_id: self.host_id,
                title: Text {
                    zh_cn: self.title_zh_cn,
                    en: self.title_en,
                    ru: self.title_ru,
                    origin: self.title_origin,
                    origin_language: self.title_origin_language,
                },
                start_time: Micros(self.start_time),
                end_time: Micros(self.end_time),
                offers,
            },
            state,
            pinned_product: (!self.pinned_product.is_empty()).then_some(self.pinned_product),
            live_time: self.live_time.map(Micros),
            close_time: self.close_time.map(Micros),
            allocation,
            version: self.version,
            create_time: Micros(self.create_time),
            update_time: Micros(self.update_time),
        })
    }
}
