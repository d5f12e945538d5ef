//! The `caravan` command's library: the whole suite in one process, shared
//! by `caravan up` and the in-process cross-service tests.

pub mod catalog_import;
pub mod channel;
pub mod dataset;
pub mod demo;
pub mod festival;
pub mod keys;
#[cfg(feature = "loadgen")]
pub mod loadgen;
pub mod spawned;
pub mod suite;
