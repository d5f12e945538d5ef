//! Fault-injection drills: latency or errors added to a service's outgoing
//! calls or database operations, for a bounded time, so a team can rehearse
//! a slow inventory or a failing database before the festival.
//!
//! Off unless the process is started with `CARAVAN_CHAOS_ALLOWED=true` and
//! a drill file (`CARAVAN_CHAOS_FILE`); a drill file without the permission
//! is a configuration error. While serving, an operator starts a drill by
//! writing the file (a ConfigMap in Kubernetes) and stops it by emptying it,
//! or simply lets it end: every drill names its end (`until`, at most
//! [`LONGEST_DRILL`] ahead). The file is JSON:
//!
//! ```json
//! {"until": "2026-12-07T10:30:00Z",
//!  "faults": [
//!    {"service": "orders", "calls_to": "inventory", "latency": "300ms"},
//!    {"service": "inventory", "database": true, "error_rate": 0.05}
//!  ]}
//! ```
//!
//! Each process applies the faults naming its own service. A call fault
//! delays the answer of each call to the named service by `latency` (the
//! request goes out at once; the caller's deadline still holds) or, with
//! probability `error_rate`, answers it at once with `code` (UNAVAILABLE by
//! default) without sending it. A database fault delays or fails each
//! statement or transaction start of the service's pool. Every injection is
//! counted (`caravan_chaos_injected_total{service,target,fault}`) and marked
//! on the operation's span (`chaos.fault`: the client span of a call, the
//! `db` span of a store operation); `caravan_chaos_active{service}`
//! says whether a drill is on (from when it is read until the first
//! operation after its end).

use std::{
    path::{Path, PathBuf},
    sync::{Arc, OnceLock, RwLock},
    time::Duration,
};

use prometheus::{IntCounterVec, IntGaugeVec, Opts};
use serde::Deserialize;
use tokio_util::sync::CancellationToken;
use tonic::{Code, Status};

use crate::config::ServiceKind;

/// The longest a drill may run from when it is read: a drill nobody
/// remembers to stop still ends.
pub const LONGEST_DRILL: Duration = Duration::from_secs(2 * 60 * 60);
/// The largest latency a fault may add.
pub const LONGEST_LATENCY: Duration = Duration::from_secs(30);

/// What a fault applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// The service's calls to another service.
    Calls(ServiceKind),
    /// The service's database operations.
    Database,
}

impl Target {
    fn label(self) -> String {
        match self {
            Target::Calls(to) => format!("calls:{to}"),
            Target::Database => "database".to_owned(),
        }
    }
}

/// One fault of a drill, for this service.
#[derive(Debug, Clone, PartialEq)]
pub struct Fault {
    /// Where it applies.
    pub target: Target,
    /// Added to each operation.
    pub latency: Duration,
    /// The share of operations that fail, 0 to 1.
    pub error_rate: f64,
    /// How a failed call answers.
    pub code: Code,
}

/// A drill as this service applies it.
#[derive(Debug, Clone, PartialEq)]
pub struct Drill {
    /// When it ends (wall clock).
    pub until: chrono::DateTime<chrono::Utc>,
    /// This service's faults.
    pub faults: Vec<Fault>,
}

/// What to do to one operation.
#[derive(Debug, Default)]
pub struct Injection {
    /// Wait this long first.
    pub delay: Duration,
    /// Then fail with this, when set.
    pub error: Option<Status>,
}

impl Injection {
    /// Whether nothing is injected.
    pub fn is_none(&self) -> bool {
        self.delay.is_zero() && self.error.is_none()
    }
}

/// A service's chaos switch: never on without permission, on only while a
/// drill file says so and its time lasts. Clones share the switch.
#[derive(Debug, Clone)]
pub struct Chaos {
    service: Option<ServiceKind>,
    drill: Arc<RwLock<Option<Drill>>>,
}

impl Default for Chaos {
    fn default() -> Self {
        Chaos::off()
    }
}

impl Chaos {
    /// Never injects anything (the default).
    pub fn off() -> Self {
        Chaos { service: None, drill: Arc::new(RwLock::new(None)) }
    }

    /// Reads the drill file `path` now and again whenever it changes (every
    /// `interval`, until `shutdown`). A file that is missing, empty or
    /// refused means no drill; a refused one is logged and counted.
    pub fn watch(service: ServiceKind, path: PathBuf, interval: Duration, shutdown: CancellationToken) -> Self {
        let chaos = Chaos { service: Some(service), drill: Arc::new(RwLock::new(None)) };
        metrics().1.with_label_values(&[service.as_str()]).set(0);
        chaos.reload(&path);
        let reloading = chaos.clone();
        crate::auth::keys::on_change(vec![path.clone()], interval, shutdown, move || reloading.reload(&path));
        chaos
    }

    fn reload(&self, path: &Path) {
        let Some(service) = self.service else { return };
        let drill = match std::fs::read_to_string(path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => {
                tracing::error!(%service, path = %path.display(), error = %e, "chaos drill file unreadable: no drill");
                None
            }
            Ok(text) => match parse(&text, service, chrono::Utc::now()) {
                Ok(drill) => drill,
                Err(e) => {
                    tracing::error!(%service, path = %path.display(), error = %e, "chaos drill refused: no drill");
                    None
                }
            },
        };
        match &drill {
            Some(drill) => tracing::warn!(%service, until = %drill.until, faults = ?drill.faults, "chaos drill on"),
            None => tracing::info!(%service, "no chaos drill"),
        }
        // On as soon as it is read, not at its first injection; it turns off
        // at the first operation after its end.
        let on = drill.as_ref().is_some_and(|d| chrono::Utc::now() < d.until);
        metrics().1.with_label_values(&[service.as_str()]).set(i64::from(on));
        *self.drill.write().unwrap_or_else(|e| e.into_inner()) = drill;
    }

    /// What to do to a call to `to`.
    pub fn call(&self, to: ServiceKind) -> Injection {
        self.inject(Target::Calls(to))
    }

    /// What to do to a database operation.
    pub fn database(&self) -> Injection {
        self.inject(Target::Database)
    }

    fn inject(&self, target: Target) -> Injection {
        let Some(service) = self.service else { return Injection::default() };
        let guard = self.drill.read().unwrap_or_else(|e| e.into_inner());
        let Some(drill) = guard.as_ref() else { return Injection::default() };
        let injected = metrics().0;
        if chrono::Utc::now() >= drill.until {
            // Over: forgotten, so later operations cost nothing.
            drop(guard);
            *self.drill.write().unwrap_or_else(|e| e.into_inner()) = None;
            metrics().1.with_label_values(&[service.as_str()]).set(0);
            tracing::info!(%service, "chaos drill over");
            return Injection::default();
        }
        let mut injection = Injection::default();
        for fault in drill.faults.iter().filter(|f| f.target == target) {
            if !fault.latency.is_zero() {
                injection.delay += fault.latency;
                injected.with_label_values(&[service.as_str(), &target.label(), "latency"]).inc();
            }
            if injection.error.is_none() && fault.error_rate > 0.0 && rand::random::<f64>() < fault.error_rate {
                injected.with_label_values(&[service.as_str(), &target.label(), "error"]).inc();
                injection.error = Some(Status::new(
                    fault.code,
                    format!("chaos drill: {} fault injected in {service}", target.label()),
                ));
            }
        }
        injection
    }

    /// What marks an operation's span: `latency` or `error`; `None` when
    /// nothing was injected.
    pub fn fault_kind(injection: &Injection) -> Option<&'static str> {
        match (&injection.error, injection.delay.is_zero()) {
            (Some(_), _) => Some("error"),
            (None, false) => Some("latency"),
            (None, true) => None,
        }
    }
}

/// `caravan_chaos_injected_total{service,target,fault}` and
/// `caravan_chaos_active{service}`.
fn metrics() -> (&'static IntCounterVec, &'static IntGaugeVec) {
    static METRICS: OnceLock<(IntCounterVec, IntGaugeVec)> = OnceLock::new();
    let (injected, active) = METRICS.get_or_init(|| {
        let injected = IntCounterVec::new(
            Opts::new("caravan_chaos_injected_total", "Faults injected by a chaos drill, by target and kind"),
            &["service", "target", "fault"],
        );
        let active = IntGaugeVec::new(
            Opts::new("caravan_chaos_active", "Whether a chaos drill is injecting faults into the service (1) or not"),
            &["service"],
        );
        match (injected, active) {
            (Ok(injected), Ok(active)) => (crate::metrics::register(injected), crate::metrics::register(active)),
            (Err(e), _) | (_, Err(e)) => unreachable!("valid metric definitions: {e}"),
        }
    });
    (injected, active)
}

/// Registers the drills' metrics (a process that allows drills lists them
/// on /metrics from the start).
pub fn register_metrics() {
    metrics();
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DrillFile {
    until: String,
    faults: Vec<FaultLine>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FaultLine {
    service: String,
    #[serde(default)]
    calls_to: Option<String>,
    #[serde(default)]
    database: bool,
    #[serde(default)]
    latency: Option<String>,
    #[serde(default)]
    error_rate: f64,
    #[serde(default)]
    code: Option<String>,
}

/// The drill of `text` for `service`, read at `now`; `None` for an empty
/// file or one whose faults are all for other services. Anything that
/// cannot be meant — an end past [`LONGEST_DRILL`], a fault with no target
/// or two, a latency past [`LONGEST_LATENCY`], a rate outside 0 to 1, a code
/// a drill has no business sending — refuses the whole file.
pub fn parse(text: &str, service: ServiceKind, now: chrono::DateTime<chrono::Utc>) -> Result<Option<Drill>, String> {
    if text.trim().is_empty() {
        return Ok(None);
    }
    let file: DrillFile = serde_json::from_str(text).map_err(|e| format!("not a drill: {e}"))?;
    let until = chrono::DateTime::parse_from_rfc3339(&file.until)
        .map_err(|e| format!("until `{}` is not an RFC 3339 instant: {e}", file.until))?
        .with_timezone(&chrono::Utc);
    let longest = chrono::Duration::from_std(LONGEST_DRILL).map_err(|e| e.to_string())?;
    if until > now + longest {
        return Err(format!("until {until} is more than {} away", humantime::format_duration(LONGEST_DRILL)));
    }
    let mut faults = Vec::new();
    for (i, line) in file.faults.iter().enumerate() {
        let at = |why: String| format!("faults[{i}]: {why}");
        let of: ServiceKind = line.service.parse().map_err(at)?;
        let target = match (&line.calls_to, line.database) {
            (Some(to), false) => Target::Calls(to.parse().map_err(at)?),
            (None, true) => Target::Database,
            _ => return Err(at("name exactly one of calls_to and database".into())),
        };
        if let Target::Calls(to) = target
            && !of.upstreams().contains(&to)
        {
            return Err(at(format!("{of} does not call {to}")));
        }
        let latency = match &line.latency {
            None => Duration::ZERO,
            Some(raw) => humantime::parse_duration(raw).map_err(|e| at(format!("latency `{raw}`: {e}")))?,
        };
        if latency > LONGEST_LATENCY {
            return Err(at(format!("latency above {}", humantime::format_duration(LONGEST_LATENCY))));
        }
        if !(0.0..=1.0).contains(&line.error_rate) {
            return Err(at("error_rate must be from 0 to 1".into()));
        }
        let code = match line.code.as_deref().unwrap_or("UNAVAILABLE") {
            "UNAVAILABLE" => Code::Unavailable,
            "DEADLINE_EXCEEDED" => Code::DeadlineExceeded,
            "RESOURCE_EXHAUSTED" => Code::ResourceExhausted,
            "INTERNAL" => Code::Internal,
            other => {
                return Err(at(format!(
                    "code `{other}` is not one of UNAVAILABLE, DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED, INTERNAL"
                )));
            }
        };
        if latency.is_zero() && line.error_rate == 0.0 {
            return Err(at("injects nothing: give a latency or an error_rate".into()));
        }
        if of == service {
            faults.push(Fault { target, latency, error_rate: line.error_rate, code });
        }
    }
    Ok((!faults.is_empty()).then_some(Drill { until, faults }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> chrono::DateTime<chrono::Utc> {
        "2026-12-07T10:00:00Z".parse().unwrap()
    }

    #[test]
    fn a_drill_keeps_the_faults_of_its_own_service() {
        let text = r#"{"until": "2026-12-07T10:30:00Z", "faults": [
            {"service": "orders", "calls_to": "inventory", "latency": "300ms"},
            {"service": "inventory", "database": true, "error_rate": 0.5, "code": "DEADLINE_EXCEEDED"}]}"#;
        let orders = parse(text, ServiceKind::Orders, now()).unwrap().unwrap();
        assert_eq!(orders.faults.len(), 1);
        assert_eq!(orders.faults[0].target, Target::Calls(ServiceKind::Inventory));
        assert_eq!(orders.faults[0].latency, Duration::from_millis(300));
        let inventory = parse(text, ServiceKind::Inventory, now()).unwrap().unwrap();
        assert_eq!((inventory.faults[0].target, inventory.faults[0].code), (Target::Database, Code::DeadlineExceeded));
        assert_eq!(parse(text, ServiceKind::Catalog, now()).unwrap(), None, "nothing for catalog");
        assert_eq!(parse("  \n", ServiceKind::Orders, now()).unwrap(), None, "an empty file stops the drill");
    }

    #[test]
    fn the_runbooks_example_drill_is_a_drill() {
        let text = include_str!("../../../deploy/drills/inventory-slow.json");
        let inventory = parse(text, ServiceKind::Inventory, now()).unwrap().unwrap();
        assert_eq!(inventory.faults[0].target, Target::Database);
        let orders = parse(text, ServiceKind::Orders, now()).unwrap().unwrap();
        assert_eq!(orders.faults[0].error_rate, 0.2);
    }

    #[test]
    fn what_cannot_be_meant_refuses_the_whole_file() {
        for (text, why) in [
            (
                r#"{"until": "2026-12-08T10:00:00Z", "faults": [{"service": "orders", "database": true, "latency": "1s"}]}"#,
                "away",
            ),
            (r#"{"until": "2026-12-07T10:30:00Z", "faults": [{"service": "orders", "latency": "1s"}]}"#, "exactly one"),
            (
                r#"{"until": "2026-12-07T10:30:00Z", "faults": [{"service": "catalog", "calls_to": "orders", "latency": "1s"}]}"#,
                "does not call",
            ),
            (
                r#"{"until": "2026-12-07T10:30:00Z", "faults": [{"service": "orders", "database": true, "latency": "5m"}]}"#,
                "latency above",
            ),
            (
                r#"{"until": "2026-12-07T10:30:00Z", "faults": [{"service": "orders", "database": true, "error_rate": 2}]}"#,
                "from 0 to 1",
            ),
            (
                r#"{"until": "2026-12-07T10:30:00Z", "faults": [{"service": "orders", "database": true, "error_rate": 1, "code": "OK"}]}"#,
                "is not one of",
            ),
            (
                r#"{"until": "2026-12-07T10:30:00Z", "faults": [{"service": "orders", "database": true}]}"#,
                "injects nothing",
            ),
            (r#"{"until": "2026-12-07T10:30:00Z", "faults": [], "extra": 1}"#, "unknown field"),
        ] {
            let err = parse(text, ServiceKind::Orders, now()).unwrap_err();
            assert!(err.contains(why), "{why}: {err}");
        }
    }

    #[test]
    fn off_and_past_drills_inject_nothing_and_a_live_one_does() {
        assert!(Chaos::off().database().is_none());
        let chaos = Chaos { service: Some(ServiceKind::Orders), drill: Arc::new(RwLock::new(None)) };
        let fault = |until: chrono::DateTime<chrono::Utc>| Drill {
            until,
            faults: vec![Fault {
                target: Target::Database,
                latency: Duration::from_millis(5),
                error_rate: 1.0,
                code: Code::Unavailable,
            }],
        };
        *chaos.drill.write().unwrap() = Some(fault(chrono::Utc::now() - chrono::Duration::seconds(1)));
        assert!(chaos.database().is_none(), "a drill past its end injects nothing");
        assert!(chaos.drill.read().unwrap().is_none(), "and is forgotten");
        *chaos.drill.write().unwrap() = Some(fault(chrono::Utc::now() + chrono::Duration::seconds(60)));
        let injection = chaos.database();
        assert_eq!(Chaos::fault_kind(&injection), Some("error"));
        assert_eq!(injection.delay, Duration::from_millis(5));
        assert_eq!(injection.error.map(|s| s.code()), Some(Code::Unavailable));
        assert!(chaos.call(ServiceKind::Inventory).is_none(), "only the named target");
    }
}
