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
//! A handler writes each signal's number into a pipe, and one task on the
//! daemon's control worker reads it (see `listen` for why not
//! `tokio::signal`). An idle daemon therefore sleeps in the kernel until a
//! signal arrives: there is no polling tick. A signal that stops the daemon
//! also wakes the other workers at once, through a second pipe, so that
//! they are awake when the shutdown reaches them.

use std::fmt;
use std::sync::Arc;

use proc_daemon_actors::executor::{Executor, JoinHandle};
use std::os::fd::AsRawFd;

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

    /// The signal's number (`libc::SIGTERM`, ...).
    pub fn number(self) -> i32 {
        match self {
            Signal::Terminate => libc::SIGTERM,
            Signal::Interrupt => libc::SIGINT,
            Signal::Quit => libc::SIGQUIT,
            Signal::Hangup => libc::SIGHUP,
            Signal::User1 => libc::SIGUSR1,
            Signal::User2 => libc::SIGUSR2,
        }
    }

    /// The handled signal with this number, if it is one.
    pub fn from_number(number: i32) -> Option<Signal> {
        Signal::ALL.into_iter().find(|s| s.number() == number)
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

/// Starts the signal listener on worker `worker`: it calls `deliver` for
/// every handled signal that arrives. The handlers are registered before
/// this returns, so a signal sent afterwards is never missed (it waits in
/// the pipe until the listener reads it).
///
/// Why not `tokio::signal`: tokio forwards every signal to a socket that
/// every runtime with I/O enabled watches, so one SIGTERM woke the
/// caller's runtime and every worker, three threads on two CPUs racing on
/// the way out. Here a handler writes the signal's number into a pipe that
/// only the listener's worker watches: one thread wakes.
///
/// A signal that stops the daemon (SIGTERM, SIGINT, SIGQUIT) is also
/// written to a second pipe, the wake-up pipe, which a small task on every
/// other worker watches. A worker woken by it marks the executor's shutdown
/// as imminent ([`Executor::shutdown_imminent`]) and so spins instead of
/// sleeping again. The handler runs before the control worker has even
/// woken; by the time the root actor cancels the subsystems, some of which
/// run on those other workers, they are awake. Waking a sleeping thread
/// costs on the order of 100 µs on a small VM, and this takes that wait
/// off the way out (docs/PERFORMANCE.md, "Daemon"). Other signals wake
/// only the control worker.
///
/// Aborting the returned tasks unregisters the handlers. The process then
/// keeps ignoring those signals: a Unix disposition, once handled, stays
/// handled (see the module docs).
pub(crate) fn listen(
    executor: &Executor,
    worker: usize,
    config: &SignalConfig,
    deliver: Arc<dyn Fn(Signal) + Send + Sync>,
) -> Result<Vec<JoinHandle<()>>> {
    let handled: Vec<Signal> = Signal::ALL
        .into_iter()
        .filter(|&s| config.handles(s))
        .collect();
    if handled.is_empty() {
        return Ok(Vec::new());
    }
    let pipe_error = |err| Error::io("create the signal pipe", None, err);
    let (reader, writer) = std::io::pipe().map_err(pipe_error)?;
    // The reader is made non-blocking by tokio; the writer must never
    // block inside a signal handler.
    set_nonblocking(&writer).map_err(pipe_error)?;
    let writer = Arc::new(writer);
    // With a single worker there is no other worker to wake, and a pipe
    // nobody reads would only make the handler's write fail with EPIPE.
    let wake_pipe = if executor.worker_count() > 1 {
        let wake_error = |err| Error::io("create the wake-up pipe", None, err);
        let (reader, writer) = std::io::pipe().map_err(wake_error)?;
        set_nonblocking(&writer).map_err(wake_error)?;
        Some((std::os::fd::OwnedFd::from(reader), Arc::new(writer)))
    } else {
        None
    };
    let mut registration = Registration(Vec::new());
    for &signal in &handled {
        let keep_open = writer.clone();
        let wake = wake_pipe
            .as_ref()
            .filter(|_| signal.stops_the_daemon())
            .map(|(_, writer)| writer.clone());
        let number = signal.number();
        let byte = [u8::try_from(number).expect("signal numbers fit a byte")];
        // SAFETY: `register` requires an async-signal-safe action. This one
        // only calls write(2), which POSIX lists as async-signal-safe, on
        // descriptors that `keep_open` and `wake` (owned by the action) keep
        // open for as long as the action exists; it allocates nothing, takes
        // no lock and ignores the results (a full pipe drops the byte: its
        // reader is already behind). signal-hook-registry saves and restores
        // errno around actions. Exercised with real signals by
        // tests/daemon_process.rs and tests/reference_samples.rs (Miri
        // cannot run signal handlers).
        let id = unsafe {
            signal_hook_registry::register(number, move || {
                let _ = libc::write(keep_open.as_raw_fd(), byte.as_ptr().cast(), 1);
                // Second: a worker woken here may preempt this thread, which
                // must have told the control worker first.
                if let Some(wake) = &wake {
                    let _ = libc::write(wake.as_raw_fd(), byte.as_ptr().cast(), 1);
                }
            })
        }
        .map_err(|err| Error::io(format!("register a handler for {signal}"), None, err))?;
        registration.0.push(id);
    }
    let task = async move {
        let _registration = registration;
        let delivered = watch_pipe(reader.into(), |bytes| {
            for &number in bytes {
                if let Some(signal) = Signal::from_number(i32::from(number)) {
                    deliver(signal);
                }
            }
        })
        .await;
        if let Err(err) = delivered {
            tracing::error!(%err, "the signal pipe failed; signals are not handled");
        }
    };
    let spawn_error = |err| {
        Error::io(
            "start the signal listener",
            None,
            std::io::Error::other(err),
        )
    };
    let mut listeners = vec![executor.spawn_on(worker, task).map_err(spawn_error)?];
    if let Some((wake_reader, wake_writer)) = wake_pipe {
        for other in (0..executor.worker_count()).filter(|&w| w != worker) {
            let reader = wake_reader
                .try_clone()
                .map_err(|err| Error::io("share the wake-up pipe", None, err))?;
            let wake = wake_up_on_signal(reader, executor.clone(), wake_writer.clone());
            listeners.push(executor.spawn_on(other, wake).map_err(spawn_error)?);
        }
    }
    Ok(listeners)
}

/// The task on a worker other than the listener's: waits on the wake-up
/// pipe (its own descriptor for it, registered with this worker's reactor)
/// and marks the shutdown imminent when a stopping signal arrives. Several
/// workers watch the same pipe; each is woken by each write, whichever of
/// them reads the byte.
async fn wake_up_on_signal(
    reader: std::os::fd::OwnedFd,
    executor: Executor,
    _keep_open: Arc<std::io::PipeWriter>,
) {
    if let Err(err) = watch_pipe(reader, |_| executor.shutdown_imminent()).await {
        // Only the early wake-up is lost; the shutdown still wakes this
        // worker when it gets here.
        tracing::debug!(%err, "the wake-up pipe failed");
    }
}

/// Reads `reader` (a pipe's read end) on the calling worker's reactor, so
/// that only this thread wakes, and hands every chunk read to `on_bytes`.
/// Returns when the pipe's writers are gone, or with the error that ended
/// it.
async fn watch_pipe(
    reader: std::os::fd::OwnedFd,
    mut on_bytes: impl FnMut(&[u8]),
) -> std::io::Result<()> {
    let reader = tokio::net::unix::pipe::Receiver::from_owned_fd(reader)?;
    let mut buffer = [0u8; 64];
    loop {
        reader.readable().await?;
        match reader.try_read(&mut buffer) {
            Ok(0) => return Ok(()),
            Ok(count) => on_bytes(&buffer[..count]),
            Err(err)
                if matches!(
                    err.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::Interrupted
                ) => {}
            Err(err) => return Err(err),
        }
    }
}

/// The registered handlers, unregistered when dropped.
struct Registration(Vec<signal_hook_registry::SigId>);

impl Drop for Registration {
    fn drop(&mut self) {
        for id in self.0.drain(..) {
            signal_hook_registry::unregister(id);
        }
    }
}

fn set_nonblocking(fd: &impl AsRawFd) -> std::io::Result<()> {
    let fd = fd.as_raw_fd();
    // SAFETY: fcntl(F_GETFL/F_SETFL) on a descriptor we own and keep open
    // for the call; it touches no memory of ours.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    if flags < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: as above.
    if unsafe { libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}
