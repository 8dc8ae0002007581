//! Unit tests of the mailbox semantics, for every flavour and backend.
//!
//! They also run under Miri (`cargo +nightly miri test -p proc-daemon-actors
//! mailbox`), which checks every `unsafe` block they reach for undefined
//! behaviour and reports leaks; the counts shrink under Miri to keep it
//! fast.

use std::sync::Arc as StdArc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll, Wake, Waker};
use std::thread;

use super::*;

/// Every flavour: unbounded and bounded, lock-free and mutex-backed.
fn all_kinds(capacity: usize) -> Vec<(Capacity, Backend)> {
    vec![
        (Capacity::Unbounded, Backend::LockFree),
        (Capacity::Bounded(capacity), Backend::LockFree),
        (Capacity::Unbounded, Backend::Mutex),
        (Capacity::Bounded(capacity), Backend::Mutex),
    ]
}

/// A message that counts its drops.
#[derive(Debug)]
struct Counted(StdArc<AtomicUsize>);

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// A waker that counts how often it is woken.
struct CountingWaker(AtomicUsize);

impl Wake for CountingWaker {
    fn wake(self: StdArc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

fn counting_waker() -> (StdArc<CountingWaker>, Waker) {
    let counter = StdArc::new(CountingWaker(AtomicUsize::new(0)));
    (counter.clone(), Waker::from(counter))
}

#[test]
fn delivers_in_order_and_crosses_blocks() {
    let n = if cfg!(miri) { 70 } else { 1000 };
    for (capacity, backend) in all_kinds(n) {
        let (tx, mut rx) = channel(capacity, backend);
        for i in 0..n {
            tx.try_send(i).unwrap();
        }
        assert_eq!(rx.len(), n, "{capacity:?} {backend:?}");
        for i in 0..n {
            assert_eq!(rx.try_recv(), Ok(i), "{capacity:?} {backend:?}");
        }
        assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
        assert!(rx.is_empty());
    }
}

#[test]
fn a_full_bounded_mailbox_hands_the_message_back() {
    for backend in [Backend::LockFree, Backend::Mutex] {
        let (tx, mut rx) = channel(Capacity::Bounded(2), backend);
        tx.try_send(1).unwrap();
        tx.try_send(2).unwrap();
        match tx.try_send(3) {
            Err(TrySendError::Full(3)) => {}
            other => panic!("{backend:?}: expected Full(3), got {other:?}"),
        }
        assert_eq!(tx.capacity(), Some(2));
        assert_eq!(rx.try_recv(), Ok(1));
        tx.try_send(3).unwrap();
        assert_eq!(rx.try_recv(), Ok(2));
        assert_eq!(rx.try_recv(), Ok(3));
    }
}

#[test]
fn wraps_around_a_small_ring_many_times() {
    let (tx, mut rx) = bounded(3);
    for i in 0..50 {
        tx.try_send(i).unwrap();
        tx.try_send(i + 1000).unwrap();
        assert_eq!(rx.len(), 2);
        assert_eq!(rx.try_recv(), Ok(i));
        assert_eq!(rx.try_recv(), Ok(i + 1000));
    }
}

#[test]
fn a_ring_of_several_segments_fills_wraps_and_drops_what_is_queued() {
    // 100 slots: three segments of 32 and a last one of 4. Fill it (every
    // segment allocated, the last one partial), wrap around twice, then
    // drop the mailbox with messages queued in several segments: each
    // message is dropped once and every segment freed (Miri checks both).
    let (tx, mut rx) = bounded::<String>(100);
    assert_eq!(tx.capacity(), Some(100));
    for round in 0..3 {
        for i in 0..100 {
            tx.try_send(format!("{round}-{i}")).unwrap();
        }
        assert!(
            tx.try_send("one too many".to_owned())
                .unwrap_err()
                .is_full()
        );
        assert_eq!(rx.len(), 100);
        for i in 0..70 {
            assert_eq!(rx.try_recv().unwrap(), format!("{round}-{i}"));
        }
        for i in 70..100 {
            assert_eq!(rx.try_recv().unwrap(), format!("{round}-{i}"));
        }
        assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
    }
    for i in 0..90 {
        tx.try_send(format!("left-{i}")).unwrap();
    }
    for i in 0..45 {
        assert_eq!(rx.try_recv().unwrap(), format!("left-{i}"));
    }
    drop(rx);
    drop(tx);
}

#[test]
fn an_idle_bounded_mailbox_allocates_segments_as_it_fills() {
    // A message allocates the segment table and the segment it lands in,
    // not the whole ring; the ring grows one segment at a time.
    let (tx, mut rx) = bounded::<u64>(1024);
    let Flavor::Array(array) = &tx.flavor else {
        panic!("a lock-free bounded mailbox is an Array");
    };
    assert_eq!(array.allocated_segments(), 0);
    tx.try_send(1).unwrap();
    assert_eq!(array.allocated_segments(), 1);
    for i in 0..40 {
        tx.try_send(i).unwrap();
    }
    assert_eq!(array.allocated_segments(), 2);
    while rx.try_recv().is_ok() {}
    assert_eq!(
        array.allocated_segments(),
        2,
        "segments stay once allocated"
    );
}

#[test]
fn close_fails_sends_and_drains_then_ends() {
    for (capacity, backend) in all_kinds(8) {
        let (tx, mut rx) = channel(capacity, backend);
        tx.try_send(1).unwrap();
        tx.try_send(2).unwrap();
        rx.close();
        assert!(tx.is_closed() && rx.is_closed());
        match tx.try_send(3) {
            Err(TrySendError::Closed(3)) => {}
            other => panic!("{capacity:?} {backend:?}: expected Closed(3), got {other:?}"),
        }
        assert_eq!(block_on(tx.send(4)), Err(SendError(4)));
        assert_eq!(rx.try_recv(), Ok(1));
        assert_eq!(block_on(rx.recv()), Some(2));
        assert_eq!(block_on(rx.recv()), None);
        assert_eq!(rx.try_recv(), Err(TryRecvError::Closed));
    }
}

#[test]
fn dropping_the_last_sender_closes() {
    for (capacity, backend) in all_kinds(8) {
        let (tx, mut rx) = channel(capacity, backend);
        let tx2 = tx.clone();
        tx.try_send(1).unwrap();
        drop(tx);
        assert!(!rx.is_closed(), "{capacity:?} {backend:?}");
        tx2.try_send(2).unwrap();
        drop(tx2);
        assert!(rx.is_closed());
        assert_eq!(rx.try_recv(), Ok(1));
        assert_eq!(rx.try_recv(), Ok(2));
        assert_eq!(rx.try_recv(), Err(TryRecvError::Closed));
    }
}

#[test]
fn dropping_the_receiver_fails_sends_and_hands_back() {
    for (capacity, backend) in all_kinds(8) {
        let (tx, rx) = channel::<String>(capacity, backend);
        drop(rx);
        match tx.try_send("kept".to_owned()) {
            Err(TrySendError::Closed(msg)) => assert_eq!(msg, "kept"),
            other => panic!("{capacity:?} {backend:?}: {other:?}"),
        }
    }
}

#[test]
fn every_message_is_dropped_exactly_once() {
    let n = if cfg!(miri) { 40 } else { 500 };
    for (capacity, backend) in all_kinds(n) {
        for receiver_first in [true, false] {
            let drops = StdArc::new(AtomicUsize::new(0));
            let (tx, mut rx) = channel(capacity, backend);
            for _ in 0..n {
                tx.try_send(Counted(drops.clone())).unwrap();
            }
            // Some received and dropped, the rest left queued.
            for _ in 0..n / 3 {
                drop(rx.try_recv().unwrap());
            }
            assert_eq!(drops.load(Ordering::SeqCst), n / 3);
            if receiver_first {
                drop(rx);
                drop(tx);
            } else {
                drop(tx);
                drop(rx);
            }
            assert_eq!(
                drops.load(Ordering::SeqCst),
                n,
                "{capacity:?} {backend:?} receiver_first={receiver_first}"
            );
        }
    }
}

#[test]
fn a_parked_receiver_is_woken_once_per_transition() {
    for (capacity, backend) in all_kinds(8) {
        let (tx, mut rx) = channel(capacity, backend);
        let (count, waker) = counting_waker();
        let mut cx = Context::from_waker(&waker);
        assert!(rx.poll_recv(&mut cx).is_pending());
        // Three sends while parked: one wake-up, from the first.
        tx.try_send(1).unwrap();
        tx.try_send(2).unwrap();
        tx.try_send(3).unwrap();
        assert_eq!(
            count.0.load(Ordering::SeqCst),
            1,
            "{capacity:?} {backend:?}"
        );
        for expected in 1..=3 {
            assert_eq!(rx.poll_recv(&mut cx), Poll::Ready(Some(expected)));
        }
        // Not parked while it found messages; parks again on empty.
        assert!(rx.poll_recv(&mut cx).is_pending());
        tx.try_send(4).unwrap();
        assert_eq!(count.0.load(Ordering::SeqCst), 2);
        // Closing wakes a parked receiver too.
        assert_eq!(rx.poll_recv(&mut cx), Poll::Ready(Some(4)));
        assert!(rx.poll_recv(&mut cx).is_pending());
        drop(tx);
        assert_eq!(count.0.load(Ordering::SeqCst), 3);
        assert_eq!(rx.poll_recv(&mut cx), Poll::Ready(None));
    }
}

#[test]
fn a_sender_parked_on_a_full_mailbox_is_woken_when_a_slot_frees() {
    for backend in [Backend::LockFree, Backend::Mutex] {
        let (tx, mut rx) = channel(Capacity::Bounded(1), backend);
        tx.try_send(1).unwrap();
        let (count, waker) = counting_waker();
        let mut cx = Context::from_waker(&waker);
        let mut send = tx.send(2);
        assert!(Pin::new(&mut send).poll(&mut cx).is_pending());
        // Polled again without a change: still one registration.
        assert!(Pin::new(&mut send).poll(&mut cx).is_pending());
        assert_eq!(count.0.load(Ordering::SeqCst), 0);
        assert_eq!(rx.try_recv(), Ok(1));
        // Woken: once, or once per registration where `Waker::will_wake`
        // cannot tell the two polls' wakers apart (it is best-effort; under
        // Miri vtable addresses differ).
        assert!(count.0.load(Ordering::SeqCst) >= 1, "{backend:?}");
        assert_eq!(Pin::new(&mut send).poll(&mut cx), Poll::Ready(Ok(())));
        assert_eq!(rx.try_recv(), Ok(2));
    }
}

#[test]
fn a_sender_parked_on_a_full_mailbox_is_woken_by_close() {
    for backend in [Backend::LockFree, Backend::Mutex] {
        let (tx, mut rx) = channel(Capacity::Bounded(1), backend);
        tx.try_send(1).unwrap();
        let (count, waker) = counting_waker();
        let mut cx = Context::from_waker(&waker);
        let mut send = tx.send(2);
        assert!(Pin::new(&mut send).poll(&mut cx).is_pending());
        rx.close();
        assert_eq!(count.0.load(Ordering::SeqCst), 1, "{backend:?}");
        assert_eq!(
            Pin::new(&mut send).poll(&mut cx),
            Poll::Ready(Err(SendError(2)))
        );
    }
}

#[test]
fn recv_many_takes_what_is_ready_up_to_the_limit() {
    for (capacity, backend) in all_kinds(16) {
        let (tx, mut rx) = channel(capacity, backend);
        for i in 0..5 {
            tx.try_send(i).unwrap();
        }
        let mut buf = Vec::new();
        assert_eq!(block_on(rx.recv_many(&mut buf, 3)), 3);
        assert_eq!(block_on(rx.recv_many(&mut buf, 10)), 2);
        assert_eq!(buf, vec![0, 1, 2, 3, 4]);
        assert_eq!(block_on(rx.recv_many(&mut buf, 0)), 0);
        drop(tx);
        assert_eq!(block_on(rx.recv_many(&mut buf, 10)), 0);
    }
}

#[test]
fn blocking_receive_waits_for_another_thread() {
    for (capacity, backend) in all_kinds(4) {
        let (tx, mut rx) = channel(capacity, backend);
        let producer = thread::spawn(move || {
            for i in 0..20 {
                tx.blocking_send(i).unwrap();
            }
        });
        for i in 0..20 {
            assert_eq!(rx.blocking_recv(), Some(i));
        }
        assert_eq!(rx.blocking_recv(), None);
        producer.join().unwrap();
    }
}

#[test]
fn several_producers_keep_their_own_order() {
    let per_producer = if cfg!(miri) { 30 } else { 20_000 };
    for (capacity, backend) in all_kinds(16) {
        let (tx, mut rx) = channel(capacity, backend);
        let producers: Vec<_> = (0..3u64)
            .map(|p| {
                let tx = tx.clone();
                thread::spawn(move || {
                    for i in 0..per_producer {
                        tx.blocking_send((p, i)).unwrap();
                    }
                })
            })
            .collect();
        drop(tx);
        let mut next = [0u64; 3];
        while let Some((p, i)) = rx.blocking_recv() {
            assert_eq!(i, next[p as usize], "{capacity:?} {backend:?} producer {p}");
            next[p as usize] += 1;
        }
        assert_eq!(next, [per_producer; 3]);
        for producer in producers {
            producer.join().unwrap();
        }
    }
}

#[test]
fn an_idle_mailbox_fits_in_224_bytes() {
    // The shared state is one allocation: the `Arc` counters plus the state.
    // Message storage is allocated on the first send, so this is all an
    // idle mailbox costs. Word alignment, not cache-line alignment: the
    // system allocator serves over-aligned blocks by over-allocating.
    fn arc_allocation<T>() -> usize {
        assert!(std::mem::align_of::<T>() <= 8, "over-aligned mailbox state");
        std::mem::size_of::<T>() + 2 * std::mem::size_of::<usize>()
    }
    let list = arc_allocation::<List<u64>>();
    let array = arc_allocation::<Array<u64>>();
    assert!(list <= 224, "unbounded: {list} bytes");
    assert!(array <= 224, "bounded: {array} bytes");
    assert!(std::mem::size_of::<Sender<u64>>() <= 16);
    assert!(std::mem::size_of::<Receiver<u64>>() <= 16);
}

#[test]
#[should_panic(expected = "capacity of at least 1")]
fn a_zero_capacity_is_refused() {
    let _ = bounded::<u8>(0);
}
