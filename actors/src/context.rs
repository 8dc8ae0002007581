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

use crate::actor::{Actor, ActorId, BoxError, ExitReason, SharedError, message_error};
use crate::actor_ref::ActorRef;
use crate::executor::{Executor, JoinHandle};
use crate::spawn::SpawnOptions;
use crate::system::SystemMsg;

/// Handed to every hook and handler of an actor.
pub struct Context<A: Actor> {
    me: ActorRef<A>,
    executor: Executor,
    end: Option<EndRequest>,
    /// Children linked to this incarnation, in spawn order.
    linked: Vec<LinkedChild>,
}

/// A child spawned with [`Context::spawn_linked`].
struct LinkedChild {
    id: ActorId,
    stop: Box<dyn Fn() + Send + Sync>,
    task: JoinHandle<()>,
}

/// How a handler asked its actor to end.
#[derive(Debug, Clone)]
pub(crate) enum EndRequest {
    /// Stop for good, after what is queued.
    Stop,
    /// This incarnation's work is done; the mailbox stays open.
    Complete,
    /// Fail with this error.
    Fail(SharedError),
}

impl<A: Actor> Context<A> {
    pub(crate) fn new(me: ActorRef<A>, executor: Executor) -> Self {
        Context {
            me,
            executor,
            end: None,
            linked: Vec::new(),
        }
    }

    /// Spawns `child` linked to this incarnation of the actor, on the
    /// actor's worker, and returns its reference.
    ///
    /// A link ties the two lives together, as an Erlang link does:
    ///
    /// - if the child fails (it panics, fails to start, or calls
    ///   [`fail`](Context::fail)), this incarnation fails too, with the
    ///   child's reason; a supervisor then applies the actor's restart
    ///   policy, and the new incarnation spawns its children afresh;
    /// - when this incarnation ends, for any reason, its linked children
    ///   are stopped after its `stopped` hook (so the hook can still talk to
    ///   them), in reverse spawn order, each given
    ///   [`DEFAULT_CHILD_SHUTDOWN_TIMEOUT`](crate::supervision::DEFAULT_CHILD_SHUTDOWN_TIMEOUT)
    ///   before it is aborted. If the actor's own task is aborted, its
    ///   children are asked to stop.
    ///
    /// A child that stops or completes cleanly leaves the parent alone.
    /// For children that restart on their own, use a
    /// [`Supervisor`](crate::supervision::Supervisor) instead.
    pub fn spawn_linked<C: Actor>(&mut self, child: C) -> ActorRef<C> {
        let parent = self.me.clone();
        let parent_incarnation = parent.cell().system.incarnation();
        let report = move |child: ActorId, reason: &ExitReason| {
            if reason.is_failure() {
                parent.cell().system.send_to_incarnation(
                    parent_incarnation,
                    SystemMsg::Fail(message_error(format!(
                        "linked child {child} ({}) {reason}",
                        std::any::type_name::<C>()
                    ))),
                );
            }
        };
        let (child_ref, task) = crate::spawn::spawn_reporting(
            &self.executor,
            self.executor.current_worker(),
            child,
            SpawnOptions::default(),
            report,
        );
        let stopper = child_ref.clone();
        self.linked.push(LinkedChild {
            id: child_ref.id(),
            stop: Box::new(move || stopper.stop()),
            task,
        });
        child_ref
    }

    /// Stops the linked children in reverse spawn order, waiting for each
    /// up to the default child shutdown timeout, then aborting it.
    pub(crate) async fn stop_linked_children(&mut self) {
        // Most actors link no child. The loop below holds a timer (over
        // 250 bytes of future) and is boxed, so that every actor's task
        // does not carry that space for the few that need it.
        if self.linked.is_empty() {
            return;
        }
        Box::pin(self.stop_each_linked_child()).await;
    }

    async fn stop_each_linked_child(&mut self) {
        while let Some(mut child) = self.linked.pop() {
            (child.stop)();
            let timeout = crate::supervision::DEFAULT_CHILD_SHUTDOWN_TIMEOUT;
            if tokio::time::timeout(timeout, &mut child.task)
                .await
                .is_err()
            {
                tracing::warn!(parent = %self.me.id(), child = %child.id, ?timeout, "a linked child did not stop in time; aborting it");
                child.task.abort();
            }
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
    /// with [`ExitReason::Requested`], and
    /// ends. A supervisor does not restart it.
    pub fn stop(&mut self) {
        self.end = Some(EndRequest::Stop);
    }

    /// Ends this incarnation cleanly once the current message is handled
    /// ([`ExitReason::Completed`]). The
    /// mailbox stays open: a supervisor restarts the actor if its policy
    /// is `Always`, and stops it for good otherwise.
    pub fn complete(&mut self) {
        self.end = Some(EndRequest::Complete);
    }

    /// Ends this incarnation as a failure once the current message is
    /// handled ([`ExitReason::Failed`]), as a
    /// panic would, without panicking. A supervisor applies its restart
    /// policy.
    ///
    /// `error` is kept whole in the [`ExitReason`] and in the supervisor's
    /// events: a message (`&str`, `String`) or any error type. A
    /// [`SharedError`] is kept as it is, not wrapped again.
    pub fn fail(&mut self, error: impl Into<BoxError>) {
        let error = match error.into().downcast::<SharedError>() {
            Ok(shared) => *shared,
            Err(other) => SharedError::from(other),
        };
        self.end = Some(EndRequest::Fail(error));
    }

    pub(crate) fn take_end_request(&mut self) -> Option<EndRequest> {
        self.end.take()
    }
}

impl<A: Actor> Drop for Context<A> {
    fn drop(&mut self) {
        // Only non-empty if the actor's task was aborted before it could
        // stop them: ask them to stop rather than leave them orphaned.
        for child in self.linked.drain(..).rev() {
            (child.stop)();
        }
    }
}

impl<A: Actor> fmt::Debug for Context<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Context")
            .field("actor", &self.me.id())
            .field("end", &self.end)
            .field("linked_children", &self.linked.len())
            .finish()
    }
}
