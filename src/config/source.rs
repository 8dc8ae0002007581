//! Where each configuration value came from.
//!
//! Every value of a resolved [`Config`] carries a [`Source`]: the built-in
//! default, a line of a TOML file, an environment variable or the builder.
//! Errors name it, so that a bad value can be found and fixed where it was
//! written, and [`ExplainedConfig`] prints it next to every value, so that
//! "why is the timeout 60 s?" has an answer.

use std::fmt;
use std::path::PathBuf;

use super::Config;
use super::schema::{self, FIELDS};

/// Where a configuration value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Source {
    /// The built-in default.
    Default,
    /// Computed from another key because it was not set anywhere
    /// (the force and kill timeouts follow the graceful timeout).
    Derived {
        /// The key it was computed from.
        from: &'static str,
    },
    /// A TOML file.
    File {
        /// The file.
        path: PathBuf,
        /// The 1-based line of the value.
        line: usize,
    },
    /// An environment variable.
    Env {
        /// The variable's name.
        var: String,
    },
    /// A setter of [`ConfigBuilder`](super::ConfigBuilder).
    Builder,
    /// A field of a [`Config`] set directly in code, checked by
    /// [`Config::validate`].
    Code,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Default => write!(f, "default"),
            Source::Derived { from } => write!(f, "derived from `{from}`"),
            Source::File { path, line } => write!(f, "{} line {line}", path.display()),
            Source::Env { var } => write!(f, "environment variable {var}"),
            Source::Builder => write!(f, "builder"),
            Source::Code => write!(f, "code"),
        }
    }
}

/// A resolved configuration together with the source of each value.
///
/// Returned by [`ConfigBuilder::explain`](super::ConfigBuilder::explain).
/// Its `Display` is a table with one line per key: the key, the value and
/// where the value came from.
#[derive(Debug, Clone)]
pub struct ExplainedConfig {
    pub(super) config: Config,
    pub(super) sources: Vec<Source>,
}

/// One line of an [`ExplainedConfig`].
#[derive(Debug, Clone)]
pub struct ExplainedValue<'a> {
    /// The dotted key: `shutdown.timeout_ms`.
    pub key: &'static str,
    /// One line on what the key does.
    pub doc: &'static str,
    /// The value as TOML would write it; `None` when unset.
    pub value: Option<String>,
    /// Where the value came from.
    pub source: &'a Source,
}

impl ExplainedConfig {
    /// The resolved configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The resolved configuration, without the sources.
    pub fn into_config(self) -> Config {
        self.config
    }

    /// Where the value of `key` (a dotted key such as `shutdown.timeout_ms`)
    /// came from; `None` for an unknown key.
    pub fn source_of(&self, key: &str) -> Option<&Source> {
        schema::lookup(key).map(|i| &self.sources[i])
    }

    /// Every key with its value and source, in schema order.
    pub fn values(&self) -> Vec<ExplainedValue<'_>> {
        FIELDS
            .iter()
            .zip(&self.sources)
            .map(|(field, source)| ExplainedValue {
                key: field.key,
                doc: field.doc,
                value: (field.render)(&self.config),
                source,
            })
            .collect()
    }
}

/// How an unset optional value is shown.
const UNSET: &str = "(unset)";

impl fmt::Display for ExplainedConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let rows = self.values();
        let key_width = rows.iter().map(|row| row.key.len()).max().unwrap_or(0);
        let value_width = rows
            .iter()
            .map(|row| row.value.as_deref().map_or(UNSET.len(), str::len))
            .max()
            .unwrap_or(0);
        for row in rows {
            writeln!(
                f,
                "{:key_width$} = {:value_width$}  # {}",
                row.key,
                row.value.as_deref().unwrap_or(UNSET),
                row.source,
            )?;
        }
        Ok(())
    }
}
