//! Errors: one [`Error`] type for the whole crate, and its [`Result`] alias.
//!
//! Every error is meant to be acted on by the person running the daemon, so
//! each variant carries the context that action needs: the configuration key,
//! the value and where it came from; the file and the operation that failed;
//! the subsystem's name. `Display` renders that context as one sentence,
//! suitable for a log line or for `main` returning `Err`.
//!
//! ```
//! use proc_daemon::{Config, Error, ErrorKind};
//!
//! let err = Config::builder().name("").ignore_env().build().unwrap_err();
//! assert_eq!(err.kind(), ErrorKind::Config);
//! assert!(err.to_string().contains("`name`"));
//! ```

use std::fmt;
use std::io;
use std::path::PathBuf;

use crate::config::Source;

/// `Result<T, proc_daemon::Error>`, returned by every fallible operation.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The coarse kind of an [`Error`], for callers that branch on it
/// (for example to choose an exit code).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// Configuration parsing or validation failed (the reference's `ConfigError`).
    Config,
    /// File I/O, signal registration or PID-file handling failed (`IoError`).
    Io,
    /// A subsystem failed to start, run or stop (`SubsystemError`).
    Subsystem,
    /// Shutdown coordination timed out or was aborted (`ShutdownError`).
    Shutdown,
    /// A profiler could not start or write its output (`ProfilingError`).
    Profiling,
}

/// The error type of proc-daemon.
///
/// Match on [`Error::kind`] for the coarse category; the variants carry the
/// details. The enum is `#[non_exhaustive]` so that new failure modes can be
/// added without breaking callers.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The configuration is invalid. Boxed: a `ConfigError` is large, and
    /// `Result<T>` should stay small on the happy path.
    #[error(transparent)]
    Config(Box<ConfigError>),

    /// An I/O operation failed.
    #[error("could not {action}{}: {source}", path_suffix(.path))]
    Io {
        /// What was being done, as a verb phrase ("read config file").
        action: String,
        /// The file or directory involved, if any.
        path: Option<PathBuf>,
        /// The underlying error.
        #[source]
        source: io::Error,
    },

    /// The PID file is locked by another process: another instance of the
    /// daemon runs.
    #[error("PID file {} is locked by {}: another instance is running", .path.display(), holder(.pid))]
    PidFileLocked {
        /// The PID file.
        path: PathBuf,
        /// The pid written in the file, if it could be read.
        pid: Option<u32>,
    },

    /// A subsystem failed.
    #[error("subsystem `{name}` failed: {reason}")]
    Subsystem {
        /// The subsystem's name.
        name: String,
        /// What went wrong, in words.
        reason: String,
    },

    /// Every subsystem stopped in time, but some cleanups failed: their
    /// `run` returned an error or panicked after the shutdown began. Exit
    /// code [`EXIT_CLEANUP_FAILED`](crate::exit::EXIT_CLEANUP_FAILED).
    #[error("the shutdown completed, but cleanup failed in {}", describe_failures(.failures))]
    CleanupFailed {
        /// Each subsystem whose cleanup failed, and what happened
        /// (`"panicked: ..."`, `"failed: ..."`).
        failures: Vec<(String, String)>,
    },

    /// Shutdown did not complete as configured.
    #[error("shutdown did not complete cleanly: {reason}")]
    Shutdown {
        /// What went wrong, in words.
        reason: String,
    },

    /// A profiler failed.
    #[error("profiling failed: {reason}")]
    Profiling {
        /// What went wrong, in words.
        reason: String,
    },
}

fn describe_failures(failures: &[(String, String)]) -> String {
    failures
        .iter()
        .map(|(name, what)| format!("`{name}` ({what})"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn holder(pid: &Option<u32>) -> String {
    match pid {
        Some(pid) => format!("pid {pid}"),
        None => "another process (its pid is not written yet)".to_owned(),
    }
}

fn path_suffix(path: &Option<PathBuf>) -> String {
    match path {
        Some(path) => format!(" {}", path.display()),
        None => String::new(),
    }
}

impl Error {
    /// The coarse category of this error.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Config(_) => ErrorKind::Config,
            Error::Io { .. } | Error::PidFileLocked { .. } => ErrorKind::Io,
            Error::Subsystem { .. } | Error::CleanupFailed { .. } => ErrorKind::Subsystem,
            Error::Shutdown { .. } => ErrorKind::Shutdown,
            Error::Profiling { .. } => ErrorKind::Profiling,
        }
    }

    /// The process exit code for this error, as documented in
    /// [`crate::exit`]: [`EXIT_FORCED`](crate::exit::EXIT_FORCED) for
    /// a forced shutdown,
    /// [`EXIT_CLEANUP_FAILED`](crate::exit::EXIT_CLEANUP_FAILED) for a
    /// failed cleanup, [`EXIT_FAILURE`](crate::exit::EXIT_FAILURE) for
    /// everything else.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Shutdown { .. } => crate::exit::EXIT_FORCED,
            Error::CleanupFailed { .. } => crate::exit::EXIT_CLEANUP_FAILED,
            _ => crate::exit::EXIT_FAILURE,
        }
    }

    /// The configuration error inside, if this is one.
    pub fn as_config(&self) -> Option<&ConfigError> {
        match self {
            Error::Config(err) => Some(err),
            _ => None,
        }
    }

    /// An I/O error with the action that failed and the path involved.
    pub fn io(action: impl Into<String>, path: Option<PathBuf>, source: io::Error) -> Self {
        Error::Io {
            action: action.into(),
            path,
            source,
        }
    }

    /// A subsystem error.
    pub fn subsystem(name: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::Subsystem {
            name: name.into(),
            reason: reason.into(),
        }
    }

    /// A shutdown error.
    pub fn shutdown(reason: impl Into<String>) -> Self {
        Error::Shutdown {
            reason: reason.into(),
        }
    }

    /// A profiling error.
    pub fn profiling(reason: impl Into<String>) -> Self {
        Error::Profiling {
            reason: reason.into(),
        }
    }
}

/// A configuration [`Error`]; see [`ConfigError`] for the parts.
pub(crate) fn config_error(
    key: Option<&str>,
    value: Option<String>,
    source: Option<Source>,
    problem: ConfigProblem,
) -> Error {
    ConfigError::new(key, value, source, problem).into()
}

impl From<ConfigError> for Error {
    fn from(err: ConfigError) -> Self {
        Error::Config(Box::new(err))
    }
}

/// A configuration value that could not be accepted.
///
/// It names the key (`shutdown.timeout_ms`), the value as it was given, where
/// it came from (a file and line, an environment variable, the builder) and
/// what is wrong with it. Its `Display` is one line:
///
/// ```text
/// config error (daemon.toml line 14): `shutdown.timeout_ms` = 0: must be greater than 0
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    key: Option<String>,
    value: Option<String>,
    source: Option<Source>,
    problem: ConfigProblem,
}

/// What is wrong with a configuration value.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigProblem {
    /// The key is not part of the schema.
    UnknownKey {
        /// The nearest known key, if one is close enough to be a likely typo.
        suggestion: Option<String>,
    },
    /// The value has the wrong type, or could not be parsed as the key's type.
    WrongType {
        /// What the key accepts, in words ("a non-negative integer").
        expected: String,
        /// What was found instead ("a string", "`abc`").
        found: String,
    },
    /// The value has the right type but is not allowed.
    Invalid {
        /// Why, in words ("must be greater than 0").
        reason: String,
    },
    /// The value contradicts another key's value.
    Conflict {
        /// The other key.
        other_key: String,
        /// The other key's value.
        other_value: String,
        /// Where the other value came from.
        other_source: Source,
        /// Why the two cannot go together.
        reason: String,
    },
    /// The file is not valid TOML.
    Syntax {
        /// The parser's message.
        message: String,
    },
}

/// The longest value an error quotes whole, in bytes. A longer one (a
/// 50 MB string given by mistake) is cut, and the error says how long it
/// was, so that the one-line message stays one line.
const MAX_QUOTED_VALUE_BYTES: usize = 120;

fn shorten_value(value: String) -> String {
    if value.len() <= MAX_QUOTED_VALUE_BYTES {
        return value;
    }
    let mut end = MAX_QUOTED_VALUE_BYTES;
    while !value.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… ({} bytes in all)", &value[..end], value.len())
}

impl ConfigError {
    pub(crate) fn new(
        key: Option<&str>,
        value: Option<String>,
        source: Option<Source>,
        problem: ConfigProblem,
    ) -> Self {
        Self {
            key: key.map(str::to_owned),
            value: value.map(shorten_value),
            source,
            problem,
        }
    }

    /// The key, as a dotted path (`shutdown.timeout_ms`), when the error is
    /// about one key.
    pub fn key(&self) -> Option<&str> {
        self.key.as_deref()
    }

    /// The offending value as it was given.
    pub fn value(&self) -> Option<&str> {
        self.value.as_deref()
    }

    /// Where the offending value came from.
    pub fn origin(&self) -> Option<&Source> {
        self.source.as_ref()
    }

    /// The line in the config file, when the value came from one.
    pub fn line(&self) -> Option<usize> {
        match &self.source {
            Some(Source::File { line, .. }) => Some(*line),
            _ => None,
        }
    }

    /// What is wrong.
    pub fn problem(&self) -> &ConfigProblem {
        &self.problem
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.source {
            Some(source) => write!(f, "config error ({source}): ")?,
            None => write!(f, "config error: ")?,
        }
        if let ConfigProblem::UnknownKey { suggestion } = &self.problem {
            let what = match self.source {
                Some(Source::Env { .. }) => "variable",
                _ => "key",
            };
            write!(f, "unknown {what} `{}`", self.key.as_deref().unwrap_or("?"))?;
            return match suggestion {
                Some(s) => write!(f, "; did you mean `{s}`?"),
                None => write!(f, "; docs/configuration.md lists the known keys"),
            };
        }
        match (&self.key, &self.value) {
            (Some(key), Some(value)) => write!(f, "`{key}` = {value}: ")?,
            (Some(key), None) => write!(f, "`{key}`: ")?,
            _ => {}
        }
        match &self.problem {
            ConfigProblem::UnknownKey { .. } => Ok(()),
            ConfigProblem::WrongType { expected, found } => {
                write!(f, "expected {expected}, found {found}")
            }
            ConfigProblem::Invalid { reason } => write!(f, "{reason}"),
            ConfigProblem::Conflict {
                other_key,
                other_value,
                other_source,
                reason,
            } => write!(
                f,
                "{reason} (`{other_key}` = {other_value}, from {other_source})"
            ),
            ConfigProblem::Syntax { message } => write!(f, "not valid TOML: {message}"),
        }
    }
}

impl std::error::Error for ConfigError {}
