//! The reservation reaper: expires reservations whose TTL passed, so stock
//! never leaks even when the caller that reserved it is gone.
//!
//! It is a platform [`Job`]: due reservations (`due_at` = their expiry) are
//! claimed in bounded batches under a lease, so two replicas never expire
//! one reservation twice (and the conditional UPDATE on `state = ACTIVE`
//! would refuse the second anyway). Each run is a trace of its own, linked to
//! the trace of the request that made the reservation.

use caravan_platform::{
    error::Resource,
    stream::Hub,
    time::SharedClock,
    worker::{Claimed, ItemTable, Job, Next},
};

use crate::{
    domain::ReservationState,
    error::Error,
    store::{Ending, Store},
    watch::StockFeed,
};

/// Expires due reservations.
#[derive(Debug, Clone)]
pub struct Reaper {
    store: Store,
    clock: SharedClock,
    hub: Option<Hub<StockFeed>>,
}

impl Reaper {
    /// A reaper over `store`; `hub`'s streams are woken after each expiry.
    pub fn new(store: Store, clock: SharedClock, hub: Option<Hub<StockFeed>>) -> Self {
        Reaper { store, clock, hub }
    }
}

impl Job for Reaper {
    fn name(&self) -> &'static str {
        "reservation-reaper"
    }

    fn items(&self) -> ItemTable {
        ItemTable { table: "reservations", id: "id" }
    }

    async fn run(&self, item: &Claimed) -> anyhow::Result<Next> {
        let reservation = match self.store.release(&item.id, Ending::Expire, self.clock.now()).await {
            Ok(reservation) => reservation,
            Err(Error::Resource(Resource::NotFound { .. })) => return Ok(Next::Done),
            Err(e) => return Err(e.into()),
        };
        if let Some(hub) = &self.hub {
            hub.wake();
        }
        Ok(match reservation.state {
            // Not yet due (a clock behind another replica's): look again then.
            ReservationState::Active => Next::At(reservation.expire_time),
            _ => Next::Done,
        })
    }
}
