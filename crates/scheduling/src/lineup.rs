//! The line-up saga: a show is booked (its slot written), its products
//! checked with catalog, and its line-up allocated in inventory, all or
//! nothing; when it closes, the allocation goes back. A refusal forgets the
//! booking (nothing was allocated); a transient failure leaves it for the
//! clock worker ([`crate::clock`]) to re-drive, and a retry of the same
//! request resumes it.

use caravan_platform::error::Resource;
use caravan_platform::time::SharedClock;

use crate::{
    domain::{AllocationSync, Show, ShowFields},
    error::Error,
    store::Store,
    upstream::Upstream,
};

/// The saga's parts: where shows are kept, whom it calls, and the time.
#[derive(Debug, Clone)]
pub struct LineUp {
    store: Store,
    upstream: Upstream,
    clock: SharedClock,
}

impl LineUp {
    pub fn new(store: Store, upstream: Upstream, clock: SharedClock) -> Self {
        LineUp { store, upstream, clock }
    }

    /// Books show `id` with `fields` and allocates its line-up; resumes a
    /// booking of the same fields that did not finish.
    pub async fn book(&self, id: &str, fields: &ShowFields, traceparent: &str) -> Result<Show, Error> {
        self.upstream.check_products(&fields.offers).await?;
        let show = match self.store.insert_show(id, fields, traceparent, self.clock.now()).await {
            Ok(show) => show,
            // A retry of a create that did not finish resumes it.
            Err(Error::Resource(Resource::AlreadyExists { kind, name })) => {
                let existing = self.store.show(id).await?;
                if existing.fields != *fields {
                    return Err(Error::Resource(Resource::AlreadyExists { kind, name }));
                }
                existing
            }
            Err(e) => return Err(e),
        };
        if show.allocation != AllocationSync::Allocating {
            return Ok(show);
        }
        match self.upstream.allocate(id, &fields.offers).await {
            Ok(()) => {
                self.store.allocation_done(id, self.clock.now()).await?;
                self.store.show(id).await
            }
            Err(refused @ Error::Refused { .. }) => {
                self.store.forget_unallocated_show(id).await?;
                Err(refused)
            }
            // Transient: the show stays, its allocation re-driven by the
            // clock worker; a retry with the same request id resumes it.
            Err(e) => Err(e),
        }
    }

    /// Returns a closed show's allocation now; if inventory cannot be reached
    /// the clock worker re-drives it.
    pub async fn return_allocation(&self, id: &str) {
        match self.upstream.return_allocation(id).await {
            Ok(()) => {
                if let Err(e) = self.store.allocation_returned(id).await {
                    tracing::warn!(show = id, error = %e, "allocation returned but not recorded; the worker will repeat it");
                }
            }
            Err(e) => tracing::warn!(show = id, error = %e, "returning the allocation failed; the worker will retry"),
        }
    }
}
