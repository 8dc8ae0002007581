//! The Prometheus text format, written with the line helpers of
//! `metrics-exporter-prometheus` (escaping, name and label sanitising),
//! for the registry's series and the runtime's alike.

use std::fmt::Display;

use metrics::{Key, Label};
use metrics_exporter_prometheus::LabelSet;
use metrics_exporter_prometheus::formatting::{
    sanitize_metric_name, write_help_line, write_metric_line, write_type_line,
};
use proc_daemon_actors::metrics::HistogramSnapshot;

/// A metric family's type, as the `# TYPE` line names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Counter,
    Gauge,
    Histogram,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
        }
    }
}

/// A label set built once and written on every line of a series.
pub(crate) fn labels<'a>(pairs: impl IntoIterator<Item = (&'a str, String)>) -> LabelSet {
    let labels: Vec<Label> = pairs
        .into_iter()
        .map(|(key, value)| Label::new(key.to_owned(), value))
        .collect();
    LabelSet::from_key_and_global(&Key::from_parts("", labels), &Default::default())
}

/// Prometheus's spelling of a float: `+Inf`, `-Inf`, `NaN`, else the
/// shortest decimal that reads back as the same value.
pub(crate) struct Float(pub(crate) f64);

impl Display for Float {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            v if v.is_nan() => f.write_str("NaN"),
            v if v == f64::INFINITY => f.write_str("+Inf"),
            v if v == f64::NEG_INFINITY => f.write_str("-Inf"),
            v => write!(f, "{v}"),
        }
    }
}

/// The text of one scrape.
#[derive(Debug, Default)]
pub(crate) struct Exposition {
    text: String,
}

impl Exposition {
    pub(crate) fn with_capacity(bytes: usize) -> Exposition {
        Exposition {
            text: String::with_capacity(bytes),
        }
    }

    /// Starts a family: its `# HELP` and `# TYPE` lines. `name` is
    /// sanitised; the name actually written is returned for its samples.
    pub(crate) fn family(&mut self, name: &str, kind: Kind, help: &str) -> String {
        let name = sanitize_metric_name(name);
        write_help_line(&mut self.text, &name, None, None, help);
        write_type_line(&mut self.text, &name, None, None, kind.as_str());
        name
    }

    /// One sample of a counter or gauge family.
    pub(crate) fn sample(&mut self, name: &str, labels: &LabelSet, value: impl Display) {
        write_metric_line::<&str, _>(&mut self.text, name, None, labels, None, value, None);
    }

    /// One histogram series: its cumulative buckets, `+Inf`, sum and count.
    pub(crate) fn histogram(
        &mut self,
        name: &str,
        labels: &LabelSet,
        histogram: &HistogramSnapshot,
    ) {
        for (bound, count) in &histogram.buckets {
            write_metric_line(
                &mut self.text,
                name,
                Some("bucket"),
                labels,
                Some(("le", Float(*bound))),
                count,
                None,
            );
        }
        write_metric_line(
            &mut self.text,
            name,
            Some("bucket"),
            labels,
            Some(("le", "+Inf")),
            histogram.count,
            None,
        );
        write_metric_line::<&str, _>(
            &mut self.text,
            name,
            Some("sum"),
            labels,
            None,
            Float(histogram.sum),
            None,
        );
        write_metric_line::<&str, _>(
            &mut self.text,
            name,
            Some("count"),
            labels,
            None,
            histogram.count,
            None,
        );
    }

    pub(crate) fn into_text(self) -> String {
        self.text
    }
}
