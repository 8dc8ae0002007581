//! What every mailbox queue offers: the one interface behind `Sender` and
//! `Receiver`, whichever queue a mailbox was built with (`list.rs`,
//! `array.rs` or `locked.rs`).
//!
//! `Flavor` (in `mod.rs`) holds one of the three queues and dispatches
//! each call with a `match`, not through `dyn Queue`: a virtual call on
//! every push and pop would cost more than the queues' own work, and the
//! match lets each arm inline its queue's code. The trait makes the three
//! queues answer to the same names, so each dispatch is one line.

use super::{Pop, TrySendError};
use crate::loom::AtomicUsize;

/// A multi-producer, single-consumer queue of messages.
pub(crate) trait Queue<T> {
    /// Appends `msg`, or hands it back if the queue is full or closed.
    fn try_push(&self, msg: T) -> Result<(), TrySendError<T>>;

    /// Takes the next message. With `CHECK_CLOSED` false, an empty head
    /// answers `Empty` without reading the producers' side, so a receiver
    /// that spins does not keep pulling the producers' cache line away from
    /// them; it can then not tell "closed", and finds that out with a
    /// checked pop before it parks.
    ///
    /// # Safety
    ///
    /// Only one thread at a time may pop (the receiver).
    unsafe fn pop_checked<const CHECK_CLOSED: bool>(&self) -> Pop<T>;

    /// Takes the next message, telling "empty" from "closed".
    ///
    /// # Safety
    ///
    /// As for [`pop_checked`](Self::pop_checked).
    unsafe fn pop(&self) -> Pop<T> {
        // SAFETY: forwarded from the caller.
        unsafe { self.pop_checked::<true>() }
    }

    /// Takes the next message, for a receiver that spins (see
    /// [`pop_checked`](Self::pop_checked)).
    ///
    /// # Safety
    ///
    /// As for [`pop_checked`](Self::pop_checked).
    unsafe fn pop_while_spinning(&self) -> Pop<T> {
        // SAFETY: forwarded from the caller.
        unsafe { self.pop_checked::<false>() }
    }

    /// The number of messages queued.
    fn len(&self) -> usize;

    /// The capacity of a bounded queue; `None` when unbounded.
    fn limit(&self) -> Option<usize>;

    /// Whether the queue is closed to senders.
    fn is_closed(&self) -> bool;

    /// The count of live senders.
    fn senders(&self) -> &AtomicUsize;

    /// Closes the queue to senders and wakes whoever waits on it.
    fn close_and_wake(&self);
}
