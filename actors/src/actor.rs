//! The `Actor` trait: a service's state, its lifecycle hooks, and why it
//! stopped.
//!
//! ```
//! use proc_daemon_actors::prelude::*;
//! use proc_daemon_actors::spawn::spawn;
//!
//! struct Counter {
//!     total: u64,
//! }
//!
//! impl Actor for Counter {}
//!
//! struct Add(u64);
//!
//! impl Handler<Add> for Counter {
//!     type Reply = u64;
//!
//!     async fn handle(&mut self, Add(n): Add, _ctx: &mut Context<Self>) -> u64 {
//!         self.total += n;
//!         self.total
//!     }
//! }
//!
//! let executor = Executor::builder().worker_threads(1).build()?;
//! let counter = spawn(&executor, Counter { total: 0 });
//! let total = executor
//!     .spawn(async move {
//!         counter.tell(Add(1)).await?;
//!         counter.ask(Add(2)).await
//!     })
//!     .join()??;
//! assert_eq!(total, 3);
//! # executor.shutdown(std::time::Duration::from_secs(1))?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! An actor owns its state and handles one message at a time, so its
//! handlers take `&mut self` and need no lock. Its hooks and handlers are
//! declared as `fn .. -> impl Future + Send`: implementors write plain
//! `async fn`, the futures stay `Send` (actors run on any worker), and
//! nothing is boxed for the hooks.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::context::Context;

/// An error from an actor's `started` hook, or any error an actor reports.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// An error kept whole where it is shared: in an [`ExitReason`], in the
/// events a supervisor publishes, in the daemon's reports. It is the
/// error the actor reported, not a rendering of it, so a supervisor or a
/// subscriber can `downcast_ref` it to its own type.
pub type SharedError = Arc<dyn std::error::Error + Send + Sync + 'static>;

/// A [`SharedError`] that is only a message, for failures the runtime
/// itself decides (a supervisor that gives up, a failed health check).
pub(crate) fn message_error(message: impl Into<String>) -> SharedError {
    Arc::from(BoxError::from(message.into()))
}

/// A service that handles messages one at a time. Every hook has a
/// default; `impl Actor for MyService {}` is a complete implementation.
pub trait Actor: Sized + Send + 'static {
    /// Runs before the first message. An error stops the actor with
    /// [`ExitReason::StartFailed`], which a supervisor treats as a failure.
    fn started(
        &mut self,
        ctx: &mut Context<Self>,
    ) -> impl Future<Output = Result<(), BoxError>> + Send {
        let _ = ctx;
        async { Ok(()) }
    }

    /// Runs after the last message, whatever the reason, unless the actor
    /// was aborted (its task dropped at a shutdown timeout). A panic here is
    /// caught and logged; the reason stands.
    fn stopped(
        &mut self,
        ctx: &mut Context<Self>,
        reason: &ExitReason,
    ) -> impl Future<Output = ()> + Send {
        let _ = (ctx, reason);
        async {}
    }
}

/// Why an actor (or one incarnation of it) ended.
///
/// Two reasons are equal when they are the same variant with the same
/// rendered error (or the very same error value).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum ExitReason {
    /// [`ActorRef::stop`](crate::ActorRef::stop) or
    /// [`Context::stop`](crate::Context::stop): it handled what was queued,
    /// then stopped.
    Requested,
    /// Its supervisor ended this incarnation (to restart it, or because the
    /// supervisor is stopping). Queued messages stay for the next one.
    Supervisor,
    /// [`Context::complete`](crate::Context::complete): the incarnation's
    /// work is done. The mailbox stays open.
    Completed,
    /// [`Context::fail`](crate::Context::fail), or a supervisor that gave up
    /// (its restart intensity was exceeded).
    Failed {
        /// What went wrong: the error given to `fail`, as it was.
        error: SharedError,
    },
    /// A handler or hook panicked.
    Panicked {
        /// The panic's message.
        message: String,
    },
    /// The `started` hook returned an error.
    StartFailed {
        /// The error the hook returned, as it was.
        error: SharedError,
    },
}

impl PartialEq for ExitReason {
    fn eq(&self, other: &Self) -> bool {
        fn same(a: &SharedError, b: &SharedError) -> bool {
            Arc::ptr_eq(a, b) || a.to_string() == b.to_string()
        }
        match (self, other) {
            (ExitReason::Requested, ExitReason::Requested)
            | (ExitReason::Supervisor, ExitReason::Supervisor)
            | (ExitReason::Completed, ExitReason::Completed) => true,
            (ExitReason::Failed { error: a }, ExitReason::Failed { error: b })
            | (ExitReason::StartFailed { error: a }, ExitReason::StartFailed { error: b }) => {
                same(a, b)
            }
            (ExitReason::Panicked { message: a }, ExitReason::Panicked { message: b }) => a == b,
            _ => false,
        }
    }
}

impl Eq for ExitReason {}

impl ExitReason {
    /// The error of a `Failed` or `StartFailed` reason, as the actor
    /// reported it (downcast it with `downcast_ref`).
    pub fn error(&self) -> Option<&SharedError> {
        match self {
            ExitReason::Failed { error } | ExitReason::StartFailed { error } => Some(error),
            _ => None,
        }
    }
}

impl ExitReason {
    /// Whether this counts as a failure for a supervisor's restart policy
    /// (a panic, a failed start, or a failure the actor reported).
    pub fn is_failure(&self) -> bool {
        matches!(
            self,
            ExitReason::Panicked { .. }
                | ExitReason::StartFailed { .. }
                | ExitReason::Failed { .. }
        )
    }
}

impl fmt::Display for ExitReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExitReason::Requested => f.write_str("stop was requested"),
            ExitReason::Supervisor => f.write_str("stopped by its supervisor"),
            ExitReason::Completed => f.write_str("completed"),
            ExitReason::Failed { error } => write!(f, "failed: {error}"),
            ExitReason::Panicked { message } => write!(f, "panicked: {message}"),
            ExitReason::StartFailed { error } => write!(f, "started hook failed: {error}"),
        }
    }
}

/// A process-unique actor number. It stays the same across restarts: it
/// names the mailbox, not the incarnation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ActorId(u64);

impl ActorId {
    pub(crate) fn next() -> ActorId {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        ActorId(NEXT.fetch_add(1, Ordering::Relaxed))
    }

    /// The number, for logs and metrics.
    pub fn get(self) -> u64 {
        self.0
    }
}

impl fmt::Display for ActorId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "actor#{}", self.0)
    }
}
