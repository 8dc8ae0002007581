//! Resident memory per idle actor, for proc-daemon (unsupervised, and as
//! supervised children), kameo 0.22 and actix 0.13: 100,000 idle actors
//! each, every measurement in a fresh process, so that memory freed by one
//! measurement cannot hide the next one's.
//!
//! ```text
//! cargo bench -p proc-daemon-benches --bench actor_memory
//! cargo bench -p proc-daemon-benches --bench actor_memory -- --repeat 3 --json out.json
//! ```
//!
//! The parent re-runs this binary once per framework and repetition (the
//! variable `ACTOR_MEMORY_FRAMEWORK` selects the framework); each child
//! reads its resident set from `/proc/self/statm` before and after
//! spawning, and prints bytes per actor. With `--repeat N` each framework
//! is measured N times, the frameworks interleaved, and the median is
//! reported.
//!
//! - `proc-daemon`: `spawn_on` with default options, on a 1-worker executor.
//! - `proc-daemon-supervised`: the same actors as children of one
//!   supervisor (`child(..).spawn()`), so the figure includes the
//!   supervisor's record of each child.
//! - `kameo`: `spawn` on a tokio current-thread runtime.
//! - `actix`: `start` in one `System`.

use std::process::Command;
use std::time::Duration;

use proc_daemon::actors::executor::Executor;
use proc_daemon::actors::prelude::*;
use proc_daemon::actors::spawn::{SpawnOptions, spawn_on};
use proc_daemon_benches::{arg_or, median_of, rss_bytes, write_json_results};

mod peers;
use peers::{Idle, KIdle};

/// An actix actor that does nothing.
struct AIdle;
impl actix::Actor for AIdle {
    type Context = actix::Context<Self>;
}

const ACTORS: usize = 100_000;
const SELECTOR: &str = "ACTOR_MEMORY_FRAMEWORK";
const FRAMEWORKS: [&str; 4] = ["proc-daemon", "proc-daemon-supervised", "kameo", "actix"];

fn per_actor(before: u64) -> u64 {
    rss_bytes().saturating_sub(before) / ACTORS as u64
}

fn one_worker() -> Executor {
    Executor::builder()
        .worker_threads(1)
        .build()
        .expect("executor")
}

fn measure(framework: &str) -> u64 {
    match framework {
        "proc-daemon" => {
            let executor = one_worker();
            let before = rss_bytes();
            let actors: Vec<_> = (0..ACTORS)
                .map(|_| spawn_on(&executor, 0, Idle, SpawnOptions::default()).expect("worker"))
                .collect();
            // Let every actor run its `started` hook and park.
            executor
                .spawn(async {})
                .join()
                .expect("a task behind the actors' first polls");
            std::thread::sleep(Duration::from_millis(100));
            let bytes = per_actor(before);
            drop(actors);
            bytes
        }
        "proc-daemon-supervised" => {
            let executor = one_worker();
            let before = rss_bytes();
            let supervisor = Supervisor::builder().spawn(&executor);
            let children = executor
                .spawn_on(0, {
                    let supervisor = supervisor.clone();
                    async move {
                        let mut children = Vec::with_capacity(ACTORS);
                        for _ in 0..ACTORS {
                            children.push(
                                supervisor
                                    .child("idle", || Idle)
                                    .spawn()
                                    .await
                                    .expect("supervised"),
                            );
                        }
                        children
                    }
                })
                .expect("worker")
                .join()
                .expect("spawner");
            executor
                .spawn(async {})
                .join()
                .expect("a task behind the children's first polls");
            std::thread::sleep(Duration::from_millis(100));
            let bytes = per_actor(before);
            drop(children);
            supervisor.stop();
            bytes
        }
        "kameo" => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
            .block_on(async {
                let before = rss_bytes();
                let actors: Vec<_> = (0..ACTORS)
                    .map(|_| <KIdle as kameo::actor::Spawn>::spawn(KIdle))
                    .collect();
                tokio::time::sleep(Duration::from_millis(100)).await;
                let bytes = per_actor(before);
                drop(actors);
                bytes
            }),
        "actix" => actix::System::new().block_on(async {
            let before = rss_bytes();
            let actors: Vec<_> = (0..ACTORS).map(|_| actix::Actor::start(AIdle)).collect();
            tokio::time::sleep(Duration::from_millis(100)).await;
            let bytes = per_actor(before);
            drop(actors);
            bytes
        }),
        other => panic!("unknown framework {other}"),
    }
}

fn main() {
    if let Ok(framework) = std::env::var(SELECTOR) {
        println!("{}", measure(&framework));
        return;
    }
    let repeat: usize = arg_or("--repeat", 1);
    assert!(repeat > 0, "--repeat must be at least 1");
    let exe = std::env::current_exe().expect("current exe");
    let mut samples = vec![Vec::new(); FRAMEWORKS.len()];
    for _ in 0..repeat {
        for (index, framework) in FRAMEWORKS.iter().enumerate() {
            let output = Command::new(&exe)
                .env(SELECTOR, framework)
                .output()
                .expect("re-run this bench");
            assert!(output.status.success(), "{framework}: {output:?}");
            let bytes: u64 = String::from_utf8_lossy(&output.stdout)
                .trim()
                .parse()
                .expect("bytes per actor");
            samples[index].push(bytes);
        }
    }
    println!(
        "resident memory per idle actor, {ACTORS} actors, one process each, median of {repeat}:"
    );
    let mut results = serde_json::Map::new();
    for (framework, values) in FRAMEWORKS.iter().zip(samples.iter_mut()) {
        let all = values.clone();
        let bytes = median_of(values);
        println!("  {framework:<24} {bytes:>6} B   (runs: {all:?})");
        results.insert(
            (*framework).to_owned(),
            serde_json::json!({ "bytes_per_actor": bytes, "runs": all }),
        );
    }
    write_json_results(&serde_json::json!({
        "actors": ACTORS,
        "repeat": repeat,
        "frameworks": results,
    }));
}
