//! The monitoring endpoint in-process, over real sockets: the probes
//! through start, shutdown and escalation; the runtime's and the
//! program's series in `/metrics`; bad input; a client that hogs every
//! connection slot; and an address in use.
#![cfg(feature = "metrics")]
// A test holds the file's serialising guard for its whole length, each on
// its own runtime: no other task of that runtime waits for the lock, so
// holding it across awaits cannot deadlock.
#![allow(clippy::await_holding_lock)]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use proc_daemon::prelude::*;

#[path = "fixtures/counter.rs"]
mod counter;
#[path = "fixtures/http.rs"]
mod http;
use counter::{Add, Counter};

/// The runtime's series are the process's (one registry, paths such as
/// `root/counter`), so the daemons of this file run one at a time even
/// when `cargo test` runs the tests on parallel threads.
static ONE_DAEMON_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    ONE_DAEMON_AT_A_TIME
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A daemon on two workers with the endpoint on a port the system picks,
/// metrics on, signals left alone, and a `slow` subsystem that takes
/// `cleanup` to stop (so that a shutdown lasts long enough to probe).
fn daemon(cleanup: Duration) -> Daemon {
    let config = Config::builder()
        .name("monitoring-test")
        .worker_threads(2)
        .shutdown_timeout(Duration::from_secs(5))
        .enable_metrics(true)
        .http_listen(SocketAddr::from(([127, 0, 0, 1], 0)))
        .ignore_env()
        .build()
        .unwrap();
    Daemon::builder(config)
        .with_signal_config(SignalConfig::none())
        .with_subsystem_fn("slow", move |mut shutdown| async move {
            shutdown.cancelled().await;
            tokio::time::sleep(cleanup).await;
            Ok(())
        })
        .build()
        .unwrap()
}

/// `GET path` from a blocking thread, so the test's runtime keeps going.
async fn get(addr: SocketAddr, path: &'static str) -> http::Response {
    tokio::task::spawn_blocking(move || http::get(addr, path))
        .await
        .unwrap()
}

/// Polls `path` until it answers `status`, for at most `within`.
async fn until_status(addr: SocketAddr, path: &'static str, status: u16, within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        let response = get(addr, path).await;
        if response.status == status {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{path} still answers {} ({}) after {within:?}",
            response.status,
            response.text()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The value of the sample `series` (name and labels, as written) in an
/// exposition.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

struct Flaky;
impl Actor for Flaky {}
struct Fail;
impl Handler<Fail> for Flaky {
    type Reply = ();
    async fn handle(&mut self, _fail: Fail, ctx: &mut Context<Self>) {
        ctx.fail("told to fail");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probes_and_series_follow_the_daemon_through_its_life() {
    let _serial = one_at_a_time();
    let daemon = daemon(Duration::from_millis(1500));
    let addr = daemon.monitoring_addr().unwrap();
    until_status(addr, "/readyz", 200, Duration::from_secs(5)).await;
    assert_eq!(get(addr, "/livez").await.status, 200);

    let counter = daemon
        .supervisor()
        .child("counter", || Counter(0))
        .spawn()
        .await
        .unwrap();
    for _ in 0..40 {
        counter.ask(Add(1)).await.unwrap();
    }
    let flaky = daemon
        .supervisor()
        .child("flaky", || Flaky)
        .restart(RestartPolicy::Always)
        .spawn()
        .await
        .unwrap();
    flaky.tell(Fail).await.unwrap();
    metrics::counter!("user_code_events").increment(3);

    let metrics = get(addr, "/metrics").await;
    assert_eq!(metrics.status, 200);
    assert!(
        metrics
            .header("content-type")
            .unwrap()
            .starts_with("text/plain; version=0.0.4")
    );
    let text = metrics.text();
    let counter_series = "{actor=\"root/counter\",supervisor=\"root\"}";
    assert_eq!(
        sample(
            &text,
            &format!("proc_daemon_actor_messages_handled_total{counter_series}")
        ),
        Some(40.0),
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            &format!("proc_daemon_actor_handler_duration_seconds_count{counter_series}")
        ),
        Some(2.0),
        "one message in 32 is timed: the 1st and the 33rd"
    );
    assert_eq!(
        sample(
            &text,
            &format!("proc_daemon_actor_mailbox_depth{counter_series}")
        ),
        Some(0.0)
    );
    // The restart happens right after the failure; give it a moment.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let text = get(addr, "/metrics").await.text();
        let restarts = sample(
            &text,
            "proc_daemon_actor_restarts_total{actor=\"root/flaky\",supervisor=\"root\"}",
        );
        if restarts == Some(1.0) {
            break;
        }
        assert!(Instant::now() < deadline, "restarts: {restarts:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(sample(&text, "user_code_events_total"), Some(3.0), "{text}");
    assert!(sample(&text, "proc_daemon_worker_polls_total{worker=\"0\"}").unwrap() > 0.0);
    assert_eq!(
        sample(
            &text,
            "proc_daemon_supervisor_children{supervisor=\"root\",state=\"running\"}"
        ),
        Some(4.0),
        "monitoring, slow, counter and flaky"
    );

    // From the moment the shutdown begins, /readyz answers 503 while the
    // `slow` subsystem drains; /livez stays 200: nothing is wrong.
    let run = tokio::spawn(daemon.clone().run());
    daemon.shutdown();
    until_status(addr, "/readyz", 503, Duration::from_secs(1)).await;
    let ready = get(addr, "/readyz").await;
    assert!(ready.text().contains("shutting down"), "{}", ready.text());
    assert_eq!(get(addr, "/livez").await.status, 200);
    assert!(!run.is_finished(), "the drain is still under way");
    let exit = tokio::time::timeout(Duration::from_secs(20), run)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(exit.exit_code(), 0);
    // The endpoint stopped with the daemon.
    assert!(std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn livez_turns_503_while_the_root_supervisor_gives_up() {
    let _serial = one_at_a_time();
    let daemon = daemon(Duration::from_secs(2));
    let addr = daemon.monitoring_addr().unwrap();
    until_status(addr, "/livez", 200, Duration::from_secs(5)).await;
    let flaky = daemon
        .supervisor()
        .child("flaky", || Flaky)
        .restart(RestartPolicy::Always)
        .spawn()
        .await
        .unwrap();
    let run = tokio::spawn(daemon.clone().run());
    // More failures than the root's restart intensity allows.
    for _ in 0..6 {
        let _ = flaky.tell(Fail).await;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    until_status(addr, "/livez", 503, Duration::from_secs(2)).await;
    assert!(get(addr, "/livez").await.text().contains("root supervisor"));
    let exit = tokio::time::timeout(Duration::from_secs(20), run)
        .await
        .unwrap()
        .unwrap();
    assert!(exit.is_err(), "an escalation is a failed exit");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_clear_answers() {
    let _serial = one_at_a_time();
    let daemon = daemon(Duration::ZERO);
    let addr = daemon.monitoring_addr().unwrap();
    until_status(addr, "/livez", 200, Duration::from_secs(5)).await;
    let missing = get(addr, "/nope").await;
    assert_eq!(missing.status, 404);
    assert!(missing.text().contains("/metrics"), "{}", missing.text());
    let post = tokio::task::spawn_blocking(move || {
        http::request(addr, "POST /metrics", Duration::from_secs(5))
    })
    .await
    .unwrap();
    assert_eq!(post.status, 405);
    assert_eq!(post.header("allow"), Some("GET, HEAD"));
    let bad_query = get(addr, "/debug/pprof/profile?seconds=abc").await;
    if cfg!(feature = "profiling") {
        assert_eq!(bad_query.status, 400);
        assert!(bad_query.text().contains("seconds"), "{}", bad_query.text());
    } else {
        assert_eq!(bad_query.status, 501);
        assert!(bad_query.text().contains("`profiling` feature"));
    }
    // Not HTTP at all: hyper answers 400 and closes.
    let garbage = tokio::task::spawn_blocking(move || {
        use std::io::{Read, Write};
        let mut stream = std::net::TcpStream::connect(addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        stream.write_all(b"\x00\x01 not http\r\n\r\n").unwrap();
        let mut answer = Vec::new();
        let _ = stream.read_to_end(&mut answer);
        String::from_utf8_lossy(&answer).into_owned()
    })
    .await
    .unwrap();
    assert!(garbage.starts_with("HTTP/1.1 400"), "{garbage:?}");
    assert_eq!(get(addr, "/livez").await.status, 200);
    daemon.shutdown();
    tokio::time::timeout(Duration::from_secs(20), daemon.run())
        .await
        .unwrap()
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_hogs_every_connection_slot_blocks_only_itself() {
    let _serial = one_at_a_time();
    let daemon = daemon(Duration::ZERO);
    let addr = daemon.monitoring_addr().unwrap();
    until_status(addr, "/livez", 200, Duration::from_secs(5)).await;
    let counter = daemon
        .supervisor()
        .child("counter", || Counter(0))
        .spawn()
        .await
        .unwrap();
    // 64 connections that send half a request and wait.
    let hogs: Vec<std::net::TcpStream> = (0..64)
        .map(|_| {
            use std::io::Write;
            let mut stream = std::net::TcpStream::connect(addr).unwrap();
            stream.write_all(b"GET /metrics HTTP/1.1\r\n").unwrap();
            stream
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(200)).await;
    // One more is closed at once, unanswered...
    let refused = tokio::task::spawn_blocking(move || {
        use std::io::{Read, Write};
        let began = Instant::now();
        let mut stream = std::net::TcpStream::connect(addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let _ = stream.write_all(b"GET /livez HTTP/1.1\r\nConnection: close\r\n\r\n");
        let mut answer = Vec::new();
        // Closed with the request unread, the server's end may reset.
        let closed = match stream.read_to_end(&mut answer) {
            Ok(_) => true,
            Err(err) => err.kind() == std::io::ErrorKind::ConnectionReset,
        };
        (answer, closed, began.elapsed())
    })
    .await
    .unwrap();
    let (answer, closed, after) = refused;
    assert!(
        answer.is_empty() && closed && after < Duration::from_secs(3),
        "over the limit, a connection is closed at once: {:?} after {after:?} (closed: {closed})",
        String::from_utf8_lossy(&answer)
    );
    // ...while the daemon's actors carry on.
    assert_eq!(counter.ask(Add(2)).await, Ok(2));
    // The hogs' headers time out (5 s) and free their slots.
    tokio::time::sleep(Duration::from_secs(6)).await;
    assert_eq!(get(addr, "/livez").await.status, 200);
    drop(hogs);
    daemon.shutdown();
    tokio::time::timeout(Duration::from_secs(20), daemon.run())
        .await
        .unwrap()
        .unwrap();
}

#[test]
fn an_address_in_use_is_an_error_at_start_naming_the_key() {
    let _serial = one_at_a_time();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let config = Config::builder()
        .http_listen(taken.local_addr().unwrap())
        .worker_threads(1)
        .ignore_env()
        .build()
        .unwrap();
    let err = Daemon::builder(config)
        .with_signal_config(SignalConfig::none())
        .build()
        .unwrap_err();
    let message = err.to_string();
    assert!(message.contains("monitoring.http_listen"), "{message}");
    assert!(message.contains("in use"), "{message}");
}

#[test]
fn the_address_comes_from_the_environment_and_is_validated() {
    let config = Config::builder()
        .env_vars([("DAEMON_MONITORING_HTTP_LISTEN", "127.0.0.1:9999")])
        .build()
        .unwrap();
    assert_eq!(
        config.monitoring.http_listen,
        Some(SocketAddr::from(([127, 0, 0, 1], 9999)))
    );
    let err = Config::builder()
        .env_vars([("DAEMON_MONITORING_HTTP_LISTEN", "localhost:9090")])
        .build()
        .unwrap_err();
    let message = err.to_string();
    assert!(message.contains("monitoring.http_listen"), "{message}");
    assert!(
        message.contains("DAEMON_MONITORING_HTTP_LISTEN"),
        "{message}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_program_can_render_the_exposition_without_the_endpoint() {
    let _serial = one_at_a_time();
    let config = Config::builder()
        .worker_threads(2)
        .enable_metrics(true)
        .ignore_env()
        .build()
        .unwrap();
    let daemon = Daemon::builder(config)
        .with_signal_config(SignalConfig::none())
        .build()
        .unwrap();
    assert_eq!(daemon.monitoring_addr(), None);
    let counter = daemon
        .supervisor()
        .child("counter", || Counter(0))
        .spawn()
        .await
        .unwrap();
    counter.ask(Add(5)).await.unwrap();
    let text = daemon.render_metrics();
    assert_eq!(
        sample(
            &text,
            "proc_daemon_actor_messages_handled_total{actor=\"root/counter\",supervisor=\"root\"}"
        ),
        Some(1.0),
        "{text}"
    );
    assert!(sample(&text, "proc_daemon_uptime_seconds").is_some());
    daemon.shutdown();
    tokio::time::timeout(Duration::from_secs(20), daemon.run())
        .await
        .unwrap()
        .unwrap();
}
