//! What a WatchStock change is: the platform's live-stream [`Feed`] over
//! stock rows (the general pool of a product) and allocation lines (what is
//! left of a product for one show).
//!
//! Stock is state, not history: the feed answers the latest level of every
//! key whose version moved past the cursor, so a cursor is never too old and
//! a reconnecting client misses no change of state. Versions are bumped by
//! the same statement that changes a row, under its row lock, so they grow in
//! commit order.

use std::collections::BTreeMap;

use caravan_platform::stream::{Changes, Feed};

use crate::{
    domain::{AllocationLine, StockLevel},
    error::Error,
    store::Store,
};

/// One watched aggregate: a product's general pool, or its line in a show's
/// allocation.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct WatchKey {
    /// The show id, when watching a show's allocation.
    pub show: Option<String>,
    /// The product id.
    pub product: String,
}

/// A state sent on a stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Watched {
    /// A product's general pool.
    Level(StockLevel),
    /// A product's line in a show's allocation.
    Line {
        /// The show id.
        show: String,
        /// The line (empty sources: never allocated).
        line: AllocationLine,
    },
}

/// The stock feed, read from inventory's own tables.
#[derive(Debug, Clone)]
pub struct StockFeed {
    store: Store,
}

impl StockFeed {
    /// A feed over `store`.
    pub fn new(store: Store) -> Self {
        StockFeed { store }
    }

    /// The current state of each key (a line never allocated is at version 0).
    pub async fn states(&self, keys: &[WatchKey]) -> Result<Vec<Watched>, Error> {
        let mut general = Vec::new();
        let mut by_show: BTreeMap<&str, Vec<String>> = BTreeMap::new();
        for key in keys {
            match &key.show {
                None => general.push(key.product.clone()),
                Some(show) => by_show.entry(show).or_default().push(key.product.clone()),
            }
        }
        let mut states: Vec<Watched> = Vec::with_capacity(keys.len());
        if !general.is_empty() {
            states.extend(self.store.levels(&general).await?.into_iter().map(Watched::Level));
        }
        for (show, products) in by_show {
            let lines = self.store.allocation_lines(show, Some(&products)).await?;
            for product in products {
                let line = lines.iter().find(|l| l.product_id == product).cloned().unwrap_or(AllocationLine {
                    product_id: product,
                    sources: Vec::new(),
                    closed: false,
                    version: 0,
                });
                states.push(Watched::Line { show: show.to_owned(), line });
            }
        }
        Ok(states)
    }
}

impl Feed for StockFeed {
    type Key = WatchKey;
    type Item = Watched;
    const COALESCE: bool = true;

    fn key(item: &Watched) -> WatchKey {
        match item {
            Watched::Level(level) => WatchKey { show: None, product: level.product_id.clone() },
            Watched::Line { show, line } => WatchKey { show: Some(show.clone()), product: line.product_id.clone() },
        }
    }

    fn version(item: &Watched) -> i64 {
        match item {
            Watched::Level(level) => level.version(),
            Watched::Line { line, .. } => line.version,
        }
    }

    async fn snapshot(&self, keys: &[WatchKey]) -> anyhow::Result<Vec<Watched>> {
        Ok(self.states(keys).await?)
    }

    async fn changes(&self, after: &[(WatchKey, i64)]) -> anyhow::Result<Changes<WatchKey, Watched>> {
        let keys: Vec<WatchKey> = after.iter().map(|(k, _)| k.clone()).collect();
        let cursors: BTreeMap<&WatchKey, i64> = after.iter().map(|(k, v)| (k, *v)).collect();
        let items = self
            .states(&keys)
            .await?
            .into_iter()
            .filter(|item| cursors.get(&Self::key(item)).is_some_and(|cursor| Self::version(item) > *cursor))
            .collect();
        Ok(Changes { items, too_old: Vec::new() })
    }
}
