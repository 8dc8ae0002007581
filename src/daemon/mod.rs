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
//! Everything that can stop or change the daemon reaches the root actor,
//! `DaemonActor` (`root.rs`), as a message: a signal from a listener task,
//! a request from a [`ShutdownHandle`] or
//! [`Daemon::shutdown`], the root supervisor's
//! [`Escalation`](proc_daemon_actors::supervision::Escalation) when a
//! restart storm exhausts it. One actor handles them
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

//!
//! # Where things are
//!
//! - `builder.rs`: [`DaemonBuilder`] and start-up, step by step;
//! - this file: the [`Daemon`] handle, [`Daemon::run`] and [`DaemonExit`];
//! - `root.rs`: the root actor, `DaemonActor`, and its state machine:
//!   signals, shutdown requests, escalations and the staged shutdown.

mod builder;
mod root;

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use proc_daemon_actors::executor::{Executor, JoinHandle};
use proc_daemon_actors::mailbox::Backend;
use proc_daemon_actors::prelude::*;
use proc_daemon_actors::spawn::SpawnOptions;
use proc_daemon_actors::supervision::{DEFAULT_HEALTH_CHECK_FAILURES, DrainReport, HealthSchedule};

use crate::kill_stage::KillSwitch;
use crate::lock::lock;
use crate::pid_file::PidFile;
use crate::reload::{ConfigReloaded, ReloadOutcome, ReloadStats};
use crate::service::ServiceManager;
use crate::shutdown::{DaemonShutdown, ShutdownHandle, ShutdownReason};
use crate::signal::SignalConfig;
use crate::subsystem::{Subsystem, SubsystemActor, SubsystemManager};
use crate::{Config, Error, Result};

pub use crate::exit::{EXIT_CLEAN, EXIT_CLEANUP_FAILED, EXIT_FAILURE, EXIT_FORCED, EXIT_KILLED};

/// The worker that runs the daemon's root actor, its root supervisor and
/// its signal listeners. Keeping them together means a signal, the drain
/// it starts and the report that ends it pass between tasks on one thread,
/// with no cross-thread wake-up on the way out.
const CONTROL_WORKER: usize = 0;

pub use crate::subsystem::EVENT_RING_CAPACITY;

pub use builder::DaemonBuilder;
use root::{DaemonActor, FinishRecord, ReloadRequest, ShutdownRequest, SubscribeReload};

/// A running daemon. Clones are handles to the same daemon: any of them
/// can request shutdown; one of them runs it.
#[derive(Clone)]
pub struct Daemon {
    inner: Arc<Inner>,
}

struct Inner {
    /// The configuration the daemon started with.
    config: Arc<Config>,
    /// The configuration in effect, swapped by each reload.
    snapshot: Arc<arc_swap::ArcSwap<Config>>,
    reload_stats: Arc<ReloadStats>,
    /// When subsystems' health checks run; a reload changes it.
    health: HealthSchedule,
    executor: Executor,
    root: ActorRef<Supervisor>,
    actor: ActorRef<DaemonActor>,
    shutdown: Arc<DaemonShutdown>,
    finish: Arc<FinishRecord>,
    run_called: AtomicBool,
    pid_file: Mutex<Option<PidFile>>,
    /// The control socket's file, removed when the daemon has stopped.
    control_file: Mutex<Option<crate::ipc::socket::SocketFile>>,
    /// Its path, for [`Daemon::control_socket`].
    control_path: Option<std::path::PathBuf>,
    /// Its listener, which an upgrade hands over.
    control_listener: Option<Arc<std::os::unix::net::UnixListener>>,
    /// Set once an upgrade handed the control socket over: this process
    /// stops accepting on it.
    control_handed_over: tokio::sync::watch::Sender<bool>,
    /// What the service manager hears.
    service: Arc<ServiceManager>,
    /// This program, as it was started, for an upgrade.
    executable: Option<std::path::PathBuf>,
    args: Vec<std::ffi::OsString>,
    /// An upgrade is under way.
    upgrading: AtomicBool,
    signal_listeners: Arc<Mutex<Vec<JoinHandle<()>>>>,
    kill: Arc<KillSwitch>,
    manager: SubsystemManager,
    /// The config file watcher, while the daemon runs (`hot_reload`).
    #[cfg(feature = "config-watch")]
    watch: Mutex<Option<crate::reload::watch::ConfigWatch>>,
    /// Where the monitoring endpoint listens, if it does.
    #[cfg(feature = "metrics")]
    monitoring_addr: Option<std::net::SocketAddr>,
    /// When the daemon was built: `proc_daemon_uptime_seconds` and the
    /// control socket's `status` count from here.
    started_at: std::time::Instant,
    /// What `/readyz` reads: the subsystems registered before start.
    #[cfg(feature = "metrics")]
    probes: std::sync::OnceLock<Arc<crate::monitoring::ProbeState>>,
    /// The process's resource use, sampled while `track_resources` is on.
    #[cfg(feature = "metrics")]
    resources: std::sync::OnceLock<crate::resources::ResourceTracker>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        #[cfg(feature = "scheduler-hints")]
        crate::scheduler::unregister_executor(&self.executor);
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

    /// The configuration the daemon started with. After a reload,
    /// [`config_snapshot`](Self::config_snapshot) is the one in effect.
    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    /// The configuration in effect now: the start's, or the last reload's.
    /// Cheap (an atomic load); hold the `Arc` as long as needed, a reload
    /// does not change it.
    pub fn config_snapshot(&self) -> Arc<Config> {
        self.inner.snapshot.load_full()
    }

    /// Reads the configuration's layers again and puts the result in
    /// effect, as SIGHUP does, and returns what happened. A request made
    /// while a reload is being built is answered by the reload after it,
    /// which reads the file after the request. See [`crate::reload`].
    pub async fn reload(&self) -> ReloadOutcome {
        request_reload(&self.inner.actor, "Daemon::reload").await
    }

    /// Replaces this process with a new one, with zero dropped
    /// connections: starts `binary` (default: this program's path, read
    /// again from disk, with the same arguments), hands it every listener
    /// taken through [`crate::service::tcp_listener`] or
    /// [`unix_listener`](crate::service::unix_listener), the control
    /// socket and the PID file, waits until it is ready
    /// (`service.upgrade_timeout_ms`), tells systemd its pid, and begins
    /// this daemon's staged shutdown. See `crate::service::upgrade`.
    ///
    /// # Errors
    ///
    /// [`UpgradeError`](crate::service::UpgradeError) when the new process
    /// could not start, ended or was not ready in time (it is killed), or
    /// another upgrade or the shutdown is under way. This daemon then goes
    /// on serving, with everything it had.
    pub async fn upgrade(
        &self,
        binary: Option<std::path::PathBuf>,
    ) -> std::result::Result<crate::service::UpgradeReport, crate::service::UpgradeError> {
        use crate::service::UpgradeError;
        if self.inner.shutdown.is_shutting_down() {
            return Err(UpgradeError::ShuttingDown);
        }
        if self.inner.upgrading.swap(true, Ordering::AcqRel) {
            return Err(UpgradeError::InProgress);
        }
        let result = self.start_successor(binary).await;
        match &result {
            Ok(report) => {
                // The successor holds the same lock and serves the same
                // socket: they are its to remove now.
                if let Some(file) = lock(&self.inner.control_file).take() {
                    file.hand_over();
                }
                let _ = self.inner.control_handed_over.send(true);
                if let Some(pid_file) = lock(&self.inner.pid_file).take() {
                    self.inner.kill.hand_over_pid_file();
                    pid_file.hand_over();
                }
                let status = format!("upgraded: pid {} took over", report.pid);
                self.inner.service.main_pid(report.pid, &status);
                tracing::info!(pid = report.pid, binary = %report.binary.display(), took = ?report.took, handed_over = ?report.handed_over, "upgraded: the new process is ready; this one stops");
                self.request_shutdown(format!(
                    "upgraded: pid {} ({}) took over",
                    report.pid,
                    report.binary.display()
                ));
            }
            Err(err) => {
                tracing::error!(%err, "the upgrade failed; this process goes on serving");
                // The successor may have written its pid before it failed.
                if let Some(pid_file) = lock(&self.inner.pid_file).as_mut()
                    && let Err(err) = pid_file.rewrite()
                {
                    tracing::warn!(%err, "could not write this process's pid to the PID file again");
                }
                self.inner.upgrading.store(false, Ordering::Release);
            }
        }
        result
    }

    async fn start_successor(
        &self,
        binary: Option<std::path::PathBuf>,
    ) -> std::result::Result<crate::service::UpgradeReport, crate::service::UpgradeError> {
        use crate::service::UpgradeError;
        use crate::service::upgrade::{CONTROL_NAME, PID_FILE_NAME, Successor};
        let binary = match binary.or_else(|| self.inner.executable.clone()) {
            Some(binary) => binary,
            None => {
                return Err(UpgradeError::Io(std::io::Error::other(
                    "this program's path is not known; name the binary",
                )));
            }
        };
        let mut fds = crate::service::listeners_to_hand_over()?;
        if let Some(listener) = &self.inner.control_listener {
            fds.push((CONTROL_NAME.to_owned(), listener.try_clone()?.into()));
        }
        if let Some(pid_file) = lock(&self.inner.pid_file).as_ref() {
            fds.push((PID_FILE_NAME.to_owned(), pid_file.duplicate()?));
        }
        let timeout = self.inner.snapshot.load().upgrade_timeout();
        let args = self.inner.args.clone();
        let started = std::time::Instant::now();
        let program = binary.clone();
        let (pid, handed_over) = self
            .inner
            .executor
            .spawn_blocking(move || {
                crate::service::upgrade::start(Successor {
                    binary: &program,
                    args: &args,
                    fds,
                    timeout,
                })
            })
            .await
            .map_err(|err| UpgradeError::Io(std::io::Error::other(err.to_string())))??;
        Ok(crate::service::UpgradeReport {
            pid,
            binary,
            took: started.elapsed(),
            handed_over,
        })
    }

    /// The control socket's path, if `control.socket` is set (made
    /// absolute: a relative path is resolved against `work_dir`). See
    /// [`crate::ipc`].
    pub fn control_socket(&self) -> Option<&std::path::Path> {
        self.inner.control_path.as_deref()
    }

    /// Counts of reloads applied, failed and coalesced so far.
    pub fn reload_stats(&self) -> &ReloadStats {
        &self.inner.reload_stats
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

    /// Sends [`ConfigReloaded`] to `subscriber` after every reload that
    /// built a valid configuration.
    pub fn subscribe_reload(&self, subscriber: Recipient<ConfigReloaded>) {
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
        let drain = executor.drain();
        drain.finished().await;
        let finish = self.inner.finish.take(&executor).await;
        // Now it does not block on the workers: they have exited, or the
        // wait is past its deadline.
        let executor_report = drain.wait().ok();
        #[cfg(feature = "scheduler-hints")]
        crate::scheduler::unregister_executor(&executor);
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
        #[cfg(feature = "config-watch")]
        drop(lock(&self.inner.watch).take());
        drop(lock(&self.inner.pid_file).take());
        drop(lock(&self.inner.control_file).take());
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
            config: self.inner.snapshot.load_full(),
        };
        tracing::info!(reason = %exit.reason, code = exit.exit_code, elapsed = ?exit.elapsed, "daemon stopped");
        // The log file's queued lines, written before the process exits.
        crate::logging::flush();
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
                if exit.failed_cleanups.is_empty() {
                    String::new()
                } else {
                    format!(
                        "; cleanup failed in {}",
                        crate::error::describe_failures(&exit.failed_cleanups)
                    )
                },
            ))),
        }
    }

    /// Starts the `monitoring` child when the endpoint or resource
    /// tracking asks for it: the root supervisor's first child, so that
    /// the staged shutdown stops it last (see `crate::monitoring`).
    #[cfg(feature = "metrics")]
    fn start_monitoring(&self, listener: Option<std::net::TcpListener>) -> Result<()> {
        let config = &self.inner.config;
        let tracker = config.monitoring.track_resources.then(|| {
            let tracker =
                crate::resources::ResourceTracker::with_interval(config.metrics_interval());
            let _ = self.inner.resources.set(tracker.clone());
            tracker
        });
        if listener.is_none() && tracker.is_none() {
            return Ok(());
        }
        let probes = Arc::new(crate::monitoring::ProbeState {
            view: self.runtime_view(),
            shutdown: self.inner.shutdown.clone(),
            ping_root: {
                let root = self.inner.actor.clone();
                Box::new(move || {
                    let root = root.clone();
                    Box::pin(async move { root.ask(crate::monitoring::Ping).await.is_ok() })
                })
            },
            initial: std::sync::OnceLock::new(),
        });
        let _ = self.inner.probes.set(probes.clone());
        let listener = listener.map(Arc::new);
        let snapshot = self.inner.snapshot.clone();
        let factory = move || crate::monitoring::MonitoringServer {
            listener: listener.clone(),
            state: probes.clone(),
            tracker: tracker.clone(),
            snapshot: snapshot.clone(),
            tasks: Vec::new(),
        };
        let root = self.inner.root.clone();
        self.inner
            .executor
            .spawn(async move {
                root.child("monitoring", factory)
                    .on_worker(CONTROL_WORKER)
                    .restart(RestartPolicy::Always)
                    .shutdown_timeout(std::time::Duration::from_secs(1))
                    .spawn()
                    .await
                    .map(drop)
                    .map_err(|err| {
                        Error::subsystem("monitoring", format!("could not start: {err}"))
                    })
            })
            .join()
            .map_err(|err| Error::subsystem("monitoring", format!("could not start: {err}")))?
    }

    #[cfg(not(feature = "metrics"))]
    fn start_monitoring(&self, listener: Option<std::convert::Infallible>) -> Result<()> {
        match listener {
            None => Ok(()),
            Some(never) => match never {},
        }
    }

    /// Starts the `control` child, which serves the control socket, when
    /// `control.socket` is set: after `monitoring`, before the
    /// subsystems, so that the staged shutdown stops it after them (see
    /// `crate::ipc`).
    fn start_control(&self, listener: Option<Arc<std::os::unix::net::UnixListener>>) -> Result<()> {
        let (Some(listener), Some(socket_path)) = (listener, self.inner.control_path.clone())
        else {
            return Ok(());
        };
        let actor = self.inner.actor.clone();
        let weak = Arc::downgrade(&self.inner);
        let hooks = Arc::new(crate::ipc::server::Hooks {
            upgrade: Box::new(move |binary| {
                let weak = weak.clone();
                Box::pin(async move {
                    match weak.upgrade() {
                        Some(inner) => Daemon { inner }.upgrade(binary).await,
                        None => Err(crate::service::UpgradeError::ShuttingDown),
                    }
                })
            }),
            handed_over: self.inner.control_handed_over.subscribe(),
            root: self.inner.root.clone(),
            reload: Box::new(move || {
                let actor = actor.clone();
                Box::pin(async move { request_reload(&actor, "the control socket").await })
            }),
            shutdown: self.inner.shutdown.clone(),
            events: self.inner.manager.bus().clone(),
            snapshot: self.inner.snapshot.clone(),
            started: self.inner.started_at,
            socket_path: socket_path.clone(),
        });
        let factory = move || crate::ipc::server::ControlServer {
            listener: listener.clone(),
            hooks: hooks.clone(),
            accepting: None,
            closing: None,
        };
        let root = self.inner.root.clone();
        let failed = |err: &dyn fmt::Display| {
            Error::subsystem(
                crate::ipc::server::CHILD_NAME,
                format!("could not start: {err}"),
            )
        };
        self.inner
            .executor
            .spawn(async move {
                root.child(crate::ipc::server::CHILD_NAME, factory)
                    .on_worker(CONTROL_WORKER)
                    .restart(RestartPolicy::Always)
                    .shutdown_timeout(std::time::Duration::from_secs(1))
                    .spawn()
                    .await
                    .map(drop)
            })
            .join()
            .map_err(|err| failed(&err))?
            .map_err(|err| failed(&err))?;
        tracing::info!(socket = %socket_path.display(), "control socket ready");
        Ok(())
    }

    /// What `/metrics` reads besides the registries.
    #[cfg(feature = "metrics")]
    fn runtime_view(&self) -> crate::metrics::runtime::RuntimeView {
        crate::metrics::runtime::RuntimeView {
            executor: self.inner.executor.clone(),
            started: self.inner.started_at,
            reload_stats: self.inner.reload_stats.clone(),
            config: self.inner.snapshot.clone(),
            resources: self.inner.resources.get().cloned(),
        }
    }

    /// The whole exposition, as `/metrics` serves it: the runtime's
    /// `proc_daemon_*` series, then the program's. For a program that
    /// serves it on its own HTTP server rather than at
    /// `monitoring.http_listen` (feature `metrics`). It walks every
    /// recorded actor: call it off the daemon's workers when there are
    /// thousands (`Executor::spawn_blocking`).
    #[cfg(feature = "metrics")]
    pub fn render_metrics(&self) -> String {
        crate::metrics::runtime::render(&self.runtime_view())
    }

    /// The address the monitoring endpoint (`/metrics`, `/livez`,
    /// `/readyz`) listens on, if `monitoring.http_listen` is set: with
    /// port 0 in the config, the port the system chose (feature
    /// `metrics`).
    #[cfg(feature = "metrics")]
    pub fn monitoring_addr(&self) -> Option<std::net::SocketAddr> {
        self.inner.monitoring_addr
    }

    /// The latest sample of the process's resource use, while
    /// `monitoring.track_resources` is on (feature `metrics`).
    #[cfg(feature = "metrics")]
    pub fn resource_usage(&self) -> Option<crate::resources::ResourceUsage> {
        self.inner
            .resources
            .get()
            .map(|tracker| tracker.current_usage())
    }

    /// Starts the registered subsystems in order; returns them, for
    /// readiness.
    fn start_subsystems(
        &self,
        subsystems: Vec<Arc<dyn Subsystem>>,
    ) -> Result<Vec<(String, ActorRef<SubsystemActor>)>> {
        let config = &self.inner.config;
        let graceful = config.shutdown_timeout();
        let health = self.inner.health.clone();
        let options = self.mailbox_options();
        let root = self.inner.root.clone();
        let shutdown = self.inner.shutdown.clone();
        let initial = self
            .inner
            .executor
            .spawn(async move {
                let mut initial = Vec::new();
                for subsystem in subsystems {
                    let name = subsystem.name().to_owned();
                    let policy = subsystem.restart_policy();
                    // Attached even while checks are off: a reload may
                    // switch them on.
                    let check = subsystem.health_check();
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
                        child =
                            child.health_check_on(&health, DEFAULT_HEALTH_CHECK_FAILURES, check);
                    }
                    let started = child.spawn().await.map_err(|err| {
                        Error::subsystem(&name, format!("could not start: {err}"))
                    })?;
                    tracing::debug!(subsystem = %name, "subsystem started");
                    initial.push((name, started));
                }
                Ok::<_, Error>(initial)
            })
            .join()
            .map_err(|err| {
                Error::subsystem("daemon", format!("starting subsystems failed: {err}"))
            })??;
        #[cfg(feature = "metrics")]
        if let Some(probes) = self.inner.probes.get() {
            let _ = probes.initial.set(states_of(&initial));
        }
        Ok(initial)
    }

    /// Starts telling the service manager (see `crate::service`), when
    /// there is one to tell.
    fn start_service_notifications(
        &self,
        service: &Arc<ServiceManager>,
        notes: Option<tokio::sync::mpsc::UnboundedReceiver<crate::service::Note>>,
        initial: &[(String, ActorRef<SubsystemActor>)],
    ) {
        let Some(notes) = notes else {
            return;
        };
        let actor = self.inner.actor.clone();
        let tree = crate::service::Tree {
            initial: states_of(initial),
            root: self.inner.root.clone(),
            shutdown: self.inner.shutdown.clone(),
            ping: Box::new(move |within| {
                let actor = actor.clone();
                Box::pin(async move {
                    matches!(
                        tokio::time::timeout(within, actor.ask(crate::service::Ping)).await,
                        Ok(Ok(()))
                    )
                })
            }),
        };
        crate::service::spawn(service.clone(), notes, tree, &self.inner.executor);
    }

    /// Starts the config file watcher if `hot_reload` asks for it: each
    /// settled change of the file's content is a reload request, as
    /// SIGHUP is (see `crate::reload::watch`).
    #[cfg(feature = "config-watch")]
    fn start_watch(&self) -> Result<()> {
        let config = &self.inner.config;
        if !config.hot_reload {
            return Ok(());
        }
        let Some(file) = config.file() else {
            tracing::warn!(
                key = "hot_reload",
                "hot_reload = true, but the configuration was not read from a file (ConfigBuilder::file, Config::load_from_file): there is nothing to watch"
            );
            return Ok(());
        };
        let root = self.inner.actor.clone();
        let watch = crate::reload::watch::watch(file, move || {
            let _ = root.try_tell(ReloadRequest {
                trigger: "the config file changed",
                reply: None,
            });
        })
        .map_err(|reason| {
            Error::io(
                "watch the config file (hot_reload = true)",
                Some(file.to_owned()),
                std::io::Error::other(reason),
            )
        })?;
        *lock(&self.inner.watch) = Some(watch);
        Ok(())
    }

    /// Tears down a daemon whose start failed part-way.
    fn abandon(&self) {
        #[cfg(feature = "scheduler-hints")]
        crate::scheduler::unregister_executor(&self.inner.executor);
        for listener in lock(&self.inner.signal_listeners).drain(..) {
            listener.abort();
        }
        // Begun before the root actor stops, whose `Drop` would otherwise
        // begin it with no time left.
        let drain = self.inner.executor.drain();
        let _ = drain.begin(self.inner.config.force_shutdown_timeout());
        self.inner.actor.stop();
        self.inner.root.stop();
        let _ = drain.wait();
        #[cfg(feature = "config-watch")]
        drop(lock(&self.inner.watch).take());
        drop(lock(&self.inner.pid_file).take());
        drop(lock(&self.inner.control_file).take());
        crate::logging::flush();
    }
}

/// Each subsystem's state, read when asked.
fn states_of(
    subsystems: &[(String, ActorRef<SubsystemActor>)],
) -> Vec<(String, crate::service::StateOf)> {
    subsystems
        .iter()
        .map(|(name, actor)| {
            let actor = actor.clone();
            let state: crate::service::StateOf = Box::new(move || actor.state());
            (name.clone(), state)
        })
        .collect()
}

/// Asks the root actor for a reload on behalf of `trigger` and waits for
/// its outcome.
async fn request_reload(actor: &ActorRef<DaemonActor>, trigger: &'static str) -> ReloadOutcome {
    let (reply, outcome) = tokio::sync::oneshot::channel();
    if actor
        .try_tell(ReloadRequest {
            trigger,
            reply: Some(reply),
        })
        .is_err()
    {
        return ReloadOutcome::ShuttingDown;
    }
    outcome.await.unwrap_or(ReloadOutcome::ShuttingDown)
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
    /// The snapshot in effect when the daemon stopped.
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

    /// The last configuration that was in effect (the start's, or the last
    /// reload's).
    pub fn config_snapshot(&self) -> Arc<Config> {
        Arc::clone(&self.config)
    }
}
