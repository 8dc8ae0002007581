//! CPU profiles (feature `profiling`): a profile taken while a thread
//! works decodes as a pprof `Profile` with samples, from a file and from
//! the daemon's `/debug/pprof/profile`; a flame graph is an SVG; a second
//! profile at once and an unwritable path are errors, not panics.
#![cfg(feature = "profiling")]
// A test holds the file's serialising guard for its whole length, each on
// its own runtime: no other task of that runtime waits for the lock, so
// holding it across awaits cannot deadlock.
#![allow(clippy::await_holding_lock)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use pprof::protos::Message;
#[cfg(feature = "metrics")]
#[path = "fixtures/http.rs"]
mod http;
use proc_daemon::ErrorKind;
use proc_daemon::profiling::CpuProfiler;

/// Profiles are one per process: the tests take turns.
static ONE_PROFILE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    ONE_PROFILE_AT_A_TIME
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A thread that burns CPU until the returned flag is set.
fn busy() -> (Arc<AtomicBool>, std::thread::JoinHandle<u64>) {
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    let worker = std::thread::spawn(move || {
        let mut x = 1u64;
        while !flag.load(Ordering::Relaxed) {
            for i in 0..10_000u64 {
                x = x.wrapping_mul(6364136223846793005).wrapping_add(i);
            }
        }
        x
    });
    (stop, worker)
}

fn decode(bytes: &[u8]) -> pprof::protos::Profile {
    pprof::protos::Profile::decode(bytes).expect("a pprof Profile protobuf")
}

#[test]
fn a_profile_of_busy_work_has_samples() {
    let _serial = one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cpu_profile.pb");
    let (stop, worker) = busy();
    let cpu = CpuProfiler::start().unwrap();
    std::thread::sleep(Duration::from_millis(500));
    cpu.stop_to_file(&path).unwrap();
    stop.store(true, Ordering::Relaxed);
    worker.join().unwrap();
    let profile = decode(&std::fs::read(&path).unwrap());
    assert!(
        !profile.sample.is_empty(),
        "no samples in half a second of work"
    );
    assert!(!profile.string_table.is_empty());
}

#[test]
fn a_flame_graph_is_an_svg() {
    let _serial = one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("flame.svg");
    let (stop, worker) = busy();
    let cpu = CpuProfiler::start().unwrap();
    std::thread::sleep(Duration::from_millis(300));
    cpu.stop_to_flamegraph(&path).unwrap();
    stop.store(true, Ordering::Relaxed);
    worker.join().unwrap();
    let svg = std::fs::read_to_string(&path).unwrap();
    assert!(svg.contains("<svg"), "{}", &svg[..svg.len().min(200)]);
}

#[test]
fn a_second_profile_and_a_bad_path_are_errors() {
    let _serial = one_at_a_time();
    let first = CpuProfiler::start().unwrap();
    let second = CpuProfiler::start().unwrap_err();
    assert_eq!(second.kind(), ErrorKind::Profiling);
    assert!(second.to_string().contains("already"), "{second}");
    let bad = first
        .stop_to_file("/nonexistent-dir/cpu_profile.pb")
        .unwrap_err();
    assert_eq!(bad.kind(), ErrorKind::Profiling);
    assert!(bad.to_string().contains("/nonexistent-dir"), "{bad}");
    // The profiler was released: a new one starts.
    let again = CpuProfiler::start().unwrap();
    drop(again.stop_to_protobuf().unwrap());
    assert!(CpuProfiler::start_with_frequency(0).is_err());
}

#[cfg(feature = "metrics")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daemon_serves_a_profile_over_http() {
    use proc_daemon::prelude::*;

    let _serial = one_at_a_time();
    let config = Config::builder()
        .worker_threads(2)
        .http_listen(std::net::SocketAddr::from(([127, 0, 0, 1], 0)))
        .ignore_env()
        .build()
        .unwrap();
    let daemon = Daemon::builder(config)
        .with_signal_config(SignalConfig::none())
        .build()
        .unwrap();
    let addr = daemon.monitoring_addr().unwrap();
    let (stop, worker) = busy();
    let began = Instant::now();
    let (profile, concurrent) = tokio::task::spawn_blocking(move || {
        let first = std::thread::spawn(move || http::get(addr, "/debug/pprof/profile?seconds=1"));
        std::thread::sleep(Duration::from_millis(300));
        let concurrent = http::get(addr, "/debug/pprof/profile?seconds=1");
        (first.join().unwrap(), concurrent)
    })
    .await
    .unwrap();
    stop.store(true, Ordering::Relaxed);
    worker.join().unwrap();
    assert!(began.elapsed() >= Duration::from_secs(1));
    assert_eq!(profile.status, 200, "{}", profile.text());
    assert_eq!(
        profile.header("content-type"),
        Some("application/octet-stream")
    );
    assert!(!decode(&profile.body).sample.is_empty());
    assert_eq!(concurrent.status, 409, "{}", concurrent.text());
    daemon.shutdown();
    tokio::time::timeout(Duration::from_secs(20), daemon.run())
        .await
        .unwrap()
        .unwrap();
}

/// The frame-pointer unwinder under load: 4 threads allocating, formatting
/// and calling into libc while the profiler samples at its highest rate.
/// The default unwinder is the one reported to crash here (pprof-rs #75,
/// #203); this one must not.
#[test]
fn sampling_at_1000_hz_under_load_does_not_crash() {
    let _serial = one_at_a_time();
    let stop = Arc::new(AtomicBool::new(false));
    let workers: Vec<_> = (0..4)
        .map(|n| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut kept = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    kept.push(format!("{n}: {:?}", std::time::SystemTime::now()));
                    if kept.len() > 1000 {
                        kept.clear();
                    }
                    let _ = std::fs::metadata("/proc/self/stat");
                }
            })
        })
        .collect();
    let cpu = CpuProfiler::start_with_frequency(1000).unwrap();
    std::thread::sleep(Duration::from_secs(2));
    let bytes = cpu.stop_to_protobuf().unwrap();
    stop.store(true, Ordering::Relaxed);
    for worker in workers {
        worker.join().unwrap();
    }
    assert!(decode(&bytes).sample.len() > 10);
}
