//! Mailboxes: the multi-producer, single-consumer queues in front of every
//! actor.
//!
//! ```
//! use proc_daemon_actors::mailbox;
//!
//! # futures_lite_block_on(async {
//! let (tx, mut rx) = mailbox::bounded::<u64>(2);
//! tx.send(1).await.unwrap();
//! tx.try_send(2).unwrap();
//! // Full: the message is handed back.
//! assert_eq!(tx.try_send(3).unwrap_err().into_inner(), 3);
//! assert_eq!(rx.recv().await, Some(1));
//! drop(tx);
//! // The last sender is gone: the receiver drains what is queued, then ends.
//! assert_eq!(rx.recv().await, Some(2));
//! assert_eq!(rx.recv().await, None);
//! # });
//! # fn futures_lite_block_on<F: std::future::Future>(f: F) -> F::Output {
//! #     proc_daemon_actors::support::block_on(f)
//! # }
//! ```
//!
//! # Flavours
//!
//! - [`unbounded`]: a lock-free linked list of blocks (`list.rs`).
//! - [`bounded`]: a lock-free ring with stamps (`array.rs`); `send` waits
//!   while it is full, `try_send` hands the message back.
//! - [`Backend::Mutex`] selects a `Mutex<VecDeque>` with the same API and
//!   guarantees (`locked.rs`): the reference for debugging and the baseline
//!   of the benchmark. The daemon picks it with `performance.lock_free =
//!   false`.
//!
//! # Guarantees
//!
//! - Messages from one sender arrive in the order it sent them.
//! - A send either delivers the message or hands it back
//!   ([`TrySendError`], [`SendError`]); a send racing [`Receiver::close`]
//!   is one or the other, never both and never neither.
//! - After `close`, or once the last [`Sender`] is dropped, sends fail and
//!   the receiver still gets every message queued before, then `None`.
//! - Every message is dropped exactly once, including those still queued
//!   when both sides are gone.
//! - No lock on the send or receive path of the lock-free flavours. A
//!   receiver parked on an empty mailbox is woken once per transition from
//!   empty to non-empty, by the one sender that finds it parked; senders
//!   that find it busy pay a single load. A sender parked on a full bounded
//!   mailbox is woken when a slot frees up or the mailbox closes.
//! - An idle mailbox that never received a message allocates no message
//!   storage: it is its two sides (a cache line or less each), the 64-byte
//!   gap that keeps them apart, and the `Arc` header (a test checks it
//!   stays within 224 bytes).
//!
//! `signal.rs` documents the wake-up protocol; `loom-tests/` checks it and
//! the queues under every interleaving loom explores.

mod array;
mod list;
mod locked;
pub(crate) mod park;
mod queue;
pub(crate) mod signal;

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use self::array::Array;
use self::list::List;
use self::locked::Locked;
use self::park::block_on;
use self::queue::Queue;
use self::signal::{RecvSignal, Waiter};
use crate::loom::{Arc, Backoff, Ordering};

/// Sixty-four bytes of nothing, placed between a queue's producer side and
/// its receiver side so that the two can never share a cache line (64
/// bytes on x86-64 and most AArch64 parts): two bytes at least 64 apart
/// are on different lines whatever the allocation's alignment.
///
/// An earlier version aligned each side to 64 instead. That costs as much
/// padding, and more: the system allocator serves a 64-aligned block by
/// over-allocating and splitting, about 100 bytes more per idle actor
/// (measured with `benches/actor_memory.rs`, see docs/performance-history.md).
pub(crate) struct LineGap {
    _bytes: [u64; 8],
}

impl LineGap {
    pub(crate) const fn new() -> Self {
        LineGap { _bytes: [0; 8] }
    }
}

/// What the receiver found at the head of a queue.
pub(crate) enum Pop<T> {
    /// The next message.
    Msg(T),
    /// No message ready: nothing queued, or the head slot is claimed by a
    /// sender that has not finished writing it (it wakes a parked receiver
    /// when it has).
    Empty,
    /// Nothing queued, and closed: nothing ever will be.
    Closed,
}

/// How many messages a mailbox holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Capacity {
    /// No limit: sends never wait.
    Unbounded,
    /// At most this many queued messages: sends wait while it is full.
    Bounded(usize),
}

/// Which implementation backs a mailbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Backend {
    /// The lock-free queues (the default).
    #[default]
    LockFree,
    /// A `Mutex<VecDeque>`: the reference implementation.
    Mutex,
}

/// An unbounded lock-free mailbox.
pub fn unbounded<T>() -> (Sender<T>, Receiver<T>) {
    channel(Capacity::Unbounded, Backend::LockFree)
}

/// A bounded lock-free mailbox for `capacity` messages.
///
/// # Panics
///
/// If `capacity` is 0 (a mailbox must hold at least one message) or larger
/// than `usize::MAX / 8`.
pub fn bounded<T>(capacity: usize) -> (Sender<T>, Receiver<T>) {
    channel(Capacity::Bounded(capacity), Backend::LockFree)
}

/// A mailbox of the given capacity and backend.
///
/// # Panics
///
/// As [`bounded`], for a bounded capacity of 0 or above `usize::MAX / 8`.
pub fn channel<T>(capacity: Capacity, backend: Backend) -> (Sender<T>, Receiver<T>) {
    if let Capacity::Bounded(cap) = capacity {
        assert!(
            cap >= 1,
            "a bounded mailbox needs a capacity of at least 1, got 0"
        );
        assert!(
            cap <= Array::<T>::MAX_CAPACITY,
            "a bounded mailbox's capacity must be at most {}, got {cap}",
            Array::<T>::MAX_CAPACITY
        );
    }
    let flavor = match (backend, capacity) {
        (Backend::LockFree, Capacity::Unbounded) => Flavor::List(Arc::new(List::new())),
        (Backend::LockFree, Capacity::Bounded(cap)) => Flavor::Array(Arc::new(Array::new(cap))),
        (Backend::Mutex, Capacity::Unbounded) => Flavor::Locked(Arc::new(Locked::new(None))),
        (Backend::Mutex, Capacity::Bounded(cap)) => {
            Flavor::Locked(Arc::new(Locked::new(Some(cap))))
        }
    };
    (
        Sender {
            flavor: flavor.clone(),
        },
        Receiver { flavor },
    )
}

enum Flavor<T> {
    List(Arc<List<T>>),
    Array(Arc<Array<T>>),
    Locked(Arc<Locked<T>>),
}

impl<T> Clone for Flavor<T> {
    fn clone(&self) -> Self {
        match self {
            Flavor::List(q) => Flavor::List(q.clone()),
            Flavor::Array(q) => Flavor::Array(q.clone()),
            Flavor::Locked(q) => Flavor::Locked(q.clone()),
        }
    }
}

/// Runs `$body` with `$queue` bound to the flavor's queue, whichever it
/// is: a `match` with one arm per queue, each inlined (see queue.rs).
macro_rules! with_queue {
    ($flavor:expr, $queue:ident => $body:expr) => {
        match $flavor {
            Flavor::List($queue) => $body,
            Flavor::Array($queue) => $body,
            Flavor::Locked($queue) => $body,
        }
    };
}

impl<T> Flavor<T> {
    fn try_push(&self, msg: T) -> Result<(), TrySendError<T>> {
        with_queue!(self, q => q.try_push(msg))
    }

    /// # Safety
    ///
    /// Receiver only (one thread at a time).
    unsafe fn pop(&self) -> Pop<T> {
        // SAFETY: forwarded from the caller.
        with_queue!(self, q => unsafe { q.pop() })
    }

    /// # Safety
    ///
    /// Receiver only (one thread at a time).
    unsafe fn pop_while_spinning(&self) -> Pop<T> {
        // SAFETY: forwarded from the caller.
        with_queue!(self, q => unsafe { q.pop_while_spinning() })
    }

    fn len(&self) -> usize {
        with_queue!(self, q => q.len())
    }

    fn capacity(&self) -> Option<usize> {
        with_queue!(self, q => q.limit())
    }

    fn is_closed(&self) -> bool {
        with_queue!(self, q => q.is_closed())
    }

    fn senders(&self) -> &crate::loom::AtomicUsize {
        with_queue!(self, q => q.senders())
    }

    /// Closes the mailbox to senders and wakes whoever waits on it.
    fn close(&self) {
        with_queue!(self, q => q.close_and_wake())
    }

    fn same(&self, other: &Self) -> bool {
        match (self, other) {
            (Flavor::List(a), Flavor::List(b)) => Arc::ptr_eq(a, b),
            (Flavor::Array(a), Flavor::Array(b)) => Arc::ptr_eq(a, b),
            (Flavor::Locked(a), Flavor::Locked(b)) => Arc::ptr_eq(a, b),
            _ => false,
        }
    }
}

/// Receives from a lock-free queue, parking on `signal` when it is empty.
///
/// Never spins: a sender that has claimed the head slot but not written it
/// yet will find the receiver parked and wake it (signal.rs).
fn poll_pop_lock_free<T>(
    pop: impl Fn() -> Pop<T>,
    signal: &RecvSignal,
    cx: &mut Context<'_>,
) -> Poll<Option<T>> {
    match pop() {
        Pop::Msg(msg) => return Poll::Ready(Some(msg)),
        Pop::Closed => return Poll::Ready(None),
        Pop::Empty => {}
    }
    if !signal.park(cx.waker()) {
        // A sender is finishing the wake-up of our previous park. Be polled
        // again rather than wait for it here, after letting it run if it
        // was preempted on this CPU.
        crate::loom::yield_to_notifier();
        cx.waker().wake_by_ref();
        return Poll::Pending;
    }
    // Look again after publishing the park: a message published before the
    // sender could see the park is visible now.
    match pop() {
        Pop::Empty => Poll::Pending,
        Pop::Msg(msg) => {
            signal.cancel_park();
            Poll::Ready(Some(msg))
        }
        Pop::Closed => {
            signal.cancel_park();
            Poll::Ready(None)
        }
    }
}

/// The sending half of a mailbox. Cheap to clone; every clone sends into
/// the same mailbox. The mailbox closes when the last one is dropped.
pub struct Sender<T> {
    flavor: Flavor<T>,
}

impl<T> Clone for Sender<T> {
    fn clone(&self) -> Self {
        self.flavor.senders().fetch_add(1, Ordering::Relaxed);
        Sender {
            flavor: self.flavor.clone(),
        }
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        if self.flavor.senders().fetch_sub(1, Ordering::AcqRel) == 1 {
            self.flavor.close();
        }
    }
}

impl<T> fmt::Debug for Sender<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sender")
            .field("len", &self.len())
            .field("capacity", &self.capacity())
            .field("closed", &self.is_closed())
            .finish()
    }
}

impl<T> Sender<T> {
    /// Sends `msg` without waiting: hands it back if the mailbox is full or
    /// closed.
    pub fn try_send(&self, msg: T) -> Result<(), TrySendError<T>> {
        self.flavor.try_push(msg)
    }

    /// Sends `msg`, waiting while a bounded mailbox is full. Fails, handing
    /// the message back, if the mailbox is closed.
    ///
    /// Dropping the future before it completes drops the message unsent.
    pub fn send(&self, msg: T) -> Send<'_, T> {
        Send {
            sender: self,
            msg: Some(msg),
            waiter: None,
        }
    }

    /// Sends `msg`, blocking the thread while a bounded mailbox is full.
    /// For threads outside an async runtime.
    ///
    /// On a full mailbox it first spins and yields briefly, as
    /// [`Receiver::blocking_recv`] does, then parks.
    pub fn blocking_send(&self, mut msg: T) -> Result<(), SendError<T>> {
        let mut backoff = Backoff::new();
        while !backoff.is_completed() {
            match self.try_send(msg) {
                Ok(()) => return Ok(()),
                Err(TrySendError::Closed(m)) => return Err(SendError(m)),
                Err(TrySendError::Full(m)) => msg = m,
            }
            backoff.snooze();
        }
        block_on(self.send(msg))
    }

    /// How many messages are queued now.
    pub fn len(&self) -> usize {
        self.flavor.len()
    }

    /// Whether no message is queued now.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The capacity of a bounded mailbox; `None` for an unbounded one.
    pub fn capacity(&self) -> Option<usize> {
        self.flavor.capacity()
    }

    /// Whether the mailbox is closed to senders.
    pub fn is_closed(&self) -> bool {
        self.flavor.is_closed()
    }

    /// Whether `self` and `other` send into the same mailbox.
    pub fn same_mailbox(&self, other: &Sender<T>) -> bool {
        self.flavor.same(&other.flavor)
    }
}

/// The future of [`Sender::send`].
#[must_use = "futures do nothing unless awaited"]
pub struct Send<'a, T> {
    sender: &'a Sender<T>,
    msg: Option<T>,
    /// Our registration on a full bounded mailbox, if any.
    waiter: Option<Arc<Waiter>>,
}

// The message is moved in and out by value, never pinned.
impl<T> Unpin for Send<'_, T> {}

impl<T> fmt::Debug for Send<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Send")
            .field("done", &self.msg.is_none())
            .finish()
    }
}

impl<T> Future for Send<'_, T> {
    type Output = Result<(), SendError<T>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let Some(mut msg) = this.msg.take() else {
            panic!("`Send` polled after it completed");
        };
        match &this.sender.flavor {
            Flavor::List(q) => Poll::Ready(q.try_push(msg).map_err(|e| SendError(e.into_inner()))),
            Flavor::Locked(q) => match q.poll_push(msg, cx) {
                Ok(()) => Poll::Ready(Ok(())),
                Err(TrySendError::Closed(msg)) => Poll::Ready(Err(SendError(msg))),
                Err(TrySendError::Full(msg)) => {
                    this.msg = Some(msg);
                    Poll::Pending
                }
            },
            Flavor::Array(q) => loop {
                match q.try_push(msg) {
                    Ok(()) => return Poll::Ready(Ok(())),
                    Err(TrySendError::Closed(m)) => return Poll::Ready(Err(SendError(m))),
                    Err(TrySendError::Full(m)) => msg = m,
                }
                if this
                    .waiter
                    .as_ref()
                    .is_some_and(|w| w.is_pending_for(cx.waker()))
                {
                    // Registered earlier, and no slot has freed since.
                    this.msg = Some(msg);
                    return Poll::Pending;
                }
                this.waiter = Some(q.waiters().register(cx.waker()));
                // Look again after registering (signal.rs).
                if q.still_full() {
                    this.msg = Some(msg);
                    return Poll::Pending;
                }
            },
        }
    }
}

/// The receiving half of a mailbox. There is one; it is not `Clone`.
/// Dropping it closes the mailbox and drops the queued messages.
pub struct Receiver<T> {
    flavor: Flavor<T>,
}

impl<T> fmt::Debug for Receiver<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Receiver")
            .field("len", &self.len())
            .field("capacity", &self.capacity())
            .field("closed", &self.is_closed())
            .finish()
    }
}

impl<T> Receiver<T> {
    /// Receives the next message, waiting for one if the mailbox is empty.
    /// `None` once the mailbox is closed and drained.
    pub fn recv(&mut self) -> Recv<'_, T> {
        Recv { receiver: self }
    }

    /// Polls for the next message; see [`recv`](Self::recv).
    pub fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<T>> {
        match &self.flavor {
            Flavor::List(q) => poll_pop_lock_free(
                // SAFETY: `&mut self`: this is the one receiver.
                || unsafe { q.pop() },
                q.signal(),
                cx,
            ),
            Flavor::Array(q) => poll_pop_lock_free(
                // SAFETY: `&mut self`: this is the one receiver.
                || unsafe { q.pop() },
                q.signal(),
                cx,
            ),
            Flavor::Locked(q) => q.poll_pop(cx),
        }
    }

    /// Receives the next message if one is ready.
    ///
    /// A message whose sender is still writing it is not ready yet.
    pub fn try_recv(&mut self) -> Result<T, TryRecvError> {
        // SAFETY: `&mut self`: this is the one receiver.
        match unsafe { self.flavor.pop() } {
            Pop::Msg(msg) => Ok(msg),
            Pop::Empty => Err(TryRecvError::Empty),
            Pop::Closed => Err(TryRecvError::Closed),
        }
    }

    /// Waits for at least one message, then moves up to `limit` ready
    /// messages into `buf`. Returns how many it moved; 0 means the mailbox
    /// is closed and drained (or `limit` is 0).
    pub fn recv_many<'a>(&'a mut self, buf: &'a mut Vec<T>, limit: usize) -> RecvMany<'a, T> {
        RecvMany {
            receiver: self,
            buf,
            limit,
        }
    }

    /// Receives the next message, blocking the thread while the mailbox is
    /// empty. For threads outside an async runtime.
    ///
    /// On an empty mailbox it first spins and yields briefly: a message is
    /// often a few hundred nanoseconds away, and parking and unparking the
    /// thread costs microseconds. Then it parks until a sender wakes it.
    pub fn blocking_recv(&mut self) -> Option<T> {
        let mut backoff = Backoff::new();
        while !backoff.is_completed() {
            // SAFETY: `&mut self`: this is the one receiver.
            match unsafe { self.flavor.pop_while_spinning() } {
                Pop::Msg(msg) => return Some(msg),
                Pop::Closed => return None,
                // Closed is not told apart here; `recv` below does it.
                Pop::Empty => backoff.snooze(),
            }
        }
        block_on(self.recv())
    }

    /// Closes the mailbox to senders. Messages already queued can still be
    /// received; then `recv` returns `None`.
    pub fn close(&mut self) {
        self.flavor.close();
    }

    /// How many messages are queued now.
    pub fn len(&self) -> usize {
        self.flavor.len()
    }

    /// Whether no message is queued now.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The capacity of a bounded mailbox; `None` for an unbounded one.
    pub fn capacity(&self) -> Option<usize> {
        self.flavor.capacity()
    }

    /// Whether the mailbox is closed to senders.
    pub fn is_closed(&self) -> bool {
        self.flavor.is_closed()
    }
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        self.flavor.close();
        if let Flavor::Locked(q) = &self.flavor {
            q.close_and_clear();
            return;
        }
        // Drop what is queued now; a message still being written is dropped
        // with the mailbox, when the last sender goes.
        // SAFETY: `&mut self`: this is the one receiver.
        while let Pop::Msg(msg) = unsafe { self.flavor.pop() } {
            drop(msg);
        }
    }
}

/// The future of [`Receiver::recv`].
#[must_use = "futures do nothing unless awaited"]
#[derive(Debug)]
pub struct Recv<'a, T> {
    receiver: &'a mut Receiver<T>,
}

impl<T> Future for Recv<'_, T> {
    type Output = Option<T>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<T>> {
        self.get_mut().receiver.poll_recv(cx)
    }
}

/// The future of [`Receiver::recv_many`].
#[must_use = "futures do nothing unless awaited"]
#[derive(Debug)]
pub struct RecvMany<'a, T> {
    receiver: &'a mut Receiver<T>,
    buf: &'a mut Vec<T>,
    limit: usize,
}

impl<T> Future for RecvMany<'_, T> {
    type Output = usize;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<usize> {
        let this = self.get_mut();
        if this.limit == 0 {
            return Poll::Ready(0);
        }
        match this.receiver.poll_recv(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(None) => Poll::Ready(0),
            Poll::Ready(Some(first)) => {
                this.buf.push(first);
                let mut moved = 1;
                while moved < this.limit {
                    match this.receiver.try_recv() {
                        Ok(msg) => {
                            this.buf.push(msg);
                            moved += 1;
                        }
                        Err(_) => break,
                    }
                }
                Poll::Ready(moved)
            }
        }
    }
}

/// Why [`Sender::try_send`] failed. Either way the message is handed back.
#[derive(PartialEq, Eq, Clone, Copy, thiserror::Error)]
pub enum TrySendError<T> {
    /// The bounded mailbox is full.
    #[error("the mailbox is full")]
    Full(T),
    /// The mailbox is closed: the receiver is gone or closed it.
    #[error("the mailbox is closed")]
    Closed(T),
}

impl<T> TrySendError<T> {
    /// The message that was not sent.
    pub fn into_inner(self) -> T {
        match self {
            TrySendError::Full(msg) | TrySendError::Closed(msg) => msg,
        }
    }

    /// Whether the mailbox was full.
    pub fn is_full(&self) -> bool {
        matches!(self, TrySendError::Full(_))
    }

    /// Whether the mailbox was closed.
    pub fn is_closed(&self) -> bool {
        matches!(self, TrySendError::Closed(_))
    }
}

impl<T> fmt::Debug for TrySendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TrySendError::Full(_) => f.write_str("Full(..)"),
            TrySendError::Closed(_) => f.write_str("Closed(..)"),
        }
    }
}

/// [`Sender::send`] failed because the mailbox is closed; the message is
/// handed back.
#[derive(PartialEq, Eq, Clone, Copy, thiserror::Error)]
#[error("the mailbox is closed")]
pub struct SendError<T>(pub T);

impl<T> SendError<T> {
    /// The message that was not sent.
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> fmt::Debug for SendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SendError(..)")
    }
}

/// Why [`Receiver::try_recv`] returned no message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
pub enum TryRecvError {
    /// Nothing is queued now.
    #[error("the mailbox is empty")]
    Empty,
    /// Nothing is queued and the mailbox is closed: nothing ever will be.
    #[error("the mailbox is closed and empty")]
    Closed,
}

#[cfg(test)]
mod tests;
