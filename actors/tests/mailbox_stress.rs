//! Stress on real threads: 4 producers × 1M messages into one receiver,
//! bounded and unbounded, checked message by message and by checksum.
//!
//! Each run is bounded in time by a watchdog, so a lost wake-up fails the
//! test instead of hanging it.

use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use proc_daemon_actors::mailbox::{self, Backend, Capacity};

const PRODUCERS: u64 = 4;
const PER_PRODUCER: u64 = 1_000_000;
const TIME_LIMIT: Duration = Duration::from_secs(120);

/// Message `i` of producer `p`.
fn encode(p: u64, i: u64) -> u64 {
    (p << 32) | i
}

fn run(capacity: Capacity, backend: Backend, async_receiver: bool) {
    let (done_tx, done_rx) = mpsc::channel();
    let worker = thread::spawn(move || {
        let (tx, mut rx) = mailbox::channel(capacity, backend);
        let producers: Vec<_> = (0..PRODUCERS)
            .map(|p| {
                let tx = tx.clone();
                thread::spawn(move || {
                    for i in 0..PER_PRODUCER {
                        tx.blocking_send(encode(p, i)).expect("receiver alive");
                    }
                })
            })
            .collect();
        drop(tx);

        let mut next = [0u64; PRODUCERS as usize];
        let mut checksum = 0u64;
        let mut count = 0u64;
        let mut check = |msg: u64| {
            let (p, i) = (msg >> 32, msg & 0xffff_ffff);
            assert_eq!(i, next[p as usize], "producer {p}: message out of order");
            next[p as usize] += 1;
            checksum = checksum.wrapping_add(msg);
            count += 1;
        };
        if async_receiver {
            let mut batch = Vec::with_capacity(256);
            while proc_daemon_actors::support::block_on(rx.recv_many(&mut batch, 256)) > 0 {
                batch.drain(..).for_each(&mut check);
            }
        } else {
            while let Some(msg) = rx.blocking_recv() {
                check(msg);
            }
        }
        for producer in producers {
            producer.join().expect("producer panicked");
        }
        let expected: u64 = (0..PRODUCERS)
            .flat_map(|p| (0..PER_PRODUCER).map(move |i| encode(p, i)))
            .fold(0u64, u64::wrapping_add);
        assert_eq!(count, PRODUCERS * PER_PRODUCER);
        assert_eq!(checksum, expected);
        done_tx.send(()).ok();
    });
    match done_rx.recv_timeout(TIME_LIMIT) {
        Ok(()) => worker.join().unwrap(),
        Err(mpsc::RecvTimeoutError::Disconnected) => {
            // The worker panicked: re-raise its panic.
            if let Err(panic) = worker.join() {
                std::panic::resume_unwind(panic);
            }
        }
        Err(mpsc::RecvTimeoutError::Timeout) => {
            panic!("{capacity:?} {backend:?}: not done within {TIME_LIMIT:?} (lost wake-up?)")
        }
    }
}

#[test]
fn unbounded_four_producers_a_million_each() {
    run(Capacity::Unbounded, Backend::LockFree, false);
}

#[test]
fn bounded_four_producers_a_million_each() {
    run(Capacity::Bounded(1024), Backend::LockFree, false);
}

#[test]
fn unbounded_with_batched_receive() {
    run(Capacity::Unbounded, Backend::LockFree, true);
}

#[test]
fn bounded_small_ring_with_batched_receive() {
    run(Capacity::Bounded(8), Backend::LockFree, true);
}

#[test]
fn mutex_backend_bounded() {
    run(Capacity::Bounded(1024), Backend::Mutex, false);
}
