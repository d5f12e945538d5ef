//! What a WatchShow change is: the platform's live-stream [`Feed`] over the
//! `show_history` table. Every version of a show is recorded in the
//! transaction that makes it, so a stream replays each version after its
//! cursor, in order — an event feed: nothing is coalesced, and a subscriber
//! that falls too far behind is ended with `RESOURCE_EXHAUSTED` to reconnect
//! with its cursor.

use caravan_platform::error::Resource;
use caravan_platform::stream::{Changes, Feed};

use crate::{domain::Show, error::Error, store::Store};

/// Versions read per show and poll.
const BATCH: u64 = 256;

/// The show feed.
#[derive(Debug, Clone)]
pub struct ShowFeed {
    store: Store,
}

impl ShowFeed {
    /// A feed over `store`.
    pub fn new(store: Store) -> Self {
        ShowFeed { store }
    }
}

impl Feed for ShowFeed {
    type Key = String;
    type Item = Show;
    const COALESCE: bool = false;

    fn key(item: &Show) -> String {
        item.id.clone()
    }

    fn version(item: &Show) -> i64 {
        item.version
    }

    async fn snapshot(&self, keys: &[String]) -> anyhow::Result<Vec<Show>> {
        let mut shows = Vec::with_capacity(keys.len());
        for key in keys {
            match self.store.show(key).await {
                Ok(show) => shows.push(show),
                Err(Error::Resource(Resource::NotFound { .. })) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(shows)
    }

    async fn changes(&self, after: &[(String, i64)]) -> anyhow::Result<Changes<String, Show>> {
        let mut items = Vec::new();
        let mut too_old = Vec::new();
        for (key, version) in after {
            let versions = self.store.history(key, *version, BATCH).await?;
            match versions.first() {
                // History is kept whole today; a gap would mean it was pruned.
                Some(first) if first.version != version + 1 => too_old.push(key.clone()),
                _ => items.extend(versions),
            }
        }
        Ok(Changes { items, too_old })
    }
}
