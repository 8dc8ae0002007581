//! Starting an actor, and the loop that runs one incarnation of it.
//!
//! ```
//! use proc_daemon_actors::prelude::*;
//! use proc_daemon_actors::spawn::{SpawnOptions, spawn_with};
//! use proc_daemon_actors::mailbox::{Backend, Capacity};
//!
//! struct Idle;
//! impl Actor for Idle {}
//!
//! let executor = Executor::builder().worker_threads(1).build()?;
//! let options = SpawnOptions::default()
//!     .capacity(Capacity::Bounded(64))
//!     .backend(Backend::Mutex);
//! let idle = spawn_with(&executor, Idle, options);
//! idle.stop();
//! executor.spawn(async move { idle.wait_for_stop().await }).join()?;
//! # executor.shutdown(std::time::Duration::from_secs(1))?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! An actor has its mailbox, which its `ActorRef`s send to, and a system
//! inbox for stop requests (`system.rs`), which the loop always looks at
//! first, so a stop is seen even behind a full mailbox. An incarnation
//! borrows the mailbox; when it ends, a supervisor can hand it to the next
//! incarnation, which is how messages survive a restart.

use std::future::poll_fn;
use std::task::Poll;
use std::time::Instant;

use crate::actor::{Actor, ActorId, ExitReason};
use crate::actor_ref::ActorRef;
use crate::cell::{ActorState, Cell};
use crate::context::{Context, EndRequest};
use crate::dead_letter::{self, DeadLetter, DeadLetterReason};
use crate::executor::{Executor, JoinHandle, SpawnError};
use crate::mailbox::{self, Backend, Capacity, Receiver};
use crate::message::{Envelope, Outcome};
use crate::system::SystemMsg;

/// The default capacity of an actor's mailbox.
pub const DEFAULT_MAILBOX_CAPACITY: usize = 1024;

/// How to build an actor's mailbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpawnOptions {
    capacity: Capacity,
    backend: Backend,
}

impl Default for SpawnOptions {
    /// Bounded to [`DEFAULT_MAILBOX_CAPACITY`] (senders wait when it is
    /// full), lock-free.
    fn default() -> Self {
        SpawnOptions {
            capacity: Capacity::Bounded(DEFAULT_MAILBOX_CAPACITY),
            backend: Backend::LockFree,
        }
    }
}

impl SpawnOptions {
    /// The user mailbox's capacity.
    pub fn capacity(mut self, capacity: Capacity) -> Self {
        self.capacity = capacity;
        self
    }

    /// The mailbox implementation (`performance.lock_free`).
    pub fn backend(mut self, backend: Backend) -> Self {
        self.backend = backend;
        self
    }
}

/// The mailbox's receiving end, owned by whoever runs the actor. (The
/// system inbox lives in the actor's shared cell.)
pub(crate) struct Inboxes<A: Actor> {
    pub(crate) user: Receiver<Envelope<A>>,
}

/// A new actor's reference and its mailboxes.
pub(crate) fn new_actor<A: Actor>(options: SpawnOptions) -> (ActorRef<A>, Inboxes<A>) {
    let (user_tx, user) = mailbox::channel(options.capacity, options.backend);
    let me = ActorRef::from_cell(Cell::new(user_tx));
    (me, Inboxes { user })
}

/// Starts `actor` on `executor`, unsupervised, with a default mailbox. It
/// runs until it is stopped or panics; nothing restarts it.
pub fn spawn<A: Actor>(executor: &Executor, actor: A) -> ActorRef<A> {
    spawn_with(executor, actor, SpawnOptions::default())
}

/// As [`spawn`], with the mailbox built from `options`.
pub fn spawn_with<A: Actor>(executor: &Executor, actor: A, options: SpawnOptions) -> ActorRef<A> {
    let (me, inboxes) = new_actor(options);
    // Detached: the actor's life is followed through its ActorRef.
    drop(executor.spawn(run_unsupervised(
        actor,
        me.clone(),
        executor.clone(),
        inboxes,
    )));
    me
}

/// As [`spawn_with`], on worker `worker` of the executor (to keep actors
/// that talk a lot on one core). Fails if there is no such worker.
pub fn spawn_on<A: Actor>(
    executor: &Executor,
    worker: usize,
    actor: A,
    options: SpawnOptions,
) -> Result<ActorRef<A>, SpawnError> {
    let (me, inboxes) = new_actor(options);
    let task = executor.spawn_on(
        worker,
        run_unsupervised(actor, me.clone(), executor.clone(), inboxes),
    )?;
    drop(task);
    Ok(me)
}

/// Spawns `actor` unsupervised on `worker` (round-robin if `None` or out
/// of range) and calls `report` with its id and stop reason when it ends.
/// For linked children ([`Context::spawn_linked`](crate::Context::spawn_linked)).
pub(crate) fn spawn_reporting<A: Actor>(
    executor: &Executor,
    worker: Option<usize>,
    actor: A,
    options: SpawnOptions,
    report: impl FnOnce(ActorId, &ExitReason) + Send + 'static,
) -> (ActorRef<A>, JoinHandle<()>) {
    let (me, mut inboxes) = new_actor(options);
    let task = {
        let me = me.clone();
        let exec = executor.clone();
        async move {
            let stopped = StoppedOnDrop(me.clone());
            let reason = run_incarnation(actor, &me, &exec, &mut inboxes, 0).await;
            tracing::debug!(actor = %me.id(), %reason, "linked actor stopped");
            close_for_good(&me, &mut inboxes);
            drop(stopped);
            report(me.id(), &reason);
        }
    };
    let handle = match worker.filter(|&w| w < executor.worker_count()) {
        Some(worker) => executor
            .spawn_on(worker, task)
            .expect("the worker index was checked"),
        None => executor.spawn(task),
    };
    (me, handle)
}

/// One incarnation, then the actor is stopped for good.
async fn run_unsupervised<A: Actor>(
    actor: A,
    me: ActorRef<A>,
    executor: Executor,
    mut inboxes: Inboxes<A>,
) {
    let stopped = StoppedOnDrop(me.clone());
    let reason = run_incarnation(actor, &me, &executor, &mut inboxes, 0).await;
    tracing::debug!(actor = %me.id(), %reason, "actor stopped");
    close_for_good(&me, &mut inboxes);
    drop(stopped);
}

/// Marks the actor stopped however its task ends, aborted included, so
/// that `wait_for_stop` never hangs.
pub(crate) struct StoppedOnDrop<A: Actor>(pub(crate) ActorRef<A>);

impl<A: Actor> Drop for StoppedOnDrop<A> {
    fn drop(&mut self) {
        self.0.cell().set_state(ActorState::Stopped);
    }
}

/// Closes both mailboxes for good and reports what was still queued as
/// dead letters (an `ask` among them gets [`AskError::Dropped`](crate::AskError::Dropped)).
pub(crate) fn close_for_good<A: Actor>(me: &ActorRef<A>, inboxes: &mut Inboxes<A>) {
    inboxes.user.close();
    while let Ok(envelope) = inboxes.user.try_recv() {
        if let Some(metrics) = me.cell().metrics() {
            metrics.count_dead_letter();
        }
        dead_letter::report(DeadLetter {
            actor: me.id(),
            actor_type: std::any::type_name::<A>(),
            message_type: envelope.message_type(),
            reason: DeadLetterReason::ActorStopped,
        });
    }
    me.cell().set_state(ActorState::Stopped);
}

enum Next<A: Actor> {
    System(SystemMsg),
    Message(Envelope<A>),
    /// The user mailbox is closed and drained.
    Drained,
}

/// Runs incarnation number `incarnation` of `actor` (its supervisor's
/// generation; 0 when unsupervised) until it stops, and says why. The
/// mailbox stays open unless the actor was asked to stop for good.
pub(crate) async fn run_incarnation<A: Actor>(
    mut actor: A,
    me: &ActorRef<A>,
    executor: &Executor,
    inboxes: &mut Inboxes<A>,
    incarnation: u64,
) -> ExitReason {
    let mut ctx = Context::new(me.clone(), executor.clone());
    me.cell().system.start_incarnation(incarnation);
    me.cell().set_state(ActorState::Starting);
    match crate::panic::CatchUnwind::new(actor.started(&mut ctx)).await {
        Ok(Ok(())) => {}
        Ok(Err(error)) => {
            ctx.stop_linked_children().await;
            let reason = ExitReason::StartFailed {
                error: error.into(),
            };
            me.cell().publish_failed(&reason);
            return reason;
        }
        Err(message) => {
            ctx.stop_linked_children().await;
            let reason = ExitReason::Panicked { message };
            me.cell().publish_failed(&reason);
            return reason;
        }
    }
    me.cell().set_state(ActorState::Running);
    // Looked up once per incarnation, not per message.
    let metrics = me.cell().metrics().cloned();
    let mut stopping = false;
    let reason = loop {
        let next = poll_fn(|cx| {
            if let Poll::Ready(msg) = me.cell().system.poll_next(cx) {
                return Poll::Ready(Next::System(msg));
            }
            inboxes.user.poll_recv(cx).map(|envelope| match envelope {
                Some(envelope) => Next::Message(envelope),
                None => Next::Drained,
            })
        })
        .await;
        match next {
            Next::System(SystemMsg::EndIncarnation) => break ExitReason::Supervisor,
            Next::System(SystemMsg::Fail(error)) => break ExitReason::Failed { error },
            Next::System(SystemMsg::Complete) => break ExitReason::Completed,
            Next::System(SystemMsg::Stop) => {
                begin_stopping(me, inboxes, &mut stopping);
            }
            Next::Drained => break ExitReason::Requested,
            Next::Message(envelope) => {
                let message_type = envelope.message_type();
                let timed = match &metrics {
                    Some(metrics) if metrics.count_handled() => Some(Instant::now()),
                    _ => None,
                };
                let outcome = envelope.dispatch(&mut actor, &mut ctx).await;
                if let (Some(began), Some(metrics)) = (timed, &metrics) {
                    metrics.record_latency(began.elapsed());
                }
                if let Outcome::Panicked { message } = outcome {
                    if let Some(metrics) = &metrics {
                        metrics.count_dead_letter();
                    }
                    dead_letter::report(DeadLetter {
                        actor: me.id(),
                        actor_type: std::any::type_name::<A>(),
                        message_type,
                        reason: DeadLetterReason::HandlerPanicked {
                            message: message.clone(),
                        },
                    });
                    break ExitReason::Panicked { message };
                }
                match ctx.take_end_request() {
                    None => {}
                    Some(EndRequest::Stop) => begin_stopping(me, inboxes, &mut stopping),
                    Some(EndRequest::Complete) => break ExitReason::Completed,
                    Some(EndRequest::Fail(error)) => break ExitReason::Failed { error },
                }
            }
        }
    };
    me.cell().set_state(ActorState::Stopping);
    if let Err(message) = crate::panic::CatchUnwind::new(actor.stopped(&mut ctx, &reason)).await {
        tracing::error!(actor = %me.id(), %message, "an actor's stopped hook panicked");
    }
    ctx.stop_linked_children().await;
    if reason.is_failure() {
        me.cell().publish_failed(&reason);
    }
    reason
}

/// A stop for good: refuse new messages from now on, and let the loop
/// handle what is queued until the mailbox reports drained.
fn begin_stopping<A: Actor>(me: &ActorRef<A>, inboxes: &mut Inboxes<A>, stopping: &mut bool) {
    if !*stopping {
        *stopping = true;
        me.cell().set_state(ActorState::Stopping);
        inboxes.user.close();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Idle;
    impl Actor for Idle {}

    /// Every idle actor carries its task's future, so the future's size is
    /// most of an actor's memory (`benches/actor_memory.rs`). Boxing the
    /// rarely used linked-children shutdown took it from 576 to 344 bytes;
    /// this keeps it from growing back unnoticed.
    #[test]
    fn an_idle_actors_task_future_stays_small() {
        let executor = Executor::builder().worker_threads(1).build().unwrap();
        let (me, inboxes) = new_actor::<Idle>(SpawnOptions::default());
        let future = run_unsupervised(Idle, me.clone(), executor.clone(), inboxes);
        let size = std::mem::size_of_val(&future);
        assert!(size <= 352, "the unsupervised actor's future is {size} bytes");
        drop(future);
        executor.shutdown(std::time::Duration::from_secs(1)).unwrap();
    }
}
