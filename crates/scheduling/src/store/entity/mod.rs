//! sea-orm entities of scheduling's tables.

pub mod host;
