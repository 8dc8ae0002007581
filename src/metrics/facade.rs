//! The bridge from the `metrics` facade: `metrics::counter!`, `gauge!`
//! and `histogram!` anywhere in the program land in the registry that
//! `/metrics` renders.
//!
//! The facade has one recorder per process. The daemon installs this one
//! when it starts with `monitoring.enable_metrics` on; a program that
//! installed its own recorder first keeps it, and the daemon says so in a
//! warning (its macros then go to that recorder, not to `/metrics`).

use std::sync::Arc;

use metrics::{
    Counter, Gauge, Histogram, HistogramFn, Key, KeyName, Metadata, Recorder, SharedString, Unit,
};
use proc_daemon_actors::metrics::Histogram as Buckets;

use super::names::{counter_name, gauge_name, histogram_name};
use super::registry::{CowMap, global};

/// The recorder. See the module docs.
#[derive(Debug, Clone, Copy, Default)]
pub struct FacadeRecorder;

struct FacadeHistogram(Arc<Buckets>);

impl HistogramFn for FacadeHistogram {
    fn record(&self, value: f64) {
        self.0.record_value(value);
    }
}

/// The handles given out so far, by the key the program named: the
/// macros register on every call (`counter!("x").increment(1)`), so a
/// second call with a key is one lock-free lookup, not a renaming, an
/// allocation and a registry lookup.
#[derive(Default)]
struct Handles {
    counters: CowMap<Key, Counter>,
    gauges: CowMap<Key, Gauge>,
    histograms: CowMap<Key, Histogram>,
}

fn handles() -> &'static Handles {
    static HANDLES: std::sync::OnceLock<Handles> = std::sync::OnceLock::new();
    HANDLES.get_or_init(Handles::default)
}

/// The key under the name the registry exports it as.
fn renamed(key: &Key, name: String) -> Key {
    if name == key.name() {
        key.clone()
    } else {
        Key::from_parts(name, key.labels().cloned().collect::<Vec<_>>())
    }
}

impl Recorder for FacadeRecorder {
    fn describe_counter(&self, key: KeyName, _unit: Option<Unit>, description: SharedString) {
        global().describe(&counter_name(key.as_str()), &description);
    }

    fn describe_gauge(&self, key: KeyName, _unit: Option<Unit>, description: SharedString) {
        global().describe(&gauge_name(key.as_str()), &description);
    }

    fn describe_histogram(&self, key: KeyName, _unit: Option<Unit>, description: SharedString) {
        global().describe(&histogram_name(key.as_str()), &description);
    }

    fn register_counter(&self, key: &Key, _metadata: &Metadata<'_>) -> Counter {
        handles().counters.get(key).unwrap_or_else(|| {
            handles().counters.get_or_insert_with(key.clone(), || {
                let exported = renamed(key, counter_name(key.name()));
                Counter::from_arc(global().counter(&exported))
            })
        })
    }

    fn register_gauge(&self, key: &Key, _metadata: &Metadata<'_>) -> Gauge {
        handles().gauges.get(key).unwrap_or_else(|| {
            handles().gauges.get_or_insert_with(key.clone(), || {
                let exported = renamed(key, gauge_name(key.name()));
                Gauge::from_arc(global().gauge(&exported))
            })
        })
    }

    fn register_histogram(&self, key: &Key, _metadata: &Metadata<'_>) -> Histogram {
        handles().histograms.get(key).unwrap_or_else(|| {
            handles().histograms.get_or_insert_with(key.clone(), || {
                let exported = renamed(key, histogram_name(key.name()));
                Histogram::from_arc(Arc::new(FacadeHistogram(global().histogram(&exported))))
            })
        })
    }
}

/// Installs [`FacadeRecorder`] as the process's `metrics` recorder, unless
/// one is installed already. Returns whether this call installed it (a
/// second call, or a program's own recorder installed first, returns
/// `false`; the daemon logs a warning for the latter).
pub fn install_facade_recorder() -> bool {
    static INSTALLED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    let mut first = false;
    let installed = *INSTALLED.get_or_init(|| {
        first = true;
        metrics::set_global_recorder(FacadeRecorder).is_ok()
    });
    if first && !installed {
        tracing::warn!(
            "another `metrics` recorder was installed before the daemon's: metrics::counter! and friends go to it, not to /metrics"
        );
    }
    installed
}
