//! The file layer: a TOML document with the keys of the schema.
//!
//! The document is parsed into a tree that keeps the byte span of every key
//! and value (`toml::de::DeTable`), and walked against the schema by hand
//! rather than deserialized into a struct. That is what lets every error
//! name the key, the value and the line, and what makes a key the schema
//! does not know an error instead of something silently ignored.

use std::path::Path;

use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::error::{ConfigProblem, Result, config_error};
use super::schema::{self, FIELDS, SECTIONS, ValueError, describe_toml, render_toml};
use super::source::Source;
use super::{Config, MAX_CONFIG_FILE_BYTES};

/// Reads the file at `path` and applies its keys to `config`: through a
/// memory map with the `mmap-config` feature (`mapped.rs`), with a read
/// otherwise.
///
/// On a reload an empty file is refused: it is what a reader sees between
/// an editor's truncate and its write, and applying it would put every
/// default in effect. (At start an empty file is a valid, empty config.)
pub(super) fn apply(
    config: &mut Config,
    sources: &mut [Source],
    path: &Path,
    reloading: bool,
) -> Result<()> {
    let unreadable = |err: std::io::Error| {
        config_error(
            None,
            None,
            None,
            ConfigProblem::Unreadable {
                path: path.to_owned(),
                kind: err.kind(),
                reason: err.to_string(),
            },
        )
    };
    let empty = || {
        unreadable(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            "it is empty, as between a truncate and a write; a reload does not apply an empty file",
        ))
    };
    #[cfg(feature = "mmap-config")]
    {
        let file = open_checked(path).map_err(unreadable)?;
        let len = file.metadata().map_err(unreadable)?.len();
        check_size(len).map_err(unreadable)?;
        if len == 0 && reloading {
            return Err(empty());
        }
        if len > 0 {
            let mapped = super::mapped::with_mapped(&file, path, |bytes| {
                apply_bytes(config, sources, path, bytes)
            })
            .map_err(unreadable)?;
            if let Some(applied) = mapped {
                return applied;
            }
        }
    }
    let bytes = read_bounded(path).map_err(unreadable)?;
    if bytes.is_empty() && reloading {
        return Err(empty());
    }
    apply_bytes(config, sources, path, &bytes)
}

/// Applies the file's `bytes`, which must be UTF-8 TOML.
fn apply_bytes(
    config: &mut Config,
    sources: &mut [Source],
    path: &Path,
    bytes: &[u8],
) -> Result<()> {
    let text = match std::str::from_utf8(bytes) {
        Ok(text) => text,
        Err(err) => {
            let offset = err.valid_up_to();
            let line = line_of(&String::from_utf8_lossy(bytes), offset);
            return Err(config_error(
                None,
                None,
                Some(Source::File {
                    path: path.to_owned(),
                    line,
                }),
                ConfigProblem::Syntax {
                    message: "the file is not valid UTF-8".to_owned(),
                },
            ));
        }
    };
    apply_str(config, sources, path, text)
}

/// Opens the config file for reading and checks that it is a regular file
/// (see [`read_bounded`]).
fn open_checked(path: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;

    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY | libc::O_CLOEXEC)
        .open(path)?;
    crate::regular_file::require_regular(&file, "config file")?;
    Ok(file)
}

/// Refuses a file larger than [`MAX_CONFIG_FILE_BYTES`].
fn check_size(len: u64) -> std::io::Result<()> {
    if len > MAX_CONFIG_FILE_BYTES {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!(
                "it is larger than {MAX_CONFIG_FILE_BYTES} bytes, the most a config file may have"
            ),
        ));
    }
    Ok(())
}

/// Reads the whole file at `path`, which must be a regular file (a symlink
/// to one is fine) of at most [`MAX_CONFIG_FILE_BYTES`].
///
/// Opened with `O_NONBLOCK`, so that a FIFO given by mistake is refused
/// at once instead of blocking the start until a writer comes; the type
/// is checked on the opened descriptor, so a file swapped after a check
/// by path cannot slip past. The read stops one byte past the bound, so a
/// file that grows while it is read (or `/dev/zero` behind a symlink,
/// which the type check already refuses) never takes more memory than
/// that.
fn read_bounded(path: &Path) -> std::io::Result<Vec<u8>> {
    use std::io::Read;

    let file = open_checked(path)?;
    let mut bytes = Vec::new();
    file.take(MAX_CONFIG_FILE_BYTES + 1)
        .read_to_end(&mut bytes)?;
    check_size(bytes.len() as u64)?;
    Ok(bytes)
}

/// Applies the TOML document `text`, read from `path`, to `config`.
pub(super) fn apply_str(
    config: &mut Config,
    sources: &mut [Source],
    path: &Path,
    text: &str,
) -> Result<()> {
    let at = |offset: usize| Source::File {
        path: path.to_owned(),
        line: line_of(text, offset),
    };
    let document = DeTable::parse(text).map_err(|err| {
        config_error(
            None,
            None,
            Some(at(err.span().map_or(0, |s| s.start))),
            ConfigProblem::Syntax {
                message: err.message().trim().to_owned(),
            },
        )
    })?;

    // Which written key set each field, so that a key and its alias in the
    // same file are reported instead of one silently winning.
    let mut seen: Vec<Option<String>> = vec![None; FIELDS.len()];
    for (key, value) in in_file_order(document.get_ref()) {
        let name = key.get_ref().as_ref();
        if SECTIONS.contains(&name) {
            let DeValue::Table(table) = value.get_ref() else {
                return Err(config_error(
                    Some(name),
                    Some(render_toml(value.get_ref())),
                    Some(at(value.span().start)),
                    ConfigProblem::WrongType {
                        expected: format!("a table (a `[{name}]` section)"),
                        found: describe_toml(value.get_ref()),
                    },
                ));
            };
            for (inner_key, inner_value) in in_file_order(table) {
                let full = format!("{name}.{}", inner_key.get_ref());
                apply_key(
                    config,
                    sources,
                    &mut seen,
                    &at,
                    &full,
                    inner_key,
                    inner_value,
                )?;
            }
        } else {
            apply_key(config, sources, &mut seen, &at, name, key, value)?;
        }
    }
    Ok(())
}

/// The entries of a table in the order they appear in the file, so that the
/// first problem in the file is the one reported.
fn in_file_order<'a, 'i>(
    table: &'a DeTable<'i>,
) -> Vec<(
    &'a Spanned<std::borrow::Cow<'i, str>>,
    &'a Spanned<DeValue<'i>>,
)> {
    let mut entries: Vec<_> = table.iter().collect();
    entries.sort_by_key(|(key, _)| key.span().start);
    entries
}

fn apply_key(
    config: &mut Config,
    sources: &mut [Source],
    seen: &mut [Option<String>],
    at: &dyn Fn(usize) -> Source,
    written: &str,
    key: &Spanned<std::borrow::Cow<'_, str>>,
    value: &Spanned<DeValue<'_>>,
) -> Result<()> {
    let source = at(value.span().start);
    let Some(index) = schema::lookup(written) else {
        let candidates = schema::file_candidates();
        let suggestion = schema::suggest(written, candidates.iter().copied());
        return Err(config_error(
            Some(written),
            Some(render_toml(value.get_ref())),
            Some(at(key.span().start)),
            ConfigProblem::UnknownKey { suggestion },
        ));
    };
    let field = &FIELDS[index];
    let rendered = render_toml(value.get_ref());
    if let Some(first) = &seen[index] {
        return Err(config_error(
            Some(written),
            Some(rendered),
            Some(source),
            ConfigProblem::Invalid {
                reason: format!(
                    "`{first}` already sets this key (`{}`); keep only one of the two",
                    field.key
                ),
            },
        ));
    }
    seen[index] = Some(written.to_owned());
    (field.parse_toml)(config, value.get_ref()).map_err(|err| {
        let problem = match err {
            ValueError::WrongType(found) => ConfigProblem::WrongType {
                expected: field.expected.to_owned(),
                found,
            },
            ValueError::Invalid(reason) => ConfigProblem::Invalid { reason },
        };
        config_error(Some(written), Some(rendered), Some(source.clone()), problem)
    })?;
    sources[index] = source;
    Ok(())
}

/// The 1-based line of a byte offset.
fn line_of(text: &str, offset: usize) -> usize {
    let end = offset.min(text.len());
    text.as_bytes()[..end]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

/// Writes `config` as a TOML document; see [`Config::to_toml_string`].
pub(super) fn to_toml_string(config: &Config) -> Result<String> {
    for (key, path) in [
        ("pid_file", &config.pid_file),
        ("work_dir", &config.work_dir),
        ("logging.file", &config.logging.file),
    ] {
        if path.as_ref().is_some_and(|p| p.to_str().is_none()) {
            return Err(config_error(
                Some(key),
                path.as_ref().map(|p| format!("{p:?}")),
                None,
                ConfigProblem::Invalid {
                    reason: "is not valid UTF-8, which TOML cannot represent".to_owned(),
                },
            ));
        }
    }
    let mut root = toml::Table::new();
    for field in FIELDS {
        let Some(value) = (field.to_toml)(config) else {
            continue;
        };
        match field.key.split_once('.') {
            None => {
                root.insert(field.key.to_owned(), value);
            }
            Some((section, name)) => {
                let table = root
                    .entry(section.to_owned())
                    .or_insert_with(|| toml::Value::Table(toml::Table::new()));
                if let toml::Value::Table(table) = table {
                    table.insert(name.to_owned(), value);
                }
            }
        }
    }
    toml::to_string(&root).map_err(|err| {
        config_error(
            None,
            None,
            None,
            ConfigProblem::Invalid {
                reason: format!("could not write TOML: {err}"),
            },
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_one_based() {
        let text = "a = 1\nb = 2\n\nc = 3\n";
        assert_eq!(line_of(text, 0), 1);
        assert_eq!(line_of(text, text.find('b').unwrap()), 2);
        assert_eq!(line_of(text, text.find('c').unwrap()), 4);
        assert_eq!(line_of(text, 10_000), 5);
    }
}
