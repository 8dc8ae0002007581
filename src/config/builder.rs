//! [`ConfigBuilder`]: the one place where the layers are merged.
//!
//! `Config::new`, `Config::load_from_file` and the builder all end in
//! [`ConfigBuilder::explain`], so there is exactly one merge order and one
//! validation, whatever the entry point.

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use super::error::{ConfigError, ConfigProblem, Result};
use super::layers::Layers;
use super::schema::{FIELDS, index_of};
use super::source::{ExplainedConfig, Source};
use super::{
    Config, ENV_PREFIX, LogLevel, derived_force_timeout, derived_kill_timeout, env, validate,
};

/// Where the environment layer reads its variables from.
#[derive(Debug, Clone)]
enum EnvLayer {
    /// The process environment, read when the config is built.
    Process,
    /// These variables instead of the process environment.
    Vars(Vec<(OsString, OsString)>),
    /// No environment layer.
    Ignore,
}

/// Builds a [`Config`] from the defaults, an optional TOML file, the
/// environment and the values set on the builder, in that order of
/// precedence.
///
/// Setters never fail; [`build`](ConfigBuilder::build) reports the first
/// problem, naming the key and where its value came from.
///
/// ```
/// use proc_daemon::Config;
/// use std::time::Duration;
///
/// let explained = Config::builder()
///     .name("worker")
///     .shutdown_timeout(Duration::from_secs(5))
///     .env_vars([("DAEMON_PERFORMANCE_WORKER_THREADS", "4")])
///     .explain()?;
/// let config = explained.config();
/// assert_eq!(config.performance.worker_threads, 4);
/// // The force and kill timeouts follow the graceful one unless set.
/// assert_eq!(config.shutdown.force_timeout_ms, 7_500);
/// assert_eq!(
///     explained.source_of("performance.worker_threads").unwrap().to_string(),
///     "environment variable DAEMON_PERFORMANCE_WORKER_THREADS"
/// );
/// # Ok::<(), proc_daemon::Error>(())
/// ```
#[derive(Debug, Clone)]
#[must_use = "a builder does nothing until `build` is called"]
pub struct ConfigBuilder {
    /// Holds the values set through setters; only the fields named in `set`
    /// are used.
    values: Config,
    /// Indices into `FIELDS` of the fields set through setters, in order.
    set: Vec<usize>,
    /// Problems found by setters, reported by `build`.
    deferred: Vec<ConfigError>,
    #[cfg(feature = "toml")]
    file: Option<PathBuf>,
    env: EnvLayer,
    env_prefix: String,
    /// Set by a reload: an empty file is then refused (see `file.rs`).
    pub(super) reloading: bool,
}

impl Default for ConfigBuilder {
    fn default() -> Self {
        Self::new()
    }
}

/// Generates a setter that stores a value as-is (or, for an optional path,
/// as `Some`).
macro_rules! setter {
    ($(#[$doc:meta])* $name:ident(path) => $key:literal, $($path:ident).+) => {
        $(#[$doc])*
        pub fn $name(mut self, value: impl Into<PathBuf>) -> Self {
            self.values.$($path).+ = Some(value.into());
            self.mark($key);
            self
        }
    };
    ($(#[$doc:meta])* $name:ident($ty:ty) => $key:literal, $($path:ident).+) => {
        $(#[$doc])*
        pub fn $name(mut self, value: $ty) -> Self {
            self.values.$($path).+ = value.into();
            self.mark($key);
            self
        }
    };
}

/// Generates a setter that takes a `Duration` and stores whole milliseconds.
macro_rules! duration_setter {
    ($(#[$doc:meta])* $name:ident => $key:literal, $($path:ident).+) => {
        $(#[$doc])*
        pub fn $name(mut self, value: Duration) -> Self {
            match whole_millis(value) {
                Ok(ms) => self.values.$($path).+ = ms,
                Err(reason) => self.deferred.push(ConfigError::new(
                    Some($key),
                    Some(format!("{value:?}")),
                    Some(Source::Builder),
                    ConfigProblem::Invalid { reason },
                )),
            }
            self.mark($key);
            self
        }
    };
}

/// A duration as whole milliseconds, refusing what would be rounded away.
fn whole_millis(value: Duration) -> std::result::Result<u64, String> {
    if !value.subsec_nanos().is_multiple_of(1_000_000) {
        return Err("has a fraction of a millisecond; timeouts are whole milliseconds".into());
    }
    u64::try_from(value.as_millis()).map_err(|_| "is too long".into())
}

impl ConfigBuilder {
    /// A builder over the defaults and the process environment.
    pub fn new() -> Self {
        ConfigBuilder {
            values: Config::default(),
            set: Vec::new(),
            deferred: Vec::new(),
            #[cfg(feature = "toml")]
            file: None,
            env: EnvLayer::Process,
            env_prefix: ENV_PREFIX.to_owned(),
            reloading: false,
        }
    }

    fn mark(&mut self, key: &str) {
        let index = index_of(key);
        self.set.retain(|&i| i != index);
        self.set.push(index);
    }

    /// The file this builder reads, if any.
    #[cfg(feature = "toml")]
    pub(crate) fn file_path(&self) -> Option<&std::path::Path> {
        self.file.as_deref()
    }

    /// Reads this TOML file as the second layer, above the defaults and
    /// below the environment.
    #[cfg(feature = "toml")]
    pub fn file(mut self, path: impl Into<PathBuf>) -> Self {
        self.file = Some(path.into());
        self
    }

    /// Uses these variables as the environment layer instead of the
    /// process environment (for tests, and for embedding).
    pub fn env_vars<K, V>(mut self, vars: impl IntoIterator<Item = (K, V)>) -> Self
    where
        K: Into<OsString>,
        V: Into<OsString>,
    {
        self.env = EnvLayer::Vars(
            vars.into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        );
        self
    }

    /// Leaves the environment out entirely.
    pub fn ignore_env(mut self) -> Self {
        self.env = EnvLayer::Ignore;
        self
    }

    /// Reads variables with this prefix instead of `DAEMON_`, for hosts
    /// where `DAEMON_*` names are taken: with `"MYAPP_"`,
    /// `MYAPP_SHUTDOWN_TIMEOUT_MS` sets `shutdown.timeout_ms`.
    pub fn env_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.env_prefix = prefix.into();
        self
    }

    setter!(
        /// `name`: the daemon's name.
        name(impl Into<String>) => "name", name
    );
    setter!(
        /// `pid_file`: the PID file, locked for the life of the process.
        pid_file(path) => "pid_file", pid_file
    );
    setter!(
        /// `work_dir`: the directory the daemon changes into at start.
        work_dir(path) => "work_dir", work_dir
    );
    setter!(
        /// `hot_reload`: watch the config file and apply changes live.
        hot_reload(bool) => "hot_reload", hot_reload
    );
    setter!(
        /// `logging.level`: the minimum level logged.
        log_level(LogLevel) => "logging.level", logging.level
    );
    setter!(
        /// `logging.json`: JSON lines instead of text.
        json_logging(bool) => "logging.json", logging.json
    );
    setter!(
        /// `logging.color`: colour text logs.
        color_logging(bool) => "logging.color", logging.color
    );
    setter!(
        /// `logging.file`: log to this file instead of stderr.
        log_file(path) => "logging.file", logging.file
    );
    setter!(
        /// `logging.max_file_size`: rotate the log file at this many bytes.
        max_log_file_size(u64) => "logging.max_file_size", logging.max_file_size
    );
    setter!(
        /// `logging.max_files`: how many rotated log files are kept.
        max_log_files(u32) => "logging.max_files", logging.max_files
    );
    duration_setter!(
        /// `shutdown.timeout_ms`: how long children get to stop cleanly.
        shutdown_timeout => "shutdown.timeout_ms", shutdown.timeout_ms
    );
    duration_setter!(
        /// `shutdown.force_timeout_ms`: when remaining tasks are aborted.
        force_shutdown_timeout => "shutdown.force_timeout_ms", shutdown.force_timeout_ms
    );
    duration_setter!(
        /// `shutdown.kill_timeout_ms`: when the process exits.
        kill_timeout => "shutdown.kill_timeout_ms", shutdown.kill_timeout_ms
    );
    setter!(
        /// `performance.worker_threads`: executor workers; 0 means one per
        /// allowed CPU.
        worker_threads(usize) => "performance.worker_threads", performance.worker_threads
    );
    setter!(
        /// `performance.thread_pinning`: pin each worker to a core.
        thread_pinning(bool) => "performance.thread_pinning", performance.thread_pinning
    );
    setter!(
        /// `performance.memory_pool_size`: bytes pre-allocated for
        /// per-message allocations; 0 turns the pool off.
        memory_pool_size(usize) => "performance.memory_pool_size", performance.memory_pool_size
    );
    setter!(
        /// `performance.numa_aware`: place new actors on the spawner's NUMA
        /// node.
        numa_aware(bool) => "performance.numa_aware", performance.numa_aware
    );
    setter!(
        /// `performance.lock_free`: lock-free mailboxes; `false` selects
        /// mutex-backed ones.
        lock_free(bool) => "performance.lock_free", performance.lock_free
    );
    setter!(
        /// `monitoring.enable_metrics`: collect metrics.
        enable_metrics(bool) => "monitoring.enable_metrics", monitoring.enable_metrics
    );
    duration_setter!(
        /// `monitoring.metrics_interval_ms`: how often metrics are sampled.
        metrics_interval => "monitoring.metrics_interval_ms", monitoring.metrics_interval_ms
    );
    setter!(
        /// `monitoring.track_resources`: track the process's CPU, memory and
        /// threads.
        track_resources(bool) => "monitoring.track_resources", monitoring.track_resources
    );
    setter!(
        /// `monitoring.health_checks`: run subsystems' health checks.
        health_checks(bool) => "monitoring.health_checks", monitoring.health_checks
    );
    duration_setter!(
        /// `monitoring.health_check_interval_ms`: how often health checks run.
        health_check_interval => "monitoring.health_check_interval_ms", monitoring.health_check_interval_ms
    );
    setter!(
        /// `performance.process_priority`: the nice value every thread of
        /// the process gets at start, -20 to 19 (feature
        /// `scheduler-hints`).
        process_priority(i32) => "performance.process_priority", performance.process_priority
    );
    setter!(
        /// `monitoring.http_listen`: serve `/metrics`, `/livez` and
        /// `/readyz` on this address (feature `metrics`).
        http_listen(std::net::SocketAddr) => "monitoring.http_listen", monitoring.http_listen
    );
    setter!(
        /// `control.socket`: the Unix control socket that `proc-daemon-ctl`
        /// talks to; a relative path is resolved against `work_dir`.
        control_socket(path) => "control.socket", control.socket
    );
    setter!(
        /// `service.notification_fd`: the file descriptor s6 opened for
        /// readiness (`notification-fd`); a newline is written to it once
        /// the daemon is ready.
        notification_fd(i32) => "service.notification_fd", service.notification_fd
    );
    duration_setter!(
        /// `service.upgrade_timeout_ms`: how long an upgrade waits for the
        /// new process to be ready.
        upgrade_timeout => "service.upgrade_timeout_ms", service.upgrade_timeout_ms
    );

    /// Merges the layers and validates the result.
    ///
    /// # Errors
    ///
    /// An I/O error if the file cannot be read; otherwise a
    /// [`ConfigError`] naming the key, the value and its source.
    pub fn build(self) -> Result<Config> {
        self.explain().map(ExplainedConfig::into_config)
    }

    /// Like [`build`](ConfigBuilder::build), and also reports where each
    /// value came from.
    ///
    /// # Errors
    ///
    /// As [`build`](ConfigBuilder::build).
    pub fn explain(self) -> Result<ExplainedConfig> {
        let mut config = Config::default();
        let mut sources = vec![Source::Default; FIELDS.len()];

        #[cfg(feature = "toml")]
        if let Some(path) = &self.file {
            super::file::apply(&mut config, &mut sources, path, self.reloading)?;
        }

        match &self.env {
            EnvLayer::Process => env::apply(
                &mut config,
                &mut sources,
                &self.env_prefix,
                std::env::vars_os().collect(),
            )?,
            EnvLayer::Vars(vars) => {
                env::apply(&mut config, &mut sources, &self.env_prefix, vars.clone())?
            }
            EnvLayer::Ignore => {}
        }

        if let Some(problem) = self.deferred.first() {
            return Err(problem.clone());
        }
        for &index in &self.set {
            (FIELDS[index].copy)(&mut config, &self.values);
            sources[index] = Source::Builder;
        }

        let graceful = config.shutdown.timeout_ms;
        let derived = Source::Derived {
            from: "shutdown.timeout_ms",
        };
        let force = index_of("shutdown.force_timeout_ms");
        if sources[force] == Source::Default {
            config.shutdown.force_timeout_ms = derived_force_timeout(graceful);
            sources[force] = derived.clone();
        }
        let kill = index_of("shutdown.kill_timeout_ms");
        if sources[kill] == Source::Default {
            config.shutdown.kill_timeout_ms = derived_kill_timeout(graceful);
            sources[kill] = derived;
        }

        validate::validate(&config, &sources)?;
        // The builder itself, for a reload: moved, not copied.
        config.layers = Layers::from_builder(self);
        Ok(ExplainedConfig { config, sources })
    }
}
