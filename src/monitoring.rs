//! The monitoring endpoint: `/metrics`, `/livez`, `/readyz` and, with the
//! `profiling` feature, `/debug/pprof/profile`, served over HTTP/1.1 at
//! `monitoring.http_listen`.
//!
//! # Why it looks like this
//!
//! - **A supervised child that stops last.** The server is the root
//!   supervisor's first child, so the staged shutdown (reverse start
//!   order) stops it after every subsystem: from the moment the shutdown
//!   begins until the tree has drained, `/readyz` answers 503, which is
//!   what a load balancer needs to stop sending traffic first.
//! - **Bound at start.** The address is bound while the daemon is built,
//!   so an address in use is an error from `build`/`run`, naming the key,
//!   not a log line from a background task.
//! - **Nothing heavy on a worker.** A scrape renders on the executor's
//!   blocking pool: 10,000 actors' series are megabytes of text.
//! - **Bounded clients.** At most [`MAX_CONNECTIONS`] at once (more are
//!   closed at accept), [`HEADER_TIMEOUT`] to send a request's headers,
//!   and a lifetime per connection: after [`CONNECTION_LIFETIME`] a
//!   connection finishes the request it is serving (within
//!   [`CONNECTION_GRACE`]) and closes, so that a scraper's keep-alive
//!   connection is never cut in the middle of a scrape. A slow or abusive
//!   client costs the daemon a connection slot, never a worker.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use proc_daemon_actors::ActorState;
use proc_daemon_actors::executor::JoinHandle;
use proc_daemon_actors::prelude::*;

use crate::Config;
use crate::error::{Error, Result};
use crate::metrics::runtime::{RuntimeView, render};
use crate::resources::ResourceTracker;
use crate::shutdown::{DaemonShutdown, ShutdownReason};

/// Connections served at once; more are closed as they are accepted.
pub(crate) const MAX_CONNECTIONS: usize = 64;
/// Time a client has to send a request's headers.
pub(crate) const HEADER_TIMEOUT: Duration = Duration::from_secs(5);
/// Time after which a connection takes no further request.
pub(crate) const CONNECTION_LIFETIME: Duration = Duration::from_secs(90);
/// Time a connection past its lifetime has to finish the request it is
/// serving (a CPU profile takes up to [`MAX_PROFILE_SECONDS`]).
pub(crate) const CONNECTION_GRACE: Duration = Duration::from_secs(MAX_PROFILE_SECONDS + 10);
/// The longest CPU profile `/debug/pprof/profile` takes.
pub(crate) const MAX_PROFILE_SECONDS: u64 = 60;
/// How long `/livez` waits for the root actor's answer.
pub(crate) const PING_TIMEOUT: Duration = Duration::from_secs(1);

/// `/livez` pings the root actor, because a root actor that does not
/// answer cannot shut the daemon down either. (Defined with the service
/// manager's watchdog, which asks the same, and handled in `daemon::root`.)
pub(crate) use crate::service::Ping;

/// Sends a [`Ping`] to the root actor; resolves to whether it answered.
pub(crate) type PingRoot = Box<
    dyn Fn() -> std::pin::Pin<Box<dyn std::future::Future<Output = bool> + Send>> + Send + Sync,
>;

pub(crate) use crate::service::StateOf;

/// What the probes and `/metrics` read.
pub(crate) struct ProbeState {
    pub(crate) view: RuntimeView,
    pub(crate) shutdown: Arc<DaemonShutdown>,
    pub(crate) ping_root: PingRoot,
    /// The subsystems registered before the daemon started, for
    /// readiness: set once they have all been added.
    pub(crate) initial: OnceLock<Vec<(String, StateOf)>>,
}

/// Binds `addr` for the endpoint.
pub(crate) fn bind(addr: SocketAddr) -> Result<std::net::TcpListener> {
    let listener = std::net::TcpListener::bind(addr).map_err(|err| {
        Error::io(
            format!("listen on monitoring.http_listen = \"{addr}\""),
            None,
            err,
        )
    })?;
    listener
        .set_nonblocking(true)
        .map_err(|err| Error::io("set the monitoring listener non-blocking", None, err))?;
    Ok(listener)
}

/// The `monitoring` child: serves the endpoint, if one is configured, and
/// samples resources, if tracked. Each incarnation serves the one listener
/// bound at start; stopping it closes every connection.
pub(crate) struct MonitoringServer {
    pub(crate) listener: Option<Arc<std::net::TcpListener>>,
    pub(crate) state: Arc<ProbeState>,
    pub(crate) tracker: Option<ResourceTracker>,
    pub(crate) snapshot: Arc<arc_swap::ArcSwap<Config>>,
    pub(crate) tasks: Vec<JoinHandle<()>>,
}

impl Actor for MonitoringServer {
    async fn started(&mut self, ctx: &mut Context<Self>) -> std::result::Result<(), BoxError> {
        if let Some(listener) = &self.listener {
            let listener = tokio::net::TcpListener::from_std(listener.try_clone()?)?;
            let state = self.state.clone();
            self.tasks
                .push(ctx.executor().spawn(accept_loop(listener, state)));
        }
        if let Some(tracker) = self.tracker.clone() {
            let snapshot = self.snapshot.clone();
            self.tasks.push(ctx.executor().spawn(async move {
                // `metrics_interval_ms` and `track_resources` are live: read
                // at every tick.
                loop {
                    let config = snapshot.load();
                    tokio::time::sleep(config.metrics_interval()).await;
                    if snapshot.load().monitoring.track_resources {
                        tracker.sample();
                    }
                }
            }));
        }
        Ok(())
    }

    async fn stopped(&mut self, _ctx: &mut Context<Self>, _reason: &ExitReason) {
        for task in self.tasks.drain(..) {
            task.abort();
        }
    }
}

async fn accept_loop(listener: tokio::net::TcpListener, state: Arc<ProbeState>) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    // Dropped (and every connection aborted) when this task is.
    let mut connections = JoinSet::new();
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _peer)) => stream,
            Err(err) => {
                // Out of descriptors, mostly: wait rather than spin.
                tracing::warn!(%err, "monitoring endpoint: accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        while connections.try_join_next().is_some() {}
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            tracing::debug!(
                "monitoring endpoint: connection limit reached; closing a new connection"
            );
            continue;
        };
        let state = state.clone();
        connections.spawn(async move {
            let service = hyper::service::service_fn(move |request| {
                let state = state.clone();
                async move { Ok::<_, Infallible>(respond(request, &state).await) }
            });
            let connection = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .serve_connection(TokioIo::new(stream), service);
            let mut connection = std::pin::pin!(connection);
            tokio::select! {
                _ = connection.as_mut() => {}
                () = tokio::time::sleep(CONNECTION_LIFETIME) => {
                    connection.as_mut().graceful_shutdown();
                    let _ = tokio::time::timeout(CONNECTION_GRACE, connection).await;
                }
            }
            drop(slot);
        });
    }
}

fn text(status: StatusCode, body: impl Into<Bytes>) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(body.into()));
    *response.status_mut() = status;
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

async fn respond(request: Request<Incoming>, state: &Arc<ProbeState>) -> Response<Full<Bytes>> {
    if request.method() != Method::GET && request.method() != Method::HEAD {
        let mut response = text(StatusCode::METHOD_NOT_ALLOWED, "only GET is served here\n");
        response
            .headers_mut()
            .insert("allow", HeaderValue::from_static("GET, HEAD"));
        return response;
    }
    match request.uri().path() {
        "/metrics" => metrics(state).await,
        "/livez" => livez(state).await,
        "/readyz" => readyz(state),
        "/debug/pprof/profile" => profile(request.uri().query(), state).await,
        path => text(
            StatusCode::NOT_FOUND,
            format!(
                "no endpoint at {path}: try /metrics, /livez, /readyz{}\n",
                if cfg!(feature = "profiling") {
                    " or /debug/pprof/profile?seconds=N"
                } else {
                    ""
                }
            ),
        ),
    }
}

async fn metrics(state: &Arc<ProbeState>) -> Response<Full<Bytes>> {
    let view = state.view.clone();
    match state
        .view
        .executor
        .spawn_blocking(move || render(&view))
        .await
    {
        Ok(body) => {
            let mut response = text(StatusCode::OK, body);
            response.headers_mut().insert(
                CONTENT_TYPE,
                HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
            );
            response
        }
        Err(err) => text(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("rendering the metrics failed: {err}\n"),
        ),
    }
}

/// Live: the root supervisor has not given up, and the root actor
/// answers within [`PING_TIMEOUT`].
async fn livez(state: &Arc<ProbeState>) -> Response<Full<Bytes>> {
    if let Some(ShutdownReason::Escalated(why)) = state.shutdown.reason() {
        return text(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not live: the root supervisor gave up: {why}\n"),
        );
    }
    if state.shutdown.root_giving_up.load(Ordering::Acquire) {
        return text(
            StatusCode::SERVICE_UNAVAILABLE,
            "not live: the root supervisor exceeded its restart intensity and is stopping its children\n",
        );
    }
    match tokio::time::timeout(PING_TIMEOUT, (state.ping_root)()).await {
        Ok(true) => text(StatusCode::OK, "live\n"),
        Ok(false) => text(
            StatusCode::SERVICE_UNAVAILABLE,
            "not live: the root actor has stopped\n",
        ),
        Err(_) => text(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not live: the root actor did not answer within {PING_TIMEOUT:?}\n"),
        ),
    }
}

/// Ready: every subsystem registered at start runs, and no shutdown has
/// begun.
fn readyz(state: &Arc<ProbeState>) -> Response<Full<Bytes>> {
    if state.shutdown.token.is_cancelled() {
        return text(
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready: the daemon is shutting down\n",
        );
    }
    let Some(initial) = state.initial.get() else {
        return text(
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready: subsystems are still being added\n",
        );
    };
    let waiting: Vec<String> = initial
        .iter()
        .filter_map(|(name, state)| {
            let now = state();
            (now != ActorState::Running).then(|| format!("{name} ({now:?})"))
        })
        .collect();
    if waiting.is_empty() {
        text(StatusCode::OK, "ready\n")
    } else {
        text(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: not running yet: {}\n", waiting.join(", ")),
        )
    }
}

/// `?seconds=N`: how long to profile, 1 to [`MAX_PROFILE_SECONDS`]
/// (default 30, as Go's `net/http/pprof`).
#[cfg_attr(not(feature = "profiling"), allow(dead_code))]
pub(crate) fn profile_seconds(query: Option<&str>) -> std::result::Result<u64, String> {
    let mut seconds = 30;
    for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        match pair.split_once('=') {
            Some(("seconds", value)) => {
                seconds = value
                    .parse::<u64>()
                    .ok()
                    .filter(|s| (1..=MAX_PROFILE_SECONDS).contains(s))
                    .ok_or_else(|| {
                        format!(
                            "seconds must be a whole number from 1 to {MAX_PROFILE_SECONDS}, not {value:?}"
                        )
                    })?;
            }
            _ => {
                return Err(format!(
                    "unknown query parameter {pair:?}; the one known is seconds=N"
                ));
            }
        }
    }
    Ok(seconds)
}

#[cfg(feature = "profiling")]
async fn profile(query: Option<&str>, state: &Arc<ProbeState>) -> Response<Full<Bytes>> {
    let seconds = match profile_seconds(query) {
        Ok(seconds) => seconds,
        Err(message) => return text(StatusCode::BAD_REQUEST, format!("{message}\n")),
    };
    let profiler = match crate::profiling::CpuProfiler::start() {
        Ok(profiler) => profiler,
        Err(err) => return text(StatusCode::CONFLICT, format!("{err}\n")),
    };
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    match state
        .view
        .executor
        .spawn_blocking(move || profiler.stop_to_protobuf())
        .await
    {
        Ok(Ok(bytes)) => {
            let mut response = Response::new(Full::new(Bytes::from(bytes)));
            response.headers_mut().insert(
                CONTENT_TYPE,
                HeaderValue::from_static("application/octet-stream"),
            );
            response.headers_mut().insert(
                "content-disposition",
                HeaderValue::from_static("attachment; filename=\"profile.pb\""),
            );
            response
        }
        Ok(Err(err)) => text(StatusCode::INTERNAL_SERVER_ERROR, format!("{err}\n")),
        Err(err) => text(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("the profile could not be built: {err}\n"),
        ),
    }
}

#[cfg(not(feature = "profiling"))]
async fn profile(_query: Option<&str>, _state: &Arc<ProbeState>) -> Response<Full<Bytes>> {
    text(
        StatusCode::NOT_IMPLEMENTED,
        "CPU profiles need the daemon built with the `profiling` feature\n",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_profile_query_is_checked() {
        assert_eq!(profile_seconds(None), Ok(30));
        assert_eq!(profile_seconds(Some("seconds=5")), Ok(5));
        assert!(profile_seconds(Some("seconds=0")).is_err());
        assert!(profile_seconds(Some("seconds=61")).is_err());
        assert!(profile_seconds(Some("seconds=abc")).is_err());
        assert!(profile_seconds(Some("minutes=1")).is_err());
    }
}
