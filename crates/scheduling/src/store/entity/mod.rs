//! sea-orm entities of scheduling's tables.

pub mod campaign;
pub mod channel;
pub mod host;
