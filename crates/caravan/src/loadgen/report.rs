//! The figures of a run, for people (a table) and machines (`--json`).

use std::{collections::BTreeMap, fmt, time::Duration};

use serde::Serialize;

use super::engine::Measurement;

/// One scenario's or baseline's figures.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Scenario or baseline name.
    pub name: String,
    /// Measured calls (successful and failed).
    pub calls: u64,
    /// Failed calls by gRPC code.
    pub errors: BTreeMap<String, u64>,
    /// Length of the measured window, seconds.
    pub seconds: f64,
    /// Successful calls per second.
    pub throughput: f64,
    /// Latency percentiles, milliseconds.
    pub latency_ms: Percentiles,
    /// CPU seconds the servers used in the window, when known.
    pub server_cpu_seconds: Option<f64>,
    /// Successful calls per server CPU-second, when known.
    pub calls_per_server_cpu_second: Option<f64>,
    /// CPU seconds the load generator used in the window.
    pub client_cpu_seconds: Option<f64>,
    /// The load generator's share of the machine's CPU in the window.
    pub client_cpu_share: Option<f64>,
    /// Whether the load generator, not the server, was likely the limit.
    pub client_bound: bool,
    /// The scenario's own check (e.g. oversell count).
    pub correctness: Option<String>,
}

/// Latency percentiles.
#[derive(Debug, Clone, Copy, Serialize, PartialEq)]
pub struct Percentiles {
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// 99.9th percentile.
    pub p999: f64,
}

/// CPU used in the measured window.
#[derive(Debug, Clone, Copy, Default)]
pub struct CpuUsed {
    /// By the servers (`None` when no server process is known).
    pub server: Option<Duration>,
    /// By the load generator.
    pub client: Option<Duration>,
    /// Cores on the machine.
    pub cores: usize,
    /// The offered rate of an open-loop run.
    pub offered_rate: Option<f64>,
}

impl Report {
    /// Figures from a measurement and the CPU used meanwhile.
    pub fn new(name: &str, m: &Measurement, cpu: CpuUsed, correctness: Option<String>) -> Self {
        let seconds = m.elapsed.as_secs_f64().max(1e-9);
        let errors_total: u64 = m.errors.values().sum();
        let ms = |q: f64| m.latency.value_at_quantile(q) as f64 / 1000.0;
        let server = cpu.server.map(|d| d.as_secs_f64());
        let client = cpu.client.map(|d| d.as_secs_f64());
        let client_share = client.map(|c| c / (seconds * cpu.cores.max(1) as f64));
        // On a shared box the generator competes with the server: if it burnt
        // more CPU than the server, or most of a core, it was the limit.
        let throughput = m.ok as f64 / seconds;
        let kept_up = cpu.offered_rate.is_some_and(|rate| throughput >= 0.95 * rate);
        let client_bound = !kept_up
            && match (client, server) {
                (Some(c), Some(s)) => c > s || c / seconds > 0.9,
                (Some(c), None) => c / seconds > 0.9,
                _ => false,
            };
        Report {
            name: name.to_owned(),
            calls: m.ok + errors_total,
            errors: m.errors.clone(),
            seconds,
            throughput,
            latency_ms: Percentiles { p50: ms(0.5), p90: ms(0.9), p99: ms(0.99), p999: ms(0.999) },
            server_cpu_seconds: server,
            calls_per_server_cpu_second: server.filter(|s| *s > 0.0).map(|s| m.ok as f64 / s),
            client_cpu_seconds: client,
            client_cpu_share: client_share,
            client_bound,
            correctness,
        }
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{}", self.name)?;
        writeln!(f, "  calls        {} in {:.2} s, {:.0} ok/s", self.calls, self.seconds, self.throughput)?;
        let p = self.latency_ms;
        writeln!(f, "  latency ms   p50 {:.3}  p90 {:.3}  p99 {:.3}  p99.9 {:.3}", p.p50, p.p90, p.p99, p.p999)?;
        if self.errors.is_empty() {
            writeln!(f, "  errors       none")?;
        } else {
            let list: Vec<String> = self.errors.iter().map(|(code, n)| format!("{code} {n}")).collect();
            writeln!(f, "  errors       {}", list.join(", "))?;
        }
        match (self.server_cpu_seconds, self.calls_per_server_cpu_second) {
            (Some(s), Some(per)) => writeln!(f, "  server CPU   {s:.2} s, {per:.0} calls per server CPU-second")?,
            _ => writeln!(f, "  server CPU   unknown (give --server-pid)")?,
        }
        if let (Some(c), Some(share)) = (self.client_cpu_seconds, self.client_cpu_share) {
            writeln!(f, "  loadgen CPU  {c:.2} s ({:.0} % of the machine)", share * 100.0)?;
        }
        if self.client_bound {
            writeln!(f, "  NOTE         the load generator was likely the bottleneck; figures are a floor")?;
        }
        if let Some(check) = &self.correctness {
            writeln!(f, "  check        {check}")?;
        }
        Ok(())
    }
}

/// One line of `--compare`: a scenario against a baseline.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Ratio {
    /// The scenario.
    pub scenario: String,
    /// The baseline.
    pub baseline: String,
    /// Scenario throughput / baseline throughput.
    pub throughput: f64,
    /// Scenario p99 / baseline p99.
    pub p99: f64,
    /// Scenario calls per server CPU-second / the baseline's, when both known.
    pub per_server_cpu_second: Option<f64>,
}

impl Ratio {
    /// `scenario` relative to `baseline`.
    pub fn between(scenario: &Report, baseline: &Report) -> Self {
        let div = |a: f64, b: f64| if b > 0.0 { a / b } else { f64::NAN };
        Ratio {
            scenario: scenario.name.clone(),
            baseline: baseline.name.clone(),
            throughput: div(scenario.throughput, baseline.throughput),
            p99: div(scenario.latency_ms.p99, baseline.latency_ms.p99),
            per_server_cpu_second: match (scenario.calls_per_server_cpu_second, baseline.calls_per_server_cpu_second) {
                (Some(a), Some(b)) => Some(div(a, b)),
                _ => None,
            },
        }
    }
}

impl fmt::Display for Ratio {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} / {}: throughput ×{:.3}, p99 ×{:.3}", self.scenario, self.baseline, self.throughput, self.p99)?;
        if let Some(cpu) = self.per_server_cpu_second {
            write!(f, ", per server CPU-second ×{cpu:.3}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use hdrhistogram::Histogram;

    use super::*;

    fn measurement(latencies_us: &[u64], ok: u64, errors: &[(&str, u64)], seconds: u64) -> Measurement {
        let mut latency = Histogram::new_with_bounds(1, 60_000_000, 3).unwrap();
        for &l in latencies_us {
            latency.record(l).unwrap();
        }
        Measurement {
            elapsed: Duration::from_secs(seconds),
            latency,
            ok,
            errors: errors.iter().map(|(c, n)| ((*c).to_owned(), *n)).collect(),
            timeline: Vec::new(),
        }
    }

    #[test]
    fn percentiles_throughput_and_per_cpu_second() {
        // 1..=1000 µs, one each: p50 ≈ 500 µs, p99 ≈ 990 µs.
        let latencies: Vec<u64> = (1..=1000).collect();
        let m = measurement(&latencies, 990, &[("UNAVAILABLE", 10)], 2);
        let cpu = CpuUsed {
            server: Some(Duration::from_millis(500)),
            client: Some(Duration::from_millis(200)),
            cores: 2,
            offered_rate: None,
        };
        let r = Report::new("echo", &m, cpu, None);
        assert_eq!(r.calls, 1000);
        assert!((r.throughput - 495.0).abs() < 1e-9);
        assert!((r.latency_ms.p50 - 0.5).abs() < 0.001, "{:?}", r.latency_ms);
        assert!((r.latency_ms.p99 - 0.99).abs() < 0.001, "{:?}", r.latency_ms);
        assert!(r.latency_ms.p999 <= 1.001);
        assert!((r.calls_per_server_cpu_second.unwrap() - 1980.0).abs() < 1e-9);
        assert!((r.client_cpu_share.unwrap() - 0.05).abs() < 1e-9);
        assert!(!r.client_bound);
        assert_eq!(r.errors["UNAVAILABLE"], 10);
    }

    #[test]
    fn a_generator_that_outspends_the_server_is_flagged() {
        let m = measurement(&[100, 200], 2, &[], 1);
        let cpu = CpuUsed {
            server: Some(Duration::from_millis(100)),
            client: Some(Duration::from_millis(300)),
            cores: 2,
            offered_rate: None,
        };
        assert!(Report::new("x", &m, cpu, None).client_bound);
        let kept_up = CpuUsed { offered_rate: Some(2.0), ..cpu };
        assert!(!Report::new("x", &m, kept_up, None).client_bound, "an open loop that kept its rate was not limited");
        let cpu = CpuUsed { server: None, client: Some(Duration::from_millis(950)), cores: 2, offered_rate: None };
        assert!(Report::new("x", &m, cpu, None).client_bound, "most of a core");
    }

    #[test]
    fn ratios_divide_like_for_like() {
        let cpu = |s| CpuUsed { server: Some(Duration::from_secs(s)), client: None, cores: 2, offered_rate: None };
        let fast = Report::new("echo", &measurement(&[100; 10], 1000, &[], 1), cpu(1), None);
        let slow = Report::new("echo-platform", &measurement(&[400; 10], 250, &[], 1), cpu(1), None);
        let ratio = Ratio::between(&slow, &fast);
        assert!((ratio.throughput - 0.25).abs() < 1e-9);
        assert!((ratio.p99 - 4.0).abs() < 0.01, "{ratio:?}");
        assert!((ratio.per_server_cpu_second.unwrap() - 0.25).abs() < 1e-9);
    }
}
