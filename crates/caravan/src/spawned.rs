//! Suites started as child processes: `caravan up` of this very binary, with
//! temporary data, free ports and no rate limit — the demo's own suite, and
//! the load generator's when it compares two servers configured
//! differently in one run (`--tracing-cost`, `--pooler-cost`).

use std::{
    collections::HashMap,
    net::{SocketAddr, TcpListener},
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::Context as _;
use caravan_platform::client::health_status;
use caravan_platform::config::ServiceKind;
use tonic_health::pb::health_check_response::ServingStatus;

/// How a spawned suite traces: every span of a `ratio` of its traces
/// (`parentbased_traceidratio`, or `always_on` at 1) exported to
/// `collector`, through caravan's span layer or, with `bridge`, the
/// `tracing-opentelemetry` bridge (a binary built with the
/// `bridge-comparison` feature).
#[derive(Debug, Clone, Copy)]
pub struct Tracing {
    pub collector: SocketAddr,
    pub ratio: f64,
    pub bridge: bool,
}

/// A `caravan up` the load generator started.
#[derive(Debug)]
pub struct SpawnedSuite {
    child: Child,
    dir: tempfile::TempDir,
    addrs: HashMap<ServiceKind, SocketAddr>,
}

/// A spawned suite that serves, with its development keys.
#[derive(Debug)]
pub struct ReadySuite {
    suite: SpawnedSuite,
    keys: HashMap<String, String>,
}

/// Drops a database of an earlier run, so each run starts from empty tables.
async fn drop_database(server: &str, name: &str) -> anyhow::Result<()> {
    use sea_orm::ConnectionTrait as _;
    let admin = caravan_platform::db::with_database(server, "postgres").map_err(|e| anyhow::anyhow!(e))?;
    let admin = sea_orm::Database::connect(admin).await.context("connecting to --suite-postgres")?;
    admin.execute_unprepared(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)")).await?;
    admin.close().await?;
    Ok(())
}

fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

impl SpawnedSuite {
    /// Starts `caravan up` (this binary), tracing as `tracing` says when
    /// given, its data in SQLite files or, with `postgres` (a server URL and
    /// a name prefix), in fresh databases `<prefix>_<service>` there,
    /// reached through the transaction-pooling PgBouncer `pooler` if given.
    async fn start(
        tracing: Option<Tracing>,
        postgres: Option<(&str, &str)>,
        pooler: Option<&str>,
    ) -> anyhow::Result<SpawnedSuite> {
        let dir = tempfile::Builder::new().prefix("caravan-loadgen-").tempdir()?;
        let mut addrs = HashMap::new();
        let exe = std::env::current_exe().context("finding the caravan binary")?;
        let mut command = Command::new(exe);
        command.arg("up").arg("--data-dir").arg(dir.path()).args(["--rate-limit", "0", "--no-metrics"]);
        for kind in ServiceKind::ALL {
            let port = free_port()?;
            addrs.insert(kind, SocketAddr::from(([127, 0, 0, 1], port)));
            command.arg(format!("--{kind}-port")).arg(port.to_string());
        }
        command
            .env_clear()
            .env("CARAVAN_LOG", "warn")
            // What tunes the suites and not what they run: the span
            // exporter's batch settings (the traced suite's) and the
            // allocator's.
            .envs(std::env::vars().filter(|(name, _)| name.starts_with("OTEL_BSP_") || name.starts_with("MIMALLOC_")))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.path().join("up.log"))?);
        if let Some((server, prefix)) = postgres {
            for kind in ServiceKind::ALL {
                drop_database(server, &format!("{prefix}_{kind}")).await?;
            }
            command.args(["--postgres", server, "--postgres-prefix", prefix]);
            if let Some(pooler) = pooler {
                command.args(["--postgres-pooler", pooler]);
            }
        }
        if let Some(tracing) = tracing {
            command.env("OTEL_EXPORTER_OTLP_ENDPOINT", format!("http://{}", tracing.collector));
            if tracing.ratio >= 1.0 {
                command.env("OTEL_TRACES_SAMPLER", "always_on");
            } else {
                command
                    .env("OTEL_TRACES_SAMPLER", "parentbased_traceidratio")
                    .env("OTEL_TRACES_SAMPLER_ARG", tracing.ratio.to_string());
            }
            if tracing.bridge {
                command.env("CARAVAN_TRACE_BRIDGE", "tracing-opentelemetry");
            }
        }
        let child = command.spawn().context("starting caravan up")?;
        Ok(SpawnedSuite { child, dir, addrs })
    }

    /// Starts a suite and waits until it serves; with other ports when one
    /// it was given was taken before it could bind it (a port is free when
    /// picked, not reserved, and two suites start side by side).
    pub async fn launch(
        tracing: Option<Tracing>,
        postgres: Option<(&str, &str)>,
        pooler: Option<&str>,
    ) -> anyhow::Result<ReadySuite> {
        const ATTEMPTS: u32 = 3;
        let mut attempt = 1;
        loop {
            match SpawnedSuite::start(tracing, postgres, pooler).await?.ready().await {
                Err(e) if attempt < ATTEMPTS && format!("{e:#}").contains("Address already in use") => {
                    tracing::warn!(attempt, "a port given to caravan up was taken before it bound it; trying others");
                    attempt += 1;
                }
                outcome => return outcome,
            }
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("up.log")).unwrap_or_default()
    }

    /// Waits until all four services serve, and reads the development keys.
    async fn ready(mut self) -> anyhow::Result<ReadySuite> {
        let deadline = Instant::now() + Duration::from_secs(60);
        for addr in self.addrs.values().copied().collect::<Vec<_>>() {
            while !matches!(health_status(addr, "").await, Ok(ServingStatus::Serving)) {
                if let Some(status) = self.child.try_wait()? {
                    anyhow::bail!("caravan up exited ({status}):\n{}", self.log());
                }
                anyhow::ensure!(Instant::now() < deadline, "caravan up did not serve within 60 s:\n{}", self.log());
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        let path: PathBuf = self.dir.path().join("dev-keys.txt");
        let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
        let keys = text
            .lines()
            .filter_map(|l| l.split_once(char::is_whitespace))
            .map(|(who, key)| (who.to_owned(), key.trim().to_owned()))
            .collect();
        Ok(ReadySuite { suite: self, keys })
    }
}

impl ReadySuite {
    /// Where `kind` listens.
    pub fn addr(&self, kind: ServiceKind) -> SocketAddr {
        self.suite.addrs[&kind]
    }

    /// A development key (`operator`, `partner:hema`, `service:orders`, …).
    pub fn key(&self, who: &str) -> Option<&str> {
        self.keys.get(who).map(String::as_str)
    }

    /// The process id of its `caravan up`.
    pub fn pid(&self) -> u32 {
        self.suite.child.id()
    }

    /// Stops it (SIGTERM, so its last spans are exported) and waits.
    pub async fn stop(mut self) {
        let pid = self.suite.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let deadline = Instant::now() + Duration::from_secs(20);
        while matches!(self.suite.child.try_wait(), Ok(None)) && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let _ = self.suite.child.kill();
        let _ = self.suite.child.wait();
    }
}

impl Drop for SpawnedSuite {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
