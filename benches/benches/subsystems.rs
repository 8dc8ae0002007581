//! A daemon with 100,000 supervised subsystems: start them, restart a
//! random 1% of them, and shut the daemon down through its staged
//! shutdown. Issue 24 asks for the whole shutdown within 1 s.
//!
//! ```text
//! cargo bench -p proc-daemon-benches --bench subsystems
//! cargo bench -p proc-daemon-benches --bench subsystems -- --subsystems 10000 --json out.json
//! ```
//!
//! The subsystems are actors under one supervisor (`pool`, OneForOne,
//! intensity raised to allow the restarts), itself a child of the daemon's
//! root supervisor, as a service with that many workers would be built:
//! the root's default intensity (3 restarts in 5 s) is meant for a
//! handful of subsystems. The daemon runs on 2 workers, with no signal
//! handling (the bench requests the shutdown itself).
//!
//! Measured, in one process:
//! - start: from the pool's `spawn` to the last subsystem's `started`;
//!   the subsystems are spawned by a task on the daemon's executor;
//! - memory: the resident set's growth over the start, per subsystem;
//! - restart: 1% of the subsystems, picked at random (a fixed seed), are
//!   each told to fail, all at once; from the first tell to the last
//!   restarted incarnation's `started`;
//! - shutdown: `Daemon::shutdown` to `run()` returning.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use proc_daemon::actors::prelude::*;
use proc_daemon_benches::counted::{CountedChild, Fail};
use proc_daemon_benches::{arg_or, rss_bytes, write_json_results};

/// `count` distinct indices below `below`, from a fixed-seed generator
/// (xorshift), so that every run restarts the same subsystems.
fn pick(count: usize, below: usize) -> Vec<usize> {
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut picked = std::collections::BTreeSet::new();
    while picked.len() < count {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        picked.insert((state % below as u64) as usize);
    }
    picked.into_iter().collect()
}

async fn wait_until(count: &AtomicU64, target: u64) {
    while count.load(Ordering::Acquire) < target {
        tokio::time::sleep(Duration::from_micros(200)).await;
    }
}

fn main() {
    let subsystems: usize = arg_or("--subsystems", 100_000);
    assert!(subsystems >= 100, "--subsystems: at least 100");
    let config = proc_daemon::Config::builder()
        .name("subsystems-bench")
        .log_level(proc_daemon::LogLevel::Warn)
        .worker_threads(2)
        .ignore_env()
        .build()
        .expect("config");
    let daemon = proc_daemon::Daemon::builder(config)
        .with_signal_config(proc_daemon::signal::SignalConfig::none())
        .build()
        .expect("a daemon");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let restarts = subsystems / 100;
    let row = runtime.block_on(async move {
        let starts = Arc::new(AtomicU64::new(0));
        let before = rss_bytes();
        let started = Instant::now();
        let pool = daemon
            .supervisor()
            .child("pool", move || {
                Supervisor::builder()
                    .name("pool")
                    .intensity(restarts as u32 * 2, Duration::from_secs(10))
                    .build()
            })
            .spawn()
            .await
            .expect("the pool supervisor");
        let options = daemon.mailbox_options();
        // Spawned from a task on the daemon's executor, as a pool actor
        // would spawn its workers: an `ask` from outside the executor
        // pays a cross-runtime wake-up each, which is not what this
        // measures.
        let spawner = {
            let pool = pool.clone();
            let starts = starts.clone();
            daemon.executor().spawn(async move {
                let mut workers = Vec::with_capacity(subsystems);
                for n in 0..subsystems {
                    let starts = starts.clone();
                    workers.push(
                        pool.child(format!("worker-{n}"), move || {
                            CountedChild::new(starts.clone())
                        })
                        .mailbox(options)
                        .spawn()
                        .await
                        .expect("a subsystem"),
                    );
                }
                workers
            })
        };
        let workers = spawner.await.expect("the spawner");
        wait_until(&starts, subsystems as u64).await;
        let start = started.elapsed();
        let memory = rss_bytes().saturating_sub(before) as f64 / subsystems as f64;

        let restarting = Instant::now();
        for index in pick(restarts, subsystems) {
            workers[index].tell(Fail).await.expect("a tell");
        }
        wait_until(&starts, (subsystems + restarts) as u64).await;
        let restart = restarting.elapsed();
        drop(workers);
        drop(pool);

        let stopping = Instant::now();
        daemon.shutdown();
        let exit = daemon.run().await.expect("a clean stop");
        let shutdown = stopping.elapsed();
        assert_eq!(exit.exit_code(), 0, "{exit:?}");
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        serde_json::json!({
            "subsystems": subsystems,
            "restarts": restarts,
            "start_ms": ms(start),
            "start_us_per_subsystem": ms(start) * 1e3 / subsystems as f64,
            "memory_bytes": memory,
            "restart_ms": ms(restart),
            "restart_us_per_subsystem": ms(restart) * 1e3 / restarts as f64,
            "shutdown_ms": ms(shutdown),
            "shutdown_us_per_subsystem": ms(shutdown) * 1e3 / subsystems as f64,
        })
    });
    println!(
        "{} subsystems under one pool supervisor under the daemon's root:",
        subsystems
    );
    println!(
        "  start    {:9.1} ms ({:.2} µs each)   memory {:.0} B each",
        row["start_ms"].as_f64().unwrap_or(0.0),
        row["start_us_per_subsystem"].as_f64().unwrap_or(0.0),
        row["memory_bytes"].as_f64().unwrap_or(0.0),
    );
    println!(
        "  restart  {:9.1} ms for {} ({:.2} µs each)",
        row["restart_ms"].as_f64().unwrap_or(0.0),
        restarts,
        row["restart_us_per_subsystem"].as_f64().unwrap_or(0.0),
    );
    println!(
        "  shutdown {:9.1} ms ({:.2} µs each)",
        row["shutdown_ms"].as_f64().unwrap_or(0.0),
        row["shutdown_us_per_subsystem"].as_f64().unwrap_or(0.0),
    );
    write_json_results(&row);
}
