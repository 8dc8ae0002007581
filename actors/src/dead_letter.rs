//! Dead letters: messages that were sent to an actor and never handled.
//!
//! ```
//! use proc_daemon_actors::dead_letter::{self, DeadLetter};
//!
//! dead_letter::set_hook(|letter: &DeadLetter| {
//!     eprintln!("undelivered {} to {}: {}", letter.message_type, letter.actor, letter.reason);
//! });
//! let so_far = dead_letter::count();
//! # let _ = so_far;
//! ```
//!
//! A message becomes a dead letter when its handler panics (the message was
//! consumed by the handler, so what is reported is its type and the panic),
//! or when it was still queued when its actor stopped for good. Each one is
//! logged at `warn`, counted, and passed to the hook if one is set. The
//! sender of an `ask` learns it too, through its error.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use crate::actor::ActorId;

/// A message that was never handled. See the module docs.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DeadLetter {
    /// The actor it was sent to.
    pub actor: ActorId,
    /// The actor's type.
    pub actor_type: &'static str,
    /// The message's type.
    pub message_type: &'static str,
    /// Why it was not handled.
    pub reason: DeadLetterReason,
}

/// Why a [`DeadLetter`] was not handled.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DeadLetterReason {
    /// Its handler panicked while handling it.
    HandlerPanicked {
        /// The panic's message.
        message: String,
    },
    /// It was still queued when the actor stopped for good.
    ActorStopped,
}

impl fmt::Display for DeadLetterReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeadLetterReason::HandlerPanicked { message } => {
                write!(f, "the handler panicked: {message}")
            }
            DeadLetterReason::ActorStopped => f.write_str("the actor stopped before handling it"),
        }
    }
}

type Hook = Arc<dyn Fn(&DeadLetter) + Send + Sync>;

static HOOK: RwLock<Option<Hook>> = RwLock::new(None);
static COUNT: AtomicU64 = AtomicU64::new(0);

/// Calls `hook` for every dead letter from now on, in the thread that found
/// it (an executor worker). Replaces the previous hook. Keep it short: it
/// runs on the actor's worker.
pub fn set_hook(hook: impl Fn(&DeadLetter) + Send + Sync + 'static) {
    *HOOK
        .write()
        .unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(Arc::new(hook));
}

/// Removes the hook set by [`set_hook`].
pub fn clear_hook() {
    *HOOK
        .write()
        .unwrap_or_else(|poisoned| poisoned.into_inner()) = None;
}

/// How many dead letters this process has had.
pub fn count() -> u64 {
    COUNT.load(Ordering::Relaxed)
}

pub(crate) fn report(letter: DeadLetter) {
    COUNT.fetch_add(1, Ordering::Relaxed);
    tracing::warn!(
        actor = %letter.actor,
        actor_type = letter.actor_type,
        message_type = letter.message_type,
        reason = %letter.reason,
        "dead letter"
    );
    let hook = HOOK
        .read()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .clone();
    if let Some(hook) = hook {
        hook(&letter);
    }
}
