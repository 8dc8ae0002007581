//! The rules every resolved configuration must meet.
//!
//! Validation runs after all layers are merged, so that a rule spanning two
//! keys (graceful ≤ force) is checked on the values that will be used, and
//! the error can name the source of each. It also runs on every path that
//! produces a `Config`, environment overrides included: proc-daemon 1.x
//! skipped it when loading, and an env override could produce an invalid
//! configuration.

use super::Config;
use super::schema::{FIELDS, index_of};
use super::source::Source;
use crate::error::{ConfigProblem, Result, config_error};

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
    ] {
        if value == 0 {
            return Err(invalid(key, "must be greater than 0"));
        }
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
    if config.logging.max_files == 0 {
        return Err(invalid("logging.max_files", "must be at least 1"));
    }
    Ok(())
}
