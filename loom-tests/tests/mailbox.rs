//! loom models of the lock-free mailboxes.
//!
//! Run with:
//!
//! ```text
//! RUSTFLAGS="--cfg loom" CARGO_TARGET_DIR=target/loom LOOM_MAX_PREEMPTIONS=3 \
//!     cargo test -p proc-daemon-loom-tests --release --test mailbox
//! ```
//!
//! Under `--cfg loom` a block of the unbounded mailbox has two slots, so
//! three messages already cross a block boundary; a segment of the bounded
//! ring has two slots too, so a `bounded(2)` ring is one segment, which
//! every model's first send allocates (with its table) under the race.
#![cfg(loom)]

use loom::future::block_on;
use loom::sync::Arc;
use loom::sync::atomic::{AtomicUsize, Ordering};
use loom::thread;
use proc_daemon_actors::mailbox::{self, Backend, Capacity, TryRecvError, TrySendError};

/// The lock-free flavours; the bounded one small enough to fill and to
/// wrap.
fn lock_free_kinds() -> [Capacity; 2] {
    [Capacity::Unbounded, Capacity::Bounded(2)]
}

/// Runs `f` under loom. The branch limit is raised above loom's default of
/// 1000: the mailbox waits out a sender that has claimed a slot but not yet
/// written it (a bounded spin that yields to loom every round), and each
/// round of that wait is a branch.
fn model(f: impl Fn() + Sync + Send + 'static) {
    let mut builder = loom::model::Builder::new();
    builder.max_branches = 20_000;
    builder.check(f);
}

/// Like [`model`], with at most two preemptions. The two-producer models
/// with a *parking* receiver take 57 s and 92 s at two on a 2-core machine
/// and did not finish within 15 minutes at three (measured 2026-11-26), so
/// they run at two, as an extra. The same race at three preemptions is
/// `two_producers_one_polling_consumer_*` (44 s for both), whose receiver
/// polls instead of parking; every model but these two runs at
/// `LOOM_MAX_PREEMPTIONS` (3 in CI).
fn model_two_preemptions(f: impl Fn() + Sync + Send + 'static) {
    let mut builder = loom::model::Builder::new();
    builder.max_branches = 20_000;
    builder.preemption_bound = Some(2);
    builder.check(f);
}

/// A message that counts its drops.
struct Counted(Arc<AtomicUsize>);

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// Producer 0 sends `(0, 0)` and `(0, 1)`, producer 1 sends `(1, 0)`, each
/// on its own thread, then drops its sender.
fn spawn_two_producers(tx: mailbox::Sender<(u32, u32)>) -> Vec<thread::JoinHandle<()>> {
    [(0u32, 2u32), (1, 1)]
        .into_iter()
        .map(|(p, count)| {
            let tx = tx.clone();
            thread::spawn(move || {
                for i in 0..count {
                    tx.try_send((p, i)).unwrap();
                }
            })
        })
        .collect()
}

/// Checks each producer's messages arrive in the order it sent them.
#[derive(Default)]
struct PerProducerOrder {
    next: [u32; 2],
}

impl PerProducerOrder {
    fn check(&mut self, (p, i): (u32, u32)) {
        assert_eq!(i, self.next[p as usize], "producer {p} out of order");
        self.next[p as usize] += 1;
    }

    fn assert_all_received(&self) {
        assert_eq!(self.next, [2, 1], "messages lost");
    }
}

/// Producer 0 sends two messages and producer 1 one, while the receiver
/// parks and wakes: nothing is lost and each producer's order holds.
fn two_producers_one_consumer(capacity: Capacity) {
    model_two_preemptions(move || {
        let (tx, mut rx) = mailbox::channel(capacity, Backend::LockFree);
        let producers = spawn_two_producers(tx);
        let mut order = PerProducerOrder::default();
        while let Some(msg) = block_on(rx.recv()) {
            order.check(msg);
        }
        order.assert_all_received();
        for producer in producers {
            producer.join().unwrap();
        }
    });
}

/// The same race at the full preemption bound: producer 0 sends two
/// messages and producer 1 one, while the receiver polls with `try_recv`
/// alongside them, then drains after they finish. Without the parking
/// receiver the model is small enough for `LOOM_MAX_PREEMPTIONS=3`; the
/// wake-up itself is covered by `a_parked_receiver_is_woken_by_a_send`.
fn two_producers_one_polling_consumer(capacity: Capacity) {
    model(move || {
        let (tx, mut rx) = mailbox::channel(capacity, Backend::LockFree);
        let producers = spawn_two_producers(tx);
        let mut order = PerProducerOrder::default();
        // Concurrent phase: a bounded number of polls racing the producers.
        for _ in 0..3 {
            match rx.try_recv() {
                Ok(msg) => order.check(msg),
                Err(TryRecvError::Empty) => {}
                Err(TryRecvError::Closed) => break,
            }
        }
        for producer in producers {
            producer.join().unwrap();
        }
        // Every sender is gone: the rest is queued and then the mailbox is
        // closed. An `Empty` here would be a lost message.
        loop {
            match rx.try_recv() {
                Ok(msg) => order.check(msg),
                Err(TryRecvError::Closed) => break,
                Err(TryRecvError::Empty) => panic!("empty but not closed after every sender left"),
            }
        }
        order.assert_all_received();
    });
}

#[test]
fn two_producers_one_polling_consumer_unbounded() {
    two_producers_one_polling_consumer(Capacity::Unbounded);
}

#[test]
fn two_producers_one_polling_consumer_bounded() {
    two_producers_one_polling_consumer(Capacity::Bounded(3));
}

#[test]
fn two_producers_one_consumer_unbounded() {
    // The two producers also race to link the first block, and three
    // messages cross into a second one.
    two_producers_one_consumer(Capacity::Unbounded);
}

#[test]
fn two_producers_one_consumer_bounded() {
    two_producers_one_consumer(Capacity::Bounded(3));
}

#[test]
fn a_send_racing_close_is_received_or_handed_back_never_both() {
    for capacity in lock_free_kinds() {
        model(move || {
            let (tx, mut rx) = mailbox::channel(capacity, Backend::LockFree);
            let producer = thread::spawn(move || match tx.try_send(7u32) {
                Ok(()) => None,
                Err(TrySendError::Closed(msg)) => Some(msg),
                Err(TrySendError::Full(_)) => panic!("an empty mailbox is not full"),
            });
            rx.close();
            let mut received = Vec::new();
            while let Some(msg) = block_on(rx.recv()) {
                received.push(msg);
            }
            let handed_back = producer.join().unwrap();
            match handed_back {
                Some(7) => assert!(received.is_empty(), "handed back and received"),
                None => assert_eq!(received, vec![7], "sent but never received"),
                Some(other) => panic!("handed back {other}"),
            }
        });
    }
}

#[test]
fn dropping_the_receiver_with_messages_queued_drops_each_once() {
    for capacity in lock_free_kinds() {
        model(move || {
            let drops = Arc::new(AtomicUsize::new(0));
            let (tx, rx) = mailbox::channel(capacity, Backend::LockFree);
            let sent = {
                let drops = drops.clone();
                thread::spawn(move || {
                    let mut sent = 0;
                    for _ in 0..3 {
                        match tx.try_send(Counted(drops.clone())) {
                            Ok(()) => sent += 1,
                            // Handed back: dropped here, counted too.
                            Err(err) => drop(err.into_inner()),
                        }
                    }
                    sent
                })
            };
            drop(rx);
            sent.join().unwrap();
            // Both sides are gone: every message, queued or handed back, has
            // been dropped exactly once.
            assert_eq!(drops.load(Ordering::SeqCst), 3);
        });
    }
}

#[test]
fn a_parked_receiver_is_woken_by_a_send() {
    for capacity in lock_free_kinds() {
        model(move || {
            let (tx, mut rx) = mailbox::channel(capacity, Backend::LockFree);
            let producer = thread::spawn(move || {
                tx.try_send(1u32).unwrap();
                // Keep the mailbox open: only the send may wake the receiver.
                tx
            });
            // loom reports a deadlock if this parks and is never woken.
            assert_eq!(block_on(rx.recv()), Some(1));
            drop(producer.join().unwrap());
        });
    }
}

#[test]
fn a_parked_receiver_is_woken_by_the_last_sender_leaving() {
    for capacity in lock_free_kinds() {
        model(move || {
            let (tx, mut rx) = mailbox::channel::<u32>(capacity, Backend::LockFree);
            let producer = thread::spawn(move || drop(tx));
            assert_eq!(block_on(rx.recv()), None);
            producer.join().unwrap();
        });
    }
}

#[test]
fn bounded_backpressure_wakes_the_parked_sender() {
    model(|| {
        let (tx, mut rx) = mailbox::bounded(1);
        tx.try_send(1u32).unwrap();
        let producer = thread::spawn(move || {
            // Full: this parks until the receiver frees the slot.
            block_on(tx.send(2)).unwrap();
        });
        assert_eq!(block_on(rx.recv()), Some(1));
        assert_eq!(block_on(rx.recv()), Some(2));
        producer.join().unwrap();
        assert_eq!(rx.try_recv(), Err(TryRecvError::Closed));
    });
}

#[test]
fn unbounded_block_boundaries_with_concurrent_producers() {
    // Two slots per block under loom: the receiver has taken the first two
    // messages (and is about to free their block) while two producers race
    // for the last slot of the second block and the link to the third.
    model(|| {
        let (tx, mut rx) = mailbox::unbounded();
        for i in 0..3u32 {
            tx.try_send(i).unwrap();
        }
        assert_eq!(rx.try_recv(), Ok(0));
        let tx2 = tx.clone();
        let first = thread::spawn(move || {
            tx.try_send(3).unwrap();
        });
        let second = thread::spawn(move || {
            tx2.try_send(10).unwrap();
        });
        let mut got = Vec::new();
        while let Some(msg) = block_on(rx.recv()) {
            got.push(msg);
        }
        first.join().unwrap();
        second.join().unwrap();
        got.sort_unstable();
        assert_eq!(got, vec![1, 2, 3, 10]);
    });
}

#[test]
fn two_producers_racing_for_the_last_place_one_wins() {
    // The bound is checked against a tail and the claim is a
    // compare-and-swap of that same tail, so two producers racing for the
    // one place left cannot both take it: one sends, the other gets its
    // message back as `Full`.
    model(|| {
        let (tx, mut rx) = mailbox::bounded(2);
        tx.try_send(0u32).unwrap();
        let tx2 = tx.clone();
        let send = |tx: mailbox::Sender<u32>, value: u32| {
            thread::spawn(move || match tx.try_send(value) {
                Ok(()) => true,
                Err(TrySendError::Full(v)) => {
                    assert_eq!(v, value);
                    false
                }
                Err(TrySendError::Closed(_)) => panic!("closed while a sender lives"),
            })
        };
        let first = send(tx, 1);
        let second = send(tx2, 2);
        let sent = [first.join().unwrap(), second.join().unwrap()];
        assert_eq!(sent.iter().filter(|&&s| s).count(), 1, "{sent:?}");
        let mut got = Vec::new();
        while let Some(msg) = block_on(rx.recv()) {
            got.push(msg);
        }
        assert_eq!(got.len(), 2);
        assert_eq!(got[0], 0);
    });
}

#[test]
fn two_producers_and_a_receiver_on_a_full_mailbox() {
    // As above, with the receiver taking the first message meanwhile:
    // whoever finds room sends, whoever does not gets the message back,
    // and every message sent arrives once.
    model(|| {
        let (tx, mut rx) = mailbox::bounded(2);
        tx.try_send(0u32).unwrap();
        tx.try_send(5u32).unwrap();
        let tx2 = tx.clone();
        let send = |tx: mailbox::Sender<u32>, value: u32| {
            thread::spawn(move || match tx.try_send(value) {
                Ok(()) => true,
                Err(TrySendError::Full(v)) => {
                    assert_eq!(v, value);
                    false
                }
                Err(TrySendError::Closed(_)) => panic!("closed while a sender lives"),
            })
        };
        let first = send(tx, 1);
        let second = send(tx2, 2);
        let mut got = vec![block_on(rx.recv()).unwrap()];
        let sent = [first.join().unwrap(), second.join().unwrap()];
        // One place was freed: at most one of the two found it.
        assert!(sent.iter().filter(|&&s| s).count() <= 1, "{sent:?}");
        while let Some(msg) = block_on(rx.recv()) {
            got.push(msg);
        }
        let mut expected = vec![0, 5];
        for (value, sent) in [(1, sent[0]), (2, sent[1])] {
            if sent {
                expected.push(value);
            }
        }
        assert_eq!(got[..2], [0, 5]);
        got.sort_unstable();
        expected.sort_unstable();
        assert_eq!(got, expected);
    });
}

#[test]
fn a_sender_waiting_on_a_full_ring_takes_the_freed_slot() {
    // bounded(2), full: the parked sender's message goes into the slot the
    // receiver frees, in the next lap of the ring's one segment.
    model(|| {
        let (tx, mut rx) = mailbox::bounded(2);
        tx.try_send(1u32).unwrap();
        tx.try_send(2u32).unwrap();
        assert!(tx.try_send(9).unwrap_err().is_full());
        let producer = thread::spawn(move || {
            block_on(tx.send(3)).unwrap();
        });
        assert_eq!(block_on(rx.recv()), Some(1));
        assert_eq!(block_on(rx.recv()), Some(2));
        assert_eq!(block_on(rx.recv()), Some(3));
        producer.join().unwrap();
        assert_eq!(rx.try_recv(), Err(TryRecvError::Closed));
    });
}
