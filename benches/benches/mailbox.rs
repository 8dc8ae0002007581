//! Mailbox throughput, side by side with crossbeam-channel, tokio mpsc and
//! `crossbeam_queue::SegQueue`/`ArrayQueue`, in one run.
//!
//! ```text
//! cargo bench -p proc-daemon-benches --bench mailbox
//! ```
//!
//! Every iteration moves `MESSAGES` `u64`s from 1 or 2 producers to one
//! consumer, through a bounded(1024) or an unbounded queue, and the time is
//! divided by the number of messages.
//!
//! - `blocking`: producers and the consumer are OS threads; the consumer
//!   blocks (parks) when the queue is empty, producers block when it is full.
//!   The crossbeam-queue rows cannot park: their consumer spins, so they are
//!   a floor for the raw queue, not a like-for-like channel.
//! - `async`: producers and the consumer are tasks on a tokio multi-thread
//!   runtime with 2 workers, the consumer awaiting `recv`.
//!
//! Rows: `proc-daemon` (the lock-free mailbox), `proc-daemon-mutex` (the
//! `lock_free = false` reference), `crossbeam-channel`, `tokio-mpsc`,
//! `segqueue`/`arrayqueue`.

use std::hint::black_box;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use proc_daemon::actors::mailbox::{self, Backend, Capacity};

const MESSAGES: u64 = 1_000_000;
const BOUND: usize = 1024;

#[derive(Clone, Copy, Debug)]
enum Bound {
    Bounded,
    Unbounded,
}

impl Bound {
    fn name(self) -> &'static str {
        match self {
            Bound::Bounded => "bounded1024",
            Bound::Unbounded => "unbounded",
        }
    }
}

/// Splits `MESSAGES` between `producers`.
fn share(producers: u64) -> u64 {
    MESSAGES / producers
}

/// The blocking harness every channel row shares: `producers` threads each
/// send their share through a clone of `tx` with `send`; the calling thread
/// receives with `recv` until it returns `None` (all senders gone). Returns
/// the time from the first spawn to the last message.
fn run_blocking<S>(
    producers: u64,
    tx: S,
    send: fn(&S, u64),
    mut recv: impl FnMut() -> Option<u64>,
) -> Duration
where
    S: Clone + Send + 'static,
{
    let start = Instant::now();
    let handles: Vec<_> = (0..producers)
        .map(|_| {
            let tx = tx.clone();
            thread::spawn(move || {
                for i in 0..share(producers) {
                    send(&tx, i);
                }
            })
        })
        .collect();
    drop(tx);
    let mut sum = 0u64;
    while let Some(v) = recv() {
        sum = sum.wrapping_add(v);
    }
    let elapsed = start.elapsed();
    black_box(sum);
    handles.into_iter().for_each(|h| h.join().unwrap());
    elapsed
}

fn proc_daemon_blocking(producers: u64, bound: Bound, backend: Backend) -> Duration {
    let capacity = match bound {
        Bound::Bounded => Capacity::Bounded(BOUND),
        Bound::Unbounded => Capacity::Unbounded,
    };
    let (tx, mut rx) = mailbox::channel::<u64>(capacity, backend);
    run_blocking(
        producers,
        tx,
        |tx, i| tx.blocking_send(i).unwrap(),
        || rx.blocking_recv(),
    )
}

fn crossbeam_blocking(producers: u64, bound: Bound) -> Duration {
    let (tx, rx) = match bound {
        Bound::Bounded => crossbeam_channel::bounded::<u64>(BOUND),
        Bound::Unbounded => crossbeam_channel::unbounded::<u64>(),
    };
    run_blocking(
        producers,
        tx,
        |tx, i| tx.send(i).unwrap(),
        || rx.recv().ok(),
    )
}

fn tokio_blocking(producers: u64, bound: Bound) -> Duration {
    match bound {
        Bound::Bounded => {
            let (tx, mut rx) = tokio::sync::mpsc::channel::<u64>(BOUND);
            run_blocking(
                producers,
                tx,
                |tx, i| tx.blocking_send(i).unwrap(),
                || rx.blocking_recv(),
            )
        }
        Bound::Unbounded => {
            let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<u64>();
            run_blocking(
                producers,
                tx,
                |tx, i| tx.send(i).unwrap(),
                || rx.blocking_recv(),
            )
        }
    }
}

/// crossbeam-queue has no blocking or closing: producers spin while full,
/// the consumer spins while empty and counts messages to know when to stop.
fn crossbeam_queue_spinning(producers: u64, bound: Bound) -> Duration {
    enum Queue {
        Seg(crossbeam_queue::SegQueue<u64>),
        Array(crossbeam_queue::ArrayQueue<u64>),
    }
    let queue = Arc::new(match bound {
        Bound::Bounded => Queue::Array(crossbeam_queue::ArrayQueue::new(BOUND)),
        Bound::Unbounded => Queue::Seg(crossbeam_queue::SegQueue::new()),
    });
    let start = Instant::now();
    let handles: Vec<_> = (0..producers)
        .map(|_| {
            let queue = queue.clone();
            thread::spawn(move || {
                for i in 0..share(producers) {
                    match &*queue {
                        Queue::Seg(q) => q.push(i),
                        Queue::Array(q) => {
                            let mut v = i;
                            while let Err(back) = q.push(v) {
                                v = back;
                                std::hint::spin_loop();
                            }
                        }
                    }
                }
            })
        })
        .collect();
    let total = share(producers) * producers;
    let mut sum = 0u64;
    let mut received = 0;
    while received < total {
        let popped = match &*queue {
            Queue::Seg(q) => q.pop(),
            Queue::Array(q) => q.pop(),
        };
        match popped {
            Some(v) => {
                sum = sum.wrapping_add(v);
                received += 1;
            }
            None => std::hint::spin_loop(),
        }
    }
    let elapsed = start.elapsed();
    black_box(sum);
    handles.into_iter().for_each(|h| h.join().unwrap());
    elapsed
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn proc_daemon_async(
    rt: &tokio::runtime::Runtime,
    producers: u64,
    bound: Bound,
    backend: Backend,
) -> Duration {
    let capacity = match bound {
        Bound::Bounded => Capacity::Bounded(BOUND),
        Bound::Unbounded => Capacity::Unbounded,
    };
    rt.block_on(async move {
        let (tx, mut rx) = mailbox::channel::<u64>(capacity, backend);
        let start = Instant::now();
        for _ in 0..producers {
            let tx = tx.clone();
            tokio::spawn(async move {
                for i in 0..share(producers) {
                    tx.send(i).await.unwrap();
                }
            });
        }
        drop(tx);
        let consumer = tokio::spawn(async move {
            let mut sum = 0u64;
            while let Some(v) = rx.recv().await {
                sum = sum.wrapping_add(v);
            }
            sum
        });
        black_box(consumer.await.unwrap());
        start.elapsed()
    })
}

fn tokio_async(rt: &tokio::runtime::Runtime, producers: u64, bound: Bound) -> Duration {
    rt.block_on(async move {
        let start = Instant::now();
        let consumer = match bound {
            Bound::Bounded => {
                let (tx, mut rx) = tokio::sync::mpsc::channel::<u64>(BOUND);
                for _ in 0..producers {
                    let tx = tx.clone();
                    tokio::spawn(async move {
                        for i in 0..share(producers) {
                            tx.send(i).await.unwrap();
                        }
                    });
                }
                tokio::spawn(async move {
                    let mut sum = 0u64;
                    while let Some(v) = rx.recv().await {
                        sum = sum.wrapping_add(v);
                    }
                    sum
                })
            }
            Bound::Unbounded => {
                let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<u64>();
                for _ in 0..producers {
                    let tx = tx.clone();
                    tokio::spawn(async move {
                        for i in 0..share(producers) {
                            tx.send(i).unwrap();
                        }
                    });
                }
                tokio::spawn(async move {
                    let mut sum = 0u64;
                    while let Some(v) = rx.recv().await {
                        sum = sum.wrapping_add(v);
                    }
                    sum
                })
            }
        };
        black_box(consumer.await.unwrap());
        start.elapsed()
    })
}

/// Runs `one` for each iteration criterion asks for; `one` moves
/// `MESSAGES` messages and returns the time it took.
fn per_message(iters: u64, mut one: impl FnMut() -> Duration) -> Duration {
    (0..iters).map(|_| one()).sum()
}

fn blocking(c: &mut Criterion) {
    for producers in [1u64, 2] {
        for bound in [Bound::Bounded, Bound::Unbounded] {
            let mut group =
                c.benchmark_group(format!("mailbox/blocking/{producers}p1c/{}", bound.name()));
            group.throughput(Throughput::Elements(MESSAGES));
            group.sample_size(10);
            group.warm_up_time(Duration::from_secs(1));
            group.measurement_time(Duration::from_secs(4));
            group.bench_function(BenchmarkId::from_parameter("proc-daemon"), |b| {
                b.iter_custom(|iters| {
                    per_message(iters, || {
                        proc_daemon_blocking(producers, bound, Backend::LockFree)
                    })
                })
            });
            group.bench_function(BenchmarkId::from_parameter("proc-daemon-mutex"), |b| {
                b.iter_custom(|iters| {
                    per_message(iters, || {
                        proc_daemon_blocking(producers, bound, Backend::Mutex)
                    })
                })
            });
            group.bench_function(BenchmarkId::from_parameter("crossbeam-channel"), |b| {
                b.iter_custom(|iters| per_message(iters, || crossbeam_blocking(producers, bound)))
            });
            group.bench_function(BenchmarkId::from_parameter("tokio-mpsc"), |b| {
                b.iter_custom(|iters| per_message(iters, || tokio_blocking(producers, bound)))
            });
            let queue_name = match bound {
                Bound::Bounded => "arrayqueue-spinning",
                Bound::Unbounded => "segqueue-spinning",
            };
            group.bench_function(BenchmarkId::from_parameter(queue_name), |b| {
                b.iter_custom(|iters| {
                    per_message(iters, || crossbeam_queue_spinning(producers, bound))
                })
            });
            group.finish();
        }
    }
}

fn asynchronous(c: &mut Criterion) {
    let rt = runtime();
    for producers in [1u64, 2] {
        for bound in [Bound::Bounded, Bound::Unbounded] {
            let mut group =
                c.benchmark_group(format!("mailbox/async/{producers}p1c/{}", bound.name()));
            group.throughput(Throughput::Elements(MESSAGES));
            group.sample_size(10);
            group.warm_up_time(Duration::from_secs(1));
            group.measurement_time(Duration::from_secs(4));
            group.bench_function(BenchmarkId::from_parameter("proc-daemon"), |b| {
                b.iter_custom(|iters| {
                    per_message(iters, || {
                        proc_daemon_async(&rt, producers, bound, Backend::LockFree)
                    })
                })
            });
            group.bench_function(BenchmarkId::from_parameter("proc-daemon-mutex"), |b| {
                b.iter_custom(|iters| {
                    per_message(iters, || {
                        proc_daemon_async(&rt, producers, bound, Backend::Mutex)
                    })
                })
            });
            group.bench_function(BenchmarkId::from_parameter("tokio-mpsc"), |b| {
                b.iter_custom(|iters| per_message(iters, || tokio_async(&rt, producers, bound)))
            });
            group.finish();
        }
    }
}

criterion_group!(benches, blocking, asynchronous);
criterion_main!(benches);
