//! The configuration schema: one table that lists every key once.
//!
//! The TOML reader, the environment reader, the builder, the validator, the
//! TOML writer and `config_explain` all walk [`FIELDS`]. A key therefore
//! cannot exist in the file but not in the environment, or be parsed but never
//! printed: adding a key is adding one line here (and a field to [`Config`]).
//!
//! Each entry knows its dotted key (`shutdown.timeout_ms`), its older aliases
//! (`shutdown.graceful`, from proc-daemon 1.x), and how to parse, render and
//! copy its value. The per-type behaviour lives in [`ConfigValue`].

use std::path::PathBuf;

use super::{Config, LogLevel};

/// Why a raw value could not become a field's value.
#[derive(Debug)]
pub(crate) enum ValueError {
    /// The value has the wrong type or does not parse; carries what was found.
    WrongType(String),
    /// The value parsed but is out of range or otherwise not allowed.
    Invalid(String),
}

/// A type a configuration field can have.
pub(crate) trait ConfigValue: Sized {
    /// What the key accepts, in words, for error messages.
    const EXPECTED: &'static str;

    /// Parses the value from an environment variable.
    fn parse_env(raw: &str) -> Result<Self, ValueError>;

    /// Reads the value from a TOML value.
    #[cfg(feature = "toml")]
    fn from_toml(value: &toml::de::DeValue<'_>) -> Result<Self, ValueError>;

    /// Writes the value as TOML; `None` when the value is unset.
    #[cfg(feature = "toml")]
    fn to_toml(&self) -> Option<toml::Value>;

    /// Renders the value for people (`config_explain`, error messages);
    /// `None` when the value is unset.
    fn render(&self) -> Option<String>;
}

/// Describes a TOML value for an error message: its type and, for scalars,
/// the value itself.
#[cfg(feature = "toml")]
pub(crate) fn describe_toml(value: &toml::de::DeValue<'_>) -> String {
    use toml::de::DeValue;
    match value {
        DeValue::String(s) => format!("the string {s:?}"),
        DeValue::Integer(i) => format!("the integer {}", i.as_str()),
        DeValue::Float(x) => format!("the float {}", x.as_str()),
        DeValue::Boolean(b) => format!("the boolean {b}"),
        DeValue::Datetime(d) => format!("the datetime {d}"),
        DeValue::Array(_) => "an array".to_owned(),
        DeValue::Table(_) => "a table".to_owned(),
    }
}

/// Renders a TOML value as it would be written, for the `value` part of an
/// error.
#[cfg(feature = "toml")]
pub(crate) fn render_toml(value: &toml::de::DeValue<'_>) -> String {
    use toml::de::DeValue;
    match value {
        DeValue::String(s) => format!("{s:?}"),
        DeValue::Integer(i) => i.as_str().to_owned(),
        DeValue::Float(x) => x.as_str().to_owned(),
        DeValue::Boolean(b) => b.to_string(),
        DeValue::Datetime(d) => d.to_string(),
        DeValue::Array(_) => "[...]".to_owned(),
        DeValue::Table(_) => "{...}".to_owned(),
    }
}

impl ConfigValue for String {
    const EXPECTED: &'static str = "a string";

    fn parse_env(raw: &str) -> Result<Self, ValueError> {
        Ok(raw.to_owned())
    }

    #[cfg(feature = "toml")]
    fn from_toml(value: &toml::de::DeValue<'_>) -> Result<Self, ValueError> {
        match value {
            toml::de::DeValue::String(s) => Ok(s.to_string()),
            other => Err(ValueError::WrongType(describe_toml(other))),
        }
    }

    #[cfg(feature = "toml")]
    fn to_toml(&self) -> Option<toml::Value> {
        Some(toml::Value::String(self.clone()))
    }

    fn render(&self) -> Option<String> {
        Some(format!("{self:?}"))
    }
}

impl ConfigValue for bool {
    const EXPECTED: &'static str = "a boolean (true or false)";

    fn parse_env(raw: &str) -> Result<Self, ValueError> {
        match raw.trim().to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "on" => Ok(true),
            "false" | "0" | "no" | "off" => Ok(false),
            _ => Err(ValueError::WrongType(format!("{raw:?}"))),
        }
    }

    #[cfg(feature = "toml")]
    fn from_toml(value: &toml::de::DeValue<'_>) -> Result<Self, ValueError> {
        match value {
            toml::de::DeValue::Boolean(b) => Ok(*b),
            other => Err(ValueError::WrongType(describe_toml(other))),
        }
    }

    #[cfg(feature = "toml")]
    fn to_toml(&self) -> Option<toml::Value> {
        Some(toml::Value::Boolean(*self))
    }

    fn render(&self) -> Option<String> {
        Some(self.to_string())
    }
}

/// Implements [`ConfigValue`] for an unsigned integer type.
macro_rules! unsigned_value {
    ($ty:ty) => {
        impl ConfigValue for $ty {
            const EXPECTED: &'static str = "a non-negative integer";

            fn parse_env(raw: &str) -> Result<Self, ValueError> {
                let trimmed = raw.trim().replace('_', "");
                let wide: u128 = trimmed
                    .parse()
                    .map_err(|_| ValueError::WrongType(format!("{raw:?}")))?;
                <$ty>::try_from(wide).map_err(|_| {
                    ValueError::Invalid(format!(
                        "is too large: it does not fit in {} bits (each key's own, lower bound is in docs/configuration.md)",
                        <$ty>::BITS
                    ))
                })
            }

            #[cfg(feature = "toml")]
            fn from_toml(value: &toml::de::DeValue<'_>) -> Result<Self, ValueError> {
                let toml::de::DeValue::Integer(int) = value else {
                    return Err(ValueError::WrongType(describe_toml(value)));
                };
                let wide = i128::from_str_radix(int.as_str(), int.radix())
                    .map_err(|_| ValueError::WrongType(describe_toml(value)))?;
                if wide < 0 {
                    return Err(ValueError::Invalid("must not be negative".to_owned()));
                }
                <$ty>::try_from(wide).map_err(|_| {
                    ValueError::Invalid(format!(
                        "is too large: it does not fit in {} bits (each key's own, lower bound is in docs/configuration.md)",
                        <$ty>::BITS
                    ))
                })
            }

            #[cfg(feature = "toml")]
            fn to_toml(&self) -> Option<toml::Value> {
                // TOML integers are signed 64-bit; larger values are written as
                // the largest one, which validation would reject anyway.
                Some(toml::Value::Integer(
                    i64::try_from(*self).unwrap_or(i64::MAX),
                ))
            }

            fn render(&self) -> Option<String> {
                Some(self.to_string())
            }
        }
    };
}

unsigned_value!(u64);
unsigned_value!(u32);
unsigned_value!(usize);

impl ConfigValue for LogLevel {
    const EXPECTED: &'static str = "one of \"trace\", \"debug\", \"info\", \"warn\", \"error\"";

    fn parse_env(raw: &str) -> Result<Self, ValueError> {
        raw.trim()
            .parse()
            .map_err(|_| ValueError::WrongType(format!("{raw:?}")))
    }

    #[cfg(feature = "toml")]
    fn from_toml(value: &toml::de::DeValue<'_>) -> Result<Self, ValueError> {
        match value {
            toml::de::DeValue::String(s) => s
                .parse()
                .map_err(|_| ValueError::WrongType(describe_toml(value))),
            other => Err(ValueError::WrongType(describe_toml(other))),
        }
    }

    #[cfg(feature = "toml")]
    fn to_toml(&self) -> Option<toml::Value> {
        Some(toml::Value::String(self.as_str().to_owned()))
    }

    fn render(&self) -> Option<String> {
        Some(format!("{:?}", self.as_str()))
    }
}

impl ConfigValue for Option<PathBuf> {
    const EXPECTED: &'static str = "a non-empty path string";

    fn parse_env(raw: &str) -> Result<Self, ValueError> {
        if raw.is_empty() {
            return Err(ValueError::Invalid(
                "must not be empty; leave the key out to keep it unset".to_owned(),
            ));
        }
        Ok(Some(PathBuf::from(raw)))
    }

    #[cfg(feature = "toml")]
    fn from_toml(value: &toml::de::DeValue<'_>) -> Result<Self, ValueError> {
        match value {
            toml::de::DeValue::String(s) => Self::parse_env(s),
            other => Err(ValueError::WrongType(describe_toml(other))),
        }
    }

    #[cfg(feature = "toml")]
    fn to_toml(&self) -> Option<toml::Value> {
        // A path that is not UTF-8 cannot be written as TOML; it is written
        // lossily so the key stays visible, and `Config::to_toml_string`
        // reports it as an error before getting here.
        self.as_ref()
            .map(|p| toml::Value::String(p.to_string_lossy().into_owned()))
    }

    fn render(&self) -> Option<String> {
        self.as_ref()
            .map(|p| format!("{:?}", p.display().to_string()))
    }
}

impl ConfigValue for Option<i32> {
    const EXPECTED: &'static str = "an integer";

    fn parse_env(raw: &str) -> Result<Self, ValueError> {
        raw.trim()
            .parse()
            .map(Some)
            .map_err(|_| ValueError::Invalid(format!("is not an integer ({raw:?})")))
    }

    #[cfg(feature = "toml")]
    fn from_toml(value: &toml::de::DeValue<'_>) -> Result<Self, ValueError> {
        match value {
            toml::de::DeValue::Integer(int) => {
                let wide = i128::from_str_radix(int.as_str(), int.radix())
                    .map_err(|_| ValueError::WrongType(describe_toml(value)))?;
                i32::try_from(wide)
                    .map(Some)
                    .map_err(|_| ValueError::Invalid(format!("is out of range ({wide})")))
            }
            other => Err(ValueError::WrongType(describe_toml(other))),
        }
    }

    #[cfg(feature = "toml")]
    fn to_toml(&self) -> Option<toml::Value> {
        self.map(|n| toml::Value::Integer(i64::from(n)))
    }

    fn render(&self) -> Option<String> {
        self.map(|n| n.to_string())
    }
}

impl ConfigValue for Option<std::net::SocketAddr> {
    const EXPECTED: &'static str =
        "an IP address and port, such as \"127.0.0.1:9090\" or \"[::1]:9090\"";

    fn parse_env(raw: &str) -> Result<Self, ValueError> {
        raw.parse().map(Some).map_err(|_| {
            ValueError::Invalid(format!(
                "is not an IP address and port ({:?}); a host name is not resolved, write the address",
                raw
            ))
        })
    }

    #[cfg(feature = "toml")]
    fn from_toml(value: &toml::de::DeValue<'_>) -> Result<Self, ValueError> {
        match value {
            toml::de::DeValue::String(s) => Self::parse_env(s),
            other => Err(ValueError::WrongType(describe_toml(other))),
        }
    }

    #[cfg(feature = "toml")]
    fn to_toml(&self) -> Option<toml::Value> {
        self.map(|addr| toml::Value::String(addr.to_string()))
    }

    fn render(&self) -> Option<String> {
        self.map(|addr| format!("{:?}", addr.to_string()))
    }
}

/// One key of the schema. See the module docs.
pub(crate) struct Field {
    /// The dotted key, as in the TOML file: `shutdown.timeout_ms`.
    pub key: &'static str,
    /// Older dotted keys that mean the same (proc-daemon 1.x names).
    pub aliases: &'static [&'static str],
    /// What the key accepts, in words.
    pub expected: &'static str,
    /// One line on what the key does.
    pub doc: &'static str,
    pub parse_env: fn(&mut Config, &str) -> Result<(), ValueError>,
    #[cfg(feature = "toml")]
    pub parse_toml: fn(&mut Config, &toml::de::DeValue<'_>) -> Result<(), ValueError>,
    #[cfg(feature = "toml")]
    pub to_toml: fn(&Config) -> Option<toml::Value>,
    pub render: fn(&Config) -> Option<String>,
    /// Copies this field's value from one config to another.
    pub copy: fn(&mut Config, &Config),
}

impl std::fmt::Debug for Field {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Field").field("key", &self.key).finish()
    }
}

/// Builds a [`Field`] from a key and the path of its struct field.
macro_rules! field {
    ($key:literal $(, aliases = [$($alias:literal),*])?, doc = $doc:literal, $ty:ty => $($path:ident).+) => {
        Field {
            key: $key,
            aliases: &[$($($alias),*)?],
            expected: <$ty as ConfigValue>::EXPECTED,
            doc: $doc,
            parse_env: |config, raw| {
                config.$($path).+ = <$ty as ConfigValue>::parse_env(raw)?;
                Ok(())
            },
            #[cfg(feature = "toml")]
            parse_toml: |config, value| {
                config.$($path).+ = <$ty as ConfigValue>::from_toml(value)?;
                Ok(())
            },
            #[cfg(feature = "toml")]
            to_toml: |config| ConfigValue::to_toml(&config.$($path).+),
            render: |config| ConfigValue::render(&config.$($path).+),
            copy: |to, from| to.$($path).+ = from.$($path).+.clone(),
        }
    };
}

/// The sections of the file, in the order they are written.
pub(crate) const SECTIONS: &[&str] = &[
    "logging",
    "shutdown",
    "performance",
    "monitoring",
    "control",
    "service",
];

/// Every key of the configuration, in the order `config_explain` prints them.
pub(crate) static FIELDS: &[Field] = &[
    field!("name", doc = "The daemon's name, used in logs and status.", String => name),
    field!("pid_file", doc = "PID file, locked for the life of the process.", Option<PathBuf> => pid_file),
    field!("work_dir", doc = "Working directory the daemon changes into at start.", Option<PathBuf> => work_dir),
    field!("hot_reload", doc = "Watch the config file and apply changes live.", bool => hot_reload),
    field!("logging.level", doc = "Minimum level logged.", LogLevel => logging.level),
    field!("logging.json", doc = "Log JSON lines instead of text.", bool => logging.json),
    field!("logging.color", doc = "Colour text logs (ignored for JSON).", bool => logging.color),
    field!("logging.file", doc = "Log to this file instead of stderr.", Option<PathBuf> => logging.file),
    field!("logging.max_file_size", doc = "Rotate the log file at this many bytes.", u64 => logging.max_file_size),
    field!("logging.max_files", doc = "Rotated log files kept.", u32 => logging.max_files),
    field!("shutdown.timeout_ms", aliases = ["shutdown.graceful"], doc = "Graceful stage: children stop cleanly within this.", u64 => shutdown.timeout_ms),
    field!("shutdown.force_timeout_ms", aliases = ["shutdown.force"], doc = "Force stage: remaining tasks are aborted at this point.", u64 => shutdown.force_timeout_ms),
    field!("shutdown.kill_timeout_ms", aliases = ["shutdown.kill"], doc = "Kill stage: the process exits at this point.", u64 => shutdown.kill_timeout_ms),
    field!("performance.worker_threads", doc = "Executor workers; 0 means one per allowed CPU.", usize => performance.worker_threads),
    field!("performance.thread_pinning", doc = "Pin each worker to a core.", bool => performance.thread_pinning),
    field!("performance.memory_pool_size", doc = "Bytes pre-allocated for per-message allocations; 0 turns the pool off.", usize => performance.memory_pool_size),
    field!("performance.numa_aware", doc = "Place new actors on the spawner's NUMA node.", bool => performance.numa_aware),
    field!("performance.lock_free", doc = "Lock-free mailboxes; false selects mutex-backed ones.", bool => performance.lock_free),
    field!("performance.process_priority", doc = "Nice value of every thread at start, -20 to 19 (feature `scheduler-hints`).", Option<i32> => performance.process_priority),
    field!("monitoring.enable_metrics", doc = "Collect metrics.", bool => monitoring.enable_metrics),
    field!("monitoring.metrics_interval_ms", doc = "How often metrics are sampled.", u64 => monitoring.metrics_interval_ms),
    field!("monitoring.track_resources", doc = "Track CPU, memory and threads of the process.", bool => monitoring.track_resources),
    field!("monitoring.health_checks", doc = "Run subsystems' health checks.", bool => monitoring.health_checks),
    field!("monitoring.health_check_interval_ms", doc = "How often health checks run.", u64 => monitoring.health_check_interval_ms),
    field!("monitoring.http_listen", doc = "Serve /metrics, /livez and /readyz on this address (feature `metrics`).", Option<std::net::SocketAddr> => monitoring.http_listen),
    field!("control.socket", doc = "Unix control socket for proc-daemon-ctl; relative to work_dir.", Option<PathBuf> => control.socket),
    field!("service.notification_fd", doc = "s6's readiness fd: a newline is written to it once the daemon is ready.", Option<i32> => service.notification_fd),
    field!("service.upgrade_timeout_ms", doc = "How long an upgrade waits for the new process to be ready.", u64 => service.upgrade_timeout_ms),
];

/// The index of a field in [`FIELDS`], by its canonical key.
///
/// Only called with keys written in this crate, so a miss is a bug caught by
/// the unit test `every_internal_key_exists`.
pub(crate) fn index_of(key: &str) -> usize {
    FIELDS
        .iter()
        .position(|f| f.key == key)
        .unwrap_or_else(|| unreachable!("`{key}` is not in the schema"))
}

/// Finds a field by a key as written by a user: canonical or alias.
pub(crate) fn lookup(key: &str) -> Option<usize> {
    FIELDS
        .iter()
        .position(|f| f.key == key || f.aliases.contains(&key))
}

/// The environment variable for a dotted key: `DAEMON_SHUTDOWN_TIMEOUT_MS`.
pub(crate) fn env_var(prefix: &str, key: &str) -> String {
    let mut var = String::with_capacity(prefix.len() + key.len());
    var.push_str(prefix);
    var.extend(key.chars().map(|c| {
        if c == '.' {
            '_'
        } else {
            c.to_ascii_uppercase()
        }
    }));
    var
}

/// Finds a field by environment variable name: canonical or alias.
pub(crate) fn lookup_env(prefix: &str, var: &str) -> Option<usize> {
    FIELDS.iter().position(|f| {
        env_var(prefix, f.key) == var || f.aliases.iter().any(|a| env_var(prefix, a) == var)
    })
}

/// The nearest candidate to `written`, if it is close enough to be a typo.
///
/// A key written in the wrong section (`timeout_ms` at the top level) is
/// found by its last segment; anything else by edit distance, within a third
/// of its length (at least 2).
pub(crate) fn suggest<'a>(
    written: &str,
    candidates: impl IntoIterator<Item = &'a str> + Clone,
) -> Option<String> {
    let written_lower = written.to_ascii_lowercase();
    let short = written_lower.rsplit('.').next().unwrap_or(&written_lower);
    if let Some(found) = candidates
        .clone()
        .into_iter()
        .find(|c| c.rsplit('.').next() == Some(short) && *c != written)
    {
        return Some(found.to_owned());
    }
    let limit = (written.len() / 3).max(2);
    let best = candidates
        .into_iter()
        .map(|c| {
            (
                strsim::levenshtein(&written_lower, &c.to_ascii_lowercase()),
                c,
            )
        })
        .min_by_key(|(distance, _)| *distance)?;
    (best.0 <= limit).then(|| best.1.to_owned())
}

/// Every key a user may write in a file: sections, canonical keys, aliases.
pub(crate) fn file_candidates() -> Vec<&'static str> {
    let mut keys: Vec<&'static str> = SECTIONS.to_vec();
    for field in FIELDS {
        keys.push(field.key);
        keys.extend_from_slice(field.aliases);
    }
    keys
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_internal_key_exists() {
        for key in [
            "shutdown.timeout_ms",
            "shutdown.force_timeout_ms",
            "shutdown.kill_timeout_ms",
            "name",
            "monitoring.metrics_interval_ms",
            "monitoring.health_check_interval_ms",
            "logging.max_file_size",
            "logging.max_files",
        ] {
            assert_eq!(FIELDS[index_of(key)].key, key);
        }
    }

    #[test]
    fn keys_are_unique_and_in_known_sections() {
        let mut seen = std::collections::HashSet::new();
        for field in FIELDS {
            for key in std::iter::once(&field.key).chain(field.aliases) {
                assert!(seen.insert(*key), "duplicate key {key}");
                if let Some((section, _)) = key.split_once('.') {
                    assert!(SECTIONS.contains(&section), "unknown section in {key}");
                }
            }
        }
    }

    #[test]
    fn env_names_follow_sections() {
        assert_eq!(
            env_var("DAEMON_", "shutdown.timeout_ms"),
            "DAEMON_SHUTDOWN_TIMEOUT_MS"
        );
        assert_eq!(
            lookup_env("DAEMON_", "DAEMON_PERFORMANCE_WORKER_THREADS"),
            Some(index_of("performance.worker_threads"))
        );
        assert_eq!(
            lookup_env("DAEMON_", "DAEMON_SHUTDOWN_GRACEFUL"),
            Some(index_of("shutdown.timeout_ms"))
        );
    }

    #[test]
    fn suggestions_find_typos_and_misplaced_keys() {
        let keys = file_candidates();
        assert_eq!(
            suggest("logging.levle", keys.iter().copied()).as_deref(),
            Some("logging.level")
        );
        assert_eq!(
            suggest("timeout_ms", keys.iter().copied()).as_deref(),
            Some("shutdown.timeout_ms")
        );
        assert_eq!(
            suggest("loging", keys.iter().copied()).as_deref(),
            Some("logging")
        );
        assert_eq!(
            suggest("completely_unrelated_thing", keys.iter().copied()),
            None
        );
    }
}
