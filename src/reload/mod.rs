//! Configuration reload: what a reload decides, apart from who asked for
//! it.
//!
//! Every trigger (SIGHUP, [`Daemon::reload`](crate::Daemon::reload), and
//! the file watcher, `watch.rs`) asks the daemon's root actor, which
//! owns the one live [`Config`] snapshot. The root rebuilds the config
//! from the same layers the start used ([`Config`] keeps them), off its
//! own thread, and hands the result to [`merge`] here:
//!
//! - keys that can change while the daemon runs ([`LIVE_KEYS`] is every
//!   key but [`RESTART_KEYS`]) take the new value;
//! - keys that need a restart ([`RESTART_KEYS`]) keep the running value,
//!   so that the snapshot always says what is in effect; the root logs
//!   each such key once, naming it.
//!
//! A config that does not build (a syntax error, a bad value, a missing
//! or unreadable file) changes nothing: the old snapshot stays, one error
//! names the file, the key and the line, and the failure is counted
//! ([`ReloadStats`]). A reload never stops the daemon.
//!
//! Bursts are coalesced by the root: while a reload is being built, more
//! requests make one more reload after it, not one each, and that one
//! reads the file last, so the last content wins.

#[cfg(feature = "config-watch")]
pub mod watch;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::config::{Config, ConfigError, changed_keys, copy_key, render_key};

/// Keys whose new value needs a restart to take effect. A reload keeps
/// their running value in the snapshot and logs the key once.
///
/// - the executor (`performance.*`) is built once, at start;
/// - the PID file and the working directory are taken at start;
/// - the log file and its rotation are opened at start, and the file
///   watcher (`hot_reload`) starts with the daemon;
/// - the metrics endpoint (`monitoring.http_listen`) binds its address at
///   start, and whether a child's metrics are recorded
///   (`monitoring.enable_metrics`) is decided as it is added;
/// - the control socket (`control.socket`) is bound at start, and s6's
///   readiness fd (`service.notification_fd`) is used once, at start.
pub const RESTART_KEYS: &[&str] = &[
    "pid_file",
    "work_dir",
    "hot_reload",
    "logging.file",
    "logging.max_file_size",
    "logging.max_files",
    "performance.worker_threads",
    "performance.thread_pinning",
    "performance.memory_pool_size",
    "performance.numa_aware",
    "performance.lock_free",
    "performance.process_priority",
    "monitoring.enable_metrics",
    "monitoring.http_listen",
    "control.socket",
    "service.notification_fd",
];

/// Whether a reload applies `key` at once (every key not in
/// [`RESTART_KEYS`]): `name`, `logging.level`, `logging.json`,
/// `logging.color`, `shutdown.*`, and the `monitoring.*` keys other than
/// `enable_metrics` and `http_listen` (health checks switch and change
/// their interval at once; resource tracking switches and changes its
/// interval at its next sample).
pub fn is_live(key: &str) -> bool {
    !RESTART_KEYS.contains(&key)
}

/// Sent to every subscriber ([`Daemon::subscribe_reload`](crate::Daemon::subscribe_reload))
/// after a reload that built a valid config, whether or not a value
/// changed (a SIGHUP is also the usual cue to reopen files).
#[derive(Debug, Clone)]
pub struct ConfigReloaded {
    /// The snapshot before the reload.
    pub old: Arc<Config>,
    /// The snapshot now in effect.
    pub new: Arc<Config>,
    /// The keys whose value in effect changed, in the order
    /// `config_explain` lists them. Keys that need a restart are not here:
    /// their value in effect did not change.
    pub changed: Vec<&'static str>,
}

/// What one reload did.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum ReloadOutcome {
    /// A valid config was read and is in effect; `changed` lists the keys
    /// whose value in effect changed (none is possible).
    Applied {
        /// The keys that changed.
        changed: Vec<&'static str>,
        /// Keys whose new value waits for a restart.
        needs_restart: Vec<&'static str>,
    },
    /// The config did not build; the old snapshot stays in effect.
    Failed(ConfigError),
    /// The daemon is shutting down and no longer reloads.
    ShuttingDown,
}

/// Counts of reloads, for logs and metrics.
#[derive(Debug, Default)]
pub struct ReloadStats {
    applied: AtomicU64,
    failed: AtomicU64,
    coalesced: AtomicU64,
}

impl ReloadStats {
    /// Reloads that put a valid config in effect.
    pub fn applied(&self) -> u64 {
        self.applied.load(Ordering::Relaxed)
    }

    /// Reloads whose config did not build; the old one stayed.
    pub fn failed(&self) -> u64 {
        self.failed.load(Ordering::Relaxed)
    }

    /// Requests folded into a reload already queued or running.
    pub fn coalesced(&self) -> u64 {
        self.coalesced.load(Ordering::Relaxed)
    }

    pub(crate) fn count_applied(&self) {
        self.applied.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn count_failed(&self) {
        self.failed.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn count_coalesced(&self) {
        self.coalesced.fetch_add(1, Ordering::Relaxed);
    }
}

/// A freshly built config against the running one: what goes into the
/// snapshot.
#[derive(Debug)]
pub(crate) struct Merged {
    /// `fresh`, with the running value of every restart-only key.
    pub(crate) config: Config,
    /// Live keys whose value changed.
    pub(crate) changed: Vec<&'static str>,
    /// Restart-only keys whose new value differs from the running one,
    /// with that new value as `config_explain` shows it.
    pub(crate) needs_restart: Vec<(&'static str, String)>,
}

/// Merges `fresh` into `running`: see the module docs.
pub(crate) fn merge(running: &Config, mut fresh: Config) -> Merged {
    let mut needs_restart = Vec::new();
    for key in changed_keys(running, &fresh) {
        if !is_live(key) {
            needs_restart.push((key, render_key(&fresh, key)));
            copy_key(&mut fresh, running, key);
        }
    }
    let changed = changed_keys(running, &fresh);
    Merged {
        config: fresh,
        changed,
        needs_restart,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::schema::FIELDS;

    #[test]
    fn every_restart_key_is_a_key() {
        for key in RESTART_KEYS {
            assert!(
                FIELDS.iter().any(|field| field.key == *key),
                "`{key}` is not in the schema"
            );
        }
    }

    #[test]
    fn a_restart_key_keeps_its_running_value_and_a_live_key_changes() {
        let running = Config::builder().ignore_env().build().unwrap();
        let fresh = Config::builder()
            .ignore_env()
            .worker_threads(7)
            .name("renamed")
            .log_level(crate::LogLevel::Debug)
            .build()
            .unwrap();
        let merged = merge(&running, fresh);
        assert_eq!(merged.config.performance.worker_threads, 0);
        assert_eq!(merged.config.name, "renamed");
        assert_eq!(merged.changed, ["name", "logging.level"]);
        assert_eq!(
            merged.needs_restart,
            [("performance.worker_threads", "7".to_owned())]
        );
    }
}
