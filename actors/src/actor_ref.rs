//! `ActorRef`: how the rest of the program talks to an actor, and
//! `Recipient`: a reference that knows only the message type.
//!
//! ```
//! use std::time::Duration;
//! use proc_daemon_actors::prelude::*;
//! use proc_daemon_actors::spawn::spawn;
//!
//! struct Echo;
//! impl Actor for Echo {}
//! impl Handler<String> for Echo {
//!     type Reply = String;
//!     async fn handle(&mut self, msg: String, _ctx: &mut Context<Self>) -> String {
//!         msg
//!     }
//! }
//!
//! let executor = Executor::builder().worker_threads(1).build()?;
//! let echo = spawn(&executor, Echo);
//! let recipient: Recipient<String> = echo.clone().recipient();
//! let answer = executor
//!     .spawn(async move {
//!         recipient.tell("fire and forget".to_owned()).await?;
//!         echo.ask("ping".to_owned()).timeout(Duration::from_secs(1)).await
//!     })
//!     .join()??;
//! assert_eq!(answer, "ping");
//! # executor.shutdown(Duration::from_secs(1))?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! An `ActorRef` names the actor's mailbox, not one run of it: when a
//! supervisor restarts the actor, the same mailbox feeds the new
//! incarnation, so every reference stays valid and nothing sent in between
//! is lost.

use std::fmt;
use std::future::{Future, IntoFuture};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::oneshot;

use crate::actor::{Actor, ActorId};
use crate::cell::{ActorState, Cell};
use crate::error::{AskError, TellError, TryTellError};
use crate::mailbox::TrySendError;
use crate::message::{AskEnvelope, Envelope, Handler, TellEnvelope};

/// A typed reference to a running actor. Cheap to clone; see the module
/// docs.
pub struct ActorRef<A: Actor> {
    cell: Arc<Cell<A>>,
}

impl<A: Actor> Clone for ActorRef<A> {
    fn clone(&self) -> Self {
        ActorRef {
            cell: self.cell.clone(),
        }
    }
}

impl<A: Actor> fmt::Debug for ActorRef<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ActorRef")
            .field("id", &self.cell.id)
            .field("actor", &std::any::type_name::<A>())
            .field("state", &self.cell.state())
            .finish()
    }
}

impl<A: Actor> PartialEq for ActorRef<A> {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.cell, &other.cell)
    }
}

impl<A: Actor> Eq for ActorRef<A> {}

impl<A: Actor> ActorRef<A> {
    pub(crate) fn from_cell(cell: Arc<Cell<A>>) -> Self {
        ActorRef { cell }
    }

    pub(crate) fn cell(&self) -> &Arc<Cell<A>> {
        &self.cell
    }

    /// The actor's id; the same across restarts.
    pub fn id(&self) -> ActorId {
        self.cell.id
    }

    /// Where the actor is in its life.
    pub fn state(&self) -> ActorState {
        self.cell.state()
    }

    /// Whether the actor still takes messages (it has not stopped for good).
    /// A restarting actor is alive: its messages wait for the next
    /// incarnation.
    pub fn is_alive(&self) -> bool {
        !self.cell.mailbox.is_closed()
    }

    /// How many messages wait in the mailbox.
    pub fn mailbox_len(&self) -> usize {
        self.cell.mailbox.len()
    }

    /// Sends `msg` without waiting for it to be handled. On a full bounded
    /// mailbox it waits for room (backpressure). Fails, handing the
    /// message back, only if the actor has stopped for good.
    pub async fn tell<M>(&self, msg: M) -> Result<(), TellError<M>>
    where
        A: Handler<M>,
        M: Send + 'static,
    {
        let envelope = Envelope::new(TellEnvelope(msg));
        self.cell
            .mailbox
            .send(envelope)
            .await
            .map_err(|error| TellError(take_tell(error.0)))
    }

    /// Sends `msg` if the mailbox has room now, handing it back otherwise.
    pub fn try_tell<M>(&self, msg: M) -> Result<(), TryTellError<M>>
    where
        A: Handler<M>,
        M: Send + 'static,
    {
        let envelope = Envelope::new(TellEnvelope(msg));
        self.cell
            .mailbox
            .try_send(envelope)
            .map_err(|error| match error {
                TrySendError::Full(envelope) => TryTellError::Full(take_tell(envelope)),
                TrySendError::Closed(envelope) => TryTellError::Stopped(take_tell(envelope)),
            })
    }

    /// Sends `msg` and waits for the reply. Add
    /// [`.timeout(d)`](AskRequest::timeout) to bound the wait. An ask to an
    /// actor that has stopped fails at once with [`AskError::Stopped`].
    pub fn ask<M>(&self, msg: M) -> AskRequest<'_, A, M>
    where
        A: Handler<M>,
        M: Send + 'static,
    {
        AskRequest {
            actor: self,
            msg,
            timeout: None,
        }
    }

    /// Asks the actor to stop: it handles what is already queued (new
    /// messages are refused from the moment it sees the request), runs its
    /// `stopped` hook and ends. Stopping a stopped actor does nothing.
    pub fn stop(&self) {
        // On an actor that has stopped, nobody reads the request.
        self.cell.system.stop();
    }

    /// Waits until the actor has stopped for good.
    pub async fn wait_for_stop(&self) {
        self.cell.wait_for_stop().await;
    }

    /// A reference that knows only the message type `M`.
    pub fn recipient<M>(self) -> Recipient<M>
    where
        A: Handler<M>,
        M: Send + 'static,
    {
        Recipient {
            inner: Arc::new(self),
        }
    }
}

/// Gets the message back out of a tell envelope that was refused. The
/// envelope was made by `tell` or `try_tell` just before, so it is a
/// `TellEnvelope<M>`; the dispatch trait cannot say so, hence the helper.
fn take_tell<A, M>(envelope: Envelope<A>) -> M
where
    A: Handler<M>,
    M: Send + 'static,
{
    envelope
        .into_any()
        .downcast::<TellEnvelope<M>>()
        .map(|tell| tell.0)
        .unwrap_or_else(|_| unreachable!("a refused tell hands back the envelope it was given"))
}

/// An [`ask`](ActorRef::ask) being built; await it to send.
#[must_use = "an ask does nothing until it is awaited"]
pub struct AskRequest<'a, A: Actor, M> {
    actor: &'a ActorRef<A>,
    msg: M,
    timeout: Option<Duration>,
}

impl<A: Actor, M> fmt::Debug for AskRequest<'_, A, M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AskRequest")
            .field("actor", &self.actor.id())
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl<'a, A: Actor, M> AskRequest<'a, A, M> {
    /// Gives up with [`AskError::Timeout`] after `timeout`, counted from the
    /// send (waiting for room in a full mailbox included). Needs a tokio
    /// runtime with time enabled, such as an executor worker.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }
}

impl<'a, A, M> IntoFuture for AskRequest<'a, A, M>
where
    A: Handler<M>,
    M: Send + 'static,
{
    type Output = Result<A::Reply, AskError>;
    type IntoFuture = Pin<Box<dyn Future<Output = Self::Output> + Send + 'a>>;

    fn into_future(self) -> Self::IntoFuture {
        let AskRequest {
            actor,
            msg,
            timeout,
        } = self;
        let exchange = async move {
            let (reply, answer) = oneshot::channel();
            let envelope = Envelope::new(AskEnvelope { msg, reply });
            if actor.cell.mailbox.send(envelope).await.is_err() {
                return Err(AskError::Stopped);
            }
            match answer.await {
                Ok(result) => result,
                // The envelope was dropped unhandled.
                Err(_) => Err(AskError::Dropped),
            }
        };
        match timeout {
            None => Box::pin(exchange),
            Some(limit) => Box::pin(async move {
                tokio::time::timeout(limit, exchange)
                    .await
                    .unwrap_or(Err(AskError::Timeout(limit)))
            }),
        }
    }
}

/// What a [`Recipient`] needs from the actor behind it.
trait Deliver<M>: Send + Sync {
    fn tell(&self, msg: M) -> Pin<Box<dyn Future<Output = Result<(), TellError<M>>> + Send + '_>>;
    fn try_tell(&self, msg: M) -> Result<(), TryTellError<M>>;
    fn id(&self) -> ActorId;
    fn is_alive(&self) -> bool;
}

impl<A, M> Deliver<M> for ActorRef<A>
where
    A: Handler<M>,
    M: Send + 'static,
{
    fn tell(&self, msg: M) -> Pin<Box<dyn Future<Output = Result<(), TellError<M>>> + Send + '_>> {
        Box::pin(ActorRef::tell(self, msg))
    }

    fn try_tell(&self, msg: M) -> Result<(), TryTellError<M>> {
        ActorRef::try_tell(self, msg)
    }

    fn id(&self) -> ActorId {
        ActorRef::id(self)
    }

    fn is_alive(&self) -> bool {
        ActorRef::is_alive(self)
    }
}

/// A reference to some actor that handles `M`, without naming its type,
/// so that one subsystem can talk to another it does not depend on.
pub struct Recipient<M> {
    inner: Arc<dyn Deliver<M>>,
}

impl<M> Clone for Recipient<M> {
    fn clone(&self) -> Self {
        Recipient {
            inner: self.inner.clone(),
        }
    }
}

impl<M> fmt::Debug for Recipient<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Recipient")
            .field("id", &self.inner.id())
            .field("message", &std::any::type_name::<M>())
            .finish()
    }
}

impl<M: Send + 'static> Recipient<M> {
    /// As [`ActorRef::tell`].
    pub async fn tell(&self, msg: M) -> Result<(), TellError<M>> {
        self.inner.tell(msg).await
    }

    /// As [`ActorRef::try_tell`].
    pub fn try_tell(&self, msg: M) -> Result<(), TryTellError<M>> {
        self.inner.try_tell(msg)
    }

    /// The id of the actor behind it.
    pub fn id(&self) -> ActorId {
        self.inner.id()
    }

    /// As [`ActorRef::is_alive`].
    pub fn is_alive(&self) -> bool {
        self.inner.is_alive()
    }
}
