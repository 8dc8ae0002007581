//! proc-daemon: a framework for long-running services.
//!
//! A service is a tree of supervised actors running on a NUMA-aware,
//! thread-pinned executor, with a root actor that turns signals, config
//! reloads and shutdown into messages. Around that core sit configuration
//! from code, TOML and environment variables, hot reload, metrics, resource
//! tracking, profiling, PID files and service-manager integration.
//!
//! The crate is being built in stages; the README's feature table says what
//! exists today. What exists:
//!
//! - [`config`]: [`Config`], its builder, TOML files and `DAEMON_*`
//!   environment overrides, with errors that name the key, the value and
//!   where it came from.
//! - [`error`]: [`Error`] and [`Result`].
//! - [`exit`]: the process's exit codes.
//! - [`actors`]: the actor runtime: actors, mailboxes, the executor and
//!   supervision (see [`prelude`]).
//! - `timing` (feature `high-res-timing`): nanosecond timing through `quanta`.
//! - `metrics` and `resources` (feature `metrics`): `MetricsCollector`, the
//!   `metrics` facade's recorder, the runtime's own series, and the
//!   `/metrics`, `/livez` and `/readyz` endpoint at
//!   `monitoring.http_listen`; `ResourceTracker`.
//! - `profiling` (features `profiling`, `heap-profiling`): CPU profiles
//!   with pprof, heap profiles with dhat.
//! - feature `mimalloc`: mimalloc as the global allocator (dhat's wins
//!   when `heap-profiling` is on too).
//!
//! ```
//! use proc_daemon::{Config, LogLevel};
//! use std::time::Duration;
//!
//! // A configuration a daemon starts with.
//! let config = Config::builder()
//!     .name("production-daemon")
//!     .log_level(LogLevel::Info)
//!     .shutdown_timeout(Duration::from_secs(30))
//!     .worker_threads(8)
//!     .build()?;
//! # Ok::<(), proc_daemon::Error>(())
//! ```

mod features;

pub mod config;
pub mod coord;
pub mod daemon;
pub mod error;
pub mod exit;
pub mod ipc;
mod kill_stage;
mod lock;
mod logging;
#[cfg(feature = "metrics")]
pub mod metrics;
#[cfg(feature = "metrics")]
mod monitoring;
pub mod pid_file;
#[cfg(any(feature = "profiling", feature = "heap-profiling"))]
pub mod profiling;
mod regular_file;
pub mod reload;
#[cfg(feature = "metrics")]
pub mod resources;
#[cfg(feature = "scheduler-hints")]
pub mod scheduler;
pub mod service;
pub mod shutdown;
pub mod signal;
pub mod subsystem;
#[cfg(feature = "high-res-timing")]
pub mod timing;

#[cfg(all(feature = "mimalloc", not(feature = "heap-profiling")))]
mod alloc;

pub use config::{Config, ConfigBuilder, ConfigError, ConfigProblem, LogLevel};
pub use daemon::{Daemon, DaemonBuilder, DaemonExit};
pub use error::{Error, ErrorKind, Result};
pub use reload::{ConfigReloaded, ReloadOutcome};
pub use shutdown::{ShutdownHandle, ShutdownReason};
pub use signal::SignalConfig;
pub use subsystem::{Subsystem, SubsystemEvent, SubsystemManager, SubsystemState};

/// async-std, the version this crate is tested with (feature `async-std`).
///
/// async-std is discontinued upstream; prefer tokio, on which the daemon's
/// own executor runs. What works, and is tested: a daemon started from
/// `#[async_std::main]` or `async_std::task::block_on` (building and
/// running a daemon needs no tokio context of the caller's), and
/// async-std's I/O types inside subsystems (they are driven by async-std's
/// own reactor thread, whichever executor polls them):
/// `examples/async_std_tcp.rs` serves TCP with them and stops cleanly on
/// SIGTERM.
#[cfg(feature = "async-std")]
pub use async_std;

/// The actor runtime (crate `proc-daemon-actors`).
pub use proc_daemon_actors as actors;
/// The actor API, at the root as in `proc_daemon_actors`: what a program
/// needs to write the actors it runs under the daemon.
pub use proc_daemon_actors::{
    Actor, ActorId, ActorRef, ActorState, AskError, AskRequest, BoxError, Context, Executor,
    ExitReason, Handler, Recipient, RestartPolicy, SharedError, Strategy, Supervisor, TellError,
    TryTellError,
};

/// The names a proc-daemon program uses: `use proc_daemon::prelude::*;`.
/// The same names as the crate root (the free function
/// `actors::spawn::spawn` is not among them: next to `tokio::spawn` it
/// would mislead).
pub mod prelude {
    pub use crate::{
        Actor, ActorId, ActorRef, ActorState, AskError, AskRequest, BoxError, Config,
        ConfigBuilder, ConfigError, ConfigProblem, ConfigReloaded, Context, Daemon, DaemonBuilder,
        DaemonExit, Error, ErrorKind, Executor, ExitReason, Handler, LogLevel, Recipient,
        ReloadOutcome, RestartPolicy, Result, SharedError, ShutdownHandle, ShutdownReason,
        SignalConfig, Strategy, Subsystem, SubsystemEvent, SubsystemManager, SubsystemState,
        Supervisor, TellError, TryTellError,
    };
}
