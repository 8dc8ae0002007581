//! Configuration: from code, a TOML file and `DAEMON_*` environment variables.
//!
//! ```
//! use proc_daemon::{Config, LogLevel};
//! use std::time::Duration;
//!
//! let config = Config::builder()
//!     .name("production-daemon")
//!     .log_level(LogLevel::Info)
//!     .shutdown_timeout(Duration::from_secs(30))
//!     .worker_threads(8)
//!     .ignore_env() // only so that this example does not depend on your shell
//!     .build()?;
//! assert_eq!(config.shutdown.timeout_ms, 30_000);
//! # Ok::<(), proc_daemon::Error>(())
//! ```
//!
//! # Layers
//!
//! A configuration is resolved from four layers. Each later layer overrides
//! the earlier ones, key by key, and the order is the same whether a file
//! sets every key or only a few:
//!
//! 1. the built-in defaults ([`Config::default`]);
//! 2. a TOML file ([`Config::load_from_file`], [`ConfigBuilder::file`]);
//! 3. environment variables, `DAEMON_` followed by the section and key in
//!    capitals: `DAEMON_SHUTDOWN_TIMEOUT_MS` sets `shutdown.timeout_ms`;
//! 4. the builder's setters.
//!
//! The force and kill timeouts, when no layer sets them, are derived from the
//! graceful timeout (×1.5 and ×2, capped at [`MAX_TIMEOUT_MS`]), so raising
//! `timeout_ms` alone keeps the three stages in order.
//!
//! # Bounds
//!
//! Every number and string has an upper bound, checked with the other
//! rules: timeouts and intervals at most [`MAX_TIMEOUT_MS`] (24 h),
//! [`MAX_WORKER_THREADS`], [`MAX_MEMORY_POOL_SIZE`], [`MAX_NAME_BYTES`],
//! [`MAX_PATH_BYTES`], [`MAX_LOG_FILE_SIZE`] and [`MAX_LOG_FILES`]. A file
//! must be a regular file (a symlink to one is fine) of at most
//! [`MAX_CONFIG_FILE_BYTES`].
//!
//! # Errors, never silent defaults
//!
//! An unknown key, a value of the wrong type, an unparsable environment
//! variable and an inconsistent set of values are all errors
//! ([`ConfigError`]) that name the key, the value and
//! where it came from, down to the file's line. Nothing is silently replaced
//! by a default. [`ConfigBuilder::explain`] shows where every value came from.
//!
//! docs/configuration.md has the full list of keys and their defaults.

mod builder;
mod env;
mod error;
#[cfg(feature = "toml")]
mod file;
mod layers;
#[cfg(feature = "mmap-config")]
mod mapped;
pub(crate) mod schema;
mod source;
mod validate;

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

pub use builder::ConfigBuilder;
pub use error::{ConfigError, ConfigProblem};
pub use source::{ExplainedConfig, ExplainedValue, Source};

use error::Result;
pub(crate) use layers::{changed_keys, copy_key, render_key};

/// The prefix of the environment variables that override configuration keys.
pub const ENV_PREFIX: &str = "DAEMON_";

/// The severity threshold of the daemon's logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub enum LogLevel {
    /// Everything, including very detailed traces.
    Trace,
    /// Debugging detail.
    Debug,
    /// Normal operation (the default).
    #[default]
    Info,
    /// Something unexpected that the daemon handled.
    Warn,
    /// A failure.
    Error,
}

impl LogLevel {
    /// Every level, from the most verbose.
    pub const ALL: [LogLevel; 5] = [
        LogLevel::Trace,
        LogLevel::Debug,
        LogLevel::Info,
        LogLevel::Warn,
        LogLevel::Error,
    ];

    /// The level's name as written in the file: `"info"`.
    pub fn as_str(self) -> &'static str {
        match self {
            LogLevel::Trace => "trace",
            LogLevel::Debug => "debug",
            LogLevel::Info => "info",
            LogLevel::Warn => "warn",
            LogLevel::Error => "error",
        }
    }
}

impl fmt::Display for LogLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The error of parsing a [`LogLevel`] from a string.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown log level {0:?}; expected trace, debug, info, warn or error")]
pub struct ParseLogLevelError(String);

impl FromStr for LogLevel {
    type Err = ParseLogLevelError;

    /// Parses a level name, ignoring ASCII case. `warning` is accepted for
    /// `warn`.
    fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
        let lower = s.to_ascii_lowercase();
        if lower == "warning" {
            return Ok(LogLevel::Warn);
        }
        LogLevel::ALL
            .into_iter()
            .find(|level| level.as_str() == lower)
            .ok_or_else(|| ParseLogLevelError(s.to_owned()))
    }
}

/// The `[logging]` section.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct LoggingConfig {
    /// `level`: the minimum level logged. Default `info`.
    pub level: LogLevel,
    /// `json`: JSON lines instead of text. Default `false`.
    pub json: bool,
    /// `color`: colour text logs; ignored for JSON. Default `true`.
    pub color: bool,
    /// `file`: log to this file instead of stderr. Default unset.
    pub file: Option<PathBuf>,
    /// `max_file_size`: rotate the file at this many bytes. Default 100 MiB.
    pub max_file_size: u64,
    /// `max_files`: how many rotated files are kept. Default 5.
    pub max_files: u32,
}

/// The `[shutdown]` section: the three stages of shutdown, in milliseconds
/// from the moment shutdown starts.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ShutdownConfig {
    /// `timeout_ms`: children get this long to stop cleanly. Default 30 000.
    pub timeout_ms: u64,
    /// `force_timeout_ms`: tasks still running are aborted at this point.
    /// Default: 1.5 × `timeout_ms`.
    pub force_timeout_ms: u64,
    /// `kill_timeout_ms`: the process exits at this point, whatever is
    /// left. Default: 2 × `timeout_ms`.
    pub kill_timeout_ms: u64,
}

/// The `[performance]` section: the executor and the mailboxes.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PerformanceConfig {
    /// `worker_threads`: executor workers; 0 means one per allowed CPU.
    /// Default 0.
    pub worker_threads: usize,
    /// `thread_pinning`: pin each worker to a core. Default `false`.
    pub thread_pinning: bool,
    /// `memory_pool_size`: bytes pre-allocated for per-message allocations;
    /// 0 turns the pool off. Default 1 MiB.
    pub memory_pool_size: usize,
    /// `numa_aware`: place new actors on the spawner's NUMA node.
    /// Default `false`.
    pub numa_aware: bool,
    /// `lock_free`: lock-free mailboxes; `false` selects mutex-backed ones,
    /// kept as a reference for debugging. Default `true`.
    pub lock_free: bool,
    /// `process_priority`: the nice value every thread of the process
    /// gets at start, -20 (first) to 19 (last); a value below the current
    /// one needs `CAP_SYS_NICE` (feature `scheduler-hints`; see
    /// `proc_daemon::scheduler`). Default: unset, left as it is.
    pub process_priority: Option<i32>,
}

impl PerformanceConfig {
    /// An executor builder set from `worker_threads`, `thread_pinning` and
    /// `numa_aware`; its other settings keep their defaults.
    ///
    /// ```
    /// use proc_daemon::Config;
    ///
    /// let config = Config::builder().worker_threads(2).ignore_env().build()?;
    /// let executor = config.performance.executor_builder().build()?;
    /// assert_eq!(executor.worker_count(), 2);
    /// executor.shutdown(std::time::Duration::from_secs(1))?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn executor_builder(&self) -> proc_daemon_actors::executor::ExecutorBuilder {
        proc_daemon_actors::executor::Executor::builder()
            .worker_threads(self.worker_threads)
            .thread_pinning(self.thread_pinning)
            .numa_aware(self.numa_aware)
    }
}

/// The `[monitoring]` section.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct MonitoringConfig {
    /// `enable_metrics`: collect metrics. Default `false`.
    pub enable_metrics: bool,
    /// `metrics_interval_ms`: how often metrics are sampled. Default 1000.
    pub metrics_interval_ms: u64,
    /// `track_resources`: track the process's CPU, memory and threads.
    /// Default `false`.
    pub track_resources: bool,
    /// `health_checks`: run subsystems' health checks. Default `true`.
    pub health_checks: bool,
    /// `health_check_interval_ms`: how often they run. Default 5000.
    pub health_check_interval_ms: u64,
    /// `http_listen`: the address of the `/metrics`, `/livez` and
    /// `/readyz` endpoints, such as `"127.0.0.1:9090"` (feature
    /// `metrics`). Default: unset, no endpoint.
    pub http_listen: Option<std::net::SocketAddr>,
}

/// The `[service]` section: the service manager (see `crate::service`
/// and docs/deploy/).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ServiceConfig {
    /// `notification_fd`: the file descriptor s6 opened for readiness
    /// (the service directory's `notification-fd`); the daemon writes a
    /// newline to it once it is ready. Default: unset.
    pub notification_fd: Option<i32>,
    /// `upgrade_timeout_ms`: how long an upgrade waits for the new
    /// process to be ready before it kills it and keeps serving. Default
    /// 30000.
    pub upgrade_timeout_ms: u64,
}

/// The `[control]` section: the control socket (see `crate::ipc` and
/// docs/operations.md, "The control socket").
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ControlConfig {
    /// `socket`: the path of the Unix control socket that
    /// `proc-daemon-ctl` talks to; a relative path is resolved against
    /// `work_dir`. Default: unset, no socket.
    pub socket: Option<std::path::PathBuf>,
}

/// The daemon's configuration.
///
/// Build one with [`Config::builder`], [`Config::new`] (defaults and the
/// environment) or [`Config::load_from_file`] (defaults, a TOML file and the
/// environment). Every way validates the result. The fields are public for
/// reading; a `Config` changed by hand should go through
/// [`Config::validate`] before use.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Config {
    /// `name`: the daemon's name, used in logs and status. Default
    /// `"proc-daemon"`.
    pub name: String,
    /// `pid_file`: the PID file, locked for the life of the process.
    /// Default unset.
    pub pid_file: Option<PathBuf>,
    /// `work_dir`: the directory the daemon changes into at start.
    /// Default unset.
    pub work_dir: Option<PathBuf>,
    /// `hot_reload`: watch the config file and apply changes live.
    /// Default `false`.
    pub hot_reload: bool,
    /// `[logging]`.
    pub logging: LoggingConfig,
    /// `[shutdown]`.
    pub shutdown: ShutdownConfig,
    /// `[performance]`.
    pub performance: PerformanceConfig,
    /// `[monitoring]`.
    pub monitoring: MonitoringConfig,
    /// `[control]`.
    pub control: ControlConfig,
    /// `[service]`.
    pub service: ServiceConfig,
    /// How it was made, for a reload (see `layers.rs`).
    pub(crate) layers: layers::Layers,
}

/// The default graceful shutdown timeout, in milliseconds.
const DEFAULT_SHUTDOWN_TIMEOUT_MS: u64 = 30_000;

/// The longest any timeout or interval may be: 24 hours, in milliseconds.
///
/// Applies to `shutdown.timeout_ms`, `shutdown.force_timeout_ms`,
/// `shutdown.kill_timeout_ms`, `monitoring.metrics_interval_ms` and
/// `monitoring.health_check_interval_ms`. A shutdown that may take longer
/// than a day is a shutdown that never ends: without a bound,
/// `u64::MAX` milliseconds switched every deadline off.
pub const MAX_TIMEOUT_MS: u64 = 24 * 60 * 60 * 1000;

/// The most executor workers `performance.worker_threads` may ask for.
///
/// Each worker is a thread with its own reactor (a few file descriptors);
/// past a few hundred, more workers than CPUs only add context switches.
/// The bound keeps a typo (`100000`) from ending in "Too many open files".
pub const MAX_WORKER_THREADS: usize = 1024;

/// The largest `performance.memory_pool_size`: 1 GiB, allocated at start.
pub const MAX_MEMORY_POOL_SIZE: usize = proc_daemon_actors::pool::MAX_BYTES;

/// The longest `name`, in bytes.
pub const MAX_NAME_BYTES: usize = 256;

/// The longest path a key may hold (`pid_file`, `work_dir`,
/// `logging.file`), in bytes: Linux's `PATH_MAX` less its terminating NUL.
pub const MAX_PATH_BYTES: usize = 4095;

/// The largest `logging.max_file_size`: 1 TiB.
pub const MAX_LOG_FILE_SIZE: u64 = 1 << 40;

/// The most rotated log files `logging.max_files` may keep.
pub const MAX_LOG_FILES: u32 = 10_000;

/// The largest configuration file read, in bytes (1 MiB). A daemon's file
/// is a few hundred bytes; anything near this is a mistake, and reading it
/// whole (a `/dev/zero` given as the config) would exhaust memory.
pub const MAX_CONFIG_FILE_BYTES: u64 = 1024 * 1024;

/// The force timeout that follows a graceful timeout nobody overrode:
/// ×1.5, never past [`MAX_TIMEOUT_MS`].
pub(crate) fn derived_force_timeout(graceful_ms: u64) -> u64 {
    graceful_ms
        .saturating_add(graceful_ms / 2)
        .min(MAX_TIMEOUT_MS.max(graceful_ms))
}

/// The kill timeout that follows a graceful timeout nobody overrode: ×2,
/// never past [`MAX_TIMEOUT_MS`].
pub(crate) fn derived_kill_timeout(graceful_ms: u64) -> u64 {
    graceful_ms
        .saturating_mul(2)
        .min(MAX_TIMEOUT_MS.max(graceful_ms))
}

impl Default for Config {
    fn default() -> Self {
        Config {
            name: "proc-daemon".to_owned(),
            pid_file: None,
            work_dir: None,
            hot_reload: false,
            logging: LoggingConfig {
                level: LogLevel::Info,
                json: false,
                color: true,
                file: None,
                max_file_size: 100 * 1024 * 1024,
                max_files: 5,
            },
            shutdown: ShutdownConfig {
                timeout_ms: DEFAULT_SHUTDOWN_TIMEOUT_MS,
                force_timeout_ms: derived_force_timeout(DEFAULT_SHUTDOWN_TIMEOUT_MS),
                kill_timeout_ms: derived_kill_timeout(DEFAULT_SHUTDOWN_TIMEOUT_MS),
            },
            performance: PerformanceConfig {
                worker_threads: 0,
                thread_pinning: false,
                memory_pool_size: 1024 * 1024,
                numa_aware: false,
                lock_free: true,
                process_priority: None,
            },
            monitoring: MonitoringConfig {
                enable_metrics: false,
                metrics_interval_ms: 1000,
                track_resources: false,
                health_checks: true,
                health_check_interval_ms: 5000,
                http_listen: None,
            },
            control: ControlConfig { socket: None },
            service: ServiceConfig {
                notification_fd: None,
                upgrade_timeout_ms: 30_000,
            },
            layers: layers::Layers::default(),
        }
    }
}

impl Config {
    /// A builder that starts from the defaults and the environment.
    pub fn builder() -> ConfigBuilder {
        ConfigBuilder::new()
    }

    /// The defaults, with `DAEMON_*` environment overrides applied, validated.
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] for an unknown `DAEMON_*`
    /// variable, an unparsable value or an inconsistent result.
    pub fn new() -> Result<Self> {
        ConfigBuilder::new().build()
    }

    /// The defaults, then the TOML file at `path`, then `DAEMON_*`
    /// environment overrides, validated.
    ///
    /// A file may set any subset of the keys; the others keep their
    /// defaults (or environment values).
    ///
    /// # Errors
    ///
    /// An I/O error if the file cannot be read (a missing file is an error,
    /// never an empty config), or a [`ConfigError`]
    /// naming the key, the value and the line.
    #[cfg(feature = "toml")]
    pub fn load_from_file(path: impl AsRef<std::path::Path>) -> Result<Self> {
        ConfigBuilder::new().file(path.as_ref()).build()
    }

    /// Checks the rules every configuration must meet: non-empty name,
    /// non-zero timeouts and intervals, graceful ≤ force ≤ kill.
    ///
    /// The builder and the loaders already call this; it is public for a
    /// `Config` whose fields were changed in code.
    ///
    /// # Errors
    ///
    /// The first rule broken, as a [`ConfigError`].
    pub fn validate(&self) -> Result<()> {
        let sources = vec![Source::Code; schema::FIELDS.len()];
        validate::validate(self, &sources)
    }

    /// The configuration as a TOML document that [`Config::load_from_file`]
    /// reads back to an equal `Config`. Unset optional keys are left out.
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] if a path is not valid UTF-8,
    /// which TOML cannot represent.
    #[cfg(feature = "toml")]
    pub fn to_toml_string(&self) -> Result<String> {
        file::to_toml_string(self)
    }

    /// The graceful shutdown timeout (`shutdown.timeout_ms`).
    pub fn shutdown_timeout(&self) -> Duration {
        Duration::from_millis(self.shutdown.timeout_ms)
    }

    /// The point at which remaining tasks are aborted
    /// (`shutdown.force_timeout_ms`).
    pub fn force_shutdown_timeout(&self) -> Duration {
        Duration::from_millis(self.shutdown.force_timeout_ms)
    }

    /// The point at which the process exits (`shutdown.kill_timeout_ms`).
    pub fn kill_timeout(&self) -> Duration {
        Duration::from_millis(self.shutdown.kill_timeout_ms)
    }

    /// How often metrics are sampled (`monitoring.metrics_interval_ms`).
    pub fn metrics_interval(&self) -> Duration {
        Duration::from_millis(self.monitoring.metrics_interval_ms)
    }

    /// How often health checks run (`monitoring.health_check_interval_ms`).
    pub fn health_check_interval(&self) -> Duration {
        Duration::from_millis(self.monitoring.health_check_interval_ms)
    }

    /// `service.upgrade_timeout_ms` as a `Duration`.
    pub fn upgrade_timeout(&self) -> Duration {
        Duration::from_millis(self.service.upgrade_timeout_ms)
    }
}
