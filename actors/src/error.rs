//! Why a message could not be delivered or answered.
//!
//! Every error says what happened to the message: a `tell` that fails hands
//! the message back, and an `ask` that fails says whether the actor never
//! got the message, got it and panicked, or did not answer in time.

use std::fmt;
use std::time::Duration;

/// A [`tell`](crate::ActorRef::tell) to an actor that has stopped for good
/// (its mailbox is closed). The message is handed back.
#[derive(Clone, PartialEq, Eq, thiserror::Error)]
#[error("the actor has stopped; the message was not delivered")]
pub struct TellError<M>(pub M);

// By hand, so that `unwrap()` works whatever the message type (as for
// `std::sync::mpsc::SendError`).
impl<M> fmt::Debug for TellError<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TellError(..)")
    }
}

impl<M> TellError<M> {
    /// The message that was not delivered.
    pub fn into_inner(self) -> M {
        self.0
    }
}

/// A [`try_tell`](crate::ActorRef::try_tell) that could not deliver at
/// once. The message is handed back.
#[derive(Clone, PartialEq, Eq, thiserror::Error)]
pub enum TryTellError<M> {
    /// The actor's bounded mailbox is full.
    #[error("the actor's mailbox is full")]
    Full(M),
    /// The actor has stopped for good.
    #[error("the actor has stopped; the message was not delivered")]
    Stopped(M),
}

impl<M> fmt::Debug for TryTellError<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TryTellError::Full(_) => f.write_str("Full(..)"),
            TryTellError::Stopped(_) => f.write_str("Stopped(..)"),
        }
    }
}

impl<M> TryTellError<M> {
    /// The message that was not delivered.
    pub fn into_inner(self) -> M {
        match self {
            TryTellError::Full(msg) | TryTellError::Stopped(msg) => msg,
        }
    }
}

/// Why an [`ask`](crate::ActorRef::ask) has no answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AskError {
    /// The actor has stopped for good, or is stopping and no longer takes
    /// messages. Returned at once: an ask never waits on a dead actor.
    #[error("the actor has stopped; the message was not delivered")]
    Stopped,
    /// The actor stopped (or its task was aborted) after the message was
    /// queued and before it was handled.
    #[error("the actor stopped before it handled the message")]
    Dropped,
    /// The handler panicked on this message. The panic was caught and
    /// reported to the actor's supervisor.
    #[error("the handler panicked: {message}")]
    HandlerPanicked {
        /// The panic's message.
        message: String,
    },
    /// No answer within the ask's timeout. The message may still be
    /// handled later; its answer is then discarded.
    #[error("no answer within {0:?}")]
    Timeout(Duration),
}

/// A failed `tell` in a function that also asks: both mean the actor has
/// stopped. (The message is dropped.)
impl<M> From<TellError<M>> for AskError {
    fn from(_: TellError<M>) -> Self {
        AskError::Stopped
    }
}
