//! The control server: the root supervisor's child `control`, which
//! accepts connections on the control socket and answers their requests.
//!
//! Each connection is a task on the daemon's executor. Limits keep a
//! misbehaving client from holding the daemon: [`MAX_CONNECTIONS`] at a
//! time (one more is told so and closed), a request line of at most
//! [`MAX_REQUEST_BYTES`](super::MAX_REQUEST_BYTES) (a longer one is
//! refused and the connection closed), [`REQUEST_TIMEOUT`] to send a
//! request, and [`WRITE_TIMEOUT`] to take each reply or event. A request
//! that does not parse gets an error reply, and the connection stays
//! open. The child is stopped with the tree, after the subsystems (it
//! starts before them), so `events` shows the shutdown: as it stops, each
//! connection finishes the request in hand, an event stream writes the
//! events already queued for it, and then they close ([`CLOSE_GRACE`] at
//! most, then they are aborted).

use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use serde_json::json;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;

use proc_daemon_actors::events::{ChildEvent, ChildState};
use proc_daemon_actors::executor::JoinHandle;
use proc_daemon_actors::prelude::*;
use proc_daemon_actors::supervision::ChildSnapshot;
use proc_daemon_actors::support::EventBus;

use super::protocol::{
    ChildStatus, Command, Event, EventLine, MAX_PROFILE_SECONDS, MAX_REQUEST_BYTES, ReloadResult,
    Reply, Status, VERSION, parse,
};
use super::socket::{Peer, check_peer};
use crate::Config;
use crate::config::LogLevel;
use crate::reload::ReloadOutcome;
use crate::service::{UpgradeError, UpgradeReport};
use crate::shutdown::{DaemonShutdown, ShutdownReason};

/// Connections served at a time.
pub(crate) const MAX_CONNECTIONS: usize = 64;
/// How long a connection may take to send a whole request line (counted
/// from the connection, then from each reply).
pub(crate) const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a client may take to read a reply or an event.
pub(crate) const WRITE_TIMEOUT: Duration = Duration::from_secs(5);
/// How long the connections have to finish when the server stops.
const CLOSE_GRACE: Duration = Duration::from_millis(500);
/// How long a supervisor has to list its children for `status`.
const TREE_TIMEOUT: Duration = Duration::from_secs(2);
/// The name of the control server's child under the root supervisor.
pub(crate) const CHILD_NAME: &str = "control";

/// A boxed future, for [`Hooks::reload`].
pub(crate) type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// Starts an upgrade (`Daemon::upgrade`) and resolves to its outcome.
pub(crate) type UpgradeHook =
    Box<dyn Fn(Option<PathBuf>) -> BoxFuture<Result<UpgradeReport, UpgradeError>> + Send + Sync>;

/// What the server reaches of the daemon.
pub(crate) struct Hooks {
    /// The root supervisor: `status` walks it, `restart` goes through it.
    pub(crate) root: ActorRef<Supervisor>,
    /// Requests a reload, as SIGHUP does, and waits for its outcome.
    pub(crate) reload: Box<dyn Fn() -> BoxFuture<ReloadOutcome> + Send + Sync>,
    pub(crate) shutdown: Arc<DaemonShutdown>,
    pub(crate) events: Arc<EventBus>,
    pub(crate) snapshot: Arc<arc_swap::ArcSwap<Config>>,
    pub(crate) started: Instant,
    /// Where the socket is; profiles are written next to it.
    pub(crate) socket_path: PathBuf,
    /// `Daemon::upgrade`.
    pub(crate) upgrade: UpgradeHook,
    /// Set once an upgrade handed the socket to the new process: this one
    /// stops accepting.
    pub(crate) handed_over: watch::Receiver<bool>,
}

/// The `control` child. See the module docs.
pub(crate) struct ControlServer {
    pub(crate) listener: Arc<std::os::unix::net::UnixListener>,
    pub(crate) hooks: Arc<Hooks>,
    pub(crate) accepting: Option<JoinHandle<()>>,
    /// Tells this incarnation's connections to finish.
    pub(crate) closing: Option<watch::Sender<bool>>,
}

/// Set when the server stops; each connection watches it.
type Closing = watch::Receiver<bool>;

/// Returns once the server is stopping (or is gone).
async fn closed(closing: &mut Closing) {
    // The guard `wait_for` returns is dropped here, not held across the
    // caller's awaits.
    let _ = closing.wait_for(|closing| *closing).await;
}

impl Actor for ControlServer {
    async fn started(&mut self, ctx: &mut Context<Self>) -> Result<(), BoxError> {
        let listener = self.listener.try_clone()?;
        listener.set_nonblocking(true)?;
        let listener = tokio::net::UnixListener::from_std(listener)?;
        let hooks = self.hooks.clone();
        let (closing, closed) = watch::channel(false);
        self.closing = Some(closing);
        self.accepting = Some(ctx.executor().spawn(accept_loop(listener, hooks, closed)));
        Ok(())
    }

    async fn stopped(&mut self, _ctx: &mut Context<Self>, _reason: &ExitReason) {
        if let Some(closing) = self.closing.take() {
            let _ = closing.send(true);
        }
        if let Some(mut accepting) = self.accepting.take()
            && tokio::time::timeout(CLOSE_GRACE, &mut accepting)
                .await
                .is_err()
        {
            accepting.abort();
        }
    }
}

async fn accept_loop(listener: tokio::net::UnixListener, hooks: Arc<Hooks>, mut closing: Closing) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    // Dropped, and every connection aborted with it, when this task is.
    let mut connections = JoinSet::new();
    let mut handed_over = hooks.handed_over.clone();
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = closed(&mut closing) => {
                // Each connection sees it too, and finishes.
                while connections.join_next().await.is_some() {}
                return;
            }
            _ = closed(&mut handed_over) => {
                // The new process serves the socket now; the connections
                // here finish as they would.
                drop(listener);
                while connections.join_next().await.is_some() {}
                return;
            }
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(err) => {
                // Out of descriptors, mostly: wait rather than spin.
                tracing::warn!(%err, "control socket: accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        while connections.try_join_next().is_some() {}
        let peer = match check_peer(&stream) {
            Ok(peer) => peer,
            Err(why) => {
                tracing::warn!(%why, "control socket: connection refused");
                refuse(&stream, &format!("permission denied: {why}"));
                continue;
            }
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            tracing::warn!(
                limit = MAX_CONNECTIONS,
                "control socket: connection limit reached; refusing a connection"
            );
            refuse(
                &stream,
                &format!("busy: {MAX_CONNECTIONS} connections are open; try again"),
            );
            continue;
        };
        let hooks = hooks.clone();
        let closing = closing.clone();
        connections.spawn(async move {
            serve(stream, peer, &hooks, closing).await;
            drop(slot);
        });
    }
}

/// Tells a connection that is not served why, without waiting for it.
fn refuse(stream: &UnixStream, why: &str) {
    let line = reply_line(&Reply::error(why));
    // A fresh socket's buffer takes one short line; if not, the close says
    // enough.
    let _ = stream.try_write(line.as_bytes());
}

fn reply_line<T: serde::Serialize>(value: &T) -> String {
    let mut line = serde_json::to_string(value).expect("protocol values serialize");
    line.push('\n');
    line
}

/// What reading one request line gave.
enum Incoming {
    Line(Vec<u8>),
    /// The client hung up.
    Closed,
    /// Longer than `MAX_REQUEST_BYTES` without a newline.
    TooLong,
    TimedOut,
}

async fn read_request<R: AsyncRead + Unpin>(reader: &mut BufReader<R>) -> Incoming {
    let mut line = Vec::new();
    let limit = u64::try_from(MAX_REQUEST_BYTES).expect("64 KiB fits");
    let read = tokio::time::timeout(
        REQUEST_TIMEOUT,
        (&mut *reader).take(limit).read_until(b'\n', &mut line),
    )
    .await;
    match read {
        Err(_) => Incoming::TimedOut,
        Ok(Err(_)) | Ok(Ok(0)) => Incoming::Closed,
        Ok(Ok(_)) if line.last() == Some(&b'\n') => {
            line.pop();
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            Incoming::Line(line)
        }
        // The limit without a newline; or a last line without one, then
        // the end.
        Ok(Ok(n)) if n >= MAX_REQUEST_BYTES => Incoming::TooLong,
        Ok(Ok(_)) => Incoming::Line(line),
    }
}

/// Serves one connection: request, reply, until it closes.
async fn serve(stream: UnixStream, peer: Peer, hooks: &Hooks, mut closing: Closing) {
    let (read, mut write) = stream.into_split();
    let mut reader = BufReader::new(read);
    loop {
        let incoming = tokio::select! {
            incoming = read_request(&mut reader) => incoming,
            _ = closed(&mut closing) => return,
        };
        let line = match incoming {
            Incoming::Line(line) => line,
            Incoming::Closed => return,
            Incoming::TooLong => {
                let why = format!(
                    "the request is longer than {MAX_REQUEST_BYTES} bytes; closing the connection"
                );
                let _ = send(&mut write, &Reply::error(why)).await;
                return;
            }
            Incoming::TimedOut => {
                let why = format!("no request within {REQUEST_TIMEOUT:?}; closing the connection");
                let _ = send(&mut write, &Reply::error(why)).await;
                return;
            }
        };
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let command = match parse(&line) {
            Ok(command) => command,
            Err(why) => {
                if send(&mut write, &Reply::error(why)).await.is_err() {
                    return;
                }
                continue;
            }
        };
        if command == Command::Events {
            stream_events(reader, write, hooks, closing).await;
            return;
        }
        // What changes the daemon is logged at info, a read at debug (a
        // tool may poll `status`).
        if command == Command::Status {
            tracing::debug!(?command, uid = peer.uid, pid = ?peer.pid, "control socket: request");
        } else {
            tracing::info!(?command, uid = peer.uid, pid = ?peer.pid, "control socket: request");
        }
        let reply = execute(command, peer, hooks).await;
        if send(&mut write, &reply).await.is_err() {
            return;
        }
    }
}

/// Writes one line, within [`WRITE_TIMEOUT`].
async fn send<T: serde::Serialize>(
    write: &mut tokio::net::unix::OwnedWriteHalf,
    value: &T,
) -> std::io::Result<()> {
    let line = reply_line(value);
    match tokio::time::timeout(WRITE_TIMEOUT, write.write_all(line.as_bytes())).await {
        Ok(written) => written,
        Err(_) => Err(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            "the client did not read",
        )),
    }
}

/// `events`: the reply, then an [`EventLine`] per event until the client
/// hangs up (or stops reading for [`WRITE_TIMEOUT`]), or the daemon's
/// tree is gone.
async fn stream_events(
    mut reader: BufReader<tokio::net::unix::OwnedReadHalf>,
    mut write: tokio::net::unix::OwnedWriteHalf,
    hooks: &Hooks,
    mut closing: Closing,
) {
    // Subscribed before the reply: whatever the client does after reading
    // it is seen.
    let mut events = hooks.events.subscribe();
    if send(&mut write, &Reply::ok(json!({ "streaming": true })))
        .await
        .is_err()
    {
        return;
    }
    let mut ignored = [0u8; 256];
    loop {
        tokio::select! {
            event = events.recv() => {
                let Some(event) = event else {
                    return;
                };
                if send(&mut write, &event_line(event)).await.is_err() {
                    return;
                }
            }
            read = reader.read(&mut ignored) => {
                if matches!(read, Ok(0) | Err(_)) {
                    return;
                }
            }
            _ = closed(&mut closing) => {
                // What the tree's shutdown published before this server
                // was stopped is already queued: written, then the end.
                while let Ok(event) = events.try_recv() {
                    if send(&mut write, &event_line(event)).await.is_err() {
                        return;
                    }
                }
                return;
            }
        }
    }
}

fn event_line(
    ChildEvent::StateChanged {
        id,
        name,
        state,
        at,
    }: ChildEvent,
) -> EventLine {
    let (state, reason) = match state {
        ChildState::Failed { reason } => ("failed".to_owned(), Some(reason.to_string())),
        other => (child_state_name(&other).to_owned(), None),
    };
    EventLine {
        version: VERSION,
        event: Event {
            name: name.to_string(),
            id: id.get(),
            state,
            reason,
            at_unix_ms: at
                .duration_since(SystemTime::UNIX_EPOCH)
                .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
        },
    }
}

fn child_state_name(state: &ChildState) -> &'static str {
    match state {
        ChildState::Starting => "starting",
        ChildState::Running => "running",
        ChildState::Stopping => "stopping",
        ChildState::Stopped => "stopped",
        ChildState::Failed { .. } => "failed",
        ChildState::Restarting => "restarting",
        _ => "unknown",
    }
}

fn actor_state_name(state: ActorState) -> &'static str {
    match state {
        ActorState::Starting => "starting",
        ActorState::Running => "running",
        ActorState::Stopping => "stopping",
        ActorState::Restarting => "restarting",
        ActorState::Stopped => "stopped",
        _ => "unknown",
    }
}

async fn execute(command: Command, peer: Peer, hooks: &Hooks) -> Reply {
    match command {
        Command::Status => Reply::ok(to_value(&status(hooks).await)),
        Command::Reload => reload(hooks).await,
        Command::Stop => {
            let who = match peer.pid {
                Some(pid) => format!("the control socket (pid {pid}, uid {})", peer.uid),
                None => format!("the control socket (uid {})", peer.uid),
            };
            let already = hooks.shutdown.is_shutting_down();
            hooks
                .shutdown
                .request(ShutdownReason::Requested(format!("stop from {who}")));
            Reply::ok(json!({ "stopping": true, "already": already }))
        }
        Command::Restart { path } => restart(&path, hooks).await,
        Command::LogLevel { level } => log_level(&level),
        Command::Events => Reply::error("`events` is served by the connection"),
        Command::Profile { kind, seconds } => profile(&kind, seconds, hooks).await,
        Command::Upgrade { binary } => match (hooks.upgrade)(binary.map(PathBuf::from)).await {
            Ok(report) => Reply::ok(json!({
                "pid": report.pid,
                "binary": report.binary,
                "took_ms": u64::try_from(report.took.as_millis()).unwrap_or(u64::MAX),
                "handed_over": report.handed_over,
            })),
            Err(err) => Reply::error(err.to_string()),
        },
    }
}

fn to_value<T: serde::Serialize>(value: &T) -> serde_json::Value {
    serde_json::to_value(value).expect("protocol values serialize")
}

async fn status(hooks: &Hooks) -> Status {
    let config = hooks.snapshot.load();
    let mut tree = Vec::new();
    walk(&hooks.root, "root", &mut tree).await;
    Status {
        name: config.name.clone(),
        pid: std::process::id(),
        uptime_s: hooks.started.elapsed().as_secs_f64(),
        config_source: config.file().map_or_else(
            || "defaults, environment and code".to_owned(),
            |file| file.display().to_string(),
        ),
        log_level: crate::logging::current_override()
            .unwrap_or(config.logging.level)
            .as_str()
            .to_owned(),
        shutting_down: hooks.shutdown.is_shutting_down(),
        tree,
    }
}

/// Appends `supervisor`'s children under `prefix`, depth first.
fn walk<'a>(
    supervisor: &'a ActorRef<Supervisor>,
    prefix: &'a str,
    tree: &'a mut Vec<ChildStatus>,
) -> Pin<Box<dyn Future<Output = ()> + Send + 'a>> {
    Box::pin(async move {
        let children = match tokio::time::timeout(TREE_TIMEOUT, supervisor.children()).await {
            Ok(Ok(children)) => children,
            Ok(Err(_)) => return,
            Err(_) => {
                if let Some(last) = tree.last_mut() {
                    last.note = Some(format!(
                        "its children are not listed: it did not answer within {TREE_TIMEOUT:?} (it may be restarting a child)"
                    ));
                }
                return;
            }
        };
        for ChildSnapshot {
            name,
            id,
            state,
            restarts,
            uptime,
            mailbox_depth,
            supervisor,
            ..
        } in children
        {
            let path = format!("{prefix}/{name}");
            tree.push(ChildStatus {
                path: path.clone(),
                id: id.get(),
                state: actor_state_name(state).to_owned(),
                restarts,
                uptime_s: uptime.map(|u| u.as_secs_f64()),
                mailbox_depth,
                supervisor: supervisor.is_some(),
                note: None,
            });
            if let Some(nested) = supervisor {
                walk(&nested, &path, tree).await;
            }
        }
    })
}

async fn reload(hooks: &Hooks) -> Reply {
    match (hooks.reload)().await {
        ReloadOutcome::Applied {
            changed,
            needs_restart,
        } => Reply::ok(to_value(&ReloadResult {
            outcome: if changed.is_empty() {
                "unchanged".to_owned()
            } else {
                "applied".to_owned()
            },
            changed: changed.into_iter().map(str::to_owned).collect(),
            needs_restart: needs_restart.into_iter().map(str::to_owned).collect(),
        })),
        ReloadOutcome::Failed(err) => Reply::error(format!(
            "the configuration did not reload: {err}; the one in effect is unchanged"
        )),
        ReloadOutcome::ShuttingDown => {
            Reply::error("the daemon is shutting down; it no longer reloads")
        }
    }
}

/// `restart <path>`: walks to the child's supervisor and asks it.
async fn restart(path: &str, hooks: &Hooks) -> Reply {
    let relative = path.strip_prefix("root/").unwrap_or(path);
    let segments: Vec<&str> = relative.split('/').collect();
    if relative.is_empty() || segments.iter().any(|s| s.is_empty()) || relative == "root" {
        return Reply::error(format!(
            "`{path}` does not name a child; a path is as `status` shows it, such as root/web"
        ));
    }
    if segments == [CHILD_NAME] {
        return Reply::error(
            "the control server does not restart itself through its own socket (the connection would end with it)",
        );
    }
    let (name, parents) = segments.split_last().expect("checked non-empty");
    let mut supervisor = hooks.root.clone();
    let mut walked = "root".to_owned();
    for parent in parents {
        let Ok(Ok(children)) = tokio::time::timeout(TREE_TIMEOUT, supervisor.children()).await
        else {
            return Reply::error(format!(
                "{walked} did not list its children within {TREE_TIMEOUT:?}"
            ));
        };
        let Some(child) = children.into_iter().find(|c| c.name == *parent) else {
            return Reply::error(format!("{walked} has no child named `{parent}`"));
        };
        walked = format!("{walked}/{parent}");
        let Some(nested) = child.supervisor else {
            return Reply::error(format!(
                "{walked} is not a supervisor; it has no children to restart"
            ));
        };
        supervisor = nested;
    }
    let full = format!("{walked}/{name}");
    match supervisor.restart_child(*name).await {
        Ok(Ok(())) => Reply::ok(json!({ "restarted": full })),
        Ok(Err(refused)) => Reply::error(format!("{full} was not restarted: {refused}")),
        Err(err) => Reply::error(format!("{walked} did not answer: {err}")),
    }
}

fn log_level(level: &str) -> Reply {
    let parsed: LogLevel = match level.parse() {
        Ok(parsed) => parsed,
        Err(err) => return Reply::error(format!("{err}")),
    };
    if crate::logging::override_level(parsed) {
        tracing::info!(
            level = parsed.as_str(),
            "log level set through the control socket, until the next reload"
        );
        Reply::ok(json!({ "level": parsed.as_str(), "until": "the next reload" }))
    } else {
        Reply::error(
            "the program installed its own tracing subscriber; the daemon cannot change its level",
        )
    }
}

async fn profile(kind: &str, seconds: u64, hooks: &Hooks) -> Reply {
    if kind != "cpu" {
        return Reply::error(format!(
            "`{kind}` profiles are not taken here; the kind is `cpu` (heap profiles: the `heap-profiling` feature writes one at exit)"
        ));
    }
    if !(1..=MAX_PROFILE_SECONDS).contains(&seconds) {
        return Reply::error(format!(
            "a profile lasts 1 to {MAX_PROFILE_SECONDS} seconds, not {seconds}"
        ));
    }
    cpu_profile(seconds, hooks).await
}

#[cfg(feature = "profiling")]
async fn cpu_profile(seconds: u64, hooks: &Hooks) -> Reply {
    let profiler = match crate::profiling::CpuProfiler::start() {
        Ok(profiler) => profiler,
        Err(err) => return Reply::error(format!("the CPU profiler did not start: {err}")),
    };
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    let bytes = match profiler.stop_to_protobuf() {
        Ok(bytes) => bytes,
        Err(err) => return Reply::error(format!("the profile was not encoded: {err}")),
    };
    let path = profile_path(hooks);
    match write_private(&path, &bytes) {
        Ok(()) => Reply::ok(json!({ "path": path, "seconds": seconds, "bytes": bytes.len() })),
        Err(err) => Reply::error(format!("could not write {}: {err}", path.display())),
    }
}

#[cfg(not(feature = "profiling"))]
async fn cpu_profile(_seconds: u64, _hooks: &Hooks) -> Reply {
    Reply::error(
        "this daemon was built without the `profiling` feature; it cannot take a CPU profile",
    )
}

/// `<socket's directory>/<name>-cpu-<pid>-<unix seconds>.pb`.
#[cfg_attr(not(feature = "profiling"), allow(dead_code))]
fn profile_path(hooks: &Hooks) -> PathBuf {
    let dir = hooks
        .socket_path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let name = hooks.snapshot.load().name.replace('/', "_");
    dir.join(format!("{name}-cpu-{}-{now}.pb", std::process::id()))
}

/// Writes a new file of mode 0600 (a profile shows the program's code).
#[cfg_attr(not(feature = "profiling"), allow(dead_code))]
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(bytes)
}
