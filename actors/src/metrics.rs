//! What the runtime records about supervised actors by itself: messages
//! handled, handler latency, restarts, dead letters, and, sampled when
//! read, mailbox depth and state.
//!
//! ```
//! use proc_daemon_actors::metrics;
//!
//! // A daemon turns recording on from `monitoring.enable_metrics`; a
//! // program that runs the actor crate alone does it here. Children added
//! // to a supervisor from now on are recorded.
//! metrics::set_enabled(true);
//! for actor in metrics::sample_actors() {
//!     println!("{} handled {} messages", actor.path, actor.handled);
//! }
//! # metrics::set_enabled(false);
//! ```
//!
//! # Why it looks like this
//!
//! The message path is the hot path, so recording on it is as cheap as it
//! can be made: the handled count is written only by the actor's own task
//! (a load and a store, no read-modify-write), and handler latency is
//! timed for one message in [`LATENCY_SAMPLE_EVERY`], because two clock
//! reads per message would cost more than the 5% that recording may cost a
//! `tell`. Everything that can be read instead of counted (mailbox depth,
//! state, children by state) is read when someone asks
//! ([`sample_actors`]), never on the message path.
//!
//! Only supervised children are recorded: they have names, so their series
//! have stable labels across restarts (the path, `supervisor/child`). An
//! actor spawned alone has only a numeric id, which would make a new series
//! for every actor a program ever spawned.
//!
//! Recording is switched for the whole process ([`set_enabled`]), because
//! what it feeds (one `/metrics` endpoint) is the process's too. A child
//! added while it is off is never recorded, and costs one branch per
//! message.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use crate::cell::ActorState;
use crate::lock::lock;

static ENABLED: AtomicBool = AtomicBool::new(false);

/// Turns recording of supervised children on or off for the process.
/// It applies to children added to a supervisor afterwards.
pub fn set_enabled(enabled: bool) {
    ENABLED.store(enabled, Ordering::Relaxed);
}

/// Whether children added now are recorded.
pub fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// Handler latency is timed for one message in this many (the first of
/// each run of this many, counted per actor).
pub const LATENCY_SAMPLE_EVERY: u64 = 32;

/// The upper bounds, in seconds, of the latency histograms' buckets: from
/// 1 µs (a handler that only updates state) to 10 s (one that waits on a
/// slow peer). A last bucket, `+Inf`, takes the rest.
pub const LATENCY_BUCKETS_SECONDS: [f64; 22] = [
    0.000_001, 0.000_002_5, 0.000_005, 0.000_01, 0.000_025, 0.000_05, 0.000_1, 0.000_25, 0.000_5,
    0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

const BUCKETS: usize = LATENCY_BUCKETS_SECONDS.len() + 1;

/// A histogram with the fixed [`LATENCY_BUCKETS_SECONDS`], recorded with
/// atomics and no lock: one add to a bucket, one to the count, and a
/// compare-and-swap loop for the sum (which only contends when several
/// threads record into the same histogram at the same instant).
#[derive(Debug)]
pub struct Histogram {
    /// Per bucket, not cumulative: the `le` counts are summed when read.
    buckets: [AtomicU64; BUCKETS],
    count: AtomicU64,
    /// The sum of the values, as `f64` bits.
    sum_bits: AtomicU64,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram::new()
    }
}

impl Histogram {
    /// An empty histogram.
    pub fn new() -> Histogram {
        Histogram {
            buckets: std::array::from_fn(|_| AtomicU64::new(0)),
            count: AtomicU64::new(0),
            sum_bits: AtomicU64::new(0f64.to_bits()),
        }
    }

    /// Records a duration, in seconds.
    #[inline]
    pub fn record(&self, duration: Duration) {
        self.record_value(duration.as_secs_f64());
    }

    /// Records a value in the histogram's unit (seconds for latencies). A
    /// NaN is not recorded: it has no bucket and would poison the sum.
    #[inline]
    pub fn record_value(&self, value: f64) {
        if value.is_nan() {
            return;
        }
        let bucket = LATENCY_BUCKETS_SECONDS.partition_point(|&bound| bound < value);
        self.buckets[bucket].fetch_add(1, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
        let mut current = self.sum_bits.load(Ordering::Relaxed);
        loop {
            let sum = f64::from_bits(current) + value;
            match self.sum_bits.compare_exchange_weak(
                current,
                sum.to_bits(),
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => break,
                Err(actual) => current = actual,
            }
        }
    }

    /// What it holds now. Each field is read on its own, so a snapshot
    /// taken while others record may be off by the records in flight.
    pub fn snapshot(&self) -> HistogramSnapshot {
        let mut cumulative = 0;
        let mut buckets = Vec::with_capacity(BUCKETS - 1);
        for (bound, bucket) in LATENCY_BUCKETS_SECONDS.iter().zip(&self.buckets) {
            cumulative += bucket.load(Ordering::Relaxed);
            buckets.push((*bound, cumulative));
        }
        let in_last = self.buckets[BUCKETS - 1].load(Ordering::Relaxed);
        HistogramSnapshot {
            buckets,
            count: cumulative + in_last,
            sum: f64::from_bits(self.sum_bits.load(Ordering::Relaxed)),
        }
    }
}

/// A [`Histogram`] as read at one moment.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct HistogramSnapshot {
    /// `(upper bound, values at or below it)`, cumulative as Prometheus's
    /// `le` buckets are. The `+Inf` bucket is [`count`](Self::count).
    pub buckets: Vec<(f64, u64)>,
    /// How many values were recorded.
    pub count: u64,
    /// Their sum.
    pub sum: f64,
}

/// One supervised actor's counters, shared by its cell (which records)
/// and the registry (which reads).
#[derive(Debug)]
pub(crate) struct ActorMetrics {
    path: Arc<str>,
    supervisor: Arc<str>,
    /// Written only by the actor's own task (one incarnation runs at a
    /// time), so a load and a store cannot lose a count.
    handled: AtomicU64,
    dead_letters: AtomicU64,
    restarts: AtomicU64,
    latency: Histogram,
}

impl ActorMetrics {
    /// Counts one message about to be handled; true if this one is to be
    /// timed.
    #[inline]
    pub(crate) fn count_handled(&self) -> bool {
        let handled = self.handled.load(Ordering::Relaxed);
        self.handled.store(handled + 1, Ordering::Relaxed);
        handled.is_multiple_of(LATENCY_SAMPLE_EVERY)
    }

    #[inline]
    pub(crate) fn record_latency(&self, took: Duration) {
        self.latency.record(took);
    }

    pub(crate) fn count_dead_letter(&self) {
        self.dead_letters.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn count_restart(&self) {
        self.restarts.fetch_add(1, Ordering::Relaxed);
    }

    /// The actor's path, `supervisor/child`.
    pub(crate) fn path(&self) -> &Arc<str> {
        &self.path
    }
}

/// What the registry reads from a live actor when sampled.
pub(crate) trait Probe: Send + Sync {
    fn mailbox_depth(&self) -> usize;
    fn state(&self) -> ActorState;
}

struct ActorEntry {
    metrics: Arc<ActorMetrics>,
    probe: Weak<dyn Probe>,
}

static ACTORS: Mutex<Vec<ActorEntry>> = Mutex::new(Vec::new());
/// Kept for the life of the process, by path: a nested supervisor that
/// its parent restarts is a new actor, and its escalations go on counting
/// where the last incarnation's left off.
static SUPERVISORS: Mutex<Vec<Arc<SupervisorMetrics>>> = Mutex::new(Vec::new());

/// Records the actor behind `probe` as `path`, a child of `supervisor`.
pub(crate) fn register_actor(
    path: Arc<str>,
    supervisor: Arc<str>,
    probe: Weak<dyn Probe>,
) -> Arc<ActorMetrics> {
    let metrics = Arc::new(ActorMetrics {
        path,
        supervisor,
        handled: AtomicU64::new(0),
        dead_letters: AtomicU64::new(0),
        restarts: AtomicU64::new(0),
        latency: Histogram::new(),
    });
    lock(&ACTORS).push(ActorEntry {
        metrics: metrics.clone(),
        probe,
    });
    metrics
}

/// One supervisor's counters.
#[derive(Debug)]
pub(crate) struct SupervisorMetrics {
    path: Arc<str>,
    escalations: AtomicU64,
}

impl SupervisorMetrics {
    pub(crate) fn count_escalation(&self) {
        self.escalations.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn path(&self) -> &Arc<str> {
        &self.path
    }
}

/// The metrics of the supervisor at `path`, recorded now if it is new.
pub(crate) fn register_supervisor(path: Arc<str>) -> Arc<SupervisorMetrics> {
    let mut supervisors = lock(&SUPERVISORS);
    if let Some(known) = supervisors.iter().find(|known| known.path == path) {
        return known.clone();
    }
    let metrics = Arc::new(SupervisorMetrics {
        path,
        escalations: AtomicU64::new(0),
    });
    supervisors.push(metrics.clone());
    metrics
}

/// One supervised actor, as read by [`sample_actors`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ActorSample {
    /// Its path: its supervisor's path, a slash, and its name.
    pub path: Arc<str>,
    /// Its supervisor's path.
    pub supervisor: Arc<str>,
    /// Its state now.
    pub state: ActorState,
    /// Messages in its mailbox now.
    pub mailbox_depth: usize,
    /// Messages it has handled, over all its incarnations.
    pub handled: u64,
    /// Messages addressed to it that were never handled (its handler
    /// panicked on them, or it stopped with them queued).
    pub dead_letters: u64,
    /// Times its supervisor restarted it.
    pub restarts: u64,
    /// Its handler latency, timed for one message in
    /// [`LATENCY_SAMPLE_EVERY`].
    pub latency: HistogramSnapshot,
}

/// Reads every recorded actor that still exists, in the order they were
/// added. Actors that no longer exist are dropped from the registry here.
///
/// Paths are unique in the result: when a path was recorded twice (a
/// nested supervisor restarted by its parent adds its children anew while
/// someone still holds a reference to an old one), the newest actor
/// stands for it.
pub fn sample_actors() -> Vec<ActorSample> {
    let mut actors = lock(&ACTORS);
    let mut samples: Vec<ActorSample> = Vec::with_capacity(actors.len());
    let mut by_path: HashMap<Arc<str>, usize> = HashMap::with_capacity(actors.len());
    actors.retain(|entry| {
        let Some(probe) = entry.probe.upgrade() else {
            return false;
        };
        let metrics = &entry.metrics;
        let sample = ActorSample {
            path: metrics.path.clone(),
            supervisor: metrics.supervisor.clone(),
            state: probe.state(),
            mailbox_depth: probe.mailbox_depth(),
            handled: metrics.handled.load(Ordering::Relaxed),
            dead_letters: metrics.dead_letters.load(Ordering::Relaxed),
            restarts: metrics.restarts.load(Ordering::Relaxed),
            latency: metrics.latency.snapshot(),
        };
        match by_path.entry(metrics.path.clone()) {
            Entry::Occupied(older) => samples[*older.get()] = sample,
            Entry::Vacant(new) => {
                new.insert(samples.len());
                samples.push(sample);
            }
        }
        true
    });
    samples
}

/// One supervisor, as read by [`sample_supervisors`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct SupervisorSample {
    /// Its path.
    pub path: Arc<str>,
    /// Times it gave up (restart intensity exceeded) and escalated.
    pub escalations: u64,
}

/// Reads every supervisor recorded so far (see [`enabled`]), including
/// those that have stopped: a count of escalations outlives them.
pub fn sample_supervisors() -> Vec<SupervisorSample> {
    lock(&SUPERVISORS)
        .iter()
        .map(|metrics| SupervisorSample {
            path: metrics.path.clone(),
            escalations: metrics.escalations.load(Ordering::Relaxed),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_histogram_puts_values_in_cumulative_buckets() {
        let histogram = Histogram::new();
        histogram.record(Duration::from_micros(3)); // <= 5 µs
        histogram.record(Duration::from_millis(2)); // <= 2.5 ms
        histogram.record(Duration::from_secs(60)); // +Inf
        histogram.record_value(f64::NAN); // not recorded
        let snapshot = histogram.snapshot();
        assert_eq!(snapshot.count, 3);
        assert!((snapshot.sum - 60.002_003).abs() < 1e-9, "{}", snapshot.sum);
        let le = |bound: f64| {
            snapshot
                .buckets
                .iter()
                .find(|(b, _)| *b == bound)
                .map(|(_, n)| *n)
                .unwrap()
        };
        assert_eq!(le(0.000_002_5), 0);
        assert_eq!(le(0.000_005), 1);
        assert_eq!(le(0.002_5), 2);
        assert_eq!(le(10.0), 2);
    }

    #[test]
    fn a_value_on_a_bound_falls_in_that_bucket() {
        let histogram = Histogram::new();
        histogram.record_value(0.001);
        let snapshot = histogram.snapshot();
        let at = |bound: f64| snapshot.buckets.iter().find(|(b, _)| *b == bound).unwrap().1;
        assert_eq!(at(0.000_5), 0);
        assert_eq!(at(0.001), 1);
    }

    #[test]
    fn one_message_in_every_sample_period_is_timed() {
        struct Nothing;
        impl Probe for Nothing {
            fn mailbox_depth(&self) -> usize {
                0
            }
            fn state(&self) -> ActorState {
                ActorState::Running
            }
        }
        let probe: Arc<dyn Probe> = Arc::new(Nothing);
        let metrics = register_actor("t/sampled".into(), "t".into(), Arc::downgrade(&probe));
        let timed = (0..LATENCY_SAMPLE_EVERY * 3)
            .filter(|_| metrics.count_handled())
            .count();
        assert_eq!(timed, 3);
        let sample = sample_actors()
            .into_iter()
            .find(|actor| &*actor.path == "t/sampled")
            .unwrap();
        assert_eq!(sample.handled, LATENCY_SAMPLE_EVERY * 3);
        drop(probe);
        assert!(
            sample_actors()
                .iter()
                .all(|actor| &*actor.path != "t/sampled")
        );
    }
}
