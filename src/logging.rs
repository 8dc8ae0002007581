//! The daemon's log output, from `[logging]`.
//!
//! [`Daemon`](crate::Daemon) installs a `tracing` subscriber when it
//! starts, unless the program installed one first (then the program's wins
//! and `[logging]` is not applied, which is logged at debug level).
//!
//! What is built: text lines on stderr at `logging.level`, coloured when
//! `logging.color` is on and stderr is a terminal. What is not built yet, and therefore refused
//! with an error instead of being ignored: `logging.json = true` (the
//! `json-logs` feature) and `logging.file` (file output with rotation by
//! `max_file_size` and `max_files`).

use std::io::IsTerminal;

use tracing::level_filters::LevelFilter;

use crate::config::{ConfigError, ConfigProblem, LogLevel, LoggingConfig};
use crate::{Error, Result};

/// The `tracing` level for a [`LogLevel`].
pub(crate) fn level_filter(level: LogLevel) -> LevelFilter {
    match level {
        LogLevel::Trace => LevelFilter::TRACE,
        LogLevel::Debug => LevelFilter::DEBUG,
        LogLevel::Info => LevelFilter::INFO,
        LogLevel::Warn => LevelFilter::WARN,
        LogLevel::Error => LevelFilter::ERROR,
    }
}

fn not_built(key: &str, value: String, reason: &str) -> Error {
    ConfigError::new(
        Some(key),
        Some(value),
        None,
        ConfigProblem::Invalid {
            reason: reason.to_owned(),
        },
    )
    .into()
}

/// Installs the subscriber `logging` describes, if none is installed.
pub(crate) fn init(logging: &LoggingConfig) -> Result<()> {
    if logging.json {
        return Err(not_built(
            "logging.json",
            "true".to_owned(),
            "JSON logs are not built yet (the `json-logs` feature); set it to false",
        ));
    }
    if let Some(file) = &logging.file {
        return Err(not_built(
            "logging.file",
            file.display().to_string(),
            "file output is not built yet; unset it to log to stderr",
        ));
    }
    let installed = tracing_subscriber::fmt()
        .with_max_level(level_filter(logging.level))
        // Colour only where a person reads it: never into a pipe or file.
        .with_ansi(logging.color && std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .try_init();
    if installed.is_err() {
        tracing::debug!("a tracing subscriber is already installed; [logging] is not applied");
    }
    Ok(())
}
