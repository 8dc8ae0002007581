//! What the executor's idle spin costs and what it buys: an actor on a
//! 2-worker executor receives one message every 1 ms, 100 µs and 10 µs from
//! a thread outside the executor, with `ExecutorBuilder::idle_spin` at its
//! default and at 0, side by side with a task on tokio's 2-worker
//! multi-thread runtime doing the same work.
//!
//! ```text
//! cargo bench -p proc-daemon-benches --bench idle_spin
//! cargo bench -p proc-daemon-benches --bench idle_spin -- --seconds 1 --json out.json
//! ```
//!
//! Each case runs in a fresh copy of this binary (the variable
//! `IDLE_SPIN_CASE` selects it), for `--seconds` (default 5) of sending:
//!
//! - the sender is a thread of its own that sends one message per period,
//!   stamped with the time it is sent. For periods of 100 µs and more it
//!   sleeps until each deadline (`clock_nanosleep` on an absolute time,
//!   with 1 ns of timer slack), so it costs little CPU itself and the
//!   period is kept on average; for 10 µs it spins, as any thread sending
//!   100,000 messages a second is busy anyway;
//! - proc-daemon: the receiver is an actor on worker 0, sent to with
//!   `try_tell` (its bounded mailbox of 1024 never fills at these rates);
//! - tokio: the receiver is a task looping on a tokio `mpsc` unbounded
//!   channel, sent to with `send`. tokio has no actors; this is the least
//!   work a receiver on it can do;
//! - the receiver records, for each message, the time from its stamp to
//!   its handling: the latency.
//!
//! CPU: the process's user and system time (`getrusage(RUSAGE_SELF)`) over
//! the sending window, less the sender's and the main thread's own
//! (`getrusage(RUSAGE_THREAD)` on each), divided by the wall time: the
//! CPU the runtime spent receiving, as a fraction of one CPU.

use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use proc_daemon::actors::executor::{DEFAULT_IDLE_SPIN, Executor};
use proc_daemon::actors::prelude::*;
use proc_daemon::actors::spawn::{SpawnOptions, spawn_on};
use proc_daemon_benches::{arg_or, write_json_results};

const CASE: &str = "IDLE_SPIN_CASE";
/// The periods between messages, in microseconds.
const PERIODS_US: [u64; 3] = [1000, 100, 10];

/// A runtime under test.
#[derive(Clone, Copy, Debug)]
enum Runtime {
    /// proc-daemon's executor with this idle spin, in microseconds.
    Ours { spin_us: u64 },
    /// tokio's multi-thread runtime with 2 workers.
    Tokio,
}

impl Runtime {
    fn label(self) -> String {
        match self {
            Runtime::Ours { spin_us } => format!("proc-daemon-spin-{spin_us}us"),
            Runtime::Tokio => "tokio-multi-thread".to_owned(),
        }
    }

    fn parse(label: &str) -> Runtime {
        if label == "tokio-multi-thread" {
            return Runtime::Tokio;
        }
        let spin_us = label
            .strip_prefix("proc-daemon-spin-")
            .and_then(|rest| rest.strip_suffix("us"))
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("unknown runtime {label}"));
        Runtime::Ours { spin_us }
    }
}

/// CPU time of the calling thread (`RUSAGE_THREAD`) or of the process
/// (`RUSAGE_SELF`).
fn cpu_time(who: libc::c_int) -> Duration {
    // SAFETY: an all-zero rusage is a valid value for getrusage to overwrite.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: getrusage writes into the local it is given.
    let rc = unsafe { libc::getrusage(who, &mut usage) };
    assert_eq!(rc, 0, "getrusage failed");
    let micros = |t: libc::timeval| t.tv_sec as u64 * 1_000_000 + t.tv_usec as u64;
    Duration::from_micros(micros(usage.ru_utime) + micros(usage.ru_stime))
}

/// Sleeps until `deadline` on the monotonic clock (absolute), without
/// spinning.
fn sleep_until(deadline: &libc::timespec) {
    loop {
        // SAFETY: clock_nanosleep reads the deadline; no remainder pointer
        // is needed with TIMER_ABSTIME.
        let rc = unsafe {
            libc::clock_nanosleep(
                libc::CLOCK_MONOTONIC,
                libc::TIMER_ABSTIME,
                deadline,
                std::ptr::null_mut(),
            )
        };
        if rc != libc::EINTR {
            return;
        }
    }
}

fn now_timespec() -> libc::timespec {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes into the local it is given.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut now) };
    now
}

fn add_nanos(time: &mut libc::timespec, nanos: u64) {
    let total = time.tv_nsec as u64 + nanos;
    time.tv_sec += (total / 1_000_000_000) as libc::time_t;
    time.tv_nsec = (total % 1_000_000_000) as libc::c_long;
}

/// What the sender thread reports.
struct Sent {
    messages: u64,
    cpu: Duration,
}

/// Sends `send(Instant::now())` once per `period` for `window`, on a thread
/// of its own; returns how many it sent and its CPU time.
fn sender(
    period: Duration,
    window: Duration,
    send: impl Fn(Instant) + Send + 'static,
) -> std::thread::JoinHandle<Sent> {
    std::thread::spawn(move || {
        // SAFETY: prctl(PR_SET_TIMERSLACK) only changes this thread's
        // timer slack.
        unsafe { libc::prctl(libc::PR_SET_TIMERSLACK, 1, 0, 0, 0) };
        let cpu_before = cpu_time(libc::RUSAGE_THREAD);
        let period_ns = period.as_nanos() as u64;
        let spin = period < Duration::from_micros(100);
        let start = Instant::now();
        let mut deadline = now_timespec();
        let mut next = start;
        let mut messages = 0;
        while start.elapsed() < window {
            if spin {
                next += period;
                while Instant::now() < next {
                    std::hint::spin_loop();
                }
            } else {
                add_nanos(&mut deadline, period_ns);
                sleep_until(&deadline);
            }
            send(Instant::now());
            messages += 1;
        }
        Sent {
            messages,
            cpu: cpu_time(libc::RUSAGE_THREAD).saturating_sub(cpu_before),
        }
    })
}

// ---- the receivers --------------------------------------------------------

/// The proc-daemon receiver: records each message's latency.
struct Receiver {
    latencies: Vec<u32>,
}
impl Actor for Receiver {}

struct Stamp(Instant);
impl Handler<Stamp> for Receiver {
    type Reply = ();
    async fn handle(&mut self, Stamp(sent): Stamp, _ctx: &mut Context<Self>) {
        let nanos = sent.elapsed().as_nanos().min(u128::from(u32::MAX)) as u32;
        self.latencies.push(nanos);
    }
}

struct TakeLatencies;
impl Handler<TakeLatencies> for Receiver {
    type Reply = Vec<u32>;
    async fn handle(&mut self, _: TakeLatencies, _ctx: &mut Context<Self>) -> Vec<u32> {
        std::mem::take(&mut self.latencies)
    }
}

/// One measured case: the runtime's CPU over the window, the wall time,
/// what was sent, and each message's latency in nanoseconds.
struct Measured {
    runtime_cpu: Duration,
    wall: Duration,
    sent: u64,
    latencies: Vec<u32>,
}

fn run_ours(spin: Duration, period: Duration, window: Duration) -> Measured {
    let executor = Executor::builder()
        .worker_threads(2)
        .idle_spin(spin)
        .build()
        .expect("executor");
    let capacity = (window.as_nanos() / period.as_nanos()) as usize + 16;
    let receiver = spawn_on(
        &executor,
        0,
        Receiver {
            latencies: Vec::with_capacity(capacity),
        },
        SpawnOptions::default(),
    )
    .expect("worker");
    // Let the executor settle into its idle state first.
    std::thread::sleep(Duration::from_millis(100));
    let main_before = cpu_time(libc::RUSAGE_THREAD);
    let process_before = cpu_time(libc::RUSAGE_SELF);
    let started = Instant::now();
    let target = receiver.clone();
    let sent = sender(period, window, move |now| {
        if target.try_tell(Stamp(now)).is_err() {
            panic!("the receiver's mailbox refused a message");
        }
    })
    .join()
    .expect("sender");
    let latencies = executor
        .spawn_on(1, async move { receiver.ask(TakeLatencies).await })
        .expect("worker")
        .join()
        .expect("collector")
        .expect("the receiver answers");
    let wall = started.elapsed();
    let process = cpu_time(libc::RUSAGE_SELF).saturating_sub(process_before);
    let main = cpu_time(libc::RUSAGE_THREAD).saturating_sub(main_before);
    executor.shutdown(Duration::from_secs(5)).expect("shutdown");
    Measured {
        runtime_cpu: process.saturating_sub(sent.cpu + main),
        wall,
        sent: sent.messages,
        latencies,
    }
}

fn run_tokio(period: Duration, window: Duration) -> Measured {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let capacity = (window.as_nanos() / period.as_nanos()) as usize + 16;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Instant>();
    let latencies = Arc::new(Mutex::new(Vec::<u32>::with_capacity(capacity)));
    let receiver = runtime.spawn({
        let latencies = latencies.clone();
        async move {
            let mut local = Vec::with_capacity(capacity);
            while let Some(sent) = rx.recv().await {
                local.push(sent.elapsed().as_nanos().min(u128::from(u32::MAX)) as u32);
            }
            *latencies.lock().expect("not poisoned") = local;
        }
    });
    std::thread::sleep(Duration::from_millis(100));
    let main_before = cpu_time(libc::RUSAGE_THREAD);
    let process_before = cpu_time(libc::RUSAGE_SELF);
    let started = Instant::now();
    let sent = sender(period, window, move |now| {
        tx.send(now).expect("the receiver is running");
    })
    .join()
    .expect("sender");
    // The sender's end dropped `tx`, which ends the receiver's loop.
    runtime.block_on(receiver).expect("receiver");
    let wall = started.elapsed();
    let process = cpu_time(libc::RUSAGE_SELF).saturating_sub(process_before);
    let main = cpu_time(libc::RUSAGE_THREAD).saturating_sub(main_before);
    runtime.shutdown_timeout(Duration::from_secs(5));
    let latencies = std::mem::take(&mut *latencies.lock().expect("not poisoned"));
    Measured {
        runtime_cpu: process.saturating_sub(sent.cpu + main),
        wall,
        sent: sent.messages,
        latencies,
    }
}

/// Runs one case in this process and prints its results as one JSON line.
fn child(case: &str) {
    let (label, period_us) = case.split_once(':').expect("runtime:period");
    let period = Duration::from_micros(period_us.parse().expect("period in µs"));
    let window = Duration::from_secs_f64(
        std::env::var("IDLE_SPIN_SECONDS")
            .expect("the parent sets the window")
            .parse()
            .expect("seconds"),
    );
    let measured = match Runtime::parse(label) {
        Runtime::Ours { spin_us } => run_ours(Duration::from_micros(spin_us), period, window),
        Runtime::Tokio => run_tokio(period, window),
    };
    assert_eq!(
        measured.latencies.len() as u64,
        measured.sent,
        "every message sent was handled"
    );
    let mut sorted = measured.latencies;
    sorted.sort_unstable();
    let at = |p: f64| f64::from(sorted[((sorted.len() - 1) as f64 * p).round() as usize]) / 1e3;
    println!(
        "{}",
        serde_json::json!({
            "runtime": label,
            "period_us": period.as_micros() as u64,
            "messages": measured.sent,
            "wall_s": measured.wall.as_secs_f64(),
            "cpu_per_wall_s": measured.runtime_cpu.as_secs_f64() / measured.wall.as_secs_f64(),
            "latency_p50_us": at(0.5),
            "latency_p99_us": at(0.99),
        })
    );
}

fn main() {
    if let Ok(case) = std::env::var(CASE) {
        child(&case);
        return;
    }
    let seconds: f64 = arg_or("--seconds", 5.0);
    assert!(seconds > 0.0, "--seconds must be positive");
    let default_spin_us = DEFAULT_IDLE_SPIN.as_micros() as u64;
    let runtimes = [
        Runtime::Ours {
            spin_us: default_spin_us,
        },
        Runtime::Ours { spin_us: 0 },
        Runtime::Tokio,
    ];
    println!(
        "one message per period to a receiver on 2 workers, {seconds} s per case; \
         CPU = the runtime's CPU time / wall time"
    );
    let mut cases = Vec::new();
    for period_us in PERIODS_US {
        for runtime in runtimes {
            let label = runtime.label();
            let output = Command::new(std::env::current_exe().expect("own path"))
                .env(CASE, format!("{label}:{period_us}"))
                .env("IDLE_SPIN_SECONDS", seconds.to_string())
                .output()
                .expect("run a case");
            assert!(output.status.success(), "{label} {period_us}: {output:?}");
            let line = String::from_utf8_lossy(&output.stdout);
            let result: serde_json::Value =
                serde_json::from_str(line.trim()).expect("the case's JSON line");
            println!(
                "  every {period_us:>5} us  {label:<26} cpu {:>6.3} CPU-s/s   latency p50 {:>8.2} us   p99 {:>9.2} us   ({} messages)",
                result["cpu_per_wall_s"].as_f64().expect("cpu"),
                result["latency_p50_us"].as_f64().expect("p50"),
                result["latency_p99_us"].as_f64().expect("p99"),
                result["messages"],
            );
            cases.push(result);
        }
    }
    write_json_results(&serde_json::json!({
        "seconds": seconds,
        "default_spin_us": default_spin_us,
        "cases": cases,
    }));
}
