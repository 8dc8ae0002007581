//! `Context`: what a running actor knows about itself.
//!
//! ```
//! use proc_daemon_actors::prelude::*;
//!
//! struct Worker;
//! impl Actor for Worker {}
//!
//! struct Quit;
//! impl Handler<Quit> for Worker {
//!     type Reply = ();
//!     async fn handle(&mut self, _: Quit, ctx: &mut Context<Self>) {
//!         // Handles what is already queued, then stops.
//!         ctx.stop();
//!     }
//! }
//! ```

use std::fmt;

use crate::actor::{Actor, ActorId};
use crate::actor_ref::ActorRef;
use crate::executor::Executor;

/// Handed to every hook and handler of an actor.
pub struct Context<A: Actor> {
    me: ActorRef<A>,
    executor: Executor,
    end: Option<EndRequest>,
}

/// How a handler asked its actor to end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum EndRequest {
    /// Stop for good, after what is queued.
    Stop,
    /// This incarnation's work is done; the mailbox stays open.
    Complete,
    /// Fail with this error.
    Fail(String),
}

impl<A: Actor> Context<A> {
    pub(crate) fn new(me: ActorRef<A>, executor: Executor) -> Self {
        Context {
            me,
            executor,
            end: None,
        }
    }

    /// The actor's own reference, for sending to itself or handing out.
    pub fn actor_ref(&self) -> &ActorRef<A> {
        &self.me
    }

    /// The actor's id.
    pub fn id(&self) -> ActorId {
        self.me.id()
    }

    /// The executor the actor runs on, to spawn tasks or other actors.
    pub fn executor(&self) -> &Executor {
        &self.executor
    }

    /// Stops the actor for good once the current message is handled: it
    /// closes its mailbox, handles what was already queued, runs `stopped`
    /// with [`StopReason::Requested`](crate::StopReason::Requested), and
    /// ends. A supervisor does not restart it.
    pub fn stop(&mut self) {
        self.end = Some(EndRequest::Stop);
    }

    /// Ends this incarnation cleanly once the current message is handled
    /// ([`StopReason::Completed`](crate::StopReason::Completed)). The
    /// mailbox stays open: a supervisor restarts the actor if its policy
    /// is `Always`, and stops it for good otherwise.
    pub fn complete(&mut self) {
        self.end = Some(EndRequest::Complete);
    }

    /// Ends this incarnation as a failure once the current message is
    /// handled ([`StopReason::Failed`](crate::StopReason::Failed)), as a
    /// panic would, without panicking. A supervisor applies its restart
    /// policy.
    pub fn fail(&mut self, error: impl Into<String>) {
        self.end = Some(EndRequest::Fail(error.into()));
    }

    pub(crate) fn take_end_request(&mut self) -> Option<EndRequest> {
        self.end.take()
    }
}

impl<A: Actor> fmt::Debug for Context<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Context")
            .field("actor", &self.me.id())
            .field("end", &self.end)
            .finish()
    }
}
