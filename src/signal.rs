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
//! | SIGUSR1, SIGUSR2 | runs the handler given to [`SignalConfig::on_sigusr1`] / [`on_sigusr2`](SignalConfig::on_sigusr2); without one, logs the signal and ignores it |
//!
//! A daemon does not die from a stray signal: SIGUSR1 and SIGUSR2, whose
//! default action is to terminate the process (with no cleanup, and the
//! PID file left behind), are caught even without a handler, logged at
//! warn level and otherwise ignored.
//!
//! A signal turned off ([`SignalConfig::without_sigterm`] and the others,
//! or every signal with [`SignalConfig::none`]) is not touched: it keeps
//! the process's default action, which for most of them is to terminate
//! the process. Once a signal is handled it stays handled for
//! the life of the process (the Unix disposition is process-wide).
//!
//! A handler writes each signal's number into a pipe, then writes an
//! eventfd that every worker of the daemon watches; one task on the
//! daemon's control worker reads the pipe (see `listen` for why not
//! `tokio::signal`, and why one descriptor for every worker). An idle
//! daemon therefore sleeps in the kernel until a signal arrives: there is
//! no polling tick. A signal that stops the daemon wakes the other workers
//! at the same moment as the control worker, so that they are awake when
//! the shutdown reaches them.
//!
//! Every worker also watches a signalfd for the handled signals, which it
//! never reads. The kernel wakes whoever waits on a signalfd the moment a
//! signal is sent to the process, before the thread that will run the
//! handler is even woken, so each worker's thread (and its CPU, on a VM
//! whose idle vCPUs halt) is up by the time the handler's eventfd write
//! comes. See `listen` for the measurements and the cost.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

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
    /// SIGUSR1: a user handler, or logged and ignored.
    User1,
    /// SIGUSR2: a user handler, or logged and ignored.
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
    user1: UserSignal,
    user2: UserSignal,
}

/// What the daemon does with SIGUSR1 or SIGUSR2.
#[derive(Clone)]
enum UserSignal {
    /// Not touched: the process's default action (terminate) stays.
    Untouched,
    /// Caught, logged and otherwise ignored.
    Logged,
    /// Caught, and this handler runs.
    Handler(SignalHandler),
}

impl UserSignal {
    fn describe(&self) -> &'static str {
        match self {
            UserSignal::Untouched => "untouched",
            UserSignal::Logged => "logged",
            UserSignal::Handler(_) => "handler",
        }
    }
}

impl fmt::Debug for SignalConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SignalConfig")
            .field("terminate", &self.terminate)
            .field("interrupt", &self.interrupt)
            .field("quit", &self.quit)
            .field("hangup", &self.hangup)
            .field("user1", &self.user1.describe())
            .field("user2", &self.user2.describe())
            .finish()
    }
}

impl Default for SignalConfig {
    fn default() -> Self {
        SignalConfig::new()
    }
}

impl SignalConfig {
    /// SIGTERM, SIGINT, SIGQUIT and SIGHUP handled; SIGUSR1/2 caught,
    /// logged and ignored until a handler is given.
    pub fn new() -> Self {
        SignalConfig {
            terminate: true,
            interrupt: true,
            quit: true,
            hangup: true,
            user1: UserSignal::Logged,
            user2: UserSignal::Logged,
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
            user1: UserSignal::Untouched,
            user2: UserSignal::Untouched,
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

    /// Leaves SIGUSR1 alone: its default action terminates the process.
    pub fn without_sigusr1(mut self) -> Self {
        self.user1 = UserSignal::Untouched;
        self
    }

    /// Leaves SIGUSR2 alone: its default action terminates the process.
    pub fn without_sigusr2(mut self) -> Self {
        self.user2 = UserSignal::Untouched;
        self
    }

    /// Runs `handler` on every SIGUSR1.
    pub fn on_sigusr1(mut self, handler: impl Fn() + Send + Sync + 'static) -> Self {
        self.user1 = UserSignal::Handler(Arc::new(handler));
        self
    }

    /// Runs `handler` on every SIGUSR2.
    pub fn on_sigusr2(mut self, handler: impl Fn() + Send + Sync + 'static) -> Self {
        self.user2 = UserSignal::Handler(Arc::new(handler));
        self
    }

    /// Whether the daemon handles `signal` with this configuration.
    pub fn handles(&self, signal: Signal) -> bool {
        match signal {
            Signal::Terminate => self.terminate,
            Signal::Interrupt => self.interrupt,
            Signal::Quit => self.quit,
            Signal::Hangup => self.hangup,
            Signal::User1 => !matches!(self.user1, UserSignal::Untouched),
            Signal::User2 => !matches!(self.user2, UserSignal::Untouched),
        }
    }

    /// The user handler for SIGUSR1 or SIGUSR2, if one was given.
    pub(crate) fn user_handler(&self, signal: Signal) -> Option<&SignalHandler> {
        let slot = match signal {
            Signal::User1 => &self.user1,
            Signal::User2 => &self.user2,
            _ => return None,
        };
        match slot {
            UserSignal::Handler(handler) => Some(handler),
            UserSignal::Untouched | UserSignal::Logged => None,
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
/// the way out, and a runtime that is not the daemon's received it too.
///
/// Here a handler writes the signal's number into a pipe, in arrival
/// order, then writes an eventfd that every worker of the daemon watches
/// with its own reactor. One `write` wakes them all. The listener's worker
/// reads the pipe and delivers the signals. Another worker, for a signal
/// that stops the daemon (SIGTERM, SIGINT, SIGQUIT; the handler raises a
/// flag first), marks the executor's shutdown as imminent
/// ([`ExecutorDrain::prepare`](proc_daemon_actors::executor::ExecutorDrain::prepare)) and so spins instead of sleeping
/// again. By the time the root actor cancels the subsystems, some of which
/// run on those workers, they are awake. Waking a sleeping thread costs
/// on the order of 100 µs on a small VM, and this takes that wait off the
/// way out (docs/performance-history.md, "Daemon").
///
/// Why one write: the first thread a write wakes often lands on the CPU
/// of the thread running the handler, and preempts it as the `write`
/// returns. A second write, to wake the next worker, then waits until the
/// handler's thread gets its CPU back: over 100 µs in traces of the
/// version that had a pipe per purpose.
///
/// Why a signalfd as well, watched by every worker and never read: the
/// kernel wakes the waiters on a process's signalfds as it queues any
/// signal, from the `kill` call itself, while the thread that will run the
/// handler (usually the caller's main thread) is only being woken. Without
/// it, the workers' wake-ups start once the handler has run: two wake-ups
/// of sleeping threads in a row, each 60–200 µs on a VM whose idle vCPU
/// halts. With it, they overlap. A worker woken this way finds nothing to
/// do and sleeps again, but on a CPU that is awake, and the handler's
/// eventfd write then reaches it at once. SIGTERM to exit, 10 subsystems,
/// builds with and without it alternating: about 30 µs shorter, which
/// took the exit from 4–9% slower than proc-daemon 1.1.3 to level with it
/// (docs/performance-history.md, "Daemon").
///
/// Nobody reads the signalfd, so it takes no signal away from the handlers
/// (ours, or another library's for the same signal); it is readable only
/// while a handled signal waits for a thread. Its cost: the kernel wakes
/// signalfd waiters for *every* signal sent to the process, not only the
/// handled ones, so a signal with a handler of its own (tokio's SIGCHLD
/// for its child processes, say) also wakes each sleeping worker for a
/// moment in the kernel. Signals whose action is to be ignored are
/// dropped before that point and wake nobody. Timers and idle daemons are
/// unaffected.
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
    // The writer must never block inside a signal handler; the reader is
    // read until it would block.
    set_nonblocking(&writer).map_err(pipe_error)?;
    set_nonblocking(&reader).map_err(pipe_error)?;
    let writer = Arc::new(writer);
    let wake =
        Arc::new(new_eventfd().map_err(|err| Error::io("create the signal eventfd", None, err))?);
    let sent = Arc::new(
        new_signalfd(&handled).map_err(|err| Error::io("create the signalfd", None, err))?,
    );
    let stopping = Arc::new(AtomicBool::new(false));
    let mut registration = Registration(Vec::new());
    for &signal in &handled {
        let numbers = writer.clone();
        let wake = wake.clone();
        let stopping = signal.stops_the_daemon().then(|| stopping.clone());
        let number = signal.number();
        let byte = [u8::try_from(number).expect("signal numbers fit a byte")];
        let one = 1u64.to_ne_bytes();
        // SAFETY: `register` requires an async-signal-safe action. This one
        // stores to an atomic and calls write(2), which POSIX lists as
        // async-signal-safe, on descriptors that `numbers` and `wake` (owned
        // by the action) keep open for as long as the action exists. It
        // allocates nothing, takes no lock and ignores the results: a full
        // pipe drops the byte (its reader is already behind), and an
        // eventfd write fails only when the counter would overflow, with a
        // wake-up already pending. signal-hook-registry saves and restores
        // errno around actions. Exercised with real signals by
        // tests/daemon_process.rs and tests/reference_samples.rs (Miri
        // cannot run signal handlers).
        let id = unsafe {
            signal_hook_registry::register(number, move || {
                if let Some(stopping) = &stopping {
                    stopping.store(true, Ordering::Release);
                }
                let _ = libc::write(numbers.as_raw_fd(), byte.as_ptr().cast(), 1);
                let _ = libc::write(wake.as_raw_fd(), one.as_ptr().cast(), one.len());
            })
        }
        .map_err(|err| Error::io(format!("register a handler for {signal}"), None, err))?;
        registration.0.push(id);
    }
    let numbers = reader;
    let control_wake = SharedFd(wake.clone());
    let task = async move {
        let _registration = registration;
        let delivered = on_each_wake(control_wake, || {
            drain_pipe(&numbers, |bytes| {
                for &number in bytes {
                    if let Some(signal) = Signal::from_number(i32::from(number)) {
                        deliver(signal);
                    }
                }
            })
        })
        .await;
        if let Err(err) = delivered {
            tracing::error!(%err, "the signal listener failed; signals are not handled");
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
    for other in (0..executor.worker_count()).filter(|&w| w != worker) {
        let stopping = stopping.clone();
        let hurry = executor.clone();
        let woken = on_each_wake(SharedFd(wake.clone()), move || {
            if stopping.load(Ordering::Acquire) {
                hurry.drain().prepare();
            }
            Ok(())
        });
        let task = async move {
            if let Err(err) = woken.await {
                // Only the early wake-up is lost; the shutdown still wakes
                // this worker when it gets here.
                tracing::debug!(%err, "the signal eventfd failed on another worker");
            }
        };
        listeners.push(executor.spawn_on(other, task).map_err(spawn_error)?);
    }
    for any in 0..executor.worker_count() {
        let task = wake_when_sent(SharedFd(sent.clone()));
        listeners.push(executor.spawn_on(any, task).map_err(spawn_error)?);
    }
    Ok(listeners)
}

/// Keeps the signalfd `sent` registered with the calling worker's reactor,
/// so that the kernel wakes this worker whenever a signal is sent to the
/// process (see `listen`). The wake-up is all it is for: it reads nothing
/// and does nothing on waking.
async fn wake_when_sent(sent: SharedFd) {
    if let Err(err) = on_each_wake(sent, || Ok(())).await {
        // Only the early wake-up is lost; the handler's eventfd still
        // wakes this worker.
        tracing::debug!(%err, "the signalfd watch failed");
    }
}

/// Watches `wake` (the eventfd, or the signalfd) with the calling
/// worker's reactor, so that it wakes this thread, and calls `on_wake` once
/// registered and after each wake-up.
/// Every worker registers the same descriptor with its own epoll; each
/// write (or sent signal) wakes all of them. Returns the first error, from
/// the reactor or from `on_wake`.
///
/// Nobody reads the eventfd's counter, so it only grows (by one a signal;
/// it cannot overflow in practice). epoll re-checks a descriptor's
/// readiness when it hands out an event: a worker that reset the counter
/// would make the other workers' epolls drop the event that was on its way
/// to them. Readiness is edge-triggered (tokio registers with `EPOLLET`),
/// so each write still wakes every worker once, and a signalfd left
/// readable does not wake anyone again until the next signal.
async fn on_each_wake(
    wake: SharedFd,
    mut on_wake: impl FnMut() -> std::io::Result<()>,
) -> std::io::Result<()> {
    // SAFETY: `register_with_interest` requires the descriptor to stay open,
    // as the same file, for as long as the `AsyncFd` lives, and `as_raw_fd`
    // to return it every time. `SharedFd` holds an `Arc` of the `OwnedFd`,
    // and the `AsyncFd` owns the `SharedFd`, so the descriptor stays open.
    let watched = unsafe {
        tokio::io::unix::AsyncFd::register_with_interest(wake, tokio::io::Interest::READABLE)
    }
    .map_err(std::io::Error::from)?;
    // Once now, for a signal that came before the registration: epoll
    // would report the non-zero counter at once, but this does not have to
    // rely on it.
    on_wake()?;
    loop {
        let mut ready = watched.readable().await?;
        // Before `on_wake`: a write after this wakes us again.
        ready.clear_ready();
        on_wake()?;
    }
}

/// Reads the non-blocking pipe `reader` until it is empty and hands every
/// chunk to `on_bytes`. An end of file (the writers gone) is an error: the
/// handlers own the writer, so it means they are gone.
fn drain_pipe(
    reader: &std::io::PipeReader,
    mut on_bytes: impl FnMut(&[u8]),
) -> std::io::Result<()> {
    use std::io::Read;
    let mut reader = reader;
    let mut buffer = [0u8; 64];
    loop {
        match reader.read(&mut buffer) {
            Ok(0) => {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "the signal pipe's writers are gone",
                ));
            }
            Ok(count) => on_bytes(&buffer[..count]),
            Err(err) if err.kind() == std::io::ErrorKind::WouldBlock => return Ok(()),
            Err(err) if err.kind() == std::io::ErrorKind::Interrupted => {}
            Err(err) => return Err(err),
        }
    }
}

/// A descriptor shared by the tasks that watch it. Registering it with a
/// reactor borrows the number; it is closed when the last clone drops.
struct SharedFd(Arc<std::os::fd::OwnedFd>);

impl AsRawFd for SharedFd {
    fn as_raw_fd(&self) -> std::os::fd::RawFd {
        self.0.as_raw_fd()
    }
}

/// A non-blocking, close-on-exec eventfd.
fn new_eventfd() -> std::io::Result<std::os::fd::OwnedFd> {
    // SAFETY: eventfd(2) takes no pointers; it returns a new descriptor,
    // which nothing else owns, or -1.
    unsafe { own_new_fd(libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC)) }
}

/// A non-blocking, close-on-exec signalfd for `signals`. It does not block
/// them: they still go to their handlers, and the descriptor only reports
/// (and wakes its waiters) while one of them is pending.
fn new_signalfd(signals: &[Signal]) -> std::io::Result<std::os::fd::OwnedFd> {
    let mask = signal_set(signals.iter().map(|signal| signal.number()));
    // SAFETY: signalfd(2) with -1 creates a new descriptor, which nothing
    // else owns, or returns -1; it reads `mask`, which lives for the call.
    unsafe {
        own_new_fd(libc::signalfd(
            -1,
            &raw const mask,
            libc::SFD_NONBLOCK | libc::SFD_CLOEXEC,
        ))
    }
}

/// Takes ownership of `fd`, the result of a call that creates a
/// descriptor, or turns its -1 into the call's error (from `errno`).
///
/// # Safety
///
/// `fd` is -1, or a descriptor that the call just created and that nothing
/// else owns or will close.
unsafe fn own_new_fd(fd: libc::c_int) -> std::io::Result<std::os::fd::OwnedFd> {
    use std::os::fd::FromRawFd;
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: the caller guarantees `fd` is a new descriptor nothing else
    // owns.
    Ok(unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) })
}

/// The set of the signals `numbers`, which must be valid signal numbers.
fn signal_set(numbers: impl IntoIterator<Item = i32>) -> libc::sigset_t {
    // SAFETY: `sigset_t` is plain data, for which all zeroes is a valid
    // value; sigemptyset then initialises it as POSIX requires.
    let mut set: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: sigemptyset and sigaddset write only to `set`, which lives
    // for the calls; sigaddset fails only for an invalid signal number,
    // which leaves the set unchanged.
    unsafe {
        libc::sigemptyset(&raw mut set);
        for number in numbers {
            libc::sigaddset(&raw mut set, number);
        }
    }
    set
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;
    use std::time::Duration;

    /// Blocks `numbers` in the calling thread only and returns the mask to
    /// restore. Sent to this thread with `pthread_kill`, they then stay
    /// pending on it, where its signalfds see them, and no handler or
    /// default action runs.
    fn block_in_this_thread(numbers: &[i32]) -> libc::sigset_t {
        let block = signal_set(numbers.iter().copied());
        let mut previous = signal_set([]);
        // SAFETY: pthread_sigmask reads `block` and writes `previous`, both
        // live for the call.
        let status =
            unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &raw const block, &raw mut previous) };
        assert_eq!(status, 0);
        previous
    }

    /// Takes `number` off this thread's pending signals, if it is there.
    fn take_pending(number: i32) -> bool {
        let set = signal_set([number]);
        let zero = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: sigtimedwait reads `set` and `zero`, which live for the
        // call, and with a zero timeout does not block.
        unsafe {
            libc::sigtimedwait(&raw const set, std::ptr::null_mut(), &raw const zero) == number
        }
    }

    #[test]
    fn the_signalfd_wakes_its_watch_for_its_signals_only() {
        // A thread of its own, so that the blocked signals and the
        // thread-directed sends touch nothing else in the test process.
        let outcome = std::thread::spawn(|| {
            let previous = block_in_this_thread(&[libc::SIGUSR1, libc::SIGUSR2]);
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime");
            let sent = Arc::new(new_signalfd(&[Signal::User2]).expect("a signalfd"));
            let wakes = Arc::new(AtomicUsize::new(0));
            let woken = Arc::new(tokio::sync::Notify::new());
            let read_back = runtime.block_on(async {
                let (count, notify) = (wakes.clone(), woken.clone());
                let watch = tokio::spawn(on_each_wake(SharedFd(sent.clone()), move || {
                    count.fetch_add(1, Ordering::SeqCst);
                    notify.notify_one();
                    Ok(())
                }));
                let wait_for = |at_least: usize| {
                    let (wakes, woken) = (wakes.clone(), woken.clone());
                    tokio::time::timeout(Duration::from_secs(5), async move {
                        while wakes.load(Ordering::SeqCst) < at_least {
                            woken.notified().await;
                        }
                    })
                };
                wait_for(1).await.expect("the watch registers");
                // SAFETY: pthread_kill to the calling thread, with a valid
                // signal that this thread blocks.
                unsafe {
                    assert_eq!(libc::pthread_kill(libc::pthread_self(), libc::SIGUSR1), 0);
                    assert_eq!(libc::pthread_kill(libc::pthread_self(), libc::SIGUSR2), 0);
                }
                wait_for(2).await.expect("SIGUSR2 wakes the watch");
                watch.abort();
                // What the signalfd reports: SIGUSR2, not SIGUSR1.
                let mut info = [0u8; std::mem::size_of::<libc::signalfd_siginfo>()];
                let mut reader = std::fs::File::from(
                    std::os::fd::OwnedFd::try_clone(&sent).expect("a duplicate"),
                );
                let mut numbers = Vec::new();
                loop {
                    match std::io::Read::read(&mut reader, &mut info) {
                        Ok(n) if n == info.len() => {
                            numbers.push(u32::from_ne_bytes(info[..4].try_into().unwrap()));
                        }
                        Ok(n) => panic!("a short read of {n} bytes from the signalfd"),
                        Err(err) if err.kind() == std::io::ErrorKind::WouldBlock => break,
                        Err(err) => panic!("reading the signalfd: {err}"),
                    }
                }
                numbers
            });
            // Both taken before the mask is restored, whatever happened
            // above, so that neither can end the test process.
            let usr1_was_pending = take_pending(libc::SIGUSR1);
            let usr2_was_left = take_pending(libc::SIGUSR2);
            // SAFETY: restores the mask saved above; reads `previous` only.
            unsafe {
                libc::pthread_sigmask(libc::SIG_SETMASK, &raw const previous, std::ptr::null_mut());
            }
            (
                read_back,
                usr1_was_pending,
                usr2_was_left,
                wakes.load(Ordering::SeqCst),
            )
        })
        .join()
        .expect("the test thread");
        let (read_back, usr1_was_pending, usr2_was_left, wakes) = outcome;
        assert_eq!(read_back, vec![libc::SIGUSR2 as u32]);
        assert!(usr1_was_pending, "SIGUSR1 was left to its own delivery");
        assert!(!usr2_was_left, "reading the signalfd took SIGUSR2");
        assert_eq!(wakes, 2, "registered once, woken once by SIGUSR2");
    }
}
