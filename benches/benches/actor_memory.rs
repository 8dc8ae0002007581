//! Resident memory per idle actor, for proc-daemon, kameo 0.22 and actix
//! 0.13: 100,000 idle actors each, every framework in a fresh process, so
//! that memory freed by one measurement cannot hide the next one's.
//!
//! ```text
//! cargo bench -p proc-daemon-benches --bench actor_memory
//! ```
//!
//! The parent re-runs this binary once per framework (the variable
//! `ACTOR_MEMORY_FRAMEWORK` selects it); each child reads its resident set
//! from `/proc/self/statm` before and after spawning, and prints bytes per
//! actor.

use std::process::Command;
use std::time::Duration;

use proc_daemon::actors::executor::Executor;
use proc_daemon::actors::spawn::{SpawnOptions, spawn_on};

mod peers;
use peers::{AIdle, Idle, KIdle};

const ACTORS: usize = 100_000;
const SELECTOR: &str = "ACTOR_MEMORY_FRAMEWORK";

/// Resident memory of this process, in bytes.
fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").expect("/proc/self/statm");
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|field| field.parse().ok())
        .expect("statm's second field");
    pages * 4096
}

fn per_actor(before: u64) -> u64 {
    rss_bytes().saturating_sub(before) / ACTORS as u64
}

fn measure(framework: &str) -> u64 {
    match framework {
        "proc-daemon" => {
            let executor = Executor::builder()
                .worker_threads(1)
                .build()
                .expect("executor");
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
    let exe = std::env::current_exe().expect("current exe");
    let mut rows = Vec::new();
    for framework in ["proc-daemon", "kameo", "actix"] {
        let output = Command::new(&exe)
            .env(SELECTOR, framework)
            .output()
            .expect("re-run this bench");
        assert!(output.status.success(), "{framework}: {output:?}");
        let bytes: u64 = String::from_utf8_lossy(&output.stdout)
            .trim()
            .parse()
            .expect("bytes per actor");
        rows.push((framework, bytes));
    }
    println!("resident memory per idle actor, {ACTORS} actors, one process each:");
    for (framework, bytes) in rows {
        println!("  {framework:<12} {bytes:>6} B");
    }
}
