//! The event bus: where supervisors publish their children's events, for
//! polling and for subscribers.
//!
//! ```
//! use std::sync::Arc;
//! use proc_daemon_actors::events::ChildEvent;
//! use proc_daemon_actors::support::EventBus;
//!
//! let bus = Arc::new(EventBus::new(1024));
//! bus.enable();
//! // Hand it to a supervisor: Supervisor::builder().events(bus.clone()).
//! while let Some(ChildEvent::StateChanged { id, name, state, at }) = bus.try_next_event() {
//!     println!("[{at:?}] {name} ({id}) -> {state:?}");
//! }
//! ```
//!
//! `pub` for the daemon crate, which reaches it through
//! [`support`](crate::support) and offers it as `SubsystemManager`; it is
//! not part of the actor API.
//!
//!
//! Publishing never blocks an actor. Polled events sit in a bounded
//! lock-free ring (`crossbeam_queue::ArrayQueue`); when it is full the oldest
//! event is dropped and counted ([`EventBus::dropped`]). Each subscriber
//! has its own bounded mailbox; an event that does not fit is dropped for
//! that subscriber and counted too. Nothing is published until
//! [`EventBus::enable`] is called or a subscriber exists, so an unused bus
//! costs one atomic load per state change.
//!
//! The ring is allocated by the first [`EventBus::enable`], not by
//! [`EventBus::new`]: `ArrayQueue::new` writes every slot, so a daemon's
//! 1024-event ring made 57 KB resident in every process, polled or not,
//! and the process's exit had to free it (about 0.4 µs per page on a small
//! VM, docs/performance-history.md, "Daemon").

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::SystemTime;

use crossbeam_queue::ArrayQueue;

use super::{ChildEvent, ChildState};
use crate::actor::ActorId;
use crate::mailbox::{self, TrySendError};

/// Where events go. See the module docs.
pub struct EventBus {
    polling: AtomicBool,
    has_subscribers: AtomicBool,
    /// Created by the first `enable` (see the module docs).
    ring: OnceLock<ArrayQueue<ChildEvent>>,
    subscribers: Mutex<Vec<mailbox::Sender<ChildEvent>>>,
    capacity: usize,
    dropped: AtomicU64,
}

impl fmt::Debug for EventBus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EventBus")
            .field("polling", &self.polling.load(Ordering::Relaxed))
            .field("queued", &self.ring.get().map_or(0, ArrayQueue::len))
            .field("dropped", &self.dropped())
            .finish()
    }
}

impl EventBus {
    /// A bus whose ring, and each subscriber's mailbox, hold `capacity`
    /// events. Panics if `capacity` is 0.
    pub fn new(capacity: usize) -> Self {
        assert!(capacity > 0, "an EventBus needs a capacity of at least 1");
        EventBus {
            polling: AtomicBool::new(false),
            has_subscribers: AtomicBool::new(false),
            ring: OnceLock::new(),
            subscribers: Mutex::new(Vec::new()),
            capacity,
            dropped: AtomicU64::new(0),
        }
    }

    /// Starts keeping events for [`try_next_event`](Self::try_next_event).
    pub fn enable(&self) {
        // Created before `polling` is set: a publisher that sees `polling`
        // (Acquire) finds the ring.
        self.ring.get_or_init(|| ArrayQueue::new(self.capacity));
        self.polling.store(true, Ordering::Release);
    }

    /// Stops keeping events for polling (subscribers still get theirs).
    pub fn disable(&self) {
        self.polling.store(false, Ordering::Release);
    }

    /// The oldest event not yet taken, if any. Never blocks.
    pub fn try_next_event(&self) -> Option<ChildEvent> {
        self.ring.get()?.pop()
    }

    /// A new subscription: every event from now on, in a bounded mailbox
    /// of the bus's capacity. Receive with `recv().await`. Dropping the
    /// receiver ends the subscription.
    pub fn subscribe(&self) -> mailbox::Receiver<ChildEvent> {
        let (tx, rx) = mailbox::bounded(self.capacity);
        let mut subscribers = self
            .subscribers
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        subscribers.push(tx);
        self.has_subscribers.store(true, Ordering::Release);
        rx
    }

    /// Ends every subscription: each subscriber receives what is already
    /// in its mailbox, then `None`. Later subscriptions work as usual. A
    /// daemon calls this once its tree has stopped, so that a task looping
    /// on `recv()` ends instead of holding up the exit.
    pub fn close_subscriptions(&self) {
        let mut subscribers = self
            .subscribers
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        self.has_subscribers.store(false, Ordering::Release);
        subscribers.clear();
    }

    /// Events dropped so far: pushed out of a full ring, or not delivered
    /// to a subscriber whose mailbox was full.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    pub(crate) fn publish(&self, id: ActorId, name: &Arc<str>, state: ChildState) {
        let polling = self.polling.load(Ordering::Acquire);
        let subscribed = self.has_subscribers.load(Ordering::Acquire);
        if !polling && !subscribed {
            return;
        }
        let event = ChildEvent::StateChanged {
            id,
            name: name.clone(),
            state,
            at: SystemTime::now(),
        };
        if subscribed {
            let mut subscribers = self
                .subscribers
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            subscribers.retain(|subscriber| match subscriber.try_send(event.clone()) {
                Ok(()) => true,
                Err(TrySendError::Full(_)) => {
                    self.dropped.fetch_add(1, Ordering::Relaxed);
                    true
                }
                Err(TrySendError::Closed(_)) => false,
            });
            self.has_subscribers
                .store(!subscribers.is_empty(), Ordering::Release);
        }
        if polling
            && let Some(ring) = self.ring.get()
            && ring.force_push(event).is_some()
        {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn publish_one(bus: &EventBus) {
        bus.publish(
            ActorId::next(),
            &Arc::from("worker"),
            ChildState::Running,
        );
    }

    #[test]
    fn the_ring_exists_only_once_polling_is_enabled() {
        let bus = EventBus::new(1024);
        publish_one(&bus);
        assert!(
            bus.ring.get().is_none(),
            "an unpolled bus allocates no ring"
        );
        assert_eq!(bus.try_next_event(), None);

        bus.enable();
        publish_one(&bus);
        assert!(matches!(
            bus.try_next_event(),
            Some(ChildEvent::StateChanged {
                state: ChildState::Running,
                ..
            })
        ));
        assert_eq!(bus.try_next_event(), None);
        assert_eq!(bus.dropped(), 0);
    }
}
