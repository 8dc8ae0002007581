//! How costs grow with the number of actors, for proc-daemon and its
//! peers: each (kind, framework, N) in a fresh process, for each N of
//! `--sizes`.
//!
//! ```text
//! cargo bench -p proc-daemon-benches --bench scaling
//! cargo bench -p proc-daemon-benches --bench scaling -- --sizes 1000,10000,100000,1000000 --json out.json
//! ```
//!
//! **Idle actors** (`actors`), proc-daemon, kameo 0.22 and actix 0.13, all
//! on one thread (ours: a 1-worker executor, everything on worker 0;
//! kameo: tokio current-thread; actix: one `System`). Per N:
//! - spawn per actor: N spawns, the total over N (ours `spawn_on`, kameo
//!   `spawn`, actix `start`);
//! - memory per actor: the resident set's growth over N, once every actor
//!   has started;
//! - ask per actor: one `ask` to each actor in turn, each answered before
//!   the next (actix: `send(..).await`), the total over N;
//! - memory per actor after the asks: the resident set's growth over N
//!   once every actor has answered (what a mailbox allocates on its first
//!   message shows here);
//! - stop per actor: stop every actor and wait until each has ended, the
//!   total over N (kameo: `stop_gracefully` then `wait_for_shutdown`;
//!   actix: drop the addresses and wait for every `stopped` hook).
//!
//! With N = 1,000,000 this is the million-actor run of issue 24.
//!
//! **A supervision tree** (`tree`), proc-daemon only (no peer has a
//! supervisor that restarts a child in place): one supervisor with N
//! children on a 2-worker executor. Per N:
//! - spawn per child: `child(..).spawn().await` N times, over N;
//! - memory per child: the resident set's growth over N;
//! - restart latency of one child: 20 children spread over the tree are
//!   told to fail (`Context::fail`), one at a time; the median time from
//!   the tell to the new incarnation's `started`. Measured twice over the
//!   same children: the first time (`first_message_restart_us`) the tell
//!   is the child's first message, which also allocates the first segment
//!   of its mailbox; the second time (`restart_us`) it is a restart alone;
//! - exit latency of one child: children are told to stop for good
//!   (`Context::stop`), one at a time; the median time from the tell to
//!   `wait_for_stop` returning, which is after the supervisor has handled
//!   the exit (it marks the child stopped). First the 20 restarted
//!   children (`exit_us`), then 20 others for which the tell is the first
//!   message (`first_message_exit_us`);
//! - shutdown per child: `stop` on the supervisor and `wait_for_stop`,
//!   over N (children stop one by one, in reverse order).
//!
//! The target (issue 24): each stays within 2x of its value at 1k.

use std::cell::Cell as StdCell;
use std::process::Command;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use proc_daemon::actors::executor::Executor;
use proc_daemon::actors::prelude::*;
use proc_daemon::actors::spawn::{SpawnOptions, spawn_on};
use proc_daemon_benches::counted::{CountedChild, Fail, Quit};
use proc_daemon_benches::{arg_value, median_of, rss_bytes, write_json_results};

/// Selects what a child process measures: `kind:framework:size`.
const SELECTOR: &str = "SCALING_BENCH_RUN";
const PEERS: [&str; 3] = ["proc-daemon", "kameo", "actix"];

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

// ---- idle actors that answer one ask ----

/// A proc-daemon actor that answers `Ping`.
struct Pinged;
impl Actor for Pinged {}
struct Ping;
impl Handler<Ping> for Pinged {
    type Reply = ();
    async fn handle(&mut self, _: Ping, _ctx: &mut Context<Self>) {}
}

/// A kameo actor that answers `KPing`.
#[derive(kameo::Actor)]
struct KPinged;
struct KPing;
impl kameo::message::Message<KPing> for KPinged {
    type Reply = ();
    async fn handle(
        &mut self,
        _: KPing,
        _ctx: &mut kameo::message::Context<Self, Self::Reply>,
    ) -> Self::Reply {
    }
}

/// An actix actor that answers `APing` and counts itself among the living
/// until its `stopped` hook.
struct APinged(Rc<StdCell<u64>>);
impl actix::Actor for APinged {
    type Context = actix::Context<Self>;
    fn stopped(&mut self, _ctx: &mut Self::Context) {
        self.0.set(self.0.get() - 1);
    }
}
struct APing;
impl actix::Message for APing {
    type Result = ();
}
impl actix::Handler<APing> for APinged {
    type Result = ();
    fn handle(&mut self, _: APing, _ctx: &mut Self::Context) {}
}

/// Spawn, memory (idle, and after one ask each), ask and stop per actor.
struct ActorCosts {
    spawn: Duration,
    memory: u64,
    ask: Duration,
    /// The resident set's growth once every actor has answered its ask:
    /// what N actors that have each handled a message hold.
    asked_memory: u64,
    stop: Duration,
}

fn idle_actors(framework: &str, size: usize) -> ActorCosts {
    match framework {
        "proc-daemon" => {
            let executor = Executor::builder()
                .worker_threads(1)
                .build()
                .expect("an executor");
            let spawner = executor.clone();
            let costs = executor
                .spawn_on(0, async move {
                    let before = rss_bytes();
                    let started = Instant::now();
                    let mut actors = Vec::with_capacity(size);
                    for _ in 0..size {
                        actors.push(
                            spawn_on(&spawner, 0, Pinged, SpawnOptions::default())
                                .expect("worker 0"),
                        );
                    }
                    let spawn = started.elapsed();
                    // Let every actor run its `started` hook and park.
                    tokio::task::yield_now().await;
                    let memory = rss_bytes().saturating_sub(before);
                    let asking = Instant::now();
                    for actor in &actors {
                        actor.ask(Ping).await.expect("an answer");
                    }
                    let ask = asking.elapsed();
                    let asked_memory = rss_bytes().saturating_sub(before);
                    let stopping = Instant::now();
                    for actor in &actors {
                        actor.stop();
                    }
                    for actor in &actors {
                        actor.wait_for_stop().await;
                    }
                    let stop = stopping.elapsed();
                    ActorCosts {
                        spawn,
                        memory,
                        ask,
                        asked_memory,
                        stop,
                    }
                })
                .expect("worker 0")
                .join()
                .expect("the measurement");
            executor
                .shutdown(Duration::from_secs(10))
                .expect("the executor stops");
            costs
        }
        "kameo" => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime")
            .block_on(async {
                let before = rss_bytes();
                let started = Instant::now();
                let actors: Vec<_> = (0..size)
                    .map(|_| <KPinged as kameo::actor::Spawn>::spawn(KPinged))
                    .collect();
                let spawn = started.elapsed();
                tokio::task::yield_now().await;
                let memory = rss_bytes().saturating_sub(before);
                let asking = Instant::now();
                for actor in &actors {
                    actor.ask(KPing).await.expect("an answer");
                }
                let ask = asking.elapsed();
                let asked_memory = rss_bytes().saturating_sub(before);
                let stopping = Instant::now();
                for actor in &actors {
                    let _ = actor.stop_gracefully().await;
                }
                for actor in &actors {
                    actor.wait_for_shutdown().await;
                }
                let stop = stopping.elapsed();
                ActorCosts {
                    spawn,
                    memory,
                    ask,
                    asked_memory,
                    stop,
                }
            }),
        "actix" => actix::System::new().block_on(async move {
            let alive = Rc::new(StdCell::new(0u64));
            let before = rss_bytes();
            let started = Instant::now();
            let actors: Vec<_> = (0..size)
                .map(|_| {
                    alive.set(alive.get() + 1);
                    actix::Actor::start(APinged(alive.clone()))
                })
                .collect();
            let spawn = started.elapsed();
            tokio::task::yield_now().await;
            let memory = rss_bytes().saturating_sub(before);
            let asking = Instant::now();
            for actor in &actors {
                actor.send(APing).await.expect("an answer");
            }
            let ask = asking.elapsed();
            let asked_memory = rss_bytes().saturating_sub(before);
            let stopping = Instant::now();
            // An actix actor stops once its last address is gone.
            drop(actors);
            while alive.get() > 0 {
                tokio::task::yield_now().await;
            }
            let stop = stopping.elapsed();
            ActorCosts {
                spawn,
                memory,
                ask,
                asked_memory,
                stop,
            }
        }),
        other => panic!("unknown framework {other}"),
    }
}

// ---- a supervision tree ----

fn tree(size: usize) -> serde_json::Value {
    assert!(size >= 40, "the tree needs at least 40 children");
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
                    root.child(format!("c{n}"), move || CountedChild::new(starts.clone()))
                        .restart(RestartPolicy::OnFailure)
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

            // Restart latency, twice over the same 20 children: the first
            // `Fail` is the first message each of them receives, so it
            // also allocates the first segment of its mailbox (in a heap
            // of N children, often on fresh pages); the second is a
            // restart and nothing else.
            let spread = |k: usize| k * (size - 2) / 19;
            let mut restart_passes = Vec::new();
            for _pass in 0..2 {
                let mut restarts = Vec::new();
                for k in 0..20 {
                    let child = &children[spread(k)];
                    let seen = starts.load(Ordering::Acquire);
                    let told = Instant::now();
                    child.tell(Fail).await.expect("a tell");
                    while starts.load(Ordering::Acquire) == seen {
                        tokio::task::yield_now().await;
                    }
                    restarts.push(told.elapsed());
                }
                restart_passes.push(median_of(&mut restarts));
            }

            // Exit latency: first of the 20 restarted children (their
            // mailboxes have received messages), then of 20 others whose
            // `Quit` is their first message.
            let mut exit_passes = Vec::new();
            for offset in [0, 1] {
                let mut exits = Vec::new();
                for k in 0..20 {
                    let child = &children[spread(k) + offset];
                    let told = Instant::now();
                    child.tell(Quit).await.expect("a tell");
                    child.wait_for_stop().await;
                    exits.push(told.elapsed());
                }
                exit_passes.push(median_of(&mut exits));
            }

            drop(children);
            let stopping = Instant::now();
            root.stop();
            root.wait_for_stop().await;
            let shutdown = stopping.elapsed();
            (
                serde_json::json!({
                    "size": size,
                    "spawn_us": us(spawn) / size as f64,
                    "memory_bytes": memory,
                    "first_message_restart_us": us(restart_passes[0]),
                    "restart_us": us(restart_passes[1]),
                    "exit_us": us(exit_passes[0]),
                    "first_message_exit_us": us(exit_passes[1]),
                    "shutdown_us": us(shutdown) / size as f64,
                }),
                root,
            )
        })
        .join()
        .expect("the measurement");
    drop(root);
    executor
        .shutdown(Duration::from_secs(10))
        .expect("the executor stops");
    row
}

/// One run, in this process; prints its JSON line.
fn measure(selector: &str) {
    let mut parts = selector.split(':');
    let (Some(kind), Some(framework), Some(size)) = (parts.next(), parts.next(), parts.next())
    else {
        panic!("{SELECTOR}: kind:framework:size, not {selector}");
    };
    let size: usize = size.parse().expect("a size");
    let row = match kind {
        "actors" => {
            let costs = idle_actors(framework, size);
            serde_json::json!({
                "size": size,
                "spawn_us": us(costs.spawn) / size as f64,
                "memory_bytes": costs.memory as f64 / size as f64,
                "ask_us": us(costs.ask) / size as f64,
                "asked_memory_bytes": costs.asked_memory as f64 / size as f64,
                "stop_us": us(costs.stop) / size as f64,
            })
        }
        "tree" => tree(size),
        other => panic!("unknown kind {other}"),
    };
    println!("{row}");
}

/// Runs this binary again for one measurement, and reads its JSON line.
fn run_fresh(kind: &str, framework: &str, size: usize) -> serde_json::Value {
    let out = Command::new(std::env::current_exe().expect("this binary"))
        .env(SELECTOR, format!("{kind}:{framework}:{size}"))
        .output()
        .expect("run a size");
    assert!(out.status.success(), "{kind} {framework} {size}: {out:?}");
    serde_json::from_slice(&out.stdout).expect("the run's JSON line")
}

fn main() {
    if let Ok(selector) = std::env::var(SELECTOR) {
        measure(&selector);
        return;
    }
    let sizes: Vec<usize> = arg_value("--sizes")
        .unwrap_or_else(|| "1000,10000,100000".to_owned())
        .split(',')
        .map(|n| n.trim().parse().expect("--sizes: numbers"))
        .collect();
    let number = |row: &serde_json::Value, key: &str| row[key].as_f64().unwrap_or(f64::NAN);

    println!("idle actors on one thread, a fresh process per framework and N (per actor)");
    let mut actors = serde_json::Map::new();
    for framework in PEERS {
        let mut rows = Vec::new();
        for &size in &sizes {
            let row = run_fresh("actors", framework, size);
            println!(
                "  {framework:<12} N = {size:>8}: spawn {:7.3} µs   memory {:6.0} B   ask {:7.3} µs   memory after {:6.0} B   stop {:7.3} µs",
                number(&row, "spawn_us"),
                number(&row, "memory_bytes"),
                number(&row, "ask_us"),
                number(&row, "asked_memory_bytes"),
                number(&row, "stop_us"),
            );
            rows.push(row);
        }
        actors.insert(framework.to_owned(), serde_json::Value::Array(rows));
    }

    println!("one supervisor with N children, a fresh process per N");
    let mut tree_rows = Vec::new();
    for &size in &sizes {
        let row = run_fresh("tree", "proc-daemon", size);
        println!(
            "  N = {size:>8}: spawn {:8.2} µs/child   memory {:6.0} B/child   restart {:8.1} µs (first message {:8.1})   exit {:8.1} µs (first message {:8.1})   shutdown {:8.2} µs/child",
            number(&row, "spawn_us"),
            number(&row, "memory_bytes"),
            number(&row, "restart_us"),
            number(&row, "first_message_restart_us"),
            number(&row, "exit_us"),
            number(&row, "first_message_exit_us"),
            number(&row, "shutdown_us"),
        );
        tree_rows.push(row);
    }
    write_json_results(&serde_json::json!({
        "actors": actors,
        "tree": tree_rows,
    }));
}
