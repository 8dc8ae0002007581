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
use std::marker::PhantomData;
use std::pin::Pin;
use std::ptr::NonNull;
use std::task::{Context as TaskContext, Poll};

use tokio::sync::oneshot;

use crate::actor::Actor;
use crate::context::Context;
use crate::error::AskError;
use crate::panic::CatchUnwind;
use crate::pool::PoolBox;

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

/// The future that handles one message, borrowing the actor meanwhile.
///
/// Its type depends on the message, so the actor's loop holds it type-erased:
/// a pointer to pool memory ([`crate::pool`]) and a table of two functions,
/// as a `Pin<Box<dyn Future>>` would be, but allocated from the message
/// pool. The future never moves once written there, which is what pinning
/// asks.
pub(crate) struct Handling<'a> {
    future: NonNull<()>,
    vtable: &'static HandlingVTable,
    _borrows: PhantomData<&'a mut ()>,
}

struct HandlingVTable {
    poll: unsafe fn(NonNull<()>, &mut TaskContext<'_>) -> Poll<Outcome>,
    drop: unsafe fn(NonNull<()>),
}

// SAFETY: `Handling::new` only accepts `Send` futures, and the handle owns
// its future exclusively.
unsafe impl Send for Handling<'_> {}

impl<'a> Handling<'a> {
    pub(crate) fn new<F>(future: F) -> Self
    where
        F: Future<Output = Outcome> + Send + 'a,
    {
        Handling {
            future: PoolBox::new(future).into_raw().cast(),
            vtable: HandlingFor::<F>::VTABLE,
            _borrows: PhantomData,
        }
    }
}

/// The functions of a [`Handling`] holding an `F`.
struct HandlingFor<F>(PhantomData<F>);

impl<F: Future<Output = Outcome>> HandlingFor<F> {
    const VTABLE: &'static HandlingVTable = &HandlingVTable {
        poll: Self::poll,
        drop: Self::drop,
    };

    /// # Safety
    ///
    /// `future` is the pointer of a live `Handling` made from an `F`.
    unsafe fn poll(future: NonNull<()>, cx: &mut TaskContext<'_>) -> Poll<Outcome> {
        // SAFETY: the pointer holds an initialised `F` (the caller's
        // contract) that stays at this address until it is dropped, so it
        // may be pinned; `Handling::poll` has `&mut` access to it.
        unsafe { Pin::new_unchecked(&mut *future.cast::<F>().as_ptr()) }.poll(cx)
    }

    /// # Safety
    ///
    /// As for `poll`, and the `Handling` is being dropped.
    unsafe fn drop(future: NonNull<()>) {
        // SAFETY: the pointer came from `PoolBox::<F>::into_raw` in
        // `Handling::new`, and this is its one way back.
        drop(unsafe { PoolBox::from_raw(future.cast::<F>()) });
    }
}

impl Future for Handling<'_> {
    type Output = Outcome;

    fn poll(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Outcome> {
        // SAFETY: `future` and `vtable` were made together in `new`, and the
        // future is live until `drop`.
        unsafe { (self.vtable.poll)(self.future, cx) }
    }
}

impl Drop for Handling<'_> {
    fn drop(&mut self) {
        // SAFETY: as in `poll`; this is the only drop.
        unsafe { (self.vtable.drop)(self.future) }
    }
}

/// A message of some type that `A` handles, plus what to do with the reply.
pub(crate) trait Dispatch<A: Actor>: Send + Sized + 'static {
    /// Handles the message on `actor`.
    fn dispatch<'a>(self, actor: &'a mut A, ctx: &'a mut Context<A>) -> Handling<'a>;

    /// The message's type, for dead letters and logs.
    fn message_type() -> &'static str;
}

/// What sits in an actor's mailbox: one message of some type `A` handles.
///
/// Type-erased as a `Box<dyn Dispatch<A>>` would be, but allocated from the
/// message pool: a pointer to the envelope and a table of its functions.
pub(crate) struct Envelope<A: Actor> {
    envelope: NonNull<()>,
    vtable: &'static EnvelopeVTable<A>,
}

struct EnvelopeVTable<A: Actor> {
    dispatch: for<'a> unsafe fn(NonNull<()>, &'a mut A, &'a mut Context<A>) -> Handling<'a>,
    message_type: fn() -> &'static str,
    into_any: unsafe fn(NonNull<()>) -> Box<dyn Any + Send>,
    drop: unsafe fn(NonNull<()>),
}

// SAFETY: `Envelope::new` only accepts `Dispatch` types, which are `Send`,
// and the envelope owns its contents exclusively.
unsafe impl<A: Actor> Send for Envelope<A> {}

impl<A: Actor> Envelope<A> {
    pub(crate) fn new<D: Dispatch<A>>(contents: D) -> Self {
        Envelope {
            envelope: PoolBox::new(contents).into_raw().cast(),
            vtable: EnvelopeFor::<A, D>::VTABLE,
        }
    }

    /// Handles the message on `actor`, consuming the envelope.
    pub(crate) fn dispatch<'a>(self, actor: &'a mut A, ctx: &'a mut Context<A>) -> Handling<'a> {
        let this = std::mem::ManuallyDrop::new(self);
        // SAFETY: `envelope` and `vtable` were made together in `new`;
        // `ManuallyDrop` makes this the envelope's one use.
        unsafe { (this.vtable.dispatch)(this.envelope, actor, ctx) }
    }

    /// The message's type, for dead letters and logs.
    pub(crate) fn message_type(&self) -> &'static str {
        (self.vtable.message_type)()
    }

    /// The contents as `Any`, so that a refused `tell` can hand its
    /// message back.
    pub(crate) fn into_any(self) -> Box<dyn Any + Send> {
        let this = std::mem::ManuallyDrop::new(self);
        // SAFETY: as in `dispatch`.
        unsafe { (this.vtable.into_any)(this.envelope) }
    }
}

impl<A: Actor> Drop for Envelope<A> {
    fn drop(&mut self) {
        // SAFETY: as in `dispatch`; a consumed envelope is never dropped.
        unsafe { (self.vtable.drop)(self.envelope) }
    }
}

/// The functions of an [`Envelope`] holding a `D`.
struct EnvelopeFor<A, D>(PhantomData<(fn(A), D)>);

impl<A: Actor, D: Dispatch<A>> EnvelopeFor<A, D> {
    const VTABLE: &'static EnvelopeVTable<A> = &EnvelopeVTable {
        dispatch: Self::dispatch,
        message_type: D::message_type,
        into_any: Self::into_any,
        drop: Self::drop,
    };

    /// Takes the `D` back. Each function below does so once.
    ///
    /// # Safety
    ///
    /// `envelope` came from `PoolBox::<D>::into_raw` in `Envelope::new`,
    /// and is taken back only once.
    unsafe fn take(envelope: NonNull<()>) -> PoolBox<D> {
        // SAFETY: the caller's contract.
        unsafe { PoolBox::from_raw(envelope.cast::<D>()) }
    }

    unsafe fn dispatch<'a>(
        envelope: NonNull<()>,
        actor: &'a mut A,
        ctx: &'a mut Context<A>,
    ) -> Handling<'a> {
        // SAFETY: called once per envelope, by `Envelope::dispatch`.
        let contents = unsafe { Self::take(envelope) }.into_inner();
        contents.dispatch(actor, ctx)
    }

    unsafe fn into_any(envelope: NonNull<()>) -> Box<dyn Any + Send> {
        // SAFETY: called once per envelope, by `Envelope::into_any`.
        Box::new(unsafe { Self::take(envelope) }.into_inner())
    }

    unsafe fn drop(envelope: NonNull<()>) {
        // SAFETY: called once per envelope, by `Envelope`'s `Drop`.
        drop(unsafe { Self::take(envelope) });
    }
}

/// A `tell`: the reply is dropped.
pub(crate) struct TellEnvelope<M>(pub(crate) M);

impl<A, M> Dispatch<A> for TellEnvelope<M>
where
    A: Handler<M>,
    M: Send + 'static,
{
    fn dispatch<'a>(self, actor: &'a mut A, ctx: &'a mut Context<A>) -> Handling<'a> {
        Handling::new(async move {
            match CatchUnwind::new(actor.handle(self.0, ctx)).await {
                Ok(_) => Outcome::Handled,
                Err(message) => Outcome::Panicked { message },
            }
        })
    }

    fn message_type() -> &'static str {
        type_name::<M>()
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
    fn dispatch<'a>(self, actor: &'a mut A, ctx: &'a mut Context<A>) -> Handling<'a> {
        let AskEnvelope { msg, reply } = self;
        Handling::new(async move {
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

    fn message_type() -> &'static str {
        type_name::<M>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    struct Nobody;
    impl Actor for Nobody {}
    impl Handler<Arc<()>> for Nobody {
        type Reply = ();
        async fn handle(&mut self, _msg: Arc<()>, _ctx: &mut Context<Self>) {}
    }

    #[test]
    fn an_envelope_drops_its_message_once_and_hands_it_back_on_request() {
        let message = Arc::new(());
        let dropped = Envelope::<Nobody>::new(TellEnvelope(message.clone()));
        assert!(dropped.message_type().contains("Arc"));
        assert_eq!(Arc::strong_count(&message), 2);
        drop(dropped);
        assert_eq!(Arc::strong_count(&message), 1);

        let returned = Envelope::<Nobody>::new(TellEnvelope(message.clone()));
        let back = returned
            .into_any()
            .downcast::<TellEnvelope<Arc<()>>>()
            .expect("a tell envelope");
        assert!(Arc::ptr_eq(&back.0, &message));
        drop(back);
        assert_eq!(Arc::strong_count(&message), 1);
    }

    /// Counts the messages it handles; answers an ask with the count.
    #[derive(Default)]
    struct Counter(usize);
    impl Actor for Counter {}
    impl Handler<u32> for Counter {
        type Reply = usize;
        async fn handle(&mut self, add: u32, _ctx: &mut Context<Self>) -> usize {
            self.0 += add as usize;
            self.0
        }
    }

    #[test]
    #[cfg_attr(
        miri,
        ignore = "the executor's workers do not exit under Miri (tried with isolation off: the messages were dispatched, and the shutdown waited past 600 s)"
    )]
    fn envelopes_dispatched_to_a_running_actor_reach_its_handler() {
        // A real actor on a one-worker executor: every tell and ask below
        // goes through `Envelope::dispatch` and `EnvelopeFor::dispatch`.
        let executor = crate::executor::Executor::builder()
            .worker_threads(1)
            .build()
            .expect("an executor");
        let counter = crate::spawn::spawn(&executor, Counter::default());
        let total = executor
            .spawn(async move {
                for _ in 0..3 {
                    counter.tell(1u32).await.expect("delivered");
                }
                counter.ask(10u32).await.expect("answered")
            })
            .join()
            .expect("the exchange finished");
        assert_eq!(total, 13);
        let report = executor
            .shutdown(std::time::Duration::from_secs(5))
            .expect("shut down");
        assert!(report.stuck_workers.is_empty(), "{report:?}");
    }

    #[test]
    fn a_handling_future_is_polled_in_place_and_dropped_once() {
        let held = Arc::new(());
        let witness = held.clone();
        let mut polls = 0;
        let mut handling = Handling::new(async move {
            let _keep = witness;
            let mut yielded = false;
            std::future::poll_fn(|cx| {
                if yielded {
                    Poll::Ready(())
                } else {
                    yielded = true;
                    cx.waker().wake_by_ref();
                    Poll::Pending
                }
            })
            .await;
            Outcome::Handled
        });
        let mut cx = TaskContext::from_waker(std::task::Waker::noop());
        let outcome = loop {
            polls += 1;
            if let Poll::Ready(outcome) = Pin::new(&mut handling).poll(&mut cx) {
                break outcome;
            }
        };
        assert!(matches!(outcome, Outcome::Handled));
        assert!(polls >= 2, "the future was pending once");
        drop(handling);
        assert_eq!(Arc::strong_count(&held), 1);

        // Dropped before completion: its state is dropped too.
        let witness = held.clone();
        let pending = Handling::new(async move {
            let _keep = witness;
            std::future::pending::<()>().await;
            Outcome::Handled
        });
        drop(pending);
        assert_eq!(Arc::strong_count(&held), 1);
    }
}
