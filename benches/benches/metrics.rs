//! What recording costs, side by side in one run:
//!
//! - `counter_handle`: one increment through a handle held by the caller.
//!   proc-daemon: a `metrics::Counter` from its facade recorder (an
//!   `AtomicU64` in its registry). metrics-exporter-prometheus 0.18: a
//!   `metrics::Counter` from its `PrometheusRecorder`. Floor: a bare
//!   `AtomicU64::fetch_add`.
//! - `counter_by_name`: one increment that names the series each time:
//!   `metrics::counter!("requests_total").increment(1)` with each side's
//!   recorder as the local recorder (the macro registers, that is looks
//!   the series up, on every call); and, ours alone (the exporter has no
//!   such API), the reference's
//!   `MetricsCollector::increment_counter("requests_total", 1)`.
//! - `histogram_handle` / `histogram_by_name`: one duration recorded, the
//!   same two ways. proc-daemon: fixed buckets, atomics. exporter: its
//!   histogram handle (samples kept until rendered). Floor: a bare
//!   `AtomicU64::fetch_add` of the nanoseconds.
//! - `tell_metrics`: `tell` throughput to a supervised child on the
//!   sender's worker, with the runtime's recording of the child off and on
//!   (`monitoring.enable_metrics`). Target: on is at most 5% slower.

use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use metrics::{Key, Metadata, Recorder};
use proc_daemon::actors::executor::Executor;
use proc_daemon::actors::prelude::*;
use proc_daemon::metrics::{FacadeRecorder, MetricsCollector};

#[path = "../../tests/fixtures/counter.rs"]
mod counter;
use counter::{Add, Counter};

const METADATA: Metadata<'static> = Metadata::new(module_path!(), metrics::Level::INFO, None);

fn exporter() -> metrics_exporter_prometheus::PrometheusRecorder {
    metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder()
}

fn record(c: &mut Criterion) {
    let mut group = c.benchmark_group("counter_handle");
    group.throughput(Throughput::Elements(1));
    let ours = FacadeRecorder.register_counter(&Key::from_name("bench_handle_total"), &METADATA);
    group.bench_function("proc-daemon", |b| b.iter(|| ours.increment(black_box(1))));
    let recorder = exporter();
    let theirs = recorder.register_counter(&Key::from_name("bench_handle_total"), &METADATA);
    group.bench_function("metrics-exporter-prometheus", |b| {
        b.iter(|| theirs.increment(black_box(1)))
    });
    let floor = AtomicU64::new(0);
    group.bench_function("atomic", |b| {
        b.iter(|| floor.fetch_add(black_box(1), Ordering::Relaxed))
    });
    group.finish();

    let mut group = c.benchmark_group("counter_by_name");
    group.throughput(Throughput::Elements(1));
    let collector = MetricsCollector::new();
    group.bench_function("proc-daemon-collector", |b| {
        b.iter(|| collector.increment_counter(black_box("requests_total"), 1))
    });
    group.bench_function("proc-daemon", |b| {
        metrics::with_local_recorder(&FacadeRecorder, || {
            b.iter(|| metrics::counter!("requests_total").increment(1))
        })
    });
    group.bench_function("metrics-exporter-prometheus", |b| {
        metrics::with_local_recorder(&recorder, || {
            b.iter(|| metrics::counter!("requests_total").increment(1))
        })
    });
    group.finish();

    let took = Duration::from_micros(150);
    let mut group = c.benchmark_group("histogram_handle");
    group.throughput(Throughput::Elements(1));
    let ours = FacadeRecorder.register_histogram(&Key::from_name("bench_seconds"), &METADATA);
    group.bench_function("proc-daemon", |b| {
        b.iter(|| ours.record(black_box(took).as_secs_f64()))
    });
    let theirs = recorder.register_histogram(&Key::from_name("bench_seconds"), &METADATA);
    group.bench_function("metrics-exporter-prometheus", |b| {
        b.iter(|| theirs.record(black_box(took).as_secs_f64()));
    });
    group.bench_function("atomic", |b| {
        b.iter(|| floor.fetch_add(black_box(took).as_nanos() as u64, Ordering::Relaxed))
    });
    group.finish();

    let mut group = c.benchmark_group("histogram_by_name");
    group.throughput(Throughput::Elements(1));
    group.bench_function("proc-daemon-collector", |b| {
        b.iter(|| collector.record_histogram(black_box("request_latency_ms"), black_box(took)))
    });
    group.bench_function("proc-daemon", |b| {
        metrics::with_local_recorder(&FacadeRecorder, || {
            b.iter(|| metrics::histogram!("request_latency_seconds").record(black_box(took)))
        })
    });
    group.bench_function("metrics-exporter-prometheus", |b| {
        metrics::with_local_recorder(&recorder, || {
            b.iter(|| metrics::histogram!("request_latency_seconds").record(black_box(took)))
        })
    });
    group.finish();
}

/// `iters` tells and one ask, timed, to a supervised child on the
/// sender's worker, recorded or not.
fn tells_to_child(executor: &Executor, recorded: bool, iters: u64) -> Duration {
    proc_daemon::actors::metrics::set_enabled(recorded);
    let supervisor = Supervisor::builder()
        .name(if recorded { "bench-on" } else { "bench-off" })
        .spawn_on(executor, 0)
        .expect("worker 0");
    let elapsed = executor
        .spawn_on(0, {
            let supervisor = supervisor.clone();
            async move {
                let child = supervisor
                    .child("counter", || Counter(0))
                    .on_worker(0)
                    .spawn()
                    .await
                    .expect("child");
                let start = Instant::now();
                for _ in 0..iters {
                    child.tell(Add(1)).await.expect("alive");
                }
                let total = child.ask(Add(0)).await.expect("alive");
                assert_eq!(total, iters);
                start.elapsed()
            }
        })
        .expect("worker 0")
        .join()
        .expect("sender");
    supervisor.stop();
    elapsed
}

fn tell(c: &mut Criterion) {
    let executor = Executor::builder()
        .worker_threads(2)
        .thread_pinning(true)
        .build()
        .expect("executor");
    let mut group = c.benchmark_group("tell_metrics");
    group.throughput(Throughput::Elements(1));
    group.bench_function("off", |b| {
        b.iter_custom(|iters| tells_to_child(&executor, false, iters))
    });
    group.bench_function("on", |b| {
        b.iter_custom(|iters| tells_to_child(&executor, true, iters))
    });
    group.finish();
    executor.shutdown(Duration::from_secs(5)).expect("shutdown");
}

criterion_group!(benches, record, tell);
criterion_main!(benches);
