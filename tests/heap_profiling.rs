//! Heap profiles (feature `heap-profiling`): the file is dhat's JSON with
//! its expected top-level keys and the allocations made meanwhile; a
//! second profile at once and an unwritable path are errors.
#![cfg(feature = "heap-profiling")]

use proc_daemon::ErrorKind;
use proc_daemon::profiling::heap::HeapProfiler;

#[test]
fn a_heap_profile_is_dhat_json_and_misuse_is_an_error() {
    assert_eq!(
        HeapProfiler::start(Some("/nonexistent-dir/heap.json"))
            .unwrap_err()
            .kind(),
        ErrorKind::Profiling
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("heap_profile.json");
    let profiler = HeapProfiler::start(Some(&path)).unwrap();
    let second = HeapProfiler::start(Some(dir.path().join("other.json"))).unwrap_err();
    assert!(second.to_string().contains("already"), "{second}");
    let kept: Vec<Vec<u8>> = (0..100).map(|i| vec![0u8; 1024 + i]).collect();
    profiler.stop();
    drop(kept);
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).expect("valid JSON");
    for key in ["dhatFileVersion", "mode", "cmd", "pid", "tu", "pps", "ftbl"] {
        assert!(json.get(key).is_some(), "no `{key}` in the profile");
    }
    assert_eq!(json["mode"], "rust-heap");
    let bytes: u64 = json["pps"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|pp| pp["tb"].as_u64())
        .sum();
    assert!(bytes >= 100 * 1024, "the 100 KiB allocated show: {bytes}");
    // Released: another profile may start.
    HeapProfiler::start(Some(dir.path().join("again.json")))
        .unwrap()
        .stop();
}
