//! Socket activation: listeners that systemd (or
//! `systemd-socket-activate`) opened and passed, by name, as the
//! `LISTEN_FDS` convention of `sd_listen_fds(3)` says; or, when the
//! process was not activated, listeners bound to the program's own
//! addresses. The same binary runs both ways.
//!
//! ```no_run
//! use proc_daemon::service;
//!
//! # fn demo() -> std::io::Result<()> {
//! // The socket named `http` (FileDescriptorName=http in the .socket
//! // unit), else a fresh one bound to 127.0.0.1:8080.
//! let http = service::tcp_listener("http", "127.0.0.1:8080")?;
//! let listener = tokio::net::TcpListener::from_std(http)?;
//! # Ok(())
//! # }
//! ```
//!
//! A passed socket is checked before it is used: a stream socket that
//! listens, of the family asked for (TCP or Unix); anything else is an
//! error that names it. Each name is taken once. Passed sockets that
//! nobody takes are named in a warning when the daemon starts. The
//! listeners are returned non-blocking (ready for tokio) and
//! close-on-exec.

use std::collections::BTreeMap;
use std::io;
use std::net::{TcpListener, ToSocketAddrs};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::net::UnixListener;
use std::path::Path;
use std::sync::Mutex;

use crate::lock::lock;

/// The sockets passed to this process, by name, until taken: read once
/// with the rest of systemd's environment (`notify::environment`).
fn passed() -> &'static Mutex<BTreeMap<String, OwnedFd>> {
    &super::notify::environment().passed
}

/// Reads `LISTEN_FDS`, `LISTEN_PID` and `LISTEN_FDNAMES`.
pub(crate) fn read_passed() -> Mutex<BTreeMap<String, OwnedFd>> {
    {
        let mut sockets = BTreeMap::new();
        match sd_notify::listen_fds_with_names() {
            Ok(fds) => {
                for (fd, name) in fds {
                    // SAFETY: LISTEN_PID names this process, so the
                    // descriptors from 3 to 3 + LISTEN_FDS were opened for
                    // it by the service manager and nothing else in the
                    // process owns them; each is taken once (this runs
                    // once, and `sd_notify` made them close-on-exec).
                    let owned = unsafe { OwnedFd::from_raw_fd(fd) };
                    if let Some(duplicate) = sockets.insert(name.clone(), owned) {
                        tracing::warn!(
                            name,
                            fd = duplicate.as_raw_fd(),
                            "two passed sockets have this name; the first is closed"
                        );
                    }
                }
            }
            Err(err) => {
                tracing::warn!(%err, "LISTEN_FDS / LISTEN_FDNAMES are not valid; no passed socket is used")
            }
        }
        if !sockets.is_empty() {
            let names: Vec<&str> = sockets.keys().map(String::as_str).collect();
            tracing::info!(?names, "sockets passed by the service manager");
        }
        Mutex::new(sockets)
    }
}

/// The listeners taken so far, by name, and whether the service manager
/// passed each (else it was bound to the program's address). The daemon
/// logs them as it starts: they are usually taken before its log
/// subscriber exists.
///
/// Each keeps a duplicate of its listener's descriptor, which an upgrade
/// hands to the new process under the same name (see `upgrade.rs`).
static TAKEN: Mutex<Vec<Taken>> = Mutex::new(Vec::new());

/// A listener taken by name.
struct Taken {
    name: String,
    passed: bool,
    /// A duplicate of the listener (the same open socket).
    socket: Option<OwnedFd>,
}

/// The names taken, and whether each was passed (else bound).
pub(crate) fn taken() -> Vec<(String, bool)> {
    lock(&TAKEN)
        .iter()
        .map(|taken| (taken.name.clone(), taken.passed))
        .collect()
}

/// Duplicates of every listener taken, by name, for an upgrade.
pub(crate) fn listeners_to_hand_over() -> io::Result<Vec<(String, OwnedFd)>> {
    lock(&TAKEN)
        .iter()
        .filter_map(|taken| Some((taken.name.clone(), taken.socket.as_ref()?)))
        .map(|(name, socket)| Ok((name, socket.try_clone()?)))
        .collect()
}

/// Records a listener taken as `name`.
fn record(name: &str, passed: bool, socket: io::Result<OwnedFd>) {
    let socket = socket
        .inspect_err(|err| tracing::warn!(name, %err, "the listener cannot be duplicated; an upgrade will not hand it over"))
        .ok();
    lock(&TAKEN).push(Taken {
        name: name.to_owned(),
        passed,
        socket,
    });
}

/// Takes the descriptor passed as `name`, whatever it is: for the
/// daemon's own hand-over names (`proc-daemon.*`).
pub(crate) fn take_internal(name: &str) -> Option<OwnedFd> {
    lock(passed()).remove(name)
}

/// The names of the passed sockets not taken yet.
pub fn untaken() -> Vec<String> {
    lock(passed()).keys().cloned().collect()
}

/// Takes the passed socket `name`, if there is one.
fn take(name: &str) -> Option<OwnedFd> {
    lock(passed()).remove(name)
}

/// The TCP listener passed as `name`, or, when none was, one bound to
/// `fallback`. Non-blocking, ready for `tokio::net::TcpListener::from_std`.
///
/// # Errors
///
/// A passed socket `name` that is not a listening TCP socket; or the
/// fallback address cannot be bound.
pub fn tcp_listener(name: &str, fallback: impl ToSocketAddrs) -> io::Result<TcpListener> {
    let (listener, passed) = match take(name) {
        Some(fd) => {
            check(&fd, name, &[libc::AF_INET, libc::AF_INET6], "TCP")?;
            (TcpListener::from(fd), true)
        }
        None => (TcpListener::bind(fallback)?, false),
    };
    listener.set_nonblocking(true)?;
    record(name, passed, listener.try_clone().map(OwnedFd::from));
    Ok(listener)
}

/// The Unix listener passed as `name`, or, when none was, one bound at
/// `fallback` (which must not exist). Non-blocking, ready for
/// `tokio::net::UnixListener::from_std`.
///
/// # Errors
///
/// A passed socket `name` that is not a listening Unix stream socket; or
/// the fallback path cannot be bound.
pub fn unix_listener(name: &str, fallback: impl AsRef<Path>) -> io::Result<UnixListener> {
    let (listener, passed) = match take(name) {
        Some(fd) => {
            check(&fd, name, &[libc::AF_UNIX], "Unix")?;
            (UnixListener::from(fd), true)
        }
        None => (UnixListener::bind(fallback)?, false),
    };
    listener.set_nonblocking(true)?;
    record(name, passed, listener.try_clone().map(OwnedFd::from));
    Ok(listener)
}

/// Refuses a passed socket that is not a listening stream socket of one
/// of `families`.
fn check(fd: &OwnedFd, name: &str, families: &[libc::c_int], kind: &str) -> io::Result<()> {
    let wrong = |what: String| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("the socket passed as `{name}` {what}; a {kind} listener was asked for"),
        )
    };
    let int_option = |option| -> io::Result<libc::c_int> {
        let mut value: libc::c_int = 0;
        let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
        // SAFETY: getsockopt writes at most `len` bytes into `value`, a
        // live local of that size, for a descriptor this process owns.
        let rc = unsafe {
            libc::getsockopt(
                fd.as_raw_fd(),
                libc::SOL_SOCKET,
                option,
                (&raw mut value).cast(),
                &mut len,
            )
        };
        if rc == 0 {
            Ok(value)
        } else {
            Err(io::Error::last_os_error())
        }
    };
    let socket_type =
        int_option(libc::SO_TYPE).map_err(|err| wrong(format!("is not a socket ({err})")))?;
    if socket_type != libc::SOCK_STREAM {
        return Err(wrong("is not a stream socket".to_owned()));
    }
    if int_option(libc::SO_ACCEPTCONN)? == 0 {
        return Err(wrong("does not listen".to_owned()));
    }
    let family = int_option(libc::SO_DOMAIN)?;
    if !families.contains(&family) {
        let is = if family == libc::AF_UNIX {
            "is a Unix socket"
        } else {
            "is a TCP/IP socket"
        };
        return Err(wrong(is.to_owned()));
    }
    Ok(())
}
