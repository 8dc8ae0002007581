//! [`ConfigError`]: what is wrong with a configuration, down to the key,
//! the value and where it came from.
//!
//! It lives with the configuration, not in the crate's [`Error`](crate::Error):
//! the configuration is the bottom layer, and knows nothing of the daemon's
//! errors. `Error::Config` wraps a `ConfigError`, and `?` converts one into
//! the other.

use std::fmt;
use std::io;
use std::path::PathBuf;

use super::source::Source;

/// `Result<T, ConfigError>`, what the configuration's functions return.
pub(crate) type Result<T, E = ConfigError> = std::result::Result<T, E>;

/// A [`ConfigError`] from its parts.
pub(crate) fn config_error(
    key: Option<&str>,
    value: Option<String>,
    source: Option<Source>,
    problem: ConfigProblem,
) -> ConfigError {
    ConfigError::new(key, value, source, problem)
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
///
/// One pointer wide: the parts are boxed, so that the `Result`s the
/// configuration returns stay small on the happy path.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", Rendered(.0))]
pub struct ConfigError(Box<Parts>);

/// The parts of a [`ConfigError`].
#[derive(Debug, Clone, PartialEq, Eq)]
struct Parts {
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
    /// The file could not be read: missing, not a regular file, too
    /// large, or refused by the system.
    Unreadable {
        /// The file.
        path: PathBuf,
        /// The kind of the I/O error, for callers that branch on it.
        kind: io::ErrorKind,
        /// Why, in words (the system's message, or the rule broken).
        reason: String,
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
        ConfigError(Box::new(Parts {
            key: key.map(str::to_owned),
            value: value.map(shorten_value),
            source,
            problem,
        }))
    }

    /// The key, as a dotted path (`shutdown.timeout_ms`), when the error is
    /// about one key.
    pub fn key(&self) -> Option<&str> {
        self.0.key.as_deref()
    }

    /// The offending value as it was given.
    pub fn value(&self) -> Option<&str> {
        self.0.value.as_deref()
    }

    /// Where the offending value came from.
    pub fn origin(&self) -> Option<&Source> {
        self.0.source.as_ref()
    }

    /// The line in the config file, when the value came from one.
    pub fn line(&self) -> Option<usize> {
        match &self.0.source {
            Some(Source::File { line, .. }) => Some(*line),
            _ => None,
        }
    }

    /// What is wrong.
    pub fn problem(&self) -> &ConfigProblem {
        &self.0.problem
    }
}

/// The message of a [`ConfigError`]: where, which key, and what is wrong
/// with it. (thiserror's `fmt =` does not apply to a struct.)
struct Rendered<'a>(&'a Parts);

impl fmt::Display for Rendered<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        render(self.0, f)
    }
}

fn render(parts: &Parts, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    match &parts.source {
        Some(source) => write!(f, "config error ({source}): ")?,
        None => write!(f, "config error: ")?,
    }
    if let ConfigProblem::UnknownKey { suggestion } = &parts.problem {
        let what = match parts.source {
            Some(Source::Env { .. }) => "variable",
            _ => "key",
        };
        write!(
            f,
            "unknown {what} `{}`",
            parts.key.as_deref().unwrap_or("?")
        )?;
        return match suggestion {
            Some(s) => write!(f, "; did you mean `{s}`?"),
            None => write!(f, "; docs/configuration.md lists the known keys"),
        };
    }
    match (&parts.key, &parts.value) {
        (Some(key), Some(value)) => write!(f, "`{key}` = {value}: ")?,
        (Some(key), None) => write!(f, "`{key}`: ")?,
        _ => {}
    }
    match &parts.problem {
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
        ConfigProblem::Unreadable { path, reason, .. } => {
            write!(f, "could not read config file {}: {reason}", path.display())
        }
    }
}
