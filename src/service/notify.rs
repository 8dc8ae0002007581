//! systemd's notification protocol (`sd_notify(3)`): newline-separated
//! `KEY=VALUE` lines in one datagram to the Unix socket at
//! `NOTIFY_SOCKET`; and the environment it comes with.
//!
//! The socket is read from the environment once, so that removing the
//! variable (see the module docs of `service`) does not stop the
//! notifications. The path may be abstract (`@name`), which `sd-notify`
//! 0.5 does not handle; the datagram is sent here, and `sd-notify`'s
//! message names are used for the text.

use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::sync::OnceLock;
use std::time::Duration;

use sd_notify::NotifyState;

/// The variables, as read once.
#[derive(Debug, Default)]
pub(crate) struct Environment {
    pub(crate) notify_socket: Option<NotifySocket>,
    /// `WATCHDOG_USEC`, when `WATCHDOG_PID` is unset or names this
    /// process.
    pub(crate) watchdog: Option<Duration>,
    /// The sockets passed for activation, until taken.
    pub(crate) passed: std::sync::Mutex<std::collections::BTreeMap<String, std::os::fd::OwnedFd>>,
}

static ENVIRONMENT: OnceLock<Environment> = OnceLock::new();

const VARIABLES: [&str; 6] = [
    "NOTIFY_SOCKET",
    "WATCHDOG_USEC",
    "WATCHDOG_PID",
    "LISTEN_FDS",
    "LISTEN_PID",
    "LISTEN_FDNAMES",
];

/// The variables, read the first time this is called (by
/// [`claim_environment`] or by the first daemon's start).
pub(crate) fn environment() -> &'static Environment {
    ENVIRONMENT.get_or_init(|| {
        let env = Environment {
            notify_socket: std::env::var_os("NOTIFY_SOCKET").and_then(NotifySocket::new),
            watchdog: sd_notify::watchdog_enabled().filter(|interval| !interval.is_zero()),
            passed: super::activation::read_passed(),
        };
        remove_if_sound();
        env
    })
}

/// Reads systemd's `NOTIFY_SOCKET`, `WATCHDOG_USEC`, `WATCHDOG_PID` and
/// the socket-activation variables (`LISTEN_FDS`, `LISTEN_PID`,
/// `LISTEN_FDNAMES`) for the daemon, and removes them from the environment so that child
/// processes do not inherit them. Call it first thing in `main`, before
/// an async runtime starts threads; a daemon calls it at start anyway,
/// but by then it usually cannot remove them (see the module docs of
/// `proc_daemon::service`).
///
/// ```no_run
/// fn main() -> proc_daemon::Result<()> {
///     proc_daemon::service::claim_environment();
///     tokio::runtime::Runtime::new()?.block_on(async {
///         let config = proc_daemon::Config::new()?;
///         proc_daemon::Daemon::builder(config).run().await.map(drop)
///     })
/// }
/// ```
pub fn claim_environment() {
    environment();
}

/// Removes [`VARIABLES`] if this process has one thread.
fn remove_if_sound() {
    if !VARIABLES
        .iter()
        .any(|name| std::env::var_os(name).is_some())
    {
        return;
    }
    if thread_count() != Some(1) {
        tracing::debug!(
            "NOTIFY_SOCKET / WATCHDOG_* stay in the environment: other threads are running, and removing a variable is only sound with one (call proc_daemon::service::claim_environment() first in main)"
        );
        return;
    }
    for name in VARIABLES {
        // SAFETY: this process has one thread (checked just above from
        // /proc/self/status, and only this thread could start another
        // meanwhile), so nothing reads or writes the environment
        // concurrently.
        unsafe { std::env::remove_var(name) };
    }
}

/// The number of threads of this process, from `/proc/self/status`.
fn thread_count() -> Option<usize> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("Threads:"))
        .and_then(|n| n.trim().parse().ok())
}

/// Where notifications go.
#[derive(Debug, Clone)]
pub(crate) struct NotifySocket {
    address: SocketAddr,
    /// As the variable said, for a successor (`upgrade.rs`).
    raw: std::ffi::OsString,
    /// For logs.
    shown: String,
}

impl NotifySocket {
    fn new(raw: std::ffi::OsString) -> Option<NotifySocket> {
        let bytes = raw.as_encoded_bytes();
        let address = match bytes.split_first() {
            None => return None,
            Some((b'@', name)) => SocketAddr::from_abstract_name(name),
            Some(_) => SocketAddr::from_pathname(&raw),
        };
        match address {
            Ok(address) => Some(NotifySocket {
                address,
                shown: raw.to_string_lossy().into_owned(),
                raw,
            }),
            Err(err) => {
                tracing::warn!(socket = %raw.to_string_lossy(), %err, "NOTIFY_SOCKET is not a usable socket address; systemd will not be notified");
                None
            }
        }
    }

    /// The variable's value.
    pub(crate) fn raw(&self) -> &std::ffi::OsStr {
        &self.raw
    }

    /// Sends one datagram; a failure is logged, never fatal (systemd may
    /// be gone, for one).
    pub(crate) fn send(&self, message: &str) {
        let sent = UnixDatagram::unbound()
            .and_then(|socket| socket.send_to_addr(message.as_bytes(), &self.address));
        match sent {
            Ok(_) => {
                tracing::debug!(socket = %self.shown, message = %message.trim_end().replace('\n', " "), "notified the service manager")
            }
            Err(err) => {
                tracing::warn!(socket = %self.shown, %err, message = %message.trim_end().replace('\n', " "), "could not notify the service manager")
            }
        }
    }
}

/// `CLOCK_MONOTONIC` in microseconds, for `MONOTONIC_USEC=`.
pub(crate) fn monotonic_usec() -> i128 {
    match NotifyState::monotonic_usec_now() {
        Ok(NotifyState::MonotonicUsec(usec)) => usec,
        _ => 0,
    }
}
