//! Mechanisms shared by every caravan service, so a service crate holds only
//! its own domain: typed configuration, logging, database connection and
//! migrations, the gRPC server (health, reflection, drain, load shedding),
//! the RPC layers (tracing, deadlines, metrics), channels to other services
//! with retries, rich errors, and the test harness.

pub mod app;
pub mod auth;
pub mod batch;
pub mod chaos;
pub mod client;
pub mod config;
pub mod db;
pub mod deadline;
pub mod error;
pub mod failpoint;
pub mod idempotency;
pub mod metrics;
pub mod money;
pub mod paging;
pub mod resource;
pub mod rpc;
pub mod schema;
pub mod server;
pub mod shutdown;
pub mod stream;
pub mod telemetry;
pub mod time;
pub mod tls;
pub mod worker;

pub use tokio_util::sync::CancellationToken;
