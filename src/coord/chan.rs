//! A multi-producer, multi-consumer FIFO channel: [`unbounded`], then
//! [`Sender::send`] and [`try_recv`] (or [`Receiver::try_recv`]). Both
//! ends clone; a message goes to exactly one receiver.
//!
//! # Backends
//!
//! The facade picks one at build time, and both are always there to name:
//!
//! - [`locked`]: a `Mutex<VecDeque>`, the default. Short critical sections
//!   and no dependency; fine for coordination traffic.
//! - [`lockfree`] (feature `lockfree-coordination`): `crossbeam-queue`'s
//!   `SegQueue`, an unbounded lock-free MPMC queue. Senders and receivers
//!   never wait on each other's lock, which matters when many threads
//!   hammer one channel. With the feature, [`unbounded`] uses it.
//!
//! docs/PERFORMANCE.md ("Channels") compares both with
//! `crossbeam-channel`.
//!
//! # Disconnection
//!
//! `send` fails, returning the value, once every receiver is gone;
//! `try_recv` says [`TryRecvError::Disconnected`] once every sender is
//! gone and the queue is empty, and [`TryRecvError::Empty`] while a sender
//! may still send. A message sent before the last sender was dropped is
//! always received first.
//!
//! There is no blocking `recv`: the channel is polled (`try_recv`) by
//! code that has its own loop. For a receiver that waits, use an actor's
//! mailbox or a tokio channel.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// The queue under a channel.
trait Queue<T>: Send + Sync {
    fn push(&self, value: T);
    fn pop(&self) -> Option<T>;
    fn len(&self) -> usize;
}

struct Shared<T> {
    queue: Box<dyn Queue<T>>,
    senders: AtomicUsize,
    receivers: AtomicUsize,
}

/// The sending end. Clone it for more producers.
pub struct Sender<T> {
    shared: Arc<Shared<T>>,
}

/// The receiving end. Clone it for more consumers: each message goes to
/// one of them.
pub struct Receiver<T> {
    shared: Arc<Shared<T>>,
}

/// [`Sender::send`] failed: every receiver is gone. The value is returned.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct SendError<T>(pub T);

impl<T> fmt::Debug for SendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SendError(..)")
    }
}

impl<T> fmt::Display for SendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("sending on a channel whose receivers are all gone")
    }
}

impl<T> std::error::Error for SendError<T> {}

/// Why [`try_recv`] returned no message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TryRecvError {
    /// Nothing is queued now; a sender may still send.
    #[error("the channel is empty")]
    Empty,
    /// Nothing is queued, and every sender is gone: nothing ever will be.
    #[error("the channel is empty and its senders are all gone")]
    Disconnected,
}

fn channel<T>(queue: Box<dyn Queue<T>>) -> (Sender<T>, Receiver<T>) {
    let shared = Arc::new(Shared {
        queue,
        senders: AtomicUsize::new(1),
        receivers: AtomicUsize::new(1),
    });
    (
        Sender {
            shared: shared.clone(),
        },
        Receiver { shared },
    )
}

/// An unbounded channel on the backend the build selects: [`lockfree`]
/// with the `lockfree-coordination` feature, else [`locked`].
pub fn unbounded<T: Send + 'static>() -> (Sender<T>, Receiver<T>) {
    #[cfg(feature = "lockfree-coordination")]
    {
        lockfree::unbounded()
    }
    #[cfg(not(feature = "lockfree-coordination"))]
    {
        locked::unbounded()
    }
}

/// Takes the next message without waiting: [`Receiver::try_recv`].
///
/// # Errors
///
/// [`TryRecvError::Empty`] when nothing is queued,
/// [`TryRecvError::Disconnected`] when nothing ever will be.
pub fn try_recv<T>(rx: &Receiver<T>) -> Result<T, TryRecvError> {
    rx.try_recv()
}

impl<T> Sender<T> {
    /// Queues `value` for one of the receivers.
    ///
    /// # Errors
    ///
    /// Every receiver is gone: the value comes back in the error.
    pub fn send(&self, value: T) -> Result<(), SendError<T>> {
        if self.shared.receivers.load(Ordering::Acquire) == 0 {
            return Err(SendError(value));
        }
        self.shared.queue.push(value);
        Ok(())
    }

    /// Messages queued now.
    pub fn len(&self) -> usize {
        self.shared.queue.len()
    }

    /// Whether nothing is queued now.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl<T> Receiver<T> {
    /// Takes the next message without waiting.
    ///
    /// # Errors
    ///
    /// [`TryRecvError::Empty`] when nothing is queued,
    /// [`TryRecvError::Disconnected`] when nothing ever will be.
    pub fn try_recv(&self) -> Result<T, TryRecvError> {
        if let Some(value) = self.shared.queue.pop() {
            return Ok(value);
        }
        if self.shared.senders.load(Ordering::Acquire) == 0 {
            // The last sender may have pushed just before it went: look
            // once more, now that no push can follow.
            return self.shared.queue.pop().ok_or(TryRecvError::Disconnected);
        }
        Err(TryRecvError::Empty)
    }

    /// Messages queued now.
    pub fn len(&self) -> usize {
        self.shared.queue.len()
    }

    /// Whether nothing is queued now.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl<T> Clone for Sender<T> {
    fn clone(&self) -> Self {
        self.shared.senders.fetch_add(1, Ordering::Relaxed);
        Sender {
            shared: self.shared.clone(),
        }
    }
}

impl<T> Clone for Receiver<T> {
    fn clone(&self) -> Self {
        self.shared.receivers.fetch_add(1, Ordering::Relaxed);
        Receiver {
            shared: self.shared.clone(),
        }
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        // Release: a receiver that sees the count at zero sees every push
        // made before.
        self.shared.senders.fetch_sub(1, Ordering::AcqRel);
    }
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        self.shared.receivers.fetch_sub(1, Ordering::AcqRel);
    }
}

impl<T> fmt::Debug for Sender<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sender")
            .field("queued", &self.len())
            .finish()
    }
}

impl<T> fmt::Debug for Receiver<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Receiver")
            .field("queued", &self.len())
            .finish()
    }
}

/// The default backend: a `Mutex<VecDeque>`.
pub mod locked {
    use std::collections::VecDeque;
    use std::sync::Mutex;

    use super::{Queue, Receiver, Sender, channel};
    use crate::lock::lock;

    struct Locked<T>(Mutex<VecDeque<T>>);

    impl<T: Send> Queue<T> for Locked<T> {
        fn push(&self, value: T) {
            lock(&self.0).push_back(value);
        }
        fn pop(&self) -> Option<T> {
            lock(&self.0).pop_front()
        }
        fn len(&self) -> usize {
            lock(&self.0).len()
        }
    }

    /// An unbounded channel over a `Mutex<VecDeque>`.
    pub fn unbounded<T: Send + 'static>() -> (Sender<T>, Receiver<T>) {
        channel(Box::new(Locked(Mutex::new(VecDeque::new()))))
    }
}

/// The lock-free backend: `crossbeam-queue`'s `SegQueue` (feature
/// `lockfree-coordination`).
#[cfg(feature = "lockfree-coordination")]
pub mod lockfree {
    use crossbeam_queue::SegQueue;

    use super::{Queue, Receiver, Sender, channel};

    impl<T: Send> Queue<T> for SegQueue<T> {
        fn push(&self, value: T) {
            SegQueue::push(self, value);
        }
        fn pop(&self) -> Option<T> {
            SegQueue::pop(self)
        }
        fn len(&self) -> usize {
            SegQueue::len(self)
        }
    }

    /// An unbounded channel over a lock-free `SegQueue`.
    pub fn unbounded<T: Send + 'static>() -> (Sender<T>, Receiver<T>) {
        channel(Box::new(SegQueue::new()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A backend's name and its `unbounded`.
    type Backend = (&'static str, fn() -> (Sender<u64>, Receiver<u64>));

    fn backends() -> Vec<Backend> {
        vec![
            ("locked", locked::unbounded::<u64>),
            #[cfg(feature = "lockfree-coordination")]
            ("lockfree", lockfree::unbounded::<u64>),
        ]
    }

    #[test]
    fn fifo_then_disconnected_once_the_senders_are_gone() {
        for (name, make) in backends() {
            let (tx, rx) = make();
            assert_eq!(rx.try_recv(), Err(TryRecvError::Empty), "{name}");
            tx.send(1).unwrap();
            tx.clone().send(2).unwrap();
            assert_eq!(rx.len(), 2);
            drop(tx);
            assert_eq!(try_recv(&rx), Ok(1), "{name}");
            assert_eq!(try_recv(&rx), Ok(2), "{name}");
            assert_eq!(try_recv(&rx), Err(TryRecvError::Disconnected), "{name}");
        }
    }

    #[test]
    fn send_fails_once_the_receivers_are_gone() {
        for (name, make) in backends() {
            let (tx, rx) = make();
            let rx2 = rx.clone();
            drop(rx);
            tx.send(1).unwrap();
            assert_eq!(rx2.try_recv(), Ok(1), "{name}");
            drop(rx2);
            assert_eq!(tx.send(7), Err(SendError(7)), "{name}");
        }
    }

    #[test]
    fn every_message_reaches_exactly_one_of_several_receivers() {
        const PER_PRODUCER: u64 = 20_000;
        for (name, make) in backends() {
            let (tx, rx) = make();
            let producers: Vec<_> = (0..3)
                .map(|p| {
                    let tx = tx.clone();
                    std::thread::spawn(move || {
                        for i in 0..PER_PRODUCER {
                            tx.send(p * PER_PRODUCER + i).unwrap();
                        }
                    })
                })
                .collect();
            drop(tx);
            let consumers: Vec<_> = (0..3)
                .map(|_| {
                    let rx = rx.clone();
                    std::thread::spawn(move || {
                        let mut got = Vec::new();
                        loop {
                            match rx.try_recv() {
                                Ok(value) => got.push(value),
                                Err(TryRecvError::Empty) => std::thread::yield_now(),
                                Err(TryRecvError::Disconnected) => return got,
                            }
                        }
                    })
                })
                .collect();
            for producer in producers {
                producer.join().unwrap();
            }
            let mut all: Vec<u64> = consumers
                .into_iter()
                .flat_map(|c| c.join().unwrap())
                .collect();
            all.sort_unstable();
            assert_eq!(all, (0..3 * PER_PRODUCER).collect::<Vec<_>>(), "{name}");
        }
    }
}
