//! The process's one registry of named series: what `MetricsCollector`
//! and the `metrics` facade record into, and what `/metrics` renders.
//!
//! Recording never takes a lock. A series is found in a copy-on-write map
//! (an `ArcSwap` load, then a hash lookup) and recorded with atomics; only
//! the first use of a new series takes the insertion lock and copies the
//! map. That makes adding a series O(series), which is fine for the
//! hundreds of series a service names, and keeps the hot path free of
//! both locks and contention.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use arc_swap::ArcSwap;
use metrics::Key;
use proc_daemon_actors::metrics::Histogram;

use super::exposition::{Exposition, Float, Kind, labels};
use crate::lock::lock;

/// A map read without a lock and copied on insert.
pub(crate) struct CowMap<K, V> {
    map: ArcSwap<HashMap<K, V>>,
    insert: Mutex<()>,
}

impl<K, V> Default for CowMap<K, V> {
    fn default() -> Self {
        CowMap {
            map: ArcSwap::from_pointee(HashMap::new()),
            insert: Mutex::new(()),
        }
    }
}

impl<K: Hash + Eq + Clone, V: Clone> CowMap<K, V> {
    /// The value at `key`, if there is one. Lock-free.
    #[inline]
    pub(crate) fn get<Q>(&self, key: &Q) -> Option<V>
    where
        K: std::borrow::Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.map.load().get(key).cloned()
    }

    /// The value at `key`, made by `make` if there is none yet.
    pub(crate) fn get_or_insert_with(&self, key: K, make: impl FnOnce() -> V) -> V {
        let _inserting = lock(&self.insert);
        if let Some(value) = self.map.load().get(&key) {
            return value.clone();
        }
        let value = make();
        let mut copy = HashMap::clone(&self.map.load());
        copy.insert(key, value.clone());
        self.map.store(Arc::new(copy));
        value
    }

    /// Every entry, for rendering.
    pub(crate) fn entries(&self) -> Arc<HashMap<K, V>> {
        self.map.load_full()
    }
}

/// One series' storage.
#[derive(Clone)]
pub(crate) enum Series {
    Counter(Arc<AtomicU64>),
    /// An `f64`, as bits (the `metrics` facade's convention for gauges).
    Gauge(Arc<AtomicU64>),
    Histogram(Arc<Histogram>),
}

impl Series {
    fn kind(&self) -> Kind {
        match self {
            Series::Counter(_) => Kind::Counter,
            Series::Gauge(_) => Kind::Gauge,
            Series::Histogram(_) => Kind::Histogram,
        }
    }
}

/// The registry. See the module docs.
#[derive(Default)]
pub(crate) struct Registry {
    series: CowMap<Key, Series>,
    /// `# HELP` text by family name, from `describe_*`.
    help: CowMap<String, Arc<str>>,
}

/// The process's registry.
pub(crate) fn global() -> &'static Registry {
    static REGISTRY: OnceLock<Registry> = OnceLock::new();
    REGISTRY.get_or_init(Registry::default)
}

impl Registry {
    /// The series at `key`, made with `make` if it is new. A name already
    /// used by a family of another type cannot be rendered next to it, so
    /// the new series is refused: it is returned detached (it records, but
    /// is never rendered) and the clash is logged once per key.
    fn series(&self, key: &Key, make: impl FnOnce() -> Series) -> Series {
        if let Some(series) = self.series.get(key) {
            return series;
        }
        let made = make();
        let kind = made.kind();
        let clash = self
            .series
            .entries()
            .iter()
            .find(|(other, series)| other.name() == key.name() && series.kind() != kind)
            .map(|(_, series)| series.kind());
        if let Some(existing) = clash {
            tracing::warn!(
                metric = key.name(),
                "a {:?} named `{}` cannot be registered: a {:?} already has that name; this one is not exported",
                kind,
                key.name(),
                existing
            );
            return made;
        }
        self.series.get_or_insert_with(key.clone(), || made)
    }

    pub(crate) fn counter(&self, key: &Key) -> Arc<AtomicU64> {
        match self.series(key, || Series::Counter(Arc::default())) {
            Series::Counter(counter) => counter,
            _ => Arc::default(),
        }
    }

    pub(crate) fn gauge(&self, key: &Key) -> Arc<AtomicU64> {
        match self.series(key, || {
            Series::Gauge(Arc::new(AtomicU64::new(0f64.to_bits())))
        }) {
            Series::Gauge(gauge) => gauge,
            _ => Arc::new(AtomicU64::new(0f64.to_bits())),
        }
    }

    pub(crate) fn histogram(&self, key: &Key) -> Arc<Histogram> {
        match self.series(key, || Series::Histogram(Arc::default())) {
            Series::Histogram(histogram) => histogram,
            _ => Arc::default(),
        }
    }

    /// Sets the `# HELP` text of family `name`.
    pub(crate) fn describe(&self, name: &str, help: &str) {
        let help: Arc<str> = Arc::from(help);
        let _ = self.help.get_or_insert_with(name.to_owned(), || help);
    }

    /// Writes every series, grouped by family, families sorted by name.
    pub(crate) fn render(&self, out: &mut Exposition) {
        let series = self.series.entries();
        let help = self.help.entries();
        let mut families: HashMap<&str, Vec<(&Key, &Series)>> = HashMap::new();
        for (key, series) in series.iter() {
            families.entry(key.name()).or_default().push((key, series));
        }
        let mut names: Vec<&str> = families.keys().copied().collect();
        names.sort_unstable();
        for name in names {
            let mut members = families.remove(name).unwrap_or_default();
            members.sort_by(|a, b| a.0.labels().cmp(b.0.labels()));
            let kind = members[0].1.kind();
            let text = help.get(name).map_or("Recorded by the program.", |h| h);
            let name = out.family(name, kind, text);
            for (key, series) in members {
                let labels = labels(key.labels().map(|l| (l.key(), l.value().to_owned())));
                match series {
                    Series::Counter(counter) => {
                        out.sample(&name, &labels, counter.load(Ordering::Relaxed));
                    }
                    Series::Gauge(gauge) => {
                        out.sample(
                            &name,
                            &labels,
                            Float(f64::from_bits(gauge.load(Ordering::Relaxed))),
                        );
                    }
                    Series::Histogram(histogram) => {
                        out.histogram(&name, &labels, &histogram.snapshot());
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_name_has_one_type() {
        let registry = Registry::default();
        let counter = registry.counter(&Key::from_name("clash_total"));
        counter.fetch_add(2, Ordering::Relaxed);
        let gauge = registry.gauge(&Key::from_name("clash_total"));
        gauge.store(7f64.to_bits(), Ordering::Relaxed);
        let mut out = Exposition::default();
        registry.render(&mut out);
        let text = out.into_text();
        assert!(text.contains("# TYPE clash_total counter"), "{text}");
        assert!(text.contains("clash_total 2"), "{text}");
        assert!(!text.contains("gauge"), "{text}");
    }

    #[test]
    fn the_same_key_is_the_same_series() {
        let registry = Registry::default();
        let key = Key::from_parts("hits_total", vec![metrics::Label::new("path", "/a")]);
        registry.counter(&key).fetch_add(1, Ordering::Relaxed);
        registry.counter(&key).fetch_add(1, Ordering::Relaxed);
        let mut out = Exposition::default();
        registry.render(&mut out);
        assert!(out.into_text().contains("hits_total{path=\"/a\"} 2"));
    }
}
