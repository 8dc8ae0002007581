//! How a [`Config`] was made, kept with it so that a reload can make it
//! again: the same layers (defaults, the file, the environment, the
//! builder's values) in the same order, validated by the same rules.
//!
//! A `Config` from [`ConfigBuilder`], [`Config::new`] or
//! [`Config::load_from_file`] carries its builder. One made any other way
//! ([`Config::default`], or built by hand) has no layers, and a reload of
//! it says so instead of guessing. Fields changed by hand on a built
//! `Config` are not part of its layers: a reload rebuilds from the layers.

use std::fmt;
use std::sync::Arc;

use super::error::{ConfigError, ConfigProblem, Result};
use super::schema::FIELDS;
use super::{Config, ConfigBuilder};

/// The builder a [`Config`] came from, if any. Not part of the config's
/// value: two configs with the same values are equal whatever their
/// layers.
#[derive(Clone, Default)]
pub(crate) struct Layers(Option<Arc<ConfigBuilder>>);

impl Layers {
    pub(crate) fn from_builder(builder: ConfigBuilder) -> Self {
        Layers(Some(Arc::new(builder)))
    }

    /// The config file these layers read, if any.
    #[cfg(feature = "toml")]
    pub(crate) fn file(&self) -> Option<&std::path::Path> {
        self.0.as_ref().and_then(|builder| builder.file_path())
    }
}

impl PartialEq for Layers {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Eq for Layers {}

impl fmt::Debug for Layers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Some(_) => f.write_str("Layers(builder)"),
            None => f.write_str("Layers(none)"),
        }
    }
}

impl Config {
    /// Reads this config's layers again and validates the result: what a
    /// reload applies.
    ///
    /// # Errors
    ///
    /// The same errors as building it did (an unreadable file, a bad
    /// value, an inconsistent set), or, for a config that was not built
    /// from layers, a [`ConfigProblem::Invalid`] that says so.
    pub(crate) fn rebuild(&self) -> Result<Config> {
        match &self.layers.0 {
            Some(builder) => {
                let mut builder = ConfigBuilder::clone(builder);
                builder.reloading = true;
                builder.build()
            }
            None => Err(ConfigError::new(
                None,
                None,
                None,
                ConfigProblem::Invalid {
                    reason: "this configuration was not built by Config::builder, Config::new or Config::load_from_file, so there are no layers to read again".into(),
                },
            )),
        }
    }

    /// The config file a reload reads, if this config came from one.
    #[cfg(feature = "toml")]
    pub fn file(&self) -> Option<&std::path::Path> {
        self.layers.file()
    }
}

/// The keys whose values differ between `old` and `new`, in schema order.
pub(crate) fn changed_keys(old: &Config, new: &Config) -> Vec<&'static str> {
    FIELDS
        .iter()
        .filter(|field| (field.render)(old) != (field.render)(new))
        .map(|field| field.key)
        .collect()
}

/// Sets `key` in `to` to its value in `from`.
///
/// # Panics
///
/// On a key that is not in the schema (a bug in this crate, caught by the
/// reload tests).
pub(crate) fn copy_key(to: &mut Config, from: &Config, key: &str) {
    let field = FIELDS
        .iter()
        .find(|field| field.key == key)
        .unwrap_or_else(|| panic!("`{key}` is not a configuration key"));
    (field.copy)(to, from);
}

/// The value of `key` in `config`, rendered as `config_explain` shows it.
pub(crate) fn render_key(config: &Config, key: &str) -> String {
    FIELDS
        .iter()
        .find(|field| field.key == key)
        .and_then(|field| (field.render)(config))
        .unwrap_or_else(|| "(unset)".to_owned())
}
