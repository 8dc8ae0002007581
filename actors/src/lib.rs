//! The actor runtime under proc-daemon.
//!
//! ```
//! use proc_daemon_actors::prelude::*;
//! use proc_daemon_actors::spawn::spawn;
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
//! - [`actor`]: the `Actor` trait and `ExitReason`.
//! - [`message`]: the `Handler` trait and the envelopes messages travel in.
//! - [`actor_ref`]: `ActorRef` (`tell`, `ask`, `stop`) and `Recipient`.
//! - `cell.rs`: what every reference to one actor shares (its mailbox and
//!   its lifecycle state, [`ActorState`]).
//! - [`context`]: what an actor knows about itself while it runs.
//! - [`spawn`]: starting an actor and the loop that runs it.
//! - [`supervision`]: `Supervisor`, restart policies and strategies.
//! - [`dead_letter`]: messages that were never handled.
//! - [`registry`]: actors by name and type.
//! - [`events`]: every state change of a supervised child.
//! - `kameo_child` (feature `kameo`): kameo 0.22 actors as supervised
//!   children.
//! - [`mailbox`]: the lock-free MPSC queues in front of every actor,
//!   verified with loom (`loom-tests/`) and Miri.
//! - [`executor`]: the worker pool every actor runs on, pinned in NUMA
//!   order from [`executor::topology`].
//! - [`cancel`]: a one-shot, wake-all cancellation flag (a daemon's
//!   shutdown signal).
//! - [`pool`]: pre-allocated memory for messages.
//! - `panic.rs`: catching a panic as a failure.
//! - [`support`]: what the daemon crate needs and applications do not.
//!
//! It is being built issue by issue; the README's feature table says what
//! exists.
//!
//! # API and support
//!
//! The crate root and the [`prelude`] export the same names: the actor API.
//! The modules add what a program reaches for less often (spawn options,
//! the executor's topology, mailboxes as channels). [`support`] holds items
//! that are `pub` only because `proc-daemon` needs them (catching panics,
//! the shutdown drain of a tree, the event bus, installing the message
//! pool); they are not part of the API and may change in any release.
//! docs/architecture.md ("The public API") lists both.
//!
//! The lock-free code reaches atomics, cells, mutexes and threads only
//! through `loom.rs`, a std/loom shim, so that `RUSTFLAGS="--cfg loom"`
//! model-checks the code that ships: the mailboxes, the [`cancel`] token,
//! the message [`pool`] and the executor's task state word
//! (`executor::task_state`). Everything that needs tokio is left out of
//! loom builds. docs/architecture.md ("Verification") lists what loom and
//! Miri cover.

/// Items that exist only outside loom builds. Under `--cfg loom` the crate
/// is the lock-free parts alone (everything that needs tokio does not
/// build there), so everything else is wrapped in this, as tokio wraps its
/// optional parts in `cfg_rt!`.
macro_rules! cfg_not_loom {
    ($($item:item)*) => {
        $(
            #[cfg(not(loom))]
            $item
        )*
    };
}

pub mod cancel;
pub(crate) mod loom;
pub mod mailbox;

cfg_not_loom! {
    pub mod actor;
    pub mod actor_ref;
    mod cell;
    pub mod context;
    pub mod dead_letter;
    pub mod error;
    pub mod events;
    pub mod executor;
    mod lock;
    pub mod message;
    pub mod metrics;
    mod panic;
    pub mod pool;
    pub mod registry;
    pub mod spawn;
    pub mod supervision;
    mod system;

    pub use actor::{Actor, ActorId, BoxError, ExitReason, SharedError};
    pub use actor_ref::{ActorRef, AskRequest, Recipient};
    pub use cell::ActorState;
    pub use context::Context;
    pub use error::{AskError, TellError, TryTellError};
    pub use executor::Executor;
    pub use message::Handler;
    pub use supervision::{RestartPolicy, Strategy, Supervisor};
}

#[cfg(all(feature = "kameo", not(loom)))]
pub mod kameo_child;

/// Under loom, only the parts that loom can check: the rest needs tokio,
/// which does not build under `--cfg loom`. The models in `loom-tests/`
/// reach them by these paths.
#[cfg(loom)]
pub mod executor {
    pub mod task_state;
}
#[cfg(loom)]
pub mod pool;

/// The names an actor program uses: `use proc_daemon_actors::prelude::*;`.
/// The same names as the crate root.
#[cfg(not(loom))]
pub mod prelude {
    pub use crate::{
        Actor, ActorId, ActorRef, ActorState, AskError, AskRequest, BoxError, Context, Executor,
        ExitReason, Handler, Recipient, RestartPolicy, SharedError, Strategy, Supervisor,
        TellError, TryTellError,
    };
}

/// What the `proc-daemon` crate needs from the runtime and applications do
/// not: catching panics, draining a supervision tree against a deadline,
/// the event bus behind `SubsystemManager`, and installing the message
/// pool. Not part of the API: these items may change in any release.
#[cfg(not(loom))]
pub mod support {
    pub use crate::events::bus::EventBus;
    pub use crate::executor::drain::ABORT_GRACE;
    pub use crate::mailbox::park::block_on;
    pub use crate::panic::{CatchUnwind, panic_message};
    pub use crate::supervision::drain::Drain;

    /// Configures the message pool with `bytes` of pre-allocated blocks (0
    /// turns it off). Only the first configuration of a process counts, and
    /// a message sent before it fixes the pool as off. A daemon calls this
    /// from `performance.memory_pool_size`.
    ///
    /// # Errors
    ///
    /// [`InstallError::AlreadyInstalled`](crate::pool::InstallError) if the
    /// pool was already configured or used; `TooLarge` above
    /// [`pool::MAX_BYTES`](crate::pool::MAX_BYTES); `OutOfMemory` if the
    /// memory cannot be allocated (never an abort).
    pub fn install_message_pool(bytes: usize) -> Result<(), crate::pool::InstallError> {
        crate::pool::install(bytes)
    }
}
