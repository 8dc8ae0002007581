//! Metrics: what the program records ([`MetricsCollector`], the `metrics`
//! facade) and what the runtime records by itself, rendered in the
//! Prometheus text format at `/metrics` (see `monitoring.http_listen`).
//!
//! ```
//! use proc_daemon::metrics::MetricsCollector;
//! use std::time::Duration;
//!
//! let collector = MetricsCollector::new();
//! collector.increment_counter("requests_total", 1);
//! collector.set_gauge("active_connections", 42);
//! collector.record_histogram("request_latency_ms", Duration::from_millis(150));
//!
//! let snapshot = collector.get_metrics();
//! assert_eq!(snapshot.counters["requests_total"], 1);
//! assert_eq!(snapshot.gauges["active_connections"], 42.0);
//! assert_eq!(snapshot.histograms["request_latency_ms"].count, 1);
//! // Exported as `request_latency_seconds`: durations are in seconds.
//! assert!(proc_daemon::metrics::render().contains("request_latency_seconds_count"));
//! ```
//!
//! # One registry
//!
//! Every collector, the `metrics` facade's macros (through
//! [`FacadeRecorder`]) and the runtime's own series end up in one
//! exposition, because a scrape is of a process. Two collectors that use
//! one name share its series, as two `metrics::counter!` calls do.
//!
//! Recording takes no lock: a series is found in a copy-on-write map
//! (lock-free to read) and updated with atomics. See `registry.rs`.
//!
//! # Names
//!
//! The program's names are kept, with Prometheus's conventions applied:
//! a counter's name ends in `_total` (`requests` is exported as
//! `requests_total`), and a duration recorded with
//! [`MetricsCollector::record_histogram`] is exported in seconds, its name
//! ending in `_seconds` (a unit suffix such as `_ms` is replaced). The
//! runtime's series start with `proc_daemon_`; docs/operations.md lists
//! them.
//!
//! Histograms have fixed buckets from 1 µs to 10 s
//! ([`LATENCY_BUCKETS_SECONDS`]), meant for latencies in seconds.

mod exposition;
mod facade;
mod names;
mod registry;
pub(crate) mod runtime;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use metrics::Key;

pub use facade::{FacadeRecorder, install_facade_recorder};
pub use proc_daemon_actors::metrics::{HistogramSnapshot, LATENCY_BUCKETS_SECONDS};

use proc_daemon_actors::metrics::Histogram;
use registry::{CowMap, global};

/// How many worker threads the daemon in this process runs, for
/// [`MetricsSnapshot::worker_count`]; 0 while none runs.
static WORKER_COUNT: AtomicUsize = AtomicUsize::new(0);

/// Records the worker count of the daemon that starts.
pub(crate) fn set_worker_count(workers: usize) {
    WORKER_COUNT.store(workers, Ordering::Relaxed);
}

/// A value a gauge can be set to: any primitive number.
pub trait GaugeValue {
    /// The value as a float.
    fn to_f64(self) -> f64;
}

macro_rules! gauge_value {
    ($($ty:ty),*) => {$(
        impl GaugeValue for $ty {
            #[allow(clippy::cast_precision_loss, clippy::cast_lossless)]
            fn to_f64(self) -> f64 {
                self as f64
            }
        }
    )*};
}
gauge_value!(u8, u16, u32, u64, usize, i8, i16, i32, i64, isize, f32, f64);

/// Counters, gauges and histograms the program names, recorded into the
/// process's registry. A cheap clone: clones share everything.
#[derive(Clone)]
pub struct MetricsCollector {
    inner: Arc<CollectorInner>,
}

struct CollectorInner {
    created: Instant,
    counters: CowMap<Box<str>, Arc<AtomicU64>>,
    gauges: CowMap<Box<str>, Arc<AtomicU64>>,
    histograms: CowMap<Box<str>, Arc<Histogram>>,
}

impl std::fmt::Debug for MetricsCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetricsCollector")
            .field("counters", &self.inner.counters.entries().len())
            .field("gauges", &self.inner.gauges.entries().len())
            .field("histograms", &self.inner.histograms.entries().len())
            .finish()
    }
}

impl Default for MetricsCollector {
    fn default() -> Self {
        MetricsCollector::new()
    }
}

impl MetricsCollector {
    /// A collector; its uptime counts from now.
    pub fn new() -> MetricsCollector {
        MetricsCollector {
            inner: Arc::new(CollectorInner {
                created: Instant::now(),
                counters: CowMap::default(),
                gauges: CowMap::default(),
                histograms: CowMap::default(),
            }),
        }
    }

    /// Adds `by` to counter `name` (exported with a `_total` suffix).
    #[inline]
    pub fn increment_counter(&self, name: &str, by: u64) {
        let counter = match self.inner.counters.get(name) {
            Some(counter) => counter,
            None => self.inner.counters.get_or_insert_with(name.into(), || {
                global().counter(&Key::from_name(names::counter_name(name)))
            }),
        };
        counter.fetch_add(by, Ordering::Relaxed);
    }

    /// Sets gauge `name` to `value`.
    #[inline]
    pub fn set_gauge(&self, name: &str, value: impl GaugeValue) {
        let gauge = match self.inner.gauges.get(name) {
            Some(gauge) => gauge,
            None => self.inner.gauges.get_or_insert_with(name.into(), || {
                global().gauge(&Key::from_name(names::gauge_name(name)))
            }),
        };
        gauge.store(value.to_f64().to_bits(), Ordering::Relaxed);
    }

    /// Records `duration` in histogram `name`, in seconds (exported with a
    /// `_seconds` suffix in place of any unit suffix).
    #[inline]
    pub fn record_histogram(&self, name: &str, duration: Duration) {
        let histogram = match self.inner.histograms.get(name) {
            Some(histogram) => histogram,
            None => self.inner.histograms.get_or_insert_with(name.into(), || {
                global().histogram(&Key::from_name(names::duration_name(name)))
            }),
        };
        histogram.record(duration);
    }

    /// What this collector's series hold now, under the names it was
    /// given, with its uptime and the daemon's worker count.
    pub fn get_metrics(&self) -> MetricsSnapshot {
        let read = |map: &CowMap<Box<str>, Arc<AtomicU64>>| {
            map.entries()
                .iter()
                .map(|(name, value)| (name.to_string(), value.load(Ordering::Relaxed)))
                .collect::<Vec<_>>()
        };
        MetricsSnapshot {
            uptime: self.inner.created.elapsed(),
            worker_count: WORKER_COUNT.load(Ordering::Relaxed),
            counters: read(&self.inner.counters).into_iter().collect(),
            gauges: read(&self.inner.gauges)
                .into_iter()
                .map(|(name, bits)| (name, f64::from_bits(bits)))
                .collect(),
            histograms: self
                .inner
                .histograms
                .entries()
                .iter()
                .map(|(name, histogram)| (name.to_string(), histogram.snapshot()))
                .collect(),
        }
    }
}

/// What [`MetricsCollector::get_metrics`] read.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct MetricsSnapshot {
    /// Time since the collector was made.
    pub uptime: Duration,
    /// Worker threads of the daemon running in this process (0 while none
    /// runs).
    pub worker_count: usize,
    /// Counters, by the name they were recorded under.
    pub counters: BTreeMap<String, u64>,
    /// Gauges, by name.
    pub gauges: BTreeMap<String, f64>,
    /// Histograms, by name; values in seconds.
    pub histograms: BTreeMap<String, HistogramSnapshot>,
}

/// The process's registry in the Prometheus text format: every
/// collector's series and the `metrics` facade's. (A running daemon's
/// `/metrics` adds the runtime's own `proc_daemon_*` series.)
pub fn render() -> String {
    let mut out = exposition::Exposition::with_capacity(4096);
    global().render(&mut out);
    out.into_text()
}
