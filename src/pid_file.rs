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
//!    the daemon spawns never inherits the lock, and with `O_NOFOLLOW` and
//!    `O_NOCTTY`, then check that what was opened is a regular file with
//!    one link (see "Misuse" below);
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
//! # Misuse
//!
//! A daemon is often started as root, and its PID file often lives in a
//! directory other users can write to. Whatever sits at the path must not
//! turn the daemon's write into a write somewhere else:
//!
//! - a symbolic link at the path (to a victim file, or dangling, which
//!   would make the daemon create its target) is refused: the file is
//!   opened with `O_NOFOLLOW`, and the error says it is a symlink. The
//!   link and its target are left as they are. (Directories *above* the
//!   file may be symlinks, as `/var/run` is to `/run`; only the last
//!   component is the PID file.)
//! - anything that is not a regular file (a FIFO, a device, a directory)
//!   is refused before anything is written, and the FIFO is opened with
//!   `O_NONBLOCK` so that the check is reached at all;
//! - a regular file with more than one hard link is refused: it is also
//!   another file, which truncating would clobber;
//! - the file is removed at exit only if the path still names the inode
//!   this process locked and wrote (step 3); a path it did not lock is
//!   never removed.
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
    /// Handed to an upgrade's successor: not removed at drop.
    handed_over: bool,
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
                .custom_flags(
                    libc::O_CLOEXEC | libc::O_NOFOLLOW | libc::O_NOCTTY | libc::O_NONBLOCK,
                )
                .open(path)
                .map_err(|err| {
                    Error::io(
                        "open the PID file",
                        Some(path.to_owned()),
                        explain_open_error(err),
                    )
                })?;
            check_regular(&file)
                .map_err(|err| Error::io("use the PID file", Some(path.to_owned()), err))?;
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
                handed_over: false,
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

    /// Takes over the PID file an upgrading daemon handed over: `file` is
    /// its locked descriptor (the same open file, so the lock is already
    /// held). It must be the file at `path`; this process's pid is written.
    pub(crate) fn adopt(path: &Path, file: File) -> Result<PidFile> {
        check_regular(&file)
            .map_err(|err| Error::io("use the handed-over PID file", Some(path.to_owned()), err))?;
        try_lock(&file).map_err(|err| {
            Error::io("lock the handed-over PID file", Some(path.to_owned()), err)
        })?;
        let held = file
            .metadata()
            .map_err(|err| Error::io("inspect the PID file", Some(path.to_owned()), err))?;
        let identity = (held.dev(), held.ino());
        match std::fs::metadata(path) {
            Ok(now) if (now.dev(), now.ino()) == identity => {}
            _ => {
                return Err(Error::io(
                    "take over the PID file",
                    Some(path.to_owned()),
                    io::Error::other("the descriptor handed over is not the file at this path"),
                ));
            }
        }
        let mut file = file;
        write_pid(&mut file)
            .map_err(|err| Error::io("write the PID file", Some(path.to_owned()), err))?;
        // Not removed at drop until the daemon has started
        // ([`PidFile::own`]): a successor that fails must leave the file
        // to its predecessor, which goes on running.
        Ok(PidFile {
            path: path.to_owned(),
            file,
            identity,
            handed_over: true,
        })
    }

    /// The daemon has started: an adopted file is now this process's to
    /// remove at exit.
    pub(crate) fn own(&mut self) {
        self.handed_over = false;
    }

    /// Writes this process's pid again: after an upgrade's successor
    /// failed, having written its own.
    pub(crate) fn rewrite(&mut self) -> io::Result<()> {
        write_pid(&mut self.file)
    }

    /// A duplicate of the locked descriptor, for an upgrade's successor.
    pub(crate) fn duplicate(&self) -> io::Result<std::os::fd::OwnedFd> {
        Ok(self.file.try_clone()?.into())
    }

    /// Leaves the file to an upgrade's successor, which holds the same
    /// lock: it is not removed when this is dropped.
    pub(crate) fn hand_over(mut self) {
        self.handed_over = true;
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
        // the module docs. A successor's file is left to it.
        if !self.handed_over {
            PidFile::remove(&self.path, self.identity);
        }
        let _ = &self.file;
    }
}

/// `O_NOFOLLOW` on a symlink fails with `ELOOP`, whose text ("too many
/// levels of symbolic links") does not say what is wrong.
fn explain_open_error(err: io::Error) -> io::Error {
    if err.raw_os_error() == Some(libc::ELOOP) {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            "it is a symbolic link; a PID file must be a regular file, and the daemon does not follow links there",
        )
    } else {
        err
    }
}

/// Refuses anything but a regular file with one link: see "Misuse" in the
/// module docs.
fn check_regular(file: &File) -> io::Result<()> {
    let metadata = crate::regular_file::require_regular(file, "PID file")?;
    if metadata.nlink() > 1 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "it has {} hard links; a PID file must have one, or writing it would change another file",
                metadata.nlink()
            ),
        ));
    }
    Ok(())
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
    fn a_symlink_is_refused_and_neither_it_nor_its_target_is_touched() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, "keep\n").unwrap();
        let link = dir.path().join("link.pid");
        std::os::unix::fs::symlink(&victim, &link).unwrap();
        let err = PidFile::acquire(&link).unwrap_err().to_string();
        assert!(err.contains("symbolic link"), "{err}");
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "keep\n");
        assert!(std::fs::symlink_metadata(&link).unwrap().is_symlink());

        let dangling = dir.path().join("dangling.pid");
        let target = dir.path().join("target");
        std::os::unix::fs::symlink(&target, &dangling).unwrap();
        assert!(PidFile::acquire(&dangling).is_err());
        assert!(!target.exists(), "the link's target was created");
    }

    #[test]
    fn a_fifo_a_directory_and_a_second_hard_link_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo.pid");
        let status = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(status.success());
        let err = PidFile::acquire(&fifo).unwrap_err().to_string();
        assert!(err.contains("it is a FIFO"), "{err}");

        let directory = dir.path().join("dir.pid");
        std::fs::create_dir(&directory).unwrap();
        assert!(PidFile::acquire(&directory).is_err());
        assert!(directory.is_dir());

        let victim = dir.path().join("victim");
        std::fs::write(&victim, "keep\n").unwrap();
        let hard = dir.path().join("hard.pid");
        std::fs::hard_link(&victim, &hard).unwrap();
        let err = PidFile::acquire(&hard).unwrap_err().to_string();
        assert!(err.contains("2 hard links"), "{err}");
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "keep\n");
        assert!(hard.exists(), "a path it did not create was removed");
    }

    #[test]
    fn an_unwritable_location_is_an_io_error_naming_the_path() {
        let err = PidFile::acquire("/nonexistent-dir/x.pid").unwrap_err();
        assert!(err.to_string().contains("/nonexistent-dir/x.pid"), "{err}");
    }
}
