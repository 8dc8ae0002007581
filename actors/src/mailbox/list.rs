//! The unbounded lock-free mailbox: a linked list of blocks of slots.
//!
//! # Layout
//!
//! Messages live in blocks of [`BLOCK_CAP`] slots. A position counts slots
//! from the start of the mailbox, with one extra position per block
//! (offset `BLOCK_CAP`) that stands for "this block is full, the next one is
//! being linked". Positions are stored shifted left by one; bit 0 of the
//! tail is the `CLOSED` mark, so that a producer's claim and the close flag
//! are one word and a claim can never slip past a close.
//!
//! # Producers
//!
//! A producer claims a position with a compare-and-swap of the tail, writes
//! its message into the slot and sets the slot's `WRITTEN` bit, then looks
//! whether the receiver is parked (signal.rs). The receiver never waits for
//! a producer that has claimed a slot but not written it: it parks, and
//! that producer wakes it. The producer
//! that claims the last slot of a block links a fresh block first (it
//! allocates it before claiming, so the critical window holds no
//! allocation), then moves the tail past the sentinel position, then writes
//! its own slot. Producers that read the sentinel position wait for that.
//!
//! # The receiver
//!
//! The one receiver reads slots in order. It finds the next block through
//! `next`, which is always set by the time it has read the last slot of the
//! current block (see above), and frees each block once it has moved past
//! it: every slot of it has been read, so no producer can still be using it
//! (a producer touches a block only between claiming a slot in it and
//! marking that slot written).
//!
//! # Invariants
//!
//! - A block pointer is dereferenced by a producer only after it won the
//!   claim of a position in that block.
//! - A producer always reads the tail before the tail block, so the block
//!   it holds is never older than the position it claims: the tail only
//!   enters a new block after that block is stored.
//! - Every claimed position is written exactly once, by its claimer, and
//!   read at most once, by the receiver; a position never read is dropped by
//!   `Drop`, which runs when both sides are gone.
//! - The first block is allocated lazily, so an idle mailbox that never
//!   received a message owns no block.

use std::mem::MaybeUninit;
use std::ptr;

use super::queue::Queue;
use super::signal::RecvSignal;
use super::{LineGap, Pop, TrySendError};
use crate::loom::{AtomicPtr, AtomicUsize, Backoff, Ordering, UnsafeCell};

/// Positions per block, including the sentinel. Tiny under loom, so that the
/// models cross block boundaries with few messages.
#[cfg(not(loom))]
const LAP: usize = 32;
#[cfg(loom)]
const LAP: usize = 3;

/// Message slots per block.
const BLOCK_CAP: usize = LAP - 1;
/// Positions are stored shifted by this much; the low bit is the mark.
const SHIFT: usize = 1;
/// Bit 0 of the tail: the mailbox is closed to senders.
const CLOSED: usize = 1;
/// A slot's state bit: the message is written.
const WRITTEN: usize = 1;

struct Slot<T> {
    value: UnsafeCell<MaybeUninit<T>>,
    state: AtomicUsize,
}

struct Block<T> {
    next: AtomicPtr<Block<T>>,
    slots: [Slot<T>; BLOCK_CAP],
}

impl<T> Block<T> {
    fn new() -> Box<Self> {
        Box::new(Block {
            next: AtomicPtr::new(ptr::null_mut()),
            slots: std::array::from_fn(|_| Slot {
                value: UnsafeCell::new(MaybeUninit::uninit()),
                state: AtomicUsize::new(0),
            }),
        })
    }
}

/// The producers' side, a [`LineGap`] away from the receiver's.
struct Tx<T> {
    tail: AtomicUsize,
    block: AtomicPtr<Block<T>>,
    /// Read by every producer after every send, written only when the
    /// receiver parks, so it shares the producers' line.
    signal: RecvSignal,
    senders: AtomicUsize,
}

/// The receiver's side. Only the receiver writes `head` after the first
/// block is linked; the atomics let `len` and `Drop` read it.
struct Rx<T> {
    head: AtomicUsize,
    block: AtomicPtr<Block<T>>,
}

/// An unbounded lock-free MPSC queue. See the module docs.
#[repr(C)]
pub(crate) struct List<T> {
    tx: Tx<T>,
    /// Keeps the two sides on different cache lines (see [`LineGap`]).
    _apart: LineGap,
    rx: Rx<T>,
}

// SAFETY: messages move between threads through the slots, so `T: Send` is
// required and sufficient; all shared state is atomics and slots accessed
// under the protocol in the module docs.
unsafe impl<T: Send> Send for List<T> {}
// SAFETY: as for `Send`.
unsafe impl<T: Send> Sync for List<T> {}

impl<T> List<T> {
    pub(crate) fn new() -> Self {
        List {
            tx: Tx {
                tail: AtomicUsize::new(0),
                block: AtomicPtr::new(ptr::null_mut()),
                signal: RecvSignal::new(),
                senders: AtomicUsize::new(1),
            },
            _apart: LineGap::new(),
            rx: Rx {
                head: AtomicUsize::new(0),
                block: AtomicPtr::new(ptr::null_mut()),
            },
        }
    }

    pub(crate) fn signal(&self) -> &RecvSignal {
        &self.tx.signal
    }

    /// The head slot holds no message. It is `Closed` only if nothing was
    /// claimed either; a slot claimed but not yet written counts as empty,
    /// and its producer wakes the receiver once it has written it.
    fn empty_or_closed(&self, head: usize) -> Pop<T> {
        let tail = self.tx.tail.load(Ordering::SeqCst);
        if tail & CLOSED != 0 && tail >> SHIFT == head >> SHIFT {
            Pop::Closed
        } else {
            Pop::Empty
        }
    }

    /// Closes the mailbox to senders. Returns whether this call closed it.
    pub(crate) fn close(&self) -> bool {
        self.tx.tail.fetch_or(CLOSED, Ordering::SeqCst) & CLOSED == 0
    }
}

/// How many message slots precede `position` (sentinels excluded).
fn real_slots_before(position: usize) -> usize {
    position / LAP * BLOCK_CAP + (position % LAP).min(BLOCK_CAP)
}

impl<T> Queue<T> for List<T> {
    /// Appends `msg`, or hands it back if the mailbox is closed.
    fn try_push(&self, msg: T) -> Result<(), TrySendError<T>> {
        let tx = &self.tx;
        let mut backoff = Backoff::new();
        let mut tail = tx.tail.load(Ordering::Acquire);
        let mut block = tx.block.load(Ordering::Acquire);
        let mut next_block: Option<Box<Block<T>>> = None;
        loop {
            if tail & CLOSED != 0 {
                return Err(TrySendError::Closed(msg));
            }
            let offset = (tail >> SHIFT) % LAP;
            if offset == BLOCK_CAP {
                // Another producer is linking the next block.
                backoff.snooze();
                tail = tx.tail.load(Ordering::Acquire);
                block = tx.block.load(Ordering::Acquire);
                continue;
            }
            if offset + 1 == BLOCK_CAP && next_block.is_none() {
                next_block = Some(Block::new());
            }
            if block.is_null() {
                // The very first message: link the first block.
                let first = Box::into_raw(Block::new());
                match tx.block.compare_exchange(
                    ptr::null_mut(),
                    first,
                    Ordering::Release,
                    Ordering::Acquire,
                ) {
                    Ok(_) => {
                        self.rx.block.store(first, Ordering::Release);
                        block = first;
                    }
                    Err(_) => {
                        // SAFETY: `first` was never shared.
                        drop(unsafe { Box::from_raw(first) });
                        // Reload the tail before the block, as at the top:
                        // a block read before the tail may be stale (the tail
                        // can have moved on into a later block, and the block
                        // read be freed). loom found this.
                        tail = tx.tail.load(Ordering::Acquire);
                        block = tx.block.load(Ordering::Acquire);
                        continue;
                    }
                }
            }
            let new_tail = tail + (1 << SHIFT);
            match tx
                .tail
                .compare_exchange_weak(tail, new_tail, Ordering::SeqCst, Ordering::Acquire)
            {
                Ok(_) => {
                    // SAFETY: the claim of `tail` succeeded, so `block` is the
                    // block of that position (it was loaded after the tail,
                    // and the tail has not moved since), and the receiver
                    // cannot free it before this slot is marked written.
                    unsafe {
                        if offset + 1 == BLOCK_CAP {
                            let next = Box::into_raw(next_block.take().unwrap_or_else(Block::new));
                            tx.block.store(next, Ordering::Release);
                            tx.tail.fetch_add(1 << SHIFT, Ordering::Release);
                            (*block).next.store(next, Ordering::Release);
                        }
                        let slot = (*block).slots.get_unchecked(offset);
                        slot.value.with_mut(|p| p.write(MaybeUninit::new(msg)));
                        // A `SeqCst` read-modify-write: the receiver's look at
                        // this slot after it parks and our look at its parking
                        // state below are the two halves of the wake-up
                        // protocol (signal.rs).
                        slot.state.swap(WRITTEN, Ordering::SeqCst);
                    }
                    self.signal().notify();
                    return Ok(());
                }
                Err(current) => {
                    tail = current;
                    block = tx.block.load(Ordering::Acquire);
                    backoff.spin();
                }
            }
        }
    }

    /// # Safety
    ///
    /// As for [`pop`](Self::pop).
    unsafe fn pop_checked<const CHECK_CLOSED: bool>(&self) -> Pop<T> {
        let rx = &self.rx;
        let mut head = rx.head.load(Ordering::Relaxed);
        let mut block = rx.block.load(Ordering::Acquire);
        loop {
            if block.is_null() {
                return if CHECK_CLOSED {
                    self.empty_or_closed(head)
                } else {
                    Pop::Empty
                };
            }
            let offset = (head >> SHIFT) % LAP;
            if offset == BLOCK_CAP {
                // SAFETY: the receiver read the last slot of this block, which
                // its producer marked written after setting `next`, so `next`
                // is set; every slot of the block has been read, so no one
                // uses it any more and it can be freed.
                unsafe {
                    let next = (*block).next.load(Ordering::Acquire);
                    debug_assert!(!next.is_null());
                    drop(Box::from_raw(block));
                    block = next;
                }
                head += 1 << SHIFT;
                rx.block.store(block, Ordering::Release);
                rx.head.store(head, Ordering::Release);
                continue;
            }
            // SAFETY: `block` is the receiver's current block, alive until the
            // receiver frees it above.
            let slot = unsafe { (*block).slots.get_unchecked(offset) };
            if slot.state.load(Ordering::SeqCst) & WRITTEN == 0 {
                return if CHECK_CLOSED {
                    self.empty_or_closed(head)
                } else {
                    Pop::Empty
                };
            }
            // SAFETY: `WRITTEN` (acquired above) says the value is initialised,
            // and positions are read once: `head` moves past it next.
            let msg = slot.value.with(|p| unsafe { ptr::read(p).assume_init() });
            rx.head.store(head + (1 << SHIFT), Ordering::Release);
            return Pop::Msg(msg);
        }
    }

    fn is_closed(&self) -> bool {
        self.tx.tail.load(Ordering::SeqCst) & CLOSED != 0
    }

    /// The number of messages queued (claimed, written or not).
    fn len(&self) -> usize {
        let head = self.rx.head.load(Ordering::Acquire) >> SHIFT;
        let tail = self.tx.tail.load(Ordering::Acquire) >> SHIFT;
        real_slots_before(tail).saturating_sub(real_slots_before(head))
    }

    fn senders(&self) -> &AtomicUsize {
        &self.tx.senders
    }

    fn limit(&self) -> Option<usize> {
        None
    }

    fn close_and_wake(&self) {
        if self.close() {
            self.signal().notify();
        }
    }
}

impl<T> Drop for List<T> {
    fn drop(&mut self) {
        // Both sides are gone, so every claimed position has been written.
        let mut head = self.rx.head.load(Ordering::Relaxed) >> SHIFT;
        let tail = self.tx.tail.load(Ordering::Relaxed) >> SHIFT;
        let mut block = self.rx.block.load(Ordering::Relaxed);
        // SAFETY: `&mut self`: no other access. Each position between head
        // and tail holds one written, unread message; each block on the way
        // is freed once.
        unsafe {
            while head != tail && !block.is_null() {
                let offset = head % LAP;
                if offset == BLOCK_CAP {
                    let next = (*block).next.load(Ordering::Relaxed);
                    drop(Box::from_raw(block));
                    block = next;
                } else {
                    let slot = (*block).slots.get_unchecked(offset);
                    slot.value.with_mut(|p| (*p).assume_init_drop());
                }
                head += 1;
            }
            if !block.is_null() {
                drop(Box::from_raw(block));
            }
        }
    }
}
