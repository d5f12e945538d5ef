//! The baselines every figure is compared with, measured in the same run:
//! a bare tonic echo server, the same echo behind caravan's whole server
//! stack, and the database's raw single-row update rate. The echo servers run
//! as child processes, so their CPU is theirs and not the load generator's.

use std::{
    io::{BufRead as _, BufReader},
    net::SocketAddr,
    process::{Child, Command, Stdio},
    time::Duration,
};

use anyhow::Context as _;
use caravan_platform::{
    CancellationToken,
    auth::{
        Check, Principal, ServerAuth,
        keys::{KeyEntry, KeyStore},
        rate::{RateConfig, RateLimits},
    },
    config::{DatabaseConfig, ServiceKind},
    server::{GrpcServer, ServeOptions},
    telemetry::ServiceTelemetry,
};
use caravan_proto::loadgen::v1::{
    EchoRequest, EchoResponse,
    echo_service_server::{EchoService, EchoServiceServer},
};
use sea_orm_migration::{MigrationTrait, MigratorTrait};
use tonic::{Request, Response, Status, service::Routes, transport::server::TcpIncoming};

/// The variable through which the parent hands the echo server its key.
pub const KEY_VARIABLE: &str = "CARAVAN_LOADGEN_KEY";

/// Which echo server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum EchoMode {
    /// tonic alone: no middleware at all.
    Bare,
    /// caravan's full server stack: load shedding, tracing spans, auth, rate
    /// limit, deadlines, metrics, health watching its database.
    Platform,
    /// Not an echo: an OTLP/gRPC trace receiver that counts the spans it is
    /// sent, for a suite measured from outside (under callgrind) to export to.
    Otlp,
}

#[derive(Debug, Clone, Copy)]
struct EchoImpl;

#[tonic::async_trait]
impl EchoService for EchoImpl {
    async fn echo(&self, request: Request<EchoRequest>) -> Result<Response<EchoResponse>, Status> {
        Ok(Response::new(EchoResponse { payload: request.into_inner().payload }))
    }
}

#[derive(Debug)]
struct NoMigrations;

impl MigratorTrait for NoMigrations {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        Vec::new()
    }
}

/// Serves echo on `addr` until `shutdown`; prints `listening <addr>` once bound.
pub async fn serve_echo(
    mode: EchoMode,
    addr: SocketAddr,
    key: Option<String>,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    match mode {
        EchoMode::Bare => {
            let listener = tokio::net::TcpListener::bind(addr).await?;
            println!("listening {}", listener.local_addr()?);
            // The same socket options as the platform server, so only the
            // middleware differs.
            tonic::transport::Server::builder()
                .add_service(EchoServiceServer::new(EchoImpl))
                .serve_with_incoming_shutdown(
                    TcpIncoming::from(listener).with_nodelay(Some(true)),
                    shutdown.cancelled_owned(),
                )
                .await?;
        }
        EchoMode::Platform => {
            let key = key.context("the platform echo server needs a key")?;
            let dir = tempfile::tempdir()?;
            let database = DatabaseConfig::sqlite_file(&dir.path().join("echo.db"));
            let db = caravan_platform::db::connect(&database).await?;
            let server = GrpcServer::bind(addr).await?;
            println!("listening {}", server.local_addr());
            let store = KeyStore::new(vec![KeyEntry::for_key(&key, Principal::partner("loadgen", "loadgen"))]);
            let options = ServeOptions {
                service: ServiceKind::Catalog,
                telemetry: ServiceTelemetry::global(),
                max_concurrent_calls: 4096,
                // A partner, so the rate limiter does its work on every call; a
                // quota no benchmark reaches, so it never refuses.
                auth: ServerAuth {
                    check: Check::Keys(store),
                    rate: RateLimits::new(RateConfig { per_second: 10_000_000, burst: 10_000_000 }),
                },
                tls: None,
                service_name: "caravan.loadgen.v1.EchoService",
                probe: caravan_platform::db::connect_probe(&database).await?,
                db,
                health_check_interval: Duration::from_secs(2),
                shutdown_grace: Duration::from_secs(2),
                drain_delay: Duration::ZERO,
            };
            server.serve::<NoMigrations>(Routes::new(EchoServiceServer::new(EchoImpl)), options, shutdown).await?;
        }
        EchoMode::Otlp => {
            let sink = super::suites::SpanSink::start_on(addr).await?;
            println!("listening {}", sink.addr());
            shutdown.cancelled().await;
            println!("{} spans received", sink.spans());
        }
    }
    Ok(())
}

/// An echo server in a child process; killed on drop.
#[derive(Debug)]
pub struct EchoChild {
    child: Child,
    /// Where it listens.
    pub addr: SocketAddr,
}

impl EchoChild {
    /// Starts `caravan echo-server --mode <mode>` and waits until it listens.
    pub fn spawn(mode: EchoMode, key: &str) -> anyhow::Result<Self> {
        let exe = std::env::current_exe()?;
        let mode = clap::ValueEnum::to_possible_value(&mode).context("an echo mode")?;
        let mut child = Command::new(exe)
            .args(["echo-server", "--mode", mode.get_name(), "--addr", "127.0.0.1:0"])
            .env(KEY_VARIABLE, key)
            .env("CARAVAN_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .context("starting the echo server")?;
        let stdout = child.stdout.take().context("echo server stdout")?;
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line)?;
        let addr = line
            .trim()
            .strip_prefix("listening ")
            .and_then(|a| a.parse().ok())
            .with_context(|| format!("the echo server said `{}`", line.trim()))?;
        Ok(EchoChild { child, addr })
    }

    /// Its process id (for CPU accounting).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for EchoChild {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
