//! The control protocol: one JSON object per line each way, each with the
//! protocol's version.
//!
//! ```text
//! > {"version":1,"command":"status"}
//! < {"version":1,"ok":true,"result":{"name":"demo","pid":4242,...,"tree":[...]}}
//! > {"version":1,"command":"restart","path":"root/web"}
//! < {"version":1,"ok":true,"result":{"restarted":"root/web"}}
//! > {"version":1,"command":"nonsense"}
//! < {"version":1,"ok":false,"error":"not a request: unknown variant `nonsense`, ..."}
//! ```
//!
//! A request is answered by one reply line, `ok` true with a `result`, or
//! `ok` false with an `error` in words; the connection stays open for the
//! next request. `events` is the exception: after its reply, the daemon
//! writes one [`EventLine`] per event until the client hangs up.
//! docs/operations.md, "The control socket", has every request and reply.

use serde::{Deserialize, Serialize};

/// The protocol's version. A request with another one is refused with an
/// error that names both.
pub const VERSION: u32 = 1;

/// The longest request line, in bytes, newline included. A longer one is
/// refused and the connection closed.
pub const MAX_REQUEST_BYTES: usize = 64 * 1024;

/// One request: a [`Command`] and the protocol version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request {
    /// [`VERSION`].
    pub version: u32,
    /// What is asked.
    #[serde(flatten)]
    pub command: Command,
}

impl Request {
    /// `command` in this version of the protocol.
    pub fn new(command: Command) -> Request {
        Request {
            version: VERSION,
            command,
        }
    }
}

/// What a request asks for. On the wire, its name is the `command` field
/// (`"log-level"`), and its fields sit next to it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "command", rename_all = "kebab-case", deny_unknown_fields)]
#[non_exhaustive]
pub enum Command {
    /// The supervision tree and the daemon's identity: a [`Status`].
    Status,
    /// Reads the configuration again, as SIGHUP does: a [`ReloadResult`].
    Reload,
    /// Stops the daemon, as SIGTERM does (the staged shutdown).
    Stop,
    /// Restarts one child through its supervisor.
    Restart {
        /// The child's path, as `status` shows it (`root/web`); the
        /// leading `root/` may be left out.
        path: String,
    },
    /// Sets the log level until the next reload.
    LogLevel {
        /// `trace`, `debug`, `info`, `warn` or `error`.
        level: String,
    },
    /// Streams the supervision tree's events until the client hangs up.
    Events,
    /// Replaces the daemon's process with a new one, with zero dropped
    /// connections (`Daemon::upgrade`); the reply names the new pid.
    Upgrade {
        /// The executable to start; by default the daemon's own path,
        /// read again from disk.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        binary: Option<String>,
    },
    /// Takes a profile and writes it to a file: its path is the reply.
    Profile {
        /// What to profile: `cpu` (the only kind).
        kind: String,
        /// For how long, 1 to [`MAX_PROFILE_SECONDS`].
        seconds: u64,
    },
}

/// The longest profile `profile` takes, in seconds.
pub const MAX_PROFILE_SECONDS: u64 = 300;

/// The reply to a request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reply {
    /// [`VERSION`].
    pub version: u32,
    /// Whether the request was carried out.
    pub ok: bool,
    /// What it produced, when it was (its shape depends on the command).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<serde_json::Value>,
    /// Why not, in words, when it was not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Reply {
    /// A successful reply carrying `result`.
    pub fn ok(result: serde_json::Value) -> Reply {
        Reply {
            version: VERSION,
            ok: true,
            result: Some(result),
            error: None,
        }
    }

    /// A refusal, with why.
    pub fn error(message: impl Into<String>) -> Reply {
        Reply {
            version: VERSION,
            ok: false,
            result: None,
            error: Some(message.into()),
        }
    }
}

/// The `result` of `status`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Status {
    /// The daemon's `name`.
    pub name: String,
    /// Its process id.
    pub pid: u32,
    /// Seconds since it started.
    pub uptime_s: f64,
    /// Where its configuration came from: the file's path, or
    /// `defaults, environment and code` when it was not read from a file.
    pub config_source: String,
    /// The log level in effect (after a `log-level`, that one).
    pub log_level: String,
    /// Whether the staged shutdown has begun.
    pub shutting_down: bool,
    /// Every child of the supervision tree, depth first, in start order.
    pub tree: Vec<ChildStatus>,
}

/// One child in a [`Status`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ChildStatus {
    /// Its path from the root supervisor: `root/web`, `root/pool/w1`.
    pub path: String,
    /// Its identity, the same across restarts.
    pub id: u64,
    /// `starting`, `running`, `stopping`, `restarting` or `stopped`.
    pub state: String,
    /// Restarts so far.
    pub restarts: u64,
    /// Seconds its current incarnation has run; absent when none runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uptime_s: Option<f64>,
    /// Messages waiting in its mailbox.
    pub mailbox_depth: usize,
    /// Whether it is a supervisor (its children follow it in the tree).
    pub supervisor: bool,
    /// Why its children are missing, when it is a supervisor that did not
    /// answer in time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// The `result` of `reload`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ReloadResult {
    /// `applied` (a key changed) or `unchanged`.
    pub outcome: String,
    /// The keys whose value in effect changed.
    pub changed: Vec<String>,
    /// Keys whose new value waits for a restart.
    pub needs_restart: Vec<String>,
}

/// One line of the `events` stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventLine {
    /// [`VERSION`].
    pub version: u32,
    /// The event.
    pub event: Event,
}

/// A supervision tree event, as the `events` stream carries it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Event {
    /// The child's name under its supervisor.
    pub name: String,
    /// The child's identity.
    pub id: u64,
    /// `starting`, `running`, `stopping`, `stopped`, `failed` or
    /// `restarting`.
    pub state: String,
    /// Why, for `failed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// When, in milliseconds since the Unix epoch.
    pub at_unix_ms: u64,
}

/// Parses one request line, or says in words what is wrong with it.
pub(crate) fn parse(line: &[u8]) -> Result<Command, String> {
    let example =
        r#"a request is one JSON object on one line, such as {"version":1,"command":"status"}"#;
    let value: serde_json::Value =
        serde_json::from_slice(line).map_err(|err| format!("not a request: {err}; {example}"))?;
    match value.get("version") {
        Some(version) if version.as_u64() == Some(u64::from(VERSION)) => {}
        Some(version) => {
            return Err(format!(
                "protocol version {version} is not spoken here; this daemon speaks version {VERSION}"
            ));
        }
        None => return Err(format!("the request has no `version`; {example}")),
    }
    let request: Request = serde_json::from_value(value).map_err(|err| {
        format!("not a request: {err}; the commands are status, reload, stop, restart, log-level, events, profile and upgrade")
    })?;
    Ok(request.command)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_round_trips_with_its_fields_beside_the_command() {
        let request = Request::new(Command::Restart {
            path: "root/web".into(),
        });
        let line = serde_json::to_string(&request).unwrap();
        assert_eq!(
            line,
            r#"{"version":1,"command":"restart","path":"root/web"}"#
        );
        assert_eq!(parse(line.as_bytes()), Ok(request.command));
        assert_eq!(
            parse(br#"{"version":1,"command":"log-level","level":"debug"}"#),
            Ok(Command::LogLevel {
                level: "debug".into()
            })
        );
    }

    #[test]
    fn bad_requests_are_refused_in_words() {
        let unknown = parse(br#"{"version":1,"command":"nonsense"}"#).unwrap_err();
        assert!(unknown.contains("nonsense"), "{unknown}");
        let version = parse(br#"{"version":7,"command":"status"}"#).unwrap_err();
        assert!(version.contains("version 7"), "{version}");
        let missing = parse(br#"{"command":"status"}"#).unwrap_err();
        assert!(missing.contains("no `version`"), "{missing}");
        let field = parse(br#"{"version":1,"command":"restart"}"#).unwrap_err();
        assert!(field.contains("path"), "{field}");
        let json = parse(b"{not json").unwrap_err();
        assert!(json.starts_with("not a request"), "{json}");
    }
}
