//! The config file watcher (`hot_reload = true`, feature `config-watch`),
//! with real files: every way a file changes is followed by the new
//! snapshot, and the watch outlives each of them.
#![cfg(feature = "config-watch")]

use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use proc_daemon::{Config, Daemon, SignalConfig};

/// A temporary directory, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(test: &str) -> TempDir {
        let dir =
            std::env::temp_dir().join(format!("proc-daemon-watch-{test}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn named(name: &str) -> String {
    format!("name = \"{name}\"\n")
}

fn watching(file: &Path) -> Daemon {
    let config = Config::builder()
        .file(file)
        .hot_reload(true)
        .ignore_env()
        .build()
        .unwrap();
    Daemon::builder(config)
        .with_signal_config(SignalConfig::none())
        .build()
        .unwrap()
}

/// Waits, bounded, until the snapshot's name is `name`.
fn until_named(daemon: &Daemon, name: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while daemon.config_snapshot().name != name {
        assert!(
            Instant::now() < deadline,
            "the snapshot is still named {:?}, not {name:?}",
            daemon.config_snapshot().name
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn stop(daemon: Daemon) {
    daemon.shutdown();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime
        .block_on(async { tokio::time::timeout(Duration::from_secs(10), daemon.run()).await })
        .expect("run within 10 s")
        .expect("a clean stop");
}

#[test]
fn every_way_a_file_changes_is_followed() {
    let dir = TempDir::new("ways");
    let file = dir.0.join("daemon.toml");
    std::fs::write(&file, named("start")).unwrap();
    let daemon = watching(&file);

    // An in-place write.
    std::fs::write(&file, named("in-place")).unwrap();
    until_named(&daemon, "in-place");

    // An editor's atomic rename.
    let temp = dir.0.join(".daemon.toml.tmp");
    std::fs::write(&temp, named("renamed")).unwrap();
    std::fs::rename(&temp, &file).unwrap();
    until_named(&daemon, "renamed");

    // Truncate, then write after a pause: the empty file is not applied.
    std::fs::write(&file, "").unwrap();
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(
        daemon.config_snapshot().name,
        "renamed",
        "an empty file is a gap"
    );
    std::fs::write(&file, named("rewritten")).unwrap();
    until_named(&daemon, "rewritten");

    // Delete, a window with no file, then recreate.
    std::fs::remove_file(&file).unwrap();
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(
        daemon.config_snapshot().name,
        "rewritten",
        "no file is a gap"
    );
    std::fs::write(&file, named("recreated")).unwrap();
    until_named(&daemon, "recreated");

    // And the watch is still there.
    std::fs::write(&file, named("still-watched")).unwrap();
    until_named(&daemon, "still-watched");
    stop(daemon);
}

#[test]
fn a_configmap_symlink_swap_is_followed() {
    // The layout of a Kubernetes ConfigMap volume:
    // daemon.toml -> ..data/daemon.toml, ..data -> ..v1.
    let dir = TempDir::new("configmap");
    let version = |name: &str, content: &str| {
        let v = dir.0.join(name);
        std::fs::create_dir(&v).unwrap();
        std::fs::write(v.join("daemon.toml"), content).unwrap();
    };
    version("..v1", &named("v1"));
    symlink("..v1", dir.0.join("..data")).unwrap();
    symlink("..data/daemon.toml", dir.0.join("daemon.toml")).unwrap();
    let daemon = watching(&dir.0.join("daemon.toml"));
    assert_eq!(daemon.config_snapshot().name, "v1");

    for next in ["v2", "v3"] {
        // The kubelet's update: a new version, a new symlink, renamed
        // over `..data` atomically.
        version(&format!("..{next}"), &named(next));
        symlink(format!("..{next}"), dir.0.join("..data_tmp")).unwrap();
        std::fs::rename(dir.0.join("..data_tmp"), dir.0.join("..data")).unwrap();
        until_named(&daemon, next);
    }
    stop(daemon);
}

#[test]
fn a_hundred_rapid_edits_end_with_the_last_content() {
    let dir = TempDir::new("rapid");
    let file = dir.0.join("daemon.toml");
    std::fs::write(&file, named("e0")).unwrap();
    let daemon = watching(&file);
    for edit in 1..=100 {
        std::fs::write(&file, named(&format!("e{edit}"))).unwrap();
    }
    until_named(&daemon, "e100");
    // Settled: nothing later moves it.
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(daemon.config_snapshot().name, "e100");
    assert!(
        daemon.reload_stats().applied() < 100,
        "100 edits gave {} reloads",
        daemon.reload_stats().applied()
    );
    stop(daemon);
}
