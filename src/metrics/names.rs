//! How a name given by the program becomes a Prometheus name: counters end
//! in `_total`, durations are in seconds and end in `_seconds`.

use metrics_exporter_prometheus::formatting::sanitize_metric_name;

/// `requests` and `requests_total` both become `requests_total`.
pub(crate) fn counter_name(name: &str) -> String {
    let name = sanitize_metric_name(name);
    if name.ends_with("_total") {
        name
    } else {
        format!("{name}_total")
    }
}

/// A gauge keeps its (sanitised) name.
pub(crate) fn gauge_name(name: &str) -> String {
    sanitize_metric_name(name)
}

/// A histogram of values the program chose keeps its (sanitised) name.
pub(crate) fn histogram_name(name: &str) -> String {
    sanitize_metric_name(name)
}

/// Unit suffixes a duration's name may carry, replaced by `_seconds`
/// because durations are exported in seconds.
const DURATION_SUFFIXES: [&str; 9] = [
    "_seconds",
    "_secs",
    "_sec",
    "_s",
    "_milliseconds",
    "_millis",
    "_ms",
    "_us",
    "_ns",
];

/// `request_latency_ms` becomes `request_latency_seconds`: the values are
/// recorded as seconds, so a name that says milliseconds would mislead.
pub(crate) fn duration_name(name: &str) -> String {
    let name = sanitize_metric_name(name);
    let stem = DURATION_SUFFIXES
        .iter()
        .find_map(|suffix| name.strip_suffix(suffix))
        .unwrap_or(&name);
    format!("{stem}_seconds")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_prometheus_conventions() {
        assert_eq!(counter_name("requests_total"), "requests_total");
        assert_eq!(counter_name("requests"), "requests_total");
        assert_eq!(counter_name("bad-name"), "bad_name_total");
        assert_eq!(
            duration_name("request_latency_ms"),
            "request_latency_seconds"
        );
        assert_eq!(duration_name("request_latency"), "request_latency_seconds");
        assert_eq!(duration_name("took_seconds"), "took_seconds");
        assert_eq!(gauge_name("active_connections"), "active_connections");
    }
}
