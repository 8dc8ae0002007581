//! The control socket: where an operator (or `proc-daemon-ctl`) asks a
//! running daemon for its supervision tree, reloads it, stops it, restarts
//! one child, changes its log level, follows its events and takes a CPU
//! profile, without hunting for its PID.
//!
//! ```no_run
//! use proc_daemon::{Config, Daemon};
//!
//! # async fn demo() -> proc_daemon::Result<()> {
//! // Or `[control] socket = "control.sock"` in the file, or
//! // DAEMON_CONTROL_SOCKET in the environment.
//! let config = Config::builder()
//!     .name("my-daemon")
//!     .control_socket("/run/my-daemon/control.sock")
//!     .build()?;
//! Daemon::builder(config).run().await?;
//! # Ok(())
//! # }
//! ```
//!
//! ```text
//! $ proc-daemon-ctl --socket /run/my-daemon/control.sock status
//! $ proc-daemon-ctl --socket /run/my-daemon/control.sock restart root/web
//! ```
//!
//! # Why a socket, and who may use it
//!
//! Signals carry no arguments and no answer: SIGHUP cannot say that the
//! new file did not parse, and no signal restarts one child. A Unix socket
//! answers, and the file system and the kernel say who is asking:
//!
//! - the socket file has mode 0600 from the moment it exists (see
//!   `socket.rs` for how, without touching the umask);
//! - every connection's peer is checked with `SO_PEERCRED`: the daemon's
//!   own effective uid and root are served; anyone else gets one refusal
//!   line, the connection is closed, and the attempt is logged;
//! - a symlink at the path is refused, as is any other file that is not a
//!   socket; a stale socket (nobody accepts on it) is replaced, and a live
//!   one (another daemon serves it) is an error at start;
//! - requests are limited in size, in time and in concurrent connections
//!   (see `server.rs`); a malformed request gets an error reply.
//!
//! The protocol, line-delimited JSON with a version, is in [`protocol`]'s
//! docs and in docs/operations.md, "The control socket". [`Client`] speaks
//! it.

mod client;
pub mod protocol;
pub(crate) mod server;
pub(crate) mod socket;

use std::path::PathBuf;

pub use client::{Client, ClientError, DEFAULT_TIMEOUT, Events};
pub use protocol::{ChildStatus, Command, Event, EventLine, ReloadResult, Status};

use crate::{Config, Error, Result};

/// `control.socket`, made absolute: a relative path is resolved against
/// `work_dir`, or the current directory when there is none.
pub(crate) fn socket_path(config: &Config) -> Option<PathBuf> {
    let path = config.control.socket.as_ref()?;
    if path.is_absolute() {
        return Some(path.clone());
    }
    let base = match &config.work_dir {
        Some(dir) => dir.clone(),
        None => std::env::current_dir().unwrap_or_else(|_| PathBuf::from(".")),
    };
    Some(std::path::absolute(base.join(path)).unwrap_or_else(|_| base.join(path)))
}

/// Binds the control socket if `control.socket` is set: at start, so that
/// a live daemon at the path, a symlink or a bad directory fail the start
/// with words that name the key.
pub(crate) fn bind(
    config: &Config,
) -> Result<Option<(std::os::unix::net::UnixListener, socket::SocketFile)>> {
    let Some(path) = socket_path(config) else {
        return Ok(None);
    };
    let bound = match crate::service::take_internal(crate::service::upgrade::CONTROL_NAME) {
        // An upgrading daemon handed its socket over.
        Some(fd) => {
            let listener = std::os::unix::net::UnixListener::from(fd);
            socket::SocketFile::adopt(&path, &listener).map(|file| (listener, file))
        }
        None => socket::bind(&path),
    };
    bound.map(Some).map_err(|err| {
        let kind = match &err {
            socket::BindError::Live(_) => std::io::ErrorKind::AddrInUse,
            socket::BindError::Io { source, .. } => source.kind(),
            _ => std::io::ErrorKind::InvalidInput,
        };
        Error::io(
            "set up the control socket (control.socket)",
            None,
            std::io::Error::new(kind, err.to_string()),
        )
    })
}
