//! `caravan` as a separate process, as Kubernetes and operators run it:
//! configuration errors, signals, migrations.

#![allow(clippy::unwrap_used)] // Test helpers fail loudly; that is their job.

use std::{
    net::{SocketAddr, TcpListener},
    process::{Child, Command, ExitStatus, Stdio},
    time::{Duration, Instant},
};

use caravan_platform::config::ServiceKind;
use caravan_testkit::{TestDatabase, eventually, health_status};
use tonic_health::pb::health_check_response::ServingStatus;

const BIN: &str = env!("CARGO_BIN_EXE_caravan");

/// A command with a clean environment: nothing leaks in from the test runner.
fn caravan(args: &[&str]) -> Command {
    let mut command = Command::new(BIN);
    command
        .args(args)
        .env_clear()
        .env("CARAVAN_LOG", "warn")
        .env("CARAVAN_METRICS_ADDR", "127.0.0.1:0")
        .stdin(Stdio::null());
    command
}

fn free_addr() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap()
}

/// Waits without blocking the test's runtime: the server's drain waits for
/// our client connections to close, which needs that runtime to run.
async fn wait_exit(child: &mut Child, limit: Duration) -> ExitStatus {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("caravan did not exit within {limit:?}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn signal(child: &Child, name: &str) {
    let status = Command::new("kill").args([&format!("-{name}"), &child.id().to_string()]).status().unwrap();
    assert!(status.success());
}

#[test]
fn a_bad_variable_exits_64_naming_it() {
    for (var, value) in [
        ("CARAVAN_MIGRATE", "sometimes"),
        ("CARAVAN_LISTEN_ADDR", "nowhere"),
        ("CARAVAN_SHUTDOWN_GRACE", "forever"),
        ("CARAVAN_CATALOG_URL", "catalog"),
    ] {
        let output = caravan(&["serve", "orders"]).env(var, value).output().unwrap();
        assert_eq!(output.status.code(), Some(64), "{var}={value}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(stderr.lines().count(), 1, "one clear line: {stderr}");
        assert!(stderr.contains(var), "{stderr}");
    }
}

#[test]
fn an_empty_variable_is_unset() {
    // As the dev overlay exports nothing: OTEL_EXPORTER_OTLP_ENDPOINT= .
    let output = caravan(&["keys", "create", "--kind", "operator"])
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", "")
        .env("CARAVAN_LOG_FORMAT", "")
        .env("CARAVAN_KEYS_FILE", "")
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let output = caravan(&["serve", "catalog"]).env("CARAVAN_MIGRATE", "").output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("CARAVAN_KEYS_FILE") && !stderr.contains("CARAVAN_MIGRATE"), "{stderr}");
}

#[test]
fn serve_refuses_to_start_without_keys() {
    let output = caravan(&["serve", "catalog"]).output().unwrap();
    assert_eq!(output.status.code(), Some(64));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("CARAVAN_KEYS_FILE") && stderr.contains("--insecure-no-auth"), "{stderr}");

    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys.txt");
    std::fs::write(&keys, "not a key line\n").unwrap();
    let output = caravan(&["serve", "catalog"]).env("CARAVAN_KEYS_FILE", &keys).output().unwrap();
    assert_eq!(output.status.code(), Some(64));
    assert!(String::from_utf8_lossy(&output.stderr).contains("line 1"), "a bad keys file names its line");
}

#[test]
fn keys_create_prints_the_key_once_and_stores_only_its_hash() {
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys.txt");
    let output = caravan(&["keys", "create", "--kind", "partner", "--partner", "hema", "--id", "hema-shop"])
        .env("CARAVAN_KEYS_FILE", &keys)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let key = String::from_utf8(output.stdout).unwrap().trim().to_owned();
    assert!(key.starts_with("cvn_") && key.len() == 68, "{key}");
    let stored = std::fs::read_to_string(&keys).unwrap();
    assert!(!stored.contains(&key), "the plain key is not stored");
    let entries = caravan_platform::auth::keys::parse(&stored).unwrap();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].hash, caravan_platform::auth::keys::hash(&key));
    assert_eq!(entries[0].principal.partner.as_deref(), Some("hema"));

    let output = caravan(&["keys", "create", "--kind", "partner"]).output().unwrap();
    assert_eq!(output.status.code(), Some(64), "a partner key needs its partner");
}

/// The variables a help text names (`[env: NAME=…]`).
fn variables_in(help: &str) -> Vec<String> {
    help.split("[env: ").skip(1).filter_map(|rest| rest.split(['=', ']']).next()).map(str::to_owned).collect()
}

#[test]
fn help_is_generated_from_the_declarations() {
    let help = |args: &[&str]| {
        let output = caravan(args).output().unwrap();
        assert!(output.status.success(), "{args:?}");
        String::from_utf8(output.stdout).unwrap()
    };
    let top = help(&["--help"]);
    let mut declared = Vec::new();
    for service in ["catalog", "scheduling", "inventory", "orders"] {
        let text = help(&["serve", service, "--help"]);
        assert!(text.contains("[default: 20s]"), "defaults are shown: {text}");
        declared.extend(variables_in(&text));
    }
    for name in [
        "CARAVAN_LISTEN_ADDR",
        "CARAVAN_DATABASE_URL",
        "CARAVAN_KEYS_FILE",
        "CARAVAN_PAYMENT_WINDOW",
        "CARAVAN_FAILPOINT",
        "CARAVAN_RESERVE_BATCH",
        "CARAVAN_METRICS_ADDR",
        "CARAVAN_LOG",
        "OTEL_EXPORTER_OTLP_PROTOCOL",
    ] {
        assert!(declared.iter().any(|d| d == name), "{name} is declared");
    }
    for name in &declared {
        assert!(top.contains(name.as_str()), "{name} missing from caravan --help");
    }
    // A service's own settings show only under that service.
    assert!(!help(&["serve", "catalog", "--help"]).contains("CARAVAN_PAYMENT_WINDOW"));
    assert!(help(&["serve", "orders", "--help"]).contains("orders.place.after_reserve"), "failpoints are listed");
}

#[test]
fn a_flag_sets_what_its_variable_sets() {
    let output = caravan(&["serve", "orders", "--call-limit", "1ms"]).output().unwrap();
    assert_eq!(output.status.code(), Some(64));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("CARAVAN_CALL_LIMIT") && stderr.contains("at least 100ms"), "{stderr}");
    let output = caravan(&["serve", "orders"]).env("CARAVAN_RESERVATION_TTL", "1m").output().unwrap();
    assert_eq!(output.status.code(), Some(64), "a service's own settings are checked against the common ones");
    assert!(String::from_utf8_lossy(&output.stderr).contains("CARAVAN_RESERVATION_TTL"));
}

#[tokio::test]
async fn serve_drains_and_exits_cleanly_on_sigterm_and_sigint() {
    for signal_name in ["TERM", "INT"] {
        let database = TestDatabase::new::<caravan_inventory::Migrator>(ServiceKind::Inventory).await.unwrap();
        let addr = free_addr();
        let mut child = caravan(&["serve", "inventory", "--insecure-no-auth"])
            .env("CARAVAN_LISTEN_ADDR", addr.to_string())
            .env("CARAVAN_DATABASE_URL", database.config().url.expose())
            .env("CARAVAN_DB_MAX_CONNECTIONS", "2")
            .env("CARAVAN_MIGRATE", "verify")
            .spawn()
            .unwrap();
        let up = eventually(Duration::from_secs(30), || async {
            matches!(health_status(addr, "").await, Ok(ServingStatus::Serving))
        })
        .await;
        assert!(up, "caravan serve inventory became SERVING");
        signal(&child, signal_name);
        let status = wait_exit(&mut child, Duration::from_secs(15)).await;
        assert!(status.success(), "SIG{signal_name}: {status:?}");
        assert!(health_status(addr, "").await.is_err(), "port closed after exit");
    }
}

#[tokio::test]
async fn migrate_then_serve_in_verify_mode() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("catalog.db").display());
    let addr = free_addr();
    let serve = || {
        caravan(&["serve", "catalog", "--insecure-no-auth"])
            .env("CARAVAN_LISTEN_ADDR", addr.to_string())
            .env("CARAVAN_DATABASE_URL", &url)
            .env("CARAVAN_MIGRATE", "verify")
            .env("CARAVAN_HEALTH_CHECK_INTERVAL", "100ms")
            .spawn()
            .unwrap()
    };

    // Before the migration job: up, but NOT_SERVING.
    let mut child = serve();
    let reported = eventually(Duration::from_secs(30), || async {
        matches!(health_status(addr, "").await, Ok(ServingStatus::NotServing))
    })
    .await;
    assert!(reported, "a replica whose schema is behind reports NOT_SERVING");

    // The migration job; the running replica notices.
    let migrate = caravan(&["serve", "catalog", "migrate"]).env("CARAVAN_DATABASE_URL", &url).output().unwrap();
    assert!(migrate.status.success(), "{}", String::from_utf8_lossy(&migrate.stderr));
    let serving = eventually(Duration::from_secs(10), || async {
        matches!(health_status(addr, "").await, Ok(ServingStatus::Serving))
    })
    .await;
    assert!(serving, "SERVING once migrated");
    signal(&child, "TERM");
    assert!(wait_exit(&mut child, Duration::from_secs(15)).await.success());
}
