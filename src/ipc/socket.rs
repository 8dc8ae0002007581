//! The control socket's file: bound with mode 0600 and no window in which
//! it is wider, a symlink refused, a stale socket taken over, a live one
//! left alone, removed at exit only while it is still this daemon's; and
//! each connection's peer checked.
//!
//! # Binding without a window
//!
//! `bind(2)` creates the socket file with the process's umask applied to
//! 0777. Changing the umask around it is process-wide: it races with every
//! other thread that creates files. Instead the socket is bound inside a
//! fresh directory of mode 0700 next to the target (`.<pid>.ctl/s`),
//! given mode 0600 there, where nobody else can reach it, and renamed into
//! place with `rename(2)`, which is atomic: the final path never holds a
//! socket with a wider mode. The staging directory is removed at once.
//!
//! # Stale or live
//!
//! A socket file already at the path is probed with `connect(2)`: refused
//! means nobody listens (a daemon that died without removing it), and it
//! is replaced; accepted means a live daemon serves it, and the start
//! fails. Two daemons started at the same instant could both find it
//! stale; a PID file (`pid_file`) rules that out, since the second one
//! stops at the PID file before it binds.

use std::io;
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, MetadataExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};

/// The longest path a Unix socket address holds on Linux (`sun_path` is
/// 108 bytes, with a terminating NUL).
const SUN_PATH_MAX: usize = 107;

/// Why the socket could not be made.
#[derive(Debug, thiserror::Error)]
pub(crate) enum BindError {
    #[error("{} is a symlink; the control socket is never created through one", .0.display())]
    Symlink(PathBuf),
    #[error("{} exists and is not a socket; it is left alone", .0.display())]
    NotASocket(PathBuf),
    #[error("a live daemon is serving {}; stop it first, or choose another control.socket", .0.display())]
    Live(PathBuf),
    #[error("{} is {len} bytes long; a Unix socket path must be at most {SUN_PATH_MAX} bytes, and so must the staging path it is bound at first ({})", .path.display(), .staged.display())]
    TooLong {
        path: PathBuf,
        len: usize,
        staged: PathBuf,
    },
    #[error("could not {action} {}: {source}", .path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

fn io_error<'a>(action: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> BindError + 'a {
    move |source| BindError::Io {
        action,
        path: path.to_owned(),
        source,
    }
}

/// The bound socket's file: removed on drop if the path still names the
/// socket this daemon bound (and not one a later daemon put there).
#[derive(Debug)]
pub(crate) struct SocketFile {
    path: PathBuf,
    /// The file's device and inode, as bound.
    identity: (u64, u64),
    /// Handed to an upgrade's successor: not removed at drop.
    handed_over: bool,
}

impl SocketFile {
    /// Its path.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Leaves the file to an upgrade's successor, which serves the same
    /// socket.
    pub(crate) fn hand_over(mut self) {
        self.handed_over = true;
    }

    /// Takes over the socket an upgrading daemon handed over: `listener`
    /// must have been bound for `path` (in its staging directory, see the
    /// module docs), and a socket must be at `path`. Not removed at drop
    /// until the daemon has started ([`SocketFile::own`]): a successor that
    /// fails leaves it to its predecessor.
    pub(crate) fn adopt(path: &Path, listener: &UnixListener) -> Result<SocketFile, BindError> {
        let refuse = |why: String| BindError::Io {
            action: "take over the control socket at",
            path: path.to_owned(),
            source: io::Error::other(why),
        };
        let bound = listener
            .local_addr()
            .map_err(io_error("inspect the handed-over socket for", path))?;
        let staged_for = bound
            .as_pathname()
            .and_then(Path::parent)
            .filter(|dir| {
                dir.file_name()
                    .and_then(|name| name.to_str())
                    .is_some_and(|name| name.starts_with('.') && name.ends_with(".ctl"))
            })
            .and_then(Path::parent);
        let bound_here = bound.as_pathname() == Some(path)
            || staged_for.is_some_and(|dir| Some(dir) == path.parent());
        if !bound_here {
            return Err(refuse(format!(
                "the socket handed over was bound at {:?}, not for this path",
                bound.as_pathname()
            )));
        }
        let meta = std::fs::symlink_metadata(path).map_err(io_error("inspect", path))?;
        if !meta.file_type().is_socket() {
            return Err(refuse("no socket is at the path".to_owned()));
        }
        Ok(SocketFile {
            path: path.to_owned(),
            identity: (meta.dev(), meta.ino()),
            handed_over: true,
        })
    }

    /// The daemon has started: an adopted socket is now this process's
    /// to remove at exit.
    pub(crate) fn own(&mut self) {
        self.handed_over = false;
    }
}

impl Drop for SocketFile {
    fn drop(&mut self) {
        if self.handed_over {
            return;
        }
        match std::fs::symlink_metadata(&self.path) {
            Ok(meta) if (meta.dev(), meta.ino()) == self.identity => {
                if let Err(err) = std::fs::remove_file(&self.path) {
                    tracing::warn!(path = %self.path.display(), %err, "could not remove the control socket");
                }
            }
            Ok(_) => tracing::info!(
                path = %self.path.display(),
                "the control socket's path now names another file; it is left alone"
            ),
            Err(_) => {}
        }
    }
}

/// Binds the control socket at `path` (see the module docs).
pub(crate) fn bind(path: &Path) -> Result<(UnixListener, SocketFile), BindError> {
    let parent = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let private = parent.join(format!(".{}.ctl", std::process::id()));
    let staged = private.join("s");
    if [path, staged.as_path()]
        .iter()
        .any(|p| p.as_os_str().len() > SUN_PATH_MAX)
    {
        return Err(BindError::TooLong {
            path: path.to_owned(),
            len: path.as_os_str().len(),
            staged,
        });
    }
    refuse_what_is_there(path)?;
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(&private)
        .map_err(io_error(
            "create a private directory for the socket at",
            &private,
        ))?;
    let bound = (|| {
        let listener = UnixListener::bind(&staged).map_err(io_error("bind", &staged))?;
        std::fs::set_permissions(&staged, std::fs::Permissions::from_mode(0o600))
            .map_err(io_error("set the mode of", &staged))?;
        let meta = std::fs::symlink_metadata(&staged).map_err(io_error("inspect", &staged))?;
        std::fs::rename(&staged, path).map_err(io_error("move the socket to", path))?;
        Ok((
            listener,
            SocketFile {
                path: path.to_owned(),
                identity: (meta.dev(), meta.ino()),
                handed_over: false,
            },
        ))
    })();
    // The socket is gone from it: renamed, or dropped with the error.
    let _ = std::fs::remove_file(&staged);
    let _ = std::fs::remove_dir(&private);
    bound
}

/// Refuses a symlink, a non-socket and a live socket at `path`; lets a
/// stale socket be replaced.
fn refuse_what_is_there(path: &Path) -> Result<(), BindError> {
    let meta = match std::fs::symlink_metadata(path) {
        Ok(meta) => meta,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(err) => return Err(io_error("inspect", path)(err)),
    };
    if meta.file_type().is_symlink() {
        return Err(BindError::Symlink(path.to_owned()));
    }
    if !meta.file_type().is_socket() {
        return Err(BindError::NotASocket(path.to_owned()));
    }
    match UnixStream::connect(path) {
        Ok(_) => Err(BindError::Live(path.to_owned())),
        Err(err) if err.kind() == io::ErrorKind::ConnectionRefused => {
            tracing::info!(path = %path.display(), "taking over a stale control socket left by a daemon that is gone");
            Ok(())
        }
        Err(err) => Err(io_error("probe the existing socket", path)(err)),
    }
}

/// Who is on the other end of a connection.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Peer {
    pub(crate) uid: u32,
    pub(crate) pid: Option<i32>,
}

/// The peer of `stream`, if it may use the socket: the daemon's own
/// effective uid, or root. Otherwise why not, in words.
pub(crate) fn check_peer(stream: &tokio::net::UnixStream) -> Result<Peer, String> {
    let cred = stream
        .peer_cred()
        .map_err(|err| format!("the peer's credentials cannot be read: {err}"))?;
    let peer = Peer {
        uid: cred.uid(),
        pid: cred.pid(),
    };
    // SAFETY: geteuid(2) takes no arguments and cannot fail.
    let me = unsafe { libc::geteuid() };
    if peer.uid == me || peer.uid == 0 {
        Ok(peer)
    } else {
        Err(format!(
            "uid {} may not use this control socket: only the daemon's uid ({me}) and root may",
            peer.uid
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_socket_is_0600_and_removed_at_drop() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ctl.sock");
        let (listener, file) = bind(&path).unwrap();
        let meta = std::fs::symlink_metadata(&path).unwrap();
        assert!(meta.file_type().is_socket());
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        // The staging directory is gone.
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["ctl.sock"]);
        assert!(matches!(bind(&path), Err(BindError::Live(_))));
        drop(listener);
        drop(file);
        assert!(!path.exists());
    }

    #[test]
    fn a_stale_socket_is_taken_over_and_a_symlink_or_file_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ctl.sock");
        // A socket nobody listens on any more.
        drop(UnixListener::bind(&path).unwrap());
        let (_listener, _file) = bind(&path).unwrap();

        let link = dir.path().join("link.sock");
        std::os::unix::fs::symlink(&path, &link).unwrap();
        assert!(matches!(bind(&link), Err(BindError::Symlink(_))));

        let plain = dir.path().join("plain");
        std::fs::write(&plain, b"data").unwrap();
        assert!(matches!(bind(&plain), Err(BindError::NotASocket(_))));
        assert_eq!(std::fs::read(&plain).unwrap(), b"data");
    }

    #[test]
    fn a_path_too_long_for_a_socket_is_refused_in_words() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x".repeat(100));
        let err = bind(&path).unwrap_err();
        assert!(matches!(err, BindError::TooLong { .. }), "{err}");
        assert!(err.to_string().contains("bytes"), "{err}");
    }

    #[test]
    fn a_socket_replaced_after_binding_is_not_removed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ctl.sock");
        let (listener, file) = bind(&path).unwrap();
        drop(listener);
        std::fs::remove_file(&path).unwrap();
        let _other = UnixListener::bind(&path).unwrap();
        drop(file);
        assert!(path.exists(), "another daemon's socket was removed");
    }
}
