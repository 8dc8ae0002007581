//! The daemon's log output, from `[logging]`.
//!
//! [`Daemon`](crate::Daemon) installs a `tracing` subscriber when it
//! starts, unless the program installed one first (then the program's wins
//! and `[logging]` is not applied, which is logged at debug level).
//!
//! What is built: text lines on stderr at `logging.level`, coloured when
//! `logging.color` is on and stderr is a terminal. Both change live on a
//! reload. What is not built yet, and therefore refused
//! with an error instead of being ignored: `logging.json = true` (the
//! `json-logs` feature) and `logging.file` (file output with rotation by
//! `max_file_size` and `max_files`).

use std::io::IsTerminal;
use std::sync::OnceLock;

use tracing::level_filters::LevelFilter;

use crate::Result;
use crate::config::{ConfigError, ConfigProblem, LogLevel, LoggingConfig};

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

fn not_built(key: &str, value: String, reason: &str) -> ConfigError {
    ConfigError::new(
        Some(key),
        Some(value),
        None,
        ConfigProblem::Invalid {
            reason: reason.to_owned(),
        },
    )
}

/// What the running subscriber lets a reload change, set by [`init`]
/// when the daemon's own subscriber was installed.
struct Live {
    set_level: Box<dyn Fn(LevelFilter) -> bool + Send + Sync>,
    set_ansi: Box<dyn Fn(bool) -> bool + Send + Sync>,
}

static LIVE: OnceLock<Live> = OnceLock::new();

/// Refuses what `[logging]` names but this build cannot do. Start-up and
/// every reload check the same way.
pub(crate) fn check(logging: &LoggingConfig) -> std::result::Result<(), ConfigError> {
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
    Ok(())
}

/// Whether colour goes out: asked for, and stderr is a terminal (never
/// into a pipe or a file).
fn ansi(logging: &LoggingConfig) -> bool {
    logging.color && std::io::stderr().is_terminal()
}

/// Installs the subscriber `logging` describes, if none is installed. The
/// level and the colour sit behind `tracing_subscriber::reload` layers, so
/// that [`apply_live`] can change them while the daemon runs.
pub(crate) fn init(logging: &LoggingConfig) -> Result<()> {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    use tracing_subscriber::{fmt, registry, reload};

    check(logging)?;
    let (level, level_handle) = reload::Layer::new(level_filter(logging.level));
    let (text, text_handle) = reload::Layer::new(
        fmt::layer()
            .with_ansi(ansi(logging))
            .with_writer(std::io::stderr as fn() -> std::io::Stderr),
    );
    if registry().with(level).with(text).try_init().is_err() {
        tracing::debug!("a tracing subscriber is already installed; [logging] is not applied");
        return Ok(());
    }
    let _ = LIVE.set(Live {
        set_level: Box::new(move |filter| level_handle.reload(filter).is_ok()),
        set_ansi: Box::new(move |on| text_handle.modify(|layer| layer.set_ansi(on)).is_ok()),
    });
    Ok(())
}

/// Applies the live `[logging]` keys (`level`, `color`) to the running
/// subscriber. Returns `false` when the daemon did not install it (the
/// program's own subscriber is in use), so nothing could be changed.
pub(crate) fn apply_live(logging: &LoggingConfig) -> bool {
    let Some(live) = LIVE.get() else {
        return false;
    };
    let level = (live.set_level)(level_filter(logging.level));
    let color = (live.set_ansi)(ansi(logging));
    level && color
}
