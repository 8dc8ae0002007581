//! The daemon: its builder, its root actor, and the staged way out.
//!
//! ```no_run
//! use proc_daemon::{Config, Daemon, Result};
//! use std::time::Duration;
//!
//! #[tokio::main]
//! async fn main() -> Result<()> {
//!     let config = Config::builder()
//!         .name("my-daemon")
//!         .shutdown_timeout(Duration::from_secs(30))
//!         .build()?;
//!     let exit = Daemon::builder(config)
//!         .with_task("main_service", |mut shutdown| {
//!             Box::pin(async move {
//!                 shutdown.cancelled().await;
//!                 Ok(())
//!             })
//!         })
//!         .run()
//!         .await?;
//!     println!("stopped: {}", exit.reason());
//!     Ok(())
//! }
//! ```
//!
//! # The tree
//!
//! ```text
//! DaemonActor            signals, shutdown requests, escalations, reloads
//! └── root Supervisor    OneForOne, intensity from the supervisor defaults
//!     ├── subsystems     with_task / with_subsystem / with_subsystem_fn, in order
//!     └── actors         daemon.supervisor().child(..) at run time
//! ```
//!
//! Everything that can stop or change the daemon reaches the
//! [`DaemonActor`] as a message: a signal from a listener task, a request
//! from a [`ShutdownHandle`] or [`Daemon::shutdown`], the root supervisor's
//! [`Escalation`] when a restart storm exhausts it. One actor handles them
//! one at a time, so "a second SIGINT during shutdown" or "a request while
//! escalating" has one obvious meaning.
//!
//! # Staged shutdown
//!
//! All timeouts come from `[shutdown]`, measured from the moment shutdown
//! begins:
//!
//! 1. **Graceful** (`timeout_ms`): every [`ShutdownHandle`] is cancelled at
//!    once, then the root supervisor stops its children in reverse start
//!    order, giving each up to `timeout_ms` (a subsystem's cleanup that
//!    fits in it always completes). A child that overruns is left running
//!    and the next one is stopped.
//! 2. **Force** (`force_timeout_ms`): children still running are aborted,
//!    then every task left on the executor.
//! 3. **Kill** (`kill_timeout_ms`): if the process has still not finished
//!    (a thread stuck in blocking code ignores aborts), a timer's signal
//!    handler removes the PID file and exits the process with code 3; should
//!    that signal be blocked everywhere, SIGKILL follows 500 ms later (see
//!    `kill_stage.rs`). No thread of the daemon's waits for this.
//!
//! A second SIGINT during shutdown jumps to the force stage at once.
//!
//! # Exit codes
//!
//! The codes are in [`crate::exit`] (re-exported here).
//!
//! [`Daemon::run`] returns `Ok` only for a clean stop; a failure or a
//! forced stop is an `Err` whose [`Error::exit_code`] is the code above.
//! A `main` returning `proc_daemon::Result<()>` exits with 1 for any `Err`
//! (Rust's rule); call `std::process::exit(err.exit_code())` to keep the
//! distinction, as `examples/comprehensive.rs` does.

use std::collections::HashSet;
use std::fmt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use proc_daemon_actors::events::EventBus;
use proc_daemon_actors::executor::{ABORT_GRACE, Executor, JoinHandle};
use proc_daemon_actors::mailbox::{Backend, Capacity};
use proc_daemon_actors::prelude::*;
use proc_daemon_actors::spawn::{SpawnOptions, spawn_on};
use proc_daemon_actors::supervision::{
    DEFAULT_HEALTH_CHECK_FAILURES, Drain, DrainReport, Escalation,
};

use crate::kill_stage::KillSwitch;
use crate::lock::lock;
use crate::pid_file::PidFile;
use crate::shutdown::{DaemonShutdown, ShutdownHandle, ShutdownReason, wait_until};
use crate::signal::{self, Signal, SignalConfig};
use crate::subsystem::{FnSubsystem, Subsystem, SubsystemActor, SubsystemManager};
use crate::{Config, Error, RestartPolicy, Result};

pub use crate::exit::{EXIT_CLEAN, EXIT_CLEANUP_FAILED, EXIT_FAILURE, EXIT_FORCED, EXIT_KILLED};

/// `; cleanup failed: a (panicked: boom)`, or nothing.
fn describe_failed_cleanups(failures: &[(String, String)]) -> String {
    if failures.is_empty() {
        return String::new();
    }
    let list: Vec<String> = failures
        .iter()
        .map(|(name, what)| format!("{name} ({what})"))
        .collect();
    format!("; cleanup failed: {}", list.join(", "))
}

/// The worker that runs the daemon's root actor, its root supervisor and
/// its signal listeners. Keeping them together means a signal, the drain
/// it starts and the report that ends it pass between tasks on one thread,
/// with no cross-thread wake-up on the way out.
const CONTROL_WORKER: usize = 0;

pub use crate::subsystem::EVENT_RING_CAPACITY;

/// Builds a [`Daemon`]: `Daemon::builder(config)`.
#[must_use = "a daemon does nothing until .run().await (or .build())"]
pub struct DaemonBuilder {
    config: Config,
    subsystems: Vec<Arc<dyn Subsystem>>,
    signals: SignalConfig,
    pid_file: Option<PathBuf>,
    manager: Option<SubsystemManager>,
}

impl fmt::Debug for DaemonBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DaemonBuilder")
            .field("name", &self.config.name)
            .field(
                "subsystems",
                &self.subsystems.iter().map(|s| s.name()).collect::<Vec<_>>(),
            )
            .field("signals", &self.signals)
            .field("pid_file", &self.pid_file)
            .finish()
    }
}

impl DaemonBuilder {
    /// Registers a task: a closure called with a [`ShutdownHandle`] for
    /// every incarnation. It runs under [`RestartPolicy::OnFailure`]: an
    /// `Err` or a panic restarts it, `Ok(())` ends it.
    pub fn with_task<F, Fut>(self, name: impl Into<String>, task: F) -> Self
    where
        F: Fn(ShutdownHandle) -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = Result<()>> + Send + 'static,
    {
        self.with_subsystem(FnSubsystem {
            name: name.into(),
            body: task,
            policy: RestartPolicy::OnFailure,
        })
    }

    /// Registers a [`Subsystem`]. Subsystems start in the order they are
    /// registered and stop in reverse.
    pub fn with_subsystem<S: Subsystem>(mut self, subsystem: S) -> Self {
        self.subsystems.push(Arc::new(subsystem));
        self
    }

    /// Registers a closure subsystem. The same as
    /// [`with_task`](Self::with_task); both names are in the reference.
    pub fn with_subsystem_fn<F, Fut>(self, name: impl Into<String>, subsystem: F) -> Self
    where
        F: Fn(ShutdownHandle) -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = Result<()>> + Send + 'static,
    {
        self.with_task(name, subsystem)
    }

    /// Which signals the daemon handles (default [`SignalConfig::new`]).
    pub fn with_signal_config(mut self, signals: SignalConfig) -> Self {
        self.signals = signals;
        self
    }

    /// Locks and writes a PID file at `path`, overriding the config's
    /// `pid_file`. See [`crate::pid_file`].
    pub fn with_pid_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.pid_file = Some(path.into());
        self
    }

    /// Publishes the tree's [`SubsystemEvent`](crate::SubsystemEvent)s
    /// into `manager` (default: a fresh one, see [`Daemon::subsystems`]).
    pub fn with_subsystem_manager(mut self, manager: SubsystemManager) -> Self {
        self.manager = Some(manager);
        self
    }

    /// Starts the daemon and runs it until it stops; see [`Daemon::run`].
    pub async fn run(self) -> Result<DaemonExit> {
        self.build()?.run().await
    }

    /// Starts the daemon: logging, the PID file, the working directory,
    /// the executor, the root actor and supervisor, the signal listeners,
    /// then every registered subsystem in order. Returns once they all
    /// run, for callers that need [`Daemon::supervisor`] before
    /// [`Daemon::run`].
    ///
    /// It waits for the subsystems to start by blocking the calling thread
    /// briefly (they start on the daemon's own executor).
    ///
    /// # Errors
    ///
    /// A bad logging setup, a held PID file, a missing working directory,
    /// an executor that cannot start, a signal that cannot be registered,
    /// two subsystems with one name, or a subsystem that cannot be added.
    pub fn build(self) -> Result<Daemon> {
        let DaemonBuilder {
            config,
            subsystems,
            signals,
            pid_file,
            manager,
        } = self;
        let manager = manager.unwrap_or_default();
        crate::logging::init(&config.logging)?;
        warn_about_inert_keys(&config);
        install_message_pool(config.performance.memory_pool_size)?;
        let mut names = HashSet::new();
        for subsystem in &subsystems {
            if !names.insert(subsystem.name().to_owned()) {
                return Err(Error::subsystem(
                    subsystem.name(),
                    "two subsystems have this name; names must be unique",
                ));
            }
        }
        let pid_file = match pid_file.or_else(|| config.pid_file.clone()) {
            Some(path) => Some(PidFile::acquire(path)?),
            None => None,
        };
        if let Some(dir) = &config.work_dir {
            std::env::set_current_dir(dir).map_err(|err| {
                Error::io("change into the working directory", Some(dir.clone()), err)
            })?;
        }
        let executor = config
            .performance
            .executor_builder()
            .thread_name(format!("{}-worker", config.name))
            .build()
            .map_err(|err| explain_executor_error(&config, err))?;

        let config = Arc::new(config);
        let shutdown = DaemonShutdown::new();
        let finish = Arc::new(FinishRecord::default());
        let events = manager.bus().clone();
        let kill = Arc::new(KillSwitch::start(pid_file.as_ref())?);
        let signal_listeners = Arc::new(Mutex::new(Vec::new()));
        let spawn_failed = |err| {
            Error::io(
                "start the daemon's root actor",
                None,
                std::io::Error::other(err),
            )
        };
        let actor = spawn_on(
            &executor,
            CONTROL_WORKER,
            DaemonActor {
                config: Arc::clone(&config),
                root: None,
                shutdown: shutdown.clone(),
                signals: signals.clone(),
                reload_subscribers: Vec::new(),
                phase: Phase::Running,
                finish: finish.clone(),
                executor: executor.clone(),
                kill: kill.clone(),
                force_timer: None,
                events: events.clone(),
                signal_listeners: signal_listeners.clone(),
            },
            SpawnOptions::default().capacity(Capacity::Unbounded),
        )
        .map_err(spawn_failed)?;
        let root = Supervisor::builder()
            .events(events.clone())
            .escalate_to(actor.clone().recipient())
            .spawn_on(&executor, CONTROL_WORKER)
            .map_err(spawn_failed)?;
        let daemon_actor = actor.clone();
        let attach_root = root.clone();
        executor
            .spawn(async move { daemon_actor.ask(Attach(attach_root)).await })
            .join()
            .map_err(|err| {
                Error::subsystem("daemon", format!("the root actor did not start: {err}"))
            })?
            .map_err(|err| {
                Error::subsystem("daemon", format!("the root actor did not start: {err}"))
            })?;

        let requests = actor.clone();
        shutdown.route_requests(move |reason| {
            let _ = requests.try_tell(ShutdownRequest(reason));
        });
        let deliver_to = actor.clone();
        let listeners = signal::listen(
            &executor,
            CONTROL_WORKER,
            &signals,
            Arc::new(move |signal| {
                let _ = deliver_to.try_tell(SignalReceived(signal));
            }),
        );
        let daemon = Daemon {
            inner: Arc::new(Inner {
                config,
                executor,
                root,
                actor,
                shutdown,
                finish,
                run_called: AtomicBool::new(false),
                pid_file: Mutex::new(pid_file),
                signal_listeners,
                kill,
                manager,
            }),
        };
        match listeners {
            Ok(listeners) => *lock(&daemon.inner.signal_listeners) = listeners,
            Err(err) => {
                daemon.abandon();
                return Err(err);
            }
        }
        if let Err(err) = daemon.start_subsystems(subsystems) {
            daemon.abandon();
            return Err(err);
        }
        tracing::info!(daemon = %daemon.inner.config.name, pid = std::process::id(), "daemon running");
        Ok(daemon)
    }
}

/// A running daemon. Clones are handles to the same daemon: any of them
/// can request shutdown; one of them runs it.
#[derive(Clone)]
pub struct Daemon {
    inner: Arc<Inner>,
}

struct Inner {
    config: Arc<Config>,
    executor: Executor,
    root: ActorRef<Supervisor>,
    actor: ActorRef<DaemonActor>,
    shutdown: Arc<DaemonShutdown>,
    finish: Arc<FinishRecord>,
    run_called: AtomicBool,
    pid_file: Mutex<Option<PidFile>>,
    signal_listeners: Arc<Mutex<Vec<JoinHandle<()>>>>,
    kill: Arc<KillSwitch>,
    manager: SubsystemManager,
}

impl Drop for Inner {
    fn drop(&mut self) {
        if !self.run_called.load(Ordering::Acquire) {
            // The last handle is gone and `run` was never called, so nothing
            // will ever wait for this daemon: stop it as `Daemon::shutdown`
            // would. Its subsystems are cancelled and drained, and its
            // workers exit once the tree has stopped. (A `Context` on every
            // actor holds the executor, so the workers would otherwise run
            // for the life of the process.)
            let _ = self
                .actor
                .try_tell(ShutdownRequest(ShutdownReason::Requested(
                    "the daemon was dropped without `run`".into(),
                )));
        }
        // Disarmed first, so the shutdown just requested never arms it:
        // nobody is left to disarm it, and a watchdog must not end the
        // process of a daemon that nobody runs.
        self.kill.disarm();
    }
}

impl fmt::Debug for Daemon {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Daemon")
            .field("name", &self.inner.config.name)
            .field("shutting_down", &self.inner.shutdown.token.is_cancelled())
            .finish()
    }
}

impl Daemon {
    /// Starts building a daemon on `config`.
    pub fn builder(config: Config) -> DaemonBuilder {
        DaemonBuilder {
            config,
            subsystems: Vec::new(),
            signals: SignalConfig::new(),
            pid_file: None,
            manager: None,
        }
    }

    /// The root supervisor: spawn actors under it at run time with
    /// `daemon.supervisor().child(name, factory)...spawn().await`. They
    /// stop, in reverse order, with the daemon.
    pub fn supervisor(&self) -> &ActorRef<Supervisor> {
        &self.inner.root
    }

    /// The executor the daemon's actors run on.
    pub fn executor(&self) -> &Executor {
        &self.inner.executor
    }

    /// The mailbox options the configuration asks for
    /// (`performance.lock_free`), for children spawned under
    /// [`Daemon::supervisor`] (`.mailbox(daemon.mailbox_options())`).
    /// Subsystems get them automatically.
    pub fn mailbox_options(&self) -> SpawnOptions {
        mailbox_options(&self.inner.config)
    }

    /// The configuration the daemon runs with.
    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    /// A handle that is cancelled when the daemon shuts down, and that can
    /// request it.
    pub fn shutdown_handle(&self) -> ShutdownHandle {
        ShutdownHandle::for_daemon(self.inner.shutdown.clone())
    }

    /// Requests a graceful shutdown, as SIGTERM would. Returns at once;
    /// [`Daemon::run`] returns when the shutdown is complete.
    pub fn shutdown(&self) {
        self.request_shutdown("Daemon::shutdown was called");
    }

    /// Requests a graceful shutdown for `reason`.
    pub fn request_shutdown(&self, reason: impl Into<String>) {
        let _ = self
            .inner
            .actor
            .try_tell(ShutdownRequest(ShutdownReason::Requested(reason.into())));
    }

    /// Sends [`Reload`] to `subscriber` on every SIGHUP.
    pub fn subscribe_reload(&self, subscriber: Recipient<Reload>) {
        let _ = self.inner.actor.try_tell(SubscribeReload(subscriber));
    }

    /// The supervision tree's events, as the reference's
    /// `SubsystemManager` offers them.
    pub fn subsystems(&self) -> &SubsystemManager {
        &self.inner.manager
    }

    /// Runs until the daemon has shut down: a handled signal,
    /// [`Daemon::shutdown`], a [`ShutdownHandle::request_shutdown`], or an
    /// escalated failure. See the module docs for the stages.
    ///
    /// # Errors
    ///
    /// `Ok` means a clean stop. An escalated failure is
    /// [`Error::Subsystem`]; a forced stop is [`Error::Shutdown`]; either's
    /// [`Error::exit_code`] gives the documented exit code. Calling `run`
    /// on a second clone is an [`Error::Shutdown`].
    pub async fn run(self) -> Result<DaemonExit> {
        if self.inner.run_called.swap(true, Ordering::AcqRel) {
            return Err(Error::shutdown(
                "Daemon::run was already called on this daemon",
            ));
        }
        // Everything `run` reports is settled once the workers have exited:
        // the root actor records how the daemon stopped, then begins the
        // executor's shutdown (or, should it die first, its `Drop` does).
        // So this task is woken once, by the last worker to exit, and not
        // also when the tree has stopped: on a small VM every wake-up of a
        // sleeping thread costs on the order of 100 µs.
        let executor = self.inner.executor.clone();
        // Without blocking the caller's runtime. A worker stuck in blocking
        // code never exits. When the tree ran into the force deadline (as a
        // stuck subsystem makes it), the root actor's worker, which began
        // the executor's shutdown, gives up on the stuck one at that
        // deadline plus `ABORT_GRACE` (the executor's watch.rs), and this
        // returns then; otherwise the kill stage ends the process.
        executor.workers_exited_async().await;
        let finish = self.inner.finish.take(&executor).await;
        // Now it does not block on the workers: they have exited, or the
        // wait is past its deadline.
        let executor_report = executor.wait_shutdown().ok();
        let aborted_tasks = executor_report.as_ref().map_or(0, |r| r.aborted_tasks);
        if aborted_tasks > 0 {
            tracing::warn!(
                aborted_tasks,
                "tasks still running at the force timeout were aborted"
            );
        }
        if let Some(stuck) = executor_report.as_ref().map(|r| &r.stuck_workers)
            && !stuck.is_empty()
        {
            tracing::error!(workers = ?stuck, "workers are stuck in blocking code; their threads are left behind");
        }
        drop(lock(&self.inner.pid_file).take());
        self.inner.kill.disarm();

        // What was cut names the same children whichever way the shutdown
        // ended: the drain's report names those it aborted; a forced stop
        // (a second SIGINT, the force timer) does not wait for that report,
        // and the subsystems' `run` tasks record themselves as they are
        // aborted.
        let stopping = self.inner.shutdown.stop_record();
        let mut report = finish.report;
        for name in stopping.cut {
            if !report.aborted.contains(&name) {
                report.aborted.push(name);
            }
        }
        let exit_code = if finish.escalation.is_some() {
            EXIT_FAILURE
        } else if finish.forced || !report.aborted.is_empty() || aborted_tasks > 0 {
            EXIT_FORCED
        } else if !stopping.failed.is_empty() {
            EXIT_CLEANUP_FAILED
        } else {
            EXIT_CLEAN
        };
        let exit = DaemonExit {
            reason: finish.reason,
            exit_code,
            report,
            aborted_tasks,
            failed_cleanups: stopping.failed,
            elapsed: finish.began.elapsed(),
            config: Arc::clone(&self.inner.config),
        };
        tracing::info!(reason = %exit.reason, code = exit.exit_code, elapsed = ?exit.elapsed, "daemon stopped");
        match (exit_code, finish.escalation) {
            (EXIT_CLEAN, _) => Ok(exit),
            (_, Some(error)) => Err(Error::subsystem("root supervisor", error)),
            (EXIT_CLEANUP_FAILED, None) => Err(Error::CleanupFailed {
                failures: exit.failed_cleanups,
            }),
            _ => Err(Error::shutdown(format!(
                "the shutdown was forced ({}); aborted: {:?}, aborted tasks: {}{}",
                exit.reason,
                exit.report.aborted,
                exit.aborted_tasks,
                describe_failed_cleanups(&exit.failed_cleanups),
            ))),
        }
    }

    fn start_subsystems(&self, subsystems: Vec<Arc<dyn Subsystem>>) -> Result<()> {
        let config = &self.inner.config;
        let graceful = Duration::from_millis(config.shutdown.timeout_ms);
        let health_interval = Duration::from_millis(config.monitoring.health_check_interval_ms);
        let health_checks = config.monitoring.health_checks;
        let options = self.mailbox_options();
        let root = self.inner.root.clone();
        let shutdown = self.inner.shutdown.clone();
        self.inner
            .executor
            .spawn(async move {
                for subsystem in subsystems {
                    let name = subsystem.name().to_owned();
                    let policy = subsystem.restart_policy();
                    let check = if health_checks {
                        subsystem.health_check()
                    } else {
                        None
                    };
                    let factory = {
                        let shutdown = shutdown.clone();
                        move || SubsystemActor::new(subsystem.clone(), shutdown.clone())
                    };
                    let mut child = root
                        .child(name.clone(), factory)
                        .on_worker(CONTROL_WORKER)
                        .restart(policy)
                        .shutdown_timeout(graceful)
                        .mailbox(options);
                    if let Some(check) = check {
                        child = child.health_check(
                            health_interval,
                            DEFAULT_HEALTH_CHECK_FAILURES,
                            check,
                        );
                    }
                    child.spawn().await.map_err(|err| {
                        Error::subsystem(&name, format!("could not start: {err}"))
                    })?;
                    tracing::debug!(subsystem = %name, "subsystem started");
                }
                Ok(())
            })
            .join()
            .map_err(|err| {
                Error::subsystem("daemon", format!("starting subsystems failed: {err}"))
            })?
    }

    /// Tears down a daemon whose start failed part-way.
    fn abandon(&self) {
        for listener in lock(&self.inner.signal_listeners).drain(..) {
            listener.abort();
        }
        // Begun before the root actor stops, whose `Drop` would otherwise
        // begin it with no time left.
        let executor = &self.inner.executor;
        let _ = executor.begin_shutdown(Duration::from_millis(
            self.inner.config.shutdown.force_timeout_ms,
        ));
        self.inner.actor.stop();
        self.inner.root.stop();
        let _ = executor.wait_shutdown();
        drop(lock(&self.inner.pid_file).take());
    }
}

/// The executor could not start: an error in words a user can act on.
///
/// Running out of descriptors or threads is the likely cause with many
/// workers, and the OS's words for it ("Too many open files") name neither
/// the key nor the limit.
fn explain_executor_error(
    config: &Config,
    err: proc_daemon_actors::executor::ExecutorError,
) -> Error {
    use proc_daemon_actors::executor::ExecutorError;
    let os_error = match &err {
        ExecutorError::Runtime(source) | ExecutorError::Thread { source, .. } => {
            source.raw_os_error()
        }
        _ => None,
    };
    let workers = match config.performance.worker_threads {
        0 => "one per allowed CPU".to_owned(),
        n => n.to_string(),
    };
    let advice = match os_error {
        Some(libc::EMFILE) | Some(libc::ENFILE) => Some(format!(
            "the process ran out of file descriptors starting {workers} workers (each worker's reactor holds a few; the soft limit, `ulimit -n`, is {}); raise it (systemd: LimitNOFILE=) or lower performance.worker_threads",
            open_file_limit().map_or_else(|| "unknown".to_owned(), |n| n.to_string())
        )),
        Some(libc::EAGAIN) => Some(format!(
            "the OS refused another thread starting {workers} workers (a process or cgroup thread limit: `ulimit -u`, systemd's TasksMax=); raise it or lower performance.worker_threads"
        )),
        _ => None,
    };
    let source = match advice {
        Some(advice) => std::io::Error::other(format!("{err}: {advice}")),
        None => std::io::Error::other(err),
    };
    Error::io("start the executor", None, source)
}

/// The soft `RLIMIT_NOFILE`, if it can be read.
fn open_file_limit() -> Option<u64> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one `rlimit` through a pointer to a live,
    // properly aligned local.
    let rc = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) };
    (rc == 0).then_some(limit.rlim_cur)
}

/// A key that is accepted (files written for the reference load) but whose
/// feature is not built yet: its name, whether a config switches it on,
/// and what does not happen.
struct InertKey {
    key: &'static str,
    is_on: fn(&Config) -> bool,
    missing: &'static str,
}

/// Every [`InertKey`]. Each one switched on is named in a warning at
/// start, so that nobody believes it works. The issues that build them
/// remove their entry here.
const INERT_KEYS: [InertKey; 3] = [
    InertKey {
        key: "hot_reload",
        is_on: |config| config.hot_reload,
        missing: "configuration reload is not built yet: the file is not watched, and SIGHUP only reaches reload subscribers",
    },
    InertKey {
        key: "monitoring.enable_metrics",
        is_on: |config| config.monitoring.enable_metrics,
        missing: "metrics are not built yet: nothing is collected",
    },
    InertKey {
        key: "monitoring.track_resources",
        is_on: |config| config.monitoring.track_resources,
        missing: "resource tracking is not built yet: nothing is sampled",
    },
];

/// Logs one warning per [`INERT_KEYS`] entry that `config` switches on.
fn warn_about_inert_keys(config: &Config) {
    for InertKey {
        key,
        is_on,
        missing,
    } in INERT_KEYS
    {
        if is_on(config) {
            tracing::warn!(key, "{key} = true has no effect: {missing}");
        }
    }
}

/// Sizes the process's message pool from `performance.memory_pool_size`.
/// The pool is set once per process, before the first message; a second
/// daemon in the same process (or one started after actors already ran)
/// keeps the pool as it is, and says so.
///
/// # Errors
///
/// The pool's memory cannot be allocated (or is above the pool's bound,
/// which config validation already refuses): an error naming the key, so
/// that the daemon fails at start with words, never aborts.
fn install_message_pool(bytes: usize) -> Result<()> {
    use proc_daemon_actors::pool::InstallError;
    match proc_daemon_actors::pool::install(bytes) {
        Ok(()) => tracing::debug!(bytes, "message pool installed"),
        Err(InstallError::AlreadyInstalled { installed_bytes }) if installed_bytes == bytes => {}
        Err(err @ InstallError::AlreadyInstalled { .. }) => tracing::warn!(
            memory_pool_size = bytes,
            %err,
            "performance.memory_pool_size is not applied"
        ),
        Err(err) => {
            return Err(Error::io(
                "set up the message pool (performance.memory_pool_size)",
                None,
                std::io::Error::new(std::io::ErrorKind::OutOfMemory, err.to_string()),
            ));
        }
    }
    Ok(())
}

fn mailbox_options(config: &Config) -> SpawnOptions {
    SpawnOptions::default().backend(if config.performance.lock_free {
        Backend::LockFree
    } else {
        Backend::Mutex
    })
}

/// How the daemon stopped: what [`Daemon::run`] returns on a clean stop.
#[derive(Debug, Clone)]
pub struct DaemonExit {
    reason: ShutdownReason,
    exit_code: i32,
    report: DrainReport,
    aborted_tasks: usize,
    failed_cleanups: Vec<(String, String)>,
    elapsed: Duration,
    /// Shared with the daemon: the configuration does not change after
    /// start, so the exit carries no copy of it.
    config: Arc<Config>,
}

impl DaemonExit {
    /// Why the daemon shut down.
    pub fn reason(&self) -> &ShutdownReason {
        &self.reason
    }

    /// The exit code for the process (see the module docs).
    pub fn exit_code(&self) -> i32 {
        self.exit_code
    }

    /// Which children stopped in time, late, or were aborted. `aborted`
    /// also names every subsystem whose `run` was cut off by a forced stop.
    pub fn report(&self) -> &DrainReport {
        &self.report
    }

    /// Subsystems whose cleanup failed (their `run` returned an error or
    /// panicked after the shutdown began), with what happened. Non-empty
    /// only on an exit that is not clean.
    pub fn failed_cleanups(&self) -> &[(String, String)] {
        &self.failed_cleanups
    }

    /// How long the shutdown took, from its start to the end of `run`.
    pub fn elapsed(&self) -> Duration {
        self.elapsed
    }

    /// The configuration the daemon ran with.
    pub fn config_snapshot(&self) -> &Config {
        &self.config
    }
}

/// Sent to reload subscribers on SIGHUP. (Re-reading the config file on
/// reload is not built yet; today a reload is logged and delivered.)
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reload;

/// The daemon's root actor. See the module docs.
pub struct DaemonActor {
    config: Arc<Config>,
    root: Option<ActorRef<Supervisor>>,
    shutdown: Arc<DaemonShutdown>,
    signals: SignalConfig,
    reload_subscribers: Vec<Recipient<Reload>>,
    phase: Phase,
    /// Where `run` finds how the daemon stopped.
    finish: Arc<FinishRecord>,
    executor: Executor,
    kill: Arc<KillSwitch>,
    force_timer: Option<JoinHandle<()>>,
    events: Arc<EventBus>,
    signal_listeners: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl fmt::Debug for DaemonActor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DaemonActor")
            .field("name", &self.config.name)
            .field("phase", &self.phase)
            .finish()
    }
}

#[derive(Debug)]
enum Phase {
    Running,
    Draining {
        began: Instant,
        force_at: Instant,
        escalation: Option<String>,
    },
    Finished,
}

/// What the root actor hands to [`Daemon::run`] when the tree has stopped.
struct Finish {
    reason: ShutdownReason,
    began: Instant,
    report: DrainReport,
    forced: bool,
    escalation: Option<String>,
}

/// How the daemon stopped, recorded by the root actor for `run`.
#[derive(Default)]
struct FinishRecord {
    record: Mutex<Option<Finish>>,
    /// Wakes a `run` that is waiting for the record (only after it gave up
    /// waiting for the workers: normally the record is there before the
    /// workers exit).
    recorded: tokio::sync::Notify,
}

impl FinishRecord {
    /// Records how the daemon stopped; the first record counts.
    fn record(&self, finish: Finish) {
        lock(&self.record).get_or_insert(finish);
        self.recorded.notify_waiters();
    }

    /// The record. Waits for it while the workers have not all exited: the
    /// root actor may be stuck behind a blocked worker, and then the kill
    /// stage ends the process.
    async fn take(&self, executor: &Executor) -> Finish {
        wait_until(&self.recorded, || {
            if let Some(finish) = lock(&self.record).take() {
                return Some(finish);
            }
            // No record, yet every worker is gone (the root actor's own
            // `Drop` records one): the executor was shut down from outside
            // before the root actor was dropped.
            executor.workers_exited().then(|| Finish {
                reason: ShutdownReason::Escalated(
                    "the daemon's executor was shut down outside the daemon".into(),
                ),
                began: Instant::now(),
                report: DrainReport::default(),
                forced: true,
                escalation: None,
            })
        })
        .await
    }
}

impl Actor for DaemonActor {}

/// Gives the root actor its supervisor.
struct Attach(ActorRef<Supervisor>);
struct SignalReceived(Signal);
struct ShutdownRequest(ShutdownReason);
struct SubscribeReload(Recipient<Reload>);
struct ForceDeadline;

impl Handler<Attach> for DaemonActor {
    type Reply = ();
    async fn handle(&mut self, Attach(root): Attach, _ctx: &mut Context<Self>) {
        self.root = Some(root);
    }
}

impl Handler<SignalReceived> for DaemonActor {
    type Reply = ();
    async fn handle(&mut self, SignalReceived(signal): SignalReceived, ctx: &mut Context<Self>) {
        match signal {
            Signal::Hangup => {
                tracing::info!(
                    subscribers = self.reload_subscribers.len(),
                    "SIGHUP: reload requested"
                );
                self.reload_subscribers
                    .retain(|s| s.try_tell(Reload).is_ok() || s.is_alive());
            }
            Signal::User1 | Signal::User2 => {
                if let Some(handler) = self.signals.user_handler(signal) {
                    tracing::info!(%signal, "running the signal handler");
                    let handler = handler.clone();
                    if let Err(panic) =
                        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| handler()))
                    {
                        tracing::error!(%signal, panic = %proc_daemon_actors::executor::panic_message(panic.as_ref()), "the signal handler panicked");
                    }
                } else {
                    tracing::warn!(%signal, "{signal} received with no handler set; ignored");
                }
            }
            Signal::Interrupt if matches!(self.phase, Phase::Draining { .. }) => {
                tracing::warn!("second SIGINT: forcing the shutdown");
                self.finish_now(DrainReport::default(), true, ctx);
            }
            _ => {
                tracing::info!(%signal, "shutdown signal received");
                self.begin_shutdown(ShutdownReason::Signal(signal), None, ctx);
            }
        }
    }
}

impl Handler<ShutdownRequest> for DaemonActor {
    type Reply = ();
    async fn handle(&mut self, ShutdownRequest(reason): ShutdownRequest, ctx: &mut Context<Self>) {
        tracing::info!(%reason, "shutdown requested");
        self.begin_shutdown(reason, None, ctx);
    }
}

impl Handler<Escalation> for DaemonActor {
    type Reply = ();
    async fn handle(&mut self, escalation: Escalation, ctx: &mut Context<Self>) {
        tracing::error!(error = %escalation.error, "the root supervisor gave up; shutting the daemon down");
        self.begin_shutdown(
            ShutdownReason::Escalated(escalation.error.clone()),
            Some(escalation.error),
            ctx,
        );
    }
}

impl Handler<SubscribeReload> for DaemonActor {
    type Reply = ();
    async fn handle(
        &mut self,
        SubscribeReload(subscriber): SubscribeReload,
        _ctx: &mut Context<Self>,
    ) {
        self.reload_subscribers.push(subscriber);
    }
}

impl Handler<DrainReport> for DaemonActor {
    type Reply = ();
    async fn handle(&mut self, report: DrainReport, ctx: &mut Context<Self>) {
        self.finish_now(report, false, ctx);
    }
}

impl Handler<ForceDeadline> for DaemonActor {
    type Reply = ();
    async fn handle(&mut self, _: ForceDeadline, ctx: &mut Context<Self>) {
        if matches!(self.phase, Phase::Draining { .. }) {
            tracing::error!(
                "force timeout reached with children still stopping; aborting what is left"
            );
            self.finish_now(DrainReport::default(), true, ctx);
        }
    }
}

impl Drop for DaemonActor {
    fn drop(&mut self) {
        if matches!(self.phase, Phase::Finished) {
            return;
        }
        // The root actor ended without finishing the shutdown (its task
        // was aborted, or the executor was shut down under it): nothing
        // else will. Record it for `run`, arm the kill stage and stop the
        // workers at once.
        let now = Instant::now();
        let shutdown = &self.config.shutdown;
        self.kill
            .arm(now + Duration::from_millis(shutdown.kill_timeout_ms));
        let began = match self.phase {
            Phase::Draining { began, .. } => began,
            _ => now,
        };
        self.finish.record(Finish {
            reason: ShutdownReason::Escalated("the daemon's root actor ended unexpectedly".into()),
            began,
            report: DrainReport::default(),
            forced: true,
            escalation: None,
        });
        let _ = self.executor.begin_shutdown(Duration::ZERO);
    }
}

impl DaemonActor {
    fn begin_shutdown(
        &mut self,
        reason: ShutdownReason,
        escalation: Option<String>,
        ctx: &mut Context<Self>,
    ) {
        match &mut self.phase {
            Phase::Running => {}
            Phase::Draining {
                escalation: slot, ..
            } => {
                // Already shutting down: an escalation still decides the
                // exit code; anything else is only logged.
                if slot.is_none() {
                    *slot = escalation;
                }
                tracing::info!(%reason, "already shutting down");
                return;
            }
            Phase::Finished => return,
        }
        let shutdown = &self.config.shutdown;
        let began = Instant::now();
        let force_at = began + Duration::from_millis(shutdown.force_timeout_ms);
        let kill_at = began + Duration::from_millis(shutdown.kill_timeout_ms);
        self.phase = Phase::Draining {
            began,
            force_at,
            escalation,
        };
        self.kill.arm(kill_at);
        // Stage 1. The drain is queued at the root before any handle is
        // cancelled, so a subsystem that returns because of the
        // cancellation is never restarted: its exit report queues behind
        // the drain.
        let drain = Drain {
            force_at,
            report_to: Some(ctx.actor_ref().clone().recipient()),
        };
        let queued = self
            .root
            .as_ref()
            .is_some_and(|root| root.try_tell(drain).is_ok());
        // The cancellations below start a chain of hand-offs between
        // workers; keep them awake through it.
        ctx.executor().shutdown_imminent();
        self.shutdown
            .begin(reason, Duration::from_millis(shutdown.timeout_ms));
        if !queued {
            // The root already stopped (it gave up): nothing to drain.
            self.finish_now(DrainReport::default(), false, ctx);
            return;
        }
        // Stage 2 is the drain's own: it aborts its children at
        // `force_at`. This timer covers a drain that cannot report (its
        // worker is blocked); it waits `ABORT_GRACE` longer, so that a
        // drain that can report does, with the names it aborted.
        let me = ctx.actor_ref().clone();
        self.force_timer = Some(ctx.executor().spawn(async move {
            tokio::time::sleep_until((force_at + ABORT_GRACE).into()).await;
            let _ = me.try_tell(ForceDeadline);
        }));
    }

    fn finish_now(&mut self, report: DrainReport, forced: bool, ctx: &mut Context<Self>) {
        let Phase::Draining {
            began,
            force_at,
            escalation,
        } = std::mem::replace(&mut self.phase, Phase::Finished)
        else {
            return;
        };
        if let Some(timer) = self.force_timer.take() {
            timer.abort();
        }
        let reason = self
            .shutdown
            .reason()
            .unwrap_or_else(|| ShutdownReason::Requested("unknown".into()));
        // The force stage for what is left outside the tree: the listeners
        // first (they never end by themselves), then every other task, which
        // may run until the force deadline (at once if forced). Event
        // subscriptions end now that the tree is gone, so a task looping on
        // one finishes.
        for listener in lock(&self.signal_listeners).drain(..) {
            listener.abort();
        }
        self.events.close_subscriptions();
        let remaining = if forced {
            Duration::ZERO
        } else {
            force_at.saturating_duration_since(Instant::now())
        };
        // Recorded before the executor's shutdown begins: `run` reads it
        // once the workers have exited.
        self.finish.record(Finish {
            reason,
            began,
            report,
            forced,
            escalation,
        });
        // This actor ends after this handler; the workers then wind down,
        // and the last one to exit wakes `run`.
        if let Err(err) = ctx.executor().begin_shutdown(remaining) {
            tracing::warn!(%err, "the executor was already shutting down");
        }
        ctx.stop();
    }
}
