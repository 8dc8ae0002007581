//! The environment layer: `DAEMON_*` variables.
//!
//! A variable's name is the prefix, then the key's section and name in
//! capitals joined by `_`: `DAEMON_SHUTDOWN_TIMEOUT_MS` is
//! `shutdown.timeout_ms`. Names are matched against the schema as a whole,
//! not split at every underscore (proc-daemon 1.x split them, so
//! `DAEMON_SHUTDOWN_TIMEOUT_MS` became `shutdown.timeout.ms` and was
//! ignored).
//!
//! Every variable with the prefix must name a key. An unknown one is an
//! error with the nearest known name, because a typo silently ignored is a
//! setting silently lost. Hosts whose environment uses `DAEMON_*` for other
//! things can pick another prefix with
//! [`ConfigBuilder::env_prefix`](super::ConfigBuilder::env_prefix).

use std::ffi::OsString;

use super::Config;
use super::error::{ConfigProblem, Result, config_error};
use super::schema::{self, FIELDS, ValueError};
use super::source::Source;

/// Applies the variables that start with `prefix` to `config`.
pub(super) fn apply(
    config: &mut Config,
    sources: &mut [Source],
    prefix: &str,
    mut vars: Vec<(OsString, OsString)>,
) -> Result<()> {
    // Sorted, so that with several bad variables the same one is reported
    // every time.
    vars.sort();
    let mut seen: Vec<Option<String>> = vec![None; FIELDS.len()];
    for (name, value) in vars {
        let Some(name) = name.to_str() else {
            if std::os::unix::ffi::OsStrExt::as_bytes(name.as_os_str())
                .starts_with(prefix.as_bytes())
            {
                // It has the prefix, so it was meant for the daemon; but no
                // key's variable has a name that is not UTF-8.
                let lossy = name.to_string_lossy().into_owned();
                return Err(config_error(
                    Some(&lossy),
                    value.to_str().map(|v| format!("{v:?}")),
                    Some(Source::Env { var: lossy.clone() }),
                    ConfigProblem::Invalid {
                        reason: format!(
                            "the variable's name is not valid UTF-8, so it names no key; every {prefix}* variable must name one"
                        ),
                    },
                ));
            }
            continue;
        };
        if !name.starts_with(prefix) {
            continue;
        }
        let source = Source::Env {
            var: name.to_owned(),
        };
        let Some(index) = schema::lookup_env(prefix, name) else {
            let candidates: Vec<String> = FIELDS
                .iter()
                .flat_map(|f| std::iter::once(f.key).chain(f.aliases.iter().copied()))
                .map(|key| schema::env_var(prefix, key))
                .collect();
            let suggestion = schema::suggest(name, candidates.iter().map(String::as_str));
            return Err(config_error(
                Some(name),
                value.to_str().map(|v| format!("{v:?}")),
                Some(source),
                ConfigProblem::UnknownKey { suggestion },
            ));
        };
        let field = &FIELDS[index];
        if let Some(first) = &seen[index] {
            return Err(config_error(
                Some(field.key),
                value.to_str().map(|v| format!("{v:?}")),
                Some(source),
                ConfigProblem::Invalid {
                    reason: format!("{first} already sets this key; set only one of the two"),
                },
            ));
        }
        seen[index] = Some(name.to_owned());
        let Some(text) = value.to_str() else {
            return Err(config_error(
                Some(field.key),
                Some(format!("{value:?}")),
                Some(source),
                ConfigProblem::WrongType {
                    expected: field.expected.to_owned(),
                    found: "bytes that are not valid UTF-8".to_owned(),
                },
            ));
        };
        (field.parse_env)(config, text).map_err(|err| {
            let problem = match err {
                ValueError::WrongType(found) => ConfigProblem::WrongType {
                    expected: field.expected.to_owned(),
                    found,
                },
                ValueError::Invalid(reason) => ConfigProblem::Invalid { reason },
            };
            config_error(
                Some(field.key),
                Some(format!("{text:?}")),
                Some(source.clone()),
                problem,
            )
        })?;
        sources[index] = source;
    }
    Ok(())
}
