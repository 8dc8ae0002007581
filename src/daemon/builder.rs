//! Start-up: [`DaemonBuilder`] and the steps of [`DaemonBuilder::build`].

use std::collections::HashSet;
use std::fmt;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};

use proc_daemon_actors::executor::JoinHandle;
use proc_daemon_actors::mailbox::Capacity;
use proc_daemon_actors::prelude::*;
use proc_daemon_actors::spawn::{SpawnOptions, spawn_on};

use crate::kill_stage::KillSwitch;
use crate::lock::lock;
use crate::pid_file::PidFile;
use crate::service::ServiceManager;
use crate::shutdown::{DaemonShutdown, ShutdownHandle};
use crate::signal::{self, SignalConfig};
use crate::subsystem::{FnSubsystem, Subsystem, SubsystemManager};
use crate::{Config, Error, RestartPolicy, Result};

use super::root::{
    Attach, DaemonActor, FinishRecord, Phase, ReloadState, ShutdownRequest, SignalReceived,
};
use super::{CONTROL_WORKER, Daemon, DaemonExit, Inner};
use crate::reload::ReloadStats;
use proc_daemon_actors::supervision::HealthSchedule;

/// Builds a [`Daemon`]: `Daemon::builder(config)`.
#[must_use = "a daemon does nothing until .run().await (or .build())"]
pub struct DaemonBuilder {
    pub(super) config: Config,
    pub(super) subsystems: Vec<Arc<dyn Subsystem>>,
    pub(super) signals: SignalConfig,
    pub(super) pid_file: Option<PathBuf>,
    pub(super) manager: Option<SubsystemManager>,
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
        prepare_process(&config)?;
        refuse_duplicate_names(&subsystems)?;
        // systemd's variables are read (and removed when sound) before
        // the executor's threads exist; s6's fd is checked.
        let service = Arc::new(ServiceManager::new(&config)?);
        let (notes, note_receiver) = crate::service::channel(&service);
        let pid_file = match pid_file.or_else(|| config.pid_file.clone()) {
            // An upgrading predecessor handed over its locked file.
            Some(path) => Some(
                match crate::service::take_internal(crate::service::upgrade::PID_FILE_NAME) {
                    Some(fd) => PidFile::adopt(&path, std::fs::File::from(fd))?,
                    None => PidFile::acquire(path)?,
                },
            ),
            None => None,
        };
        let monitor_listener = bind_monitoring(&config)?;
        // Removed again (the guard's drop) if the start fails further on.
        let (control_listener, control_file) = crate::ipc::bind(&config)?.unzip();
        let control_listener = control_listener.map(Arc::new);
        for name in [
            crate::service::upgrade::PID_FILE_NAME,
            crate::service::upgrade::CONTROL_NAME,
        ] {
            if crate::service::take_internal(name).is_some() {
                tracing::warn!(
                    name,
                    "the previous process handed this over, but this configuration does not use it; it is closed"
                );
            }
        }
        enter_work_dir(&config)?;
        let executor = start_executor(&config)?;
        #[cfg(feature = "metrics")]
        crate::metrics::set_worker_count(executor.worker_count());
        #[cfg(feature = "scheduler-hints")]
        {
            crate::scheduler::register_executor(&executor);
            // After the executor, so that its workers get the value too.
            crate::scheduler::apply_process_hints(&config);
        }
        let config = Arc::new(config);
        let kill = Arc::new(KillSwitch::start(pid_file.as_ref())?);
        let snapshot = Arc::new(arc_swap::ArcSwap::new(Arc::clone(&config)));
        let health = HealthSchedule::off();
        health.set(health_schedule(&config));
        let reload_stats = Arc::new(ReloadStats::default());
        let root = start_root(
            &executor,
            &signals,
            &manager,
            &kill,
            (&snapshot, &reload_stats, &health),
            notes,
        )?;
        let deliver_to = root.actor.clone();
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
                snapshot,
                reload_stats,
                health,
                executor,
                root: root.supervisor,
                actor: root.actor,
                shutdown: root.shutdown,
                finish: root.finish,
                run_called: AtomicBool::new(false),
                pid_file: Mutex::new(pid_file),
                control_path: control_file.as_ref().map(|file| file.path().to_owned()),
                control_file: Mutex::new(control_file),
                control_listener: control_listener.clone(),
                control_handed_over: tokio::sync::watch::channel(false).0,
                service: service.clone(),
                // Read now: an upgrade starts the same path, which by then
                // may hold a new binary (/proc/self/exe would name the old
                // one as deleted).
                executable: std::env::current_exe().ok(),
                args: std::env::args_os().skip(1).collect(),
                upgrading: AtomicBool::new(false),
                signal_listeners: root.signal_listeners,
                kill,
                manager,
                #[cfg(feature = "config-watch")]
                watch: Mutex::new(None),
                started_at: std::time::Instant::now(),
                #[cfg(feature = "metrics")]
                monitoring_addr: monitor_listener
                    .as_ref()
                    .and_then(|listener| listener.local_addr().ok()),
                #[cfg(feature = "metrics")]
                probes: std::sync::OnceLock::new(),
                #[cfg(feature = "metrics")]
                resources: std::sync::OnceLock::new(),
            }),
        };
        // From here on a failure tears down what was started.
        let started = listeners.and_then(|listeners| {
            *lock(&daemon.inner.signal_listeners) = listeners;
            daemon.start_monitoring(monitor_listener)?;
            daemon.start_control(control_listener)?;
            let initial = daemon.start_subsystems(subsystems)?;
            daemon.start_service_notifications(&service, note_receiver, &initial);
            #[cfg(feature = "config-watch")]
            daemon.start_watch()?;
            Ok(())
        });
        if let Err(err) = started {
            daemon.abandon();
            return Err(err);
        }
        for (name, passed) in crate::service::taken() {
            if passed {
                tracing::info!(name, "listener passed by the service manager");
            } else {
                tracing::info!(name, "listener bound by the program (not socket-activated)");
            }
        }
        let untaken = crate::service::untaken();
        if !untaken.is_empty() {
            tracing::info!(
                names = ?untaken,
                "sockets the service manager passed are not taken yet; take them with proc_daemon::service::tcp_listener or unix_listener"
            );
        }
        // Adopted from an upgrading predecessor: this daemon's to remove at
        // exit, now that it has started.
        if let Some(file) = lock(&daemon.inner.pid_file).as_mut() {
            file.own();
        }
        if let Some(file) = lock(&daemon.inner.control_file).as_mut() {
            file.own();
        }
        tracing::info!(daemon = %daemon.inner.config.name, pid = std::process::id(), "daemon running");
        Ok(daemon)
    }
}

/// When subsystems' health checks run under `config`: `None` when
/// `monitoring.health_checks` is off.
pub(super) fn health_schedule(config: &Config) -> Option<std::time::Duration> {
    config
        .monitoring
        .health_checks
        .then(|| config.health_check_interval())
}

/// Process-wide set-up that the config decides, before anything starts:
/// the log subscriber, warnings for keys that do nothing yet, and the
/// message pool (which must precede the first message).
fn prepare_process(config: &Config) -> Result<()> {
    crate::logging::init(&config.logging)?;
    warn_about_inert_keys(config);
    #[cfg(feature = "metrics")]
    {
        // As this daemon's config says, whatever an earlier daemon of the
        // process set.
        proc_daemon_actors::metrics::set_enabled(config.monitoring.enable_metrics);
        if config.monitoring.enable_metrics {
            crate::metrics::install_facade_recorder();
        }
    }
    install_message_pool(config.performance.memory_pool_size)
}

/// The monitoring endpoint's listener, bound now so that an address in
/// use fails the start, naming the key.
#[cfg(feature = "metrics")]
fn bind_monitoring(config: &Config) -> Result<Option<std::net::TcpListener>> {
    config
        .monitoring
        .http_listen
        .map(crate::monitoring::bind)
        .transpose()
}

/// Without the `metrics` feature there is no endpoint to serve: a
/// configured address is an error, not a silent no-op.
#[cfg(not(feature = "metrics"))]
fn bind_monitoring(config: &Config) -> Result<Option<std::convert::Infallible>> {
    match config.monitoring.http_listen {
        None => Ok(None),
        Some(addr) => Err(crate::ConfigError::new(
            Some("monitoring.http_listen"),
            Some(format!("\"{addr}\"")),
            None,
            crate::ConfigProblem::Invalid {
                reason: "this build has no monitoring endpoint: build proc-daemon with the `metrics` feature, or leave the key unset".to_owned(),
            },
        )
        .into()),
    }
}

/// Subsystem names are unique: they name children in logs, events and
/// reports.
fn refuse_duplicate_names(subsystems: &[Arc<dyn Subsystem>]) -> Result<()> {
    let mut names = HashSet::new();
    for subsystem in subsystems {
        if !names.insert(subsystem.name()) {
            return Err(Error::subsystem(
                subsystem.name(),
                "two subsystems have this name; names must be unique",
            ));
        }
    }
    Ok(())
}

/// Changes into `work_dir`, if one is configured.
fn enter_work_dir(config: &Config) -> Result<()> {
    if let Some(dir) = &config.work_dir {
        std::env::set_current_dir(dir).map_err(|err| {
            Error::io("change into the working directory", Some(dir.clone()), err)
        })?;
    }
    Ok(())
}

/// The executor, from `[performance]`, its threads named after the daemon.
fn start_executor(config: &Config) -> Result<Executor> {
    config
        .performance
        .executor_builder()
        .thread_name(format!("{}-worker", config.name))
        .build()
        .map_err(|err| explain_executor_error(config, err))
}

/// What [`start_root`] started: the root actor, the root supervisor, and
/// what they share with the [`Daemon`] handle.
struct Root {
    actor: ActorRef<DaemonActor>,
    supervisor: ActorRef<Supervisor>,
    shutdown: Arc<DaemonShutdown>,
    finish: Arc<FinishRecord>,
    signal_listeners: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

/// Starts the root actor and the root supervisor on the control worker,
/// attaches the one to the other, and routes shutdown requests from every
/// handle to the root actor.
fn start_root(
    executor: &Executor,
    signals: &SignalConfig,
    manager: &SubsystemManager,
    kill: &Arc<KillSwitch>,
    (snapshot, reload_stats, health): (
        &Arc<arc_swap::ArcSwap<Config>>,
        &Arc<ReloadStats>,
        &HealthSchedule,
    ),
    service: crate::service::Notes,
) -> Result<Root> {
    let shutdown = DaemonShutdown::new();
    let finish = Arc::new(FinishRecord::default());
    let events = manager.bus().clone();
    let signal_listeners = Arc::new(Mutex::new(Vec::new()));
    let spawn_failed = |err| {
        Error::io(
            "start the daemon's root actor",
            None,
            std::io::Error::other(err),
        )
    };
    let actor = spawn_on(
        executor,
        CONTROL_WORKER,
        DaemonActor {
            root: None,
            shutdown: shutdown.clone(),
            signals: signals.clone(),
            reload_subscribers: Vec::new(),
            snapshot: Arc::clone(snapshot),
            reload: ReloadState::default(),
            reload_stats: Arc::clone(reload_stats),
            health: health.clone(),
            phase: Phase::Running,
            finish: finish.clone(),
            executor: executor.clone(),
            kill: kill.clone(),
            force_timer: None,
            events: events.clone(),
            signal_listeners: signal_listeners.clone(),
            service,
        },
        SpawnOptions::default().capacity(Capacity::Unbounded),
    )
    .map_err(spawn_failed)?;
    let supervisor = Supervisor::builder()
        .name("root")
        .giving_up_flag(shutdown.root_giving_up.clone())
        .events(events)
        .escalate_to(actor.clone().recipient())
        .spawn_on(executor, CONTROL_WORKER)
        .map_err(spawn_failed)?;
    let daemon_actor = actor.clone();
    let attach = supervisor.clone();
    let not_started = |err: &dyn fmt::Display| {
        Error::subsystem("daemon", format!("the root actor did not start: {err}"))
    };
    executor
        .spawn(async move { daemon_actor.ask(Attach(attach)).await })
        .join()
        .map_err(|err| not_started(&err))?
        .map_err(|err| not_started(&err))?;
    let requests = actor.clone();
    shutdown.route_requests(move |reason| {
        let _ = requests.try_tell(ShutdownRequest(reason));
    });
    Ok(Root {
        actor,
        supervisor,
        shutdown,
        finish,
        signal_listeners,
    })
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
const INERT_KEYS: [InertKey; 4] = [
    InertKey {
        key: "hot_reload",
        is_on: |config| config.hot_reload && cfg!(not(feature = "config-watch")),
        missing: "this build has no config file watcher (the `config-watch` feature): an edit applies on SIGHUP or Daemon::reload, not by itself",
    },
    InertKey {
        key: "monitoring.enable_metrics",
        is_on: |config| config.monitoring.enable_metrics && cfg!(not(feature = "metrics")),
        missing: "this build has no metrics (the `metrics` feature): nothing is collected",
    },
    InertKey {
        key: "performance.process_priority",
        is_on: |config| {
            config.performance.process_priority.is_some() && cfg!(not(feature = "scheduler-hints"))
        },
        missing: "this build has no scheduler hints (the `scheduler-hints` feature): the nice value stays as it is",
    },
    InertKey {
        key: "monitoring.track_resources",
        is_on: |config| config.monitoring.track_resources && cfg!(not(feature = "metrics")),
        missing: "this build has no resource tracking (the `metrics` feature): nothing is sampled",
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
            let value = crate::config::render_key(config, key);
            tracing::warn!(key, "{key} = {value} has no effect: {missing}");
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
    match proc_daemon_actors::support::install_message_pool(bytes) {
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
