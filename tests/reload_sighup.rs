//! SIGHUP reloads with `hot_reload = false`: no watcher, yet an edit
//! applies on the signal. In a test binary of its own, because the signal
//! goes to the whole process.

use std::time::{Duration, Instant};

use proc_daemon::{Config, Daemon};

#[test]
fn a_sighup_after_an_edit_applies_it_with_hot_reload_off() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("daemon.toml");
    std::fs::write(&file, "name = \"before\"\nhot_reload = false\n").unwrap();
    let config = Config::builder().file(&file).ignore_env().build().unwrap();
    assert!(!config.hot_reload);
    // The default signal handling: SIGHUP reloads.
    let daemon = Daemon::builder(config).build().unwrap();

    std::fs::write(&file, "name = \"after\"\nhot_reload = false\n").unwrap();
    // No watcher: the edit alone changes nothing.
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(daemon.config_snapshot().name, "before");

    // SAFETY: kill(2) on this process with a valid signal number; the
    // daemon handles SIGHUP.
    assert_eq!(unsafe { libc::kill(libc::getpid(), libc::SIGHUP) }, 0);
    let deadline = Instant::now() + Duration::from_secs(10);
    while daemon.config_snapshot().name != "after" {
        assert!(Instant::now() < deadline, "SIGHUP did not apply the edit");
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(daemon.reload_stats().applied(), 1);

    daemon.shutdown();
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async { tokio::time::timeout(Duration::from_secs(10), daemon.run()).await })
        .expect("run within 10 s")
        .expect("a clean stop");
}
