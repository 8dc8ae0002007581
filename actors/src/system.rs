//! The system inbox: stop and end requests for one actor, seen before any
//! queued user message.
//!
//! It is a handful of flags and a parked waker inline in the actor's shared
//! cell, not a mailbox: the requests carry (almost) no data, a later request
//! of the same kind adds nothing, and an idle actor should not pay for a
//! second queue. The wake-up protocol is the mailbox's own
//! ([`RecvSignal`]): a sender sets its flag with a `SeqCst`
//! read-modify-write and then looks for a parked receiver; the receiver
//! parks, then looks at the flags again.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::task::{Context, Poll};

use crate::actor::SharedError;
use crate::mailbox::signal::RecvSignal;

/// A stop for good is pending.
const STOP: u8 = 1;
/// A request scoped to one incarnation (end, complete, fail) is pending.
const SCOPED: u8 = 1 << 1;

/// A request to the actor's loop.
#[derive(Debug, Clone)]
pub(crate) enum SystemMsg {
    /// Stop for good, after handling what is queued.
    Stop,
    /// End this incarnation now; queued messages wait for the next one.
    EndIncarnation,
    /// End this incarnation now as a failure (something the actor depends
    /// on, watched outside its handlers, has failed: a linked child, a
    /// kameo actor).
    Fail(SharedError),
    /// End this incarnation now as completed.
    #[cfg_attr(not(feature = "kameo"), allow(dead_code))]
    Complete,
}

/// See the module docs.
#[derive(Debug)]
pub(crate) struct SystemInbox {
    flags: AtomicU8,
    /// The incarnation now running (its supervisor's generation number).
    incarnation: AtomicU64,
    /// The pending incarnation-scoped request and the incarnation it is
    /// for. A request for an incarnation that has already ended is
    /// dropped when it is read, so it can never end the next one; one
    /// sent for an incarnation that has not started its loop yet waits
    /// for it.
    scoped: Mutex<Option<(u64, SystemMsg)>>,
    signal: RecvSignal,
}

impl SystemInbox {
    pub(crate) fn new() -> Self {
        SystemInbox {
            flags: AtomicU8::new(0),
            incarnation: AtomicU64::new(0),
            scoped: Mutex::new(None),
            signal: RecvSignal::new(),
        }
    }

    /// Asks the actor to stop for good, and wakes it if it is parked.
    pub(crate) fn stop(&self) {
        self.post(STOP);
    }

    /// Posts `msg` (not `Stop`) for incarnation `incarnation` only, and
    /// wakes the actor if it is parked.
    pub(crate) fn send_to_incarnation(&self, incarnation: u64, msg: SystemMsg) {
        debug_assert!(
            !matches!(msg, SystemMsg::Stop),
            "Stop is not scoped to an incarnation"
        );
        *self
            .scoped
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Some((incarnation, msg));
        self.post(SCOPED);
    }

    fn post(&self, flag: u8) {
        self.flags.fetch_or(flag, Ordering::SeqCst);
        self.signal.notify();
    }

    /// Records which incarnation now runs (0 for an unsupervised actor).
    pub(crate) fn start_incarnation(&self, incarnation: u64) {
        self.incarnation.store(incarnation, Ordering::SeqCst);
    }

    /// The incarnation now running.
    pub(crate) fn incarnation(&self) -> u64 {
        self.incarnation.load(Ordering::SeqCst)
    }

    /// The most urgent pending request, or `Pending` with the task's waker
    /// parked until one arrives.
    pub(crate) fn poll_next(&self, cx: &mut Context<'_>) -> Poll<SystemMsg> {
        if let Some(msg) = self.take() {
            return Poll::Ready(msg);
        }
        if !self.signal.park(cx.waker()) {
            // A sender is finishing the previous wake-up: be polled again,
            // after letting it run if it was preempted on this CPU.
            crate::loom::yield_to_notifier();
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        match self.take() {
            Some(msg) => {
                self.signal.cancel_park();
                Poll::Ready(msg)
            }
            None => Poll::Pending,
        }
    }

    fn take(&self) -> Option<SystemMsg> {
        let flags = self.flags.load(Ordering::SeqCst);
        // An incarnation-scoped request ends the incarnation at once, before
        // a graceful stop gets going.
        if flags & SCOPED != 0 {
            self.flags.fetch_and(!SCOPED, Ordering::SeqCst);
            let scoped = self
                .scoped
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .take();
            if let Some((incarnation, msg)) = scoped
                && incarnation == self.incarnation.load(Ordering::SeqCst)
            {
                return Some(msg);
            }
        }
        if flags & STOP != 0 {
            self.flags.fetch_and(!STOP, Ordering::SeqCst);
            return Some(SystemMsg::Stop);
        }
        None
    }
}
