//! The bounded lock-free mailbox: a ring of slots with stamps.
//!
//! This is the bounded-queue design of Dmitry Vyukov, as crossbeam's array
//! channel also uses it, specialised to one consumer.
//!
//! # Indices and stamps
//!
//! `head` and `tail` hold an index into the ring in their low bits and a lap
//! count above them; `one_lap` is the smallest power of two above the
//! capacity times two, and the bit below it (`mark_bit`) marks the tail
//! closed. Each slot has a stamp:
//!
//! - `stamp == tail` (same index, same lap): the slot is free for the
//!   producer that claims `tail`;
//! - `stamp == head + 1`: the slot holds the message for `head`;
//! - after the receiver reads it, the stamp becomes `head + one_lap`: free
//!   for the next lap.
//!
//! A producer claims `tail` with a compare-and-swap, writes its message and
//! publishes it by storing the stamp. The receiver needs no
//! compare-and-swap at all: it is alone on its side.
//!
//! # Full mailboxes
//!
//! A producer that finds the slot at `tail` still holding last lap's
//! message compares `head` and `tail` to tell "full" from "the receiver is
//! just finishing a read". A full mailbox makes `try_send` return `Full`,
//! and `send` park on [`SendWaiters`] until the receiver frees a slot.
//!
//! # Memory: segments
//!
//! The ring is split into segments of [`SEGMENT`] slots, each allocated
//! the first time a producer reaches it, and a table of pointers to them,
//! allocated on the first send. An idle mailbox that never received a
//! message costs only its two sides and the gap between them; one that
//! received a message holds the table and one segment (about 1 KiB for
//! 16-byte messages at the default capacity of 1024), not the whole ring:
//! a million actors that had each been asked once needed 24 GiB when the
//! ring was allocated whole. A segment, once allocated, stays until the
//! mailbox is dropped, so a mailbox that was once full keeps its whole
//! ring, as before.
//!
//! Segments do not change the stamp protocol. A fresh segment's stamps are
//! those of lap 0 (a slot's index), and that is right: the tail passes
//! every index in lap 0 before any in lap 1, and a producer makes sure the
//! segment of the index it looks at exists before it reads the stamp, so
//! a segment is always allocated before the first claim in it.
//!
//! The receiver reads a segment pointer before the slot's stamp. Both the
//! producer's installation of a segment and the receiver's load of its
//! pointer are `SeqCst`: the installation precedes the producer's stamp
//! store in the single total order, so a receiver that misses the pointer
//! also misses the stamp, and the wake-up protocol (signal.rs) still sees
//! one side or the other. (Under loom the protocol's fences do the same.)

use std::mem::MaybeUninit;
use std::ptr;

use super::queue::Queue;
use super::signal::{RecvSignal, SendWaiters};
use super::{LineGap, Pop, TrySendError};
use crate::loom::{AtomicPtr, AtomicUsize, Backoff, Ordering, UnsafeCell};

struct Slot<T> {
    stamp: AtomicUsize,
    value: UnsafeCell<MaybeUninit<T>>,
}

/// Slots per segment. Two under loom: the models' `bounded(2)` mailboxes
/// then have one segment, whose allocation (with the table's) every model
/// races on the first send. With one slot per segment the models took
/// about 2.5 times as long (CI's loom step went from about 8 to over 20
/// minutes) for the same allocation code; crossing segments is covered by
/// the unit tests under Miri.
#[cfg(not(loom))]
const SEGMENT: usize = 32;
#[cfg(loom)]
const SEGMENT: usize = 2;

/// The table of segment pointers: `segments_for(cap)` entries, each null
/// until its segment is allocated.
type Table<T> = AtomicPtr<AtomicPtr<Slot<T>>>;

fn segments_for(cap: usize) -> usize {
    cap.div_ceil(SEGMENT)
}

/// Puts `fresh` in `cell` if the cell is still null, and returns what the
/// cell then holds: `fresh`, or the slice another producer put there first
/// (and `fresh`, which was never shared, is freed). `success` is the
/// ordering of a successful install. The table and every segment are
/// allocated this way, each at most once per mailbox.
fn install_once<E>(cell: &AtomicPtr<E>, fresh: Box<[E]>, success: Ordering) -> *mut E {
    let len = fresh.len();
    let fresh = Box::into_raw(fresh).cast::<E>();
    match cell.compare_exchange(ptr::null_mut(), fresh, success, Ordering::Acquire) {
        Ok(_) => fresh,
        Err(installed) => {
            // SAFETY: `fresh` is the `len`-element slice made above, which
            // lost the race and so was never shared.
            unsafe { free_slice(fresh, len) };
            installed
        }
    }
}

/// Frees a boxed slice turned into a raw pointer by [`install_once`].
///
/// # Safety
///
/// `first` and `len` are those of a `Box<[E]>` given to [`install_once`],
/// and nothing uses the slice afterwards.
unsafe fn free_slice<E>(first: *mut E, len: usize) {
    // SAFETY: the caller's contract.
    drop(unsafe { Box::from_raw(ptr::slice_from_raw_parts_mut(first, len)) });
}

/// The producers' side. The geometry is repeated on both sides, so that
/// neither reads the other's cache line on its fast path.
struct Tx<T> {
    tail: AtomicUsize,
    /// The segment table, allocated on the first send.
    table: Table<T>,
    cap: usize,
    one_lap: usize,
    signal: RecvSignal,
    senders: AtomicUsize,
}

/// The receiver's side.
struct Rx<T> {
    /// Written only by the receiver; read by producers to tell a full ring.
    head: AtomicUsize,
    /// The receiver's copy of the table pointer, set once it sees it.
    table: Table<T>,
    cap: usize,
    one_lap: usize,
    waiters: SendWaiters,
}

/// A bounded lock-free MPSC queue. See the module docs.
#[repr(C)]
pub(crate) struct Array<T> {
    tx: Tx<T>,
    /// Keeps the two sides on different cache lines (see [`LineGap`]).
    _apart: LineGap,
    rx: Rx<T>,
}

// SAFETY: messages move between threads through the slots, so `T: Send` is
// required and sufficient; shared state is atomics and slots accessed under
// the stamp protocol in the module docs.
unsafe impl<T: Send> Send for Array<T> {}
// SAFETY: as for `Send`.
unsafe impl<T: Send> Sync for Array<T> {}

impl<T> Array<T> {
    /// The largest capacity: the index, the mark bit and at least one lap
    /// bit must fit in a word.
    pub(crate) const MAX_CAPACITY: usize = usize::MAX >> 3;

    /// A mailbox for `cap` messages; `1 <= cap <= MAX_CAPACITY`.
    pub(crate) fn new(cap: usize) -> Self {
        debug_assert!((1..=Self::MAX_CAPACITY).contains(&cap));
        let one_lap = (cap + 1).next_power_of_two() * 2;
        Array {
            tx: Tx {
                tail: AtomicUsize::new(0),
                table: AtomicPtr::new(ptr::null_mut()),
                cap,
                one_lap,
                signal: RecvSignal::new(),
                senders: AtomicUsize::new(1),
            },
            _apart: LineGap::new(),
            rx: Rx {
                head: AtomicUsize::new(0),
                table: AtomicPtr::new(ptr::null_mut()),
                cap,
                one_lap,
                waiters: SendWaiters::new(),
            },
        }
    }

    fn mark_bit(&self) -> usize {
        self.tx.one_lap >> 1
    }

    pub(crate) fn signal(&self) -> &RecvSignal {
        &self.tx.signal
    }

    pub(crate) fn waiters(&self) -> &SendWaiters {
        &self.rx.waiters
    }

    /// The segment table, allocating it on first use.
    fn table(&self) -> *const AtomicPtr<Slot<T>> {
        let table = self.tx.table.load(Ordering::Acquire);
        if !table.is_null() {
            return table;
        }
        let fresh: Box<[AtomicPtr<Slot<T>>]> = (0..segments_for(self.tx.cap))
            .map(|_| AtomicPtr::new(ptr::null_mut()))
            .collect();
        install_once(&self.tx.table, fresh, Ordering::AcqRel).cast_const()
    }

    /// How many slots segment `segment` has: [`SEGMENT`], or fewer for the
    /// last one.
    fn segment_len(&self, segment: usize) -> usize {
        SEGMENT.min(self.tx.cap - segment * SEGMENT)
    }

    /// The slot at `index` for a producer, allocating its segment if no
    /// one has yet (module docs).
    ///
    /// # Safety
    ///
    /// `table` is this mailbox's table and `index < cap`.
    unsafe fn slot_to_fill(&self, table: *const AtomicPtr<Slot<T>>, index: usize) -> &Slot<T> {
        let segment = index / SEGMENT;
        // SAFETY: `segment < segments_for(cap)` since `index < cap`.
        let entry = unsafe { &*table.add(segment) };
        let mut slots = entry.load(Ordering::Acquire);
        if slots.is_null() {
            let first = segment * SEGMENT;
            let fresh: Box<[Slot<T>]> = (first..first + self.segment_len(segment))
                .map(|i| Slot {
                    stamp: AtomicUsize::new(i),
                    value: UnsafeCell::new(MaybeUninit::uninit()),
                })
                .collect();
            // `SeqCst`: see the module docs.
            slots = install_once(entry, fresh, Ordering::SeqCst);
        }
        // SAFETY: the segment has `segment_len` slots and the offset is
        // below it; segments live until the mailbox is dropped.
        unsafe { &*slots.add(index % SEGMENT) }
    }

    /// How many segments are allocated (for tests).
    #[cfg(all(test, not(loom)))]
    pub(crate) fn allocated_segments(&self) -> usize {
        let table = self.tx.table.load(Ordering::Acquire);
        if table.is_null() {
            return 0;
        }
        let mut allocated = 0;
        for segment in 0..segments_for(self.tx.cap) {
            // SAFETY: the table has `segments_for(cap)` entries.
            let entry = unsafe { &*table.add(segment) };
            if !entry.load(Ordering::Acquire).is_null() {
                allocated += 1;
            }
        }
        allocated
    }

    /// After a sender registered on [`SendWaiters`]: is the mailbox still
    /// full (and open)? `SeqCst`, as the wake-up protocol requires.
    pub(crate) fn still_full(&self) -> bool {
        let tail = self.tx.tail.load(Ordering::SeqCst);
        if tail & self.mark_bit() != 0 {
            return false;
        }
        let head = self.rx.head.load(Ordering::SeqCst);
        head.wrapping_add(self.tx.one_lap) == tail
    }

    /// The head slot holds no message: `Closed` if nothing was claimed and
    /// the mailbox is closed; otherwise `Empty` (a claimed slot's producer
    /// wakes the receiver once it has written it).
    fn empty_or_closed(&self, head: usize) -> Pop<T> {
        let tail = self.tx.tail.load(Ordering::SeqCst);
        let mark_bit = self.mark_bit();
        if tail & mark_bit != 0 && tail & !mark_bit == head {
            Pop::Closed
        } else {
            Pop::Empty
        }
    }

    /// Closes the mailbox to senders and wakes those waiting for room.
    /// Returns whether this call closed it.
    pub(crate) fn close(&self) -> bool {
        let closed_now =
            self.tx.tail.fetch_or(self.mark_bit(), Ordering::SeqCst) & self.mark_bit() == 0;
        self.rx.waiters.notify_all();
        closed_now
    }
}

impl<T> Queue<T> for Array<T> {
    /// Appends `msg`, or hands it back if the mailbox is full or closed.
    fn try_push(&self, msg: T) -> Result<(), TrySendError<T>> {
        let tx = &self.tx;
        let mark_bit = self.mark_bit();
        let table = self.table();
        let mut backoff = Backoff::new();
        let mut tail = tx.tail.load(Ordering::Relaxed);
        loop {
            if tail & mark_bit != 0 {
                return Err(TrySendError::Closed(msg));
            }
            let index = tail & (mark_bit - 1);
            let lap = tail & !(tx.one_lap - 1);
            // SAFETY: `table` is ours, and `index < cap`: the index bits of
            // head and tail always are.
            let slot = unsafe { self.slot_to_fill(table, index) };
            let stamp = slot.stamp.load(Ordering::Acquire);
            if stamp == tail {
                let new_tail = if index + 1 < tx.cap {
                    tail + 1
                } else {
                    lap.wrapping_add(tx.one_lap)
                };
                match tx.tail.compare_exchange_weak(
                    tail,
                    new_tail,
                    Ordering::SeqCst,
                    Ordering::Relaxed,
                ) {
                    Ok(_) => {
                        // SAFETY: the claim gives this thread the slot until it
                        // stores the stamp; the stamp said it is empty.
                        slot.value
                            .with_mut(|p| unsafe { p.write(MaybeUninit::new(msg)) });
                        // `SeqCst` read-modify-write: half of the wake-up
                        // protocol with the receiver (signal.rs).
                        slot.stamp.swap(tail + 1, Ordering::SeqCst);
                        tx.signal.notify();
                        return Ok(());
                    }
                    Err(current) => {
                        tail = current;
                        backoff.spin();
                    }
                }
            } else if stamp.wrapping_add(tx.one_lap) == tail + 1 {
                // The slot still holds last lap's message: full, unless the
                // receiver is in the middle of reading it.
                let head = self.rx.head.load(Ordering::SeqCst);
                if head.wrapping_add(tx.one_lap) == tail {
                    return Err(TrySendError::Full(msg));
                }
                backoff.spin();
                tail = tx.tail.load(Ordering::Relaxed);
            } else {
                // Another producer claimed this slot; catch up.
                backoff.snooze();
                tail = tx.tail.load(Ordering::Relaxed);
            }
        }
    }

    /// # Safety
    ///
    /// As for [`pop`](Self::pop).
    unsafe fn pop_checked<const CHECK_CLOSED: bool>(&self) -> Pop<T> {
        let rx = &self.rx;
        let mut table = rx.table.load(Ordering::Relaxed);
        if table.is_null() {
            table = self.tx.table.load(Ordering::Acquire);
            if table.is_null() {
                return self.empty_or_closed(rx.head.load(Ordering::Relaxed));
            }
            rx.table.store(table, Ordering::Relaxed);
        }
        let head = rx.head.load(Ordering::Relaxed);
        let mark_bit = rx.one_lap >> 1;
        let index = head & (mark_bit - 1);
        let lap = head & !(rx.one_lap - 1);
        // SAFETY: `index < cap`, so its segment is in the table. `SeqCst`:
        // see the module docs.
        let slots = unsafe { &*table.add(index / SEGMENT) }.load(Ordering::SeqCst);
        if slots.is_null() {
            // No producer has reached this segment: nothing is queued here.
            return if CHECK_CLOSED {
                self.empty_or_closed(head)
            } else {
                Pop::Empty
            };
        }
        // SAFETY: the offset is within the segment, which lives until the
        // mailbox is dropped.
        let slot = unsafe { &*slots.add(index % SEGMENT) };
        if slot.stamp.load(Ordering::SeqCst) != head + 1 {
            return if CHECK_CLOSED {
                self.empty_or_closed(head)
            } else {
                Pop::Empty
            };
        }
        let new_head = if index + 1 < rx.cap {
            head + 1
        } else {
            lap.wrapping_add(rx.one_lap)
        };
        // SAFETY: the stamp (acquired above) says the slot holds the message
        // for `head`, written by its producer; only the receiver reads it,
        // once, before handing the slot to the next lap.
        let msg = slot.value.with(|p| unsafe { ptr::read(p).assume_init() });
        slot.stamp
            .store(head.wrapping_add(rx.one_lap), Ordering::Release);
        rx.head.store(new_head, Ordering::SeqCst);
        rx.waiters.notify_all();
        Pop::Msg(msg)
    }

    fn is_closed(&self) -> bool {
        self.tx.tail.load(Ordering::SeqCst) & self.mark_bit() != 0
    }

    /// The number of messages queued.
    fn len(&self) -> usize {
        let mark_bit = self.mark_bit();
        loop {
            let tail = self.tx.tail.load(Ordering::SeqCst);
            let head = self.rx.head.load(Ordering::SeqCst);
            // Only a consistent pair of readings gives a meaningful count.
            if self.tx.tail.load(Ordering::SeqCst) != tail {
                continue;
            }
            let tail_index = tail & (mark_bit - 1);
            let head_index = head & (mark_bit - 1);
            return if head_index < tail_index {
                tail_index - head_index
            } else if head_index > tail_index {
                self.tx.cap - head_index + tail_index
            } else if tail & !mark_bit == head {
                0
            } else {
                self.tx.cap
            };
        }
    }

    fn senders(&self) -> &AtomicUsize {
        &self.tx.senders
    }

    fn limit(&self) -> Option<usize> {
        Some(self.tx.cap)
    }

    fn close_and_wake(&self) {
        if self.close() {
            self.signal().notify();
        }
    }
}

impl<T> Drop for Array<T> {
    fn drop(&mut self) {
        let table = self.tx.table.load(Ordering::Relaxed);
        if table.is_null() {
            return;
        }
        let len = self.len();
        let head = self.rx.head.load(Ordering::Relaxed);
        let mark_bit = self.mark_bit();
        let cap = self.tx.cap;
        let segments = segments_for(cap);
        // SAFETY: `&mut self`: both sides are gone, so every claimed slot is
        // written; the `len` slots from `head` hold unread messages (in
        // allocated segments: a slot is claimed only once its segment is),
        // each dropped once. The table and each allocated segment are the
        // slices `table()` and `slot_to_fill()` made, each freed once.
        unsafe {
            let start = head & (mark_bit - 1);
            for i in 0..len {
                let index = (start + i) % cap;
                let slots = (*table.add(index / SEGMENT)).load(Ordering::Relaxed);
                (*slots.add(index % SEGMENT))
                    .value
                    .with_mut(|p| (*p).assume_init_drop());
            }
            for segment in 0..segments {
                let slots = (*table.add(segment)).load(Ordering::Relaxed);
                if !slots.is_null() {
                    free_slice(slots, self.segment_len(segment));
                }
            }
            free_slice(table, segments);
        }
    }
}
