//! A one-shot, wake-all cancellation flag: what a daemon's shutdown
//! signal and each subsystem incarnation's stop are made of.
//!
//! ```
//! use proc_daemon_actors::cancel::CancelToken;
//! use std::sync::Arc;
//!
//! # let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
//! # runtime.block_on(async {
//! let token = Arc::new(CancelToken::new());
//! let waiter = {
//!     let token = token.clone();
//!     tokio::spawn(async move { token.cancelled().await })
//! };
//! assert!(token.cancel()); // the first call cancels...
//! assert!(!token.cancel()); // ...later ones find it done
//! waiter.await.unwrap();
//! assert!(token.is_cancelled());
//! # });
//! ```
//!
//! # Why not `tokio::sync::Notify`
//!
//! It did the job, with a check-register-check loop around
//! `notify_waiters`. But tokio does not build under `--cfg loom`, so the
//! race at the heart of every shutdown (a cancel racing a waiter that is
//! registering) could not be model-checked. This type reaches its atomic
//! and its mutex only through the crate's loom shim, and
//! `loom-tests/tests/cancel.rs` checks it: a cancel racing one waiter,
//! several waiters, a waiter that polls again, and a waiter dropped before
//! the cancel.
//!
//! # The protocol
//!
//! - `cancel` sets the flag (once), then takes the lock and wakes every
//!   registered waker.
//! - A waiter checks the flag; if clear, it takes the lock, checks the flag
//!   again, and registers its waker under the lock.
//!
//! If the waiter's second check finds the flag clear, the canceller takes
//! the lock only after the waiter has released it, and so finds its waker.
//! If the canceller took the lock first, its flag store happens before the
//! waiter's lock, and the waiter sees it. A wake-up is never lost.
//!
//! Waiting costs nothing once cancelled (one acquire load), and one lock
//! per registration before that; a waiter that is dropped gives its slot
//! back, so a `select!` loop that creates a new waiter each round does not
//! grow the list.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use crate::loom::{AtomicBool, Mutex, MutexGuard, Ordering};

/// A one-shot, wake-all flag. See the module docs.
pub struct CancelToken {
    cancelled: AtomicBool,
    waiters: Mutex<Waiters>,
}

/// The registered wakers. A slot belongs to one [`Cancelled`] future from
/// its first registration until it is dropped or completes; `free` lists
/// the slots that belong to nobody.
#[derive(Default)]
struct Waiters {
    slots: Vec<Option<Waker>>,
    free: Vec<usize>,
}

impl fmt::Debug for CancelToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CancelToken")
            .field("cancelled", &self.is_cancelled())
            .finish()
    }
}

impl Default for CancelToken {
    fn default() -> Self {
        CancelToken::new()
    }
}

impl CancelToken {
    /// A token that is not cancelled.
    pub fn new() -> Self {
        CancelToken {
            cancelled: AtomicBool::new(false),
            waiters: Mutex::new(Waiters::default()),
        }
    }

    /// Cancels the token and wakes every waiter. Returns whether this call
    /// cancelled it (`false` if it already was).
    ///
    /// Whatever the caller wrote before cancelling is visible to a waiter
    /// once it sees the cancellation (release, then acquire).
    pub fn cancel(&self) -> bool {
        if self.cancelled.swap(true, Ordering::AcqRel) {
            return false;
        }
        let wakers: Vec<Waker> = self
            .lock()
            .slots
            .iter_mut()
            .filter_map(Option::take)
            .collect();
        // Woken outside the lock: a waker may run code that polls again.
        for waker in wakers {
            waker.wake();
        }
        true
    }

    /// Whether the token is cancelled.
    pub fn is_cancelled(&self) -> bool {
        self.cancelled.load(Ordering::Acquire)
    }

    /// Resolves once the token is cancelled (at once if it already is).
    pub fn cancelled(&self) -> Cancelled<'_> {
        Cancelled {
            token: self,
            slot: None,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Waiters> {
        self.waiters
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// The future of [`CancelToken::cancelled`].
#[must_use = "a future does nothing unless awaited"]
pub struct Cancelled<'a> {
    token: &'a CancelToken,
    /// This waiter's slot in the token's list, once it registered.
    slot: Option<usize>,
}

impl fmt::Debug for Cancelled<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cancelled")
            .field("cancelled", &self.token.is_cancelled())
            .field("registered", &self.slot.is_some())
            .finish()
    }
}

impl Cancelled<'_> {
    /// Gives the slot back, with the lock held.
    fn release(&mut self, waiters: &mut Waiters) {
        if let Some(index) = self.slot.take() {
            waiters.slots[index] = None;
            waiters.free.push(index);
        }
    }
}

impl Future for Cancelled<'_> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        if this.token.is_cancelled() {
            if this.slot.is_some() {
                let token = this.token;
                this.release(&mut token.lock());
            }
            return Poll::Ready(());
        }
        let token = this.token;
        let mut waiters = token.lock();
        // Again under the lock: see "The protocol" in the module docs.
        if token.is_cancelled() {
            this.release(&mut waiters);
            return Poll::Ready(());
        }
        match this.slot {
            Some(index) => match &mut waiters.slots[index] {
                Some(registered) if registered.will_wake(cx.waker()) => {}
                slot => *slot = Some(cx.waker().clone()),
            },
            None => {
                let index = match waiters.free.pop() {
                    Some(index) => {
                        waiters.slots[index] = Some(cx.waker().clone());
                        index
                    }
                    None => {
                        waiters.slots.push(Some(cx.waker().clone()));
                        waiters.slots.len() - 1
                    }
                };
                this.slot = Some(index);
            }
        }
        Poll::Pending
    }
}

impl Drop for Cancelled<'_> {
    fn drop(&mut self) {
        if self.slot.is_some() {
            let token = self.token;
            self.release(&mut token.lock());
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::AtomicUsize;
    use std::task::Wake;

    /// A waker that counts its wakes.
    #[derive(Default)]
    struct Counter(AtomicUsize);

    impl Wake for Counter {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
    }

    fn poll(future: &mut Cancelled<'_>, waker: &Waker) -> Poll<()> {
        Pin::new(future).poll(&mut Context::from_waker(waker))
    }

    #[test]
    fn a_registered_waiter_is_woken_once_and_then_ready() {
        let token = CancelToken::new();
        let counter = Arc::new(Counter::default());
        let waker = Waker::from(counter.clone());
        let mut waiter = token.cancelled();
        assert_eq!(poll(&mut waiter, &waker), Poll::Pending);
        assert_eq!(poll(&mut waiter, &waker), Poll::Pending, "polled again");
        assert!(token.cancel());
        assert_eq!(counter.0.load(std::sync::atomic::Ordering::SeqCst), 1);
        assert_eq!(poll(&mut waiter, &waker), Poll::Ready(()));
        assert!(!token.cancel());
    }

    #[test]
    fn dropped_waiters_give_their_slots_back() {
        let token = CancelToken::new();
        let waker = Waker::from(Arc::new(Counter::default()));
        for _ in 0..1000 {
            let mut waiter = token.cancelled();
            assert_eq!(poll(&mut waiter, &waker), Poll::Pending);
        }
        assert_eq!(token.lock().slots.len(), 1, "one slot, reused");
        let mut first = token.cancelled();
        let mut second = token.cancelled();
        assert_eq!(poll(&mut first, &waker), Poll::Pending);
        assert_eq!(poll(&mut second, &waker), Poll::Pending);
        drop(first);
        token.cancel();
        assert_eq!(poll(&mut second, &waker), Poll::Ready(()));
        drop(second);
        let waiters = token.lock();
        assert!(waiters.slots.iter().all(Option::is_none));
        assert_eq!(waiters.free.len(), waiters.slots.len());
    }
}
