//! A daemon's shutdown inside one process: from the request to `run()`
//! returning, for a daemon with idle subsystems (10 by default) on 2
//! workers. This is the part of SIGTERM-to-exit (benches/daemon_exit.rs)
//! that the framework controls, without the signal's delivery and the
//! kernel's teardown of the process, and so less noisy.
//!
//! The floor is the same work done by hand on a 2-worker tokio runtime: the
//! tasks await one cancellation, the main thread cancels them, joins them
//! and shuts the runtime down.
//!
//! Before each shutdown the process idles for `--settle-ms` (50 by
//! default, as daemon_exit waits before its signal): a daemon is stopped
//! after a long idle, with cold caches and sleeping CPUs, which costs about
//! three times what a shutdown right after start-up costs. `--settle-ms 0`
//! measures the warm case.
//!
//! ```text
//! cargo bench -p proc-daemon-benches --bench daemon_shutdown
//! cargo bench -p proc-daemon-benches --bench daemon_shutdown -- --rounds 100 --subsystems 40 --settle-ms 0
//! ```
//!
//! `--json FILE` also writes the medians as JSON, which
//! `cargo xtask perf-report` reads.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use proc_daemon_benches::{arg_or, percentile, write_json_results};

/// What a run measures, from the command line.
#[derive(Clone, Copy)]
struct Setup {
    rounds: usize,
    subsystems: usize,
    settle: Duration,
}

/// Waits (spinning briefly, then sleeping) until `count` reaches `target`.
fn wait_for(count: &AtomicUsize, target: usize) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while count.load(Ordering::Acquire) < target {
        assert!(Instant::now() < deadline, "subsystems did not start");
        std::thread::sleep(Duration::from_micros(200));
    }
}

/// One shutdown of ours: the time from `Daemon::shutdown` to `run`
/// returning.
fn ours(runtime: &tokio::runtime::Runtime, setup: Setup) -> Duration {
    let config = proc_daemon::Config::builder()
        .name("bench")
        .log_level(proc_daemon::LogLevel::Warn)
        .worker_threads(2)
        .ignore_env()
        .build()
        .expect("config");
    let ready = Arc::new(AtomicUsize::new(0));
    let mut builder = proc_daemon::Daemon::builder(config)
        .with_signal_config(proc_daemon::signal::SignalConfig::none());
    for index in 0..setup.subsystems {
        let ready = ready.clone();
        builder = builder.with_task(format!("idle-{index}"), move |mut shutdown| {
            let ready = ready.clone();
            async move {
                ready.fetch_add(1, Ordering::Release);
                shutdown.cancelled().await;
                Ok(())
            }
        });
    }
    let daemon = builder.build().expect("build");
    wait_for(&ready, setup.subsystems);
    std::thread::sleep(setup.settle);
    runtime.block_on(async move {
        let requester = daemon.clone();
        let started = Instant::now();
        requester.shutdown();
        drop(requester);
        let exit = daemon.run().await.expect("a clean stop");
        assert_eq!(exit.exit_code(), 0);
        started.elapsed()
    })
}

/// The floor: the same cancellation and joins on a bare tokio runtime.
fn floor(setup: Setup) -> Duration {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let ready = Arc::new(AtomicUsize::new(0));
    let (cancel, watch) = tokio::sync::watch::channel(false);
    let tasks: Vec<_> = (0..setup.subsystems)
        .map(|_| {
            let ready = ready.clone();
            let mut watch = watch.clone();
            runtime.spawn(async move {
                ready.fetch_add(1, Ordering::Release);
                let _ = watch.wait_for(|&stop| stop).await;
            })
        })
        .collect();
    wait_for(&ready, setup.subsystems);
    std::thread::sleep(setup.settle);
    let started = Instant::now();
    let _ = cancel.send(true);
    runtime.block_on(async {
        for task in tasks {
            task.await.expect("task");
        }
    });
    runtime.shutdown_timeout(Duration::from_secs(5));
    started.elapsed()
}

fn main() {
    let setup = Setup {
        rounds: arg_or("--rounds", 100),
        subsystems: arg_or("--subsystems", 10),
        settle: Duration::from_millis(arg_or("--settle-ms", 50)),
    };
    let caller = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let mut samples = [Vec::new(), Vec::new()];
    for _ in 0..setup.rounds {
        samples[0].push(ours(&caller, setup));
        samples[1].push(floor(setup));
    }
    println!(
        "shutdown request to return, {} idle subsystems, 2 workers, {} ms idle first, {} rounds, interleaved",
        setup.subsystems,
        setup.settle.as_millis(),
        setup.rounds
    );
    let mut medians = Vec::new();
    for (name, sorted) in ["proc-daemon", "tokio floor"]
        .iter()
        .zip(samples.iter_mut())
    {
        sorted.sort();
        let median = percentile(sorted, 0.5);
        medians.push(median);
        println!(
            "  {name:<12} median {:>8.1} us   p10 {:>8.1} us   p90 {:>8.1} us",
            median.as_secs_f64() * 1e6,
            percentile(sorted, 0.1).as_secs_f64() * 1e6,
            percentile(sorted, 0.9).as_secs_f64() * 1e6
        );
    }
    println!(
        "  ratio: proc-daemon / tokio floor = {:.2}",
        medians[0].as_secs_f64() / medians[1].as_secs_f64()
    );
    write_json_results(&serde_json::json!({
        "rounds": setup.rounds,
        "subsystems": setup.subsystems,
        "settle_ms": setup.settle.as_millis() as u64,
        "proc_daemon_median_us": medians[0].as_secs_f64() * 1e6,
        "tokio_by_hand_median_us": medians[1].as_secs_f64() * 1e6,
    }));
}
