//! The config file watcher (`hot_reload = true`, feature `config-watch`):
//! an edit to the file asks the root actor for a reload, as SIGHUP does.
//!
//! # Why the directory, and why the content
//!
//! A watch on the file itself follows an inode, and editors and
//! deployment tools replace the inode: `sed -i` and vim write a new file
//! and rename it over the old one, and a Kubernetes ConfigMap volume
//! swaps a symlink (`daemon.toml -> ..data/daemon.toml`, where `..data`
//! is renamed over atomically). proc-daemon 1.1.3 watched the file and
//! lost the watch at the first rename. This watcher watches the file's
//! directory (and, when the file is a symlink, the directory it resolves
//! to), so no replacement of the file can end the watch, and it decides
//! by the file's content, read by name after each burst of events: an
//! event in the directory that left the content as it was (an editor's
//! swap file, another file) asks for nothing.
//!
//! # Settling, and half-written files
//!
//! A burst of events (truncate, then write; create, then rename) is
//! settled first: the watcher waits until the directory has been quiet
//! for [`SETTLE`], then reads the file once. A file that is missing, or
//! empty, is not a reload: a delete-then-recreate or a truncate-then-write
//! is caught in its gap, and the old configuration stays until the content
//! arrives. (An empty file is a valid TOML document, which would put every
//! default in effect; the reload itself refuses an empty file too, since
//! it reads the file again and can land in the same gap.) A file caught half-written that does
//! not parse is refused by the reload like any invalid file, and the rest
//! of the write, a new event, brings the next reload.
//!
//! # Why not notify-debouncer-full
//!
//! Its debouncer thread wakes every quarter of its timeout for the life
//! of the watcher, to look for events to release: with the 10 ms settle
//! that the write-to-snapshot target needs, 400 wake-ups a second in a
//! daemon that is otherwise idle. Its strength, following renames by file
//! id, is not needed when the file is read by name. Here the settling
//! thread blocks on the event channel and runs only when the directory
//! changes.

use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::Duration;

use notify::{RecursiveMode, Watcher};

use crate::config::MAX_CONFIG_FILE_BYTES;

/// How long the directory must be quiet before the file is read.
pub const SETTLE: Duration = Duration::from_millis(10);

/// A running watcher. Dropping it ends the watch and its thread.
pub(crate) struct ConfigWatch {
    _watcher: notify::RecommendedWatcher,
}

impl std::fmt::Debug for ConfigWatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ConfigWatch")
    }
}

/// Watches `file` and calls `changed` (on the watcher's thread) after each
/// settled burst of events that changed its content.
///
/// # Errors
///
/// When the OS watch cannot be set up (no inotify instances left, say) or
/// the thread cannot start, in words that name the file.
pub(crate) fn watch(
    file: &Path,
    changed: impl Fn() + Send + 'static,
) -> Result<ConfigWatch, String> {
    let directory = parent_of(file);
    let (events, received) = mpsc::channel();
    let mut watcher = notify::recommended_watcher(events)
        .map_err(|err| format!("could not start watching {}: {err}", file.display()))?;
    let mut directories = vec![directory];
    if let Ok(resolved) = std::fs::canonicalize(file) {
        let resolved_dir = parent_of(&resolved);
        if !directories.contains(&resolved_dir) {
            directories.push(resolved_dir);
        }
    }
    for dir in &directories {
        watcher
            .watch(dir, RecursiveMode::NonRecursive)
            .map_err(|err| {
                format!(
                    "could not watch {} (for {}): {err}",
                    dir.display(),
                    file.display()
                )
            })?;
    }
    let file = file.to_owned();
    let shown = file.display().to_string();
    let mut last = read_content(&file);
    std::thread::Builder::new()
        .name("config-watch".into())
        .spawn(move || {
            // `recv` fails once the watcher (the sender) is dropped.
            while received.recv().is_ok() {
                // Settle: wait for a quiet SETTLE.
                loop {
                    match received.recv_timeout(SETTLE) {
                        Ok(_) => continue,
                        Err(RecvTimeoutError::Timeout) => break,
                        Err(RecvTimeoutError::Disconnected) => return,
                    }
                }
                match read_content(&file) {
                    Some(content) if !content.is_empty() && Some(&content) != last.as_ref() => {
                        last = Some(content);
                        changed();
                    }
                    Some(content) if content.is_empty() => {
                        tracing::debug!(file = %file.display(), "the config file is empty; waiting for its content");
                    }
                    None => {
                        tracing::debug!(file = %file.display(), "the config file is not there; waiting for it");
                    }
                    _ => {}
                }
            }
        })
        .map_err(|err| format!("could not start the config watcher's thread: {err}"))?;
    tracing::info!(file = %shown, directories = ?directories, "watching the config file");
    Ok(ConfigWatch { _watcher: watcher })
}

/// The directory that holds `file` (`.` for a bare name).
fn parent_of(file: &Path) -> PathBuf {
    match file.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_owned(),
        _ => PathBuf::from("."),
    }
}

/// The file's bytes (at most the config size limit, plus one to tell an
/// oversized file apart), or `None` if it cannot be read now.
fn read_content(file: &Path) -> Option<Vec<u8>> {
    use std::io::Read;
    let mut content = Vec::new();
    std::fs::File::open(file)
        .ok()?
        .take(MAX_CONFIG_FILE_BYTES + 1)
        .read_to_end(&mut content)
        .ok()?;
    Some(content)
}
