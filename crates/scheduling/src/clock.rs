//! The show clock: a platform [`Job`] over the `shows` table that starts each
//! show at its start time, ends it at its end time and returns its allocation
//! to inventory, and re-drives a line-up allocation whose request crashed.
//!
//! A show is due at its next step (`due_at`): the allocation grace while its
//! line-up is being allocated, then its start, then its end, then at once
//! while its allocation is to be returned. Each step is a conditional UPDATE
//! on the state it leaves and each inventory call is idempotent, so with
//! several replicas every transition and every return happens once.

use caravan_platform::{
    error::Resource,
    time::SharedClock,
    worker::{Claimed, ItemTable, Job, Next},
};

use crate::{
    domain::{AllocationSync, ShowState},
    error::Error,
    store::{Store, Transition},
    upstream::Upstream,
};

/// Drives shows through their lifecycle by the clock.
#[derive(Debug, Clone)]
pub struct ShowClock {
    store: Store,
    upstream: Upstream,
    clock: SharedClock,
}

impl ShowClock {
    /// A clock over `store`, calling inventory through `upstream`.
    pub fn new(store: Store, upstream: Upstream, clock: SharedClock) -> Self {
        ShowClock { store, upstream, clock }
    }

    async fn return_allocation(&self, id: &str) -> anyhow::Result<Next> {
        self.upstream.return_allocation(id).await?;
        self.store.allocation_returned(id).await?;
        Ok(Next::Done)
    }
}

/// Closes a live show's allocation in inventory before the show is marked
/// ENDED: an order reserving from it afterwards is refused (orders answers
/// `SHOW_NOT_LIVE`), so every accepted order was reserved before the show's
/// close time, which is taken after this. If inventory cannot be reached the
/// show ends anyway and its allocation is returned by the clock later, as
/// before (orders cannot reserve then either).
pub(crate) async fn close_first(upstream: &Upstream, id: &str) {
    if let Err(e) = upstream.return_allocation(id).await {
        tracing::warn!(show = id, error = %e, "closing the allocation before the show ends failed; ending it anyway");
    }
}

impl Job for ShowClock {
    fn name(&self) -> &'static str {
        "show-clock"
    }

    fn items(&self) -> ItemTable {
        ItemTable { table: "shows", id: "id" }
    }

    async fn run(&self, item: &Claimed) -> anyhow::Result<Next> {
        let show = match self.store.show(&item.id).await {
            Ok(show) => show,
            Err(Error::Resource(Resource::NotFound { .. })) => return Ok(Next::Done),
            Err(e) => return Err(e.into()),
        };
        let now = self.clock.now();
        let id = show.id.as_str();
        match (show.state, show.allocation) {
            // The request that booked it did not finish the allocation.
            (ShowState::Scheduled, AllocationSync::Allocating) => {
                match self.upstream.allocate(id, &show.fields.offers).await {
                    Ok(()) => {
                        self.store.allocation_done(id, now).await?;
                        Ok(Next::At(show.fields.start_time))
                    }
                    Err(Error::Refused { status, .. }) => {
                        // Inventory changed nothing: the line-up becomes what it holds.
                        let held = self.upstream.allocated(id).await?;
                        let mut offers = show.fields.offers.clone();
                        for offer in &mut offers {
                            offer.allocated_quantity =
                                held.iter().find(|(p, _)| *p == offer.product_id).map_or(0, |(_, q)| *q);
                        }
                        tracing::warn!(
                            show = id,
                            reason = status.message(),
                            "line-up cannot be allocated; keeping what inventory holds"
                        );
                        self.store.settle_line_up(id, &offers, now).await?;
                        Ok(Next::At(show.fields.start_time))
                    }
                    Err(e) => Err(e.into()),
                }
            }
            (ShowState::Scheduled, _) if now >= show.fields.start_time => {
                self.store.transition(id, Transition::Start { by_clock: true }, now).await?;
                Ok(Next::At(show.fields.end_time))
            }
            (ShowState::Scheduled, _) => Ok(Next::At(show.fields.start_time)),
            (ShowState::Live, _) if now >= show.fields.end_time => {
                // The allocation closes before the show leaves LIVE, so no
                // order is accepted after its close time (see `close_first`).
                close_first(&self.upstream, id).await;
                self.store.transition(id, Transition::End { by_clock: true }, self.clock.now()).await?;
                self.return_allocation(id).await
            }
            (ShowState::Live, _) => Ok(Next::At(show.fields.end_time)),
            (ShowState::Ended | ShowState::Cancelled, AllocationSync::Returning) => self.return_allocation(id).await,
            (ShowState::Ended | ShowState::Cancelled, _) => Ok(Next::Done),
        }
    }
}
