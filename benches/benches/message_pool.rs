//! The message pool on and off: `tell` throughput and `ask` round trips on
//! one worker, with `performance.memory_pool_size` at 0 and at 1 MiB.
//!
//! ```text
//! cargo bench -p proc-daemon-benches --bench message_pool
//! cargo bench -p proc-daemon-benches --bench message_pool -- --rounds 3 --json out.json
//! ```
//!
//! The pool is fixed for the life of a process at its first message, so
//! each measurement runs in a fresh copy of this binary (the variable
//! `MESSAGE_POOL_BYTES` sets the size), and the two sizes alternate over
//! several rounds. Each child prints nanoseconds per `tell` and per `ask`,
//! and how many allocations the pool served.

use std::process::Command;
use std::time::{Duration, Instant};

use proc_daemon::actors::executor::Executor;
use proc_daemon::actors::pool;
use proc_daemon::actors::spawn::{SpawnOptions, spawn_on};
use proc_daemon_benches::{arg_or, median_of, write_json_results};

const SELECTOR: &str = "MESSAGE_POOL_BYTES";
const TELLS: u64 = 2_000_000;
const ASKS: u64 = 500_000;
const ROUNDS: usize = 5;

#[path = "../../tests/fixtures/counter.rs"]
mod counter;
use counter::{Add, Counter};

fn child(bytes: usize) {
    proc_daemon::actors::support::install_message_pool(bytes)
        .expect("the first configuration of this process");
    let executor = Executor::builder()
        .worker_threads(2)
        .thread_pinning(true)
        .build()
        .expect("executor");
    let counter = spawn_on(&executor, 0, Counter(0), SpawnOptions::default()).expect("worker");
    let (tell_ns, ask_ns) = executor
        .spawn_on(0, async move {
            // Warm up: fill the pool's classes and the mailbox's blocks.
            for _ in 0..10_000 {
                counter.tell(Add(1)).await.expect("alive");
            }
            counter.ask(Add(0)).await.expect("alive");
            let start = Instant::now();
            for _ in 0..TELLS {
                counter.tell(Add(1)).await.expect("alive");
            }
            counter.ask(Add(0)).await.expect("alive");
            let tell = start.elapsed().as_nanos() as f64 / TELLS as f64;
            let start = Instant::now();
            for _ in 0..ASKS {
                std::hint::black_box(counter.ask(Add(1)).await.expect("alive"));
            }
            let ask = start.elapsed().as_nanos() as f64 / ASKS as f64;
            counter.stop();
            (tell, ask)
        })
        .expect("worker")
        .join()
        .expect("measurement");
    let stats = pool::stats();
    println!(
        "{tell_ns:.1} {ask_ns:.1} {} {} {}",
        stats.installed_bytes, stats.hits, stats.misses
    );
    executor.shutdown(Duration::from_secs(5)).expect("shutdown");
}

fn main() {
    if let Ok(bytes) = std::env::var(SELECTOR) {
        child(bytes.parse().expect("a byte count"));
        return;
    }
    let sizes = [0usize, 1 << 20];
    let mut tells = vec![Vec::new(); sizes.len()];
    let mut asks = vec![Vec::new(); sizes.len()];
    let mut last = vec![String::new(); sizes.len()];
    let rounds: usize = arg_or("--rounds", ROUNDS);
    assert!(rounds > 0, "--rounds must be at least 1");
    for _ in 0..rounds {
        for (index, bytes) in sizes.iter().enumerate() {
            let output = Command::new(std::env::current_exe().expect("own path"))
                .env(SELECTOR, bytes.to_string())
                .output()
                .expect("run a child");
            assert!(output.status.success(), "child failed: {output:?}");
            let text = String::from_utf8_lossy(&output.stdout).trim().to_owned();
            let fields: Vec<&str> = text.split_whitespace().collect();
            tells[index].push(fields[0].parse::<f64>().expect("tell ns"));
            asks[index].push(fields[1].parse::<f64>().expect("ask ns"));
            last[index] = text;
        }
    }
    println!("message pool, one worker, {rounds} rounds of fresh processes (medians)");
    let mut medians = Vec::new();
    for (index, bytes) in sizes.iter().enumerate() {
        let tell = median_of(&mut tells[index]);
        let ask = median_of(&mut asks[index]);
        medians.push((tell, ask));
        let fields: Vec<&str> = last[index].split_whitespace().collect();
        println!(
            "  memory_pool_size {bytes:>8}: tell {tell:>7.1} ns/msg   ask {ask:>7.1} ns   (pool {} bytes, {} hits, {} misses in the last run)",
            fields[2], fields[3], fields[4]
        );
    }
    println!(
        "  pool on vs off: tell {:.2}x, ask {:.2}x (time off / time on)",
        medians[0].0 / medians[1].0,
        medians[0].1 / medians[1].1
    );
    let pool_fields: Vec<&str> = last[1].split_whitespace().collect();
    write_json_results(&serde_json::json!({
        "rounds": rounds,
        "tells": TELLS,
        "asks": ASKS,
        "off": { "tell_ns": medians[0].0, "ask_ns": medians[0].1 },
        "on": {
            "pool_bytes": sizes[1],
            "tell_ns": medians[1].0,
            "ask_ns": medians[1].1,
            "hits": pool_fields[3].parse::<u64>().expect("hits"),
            "misses": pool_fields[4].parse::<u64>().expect("misses"),
        },
    }));
}
