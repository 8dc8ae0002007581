//! The mutex-backed mailbox, selected by `performance.lock_free = false`.
//!
//! A `VecDeque` behind a `Mutex`, with the wakers kept under the same lock.
//! It has the same API and the same guarantees as the lock-free flavours
//! (FIFO per producer, hand-back on close, one wake-up per empty-to-non-empty
//! transition), and it is simple enough to be obviously right. It exists as
//! a reference: to rule the lock-free code in or out when debugging, and as
//! the baseline row of the mailbox benchmark.

use std::collections::VecDeque;
use std::sync::{Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

use super::queue::Queue;
use super::{Pop, TrySendError};
use crate::loom::AtomicUsize;

struct State<T> {
    queue: VecDeque<T>,
    closed: bool,
    receiver: Option<Waker>,
    senders_waiting: Vec<Waker>,
}

/// A mutex-backed MPSC queue. See the module docs.
pub(crate) struct Locked<T> {
    state: Mutex<State<T>>,
    capacity: Option<usize>,
    senders: AtomicUsize,
}

impl<T> Locked<T> {
    pub(crate) fn new(capacity: Option<usize>) -> Self {
        Locked {
            state: Mutex::new(State {
                queue: VecDeque::new(),
                closed: false,
                receiver: None,
                senders_waiting: Vec::new(),
            }),
            capacity,
            senders: AtomicUsize::new(1),
        }
    }

    /// The lock, even if a panic poisoned it: every critical section below
    /// leaves the state consistent before anything that can panic (waking
    /// happens after the guard is dropped).
    fn lock(&self) -> MutexGuard<'_, State<T>> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Like `try_push`, but registers `cx`'s waker when the mailbox is full.
    pub(crate) fn poll_push(&self, msg: T, cx: &mut Context<'_>) -> Result<(), TrySendError<T>> {
        self.push(msg, Some(cx.waker()))
    }

    /// Pushes `msg`; when full, registers `waker` (if any) under the same
    /// lock, so that a slot freed in between cannot be missed.
    fn push(&self, msg: T, waker: Option<&Waker>) -> Result<(), TrySendError<T>> {
        let mut state = self.lock();
        if state.closed {
            return Err(TrySendError::Closed(msg));
        }
        if self.capacity.is_some_and(|cap| state.queue.len() >= cap) {
            if let Some(waker) = waker
                && !state.senders_waiting.iter().any(|w| w.will_wake(waker))
            {
                state.senders_waiting.push(waker.clone());
            }
            return Err(TrySendError::Full(msg));
        }
        state.queue.push_back(msg);
        let receiver = state.receiver.take();
        drop(state);
        if let Some(waker) = receiver {
            waker.wake();
        }
        Ok(())
    }

    /// Takes the next message; if there is none, registers `cx`'s waker.
    pub(crate) fn poll_pop(&self, cx: &mut Context<'_>) -> Poll<Option<T>> {
        match self.pop_or_register(Some(cx.waker())) {
            Pop::Msg(msg) => Poll::Ready(Some(msg)),
            Pop::Closed => Poll::Ready(None),
            Pop::Empty => Poll::Pending,
        }
    }

    fn pop_or_register(&self, waker: Option<&Waker>) -> Pop<T> {
        let mut state = self.lock();
        match state.queue.pop_front() {
            Some(msg) => {
                let senders = std::mem::take(&mut state.senders_waiting);
                drop(state);
                senders.into_iter().for_each(Waker::wake);
                Pop::Msg(msg)
            }
            None if state.closed => Pop::Closed,
            None => {
                if let Some(waker) = waker {
                    state.receiver = Some(waker.clone());
                }
                Pop::Empty
            }
        }
    }

    /// Closes the mailbox; returns whether this call closed it.
    pub(crate) fn close(&self) -> bool {
        let mut state = self.lock();
        let closed_now = !state.closed;
        state.closed = true;
        let receiver = state.receiver.take();
        let senders = std::mem::take(&mut state.senders_waiting);
        drop(state);
        receiver.into_iter().chain(senders).for_each(Waker::wake);
        closed_now
    }

    /// Closes the mailbox and drops every queued message (the receiver is
    /// gone).
    pub(crate) fn close_and_clear(&self) {
        self.close();
        let queued = std::mem::take(&mut self.lock().queue);
        drop(queued);
    }
}

impl<T> Queue<T> for Locked<T> {
    fn try_push(&self, msg: T) -> Result<(), TrySendError<T>> {
        self.push(msg, None)
    }

    /// The lock makes every pop safe, and checking "closed" costs nothing
    /// extra under it: both kinds of pop are the same.
    unsafe fn pop_checked<const CHECK_CLOSED: bool>(&self) -> Pop<T> {
        self.pop_or_register(None)
    }

    fn is_closed(&self) -> bool {
        self.lock().closed
    }

    fn len(&self) -> usize {
        self.lock().queue.len()
    }

    fn senders(&self) -> &AtomicUsize {
        &self.senders
    }

    fn limit(&self) -> Option<usize> {
        self.capacity
    }

    fn close_and_wake(&self) {
        self.close();
    }
}
