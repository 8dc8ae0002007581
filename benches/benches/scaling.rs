//! How the costs of a supervision tree grow with its size: one supervisor
//! with N children, for each N of `--sizes`, each N in a fresh process.
//!
//! ```text
//! cargo bench -p proc-daemon-benches --bench scaling
//! cargo bench -p proc-daemon-benches --bench scaling -- --sizes 1000,10000,100000 --json out.json
//! ```
//!
//! Per N, on a 2-worker executor:
//! - spawn per child: `child(..).spawn().await` N times, the total over N;
//! - memory per child: the resident set's growth over N;
//! - restart latency of one child: 20 children spread over the tree are
//!   told to fail (`Context::fail`), one at a time; the time from the tell
//!   to the new incarnation's `started` (the median). The supervisor finds
//!   the child that ended by its identity;
//! - shutdown per child: `stop` on the supervisor and `wait_for_stop`, the
//!   total over N (children stop one by one, in reverse order).
//!
//! The target (issue 24): each stays within 2x of its value at 1k.

use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use proc_daemon::actors::executor::Executor;
use proc_daemon::actors::prelude::*;
use proc_daemon_benches::{arg_value, median_of, rss_bytes, write_json_results};

const SIZE: &str = "SCALING_BENCH_SIZE";

/// A child that counts its incarnations and fails when told.
struct Child {
    starts: Arc<AtomicU64>,
}

impl Actor for Child {
    async fn started(&mut self, _ctx: &mut Context<Self>) -> Result<(), BoxError> {
        self.starts.fetch_add(1, Ordering::Release);
        Ok(())
    }
}

struct Fail;

impl Handler<Fail> for Child {
    type Reply = ();
    async fn handle(&mut self, _: Fail, ctx: &mut Context<Self>) {
        ctx.fail("told to fail");
    }
}

fn main() {
    if let Ok(size) = std::env::var(SIZE) {
        measure(size.parse().expect("a size"));
        return;
    }
    let sizes: Vec<usize> = arg_value("--sizes")
        .unwrap_or_else(|| "1000,10000,100000".to_owned())
        .split(',')
        .map(|n| n.trim().parse().expect("--sizes: numbers"))
        .collect();
    let mut rows = Vec::new();
    println!("one supervisor with N children, a fresh process per N");
    for &size in &sizes {
        let out = Command::new(std::env::current_exe().expect("this binary"))
            .env(SIZE, size.to_string())
            .output()
            .expect("run a size");
        assert!(out.status.success(), "size {size}: {out:?}");
        let row: serde_json::Value =
            serde_json::from_slice(&out.stdout).expect("the size's JSON line");
        println!(
            "  N = {size:>8}: spawn {:8.2} µs/child   memory {:6.0} B/child   restart {:8.1} µs   shutdown {:8.2} µs/child",
            row["spawn_us"].as_f64().unwrap_or(0.0),
            row["memory_bytes"].as_f64().unwrap_or(0.0),
            row["restart_us"].as_f64().unwrap_or(0.0),
            row["shutdown_us"].as_f64().unwrap_or(0.0),
        );
        rows.push(row);
    }
    write_json_results(&serde_json::json!({ "sizes": rows }));
}

/// One N, in this process; prints its JSON line.
fn measure(size: usize) {
    let executor = Executor::builder()
        .worker_threads(2)
        .build()
        .expect("an executor");
    let root = Supervisor::builder()
        .intensity(1_000, Duration::from_secs(1))
        .spawn(&executor);
    let starts = Arc::new(AtomicU64::new(0));
    let (row, root) = executor
        .spawn(async move {
            let before = rss_bytes();
            let started = Instant::now();
            let mut children = Vec::with_capacity(size);
            for n in 0..size {
                let starts = starts.clone();
                children.push(
                    root.child(format!("c{n}"), move || Child {
                        starts: starts.clone(),
                    })
                    .spawn()
                    .await
                    .expect("a child"),
                );
            }
            let spawn = started.elapsed();
            while starts.load(Ordering::Acquire) < size as u64 {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            let memory = rss_bytes().saturating_sub(before) as f64 / size as f64;

            let mut restarts = Vec::new();
            for k in 0..20 {
                let child = &children[k * (size - 1) / 19];
                let seen = starts.load(Ordering::Acquire);
                let told = Instant::now();
                child.tell(Fail).await.expect("a tell");
                while starts.load(Ordering::Acquire) == seen {
                    tokio::task::yield_now().await;
                }
                restarts.push(told.elapsed());
            }
            let restart = median_of(&mut restarts);

            drop(children);
            let stopping = Instant::now();
            root.stop();
            root.wait_for_stop().await;
            let shutdown = stopping.elapsed();
            let us = |d: Duration| d.as_secs_f64() * 1e6;
            (
                serde_json::json!({
                    "size": size,
                    "spawn_us": us(spawn) / size as f64,
                    "memory_bytes": memory,
                    "restart_us": us(restart),
                    "shutdown_us": us(shutdown) / size as f64,
                }),
                root,
            )
        })
        .join()
        .expect("the measurement");
    drop(root);
    println!("{row}");
    executor
        .shutdown(Duration::from_secs(10))
        .expect("the executor stops");
}
