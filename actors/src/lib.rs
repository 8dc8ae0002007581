//! The actor runtime under proc-daemon.
//!
//! ```
//! use proc_daemon_actors::prelude::*;
//!
//! struct Counter(u64);
//! impl Actor for Counter {}
//!
//! struct Add(u64);
//! impl Handler<Add> for Counter {
//!     type Reply = u64;
//!     async fn handle(&mut self, Add(n): Add, _ctx: &mut Context<Self>) -> u64 {
//!         self.0 += n;
//!         self.0
//!     }
//! }
//!
//! let executor = Executor::builder().worker_threads(1).build()?;
//! let counter = spawn(&executor, Counter(0));
//! let total = executor.spawn(async move { counter.ask(Add(5)).await }).join()??;
//! assert_eq!(total, 5);
//! # executor.shutdown(std::time::Duration::from_secs(1))?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! This crate holds the parts of proc-daemon that know nothing about config
//! files or signals: actors, their mailboxes, the worker-pool executor and
//! supervision. The daemon layer (`proc-daemon`) depends on it and re-exports
//! it as `proc_daemon::actors`; the dependency never points the other way.
//!
//! Where things live:
//!
//! - [`actor`]: the `Actor` trait and `StopReason`.
//! - [`message`]: the `Handler` trait and the envelopes messages travel in.
//! - [`actor_ref`]: `ActorRef` (`tell`, `ask`, `stop`) and `Recipient`.
//! - [`context`]: what an actor knows about itself while it runs.
//! - [`spawn`]: starting an actor and the loop that runs it.
//! - [`supervision`]: `Supervisor`, restart policies and strategies.
//! - [`dead_letter`]: messages that were never handled.
//! - [`registry`]: actors by name and type.
//! - [`events`]: every state change of a supervised actor.
//! - `kameo_child` (feature `kameo`): kameo 0.22 actors as supervised
//!   children.
//! - [`mailbox`]: the lock-free MPSC queues in front of every actor,
//!   verified with loom (`loom-tests/`) and Miri.
//! - [`executor`]: the worker pool every actor runs on, pinned in NUMA
//!   order from [`executor::topology`].
//! - [`cancel`]: a one-shot, wake-all cancellation flag (a daemon's
//!   shutdown signal).
//! - [`pool`]: pre-allocated memory for messages.
//!
//! It is being built issue by issue; the README's feature table says what
//! exists.
//!
//! The lock-free code reaches atomics, cells, mutexes and threads only
//! through `loom.rs`, a std/loom shim, so that `RUSTFLAGS="--cfg loom"`
//! model-checks the code that ships: the mailboxes, the [`cancel`] token,
//! the message [`pool`] and the executor's task state word
//! (`executor::task_state`). Everything that needs tokio is left out of
//! loom builds. docs/architecture.md ("Verification") lists what loom and
//! Miri cover.

#[cfg(not(loom))]
pub mod actor;
#[cfg(not(loom))]
pub mod actor_ref;
pub mod cancel;
#[cfg(not(loom))]
pub mod context;
#[cfg(not(loom))]
pub mod dead_letter;
#[cfg(not(loom))]
pub mod error;
#[cfg(not(loom))]
pub mod events;
#[cfg(not(loom))]
pub mod executor;
/// Under loom, only the parts of the executor that loom can check: the
/// rest needs tokio, which does not build under `--cfg loom`.
#[cfg(loom)]
pub mod executor {
    pub mod task_state;
}
#[cfg(all(feature = "kameo", not(loom)))]
pub mod kameo_child;
#[cfg(not(loom))]
mod lock;
pub(crate) mod loom;
pub mod mailbox;
#[cfg(not(loom))]
pub mod message;
pub mod pool;
#[cfg(not(loom))]
pub mod registry;
#[cfg(not(loom))]
pub mod spawn;
#[cfg(not(loom))]
pub mod supervision;
#[cfg(not(loom))]
mod system;

#[cfg(not(loom))]
pub use actor::{Actor, ActorId, BoxError, StopReason};
#[cfg(not(loom))]
pub use actor_ref::{ActorRef, ActorState, AskRequest, Recipient};
#[cfg(not(loom))]
pub use context::Context;
#[cfg(not(loom))]
pub use error::{AskError, Stopped, TryTellError};
#[cfg(not(loom))]
pub use message::Handler;

/// The names an actor program uses: `use proc_daemon_actors::prelude::*;`.
#[cfg(not(loom))]
pub mod prelude {
    pub use crate::actor::{Actor, BoxError, StopReason};
    pub use crate::actor_ref::{ActorRef, Recipient};
    pub use crate::context::Context;
    pub use crate::error::{AskError, Stopped, TryTellError};
    pub use crate::executor::Executor;
    pub use crate::message::Handler;
    pub use crate::spawn::spawn;
    pub use crate::supervision::{RestartPolicy, Strategy, Supervisor};
}
