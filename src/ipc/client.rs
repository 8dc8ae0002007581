//! A blocking client for the control socket: what `proc-daemon-ctl` is
//! built on, and what a program or a test uses to talk to a daemon.
//!
//! ```no_run
//! use proc_daemon::ipc::Client;
//!
//! let mut client = Client::connect("/run/my-daemon/control.sock")?;
//! let status = client.status()?;
//! for child in &status.tree {
//!     println!("{} {} restarts={}", child.path, child.state, child.restarts);
//! }
//! client.restart("root/web")?;
//! # Ok::<(), proc_daemon::ipc::ClientError>(())
//! ```

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::protocol::{Command, EventLine, ReloadResult, Reply, Request, Status, VERSION};

/// How long a request waits for its reply by default; `profile` waits for
/// its seconds on top.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// How much longer than the usual timeout an `upgrade` reply is waited
/// for.
const UPGRADE_WAIT: Duration = Duration::from_secs(300);

/// Why a request did not get a successful reply.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// Nothing could be reached at the path.
    #[error("cannot reach the daemon at {}: {source}", .path.display())]
    Unreachable {
        /// The socket's path.
        path: PathBuf,
        /// What `connect` said.
        #[source]
        source: std::io::Error,
    },
    /// The connection failed mid-way, or the daemon closed it without a
    /// reply.
    #[error("the connection to the daemon failed: {0}")]
    Io(#[from] std::io::Error),
    /// The daemon answered with something that is not the protocol.
    #[error("the daemon's reply is not understood: {0}")]
    Protocol(String),
    /// The daemon refused the request, and said why.
    #[error("{0}")]
    Refused(String),
}

impl ClientError {
    /// `proc-daemon-ctl`'s exit code for it: 1 for a refused request, 2
    /// when the daemon could not be reached or understood.
    pub fn exit_code(&self) -> i32 {
        match self {
            ClientError::Refused(_) => 1,
            _ => 2,
        }
    }
}

/// A connection to a daemon's control socket. See the module docs.
#[derive(Debug)]
pub struct Client {
    reader: BufReader<UnixStream>,
    writer: UnixStream,
    timeout: Duration,
}

impl Client {
    /// Connects to the socket at `path`.
    ///
    /// # Errors
    ///
    /// [`ClientError::Unreachable`] when nothing accepts there.
    pub fn connect(path: impl AsRef<Path>) -> Result<Client, ClientError> {
        let path = path.as_ref();
        let stream = UnixStream::connect(path).map_err(|source| ClientError::Unreachable {
            path: path.to_owned(),
            source,
        })?;
        let writer = stream.try_clone()?;
        let client = Client {
            reader: BufReader::new(stream),
            writer,
            timeout: DEFAULT_TIMEOUT,
        };
        client.set_read_timeout(Some(DEFAULT_TIMEOUT))?;
        Ok(client)
    }

    /// How long each request waits for its reply (default
    /// [`DEFAULT_TIMEOUT`]).
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    fn set_read_timeout(&self, timeout: Option<Duration>) -> Result<(), ClientError> {
        self.reader.get_ref().set_read_timeout(timeout)?;
        Ok(())
    }

    /// Sends `command` and returns the reply's `result`.
    ///
    /// # Errors
    ///
    /// [`ClientError::Refused`] with the daemon's words when it refused;
    /// [`ClientError::Io`] or [`ClientError::Protocol`] otherwise.
    pub fn request(&mut self, command: Command) -> Result<serde_json::Value, ClientError> {
        let wait = match &command {
            Command::Profile { seconds, .. } => self.timeout + Duration::from_secs(*seconds),
            // The daemon waits up to `service.upgrade_timeout_ms` for the
            // new process.
            Command::Upgrade { .. } => self.timeout + UPGRADE_WAIT,
            _ => self.timeout,
        };
        self.set_read_timeout(Some(wait))?;
        let mut line = serde_json::to_string(&Request::new(command))
            .map_err(|err| ClientError::Protocol(err.to_string()))?;
        line.push('\n');
        self.writer.write_all(line.as_bytes())?;
        let reply: Reply = self.read_line()?;
        if reply.version != VERSION {
            return Err(ClientError::Protocol(format!(
                "the daemon speaks protocol version {}, this client {VERSION}",
                reply.version
            )));
        }
        if reply.ok {
            Ok(reply.result.unwrap_or(serde_json::Value::Null))
        } else {
            Err(ClientError::Refused(reply.error.unwrap_or_else(|| {
                "the daemon refused the request without saying why".to_owned()
            })))
        }
    }

    fn read_line<T: serde::de::DeserializeOwned>(&mut self) -> Result<T, ClientError> {
        let mut line = String::new();
        if self.reader.read_line(&mut line)? == 0 {
            return Err(ClientError::Io(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "the daemon closed the connection without a reply",
            )));
        }
        serde_json::from_str(&line)
            .map_err(|err| ClientError::Protocol(format!("{err}: {}", line.trim_end())))
    }

    fn typed<T: serde::de::DeserializeOwned>(
        &mut self,
        command: Command,
    ) -> Result<T, ClientError> {
        let value = self.request(command)?;
        serde_json::from_value(value).map_err(|err| ClientError::Protocol(err.to_string()))
    }

    /// The daemon and its supervision tree.
    ///
    /// # Errors
    ///
    /// See [`Client::request`].
    pub fn status(&mut self) -> Result<Status, ClientError> {
        self.typed(Command::Status)
    }

    /// Reloads the configuration, as SIGHUP does, and says what changed.
    /// A configuration that does not build is [`ClientError::Refused`],
    /// with the error.
    ///
    /// # Errors
    ///
    /// See [`Client::request`].
    pub fn reload(&mut self) -> Result<ReloadResult, ClientError> {
        self.typed(Command::Reload)
    }

    /// Begins the daemon's staged shutdown, as SIGTERM does.
    ///
    /// # Errors
    ///
    /// See [`Client::request`].
    pub fn stop(&mut self) -> Result<(), ClientError> {
        self.request(Command::Stop).map(drop)
    }

    /// Restarts the child at `path` (`root/web`) through its supervisor.
    ///
    /// # Errors
    ///
    /// See [`Client::request`].
    pub fn restart(&mut self, path: &str) -> Result<(), ClientError> {
        self.request(Command::Restart {
            path: path.to_owned(),
        })
        .map(drop)
    }

    /// Sets the log level until the next reload.
    ///
    /// # Errors
    ///
    /// See [`Client::request`].
    pub fn log_level(&mut self, level: &str) -> Result<(), ClientError> {
        self.request(Command::LogLevel {
            level: level.to_owned(),
        })
        .map(drop)
    }

    /// Takes a CPU profile for `seconds` (the daemon needs the `profiling`
    /// feature) and returns the path of the pprof file it wrote.
    ///
    /// # Errors
    ///
    /// See [`Client::request`].
    pub fn profile_cpu(&mut self, seconds: u64) -> Result<PathBuf, ClientError> {
        let value = self.request(Command::Profile {
            kind: "cpu".to_owned(),
            seconds,
        })?;
        value
            .get("path")
            .and_then(serde_json::Value::as_str)
            .map(PathBuf::from)
            .ok_or_else(|| ClientError::Protocol(format!("no `path` in {value}")))
    }

    /// Upgrades the daemon: starts `binary` (default: the daemon's own
    /// path) as its successor, with zero dropped connections, and returns
    /// the successor's pid once it is ready.
    ///
    /// # Errors
    ///
    /// See [`Client::request`]; a failed upgrade is
    /// [`ClientError::Refused`], and the daemon goes on serving.
    pub fn upgrade(&mut self, binary: Option<&Path>) -> Result<u32, ClientError> {
        let value = self.request(Command::Upgrade {
            binary: binary.map(|path| path.display().to_string()),
        })?;
        value
            .get("pid")
            .and_then(serde_json::Value::as_u64)
            .and_then(|pid| u32::try_from(pid).ok())
            .ok_or_else(|| ClientError::Protocol(format!("no `pid` in {value}")))
    }

    /// Streams the tree's events. The iterator ends when the daemon closes
    /// the stream (its tree has stopped); dropping it hangs up.
    ///
    /// # Errors
    ///
    /// See [`Client::request`].
    pub fn events(mut self) -> Result<Events, ClientError> {
        self.request(Command::Events)?;
        self.set_read_timeout(None)?;
        Ok(Events { client: self })
    }
}

/// The `events` stream: see [`Client::events`].
#[derive(Debug)]
pub struct Events {
    client: Client,
}

impl Iterator for Events {
    type Item = Result<EventLine, ClientError>;

    fn next(&mut self) -> Option<Self::Item> {
        match self.client.read_line::<EventLine>() {
            Ok(line) => Some(Ok(line)),
            Err(ClientError::Io(err)) if err.kind() == std::io::ErrorKind::UnexpectedEof => None,
            Err(err) => Some(Err(err)),
        }
    }
}
