//! Drives a scenario: closed loop at a concurrency, or open loop at a fixed
//! offered rate; warm-up excluded from every figure.

use std::{
    collections::BTreeMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::Duration,
};

use hdrhistogram::Histogram;
use indicatif::ProgressBar;
use tokio::time::Instant;

use super::scenario::Scenario;

/// How much load, and how.
#[derive(Debug, Clone)]
pub struct LoadConfig {
    /// Calls in flight at once (workers).
    pub concurrency: usize,
    /// Stop after this many measured calls…
    pub count: Option<u64>,
    /// …or after this long (measured window).
    pub duration: Option<Duration>,
    /// Run this long first, without recording.
    pub warmup: Duration,
    /// Open loop: offer this many calls per second, whatever the latency.
    pub rate: Option<f64>,
}

/// One second of the measured window.
#[derive(Debug, Clone)]
pub struct Second {
    /// Calls that succeeded.
    pub ok: u64,
    /// Calls that failed.
    pub errors: u64,
    /// Latency of the calls that ended in this second (µs).
    pub latency: Histogram<u64>,
}

/// What a run measured.
#[derive(Debug, Clone)]
pub struct Measurement {
    /// The measured window.
    pub elapsed: Duration,
    /// Latency of every measured call, successful or not (µs).
    pub latency: Histogram<u64>,
    /// Successful calls.
    pub ok: u64,
    /// Failed calls by gRPC code name.
    pub errors: BTreeMap<String, u64>,
    /// Per second of the window.
    pub timeline: Vec<Second>,
}

impl Default for Measurement {
    /// Nothing measured.
    fn default() -> Self {
        Measurement {
            elapsed: Duration::ZERO,
            latency: histogram(),
            ok: 0,
            errors: BTreeMap::new(),
            timeline: Vec::new(),
        }
    }
}

fn histogram() -> Histogram<u64> {
    // 1 µs to 60 s at 3 significant digits.
    match Histogram::new_with_bounds(1, 60_000_000, 3) {
        Ok(h) => h,
        Err(e) => unreachable!("constant histogram bounds: {e}"),
    }
}

/// What the workers record, shared: one histogram per second of the window
/// however many workers there are (thousands, in an open loop), each call
/// recorded under a short lock.
struct Recorder {
    latency: Histogram<u64>,
    ok: u64,
    errors: BTreeMap<String, u64>,
    timeline: Vec<Second>,
}

impl Recorder {
    fn new() -> Self {
        Recorder { latency: histogram(), ok: 0, errors: BTreeMap::new(), timeline: Vec::new() }
    }

    fn record(&mut self, second: usize, micros: u64, outcome: Result<(), tonic::Status>) {
        let micros = micros.clamp(1, 60_000_000);
        let _ = self.latency.record(micros);
        while self.timeline.len() <= second {
            self.timeline.push(Second { ok: 0, errors: 0, latency: histogram() });
        }
        let slot = &mut self.timeline[second];
        let _ = slot.latency.record(micros);
        match outcome {
            Ok(()) => {
                self.ok += 1;
                slot.ok += 1;
            }
            Err(status) => {
                *self.errors.entry(caravan_platform::metrics::code_name(status.code()).to_owned()).or_default() += 1;
                slot.errors += 1;
            }
        }
    }
}

/// Runs `scenario` as `config` says; `progress`, when given, counts measured calls.
pub async fn run<S: Scenario>(scenario: Arc<S>, config: &LoadConfig, progress: Option<ProgressBar>) -> Measurement {
    let start = Instant::now();
    let measure_from = start + config.warmup;
    let deadline = config.duration.map(|d| measure_from + d);
    let issued = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));

    // Open loop: a pacer hands out start times; latency counts from the
    // scheduled time, so a server that falls behind cannot hide it.
    let (tickets, pacer) = match config.rate {
        None => (None, None),
        Some(rate) => {
            let (tx, rx) = async_channel_like::channel();
            let stop = stop.clone();
            let interval = Duration::from_secs_f64(1.0 / rate.max(0.001));
            let pacer = tokio::spawn(async move {
                let mut next = Instant::now();
                while !stop.load(Ordering::Relaxed) {
                    tokio::time::sleep_until(next).await;
                    if tx.send(next).is_err() {
                        break;
                    }
                    next += interval;
                }
            });
            (Some(rx), Some(pacer))
        }
    };

    let recorder = Arc::new(Mutex::new(Recorder::new()));
    let mut workers = Vec::with_capacity(config.concurrency);
    for worker_id in 0..config.concurrency.max(1) {
        let recorder = recorder.clone();
        let scenario = scenario.clone();
        let issued = issued.clone();
        let stop = stop.clone();
        let tickets = tickets.clone();
        let progress = progress.clone();
        let count = config.count;
        workers.push(tokio::spawn(async move {
            loop {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let scheduled = match &tickets {
                    None => Instant::now(),
                    Some(rx) => match rx.recv().await {
                        Some(at) => at,
                        None => break,
                    },
                };
                let measuring = scheduled >= measure_from;
                if let Some(deadline) = deadline
                    && scheduled >= deadline
                {
                    stop.store(true, Ordering::Relaxed);
                    break;
                }
                let seq = if measuring {
                    let seq = issued.fetch_add(1, Ordering::Relaxed);
                    if count.is_some_and(|c| seq >= c) {
                        stop.store(true, Ordering::Relaxed);
                        break;
                    }
                    seq
                } else {
                    u64::MAX
                };
                let outcome = scenario.call(worker_id, seq).await;
                if measuring {
                    let end = Instant::now();
                    let micros = u64::try_from(end.duration_since(scheduled).as_micros()).unwrap_or(u64::MAX);
                    let second = usize::try_from(end.duration_since(measure_from).as_secs()).unwrap_or(usize::MAX);
                    recorder.lock().unwrap_or_else(|e| e.into_inner()).record(second, micros, outcome);
                    if let Some(progress) = &progress {
                        progress.inc(1);
                    }
                }
            }
        }));
    }

    for handle in workers {
        let _ = handle.await;
    }
    stop.store(true, Ordering::Relaxed);
    if let Some(pacer) = pacer {
        pacer.abort();
    }
    let elapsed = Instant::now().saturating_duration_since(measure_from);
    let Recorder { latency, ok, errors, timeline } =
        std::mem::replace(&mut *recorder.lock().unwrap_or_else(|e| e.into_inner()), Recorder::new());
    Measurement { elapsed, latency, ok, errors, timeline }
}

/// A tiny multi-consumer channel over tokio's mpsc (workers share tickets).
mod async_channel_like {
    use std::sync::Arc;

    use tokio::sync::{Mutex, mpsc};

    pub fn channel<T: Send + 'static>() -> (mpsc::UnboundedSender<T>, Receiver<T>) {
        let (tx, rx) = mpsc::unbounded_channel();
        (tx, Receiver(Arc::new(Mutex::new(rx))))
    }

    pub struct Receiver<T>(Arc<Mutex<mpsc::UnboundedReceiver<T>>>);

    impl<T> Clone for Receiver<T> {
        fn clone(&self) -> Self {
            Receiver(self.0.clone())
        }
    }

    impl<T> Receiver<T> {
        pub async fn recv(&self) -> Option<T> {
            self.0.lock().await.recv().await
        }
    }
}
