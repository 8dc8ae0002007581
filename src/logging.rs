//! The daemon's log output, from `[logging]`.
//!
//! [`Daemon`](crate::Daemon) installs a `tracing` subscriber when it
//! starts, unless the program installed one first (then the program's wins
//! and `[logging]` is not applied, which is logged at debug level).
//!
//! - **Where.** Stderr, or the file `logging.file`, rotated when it passes
//!   `max_file_size` bytes (after the line that passed it), keeping
//!   `max_files` files in all (`daemon.log`, `daemon.log.1`, ...), with
//!   `file-rotate`. File lines are written by `tracing-appender`'s
//!   background thread, so a slow disk never blocks an actor; it is not
//!   lossy (a full buffer makes the logger wait rather than drop a line),
//!   and [`flush`] (called when `Daemon::run` ends) writes what is queued.
//! - **How.** Text lines; JSON lines with `logging.json` (feature
//!   `json-logs`); with the `console` feature, on a terminal, the
//!   multi-line layout with span context. Colour only when
//!   `logging.color` is on and the output is a terminal, never into a
//!   pipe or a file.
//! - **Live.** The level, JSON and colour sit behind
//!   `tracing_subscriber::reload` layers: a reload changes them at once
//!   ([`apply_live`]). The file and its rotation need a restart.
//!
//! A file that cannot be opened (its directory missing, no permission) is
//! an error at start that names the key and the path.

use std::fs::OpenOptions;
use std::io::IsTerminal;
use std::path::Path;
use std::sync::{Mutex, OnceLock};

use tracing::level_filters::LevelFilter;
use tracing_appender::non_blocking::{NonBlocking, WorkerGuard};
use tracing_subscriber::layer::{Layer, Layered, SubscriberExt};
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{Registry, fmt, registry, reload};

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

fn invalid(key: &str, value: String, reason: String) -> ConfigError {
    ConfigError::new(
        Some(key),
        Some(value),
        None,
        ConfigProblem::Invalid { reason },
    )
}

/// Refuses what `[logging]` names but this build cannot do. Start-up and
/// every reload check the same way.
pub(crate) fn check(logging: &LoggingConfig) -> std::result::Result<(), ConfigError> {
    if logging.json && cfg!(not(feature = "json-logs")) {
        return Err(invalid(
            "logging.json",
            "true".to_owned(),
            "this build has no JSON logs (the `json-logs` feature); set it to false or build with the feature".to_owned(),
        ));
    }
    Ok(())
}

/// The subscriber below the output layer: the registry and the level.
type Base = Layered<reload::Layer<LevelFilter, Registry>, Registry>;
/// An output layer: a formatter and where it writes.
type Output = Box<dyn Layer<Base> + Send + Sync>;

/// Where lines go.
#[derive(Clone)]
enum Sink {
    Stderr,
    File(NonBlocking),
}

/// What the running subscriber lets a reload change, set by [`init`]
/// when the daemon's own subscriber was installed.
struct Live {
    sink: Sink,
    level: reload::Handle<LevelFilter, Registry>,
    output: reload::Handle<Output, Base>,
}

static LIVE: OnceLock<Live> = OnceLock::new();

/// The file writer's thread, flushed and stopped by [`flush`].
static FILE_GUARD: Mutex<Option<WorkerGuard>> = Mutex::new(None);

/// The formatter `logging` asks for, writing to `sink`.
fn output_layer(logging: &LoggingConfig, sink: &Sink) -> Output {
    let terminal = matches!(sink, Sink::Stderr) && std::io::stderr().is_terminal();
    let ansi = logging.color && terminal;
    macro_rules! with_writer {
        ($layer:expr) => {
            match sink {
                Sink::Stderr => $layer
                    .with_writer(std::io::stderr as fn() -> std::io::Stderr)
                    .boxed(),
                Sink::File(writer) => $layer.with_writer(writer.clone()).boxed(),
            }
        };
    }
    #[cfg(feature = "json-logs")]
    if logging.json {
        return with_writer!(fmt::layer().json().with_ansi(false));
    }
    #[cfg(feature = "console")]
    if terminal {
        return with_writer!(fmt::layer().pretty().with_ansi(ansi));
    }
    with_writer!(fmt::layer().with_ansi(ansi))
}

/// Opens `logging.file` for appending, rotated by size.
fn open_file(path: &Path, logging: &LoggingConfig) -> std::result::Result<Sink, ConfigError> {
    use file_rotate::compression::Compression;
    use file_rotate::suffix::AppendCount;
    use file_rotate::{ContentLimit, FileRotate};

    let shown = path.display().to_string();
    let directory = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_owned(),
        _ => std::path::PathBuf::from("."),
    };
    if !directory.is_dir() {
        return Err(invalid(
            "logging.file",
            shown,
            format!(
                "the directory {} does not exist; create it, or point logging.file elsewhere",
                directory.display()
            ),
        ));
    }
    // Opened once here so that a refusal is an error at start, in words;
    // the rotating writer opens it again the same way.
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|err| {
            invalid(
                "logging.file",
                shown.clone(),
                format!("could not open it for appending: {err}"),
            )
        })?;
    let max_bytes = usize::try_from(logging.max_file_size)
        .unwrap_or(usize::MAX)
        .max(1);
    let rotated = usize::try_from(logging.max_files)
        .unwrap_or(usize::MAX)
        .saturating_sub(1);
    let writer = FileRotate::new(
        path,
        AppendCount::new(rotated),
        ContentLimit::BytesSurpassed(max_bytes),
        Compression::None,
        None,
    );
    let (writer, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
        .lossy(false)
        .thread_name("log-writer")
        .finish(writer);
    *crate::lock::lock(&FILE_GUARD) = Some(guard);
    Ok(Sink::File(writer))
}

/// Installs the subscriber `logging` describes, if none is installed.
pub(crate) fn init(logging: &LoggingConfig) -> Result<()> {
    check(logging)?;
    if LIVE.get().is_some() {
        // A second daemon in this process: the first one's subscriber
        // stays, as a program's own would.
        tracing::debug!(
            "the daemon's subscriber is already installed; [logging] is not applied again"
        );
        return Ok(());
    }
    let sink = match &logging.file {
        Some(path) => open_file(path, logging)?,
        None => Sink::Stderr,
    };
    let (level, level_handle) = reload::Layer::new(level_filter(logging.level));
    let (output, output_handle) = reload::Layer::new(output_layer(logging, &sink));
    if registry().with(level).with(output).try_init().is_err() {
        drop(crate::lock::lock(&FILE_GUARD).take());
        tracing::debug!("a tracing subscriber is already installed; [logging] is not applied");
        return Ok(());
    }
    let _ = LIVE.set(Live {
        sink,
        level: level_handle,
        output: output_handle,
    });
    Ok(())
}

/// Applies the live `[logging]` keys (`level`, `json`, `color`) to the
/// running subscriber. Returns `false` when the daemon did not install it
/// (the program's own subscriber is in use), so nothing could be changed.
pub(crate) fn apply_live(logging: &LoggingConfig) -> bool {
    let Some(live) = LIVE.get() else {
        return false;
    };
    let level = live.level.reload(level_filter(logging.level)).is_ok();
    let output = live
        .output
        .reload(output_layer(logging, &live.sink))
        .is_ok();
    level && output
}

/// The level from the control socket (`log-level`), while it is in
/// effect instead of `logging.level`.
static LEVEL_OVERRIDE: Mutex<Option<LogLevel>> = Mutex::new(None);

/// Sets the level of the running subscriber to `level` until the next
/// reload, which puts `logging.level` back ([`take_level_override`]).
/// Returns `false`, changing nothing, when the daemon did not install the
/// subscriber.
pub(crate) fn override_level(level: LogLevel) -> bool {
    let Some(live) = LIVE.get() else {
        return false;
    };
    let mut slot = crate::lock::lock(&LEVEL_OVERRIDE);
    let applied = live.level.reload(level_filter(level)).is_ok();
    if applied {
        *slot = Some(level);
    }
    applied
}

/// The level set by [`override_level`], while it is in effect.
pub(crate) fn current_override() -> Option<LogLevel> {
    *crate::lock::lock(&LEVEL_OVERRIDE)
}

/// Whether a `log-level` override was in effect; clears it. A reload that
/// sees one applies `logging.level` again, changed or not.
pub(crate) fn take_level_override() -> bool {
    crate::lock::lock(&LEVEL_OVERRIDE).take().is_some()
}

/// Writes every queued file line and stops the file writer's thread.
/// Lines logged after this are not written to the file.
pub(crate) fn flush() {
    drop(crate::lock::lock(&FILE_GUARD).take());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(not(feature = "json-logs"))]
    #[test]
    fn json_without_the_feature_is_refused_naming_it() {
        let logging = LoggingConfig {
            json: true,
            ..crate::Config::default().logging
        };
        let err = check(&logging).unwrap_err().to_string();
        assert!(
            err.contains("`logging.json`") && err.contains("json-logs"),
            "{err}"
        );
    }

    #[test]
    fn text_logs_pass_the_check() {
        assert!(check(&crate::Config::default().logging).is_ok());
    }
}
