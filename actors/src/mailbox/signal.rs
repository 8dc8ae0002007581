//! Parking and waking: [`RecvSignal`] for the one receiver, [`SendWaiters`]
//! for senders blocked on a full bounded mailbox.
//!
//! # The wake-up protocol
//!
//! Both sides follow the same store-buffering pattern. The party that parks
//! first publishes that it is parked, then looks at the queue again. The
//! party that changes the queue first changes it, then looks whether anyone
//! is parked. All four operations are `SeqCst`, so at least one of the two
//! second looks sees the other party's first step: either the parker sees
//! the change and does not sleep, or the changer sees the parker and wakes
//! it. (Under loom a `SeqCst` fence sits between the two steps; see
//! [`crate::loom`].)
//!
//! For the receiver, the change is the producer's claim of a slot (its
//! read-modify-write of the tail index), and the look is a `SeqCst` load of
//! [`RecvSignal`]'s state. A producer therefore pays one load per message,
//! which stays in its cache while the receiver is busy: only the producer
//! that finds the receiver parked pays for a wake-up, and the
//! `PARKED → NOTIFYING` compare-and-swap lets exactly one of them do it.
//!
//! # Invariants of `RecvSignal`
//!
//! - Only the receiver moves the state `IDLE → PARKED` and `PARKED → IDLE`.
//!   It never waits on `NOTIFYING`: a park attempted then fails and the
//!   receiver asks to be polled again, and a withdrawn park leaves the
//!   producer to finish (a spurious wake-up).
//! - Only a producer moves it `PARKED → NOTIFYING`, and then `→ IDLE`.
//! - The waker cell is written by the receiver only while the state is
//!   `IDLE` (it reclaims the cell first), and read by a producer only while
//!   the state is `NOTIFYING` (it won the compare-and-swap), which wakes the
//!   waker by reference and leaves it in place. The two are therefore never
//!   concurrent, and a receiver that parks again with the same waker (the
//!   usual case) neither clones nor drops one per message. A receiver that
//!   finds `NOTIFYING` when it wants to park again does not wait: it asks to
//!   be polled again.

use std::task::Waker;

use crate::loom::{
    Arc, AtomicBool, AtomicPtr, AtomicUsize, Ordering, UnsafeCell, seqcst_fence_for_loom,
};

const IDLE: usize = 0;
const PARKED: usize = 1;
const NOTIFYING: usize = 2;

/// Where the receiver parks its waker. See the module docs.
#[derive(Debug)]
pub(crate) struct RecvSignal {
    state: AtomicUsize,
    waker: UnsafeCell<Option<Waker>>,
}

// SAFETY: the waker cell is only touched under the state protocol described
// in the module docs, which gives each access exclusive use of the cell;
// `Waker` is `Send + Sync`.
unsafe impl Send for RecvSignal {}
// SAFETY: as for `Send`.
unsafe impl Sync for RecvSignal {}

impl RecvSignal {
    pub(crate) fn new() -> Self {
        RecvSignal {
            state: AtomicUsize::new(IDLE),
            waker: UnsafeCell::new(None),
        }
    }

    /// Receiver only: parks `waker`. The caller must then look at the queue
    /// again (with a `SeqCst` load), and call
    /// [`cancel_park`](Self::cancel_park) if it finds a message after all.
    ///
    /// Returns `false`, without parking, if a producer is still waking the
    /// previous registration (`NOTIFYING`). The receiver must then not
    /// sleep: it asks to be polled again instead (a self-wake), rather than
    /// spin on a worker that could run other tasks meanwhile.
    pub(crate) fn park(&self, waker: &Waker) -> bool {
        match self
            .state
            .compare_exchange(PARKED, IDLE, Ordering::Acquire, Ordering::Acquire)
        {
            Ok(_) | Err(IDLE) => {}
            Err(_) => return false,
        }
        // SAFETY: the state is `IDLE` (read with acquire, so a producer's
        // last use of the cell happened before), and only the receiver (this
        // thread) can leave `IDLE`, so no producer touches the cell until the
        // store of `PARKED` below publishes it.
        self.waker.with_mut(|cell| unsafe {
            match &mut *cell {
                Some(current) if current.will_wake(waker) => {}
                slot => *slot = Some(waker.clone()),
            }
        });
        self.state.store(PARKED, Ordering::SeqCst);
        seqcst_fence_for_loom();
        true
    }

    /// Receiver only: withdraws a park that turned out not to be needed, so
    /// that producers stop waking it. If a producer is already waking it,
    /// that wake-up is spurious and harmless; this does not wait for it.
    pub(crate) fn cancel_park(&self) {
        let _ = self
            .state
            .compare_exchange(PARKED, IDLE, Ordering::Acquire, Ordering::Relaxed);
    }

    /// Any producer, after its `SeqCst` claim of a slot: wakes the receiver
    /// if it is parked.
    #[inline]
    pub(crate) fn notify(&self) {
        seqcst_fence_for_loom();
        if self.state.load(Ordering::SeqCst) == PARKED {
            self.notify_parked();
        }
    }

    #[cold]
    fn notify_parked(&self) {
        if self
            .state
            .compare_exchange(PARKED, NOTIFYING, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
        {
            // SAFETY: winning `PARKED → NOTIFYING` gives this thread the cell
            // until it stores `IDLE`; the receiver never writes the cell
            // while the state is `NOTIFYING`. The waker is woken by
            // reference and left in the cell, so a receiver that parks again
            // with the same waker (the usual case) neither clones nor drops
            // one per message.
            self.waker.with(|cell| unsafe {
                if let Some(waker) = &*cell {
                    waker.wake_by_ref();
                }
            });
            self.state.store(IDLE, Ordering::Release);
        }
    }
}

/// A sender's registration while it waits for room in a full mailbox.
///
/// The sender keeps one `Arc` and the wait list keeps the other, so the
/// sender can tell whether it has been woken since it registered.
#[derive(Debug)]
pub(crate) struct Waiter {
    waker: Waker,
    woken: AtomicBool,
}

impl Waiter {
    /// Whether this registration still stands: not yet woken, and for the
    /// same task.
    pub(crate) fn is_pending_for(&self, waker: &Waker) -> bool {
        !self.woken.load(Ordering::Acquire) && self.waker.will_wake(waker)
    }
}

/// A node of the wait list.
struct Node {
    waiter: Arc<Waiter>,
    next: *mut Node,
}

/// Senders waiting for room in a full bounded mailbox.
///
/// A lock-free stack (a Treiber stack) that any sender pushes onto and that
/// only the receiver side empties, always all at once with one `swap`. As
/// nothing ever pops a single node while others push, the stack has no ABA
/// problem, and a node is freed only by whoever took the whole list.
///
/// Everyone on the list is woken when room appears or the mailbox closes:
/// a sender whose future was dropped simply ignores the wake-up, so
/// cancellation needs no bookkeeping and no wake-up is ever lost to it.
/// The senders that still find the mailbox full register again.
#[derive(Debug)]
pub(crate) struct SendWaiters {
    head: AtomicPtr<Node>,
}

// SAFETY: the raw nodes are owned by the list and handed over whole with one
// atomic swap; the `Waiter`s they hold are `Send + Sync`.
unsafe impl Send for SendWaiters {}
// SAFETY: as for `Send`.
unsafe impl Sync for SendWaiters {}

impl SendWaiters {
    pub(crate) fn new() -> Self {
        SendWaiters {
            head: AtomicPtr::new(std::ptr::null_mut()),
        }
    }

    /// A sender registers. The caller must then look at the mailbox again
    /// (with `SeqCst` loads) before it sleeps.
    pub(crate) fn register(&self, waker: &Waker) -> Arc<Waiter> {
        let waiter = Arc::new(Waiter {
            waker: waker.clone(),
            woken: AtomicBool::new(false),
        });
        let node = Box::into_raw(Box::new(Node {
            waiter: waiter.clone(),
            next: std::ptr::null_mut(),
        }));
        let mut head = self.head.load(Ordering::Relaxed);
        loop {
            // SAFETY: `node` is not yet shared; this thread owns it.
            unsafe { (*node).next = head };
            match self
                .head
                .compare_exchange_weak(head, node, Ordering::SeqCst, Ordering::Relaxed)
            {
                Ok(_) => break,
                Err(current) => head = current,
            }
        }
        seqcst_fence_for_loom();
        waiter
    }

    /// The receiver side, after making room (with a `SeqCst` store): wakes
    /// every registered sender.
    #[inline]
    pub(crate) fn notify_all(&self) {
        seqcst_fence_for_loom();
        if !self.head.load(Ordering::SeqCst).is_null() {
            self.wake_all();
        }
    }

    #[cold]
    fn wake_all(&self) {
        let mut node = self.head.swap(std::ptr::null_mut(), Ordering::Acquire);
        while !node.is_null() {
            // SAFETY: the swap took the whole list; no one else can reach
            // these nodes any more, and each was made by `Box::into_raw`.
            let boxed = unsafe { Box::from_raw(node) };
            node = boxed.next;
            boxed.waiter.woken.store(true, Ordering::Release);
            boxed.waiter.waker.wake_by_ref();
        }
    }
}

impl Drop for SendWaiters {
    fn drop(&mut self) {
        let mut node = self.head.load(Ordering::Relaxed);
        while !node.is_null() {
            // SAFETY: `&mut self`: no one else can reach the list.
            let boxed = unsafe { Box::from_raw(node) };
            node = boxed.next;
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn a_wait_list_dropped_with_senders_on_it_frees_every_node() {
        let waiters = SendWaiters::new();
        let registered: Vec<Arc<Waiter>> =
            (0..3).map(|_| waiters.register(Waker::noop())).collect();
        assert!(registered.iter().all(|w| Arc::strong_count(w) == 2));
        drop(waiters);
        // The list's references are gone with its nodes (Miri reports a
        // leaked or doubly freed node).
        assert!(registered.iter().all(|w| Arc::strong_count(w) == 1));
    }
}
