//! The executor side by side with tokio's multi-thread runtime, in one run,
//! both with 2 workers.
//!
//! ```text
//! cargo bench -p proc-daemon-benches --bench executor
//! ```
//!
//! - `spawn`: a task spawns empty tasks and awaits them all; time per task.
//!   proc-daemon places them round-robin over its workers; tokio places
//!   them on the spawning worker's queue, from which the other may steal.
//! - `ping_pong_same_worker`: two tasks bounce a counter over two bounded(1)
//!   mailboxes; time per round trip. proc-daemon puts both tasks on worker
//!   0. tokio cannot place a task, so its row spawns the second task from
//!   inside the first, which queues it on the same worker; whether the idle
//!   worker steals it is tokio's choice, and part of what is measured.
//! - `ping_pong_cross_worker`: the same, with proc-daemon's tasks on workers
//!   0 and 1. The `tokio-multi-thread` row spawns both tasks from outside
//!   the runtime; tokio moves a woken task to the waking worker, so its two
//!   tasks mostly share a thread. The `tokio-current-thread-pair` row is
//!   the like-for-like peer: two tokio current-thread runtimes, each on its
//!   own thread, one task on each.
//!
//! Both executors use the same channel (proc-daemon's mailbox), so the rows
//! differ only in the executor.

use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use proc_daemon::actors::executor::Executor;
use proc_daemon::actors::mailbox::{self, Receiver, Sender};
use proc_daemon::actors::support::block_on as futures_block_on;

const WORKERS: usize = 2;

/// proc-daemon's executor as it is meant to run: one worker per CPU, each
/// pinned to its CPU. (tokio's runtime has no pinning.)
fn proc_daemon_executor() -> Executor {
    Executor::builder()
        .worker_threads(WORKERS)
        .thread_pinning(true)
        .build()
        .expect("executor")
}

fn tokio_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(WORKERS)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

fn spawn(c: &mut Criterion) {
    let mut group = c.benchmark_group("spawn");
    group.throughput(Throughput::Elements(1));

    let executor = proc_daemon_executor();
    group.bench_function("proc-daemon", |b| {
        b.iter_custom(|iters| {
            let exec = executor.clone();
            executor
                .spawn_on(0, async move {
                    let start = Instant::now();
                    let handles: Vec<_> = (0..iters).map(|_| exec.spawn(async {})).collect();
                    for handle in handles {
                        handle.await.unwrap();
                    }
                    start.elapsed()
                })
                .unwrap()
                .join()
                .unwrap()
        });
    });
    executor.shutdown(Duration::from_secs(5)).unwrap();

    let runtime = tokio_runtime();
    group.bench_function("tokio-multi-thread", |b| {
        b.iter_custom(|iters| {
            runtime
                .block_on(runtime.spawn(async move {
                    let start = Instant::now();
                    let handles: Vec<_> = (0..iters).map(|_| tokio::spawn(async {})).collect();
                    for handle in handles {
                        handle.await.unwrap();
                    }
                    start.elapsed()
                }))
                .unwrap()
        });
    });
    group.finish();
}

/// Answers every number with the next one until the mailbox closes.
async fn pong(mut inbox: Receiver<u64>, reply: Sender<u64>) {
    while let Some(n) = inbox.recv().await {
        if reply.send(n + 1).await.is_err() {
            return;
        }
    }
}

/// Sends `round_trips` numbers to `to_pong` and waits for each answer.
async fn ping(round_trips: u64, to_pong: Sender<u64>, mut inbox: Receiver<u64>) -> Duration {
    let start = Instant::now();
    let mut n = 0;
    for _ in 0..round_trips {
        to_pong.send(n).await.unwrap();
        n = inbox.recv().await.unwrap();
    }
    assert_eq!(n, round_trips);
    start.elapsed()
}

/// The two ends of a ping-pong: (ping's sender and inbox, pong's).
type PingPong = ((Sender<u64>, Receiver<u64>), (Receiver<u64>, Sender<u64>));

fn ping_pong_channels() -> PingPong {
    let (to_pong, pong_inbox) = mailbox::bounded(1);
    let (to_ping, ping_inbox) = mailbox::bounded(1);
    ((to_pong, ping_inbox), (pong_inbox, to_ping))
}

/// A tokio current-thread runtime driven by its own thread until dropped.
struct RuntimeThread {
    handle: tokio::runtime::Handle,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl RuntimeThread {
    fn start() -> Self {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("tokio runtime");
        let handle = runtime.handle().clone();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let _ = runtime.block_on(stopped);
        });
        RuntimeThread {
            handle,
            stop: Some(stop),
            thread: Some(thread),
        }
    }
}

impl Drop for RuntimeThread {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            thread.join().expect("runtime thread");
        }
    }
}

fn ping_pong(c: &mut Criterion) {
    let executor = proc_daemon_executor();
    let runtime = tokio_runtime();
    for (group_name, pong_worker) in [("ping_pong_same_worker", 0), ("ping_pong_cross_worker", 1)] {
        let mut group = c.benchmark_group(group_name);
        group.throughput(Throughput::Elements(1));
        group.bench_function("proc-daemon", |b| {
            b.iter_custom(|iters| {
                let ((to_pong, ping_inbox), (pong_inbox, to_ping)) = ping_pong_channels();
                let ponger = executor
                    .spawn_on(pong_worker, pong(pong_inbox, to_ping))
                    .unwrap();
                let elapsed = executor
                    .spawn_on(0, ping(iters, to_pong, ping_inbox))
                    .unwrap()
                    .join()
                    .unwrap();
                ponger.join().unwrap();
                elapsed
            });
        });
        group.bench_function("tokio-multi-thread", |b| {
            b.iter_custom(|iters| {
                let ((to_pong, ping_inbox), (pong_inbox, to_ping)) = ping_pong_channels();
                let elapsed = if pong_worker == 0 {
                    // Spawned from inside the pinging task: queued on its
                    // worker.
                    runtime.block_on(runtime.spawn(async move {
                        let ponger = tokio::spawn(pong(pong_inbox, to_ping));
                        let elapsed = ping(iters, to_pong, ping_inbox).await;
                        ponger.await.unwrap();
                        elapsed
                    }))
                } else {
                    let ponger = runtime.spawn(pong(pong_inbox, to_ping));
                    let elapsed = runtime.block_on(runtime.spawn(ping(iters, to_pong, ping_inbox)));
                    runtime.block_on(ponger).unwrap();
                    elapsed
                };
                elapsed.unwrap()
            });
        });
        if pong_worker == 1 {
            let (first, second) = (RuntimeThread::start(), RuntimeThread::start());
            group.bench_function("tokio-current-thread-pair", |b| {
                b.iter_custom(|iters| {
                    let ((to_pong, ping_inbox), (pong_inbox, to_ping)) = ping_pong_channels();
                    let ponger = second.handle.spawn(pong(pong_inbox, to_ping));
                    let pinger = first.handle.spawn(ping(iters, to_pong, ping_inbox));
                    let elapsed = futures_block_on(pinger).unwrap();
                    futures_block_on(ponger).unwrap();
                    elapsed
                });
            });
        }
        group.finish();
    }
    executor.shutdown(Duration::from_secs(5)).unwrap();
}

criterion_group!(benches, spawn, ping_pong);
criterion_main!(benches);
