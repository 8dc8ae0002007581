//! Lifecycle events: every state change of a supervised actor.
//!
//! ```
//! use proc_daemon_actors::events::{ChildEvent, ChildState};
//!
//! fn log(event: &ChildEvent) {
//!     let ChildEvent::StateChanged { id, name, state, at } = event;
//!     if let ChildState::Failed { reason } = state {
//!         eprintln!("[{at:?}] {name} ({id}) failed: {reason}");
//!     }
//! }
//! # let _ = log;
//! ```
//!
//! A supervisor publishes its children's events on an event bus
//! (`bus.rs`), which keeps them for polling and hands them to
//! subscribers. The daemon crate owns the bus and offers it as
//! `proc_daemon::SubsystemManager`, under the names the API reference uses
//! (`ChildEvent`, `ChildState`); this crate names the same types
//! after what they describe, a supervised child.

pub(crate) mod bus;

use std::sync::Arc;
use std::time::SystemTime;

use crate::actor::{ActorId, ExitReason};

/// A supervised actor's state, as events report it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ChildState {
    /// Its `started` hook is running.
    Starting,
    /// It handles messages.
    Running,
    /// It is finishing an incarnation.
    Stopping,
    /// It has stopped for good.
    Stopped,
    /// Its incarnation ended in a failure (a panic, a failed start, or a
    /// reported failure); the supervisor decides what next.
    Failed {
        /// Why, with the error the actor reported kept whole
        /// ([`ExitReason::error`]).
        reason: ExitReason,
    },
    /// It waits for its next incarnation.
    Restarting,
}

/// Something that happened to a supervised actor.
///
/// Not `#[non_exhaustive]`: the API reference matches on it with one arm,
/// and a new kind of event is a breaking change that callers should see.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChildEvent {
    /// The actor moved to `state`.
    StateChanged {
        /// The actor (the same across restarts).
        id: ActorId,
        /// Its name under its supervisor.
        name: Arc<str>,
        /// The new state.
        state: ChildState,
        /// When, by the wall clock.
        at: SystemTime,
    },
}

