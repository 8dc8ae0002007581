//! Typed messages: the `Handler` trait, and the envelopes that carry a
//! message of any type through an actor's one mailbox.
//!
//! ```
//! use proc_daemon_actors::prelude::*;
//!
//! struct Greeter;
//! impl Actor for Greeter {}
//!
//! struct Greet(&'static str);
//!
//! impl Handler<Greet> for Greeter {
//!     type Reply = String;
//!
//!     async fn handle(&mut self, Greet(name): Greet, _ctx: &mut Context<Self>) -> String {
//!         format!("hello, {name}")
//!     }
//! }
//! ```
//!
//! An actor handles several message types, but has one mailbox, so each
//! message travels boxed with the code that knows its type (an envelope).
//! That is one allocation per message for the envelope and one for the
//! handler's future. A handler that panics is caught here, per message, so
//! the actor loop can report which message type it was handling.

use std::any::{Any, type_name};
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll};

use tokio::sync::oneshot;

use crate::actor::Actor;
use crate::context::Context;
use crate::error::AskError;
use crate::executor::panic_message;

/// An actor that handles messages of type `M` and answers each with a
/// [`Reply`](Handler::Reply).
pub trait Handler<M: Send + 'static>: Actor {
    /// The answer to an [`ask`](crate::ActorRef::ask). A `tell` discards it.
    type Reply: Send + 'static;

    /// Handles one message. The actor handles nothing else until the
    /// returned future completes.
    fn handle(
        &mut self,
        msg: M,
        ctx: &mut Context<Self>,
    ) -> impl Future<Output = Self::Reply> + Send;
}

/// What handling one envelope came to.
pub(crate) enum Outcome {
    Handled,
    Panicked { message: String },
}

/// A boxed future that borrows the actor for the duration of one message.
pub(crate) type Handling<'a> = Pin<Box<dyn Future<Output = Outcome> + Send + 'a>>;

/// A message of some type that `A` handles, plus what to do with the reply.
pub(crate) trait Dispatch<A: Actor>: Send {
    /// Handles the message on `actor`.
    fn dispatch<'a>(self: Box<Self>, actor: &'a mut A, ctx: &'a mut Context<A>) -> Handling<'a>;

    /// The message's type, for dead letters and logs.
    fn message_type(&self) -> &'static str;

    /// The envelope as `Any`, so that a refused `tell` can hand its message
    /// back.
    fn into_any(self: Box<Self>) -> Box<dyn Any + Send>;
}

/// What sits in an actor's mailbox.
pub(crate) type Envelope<A> = Box<dyn Dispatch<A>>;

/// A `tell`: the reply is dropped.
pub(crate) struct TellEnvelope<M>(pub(crate) M);

impl<A, M> Dispatch<A> for TellEnvelope<M>
where
    A: Handler<M>,
    M: Send + 'static,
{
    fn dispatch<'a>(self: Box<Self>, actor: &'a mut A, ctx: &'a mut Context<A>) -> Handling<'a> {
        Box::pin(async move {
            match CatchUnwind::new(actor.handle(self.0, ctx)).await {
                Ok(_) => Outcome::Handled,
                Err(message) => Outcome::Panicked { message },
            }
        })
    }

    fn message_type(&self) -> &'static str {
        type_name::<M>()
    }

    fn into_any(self: Box<Self>) -> Box<dyn Any + Send> {
        self
    }
}

/// An `ask`: the reply, or why there is none, goes back to the asker.
pub(crate) struct AskEnvelope<M, R> {
    pub(crate) msg: M,
    pub(crate) reply: oneshot::Sender<Result<R, AskError>>,
}

impl<A, M> Dispatch<A> for AskEnvelope<M, A::Reply>
where
    A: Handler<M>,
    M: Send + 'static,
{
    fn dispatch<'a>(self: Box<Self>, actor: &'a mut A, ctx: &'a mut Context<A>) -> Handling<'a> {
        let AskEnvelope { msg, reply } = *self;
        Box::pin(async move {
            match CatchUnwind::new(actor.handle(msg, ctx)).await {
                Ok(answer) => {
                    // The asker may have given up (timeout); nothing to do.
                    let _ = reply.send(Ok(answer));
                    Outcome::Handled
                }
                Err(message) => {
                    let _ = reply.send(Err(AskError::HandlerPanicked {
                        message: message.clone(),
                    }));
                    Outcome::Panicked { message }
                }
            }
        })
    }

    fn message_type(&self) -> &'static str {
        type_name::<M>()
    }

    fn into_any(self: Box<Self>) -> Box<dyn Any + Send> {
        self
    }
}

pin_project_lite::pin_project! {
    /// Polls a future inside `catch_unwind`, turning a panic into
    /// `Err(message)`. The future is not polled again after a panic.
    pub(crate) struct CatchUnwind<F> {
        #[pin]
        future: F,
    }
}

impl<F> CatchUnwind<F> {
    pub(crate) fn new(future: F) -> Self {
        CatchUnwind { future }
    }
}

impl<F: Future> Future for CatchUnwind<F> {
    type Output = Result<F::Output, String>;

    fn poll(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Self::Output> {
        let future = self.project().future;
        match catch_unwind(AssertUnwindSafe(|| future.poll(cx))) {
            Ok(Poll::Ready(output)) => Poll::Ready(Ok(output)),
            Ok(Poll::Pending) => Poll::Pending,
            Err(payload) => Poll::Ready(Err(panic_message(payload.as_ref()))),
        }
    }
}
