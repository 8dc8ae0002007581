//! `coord::chan` next to `crossbeam-channel`, side by side in one run:
//! per message, from the first send to the last receive.
//!
//! - `chan_spsc`: one producer thread sends, the bench thread receives
//!   with `try_recv` (spinning, yielding when empty).
//! - `chan_mpmc`: two producer threads and two consumer threads (the
//!   machine has two cores, so the four share them).
//!
//! Rows: `locked` (the facade's default backend, a `Mutex<VecDeque>`),
//! `lockfree` (`SegQueue`, feature `lockfree-coordination`), and
//! `crossbeam-channel` 0.5's `unbounded` with its `try_recv`.

use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use proc_daemon::coord::chan;

/// The three channels as one shape: a sender and a `try_recv`.
trait Channel: Send + 'static {
    type Tx: Clone + Send + 'static;
    type Rx: Clone + Send + 'static;
    fn make() -> (Self::Tx, Self::Rx);
    fn send(tx: &Self::Tx, value: u64);
    /// `Some` with a value, `None` when empty; panics when disconnected
    /// before the count is reached.
    fn try_recv(rx: &Self::Rx) -> Option<u64>;
}

struct Locked;
impl Channel for Locked {
    type Tx = chan::Sender<u64>;
    type Rx = chan::Receiver<u64>;
    fn make() -> (Self::Tx, Self::Rx) {
        chan::locked::unbounded()
    }
    fn send(tx: &Self::Tx, value: u64) {
        tx.send(value).expect("a receiver");
    }
    fn try_recv(rx: &Self::Rx) -> Option<u64> {
        rx.try_recv().ok()
    }
}

struct LockFree;
impl Channel for LockFree {
    type Tx = chan::Sender<u64>;
    type Rx = chan::Receiver<u64>;
    fn make() -> (Self::Tx, Self::Rx) {
        chan::lockfree::unbounded()
    }
    fn send(tx: &Self::Tx, value: u64) {
        tx.send(value).expect("a receiver");
    }
    fn try_recv(rx: &Self::Rx) -> Option<u64> {
        rx.try_recv().ok()
    }
}

struct Crossbeam;
impl Channel for Crossbeam {
    type Tx = crossbeam_channel::Sender<u64>;
    type Rx = crossbeam_channel::Receiver<u64>;
    fn make() -> (Self::Tx, Self::Rx) {
        crossbeam_channel::unbounded()
    }
    fn send(tx: &Self::Tx, value: u64) {
        tx.send(value).expect("a receiver");
    }
    fn try_recv(rx: &Self::Rx) -> Option<u64> {
        rx.try_recv().ok()
    }
}

/// `producers` threads send `iters` messages in all; `consumers` threads
/// (the first is the calling thread) receive them all. Time from the
/// start to the last message received.
fn run<C: Channel>(producers: u64, consumers: u64, iters: u64) -> Duration {
    let (tx, rx) = C::make();
    let per_producer = iters / producers;
    let total = per_producer * producers;
    let received = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let start = Instant::now();
    let senders: Vec<_> = (0..producers)
        .map(|_| {
            let tx = tx.clone();
            std::thread::spawn(move || {
                for i in 0..per_producer {
                    C::send(&tx, i);
                }
            })
        })
        .collect();
    let drain = move |rx: C::Rx, received: std::sync::Arc<std::sync::atomic::AtomicU64>| {
        use std::sync::atomic::Ordering;
        while received.load(Ordering::Relaxed) < total {
            match C::try_recv(&rx) {
                Some(_) => {
                    received.fetch_add(1, Ordering::Relaxed);
                }
                None => std::thread::yield_now(),
            }
        }
    };
    let helpers: Vec<_> = (1..consumers)
        .map(|_| {
            let (rx, received) = (rx.clone(), received.clone());
            std::thread::spawn(move || drain(rx, received))
        })
        .collect();
    drain(rx, received);
    let elapsed = start.elapsed();
    for thread in senders.into_iter().chain(helpers) {
        thread.join().expect("thread");
    }
    elapsed
}

fn bench(c: &mut Criterion) {
    for (group, producers, consumers) in [("chan_spsc", 1, 1), ("chan_mpmc", 2, 2)] {
        let mut group = c.benchmark_group(group);
        group.throughput(Throughput::Elements(1));
        group.bench_function("locked", |b| {
            b.iter_custom(|iters| run::<Locked>(producers, consumers, iters.max(producers)))
        });
        group.bench_function("lockfree", |b| {
            b.iter_custom(|iters| run::<LockFree>(producers, consumers, iters.max(producers)))
        });
        group.bench_function("crossbeam-channel", |b| {
            b.iter_custom(|iters| run::<Crossbeam>(producers, consumers, iters.max(producers)))
        });
        group.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
