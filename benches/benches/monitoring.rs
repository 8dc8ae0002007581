//! The monitoring endpoint's costs, as a bench binary (not criterion: a
//! scrape of thousands of actors takes milliseconds):
//!
//! - scrape time: `GET /metrics` over a real socket from a daemon with
//!   `--actors` recorded supervised children (default 10,000), each of
//!   which has handled one message; the median and p90 of `--scrapes`
//!   scrapes, and the exposition's size;
//! - resource tracking: the CPU time of one `ResourceTracker::sample()`
//!   (thread CPU clock), the median of `--samples`, and what that is at a
//!   1 s interval as a share of one core (target: below 0.1%).
//!
//! ```text
//! cargo bench -p proc-daemon-benches --bench monitoring -- --actors 10000 --scrapes 20
//! ```

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use proc_daemon::prelude::*;
use proc_daemon::resources::ResourceTracker;
use proc_daemon_benches::{arg_or, percentile, write_json_results};

#[path = "../../tests/fixtures/counter.rs"]
mod counter;
#[path = "../../tests/fixtures/http.rs"]
mod http;
use counter::{Add, Counter};

fn thread_cpu_time() -> Duration {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec, which `now` is.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut now) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID)");
    Duration::new(now.tv_sec as u64, now.tv_nsec as u32)
}

fn main() {
    let actors: usize = arg_or("--actors", 10_000);
    let scrapes: usize = arg_or("--scrapes", 20);
    let samples: usize = arg_or("--samples", 200);

    let config = Config::builder()
        .name("monitoring-bench")
        .worker_threads(2)
        .enable_metrics(true)
        .http_listen(SocketAddr::from(([127, 0, 0, 1], 0)))
        .ignore_env()
        .build()
        .expect("config");
    let daemon = Daemon::builder(config)
        .with_signal_config(SignalConfig::none())
        .build()
        .expect("daemon");
    let addr = daemon.monitoring_addr().expect("an endpoint");
    let root = daemon.supervisor().clone();
    daemon
        .executor()
        .spawn(async move {
            for n in 0..actors {
                let child = root
                    .child(format!("counter-{n}"), || Counter(0))
                    .spawn()
                    .await
                    .expect("child");
                child.ask(Add(1)).await.expect("answer");
            }
        })
        .join()
        .expect("children");

    let mut times = Vec::with_capacity(scrapes);
    let mut bytes = 0;
    for _ in 0..scrapes {
        let began = Instant::now();
        let response = http::get(addr, "/metrics");
        times.push(began.elapsed());
        assert_eq!(response.status, 200);
        bytes = response.body.len();
    }
    times.sort();
    let scrape_median_ms = percentile(&times, 0.5).as_secs_f64() * 1e3;
    let scrape_p90_ms = percentile(&times, 0.9).as_secs_f64() * 1e3;

    let tracker = ResourceTracker::new();
    let mut costs = Vec::with_capacity(samples);
    for _ in 0..samples {
        let before = thread_cpu_time();
        tracker.sample();
        costs.push(thread_cpu_time() - before);
    }
    costs.sort();
    let sample_median_us = percentile(&costs, 0.5).as_secs_f64() * 1e6;
    let overhead_percent_at_1s = sample_median_us / 1e6 * 100.0;

    println!(
        "scrape of {actors} actors: median {scrape_median_ms:.1} ms, p90 {scrape_p90_ms:.1} ms, {bytes} bytes"
    );
    println!(
        "resource sample: median {sample_median_us:.1} µs of CPU; at a 1 s interval {overhead_percent_at_1s:.4}% of one core"
    );
    write_json_results(&serde_json::json!({
        "actors": actors,
        "scrapes": scrapes,
        "scrape_median_ms": scrape_median_ms,
        "scrape_p90_ms": scrape_p90_ms,
        "scrape_bytes": bytes,
        "samples": samples,
        "sample_median_us": sample_median_us,
        "overhead_percent_at_1s": overhead_percent_at_1s,
    }));

    daemon.shutdown();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(daemon.run()).expect("a clean stop");
}
