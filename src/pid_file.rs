//! The PID file: a lock that keeps a second instance from starting.
//!
//! ```
//! use proc_daemon::pid_file::PidFile;
//!
//! let dir = tempfile::tempdir()?;
//! let path = dir.path().join("demo.pid");
//! let held = PidFile::acquire(&path)?;
//! assert_eq!(std::fs::read_to_string(&path)?, format!("{}\n", std::process::id()));
//!
//! // A second holder fails at once, naming the file and the holder.
//! let err = PidFile::acquire(&path).unwrap_err();
//! assert!(err.to_string().contains(&std::process::id().to_string()));
//!
//! drop(held); // removes the file
//! assert!(!path.exists());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # How it works, and why
//!
//! A PID file that is only written and read is advisory at best: two
//! instances started together both find no file, or one finds a stale file
//! and cannot tell whether its pid is alive or was reused. So the file is
//! a lock:
//!
//! 1. open (creating it, mode 0644) with close-on-exec, so a child process
//!    the daemon spawns never inherits the lock;
//! 2. `flock(LOCK_EX | LOCK_NB)`: if another process holds it, fail at once
//!    with the pid written in the file;
//! 3. check that the path still names the inode that was locked. The
//!    previous holder removes the file at exit *while holding the lock*; a
//!    process that opened the old file just before that would otherwise
//!    lock an unlinked inode and run next to a third instance that created
//!    a new file. If the path moved, start again;
//! 4. truncate and write the pid, and hold the descriptor (so the lock)
//!    for the life of the process.
//!
//! A stale file (its process died without removing it) carries no lock,
//! because the kernel drops a `flock` with the last descriptor: it is
//! simply taken over.
//!
//! # At exit
//!
//! On a normal exit (every path through [`Daemon::run`](crate::Daemon::run),
//! including a forced shutdown) the file is removed, then the lock is
//! released by closing the descriptor, in that order, for the reason in
//! step 3. At the kill stage the kill signal's handler removes it just
//! before `_exit`. After a crash or SIGKILL the file stays behind with a
//! dead pid and no lock, and the next instance takes it over.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use crate::{Error, Result};

/// How many times [`PidFile::acquire`] starts again when the file is
/// replaced under it. Each retry means another process removed or replaced
/// the file in the instant between open and lock; more than a few in a row
/// means something else keeps replacing it.
const MAX_ATTEMPTS: usize = 8;

/// A locked PID file, held until dropped. See the module docs.
#[derive(Debug)]
pub struct PidFile {
    path: PathBuf,
    file: File,
    identity: (u64, u64),
}

impl PidFile {
    /// Locks `path` and writes this process's pid into it.
    ///
    /// # Errors
    ///
    /// [`Error::PidFileLocked`] if another process holds the lock, with the
    /// pid it wrote; [`Error::Io`] if the file cannot be opened, locked or
    /// written.
    pub fn acquire(path: impl AsRef<Path>) -> Result<PidFile> {
        let path = path.as_ref();
        for _ in 0..MAX_ATTEMPTS {
            let mut file = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .mode(0o644)
                .custom_flags(libc::O_CLOEXEC)
                .open(path)
                .map_err(|err| Error::io("open the PID file", Some(path.to_owned()), err))?;
            if let Err(err) = try_lock(&file) {
                if err.kind() == io::ErrorKind::WouldBlock {
                    return Err(Error::PidFileLocked {
                        path: path.to_owned(),
                        pid: read_pid(&mut file),
                    });
                }
                return Err(Error::io("lock the PID file", Some(path.to_owned()), err));
            }
            let locked = file
                .metadata()
                .map_err(|err| Error::io("inspect the PID file", Some(path.to_owned()), err))?;
            let identity = (locked.dev(), locked.ino());
            match std::fs::metadata(path) {
                Ok(now) if (now.dev(), now.ino()) == identity => {}
                // Removed or replaced between open and lock: start again.
                Ok(_) => continue,
                Err(err) if err.kind() == io::ErrorKind::NotFound => continue,
                Err(err) => {
                    return Err(Error::io(
                        "inspect the PID file",
                        Some(path.to_owned()),
                        err,
                    ));
                }
            }
            write_pid(&mut file)
                .map_err(|err| Error::io("write the PID file", Some(path.to_owned()), err))?;
            return Ok(PidFile {
                path: path.to_owned(),
                file,
                identity,
            });
        }
        Err(Error::io(
            "lock the PID file",
            Some(path.to_owned()),
            io::Error::other(format!(
                "it was replaced {MAX_ATTEMPTS} times while being locked"
            )),
        ))
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Removes the file if the path still names the locked inode. Called
    /// on drop. (The kill stage does the same from its signal handler, with
    /// `stat` and `unlink` only.)
    pub(crate) fn remove(path: &Path, identity: (u64, u64)) {
        if let Ok(now) = std::fs::metadata(path)
            && (now.dev(), now.ino()) == identity
            && let Err(err) = std::fs::remove_file(path)
        {
            tracing::warn!(path = %path.display(), %err, "could not remove the PID file");
        }
    }

    /// The locked inode, for [`PidFile::remove`].
    pub(crate) fn identity(&self) -> (u64, u64) {
        self.identity
    }
}

impl Drop for PidFile {
    fn drop(&mut self) {
        // Remove first, unlock second (when `file` closes): see step 3 in
        // the module docs.
        PidFile::remove(&self.path, self.identity);
        let _ = &self.file;
    }
}

fn try_lock(file: &File) -> io::Result<()> {
    // SAFETY: `flock` takes a file descriptor and flags and touches no
    // memory of ours; the descriptor is valid while `file` is borrowed.
    let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

fn read_pid(file: &mut File) -> Option<u32> {
    let mut text = String::new();
    file.rewind().ok()?;
    file.take(64).read_to_string(&mut text).ok()?;
    text.trim().parse().ok()
}

fn write_pid(file: &mut File) -> io::Result<()> {
    file.set_len(0)?;
    file.rewind()?;
    file.write_all(format!("{}\n", std::process::id()).as_bytes())?;
    file.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stale_file_is_taken_over() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("stale.pid");
        std::fs::write(&path, "999999\n").unwrap();
        let held = PidFile::acquire(&path).unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            format!("{}\n", std::process::id())
        );
        drop(held);
        assert!(!path.exists());
    }

    #[test]
    fn a_held_lock_names_path_and_pid() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("held.pid");
        let _held = PidFile::acquire(&path).unwrap();
        let err = PidFile::acquire(&path).unwrap_err();
        match &err {
            Error::PidFileLocked { path: p, pid } => {
                assert_eq!(p, &path);
                assert_eq!(*pid, Some(std::process::id()));
            }
            other => panic!("unexpected error {other:?}"),
        }
        let text = err.to_string();
        assert!(text.contains(&path.display().to_string()), "{text}");
    }

    #[test]
    fn a_replaced_file_is_not_removed_by_the_old_holder() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("moved.pid");
        let held = PidFile::acquire(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        std::fs::write(&path, "someone else\n").unwrap();
        drop(held);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "someone else\n");
    }

    #[test]
    fn an_unwritable_location_is_an_io_error_naming_the_path() {
        let err = PidFile::acquire("/nonexistent-dir/x.pid").unwrap_err();
        assert!(err.to_string().contains("/nonexistent-dir/x.pid"), "{err}");
    }
}
