//! Unix signals, turned into messages to the daemon's root actor.
//!
//! ```
//! use proc_daemon::signal::SignalConfig;
//!
//! // The defaults: SIGTERM, SIGINT and SIGQUIT stop the daemon, SIGHUP
//! // reloads it. Here SIGINT is left to its default action, and SIGUSR1
//! // runs a handler.
//! let signals = SignalConfig::new()
//!     .without_sigint()
//!     .on_sigusr1(|| tracing::info!("SIGUSR1: dumping state"));
//! assert!(!signals.handles(proc_daemon::signal::Signal::Interrupt));
//! ```
//!
//! | signal | what the daemon does |
//! |---|---|
//! | SIGTERM, SIGQUIT | starts the graceful shutdown |
//! | SIGINT | the same; a second SIGINT during shutdown forces it |
//! | SIGHUP | a reload: logged and sent to reload subscribers; never stops the daemon |
//! | SIGUSR1, SIGUSR2 | runs the handler given to [`SignalConfig::on_sigusr1`] / [`on_sigusr2`](SignalConfig::on_sigusr2) |
//!
//! A signal turned off (or SIGUSR1/2 without a handler) is not touched:
//! it keeps the process's default action, which for most of them is to
//! terminate the process. Once a signal is handled it stays handled for
//! the life of the process (the Unix disposition is process-wide).
//!
//! Each handled signal has one task on the executor that awaits it with
//! `tokio::signal`. An idle daemon therefore sleeps in the kernel until a
//! signal arrives: there is no polling tick.

use std::fmt;
use std::sync::Arc;

use proc_daemon_actors::executor::{Executor, JoinHandle};
use tokio::signal::unix::SignalKind;

use crate::{Error, Result};

/// A signal the daemon can handle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Signal {
    /// SIGTERM: stop.
    Terminate,
    /// SIGINT (Ctrl-C): stop; a second one forces it.
    Interrupt,
    /// SIGQUIT: stop.
    Quit,
    /// SIGHUP: reload.
    Hangup,
    /// SIGUSR1: a user handler.
    User1,
    /// SIGUSR2: a user handler.
    User2,
}

impl Signal {
    /// Every signal, in the order of the table in the module docs.
    pub const ALL: [Signal; 6] = [
        Signal::Terminate,
        Signal::Interrupt,
        Signal::Quit,
        Signal::Hangup,
        Signal::User1,
        Signal::User2,
    ];

    /// The conventional name, `"SIGTERM"`.
    pub fn name(self) -> &'static str {
        match self {
            Signal::Terminate => "SIGTERM",
            Signal::Interrupt => "SIGINT",
            Signal::Quit => "SIGQUIT",
            Signal::Hangup => "SIGHUP",
            Signal::User1 => "SIGUSR1",
            Signal::User2 => "SIGUSR2",
        }
    }

    /// Whether the daemon stops on this signal.
    pub fn stops_the_daemon(self) -> bool {
        matches!(self, Signal::Terminate | Signal::Interrupt | Signal::Quit)
    }

    fn kind(self) -> SignalKind {
        match self {
            Signal::Terminate => SignalKind::terminate(),
            Signal::Interrupt => SignalKind::interrupt(),
            Signal::Quit => SignalKind::quit(),
            Signal::Hangup => SignalKind::hangup(),
            Signal::User1 => SignalKind::user_defined1(),
            Signal::User2 => SignalKind::user_defined2(),
        }
    }
}

impl fmt::Display for Signal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A handler for SIGUSR1 or SIGUSR2. It runs on the daemon's root actor,
/// so it should be quick: send a message to the actor that does the work.
pub type SignalHandler = Arc<dyn Fn() + Send + Sync>;

/// Which signals the daemon handles. See the module docs.
#[derive(Clone)]
pub struct SignalConfig {
    terminate: bool,
    interrupt: bool,
    quit: bool,
    hangup: bool,
    user1: Option<SignalHandler>,
    user2: Option<SignalHandler>,
}

impl fmt::Debug for SignalConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SignalConfig")
            .field("terminate", &self.terminate)
            .field("interrupt", &self.interrupt)
            .field("quit", &self.quit)
            .field("hangup", &self.hangup)
            .field("user1", &self.user1.is_some())
            .field("user2", &self.user2.is_some())
            .finish()
    }
}

impl Default for SignalConfig {
    fn default() -> Self {
        SignalConfig::new()
    }
}

impl SignalConfig {
    /// SIGTERM, SIGINT, SIGQUIT and SIGHUP handled; SIGUSR1/2 left alone.
    pub fn new() -> Self {
        SignalConfig {
            terminate: true,
            interrupt: true,
            quit: true,
            hangup: true,
            user1: None,
            user2: None,
        }
    }

    /// No signal handled: the daemon stops only when code asks it to
    /// ([`Daemon::shutdown`](crate::Daemon::shutdown),
    /// [`ShutdownHandle::request_shutdown`](crate::ShutdownHandle::request_shutdown)).
    pub fn none() -> Self {
        SignalConfig {
            terminate: false,
            interrupt: false,
            quit: false,
            hangup: false,
            user1: None,
            user2: None,
        }
    }

    /// Leaves SIGTERM alone.
    pub fn without_sigterm(mut self) -> Self {
        self.terminate = false;
        self
    }

    /// Leaves SIGINT alone.
    pub fn without_sigint(mut self) -> Self {
        self.interrupt = false;
        self
    }

    /// Leaves SIGQUIT alone.
    pub fn without_sigquit(mut self) -> Self {
        self.quit = false;
        self
    }

    /// Leaves SIGHUP alone (its default action terminates the process).
    pub fn without_sighup(mut self) -> Self {
        self.hangup = false;
        self
    }

    /// Runs `handler` on every SIGUSR1.
    pub fn on_sigusr1(mut self, handler: impl Fn() + Send + Sync + 'static) -> Self {
        self.user1 = Some(Arc::new(handler));
        self
    }

    /// Runs `handler` on every SIGUSR2.
    pub fn on_sigusr2(mut self, handler: impl Fn() + Send + Sync + 'static) -> Self {
        self.user2 = Some(Arc::new(handler));
        self
    }

    /// Whether the daemon handles `signal` with this configuration.
    pub fn handles(&self, signal: Signal) -> bool {
        match signal {
            Signal::Terminate => self.terminate,
            Signal::Interrupt => self.interrupt,
            Signal::Quit => self.quit,
            Signal::Hangup => self.hangup,
            Signal::User1 => self.user1.is_some(),
            Signal::User2 => self.user2.is_some(),
        }
    }

    /// The user handler for SIGUSR1 or SIGUSR2.
    pub(crate) fn user_handler(&self, signal: Signal) -> Option<&SignalHandler> {
        match signal {
            Signal::User1 => self.user1.as_ref(),
            Signal::User2 => self.user2.as_ref(),
            _ => None,
        }
    }
}

/// Starts one listener task per handled signal, on worker `worker`; each
/// calls `deliver` for every arrival. Returns once every listener is
/// registered with the kernel, so a signal sent after this returns is never
/// missed.
pub(crate) fn listen(
    executor: &Executor,
    worker: usize,
    config: &SignalConfig,
    deliver: Arc<dyn Fn(Signal) + Send + Sync>,
) -> Result<Vec<JoinHandle<()>>> {
    let mut listeners = Vec::new();
    for signal in Signal::ALL.into_iter().filter(|&s| config.handles(s)) {
        let (registered, wait) = std::sync::mpsc::sync_channel(1);
        let deliver = deliver.clone();
        let listener = executor.spawn_on(worker, async move {
            // The stream is created and polled in the same task: tokio ties
            // it to the runtime (the worker) that created it.
            let mut stream = match tokio::signal::unix::signal(signal.kind()) {
                Ok(stream) => {
                    let _ = registered.send(Ok(()));
                    stream
                }
                Err(err) => {
                    let _ = registered.send(Err(err));
                    return;
                }
            };
            while stream.recv().await.is_some() {
                deliver(signal);
            }
        });
        listeners.push(listener.map_err(|err| {
            Error::io(
                format!("start the {signal} listener"),
                None,
                std::io::Error::other(err),
            )
        })?);
        match wait.recv() {
            Ok(Ok(())) => {}
            Ok(Err(err)) => {
                return Err(Error::io(
                    format!("register a handler for {signal}"),
                    None,
                    err,
                ));
            }
            Err(_) => {
                return Err(Error::io(
                    format!("register a handler for {signal}"),
                    None,
                    std::io::Error::other("the listener task ended before registering"),
                ));
            }
        }
    }
    Ok(listeners)
}
