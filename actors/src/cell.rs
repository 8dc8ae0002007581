//! What every reference to one actor shares: its id, its mailbox, its
//! system inbox and its lifecycle state.
//!
//! An [`ActorRef`](crate::ActorRef) is an `Arc` of this cell and nothing
//! else, so cloning a reference is one atomic increment. The cell outlives
//! every incarnation: a supervisor's restart starts a new run of the actor
//! against the same cell, which is why references stay valid across
//! restarts. State changes of a supervised actor are published from here
//! on its supervisor's event bus.

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, OnceLock};

use tokio::sync::Notify;

use crate::actor::{Actor, ActorId, ExitReason};
use crate::events::ChildState;
use crate::events::bus::EventBus;
use crate::mailbox;
use crate::metrics::{ActorMetrics, Probe};
use crate::message::Envelope;
use crate::system::SystemInbox;

/// Where an actor is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ActorState {
    /// Its `started` hook is running.
    Starting,
    /// It handles messages.
    Running,
    /// It is finishing: handling what was queued, or running `stopped`.
    Stopping,
    /// Its supervisor is about to start a new incarnation. Messages wait.
    Restarting,
    /// It has stopped for good; its mailbox is closed.
    Stopped,
}

/// The state of an actor that has not started its first incarnation yet:
/// reported as `Starting`, but distinct, so that the first `Starting` is
/// a change worth an event.
const NEW: u8 = 5;

impl ActorState {
    fn from_u8(value: u8) -> ActorState {
        match value {
            0 | NEW => ActorState::Starting,
            1 => ActorState::Running,
            2 => ActorState::Stopping,
            3 => ActorState::Restarting,
            _ => ActorState::Stopped,
        }
    }

    fn as_u8(self) -> u8 {
        match self {
            ActorState::Starting => 0,
            ActorState::Running => 1,
            ActorState::Stopping => 2,
            ActorState::Restarting => 3,
            ActorState::Stopped => 4,
        }
    }
}

/// What every reference to one actor shares.
pub(crate) struct Cell<A: Actor> {
    pub(crate) id: ActorId,
    pub(crate) mailbox: mailbox::Sender<Envelope<A>>,
    pub(crate) system: SystemInbox,
    state: AtomicU8,
    stopped: Notify,
    /// What its supervisor gave it on adopting it (one field, so that an
    /// actor pays for one `OnceLock`, supervised or not).
    adoption: OnceLock<Adoption>,
}

/// What a supervisor gives a child when it adopts it.
pub(crate) struct Adoption {
    /// Where state changes are published, under what name, when the
    /// supervisor has an event bus.
    pub(crate) events: Option<(Arc<str>, Arc<EventBus>)>,
    /// Its runtime metrics, when recording is on ([`crate::metrics`]).
    pub(crate) metrics: Option<Arc<ActorMetrics>>,
}

impl<A: Actor> Cell<A> {
    pub(crate) fn new(mailbox: mailbox::Sender<Envelope<A>>) -> Arc<Self> {
        Arc::new(Cell {
            id: ActorId::next(),
            mailbox,
            system: SystemInbox::new(),
            state: AtomicU8::new(NEW),
            stopped: Notify::new(),
            adoption: OnceLock::new(),
        })
    }

    /// Takes what its supervisor gives it (the first adoption wins: a
    /// cell has one supervisor).
    pub(crate) fn adopt(&self, adoption: Adoption) {
        let _ = self.adoption.set(adoption);
    }

    /// This actor's metrics, if it is recorded.
    #[inline]
    pub(crate) fn metrics(&self) -> Option<&Arc<ActorMetrics>> {
        self.adoption.get()?.metrics.as_ref()
    }

    fn observer(&self) -> Option<&(Arc<str>, Arc<EventBus>)> {
        self.adoption.get()?.events.as_ref()
    }

    pub(crate) fn set_state(&self, state: ActorState) {
        let previous = self.state.swap(state.as_u8(), Ordering::AcqRel);
        if previous != state.as_u8() {
            self.publish(match state {
                ActorState::Starting => ChildState::Starting,
                ActorState::Running => ChildState::Running,
                ActorState::Stopping => ChildState::Stopping,
                ActorState::Restarting => ChildState::Restarting,
                ActorState::Stopped => ChildState::Stopped,
            });
        }
        if state == ActorState::Stopped {
            self.stopped.notify_waiters();
        }
    }

    /// Publishes that an incarnation ended in a failure, and why.
    pub(crate) fn publish_failed(&self, reason: &ExitReason) {
        if self.observer().is_some() {
            self.publish(ChildState::Failed {
                reason: reason.clone(),
            });
        }
    }

    fn publish(&self, state: ChildState) {
        if let Some((name, bus)) = self.observer() {
            bus.publish(self.id, name, state);
        }
    }

    pub(crate) fn state(&self) -> ActorState {
        ActorState::from_u8(self.state.load(Ordering::Acquire))
    }

    /// Waits until the actor has stopped for good.
    pub(crate) async fn wait_for_stop(&self) {
        loop {
            let stopped = self.stopped.notified();
            if self.state() == ActorState::Stopped {
                return;
            }
            stopped.await;
        }
    }
}


impl<A: Actor> Probe for Cell<A> {
    fn mailbox_depth(&self) -> usize {
        self.mailbox.len()
    }

    fn state(&self) -> ActorState {
        Cell::state(self)
    }
}
