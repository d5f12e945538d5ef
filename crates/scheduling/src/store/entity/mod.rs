//! sea-orm entities of scheduling's tables.

pub mod campaign;
pub mod channel;
pub mod host;
pub mod offer;
pub mod show;
pub mod show_history;
