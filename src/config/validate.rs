//! The rules every resolved configuration must meet.
//!
//! Validation runs after all layers are merged, so that a rule spanning two
//! keys (graceful ≤ force) is checked on the values that will be used, and
//! the error can name the source of each. It also runs on every path that
//! produces a `Config`, environment overrides included: proc-daemon 1.x
//! skipped it when loading, and an env override could produce an invalid
//! configuration.

use super::error::{ConfigProblem, Result, config_error};
use super::schema::{FIELDS, index_of};
use super::source::Source;
use super::{
    Config, MAX_LOG_FILE_SIZE, MAX_LOG_FILES, MAX_MEMORY_POOL_SIZE, MAX_NAME_BYTES, MAX_PATH_BYTES,
    MAX_TIMEOUT_MS, MAX_WORKER_THREADS,
};

/// Checks `config`; `sources[i]` is the source of `FIELDS[i]`.
pub(crate) fn validate(config: &Config, sources: &[Source]) -> Result<()> {
    let invalid = |key: &str, reason: &str| {
        let i = index_of(key);
        config_error(
            Some(key),
            (FIELDS[i].render)(config),
            Some(sources[i].clone()),
            ConfigProblem::Invalid {
                reason: reason.to_owned(),
            },
        )
    };

    if config.name.trim().is_empty() {
        return Err(invalid("name", "must not be empty"));
    }
    if config.name.chars().any(char::is_control) {
        return Err(invalid("name", "must not contain control characters"));
    }
    if config.name.len() > MAX_NAME_BYTES {
        return Err(invalid(
            "name",
            &format!(
                "is {} bytes long; the most is {MAX_NAME_BYTES}",
                config.name.len()
            ),
        ));
    }
    for (key, path) in [
        ("pid_file", &config.pid_file),
        ("work_dir", &config.work_dir),
        ("logging.file", &config.logging.file),
        ("control.socket", &config.control.socket),
    ] {
        let Some(path) = path else { continue };
        let bytes = std::os::unix::ffi::OsStrExt::as_bytes(path.as_os_str());
        if bytes.is_empty() {
            return Err(invalid(
                key,
                "must not be empty; leave the key unset instead",
            ));
        }
        if bytes.contains(&0) {
            return Err(invalid(key, "must not contain a NUL byte"));
        }
        if bytes.len() > MAX_PATH_BYTES {
            return Err(invalid(
                key,
                &format!(
                    "is {} bytes long; a path may have at most {MAX_PATH_BYTES}",
                    bytes.len()
                ),
            ));
        }
    }

    let shutdown = &config.shutdown;
    let monitoring = &config.monitoring;
    for (key, value) in [
        ("shutdown.timeout_ms", shutdown.timeout_ms),
        ("shutdown.force_timeout_ms", shutdown.force_timeout_ms),
        ("shutdown.kill_timeout_ms", shutdown.kill_timeout_ms),
        (
            "monitoring.metrics_interval_ms",
            monitoring.metrics_interval_ms,
        ),
        (
            "monitoring.health_check_interval_ms",
            monitoring.health_check_interval_ms,
        ),
        (
            "service.upgrade_timeout_ms",
            config.service.upgrade_timeout_ms,
        ),
    ] {
        if value == 0 {
            return Err(invalid(key, "must be greater than 0"));
        }
        if value > MAX_TIMEOUT_MS {
            return Err(invalid(
                key,
                &format!("must be at most {MAX_TIMEOUT_MS} (24 hours)"),
            ));
        }
    }

    let performance = &config.performance;
    if performance.worker_threads > MAX_WORKER_THREADS {
        return Err(invalid(
            "performance.worker_threads",
            &format!("must be at most {MAX_WORKER_THREADS} (0 means one worker per allowed CPU)"),
        ));
    }
    if performance.memory_pool_size > MAX_MEMORY_POOL_SIZE {
        return Err(invalid(
            "performance.memory_pool_size",
            &format!("must be at most {MAX_MEMORY_POOL_SIZE} bytes (1 GiB); 0 turns the pool off"),
        ));
    }

    if let Some(priority) = performance.process_priority
        && !(-20..=19).contains(&priority)
    {
        return Err(invalid(
            "performance.process_priority",
            "must be a nice value from -20 (scheduled first) to 19 (last)",
        ));
    }

    if let Some(fd) = config.service.notification_fd
        && fd < 3
    {
        return Err(invalid(
            "service.notification_fd",
            "must be 3 or more: 0, 1 and 2 are stdin, stdout and stderr",
        ));
    }

    let not_longer = |earlier: (&str, u64), later: (&str, u64), reason: &str| {
        if earlier.1 <= later.1 {
            return Ok(());
        }
        let (e, l) = (index_of(earlier.0), index_of(later.0));
        Err(config_error(
            Some(earlier.0),
            Some(earlier.1.to_string()),
            Some(sources[e].clone()),
            ConfigProblem::Conflict {
                other_key: later.0.to_owned(),
                other_value: later.1.to_string(),
                other_source: sources[l].clone(),
                reason: reason.to_owned(),
            },
        ))
    };
    not_longer(
        ("shutdown.timeout_ms", shutdown.timeout_ms),
        ("shutdown.force_timeout_ms", shutdown.force_timeout_ms),
        "the graceful timeout must not be longer than the force timeout",
    )?;
    not_longer(
        ("shutdown.force_timeout_ms", shutdown.force_timeout_ms),
        ("shutdown.kill_timeout_ms", shutdown.kill_timeout_ms),
        "the force timeout must not be longer than the kill timeout",
    )?;

    if config.logging.max_file_size == 0 {
        return Err(invalid(
            "logging.max_file_size",
            "must be greater than 0 bytes",
        ));
    }
    if config.logging.max_file_size > MAX_LOG_FILE_SIZE {
        return Err(invalid(
            "logging.max_file_size",
            &format!("must be at most {MAX_LOG_FILE_SIZE} bytes (1 TiB)"),
        ));
    }
    if config.logging.max_files == 0 {
        return Err(invalid("logging.max_files", "must be at least 1"));
    }
    if config.logging.max_files > MAX_LOG_FILES {
        return Err(invalid(
            "logging.max_files",
            &format!("must be at most {MAX_LOG_FILES}"),
        ));
    }
    Ok(())
}
